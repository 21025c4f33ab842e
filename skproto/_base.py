"""Shared base of every prototype classifier in skproto.

A prototype classifier here is described by three pieces, which subclasses
provide:

* ``_pairwise(X)``: the matrix that ``transform`` returns, one column per
  prototype (a similarity or a distance; ``_pairwise_name`` says which);
* ``_activation(P)``: the element-wise map from that matrix to what enters the
  class scores (identity for similarities, ``-d / (2 T)`` for distances, ...);
* ``_head()``: the class-connection weights ``W`` (n_prototypes, n_classes) and
  per-class bias ``b`` so that ``scores = _activation(P) @ W + b``;

and one output link, which turns scores into probabilities: the softmax
(single-label) or independent sigmoids (multi-label). From these the base
derives everything else: ``decision_function``, ``predict``,
``predict_proba``, ``predict_log_proba``, ``score_samples``, ``transform``
and the exact, faithful ``explain``. All of them work on row chunks of bounded
size, so a million rows against thousands of prototypes never materialise an
``n_samples x n_prototypes x n_features`` array.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logsumexp
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import InconsistentVersionWarning

from . import _validation
from ._chunking import chunk_slices
from .explain import Explanation

__all__ = ["BasePrototypeClassifier"]


def class_membership(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """The 0/1 (n_prototypes, n_classes) float64 matrix of each prototype's class.

    (``np.eye(n_classes)[codes]`` without the (n_classes, n_classes) identity.)
    """
    membership = np.zeros((len(codes), n_classes))
    membership[np.arange(len(codes)), codes] = 1.0
    return membership


def _sum_by_class(values: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per row, the sum of ``values`` (n_rows, n_prototypes) over each class's prototypes."""
    order = np.argsort(codes, kind="stable")
    present, starts = np.unique(codes[order], return_index=True)
    out = np.zeros((len(values), n_classes))
    if len(order):
        out[:, present] = np.add.reduceat(values[:, order], starts, axis=1)
    return out


def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _fits_float32(a: np.ndarray) -> bool:
    """Whether the finite values of ``a`` fit float32's range."""
    finite = np.abs(a[np.isfinite(a)])
    return not finite.size or float(finite.max()) <= _validation.FLOAT32_MAX


_PLAIN = frozenset({int, float, bool, type(None)})


def same_param(a, b) -> bool:
    """Whether two parameter values are the same (strings, arrays, dicts, objects)."""
    if a is b:
        return True
    if type(a) in _PLAIN and type(b) in _PLAIN:  # (np.ndim took 2 us per parameter, at
        return bool(a == b)  # every predict of an unpickled model, whose floats are copies)
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    try:
        if np.ndim(a) or np.ndim(b):
            return np.array_equal(np.asarray(a), np.asarray(b))
        return bool(a == b)
    except (TypeError, ValueError):  # values that do not compare: only the same object is
        return False


#: Parameters that only say how to run (threads, progress), not what was learnt:
#: a change takes effect at once, also for a fitted model.
_RUNTIME_PARAMS = frozenset({"n_jobs", "verbose"})


def as_fitted(method):
    """Run ``method`` on :meth:`BasePrototypeClassifier._as_fitted` (the fit's parameters)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return method(self._as_fitted(isolated=True), *args, **kwargs)

    return wrapper


def partial_fit_context(method):
    """scikit-learn's ``_fit_context`` for ``partial_fit``, validating the parameters
    at every call.

    scikit-learn validates only a stream's first call (for speed), so a
    ``set_params(temperature=-1)`` between calls trained on silently
    (ProtoClassifier: accuracy 0.0) where ``fit`` raised; a validation costs
    tens of microseconds against any call's work.
    """
    inner = _fit_context(prefer_skip_nested_validation=True)(method)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        return inner(self, *args, **kwargs)

    return wrapper


def unchanged_on_failure(method):
    """Run ``method`` (``fit``, ``partial_fit``...); if it raises anything, a
    ``KeyboardInterrupt`` included, put the estimator back as it was.

    A call that failed half-way left a model of two minds: a ``fit`` with a bad
    ``sample_weight`` replaced ``classes_`` but kept the old network (predict
    named the new labels), a ``partial_fit`` bringing a class grew
    ``classes_`` and then ``predict_proba`` failed for good, and an interrupted
    warm start kept one more epoch in ``history_`` than ``n_iter_`` counted.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with fitting(self):
            return method(self, *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def fitting(estimator) -> Iterator[None]:
    """A block that fits ``estimator``: if it raises, the estimator is put back as it
    was (:func:`unchanged_on_failure`); if it ends, the fitted state is new
    (``ParallelPostFit``'s cached copies are renewed). For fitting functions
    outside the class (``skproto.parallel``)."""
    saved = estimator._snapshot()
    try:
        with estimator._fit_context():
            yield
    except BaseException:
        estimator._restore(saved)
        raise
    estimator._fit_token = object()  # a new fitted state (ParallelPostFit's cache key)


class BasePrototypeClassifier(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClassifierMixin, BaseEstimator
):
    """Base class for prototype classifiers. Not meant to be used directly."""

    #: what ``transform`` returns, used to label explanations
    _pairwise_name = "similarity"
    #: whether a prototype's case is the training row it is (not a representative
    #: of a class mean): one whose row index becomes -1 loses its case
    _cases_are_rows = False
    #: what the per-class bias of the head means
    _bias_name = "bias"
    #: fitted attributes that an own-class head builds when they are read
    #: (:meth:`__getattr__`, :meth:`_membership_attribute`)
    _membership_attributes: tuple[str, ...] = ()

    # ---------------------------------------------------- fitted parameters
    def _remember_params(self) -> None:
        """Record the parameters the fitted state now follows (:meth:`_as_fitted`)."""
        self._fit_params = self.get_params(deep=False)

    def __getstate__(self):
        # the version that pickled it, as scikit-learn records its own (for its
        # estimators only: a skproto pickle recorded none, so one loaded by another
        # skproto version said nothing)
        return dict(super().__getstate__(), _skproto_version=_skproto_version())

    def __getattr__(self, name: str):
        # An own-class head keeps each prototype's class only (``_codes``); its dense
        # class connections, n_prototypes x n_classes, are built when read: kept,
        # they were 4 GB of float64 each at 10,000 classes of 5 prototypes
        # (not listed by dir(): scikit-learn's HTML repr, which reads every member,
        # would build them at each display)
        d = self.__dict__
        if name in type(self)._membership_attributes and "_codes" in d and "classes_" in d:
            return self._membership_attribute(name)
        # the lookup's own error again (available_if's names its cause: one raised
        # here would lose it)
        return object.__getattribute__(self, name)

    def _membership_attribute(self, name: str) -> np.ndarray:
        """The value of ``name`` (one of ``_membership_attributes``), not kept: the 0/1
        class membership of each prototype by default."""
        return class_membership(self._codes, len(self.classes_))

    def _drop_membership_attributes(self, own_class: bool) -> None:
        """Forget stored values of ``_membership_attributes`` where the fitted head
        (``own_class``) derives them: those of an earlier fit with another head, or
        of a model pickled when they were kept."""
        if own_class:
            for name in self._membership_attributes:
                self.__dict__.pop(name, None)

    def __setstate__(self, state):
        state = dict(state)
        pickled = state.pop("_skproto_version", None)  # (None: pickled before it was kept)
        if pickled is not None and pickled != _skproto_version():
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=f"{type(self).__name__} (skproto)",
                    current_sklearn_version=_skproto_version(),
                    original_sklearn_version=pickled,
                ),
                stacklevel=2,
            )
        super().__setstate__(state)
        if "classes_" not in self.__dict__:  # (not fitted: nothing to bring up to date)
            return
        if "_fit_params" not in self.__dict__:
            # pickled before fitted models kept their fit's parameters: such a model
            # predicted with the parameters it was pickled with, which are recorded
            # now (else a set_params after loading reached the fitted state: a
            # NearestMean metric read at predict time, a torch network rebuilt from
            # the new parameters when pickled again, or a failed load). Only those it
            # has: one pickled before a parameter existed has no attribute for it, and
            # get_params raised an AttributeError here (it loaded, and predicted, before)
            self._fit_params = {
                k: self.__dict__[k] for k in self._get_param_names() if k in self.__dict__
            }
        if "prototype_cases_" not in self.__dict__:
            # (a merged NearestMean model pickled before merge set it had none, an
            # AttributeError for a documented attribute: None, as after merge now)
            self.prototype_cases_ = None
        # (the fit's head: a set_params since then waits for the next fit)
        self._drop_membership_attributes(self._as_fitted()._contributions_are_own_class)

    def _as_fitted(self, *, isolated: bool = False):
        """``self``, or, after a ``set_params`` without a new fit, a view with the
        parameters of the last fit.

        scikit-learn's convention: a fitted estimator predicts from what it
        learnt until it is fitted again, whatever ``set_params`` changed in
        between (NearestMeanClassifier read ``metric`` at predict time and, set
        from "euclidean" to "cosine", scored 0.097 on digits; a torch
        estimator rebuilt its network from the new parameters when unpickled).
        A view (the same fitted state, its own parameters), so no other
        thread sees them change.

        ``isolated``: a view even where no parameter changed, taken from one
        copy of the attributes, for a call that reads the parameters while
        other threads may call ``set_params`` (every public method). ``self``
        was returned while the parameters were the fit's, and a ``set_params``
        in another thread then reached the call under way: a Mahalanobis
        model's ``predict_proba`` moved by 0.47 when another thread set
        ``metric="cosine"`` during it, without a refit.
        """
        state = dict(self.__dict__)  # (one copy: another thread may set_params meanwhile)
        params = state.get("_fit_params")
        if params is None:
            return self
        changed = {
            k: v
            for k, v in params.items()
            if k not in _RUNTIME_PARAMS and not same_param(state.get(k), v)
        }
        if not changed and not isolated:
            return self
        view = object.__new__(type(self))
        view.__dict__.update(state)
        view.__dict__.update(changed)
        # (what a view derives lazily is kept on the estimator, not on a view of a view)
        view.__dict__["_view_of"] = state.get("_view_of", self)
        return view

    # ---------------------------------------------------------------- hooks
    @abstractmethod
    def _pairwise(self, X: np.ndarray) -> np.ndarray:
        """Chunk of ``transform``: (n_rows, n_prototypes)."""

    @abstractmethod
    def _activation(self, P: np.ndarray) -> np.ndarray:
        """Element-wise map from ``_pairwise`` output to head input."""

    @abstractmethod
    def _head(self) -> tuple[np.ndarray, np.ndarray]:
        """Class-connection weights (n_prototypes, n_classes) and bias (n_classes,)."""

    def _scores_chunk(self, X: np.ndarray) -> np.ndarray:
        """Per-class scores of a chunk, (n_rows, n_classes)."""
        W, b = self._head()
        A = self._activation(self._pairwise(X))
        return A @ W.astype(A.dtype, copy=False) + b.astype(A.dtype, copy=False)

    def _shifted_scores_chunk(self, X: np.ndarray) -> np.ndarray:
        """Per-class scores up to a per-row constant (enough for argmax and softmax)."""
        return self._scores_chunk(X)

    def _link_scores_chunk(self, X: np.ndarray) -> np.ndarray:
        """What the output link turns into probabilities (a fresh, writable array).

        The shifted scores for the softmax; the exact scores (logits) for the
        sigmoid. An estimator whose probabilities are not a softmax of its
        scores returns here what they are a softmax of (``log p_c / T`` for
        ``RBFPrototypeClassifier``'s ``p_c^(1/T) / sum p^(1/T)``).
        """
        if self._link == "sigmoid":
            return self._scores_chunk(X)
        return self._shifted_scores_chunk(X)

    def _score_samples_chunk(self, X: np.ndarray) -> np.ndarray:
        """In-distribution score of a chunk, (n_rows,)."""
        return logsumexp(self._scores_chunk(X), axis=1)

    def _contribution_terms(self) -> dict:
        """The contributions as terms ``{name: (g, U)}``, for heads whose prototypes
        speak for several classes (where :meth:`_own_class_contributions` gives None).

        Prototype ``k``'s contribution to class ``c`` is the sum over the terms of
        ``g(A)[:, k] * U[k, c]`` (``g`` element-wise, ``U`` of shape
        (n_prototypes, n_classes)). Default ``{"": (identity, W)}``, the dense
        head ``A W``. Named terms are shown in ``Explanation.parts`` (the CBC
        head's ``"presence"`` and ``"absence"``). ``explain`` takes the listed
        prototypes' terms and the others' sum from the products ``g(A) @ U``, and
        never builds the (n_rows, n_prototypes, n_classes) array (element by
        element, a dense head of 300 classes took 44x the work of the products).
        """
        W, _ = self._head()
        return {"": (_identity, W)}

    def _contributions(self, A: np.ndarray) -> np.ndarray:
        """Contribution of every prototype to every class, (n_rows, n_prototypes, n_classes)."""
        sparse = self._own_class_contributions(A)
        if sparse is not None:
            own, codes = sparse
            full = np.zeros(own.shape + (len(self.classes_),), dtype=own.dtype)
            full[:, np.arange(len(codes)), codes] = own
            return full
        terms = self._contribution_terms().values()
        return sum(g(A)[:, :, None] * U[None].astype(A.dtype, copy=False) for g, U in terms)

    def _explained_contributions(
        self, A: np.ndarray, cols: np.ndarray, sparse: tuple | None = None
    ) -> np.ndarray:
        """Contribution of every prototype to class ``cols[i]`` of row ``i``, (n_rows, K).

        The column of :meth:`_contributions` each row's ``cols`` names, without
        building the (n_rows, n_prototypes, n_classes) array: the same
        element-wise products, so the same values. ``sparse``: the
        :meth:`_own_class_contributions` of ``A`` where the caller has them
        (a second pass of ProtoClassifier's mixture head otherwise).
        """
        if sparse is None:  # (None again where the head is not own-class: no cost)
            sparse = self._own_class_contributions(A)
        if sparse is not None:
            own, codes = sparse
            return np.where(codes[None, :] == cols[:, None], own, 0.0)
        terms = self._contribution_terms().values()
        return sum(g(A) * U[:, cols].T.astype(A.dtype, copy=False) for g, U in terms)

    #: Whether :meth:`_own_class_contributions` gives the contributions.
    _contributions_are_own_class = False

    def _own_class_contributions(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(own, codes)`` where each prototype speaks for its own class only, else None.

        ``own`` (n_rows, n_prototypes) is each prototype's contribution to the
        score of class ``codes[k]``, its only one. ``explain`` then never
        builds the (n_rows, n_prototypes, n_classes) array: with 1,000
        classes of 5 prototypes that is 5 million numbers per row.
        """
        return None

    def _activation_order(self, X: np.ndarray, A: np.ndarray) -> np.ndarray:
        """What ``explain`` ranks the prototypes of rows ``X`` by, most active
        first (and breaks ties in contribution by): the activations ``A``, or
        for activations that underflow (``exp`` of minus a distance) minus the
        distance, which orders them alike where they do not."""
        return A

    def _explain_bias(self) -> np.ndarray:
        """The per-class term of ``explain``: scores = contributions + this."""
        return self._head()[1]

    def _prototype_sample_indices(self) -> np.ndarray:
        """Training row each prototype stands for, -1 where none."""
        idx = getattr(self, "prototype_sample_indices_", None)
        if idx is None:
            return np.full(len(self.prototypes_), -1, dtype=np.intp)
        return np.asarray(idx, dtype=np.intp)

    def _keep_cases(
        self, X_raw, X, y, *, first_row: int | None = None, kept: np.ndarray | None = None
    ) -> None:
        """Set ``prototype_cases_`` from the raw cases ``X_raw`` was tagged with (if any).

        After ``fit`` (``first_row=None``) every prototype gets the case of the
        training row it is, or of its representative row (a class mean's most
        similar row of its class) among the rows ``kept`` (those of positive
        weight, :func:`~skproto._torch.estimator.counted_rows`; None: all). After
        ``partial_fit`` on a batch whose first row has global index ``first_row``,
        prototypes keep their cases and new ones that are rows of this batch get theirs.
        """
        from .explain._cases import cases_of

        cases = cases_of(X_raw)
        K = len(self.prototypes_)
        out = np.full(K, None, dtype=object)
        old = getattr(self, "prototype_cases_", None) if first_row is not None else None
        if old is not None:
            keep = min(K, len(old))
            out[:keep] = old[:keep]
            if self._cases_are_rows:  # a prototype trained off its row is no longer its case
                out[np.flatnonzero(self._prototype_sample_indices()[:keep] < 0)] = None
        if cases is not None:
            if first_row is None:
                rows = self._representative_rows(X, y, kept)
                for k in np.flatnonzero(rows >= 0):
                    out[k] = cases[rows[k]]
            else:
                rows = self._prototype_sample_indices() - first_row
                for k in np.flatnonzero((rows >= 0) & (rows < len(cases))):
                    if out[k] is None:
                        out[k] = cases[rows[k]]
        has_any = any(c is not None for c in out)
        self.prototype_cases_ = out if has_any else None
        if first_row is None:
            self._case_rows = rows if cases is not None else None

    def _representative_rows(self, X, y, kept: np.ndarray | None) -> np.ndarray:
        """:func:`~skproto.explain.prototype_rows` of the training rows ``kept`` (None:
        all), as rows of ``X``: a row of weight 0 is absent, as everywhere, and no
        representative (it was named the case of a mean it had no part in)."""
        from .explain._cases import prototype_rows

        if kept is None:
            return prototype_rows(self, X, y)
        own = np.array(self._prototype_sample_indices(), dtype=np.intp)  # (rows of X already)
        found = prototype_rows(self, X[kept], np.asarray(y)[kept])
        # (only the prototypes that are no row were searched among the kept rows: the
        # others' rows, of X, may lie beyond them, and indexed ``kept`` out of bounds)
        searched = (own < 0) & (found >= 0)
        own[searched] = kept[found[searched]]
        return own

    def _move_cases(self, positions: np.ndarray, n_prototypes: int) -> None:
        """Prototype ``k``'s case (and case row) goes to position ``positions[k]`` of
        ``n_prototypes``; the new positions have none (a new class sorted in between)."""
        for name, empty in [("prototype_cases_", None), ("_case_rows", -1)]:
            old = getattr(self, name, None)
            if old is None or len(old) != len(positions):
                continue
            moved = np.full(n_prototypes, empty, dtype=np.asarray(old).dtype)
            moved[positions] = old
            setattr(self, name, moved)

    def _impossible_classes(self) -> np.ndarray | None:
        """Classes no input can be predicted as (a class declared to ``partial_fit``
        whose rows have not arrived), where their scores do not say so by
        ``-inf``; ``explain`` names none of them as a runner-up. None: none."""
        return None

    def _fit_context(self) -> contextlib.AbstractContextManager:
        """The block every fit runs in (:func:`fitting`); torch estimators make the
        CPU torch's default device there, whatever the caller set."""
        return contextlib.nullcontext()

    def _snapshot(self) -> dict:
        """The attributes as :func:`unchanged_on_failure` restores them: the values
        a call changes in place are copied (the training history, appended to)."""
        saved = dict(self.__dict__)
        if "history_" in saved:  # (its lists; a deep copy per call grew with the stream)
            saved["history_"] = {
                k: list(v) if isinstance(v, list) else v for k, v in saved["history_"].items()
            }
        if "_factor_cache" in saved:  # (entries are added, never changed)
            saved["_factor_cache"] = dict(saved["_factor_cache"])
        return saved

    def _restore(self, saved: dict) -> None:
        """Put the attributes of :meth:`_snapshot` back."""
        self.__dict__.clear()
        self.__dict__.update(saved)

    def _prototype_inputs(self) -> np.ndarray | None:
        """Each prototype's position in the input space (n_prototypes, n_features), or None.

        ``prototypes_`` by default; an estimator whose prototypes live in a
        learned latent space returns their input rows, or None.
        """
        return self.prototypes_

    def _prototypes_are_directions(self) -> bool:
        """Whether a prototype stands for its direction only (any positive multiple
        of it scores the same), so a picture may place it at its rows' scale."""
        return False

    def _connection_strength(self) -> np.ndarray:
        """How strongly each prototype is connected to its classes, (n_prototypes,).

        The largest ``|W[k, c]|`` of the head by default (1 for an own-class
        head's 0/1 membership); ``metrics.global_size`` counts the prototypes
        whose strength is not negligible.
        """
        if self._contributions_are_own_class:  # (W's rows are one-hot: not built)
            return np.ones(len(self.prototypes_))
        return np.abs(self._head()[0]).max(axis=1)

    def _row_elements(self, n_features: int) -> int:
        """Entries one row needs in the largest work array of prediction."""
        return max(len(self.prototypes_), len(self.classes_), n_features)

    # ----------------------------------------------------------- output link
    @property
    def _link(self) -> str:
        """``"sigmoid"`` for a multi-label model, else ``"softmax"``."""
        return "sigmoid" if getattr(self, "_multilabel", False) else "softmax"

    def _decision_proba_chunk(self, X: np.ndarray) -> np.ndarray:
        """The probabilities ``predict`` and ``explain`` decide from: as
        ``predict_proba`` returns them, in ``X``'s dtype, so that probabilities
        that round to a tie there are tied for them too (float64 ones broke
        float32 ties: ``predict`` disagreed with ``predict_proba``, and
        ``explain`` with ``predict``)."""
        return self._proba_chunk(X).astype(X.dtype, copy=False)

    def _explained_codes(self, X: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """The class ``explain`` explains by default, per row of the chunk ``X``
        whose :meth:`_decision_proba_chunk` is ``proba``: the predicted class
        (the argmax of ``proba``), or for a multi-label model the label with
        the highest score (logit). Not the argmax of its sigmoids, which
        round to 1 (or 0) for several labels at once: the first of them was
        explained, with a margin of -11 to the runner-up scored above it.
        """
        if self._link == "sigmoid":
            return np.argmax(self._scores_chunk(X), axis=1)
        return np.argmax(proba, axis=1)

    def _proba_chunk(self, X: np.ndarray) -> np.ndarray:
        """Probabilities of a chunk (float64 for float64 scores): the output
        link applied, in place; :meth:`_decision_proba_chunk` decides from them."""
        P = self._link_scores_chunk(X)
        if self._link == "sigmoid":
            return expit(P, out=P)
        top = P.max(axis=1, keepdims=True)
        dead = top[:, 0] == -np.inf  # every class impossible: no information, uniform
        if dead.any():
            P[dead], top[dead] = 0.0, 0.0
        P -= top
        np.exp(P, out=P)
        total = P.sum(axis=1, keepdims=True)
        if np.isnan(total).any():  # pragma: no cover - a defect, never silent
            raise ValueError(f"{type(self).__name__} computed non-finite class scores.")
        P /= total
        return P

    # -------------------------------------------------------------- chunking
    def _map_chunks(
        self, fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, n_cols: int, dtype
    ) -> np.ndarray:
        """``fn`` over row chunks of ``X``, into an array of ``dtype``.

        A float32 output becomes float64 (for every row) if a chunk's values,
        computed in float64, do not fit float32's range, rather than
        overflowing to inf.
        """
        out = np.empty((X.shape[0], n_cols), dtype=dtype)
        for s in chunk_slices(X.shape[0], max(n_cols, self._row_elements(X.shape[1]))):
            res = fn(X[s])
            if out.dtype == np.float32 and res.dtype == np.float64 and not _fits_float32(res):
                # start again in float64, so no row depends on where chunks end
                return self._map_chunks(fn, X, n_cols, np.float64)
            out[s] = res
        return out

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self._map_chunks(self._scores_chunk, X, len(self.classes_), X.dtype)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self._map_chunks(self._proba_chunk, X, len(self.classes_), X.dtype)

    @property
    def _n_features_out(self) -> int:
        return len(self.prototypes_)

    def _validate_X_predict(self, X) -> np.ndarray:
        return _validation.validate_predict_data(self, X)

    # ---------------------------------------------------------- public API
    @as_fitted
    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Class scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Per-class scores (higher = more likely). For two classes of a
            single-label model, the score of ``classes_[1]`` minus that of
            ``classes_[0]``, as in scikit-learn. For a multi-label model the
            logit of every label.
        """
        X = self._validate_X_predict(X)
        S = self._scores(X)
        if S.shape[1] != 2 or self._link != "softmax":
            return S
        # (a row where both classes are impossible reads 0, as its uniform
        # probabilities and the prediction of classes_[0] do: -inf - -inf was NaN)
        return _binary_difference(S)

    @as_fitted
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict class labels: the class with the highest probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Predicted labels: the argmax of ``predict_proba`` (always, even
            where rounding makes probabilities tie), which is the argmax of
            ``decision_function`` except where two classes tie to within
            rounding. For a multi-label model, the indicator matrix
            ``predict_proba(X) > 0.5``.
        """
        X = self._validate_X_predict(X)
        out = self._predicted_codes(X)
        return out.astype(int) if self._link == "sigmoid" else self.classes_[out]

    def _predicted_codes(self, X: np.ndarray) -> np.ndarray:
        """``predict`` of validated ``X`` as class positions (multi-label: a 0/1 matrix)."""
        n_classes = len(self.classes_)
        multilabel = self._link == "sigmoid"
        out = np.empty((X.shape[0], n_classes) if multilabel else X.shape[0], dtype=np.intp)
        for s in chunk_slices(X.shape[0], max(n_classes, self._row_elements(X.shape[1]))):
            proba = self._decision_proba_chunk(X[s])
            out[s] = (proba > 0.5) if multilabel else np.argmax(proba, axis=1)
        return out

    @as_fitted
    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``: the softmax of the
            per-class scores (each estimator documents its scores), or for a
            multi-label model the sigmoid of each label's logit.
        """
        X = self._validate_X_predict(X)
        return self._proba(X)

    @as_fitted
    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log of :meth:`predict_proba`.

        Computed as the log of the probabilities, so that it orders classes
        exactly as :meth:`predict_proba` does and its ``exp`` is
        :meth:`predict_proba`. A probability of 0 gets ``log(tiny) - 1``, with ``tiny``
        the smallest (subnormal) float of its dtype: finite, below every positive
        probability's log, and ``exp`` of it rounds back to 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probability of each class, columns in the order of ``classes_``.
        """
        X = self._validate_X_predict(X)
        proba = self._proba(X)
        # (raising zeros to the smallest normal float, as scikit-learn's discriminant
        # analysis does, also raised subnormal probabilities: 3e-313 and 8e-314 both
        # read -708.4, a tie)
        floor = np.log(np.finfo(proba.dtype).smallest_subnormal) - 1.0
        out = np.full_like(proba, floor)
        np.log(proba, out=out, where=proba > 0)
        return out

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy of :meth:`predict` on ``X`` against ``y``, as scikit-learn's
        ``ClassifierMixin.score`` (subset accuracy for a multi-label model).

        Against datetime64 (timedelta64) classes, pandas Timestamps (Timedeltas)
        and Python dates (timedeltas) in ``y`` are read as dates (durations), as
        :func:`skproto.explain.make_report` reads them; a time-zone-aware one is
        refused (a ValueError, as ``fit`` refuses it): make it naive first.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            True labels (an indicator matrix for a multi-label model).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            The (weighted) share of rows predicted right.
        """
        y = _validation.scored_labels(y, getattr(self, "classes_", None))
        return super().score(X, y, sample_weight=sample_weight)

    @as_fitted
    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """In-distribution score (higher = more typical of the training data).

        By default ``logsumexp`` of the per-class scores; each estimator
        documents what the score means for its model. Use it to flag
        out-of-distribution inputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            The in-distribution score of each sample.
        """
        X = self._validate_X_predict(X)
        out = self._map_chunks(lambda x: self._score_samples_chunk(x)[:, None], X, 1, X.dtype)
        return out[:, 0]

    @as_fitted
    def transform(self, X: ArrayLike) -> np.ndarray:
        """Similarity or distance of each sample to every prototype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        P : ndarray of shape (n_samples, n_prototypes)
            Column ``k`` relates to ``prototypes_[k]``; each estimator documents
            whether this is a similarity or a distance. Same dtype as ``X``.
        """
        X = self._validate_X_predict(X)
        return self._map_chunks(self._pairwise, X, len(self.prototypes_), X.dtype)

    @as_fitted
    def explain(
        self,
        X: ArrayLike,
        n_prototypes: int = 3,
        *,
        rank_by: str = "contribution",
        target: ArrayLike | None = None,
    ) -> Explanation:
        """Explain each prediction by the prototypes that drive it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to explain.
        n_prototypes : int, default=3
            How many prototypes to list per sample. All others are summed in
            ``other_contribution``.
        rank_by : {"contribution", "activation"}, default="contribution"
            Which prototypes to list: those with the largest contribution (in
            magnitude) to the score of the predicted class, ties broken by
            activation (where each prototype speaks for its own class only,
            by the explained class's prototypes first); or the most active ones
            (the most similar, or the nearest), whatever they contribute.
        target : label or array-like of shape (n_samples,), default=None
            The class whose score is explained and ranked by: one label for
            every sample, or one per sample. Default: the prediction (for a
            multi-label model, the label with the highest score). E.g.
            ``target=explanation.runner_up`` explains the runner-up's score.
            Against datetime64 classes a pandas Timestamp finds its date; a
            time-zone-aware one is refused (a ValueError): make it naive first.

        Returns
        -------
        explanation : :class:`~skproto.Explanation`
            Faithful by construction: listed contributions plus
            ``other_contribution`` plus ``bias`` equal the per-class scores of
            :meth:`decision_function`.
        """
        _validation.check_positive_int(n_prototypes, "n_prototypes")
        if rank_by not in ("contribution", "activation"):
            raise ValueError(f"rank_by must be 'contribution' or 'activation', got {rank_by!r}.")
        X = self._validate_X_predict(X)
        K, C = len(self.prototypes_), len(self.classes_)
        m = min(int(n_prototypes), K)
        n = X.shape[0]
        wanted = None if target is None else self._target_columns(target, n)
        top = np.empty((n, m), dtype=np.intp)
        value = np.empty((n, m))  # float64, whatever X's dtype
        contrib = np.empty((n, m, C))
        other = np.empty((n, C))
        explained = np.empty(n, dtype=np.intp)
        best = np.empty(n, dtype=np.intp)  # the predicted class (highest probability)
        multilabel = self._link == "sigmoid"
        indicator = np.empty((n, C) if multilabel else (0, C), dtype=bool)
        bias = np.array(self._explain_bias(), dtype=np.float64)  # (a copy: the model's own array)
        parts = None
        terms = None if self._contributions_are_own_class else self._contribution_terms()
        # (no head builds the (rows, K, C) array here, but the (rows, m, C) listed block
        # is built: counted as K only, 200 listed prototypes of 200 classes took 1.5 GB)
        for s in chunk_slices(n, max(K, m * C, self._row_elements(X.shape[1]))):
            P = self._pairwise(X[s])
            A = self._activation(P)
            sparse = self._own_class_contributions(A)
            proba = self._decision_proba_chunk(X[s])  # (predict's decisions)
            best[s] = self._explained_codes(X[s], proba)
            explained[s] = best[s] if wanted is None else wanted[s]
            if multilabel:
                indicator[s] = proba > 0.5
            # most active first
            order = np.argsort(-self._activation_order(X[s], A), axis=1, kind="stable")
            if rank_by == "contribution":
                own = self._explained_contributions(A, explained[s], sparse)  # (rows, K)
                codes = None if sparse is None else sparse[1]
                order = contribution_order(order, own, codes, explained[s])
            order = order[:, :m]
            top[s] = order
            value[s] = np.take_along_axis(P, order, axis=1)
            if sparse is not None:  # each prototype speaks for its own class only
                listed = np.zeros(A.shape, dtype=bool)
                np.put_along_axis(listed, order, True, axis=1)
                own, codes = sparse
                block = np.zeros((len(A), m, C))
                rows = np.arange(len(A))[:, None]
                block[rows, np.arange(m)[None, :], codes[order]] = np.take_along_axis(
                    own, order, axis=1
                )
                contrib[s] = block
                other[s] = _sum_by_class(np.where(listed, 0.0, own), codes, C)
                continue
            # the listed prototypes' terms; the others' sum is the products' less theirs
            A_listed = np.take_along_axis(A, order, axis=1)
            blocks, total = {}, 0.0
            for name, (g, U) in terms.items():
                U = U.astype(A.dtype, copy=False)
                blocks[name] = g(A_listed)[:, :, None] * U[order]
                if m < K:
                    total = total + g(A) @ U
            contrib[s] = sum(blocks.values())
            # (every prototype listed: no other one, 0 as before, not the rounding
            # residue of the products less the listed terms)
            other[s] = total - contrib[s].sum(axis=1) if m < K else 0.0
            if any(terms):  # (named terms: shown in Explanation.parts)
                if parts is None:
                    parts = {name: np.empty((n, m, C)) for name in terms}
                for name, block in blocks.items():
                    parts[name][s] = block
        scores = contrib.sum(axis=1) + other + bias
        rows = np.arange(n)
        ranked = scores.copy()
        ranked[rows, explained] = -np.inf
        impossible = self._impossible_classes()
        if impossible is not None:  # (not a runner-up, whatever its score reads)
            ranked[:, impossible] = -np.inf
        runner = np.argmax(ranked, axis=1) if C > 1 else explained
        if C > 1:
            # every other class impossible, or scoring -inf (a stream declared [0, 1]
            # that has seen class 1 only): no rival, as with a single known class
            # (the argmax of -inf everywhere named such a class the runner-up; the
            # heads whose scores say so by -inf, NearestMeanClassifier's and the
            # mixture, still did)
            alone = ~(ranked > -np.inf).any(axis=1)
            runner = np.where(alone, explained, runner)
        margin = scores[rows, explained] - ranked[rows, runner]
        explanation = Explanation(
            classes=self.classes_.copy(),
            predicted=indicator.astype(int) if multilabel else self.classes_[best],
            explained=self.classes_[explained],
            runner_up=self.classes_[runner],
            margin=margin,
            ranked_by=rank_by,
            prototype_index=top,
            prototype_label=np.asarray(self.prototype_labels_)[top],
            prototype_sample_index=self._prototype_sample_indices()[top],
            value=value,
            value_name=self._pairwise_name,
            contribution=contrib,
            other_contribution=other,
            bias=bias,
            bias_name=self._bias_name,
            estimator_name=type(self).__name__,
            parts=parts,
            n_prototypes=K,
        )
        cases = getattr(self, "prototype_cases_", None)
        if cases is not None and len(cases) == K:
            rows = getattr(self, "_case_rows", None)
            rows = rows if rows is not None and len(rows) == K else None
            explanation = explanation.with_prototype_cases(cases, rows)
        return explanation

    def _target_columns(self, target, n: int) -> np.ndarray:
        """Columns of ``classes_`` of ``explain``'s ``target`` (one label, or one per row)."""
        # (one label as it is: cast to object, a datetime64 became a date, or for
        # nanoseconds an int, and found no class)
        labels = [target] * n if np.ndim(target) == 0 else np.asarray(target)
        if np.ndim(labels) != 1 or len(labels) != n:
            raise ValueError(
                f"target must be one label or one label per sample ({n}), "
                f"got shape {np.shape(target)}."
            )
        classes = list(self.classes_)
        # datetime64 and timedelta64 classes are found by their value in their unit:
        # .item() made [ns] ones ints and others dates or timedeltas, which a target
        # of another unit, or a pandas.Timestamp or Timedelta, never equalled
        dtype = self.classes_.dtype
        times = dtype.kind in "mM"
        numpy_type, python_type = (
            (np.datetime64, datetime.date)
            if dtype.kind == "M"
            else (np.timedelta64, datetime.timedelta)
        )

        def key_of(value):
            if not times:
                return value.item() if hasattr(value, "item") else value
            scalar = value[()] if isinstance(value, np.ndarray) else value  # (a 0-d array)
            # (pandas' to_numpy made an aware Timestamp its UTC date, silently)
            _validation.refuse_time_zone(scalar, dtype, "target")
            if hasattr(scalar, "to_numpy"):  # pandas' Timestamp or Timedelta
                scalar = scalar.to_numpy()
            elif isinstance(scalar, python_type):  # (as tolist() gives the classes: a
                scalar = numpy_type(scalar)  # date was the key of a [D] class before)
            if not isinstance(scalar, numpy_type):
                return scalar
            return _validation.in_time_unit(scalar, dtype)  # (05:00 finds no day's class)

        lookup = {key_of(c): j for j, c in enumerate(classes)}
        cols = np.empty(n, dtype=np.intp)
        for i, label in enumerate(labels):
            key = key_of(label)
            if key not in lookup:
                shown = classes if times else self.classes_.tolist()
                raise ValueError(
                    f"target has label {key!r}, which is not one of the classes "
                    f"seen in fit: {shown!r}."
                )
            cols[i] = lookup[key]
        return cols

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def contribution_order(
    order: np.ndarray, own: np.ndarray, codes: np.ndarray | None, explained: np.ndarray
) -> np.ndarray:
    """``explain``'s ranking by contribution: the prototypes ``order`` (rows, K; most
    active first) by the magnitude of their contributions ``own`` (rows, K) to the
    ``explained`` class of each row, largest first; ties in activation order.

    Where each prototype speaks for its own class only (``codes``, the class of
    each), ties put the explained class's prototypes first: with one prototype per
    class, a row whose similarity to every prototype is 0 (a zero row under the
    cosine, one far from all under "rbf") gave every prototype a contribution of 0,
    and ``explain`` named a prototype of another class than the one it explains.
    """
    if codes is not None:
        other = codes[order] != explained[:, None]
        order = np.take_along_axis(order, np.argsort(other, axis=1, kind="stable"), axis=1)
    key = -np.abs(np.take_along_axis(own, order, axis=1))
    return np.take_along_axis(order, np.argsort(key, axis=1, kind="stable"), axis=1)


def underflow_order(A: np.ndarray, key: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The activations ``A`` (rows, prototypes), ``exp`` of minus a distance, with
    the rows that hold a 0 (underflowed) replaced by ``key(rows)`` (those rows'
    minus distances, which order their prototypes alike): the ``_activation_order``
    of such activations, computed again only where it is needed."""
    rows = ~A.all(axis=1)
    if not rows.any():
        return A
    out = np.array(A, dtype=np.float64)
    out[rows] = key(rows)
    return out


def _binary_difference(S: np.ndarray) -> np.ndarray:
    """``S[:, 1] - S[:, 0]``, 0 where both are the same infinity (impossible classes)."""
    same = S[:, 0] == S[:, 1]
    with np.errstate(invalid="ignore"):
        d = S[:, 1] - S[:, 0]
    d[same] = 0.0
    return d


def _skproto_version() -> str:
    """skproto's version (read at the call: ``skproto`` imports this module)."""
    from . import __version__

    return __version__
