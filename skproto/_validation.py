"""Input validation and target encoding shared by every skproto estimator.

One place for the checks, so every estimator raises the same errors with the
same messages: sparse input, non-finite values, magnitudes that would overflow,
the number of classes, sample weights, and the encoding of class labels
(any sortable values) or multi-label indicator matrices into the integer codes
or 0/1 matrices the models train on.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import sys
import warnings
from numbers import Real
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._chunking import chunk_slices

__all__ = [
    "MAX_ABS_VALUE",
    "check_float32_training_range",
    "check_magnitude",
    "check_two_classes",
    "checked_indicator",
    "class_weights",
    "encode_fit_targets",
    "encode_targets",
    "is_multilabel",
    "refuse_sparse_labels",
    "reject_sparse",
    "validate_fit_data",
    "validate_predict_data",
    "validate_sample_weight",
]

#: Largest absolute input value accepted: sums of ``n_features`` squared
#: differences of such values stay far below float64's overflow threshold
#: (about 1.8e308) for any realistic number of rows and features.
MAX_ABS_VALUE = 1e100
#: Smallest difference between training rows accepted (when they differ at all):
#: squared distances of smaller ones fall out of float64's normal range (1e-160
#: fitted a temperature of 0; 1e-170 gave every class 1/3 with every metric).
MIN_SPREAD = 1e-150

#: Torch estimators train in float32. Squared distances of values beyond this
#: overflow float32 (3.4e38) in sums over features; values that vary by less
#: than the minimum spread have squared differences below float32's normal range.
FLOAT32_MAX_ABS = 1e15
FLOAT32_MIN_SPREAD = 1e-15
#: float32's largest number (parameters torch takes as float32 stay below it)
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: float32's smallest normal number: a divisor torch keeps as float32 (a temperature,
#: a width) stays at or above it (RBFPrototypeClassifier(temperature=1e-46) stored a
#: temperature of 0, and predict gave every row the first class)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
#: Smallest temperature a torch estimator trains at (the reciprocal of float32's safe
#: magnitude, ``FLOAT32_MAX_ABS``): the scores are divided by ``T``, so the loss's
#: gradients grow as ``1 / T``, and Adam squares them. ProtoClassifier's multi-label
#: fit diverged from ``T = 1e-19`` on ("Lower learning_rate", whatever the rate), the
#: others stopped learning from about ``1e-21`` (the squares overflowed float32), and
#: its scores overflowed float32 themselves at ``1e-37``.
FLOAT32_MIN_TEMPERATURE = 1.0 / FLOAT32_MAX_ABS
#: Largest temperature ProtoClassifier trains at (float32's safe magnitude squared):
#: its mixture head's scale starts at ``T`` times its start at 1, so the scores are
#: about ``T`` times their size at 1 until divided by ``T``; this leaves them 1e8 of
#: float32's range (3.4e38) to grow in. At 1e37 fits diverged ("the loss became nan").
FLOAT32_MAX_TEMPERATURE = FLOAT32_MAX_ABS**2
#: float32's machine epsilon (2**-23): a similarity or detection below it, added to
#: the terms of order 1 a score sums, or a cosine that differs from 1 by less, leaves
#: no trace of the row in float32 (a row's scores are then the same whatever the row)
FLOAT32_RESOLUTION = float(np.finfo(np.float32).eps)
#: float32's rounding must move the rows by less than this fraction of their extent.
FLOAT32_MIN_STEPS = 16


_CLASSIFICATION_TYPES = (
    "binary",
    "multiclass",
    "multiclass-multioutput",
    "multilabel-indicator",
    "multilabel-sequences",
)


def is_real_number(value) -> bool:
    """Whether ``value`` is a real number and not a bool (``True`` is an int to Python,
    and read as 1.0 where a budget, a noise or a temperature was meant)."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _check_classification_type(y) -> None:
    """scikit-learn's ``check_classification_targets`` without its warning of many
    classes per row (so no filter of the process's warnings is swapped to hide it).
    Time-zone-aware dates are refused by name (:func:`refuse_aware_labels`)."""
    y_type = type_of_target(y, input_name="y")
    if y_type not in _CLASSIFICATION_TYPES:
        refuse_aware_labels(y)  # (only here: no pass over labels that are fine)
        raise ValueError(
            f"Unknown label type: {y_type}. Maybe you are trying to fit a "
            "classifier, which expects discrete classes on a "
            "regression target with continuous values."
        )


def _name(estimator) -> str:
    return type(estimator).__name__


def reject_sparse(X, estimator) -> None:
    """Raise the one error message for sparse input."""
    if sparse.issparse(X):
        raise ValueError(
            f"{_name(estimator)} does not support sparse input; "
            "got a sparse matrix. Convert it with X.toarray() if it fits in memory."
        )
    if hasattr(X, "sparse") and getattr(X, "ndim", 0) == 2 and X.shape[1]:  # pandas sparse
        # (scikit-learn's check_array turns such a frame into a sparse matrix and
        # raised its TypeError, not this message)
        raise ValueError(
            f"{_name(estimator)} does not support sparse input; got a DataFrame of "
            "sparse columns. Convert it with X.sparse.to_dense() if it fits in memory."
        )


def max_abs(X: np.ndarray) -> float:
    """``max |X|`` without allocating a copy of ``X`` (0 for an empty array)."""
    if X.size == 0:
        return 0.0
    return float(max(X.max(), -X.min()))


def check_magnitude(
    X: np.ndarray, estimator, limit: float = MAX_ABS_VALUE, what: str = "squared distances"
) -> float:
    """Raise a ValueError when ``X`` holds values whose squares (``what``) would overflow.

    Returns ``max |X|``.
    """
    top = max_abs(X)
    if top > limit:
        raise ValueError(
            f"X contains values up to {top:.3g} in magnitude; {_name(estimator)} accepts "
            f"at most {limit:g}, beyond which {what} overflow. Rescale X "
            "(e.g. with sklearn.preprocessing.StandardScaler)."
        )
    return top


def check_spread(X: np.ndarray, estimator, least: float, trains_in: str) -> np.ndarray:
    """Raise a ValueError when the rows of ``X`` differ, but by less than ``least``.

    Returns each feature's range (max - min) over the rows, in float64.
    """
    if len(X) < 2:
        return np.zeros(X.shape[1])
    ptp = X.max(axis=0).astype(np.float64) - X.min(axis=0)
    return check_range_spread(ptp, estimator, least, trains_in)


def check_range_spread(ptp: np.ndarray, estimator, least: float, trains_in: str) -> np.ndarray:
    """:func:`check_spread` of the features' ranges ``ptp`` (max - min over the rows)."""
    spread = float(np.max(ptp, initial=0.0))
    if 0 < spread < least:
        raise ValueError(
            f"X's values differ by at most {spread:.3g} between rows; "
            f"{_name(estimator)}{trains_in} needs differences of at least {least:g}, "
            "below which squared distances underflow. Rescale X "
            "(e.g. with sklearn.preprocessing.StandardScaler)."
        )
    return ptp


def check_float32_training_range(X: np.ndarray, estimator) -> None:
    """Raise a ValueError when float32 training cannot represent ``X``'s distances.

    Values above ``FLOAT32_MAX_ABS`` overflow float32 squared distances,
    data whose rows differ by less than ``FLOAT32_MIN_SPREAD`` (but not by 0)
    have squared distances below float32's normal range, and data that
    float32 rounding moves by more than ``1 / FLOAT32_MIN_STEPS`` of its
    extent (the norm of the features' ranges; e.g. values near 1e9 that vary
    by 10) keeps only a few values.
    """
    check_magnitude(X, estimator, FLOAT32_MAX_ABS)
    if len(X) > 1:
        ptp = check_spread(X, estimator, FLOAT32_MIN_SPREAD, " trains in float32 and")
        # data far from 0 for its spread rounds to a few float32 values
        # (digits + 1e9: every value became 1e9, and RBFPrototypeClassifier
        # was at chance without a word)
        error = float(np.linalg.norm(_float32_rounding_error(X)))
        extent = float(np.linalg.norm(ptp))
        # (rows all equal have no extent to lose: a batch of copies of one row,
        # like one row, is accepted)
        if extent > 0 and error > extent / FLOAT32_MIN_STEPS:
            raise ValueError(
                f"float32, which {_name(estimator)} trains in, moves X's rows by up to "
                f"{error:.3g}, against an extent of {extent:.3g} (the norm of the "
                f"features' ranges): values up to {max_abs(X):.3g} in magnitude vary "
                "too little for it. Centre X (e.g. with sklearn.preprocessing.StandardScaler)."
            )


def _float32_rounding_error(X: np.ndarray) -> np.ndarray:
    """Per feature, the largest ``|x - float32(x)|`` over the rows (chunked)."""
    error = np.zeros(X.shape[1])
    if X.dtype == np.float32:
        return error
    for s in chunk_slices(len(X), X.shape[1]):
        block = X[s]
        np.maximum(error, np.abs(block - block.astype(np.float32)).max(axis=0), out=error)
    return error


def validate_fit_data(
    estimator,
    X,
    y,
    *,
    reset: bool,
    multi_output: bool = False,
    min_spread: float | None = MIN_SPREAD,
):
    """Validate training ``X`` (dense, finite float, sane magnitude) and ``y``.

    Sets ``n_features_in_`` (and ``feature_names_in_``) when ``reset``. With
    ``multi_output`` a 2-D ``y`` is accepted (a multi-label indicator, checked
    by :func:`encode_fit_targets`).
    """
    reject_sparse(X, estimator)
    X, y = validate_data(
        estimator, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=multi_output
    )
    check_magnitude(X, estimator, *getattr(estimator, "_fit_magnitude_limit", lambda: ())())
    if min_spread is not None:  # (None: the caller checks a stricter bound)
        check_spread(X, estimator, min_spread, "")
    if not multi_output:
        # (type_of_target, not check_classification_targets: a small partial_fit chunk
        # often has more classes than half its rows, and silencing that warning with
        # warnings.catch_warnings swapped the process's filters, unsafe in threads)
        check_one_label_kind(y)  # (scikit-learn's checks would raise a TypeError)
        _check_classification_type(y)
    return X, y


def _internal(filename: str) -> bool:
    """Whether a frame's file is skproto's, scikit-learn's or joblib's own code
    (scikit-learn's model selection calls ``fit`` through joblib)."""
    import os

    import joblib
    import sklearn

    roots = (os.path.dirname(__file__), *(os.path.dirname(m.__file__) for m in (sklearn, joblib)))
    return any(filename.startswith(root + os.sep) for root in roots)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the user's line: the first frame outside
    skproto and scikit-learn (fixed stacklevels pointed at skproto's decorators
    or at scikit-learn's ``_fit_context``: a warning is reached at different
    depths from ``fit`` and ``partial_fit``). A stack with no such frame (a
    worker thread's) gives its outermost frame."""
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and _internal(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def validate_predict_data(estimator, X, *, return_max_abs: bool = False):
    """Validate ``X`` for prediction: fitted estimator, dense, finite, known width.

    With ``return_max_abs``, returns ``(X, max |X|)``.
    """
    check_is_fitted(estimator)
    reject_sparse(X, estimator)
    X = validate_data(estimator, X, reset=False, dtype=[np.float64, np.float32])
    top = check_magnitude(X, estimator)
    return (X, top) if return_max_abs else X


def validate_sample_weight(sample_weight, X, *, allow_all_zero: bool = False) -> np.ndarray:
    """Float64 weights: finite, non-negative, not all zero (unless ``allow_all_zero``:
    a later ``partial_fit`` batch or one block of data, which may weigh nothing).

    scikit-learn's check refuses all-zero weights itself from 1.9 on (its
    ``allow_all_zero_weights``); before, it took them, and the keyword was a
    TypeError in every fit (a minimum-versions audit, on 1.6.1): the check is
    then made here, with 1.9's message.
    """
    if _ALL_ZERO_KEYWORD:
        return _check_sample_weight(
            sample_weight,
            X,
            dtype=np.float64,
            ensure_non_negative=True,
            allow_all_zero_weights=allow_all_zero,
        )
    w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not allow_all_zero and not np.any(w):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return w


#: Whether scikit-learn's _check_sample_weight takes allow_all_zero_weights (1.9+)
_ALL_ZERO_KEYWORD = "allow_all_zero_weights" in inspect.signature(_check_sample_weight).parameters


def _time_keys(class_weight: dict, classes: np.ndarray) -> dict:
    """``class_weight`` with its numpy.datetime64 and pandas.Timestamp keys in the unit
    of datetime64 ``classes``: numpy before 2.2 hashed a datetime64 as its integer,
    so a Timestamp key did not find its class there (a minimum-versions audit, on
    numpy 1.24); other keys are left to the dict's own lookup. A time-zone-aware key
    is refused by name (:func:`refuse_time_zone`)."""
    if classes.dtype.kind != "M":
        return class_weight
    for key in class_weight:  # (an aware Timestamp was read as its UTC date, silently)
        refuse_time_zone(key, classes.dtype, "class_weight", _NAIVE_KEYS)
    return {_time_key(key, classes.dtype): value for key, value in class_weight.items()}


def _time_key(key, dtype: np.dtype):
    """A numpy.datetime64 or pandas.Timestamp ``key`` as a datetime64 of ``dtype``
    (datetime64 classes' dtype; any other ``dtype`` leaves the key as it is)."""
    if dtype.kind != "M":
        return key
    stamp = key.to_datetime64() if hasattr(key, "to_datetime64") else key
    if not isinstance(stamp, np.datetime64):
        return key
    exact = in_time_unit(stamp, dtype)
    return exact if exact is not stamp else key


def shown_labels(values) -> list:
    """``values`` as a list for a message: numbers and strings as ``tolist`` gives
    them, dates and durations as numpy's (``tolist`` made [ns] ones integers: "y
    contains labels [1646352000000000000] not in classes_" for 2022-03-04)."""
    array = np.asarray(values)
    return list(array.ravel()) if array.dtype.kind in "mM" else array.tolist()


#: How to make dates naive, by the kind of container that holds them
_NAIVE_SERIES = "Series.dt.tz_localize(None) (wall time) or .dt.tz_convert(None) (UTC)"
_NAIVE_KEYS = (
    "Timestamp.tz_localize(None) (wall time) or .tz_convert(None) (UTC), or a "
    "datetime's .replace(tzinfo=None)"
)


def _time_zone_error(name: str, value, classes: str, how: str = _NAIVE_SERIES) -> ValueError:
    return ValueError(
        f"{name} contains the time-zone-aware timestamp {value!r}, but {classes}: an "
        "aware date cannot be compared with a naive one without choosing a time zone. "
        f"Make the dates of {name} naive first, e.g. {how}."
    )


def refuse_time_zone(
    value, classes_dtype: np.dtype, name: str = "y", how: str = _NAIVE_SERIES
) -> None:
    """Raise when ``value`` is a time-zone-aware timestamp (a pandas Timestamp or a
    Python datetime with a ``tzinfo``) and the classes are naive datetime64 dates.

    Which naive date an aware one is has no single answer (its wall time or UTC:
    10 March 23:00 in New York is 11 March in UTC), so it is refused by name, as
    ``fit`` refuses such a ``y`` (:func:`refuse_aware_labels`). A report compared
    them as unequal objects and marked every prediction wrong, silently.
    """
    if classes_dtype.kind == "M" and getattr(value, "tzinfo", None) is not None:
        raise _time_zone_error(name, value, f"classes_ are naive dates ({classes_dtype})", how)


def refuse_aware_labels(y, name: str = "y") -> None:
    """Raise when an object ``y`` holds a time-zone-aware timestamp: classes are naive
    datetime64 dates (numpy's have no time zone), and ``fit`` refused such a ``y``
    with scikit-learn's "Unknown label type: unknown" (also ``partial_fit`` and its
    ``classes``). Called where that check fails, so labels it takes are not read."""
    y = np.asarray(y)
    if y.dtype != object:
        return
    for value in y.ravel():
        if getattr(value, "tzinfo", None) is not None:
            raise _time_zone_error(
                name, value, "an estimator's classes are naive dates (numpy's datetime64)"
            )


def time_labels(y: np.ndarray, classes: np.ndarray, *, name: str = "y") -> np.ndarray:
    """Object ``y`` as datetime64 (timedelta64) labels where ``classes`` are dates
    (durations): pandas' Timestamps and Timedeltas and Python's dates and timedeltas.

    numpy compares datetime64[D] classes with them as Python dates and [ns] ones
    as integers: a report marked every right prediction of such a ``y`` wrong, and
    the gallery's ``y`` was "labels not in classes_". A time-zone-aware timestamp
    against dates is refused by ``name`` (:func:`refuse_time_zone`). Any other ``y``
    (a value of another type) is returned as it is, for the checks to refuse.
    """
    dtype = np.asarray(classes).dtype
    kind = dtype.kind
    if kind not in "mM" or y.dtype != object or not y.size:
        return y
    numpy_type, python_type = (
        (np.datetime64, datetime.date) if kind == "M" else (np.timedelta64, datetime.timedelta)
    )
    values = []
    for value in y.ravel():
        refuse_time_zone(value, dtype, name)
        if getattr(value, "tzinfo", None) is not None:
            return y  # (a Timestamp against durations: a type the checks refuse)
        if hasattr(value, "to_numpy"):  # pandas' Timestamp, Timedelta (and NaT)
            value = value.to_numpy()
        elif isinstance(value, python_type):
            value = numpy_type(value)
        if not isinstance(value, numpy_type):
            return y
        values.append(value)
    return np.array(values).reshape(y.shape)


def scored_labels(y, classes):
    """``score``'s ``y`` for ``classes``: against datetime64 (timedelta64) classes an
    object ``y`` as :func:`time_labels` makes it (pandas' Timestamps and Python's dates
    as dates, an aware one refused by name), else ``y`` as it came (other labels are
    not read here: scikit-learn's metrics check them).

    scikit-learn's metrics read such an object ``y`` as "unknown" labels: score failed
    with "a mix of unknown and binary targets" (aware or not) where the report took
    the naive ones and refused the aware ones by name."""
    if not isinstance(classes, np.ndarray) or classes.dtype.kind not in "mM":
        return y
    labels = y if isinstance(y, np.ndarray) else np.asarray(y)
    return time_labels(labels, classes) if labels.dtype == object and labels.ndim else y


def in_time_unit(value, dtype: np.dtype):
    """A datetime64 or timedelta64 ``value`` in ``dtype``'s unit where that is exact,
    else ``value`` itself: a key of 05:00 on a day found that day's class (the cast to
    days drops the hours), and weighed or named it."""
    converted = value.astype(dtype)
    return converted if converted == value else value


def class_weights(class_weight, classes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The weight of each of ``classes`` under ``class_weight`` (None, dict or "balanced").

    A dict gives the classes it names their value and every other class 1,
    whether or not a class it names has rows (a ``partial_fit`` batch need
    not hold them all; scikit-learn's ``compute_sample_weight`` raises
    then). "balanced" gives a class with ``counts[c] > 0`` rows
    ``counts.sum() / (n_present * counts[c])``, ``n_present`` the classes with
    rows, as scikit-learn does; the counts are the classes' summed sample
    weights (:func:`weighted_counts`), as LogisticRegression counts them.
    """
    if class_weight is None:
        return np.ones(len(classes))
    if isinstance(class_weight, dict):
        lookup = _time_keys(class_weight, np.asarray(classes))
        out = np.array([float(lookup.get(c, 1.0)) for c in classes])
        if not np.all(np.isfinite(out) & (out >= 0)):
            # (negative ones trained on silently; inf and nan failed inside training)
            bad = {_plain(c): float(v) for c, v in zip(classes, out) if not 0 <= v < np.inf}
            raise ValueError(f"class_weight values must be finite and non-negative; got {bad}.")
        return out
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if not present.any():  # (a batch of weight 0: 0 / 0 warned)
        return np.ones(len(counts))
    return np.where(present, counts.sum() / (present.sum() * np.where(present, counts, 1.0)), 1.0)


def weighted_counts(
    codes: np.ndarray, w: np.ndarray, n_classes: int, top: float | None = None
) -> np.ndarray:
    """Each class's summed weight, relative to the largest weight ``top`` (default
    ``w``'s own; ratios are what "balanced" reads, and weights near float64's top
    would overflow the sums). Sums over blocks with one ``top`` add up.

    Rows of weight 0 are absent, as everywhere: counted as rows, 40 weightless
    rows of a class made it weigh as the others in "balanced" (1:1:1 where
    scikit-learn's LogisticRegression gives 5:1:1), and a weight of 2 counted
    as one row.
    """
    w = np.asarray(w, dtype=np.float64)
    if top is None:
        top = w.max() if len(w) else 0.0
    return np.bincount(codes, weights=w / top if top > 0 else w, minlength=n_classes)


def check_class_weight_labels(class_weight, classes: np.ndarray) -> None:
    """Raise if a ``class_weight`` dict names a label that is not one of ``classes``
    while it leaves some class unweighted: a misspelt label (it was ignored).

    scikit-learn's ``compute_class_weight`` rule: a dict that weighs every class
    may also name labels absent from the training data (a rare class missing
    from a cross-validation fold, or from a stream's classes so far). A key
    weighs a class when :func:`class_weights` finds it, that is by the dict's
    own lookup (a ``datetime.date`` key compares equal to a ``datetime64``
    class but is not found: it was accepted here and ignored there).
    """
    if not isinstance(class_weight, dict):
        return
    classes = np.asarray(classes)
    lookup = _time_keys(class_weight, classes)
    weighted = [c for c in classes if c in lookup]
    unweighted = [c for c in classes if c not in lookup]
    if unweighted and len(weighted) != len(class_weight):
        unknown = [
            k
            for k in class_weight
            if not any(c in {_time_key(k, classes.dtype): None} for c in weighted)
        ]
        times = classes.dtype.kind in "mM"  # (tolist() shows them as datetime.date)
        missed = list(unweighted) if times else [_plain(c) for c in unweighted]
        shown = list(classes) if times else classes.tolist()
        hint = " (datetime64 classes take numpy.datetime64 or pandas.Timestamp keys)"
        raise ValueError(
            f"class_weight names labels that are not classes: {unknown!r}, and does "
            f"not weigh the classes {missed!r}; the classes are {shown!r}"
            f"{hint if times else ''}."
        )


def _plain(value):
    """A numpy scalar as the Python value ``tolist`` gives (hashable, comparable)."""
    return value.item() if isinstance(value, np.generic) else value


def check_two_classes(estimator, classes: np.ndarray) -> None:
    """Raise the one error message for training data with a single class."""
    if len(classes) < 2:
        raise ValueError(
            f"{_name(estimator)} needs samples of at least 2 classes; got 1 class: {classes[0]!r}."
        )


def check_declared_classes(classes) -> np.ndarray:
    """The sorted classes declared to a first ``partial_fit``; at least two, as
    scikit-learn's estimators require (declared classes are fixed: one would
    lock the model to a single class). Strings and numbers mixed, or None, are
    refused as in ``y`` (numpy turned ``["a", 1]`` into ``["1", "a"]``, and the
    label 1 could then never be trained on), and so are labels no ``y`` may hold
    (NaN, infinity, continuous values such as 2.5: such a class could never get
    a row)."""
    if np.asarray(classes).dtype.kind in "mM" and np.isnat(np.asarray(classes)).any():
        # (cast to object a NaT is None: the message named None)
        raise ValueError("classes contains NaT (a missing label); give every class a label.")
    values = np.asarray(classes, dtype=object).ravel()
    if any(v is None for v in values):
        raise ValueError("classes contains None (a missing label); give every class a label.")
    if len({isinstance(v, str) for v in values}) > 1:
        raise ValueError(
            "Mix of label types (strings and numbers) in classes; use one type for all labels."
        )
    classes = np.asarray(classes)
    if classes.dtype.kind in "fc" and not np.all(np.isfinite(classes)):
        raise ValueError("classes contains NaN or infinity; give every class a finite label.")
    try:  # the labels y may hold, as scikit-learn's partial_fit checks them
        _check_classification_type(classes)
    except ValueError as exc:
        refuse_aware_labels(classes, "classes")  # (by its name, not as "not class labels")
        raise ValueError(f"classes are not class labels: {exc}") from None
    classes = np.unique(classes)
    if len(classes) < 2:
        raise ValueError(
            f"classes must hold at least 2 classes; got {classes.tolist()!r}. Without "
            "classes, the first call to partial_fit may hold one class and later calls "
            "add others."
        )
    return classes


def is_multilabel(y: Any) -> bool:
    """Whether ``y`` is 2-D with several columns (a multi-label target)."""
    shape = np.asarray(y).shape
    return len(shape) == 2 and shape[1] > 1


#: :func:`checked_indicator`'s "no offending value" (a None in y is one)
_NO_VALUE = object()


def checked_indicator(y, name: str = "y") -> np.ndarray:
    """``y``, a 2-D label indicator, as an array of 0/1 values (bool, int or float),
    else a ValueError naming ``name`` (as ``fit`` refuses such a ``y``).

    Where the metrics, the report and the calibration read an indicator as
    ``y > 0``: a NaN read as "no label", and 2 or 0.7 as a label, silently
    (scikit-learn's metrics refuse them); pandas' NA and strings failed with
    numpy's TypeError. An object array (a pandas frame of mixed int and bool
    columns) is read as its numbers.
    """
    Y = np.asarray(y)
    # (the types once each: an isinstance per value took 2.3 s of a 200,000 x 50
    # frame of pandas' nullable booleans, whose conversion takes 0.5 s)
    if Y.dtype == object and not any(issubclass(t, (str, bytes)) for t in set(map(type, Y.flat))):
        # (pandas' NA and the like stay as they are, refused below)
        with contextlib.suppress(TypeError, ValueError):
            Y = Y.astype(np.float64)
    if Y.dtype.kind == "b" or (
        # (two reductions: np.isin took 10 times y > 0 on a 1e6 x 50 bool or uint8 y)
        Y.dtype.kind in "iu" and (not Y.size or (Y.min() >= 0 and Y.max() <= 1))
    ):
        return Y
    if Y.dtype.kind in "iuf":  # (bool returned above)
        bad = ~np.isin(Y, (0, 1))
        if not bad.any():
            return Y
        example = Y[bad][0].item()
    else:
        number = (int, float, np.number, np.bool_)  # (pandas' NA: its == is no bool)
        example = next(
            (v for v in Y.flat if not (isinstance(v, number) and v in (0, 1))), _NO_VALUE
        )
    # (np.str_('0') as '0'; a datetime64's item was its integer, "got 0")
    if isinstance(example, np.generic) and not isinstance(example, (np.datetime64, np.timedelta64)):
        example = example.item()
    # (every value equal to 0 or 1, but no real number: complex, durations; was "got None")
    got = f"values of dtype {Y.dtype}" if example is _NO_VALUE else repr(example)
    raise ValueError(
        f"A 2-D {name} must be a multi-label indicator matrix of 0/1 values; got {got}."
    )


def encode_fit_targets(
    estimator, y, *, classes=None, allow_multilabel: bool = False, allow_one_class: bool = False
):
    """``(classes, T, multilabel)`` for the targets of a first fit.

    Single-label: ``classes`` sorted (those given, else those in ``y``) and
    ``T`` the integer code of each row. Multi-label (a 2-D 0/1 indicator, where
    allowed): ``classes = arange(n_labels)`` and ``T`` the float32 indicator.
    ``allow_one_class``: a single class is accepted (the first call of a
    class-incremental ``partial_fit``, whose later calls may add classes).
    """
    if is_multilabel(y):
        if not allow_multilabel:
            raise ValueError(f"{_name(estimator)} does not support multi-label targets.")
        Y = np.asarray(y)
        # scikit-learn calls {-1, 1} an indicator too: trained on as it is, -1
        # became a target of the binary cross-entropy
        if type_of_target(Y) != "multilabel-indicator" or not np.isin(Y, (0, 1)).all():
            raise ValueError("A 2-D y must be a multi-label indicator matrix of 0/1 values.")
        if classes is not None and not np.array_equal(
            np.unique(np.asarray(classes)), np.arange(Y.shape[1])
        ):
            raise ValueError(
                f"With a multi-label y of {Y.shape[1]} columns the classes are "
                f"{list(range(Y.shape[1]))!r} (the columns); got classes={classes!r}."
            )
        return np.arange(Y.shape[1]), Y.astype(np.float32), True
    y = np.asarray(y).ravel()
    found = np.unique(y)
    if classes is None:
        classes = found
    else:
        classes = check_declared_classes(classes)
        check_label_kinds(classes, found)
        unknown = np.setdiff1d(*joint_labels(classes, found)[::-1])
        if unknown.size:
            raise ValueError(
                f"y contains labels {shown_labels(unknown)!r} that are not in "
                f"classes={shown_labels(classes)!r}."
            )
        # declared classes are all there will be: a misspelt label shows now
        check_class_weight_labels(getattr(estimator, "class_weight", None), classes)
    if not allow_one_class:
        check_two_classes(estimator, classes)
    return classes, label_codes(classes, y), False


def layout_mismatch(estimator, y) -> ValueError:
    """The error for a ``y`` whose layout (one label per row, or an indicator of
    how many labels) is not the first fit's, naming both (it named neither)."""
    n_labels = len(getattr(estimator, "classes_", ()))
    seen = (
        f"an indicator of {n_labels} labels, shape (n_samples, {n_labels})"
        if getattr(estimator, "_multilabel", False)
        else "one label per row, shape (n_samples,)"
    )
    return ValueError(
        f"y does not match the label layout seen in the first fit: {seen}; "
        f"got y of shape {np.shape(y)}."
    )


def encode_targets(estimator, y) -> np.ndarray:
    """Codes (or the indicator) of ``y`` for a fitted estimator's ``classes_``."""
    multilabel = getattr(estimator, "_multilabel", False)
    if is_multilabel(y) != multilabel or (
        multilabel and np.asarray(y).shape[1] != len(estimator.classes_)
    ):
        raise layout_mismatch(estimator, y)
    if multilabel:
        return encode_fit_targets(estimator, y, allow_multilabel=True)[1]
    y = np.asarray(y).ravel()
    new_labels(estimator, y, fixed=True)
    return label_codes(estimator.classes_, y)


def _label_kinds(labels) -> set:
    """``{True}`` for strings, ``{False}`` for numbers, both for a mix; a missing
    label (None) is refused by name (it read as a mix of strings and numbers)."""
    array = np.asarray(labels)
    kind = array.dtype.kind
    if kind in "biuUS" or (
        kind in "fcmM" and not np.isnan(array).any()
    ):  # (no per-value loop: partial_fit checks every known class at each call,
        # 10,000 classes cost 5 ms a call, more than folding in a 10-row chunk; a
        # NaN or NaT is a missing label, refused below; bytes are no strings, as
        # in the loop: b"a" against the class "a" read as a miss)
        return {kind == "U"} if array.size else set()
    if kind in "mM":  # (a NaT: cast to object it is None, and read "y contains None")
        raise ValueError("y contains NaT (a missing label); drop those rows or give them a label.")
    values = np.asarray(labels, dtype=object).ravel()
    if any(v is None for v in values):
        raise ValueError("y contains None (a missing label); drop those rows or give them a label.")
    # a missing string or category (a float NaN, or pandas' NA, once cast to
    # object: a dask Series's labels) read as a number among strings
    if any((isinstance(v, float) and v != v) or type(v).__name__ == "NAType" for v in values):
        raise ValueError(
            "Input y contains NaN (a missing label); drop those rows or give them a label."
        )
    return {isinstance(v, str) for v in values}


def check_one_label_kind(y) -> None:
    """Raise when an object ``y`` holds both strings and numbers (numpy cannot sort it),
    or a datetime64 or timedelta64 ``y`` a NaT (a missing label)."""
    y = np.asarray(y)
    if y.dtype.kind in "mM":  # (fit trained a NaT as a class, which partial_fit refused)
        _label_kinds(y)
    if y.dtype == object and len(_label_kinds(y)) > 1:
        raise ValueError(
            "Mix of label types (strings and numbers) in y; use one type for all labels."
        )


def check_label_kinds(known, labels) -> None:
    """Raise when ``labels`` and the ``known`` classes mix strings and numbers.

    numpy would unify them silently (``np.union1d([0, 1], ["a"])`` turns the
    numbers into the strings ``'0'``, ``'1'``), and the classes would no longer
    be the user's labels; scikit-learn's ``unique_labels`` refuses the mix too.
    """
    if len(_label_kinds(known) | _label_kinds(labels)) > 1:
        raise ValueError(
            "Mix of label types (strings and numbers): labels "
            f"{shown_labels(np.asarray(labels)[:5])!r} against classes "
            f"{shown_labels(np.asarray(known)[:5])!r}; use one type for all labels."
        )
    _check_lossless_union(np.asarray(known), np.asarray(labels))


def joint_labels(known, labels) -> tuple[np.ndarray, np.ndarray]:
    """``known`` and ``labels`` as arrays of one dtype where numpy would make two
    integer dtypes float64 (uint64 with a signed one): ``known``'s where every
    label fits in it, else ``labels``' where every known one does, else int64
    where both do (int8 classes with a negative one and a uint64 label of 300).
    Any other pair comes back as it was (numpy's own promotion holds both, or
    :func:`check_label_kinds` refuses it).

    ``np.union1d`` of int64 classes and uint64 labels made the classes floats
    (``predict`` returned 11.0 for 11), and a uint64 class above 2**63 refused
    every later int64 batch; int8 classes -1, 2 and a uint64 label 300 became
    floats too, and a uint64 label 2**62 + 1 beside them was refused."""
    known, labels = np.asarray(known), np.asarray(labels)
    if not (known.dtype.kind in "iu" and labels.dtype.kind in "iu"):
        return known, labels
    if np.result_type(known, labels).kind != "f":
        return known, labels
    both = (known, labels)
    for target, held in ((known.dtype, (labels,)), (labels.dtype, (known,)), (np.int64, both)):
        info = np.iinfo(target)  # (bounds compared as Python ints, exactly)
        if all(not a.size or (info.min <= int(a.min()) and int(a.max()) <= info.max) for a in held):
            return known.astype(target, copy=False), labels.astype(target, copy=False)
    return known, labels


def union_labels(known, labels) -> np.ndarray:
    """``np.union1d`` of two label arrays, in the dtype of :func:`joint_labels`."""
    return np.union1d(*joint_labels(known, labels))


def label_codes(classes, y) -> np.ndarray:
    """The positions of labels ``y`` (all among ``classes``) in sorted ``classes``."""
    return np.searchsorted(*joint_labels(classes, y))


def _check_lossless_union(known: np.ndarray, labels: np.ndarray) -> None:
    """Raise when numpy cannot put ``known`` and ``labels`` in one array without
    changing a label: uint64 labels above 2**63 and int64 ones both became
    float64, where distinct labels rounded to one class (and a class's rows
    were lost silently), a datetime beyond ``datetime64[ns]``'s range wrapped
    round, and datetimes with numbers raised numpy's own error. Each side must
    come back unchanged from the common dtype (then equal values there are
    equal labels, as 2 and 2.0, or one day in [D] and in [s])."""
    if known.dtype.kind == labels.dtype.kind and known.dtype.kind in "biufUS":
        return  # (the wider of the two holds both: checked on every partial_fit call)
    try:
        kinds = {known.dtype.kind, labels.dtype.kind}
        if "m" in kinds and kinds & set("biu"):
            # (numpy makes numbers durations: the classes 0, 1 became 0 and 1 days
            # beside a timedelta64 label, and the label 5 a class of 5 days; Python's
            # timedelta objects, as a report's y, compare as durations)
            raise TypeError("durations and numbers")
        known, labels = joint_labels(known, labels)
        common = np.result_type(known, labels)
    except (TypeError, ValueError) as exc:  # (numpy's DTypePromotionError is a TypeError)
        raise ValueError(
            f"Labels of dtype {labels.dtype} cannot be compared with classes of dtype "
            f"{known.dtype}; use one type for all labels."
        ) from exc
    with np.errstate(invalid="ignore", over="ignore"):
        lossless = all(np.array_equal(a.astype(common).astype(a.dtype), a) for a in (known, labels))
    if not lossless:
        raise ValueError(
            f"Labels of dtype {labels.dtype} and classes of dtype {known.dtype} cannot be "
            f"held in one array without changing them (numpy makes both {common}, which "
            "changes some of them); use one dtype for all labels."
        )


def refuse_sparse_labels(y) -> None:
    """Raise ``fit``'s TypeError for a sparse ``y`` (``np.asarray`` made one a 0-d
    object array, and the explanation helpers failed with "len() of unsized object")."""
    if sparse.issparse(y):
        raise TypeError(
            "Sparse data was passed for y, but dense data is required. Use '.toarray()' "
            "to convert to a dense numpy array."
        )


def label_array(y) -> np.ndarray:
    """``y`` as an array, a column vector ``(n, 1)`` ravelled (with scikit-learn's
    DataConversionWarning) as ``fit`` takes it; a multi-label indicator has several
    columns. (The explanation helpers and metrics read a column as an indicator.)
    A sparse ``y`` is refused (:func:`refuse_sparse_labels`)."""
    refuse_sparse_labels(y)
    y = np.asarray(y)
    if y.ndim == 0:  # (None or a scalar failed with "len() of unsized object")
        raise ValueError(
            f"y must be an array-like of labels, one per row, got {type(y.item()).__name__}."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    return y


def check_positive_int(value, name: str, *, minimum: int = 1) -> None:
    """Raise unless ``value`` is an int >= ``minimum`` (a bool is not one)."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f">= {minimum}"
        raise ValueError(f"{name} must be a {kind} int, got {value!r}.")


def check_non_negative_int(value, name: str) -> None:
    """Raise unless ``value`` is an int >= 0 (a bool is not one)."""
    check_positive_int(value, name, minimum=0)


def check_known_labels(classes, y) -> None:
    """Raise when single-label ``y`` holds labels that are not among ``classes``
    (or mixes strings and numbers with them): scores against ``y`` would count
    them as misses silently."""
    labels = np.unique(y)
    check_label_kinds(classes, labels)
    unknown = np.setdiff1d(labels, classes)
    if unknown.size:
        raise ValueError(f"y contains labels {shown_labels(unknown)!r} not in classes_.")


def check_same_classes(estimator, classes) -> None:
    """``classes`` passed to a later ``partial_fit`` must be ``classes_`` (or None)."""
    if classes is not None and not np.array_equal(np.unique(classes), estimator.classes_):
        raise ValueError(
            f"classes={np.unique(classes)!r} is not the same as classes_={estimator.classes_!r}."
        )


def new_labels(estimator, y, *, fixed: bool, classes=None) -> np.ndarray:
    """The labels of single-label ``y`` not in ``classes_``; an error if the classes are fixed.

    ``classes`` passed to this call (already checked equal to ``classes_``) fixes
    them for the call, as in scikit-learn: y may not go beyond the classes given.
    """
    found = np.unique(y)
    check_label_kinds(estimator.classes_, found)
    known, found = joint_labels(estimator.classes_, found)
    unknown = np.setdiff1d(found, known)
    if unknown.size and classes is not None:
        raise ValueError(
            f"y contains labels {shown_labels(unknown)!r} that are not in "
            f"classes={shown_labels(estimator.classes_)!r}."
        )
    if unknown.size and fixed:
        raise ValueError(
            f"y contains labels {shown_labels(unknown)!r} not in "
            f"classes_={shown_labels(estimator.classes_)!r}."
        )
    return unknown
