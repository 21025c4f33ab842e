"""Exact distributed fit of NearestMeanClassifier: block statistics merged in a tree."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import numpy as np
from sklearn.base import clone

from .. import _progress
from .._base import fitting
from ..nearest_mean._estimator import NearestMeanClassifier, _merge_blocks, check_total_weight
from ._common import (
    aligned,
    as_row_blocks,
    column_names,
    labels_of,
    raveled_column,
    refuse_sparse_blocks,
    tree,
)


def _block_codes(estimator, X, y, w):
    """Validate one block (as ``fit`` would) and encode its labels.

    The rows' spread is checked once over all blocks (:func:`_spread_of`),
    as ``fit`` checks it over all rows (per block, the result depended on
    the chunking).
    """
    from .. import _validation

    probe = clone(estimator)
    X, y = _validation.validate_fit_data(probe, X, y, reset=True, min_spread=None)
    if X.shape[1] != estimator.n_features_in_:  # (a block unlike the array's declared shape)
        raise ValueError(
            f"X has {X.shape[1]} features in a block, but {type(estimator).__name__} is "
            f"fitting {estimator.n_features_in_} features (the dask array's width)."
        )
    w = _validation.validate_sample_weight(w, X, allow_all_zero=True)  # checked once merged
    codes = np.searchsorted(estimator.classes_, y)
    return X, codes, w


def _block_view(estimator):
    """What each block's statistics read of ``estimator``: its parameters and this
    fit's classes, width, statistics' layout and held-out stride.

    Not the estimator itself: refitted, it carries its earlier model (about
    1.2 MB at 1,000 classes of 384 features), which every block's task
    carried to the workers (a 40-block refit sent a 22 MB graph).
    """
    view = clone(estimator)
    for name in ("classes_", "n_features_in_", "_layout", "_score_stride"):
        setattr(view, name, getattr(estimator, name))
    return view


def _block_stats(estimator, X, y, w):
    """``(statistics, held-out rows, (min, max) of each feature or None)`` of one block."""
    if not len(X):  # (a filtered frame's empty partition: validation refuses 0 rows)
        n_features = np.shape(X)[1]
        empty = np.empty((0, n_features)), np.empty(0, dtype=np.intp), np.empty(0)
        rest, held = estimator._block_statistics(*empty)
        return rest, held, None
    X, codes, w = _block_codes(estimator, X, y, w)
    rest, held = estimator._block_statistics(X, codes, w)
    return rest, held, (X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64))


def _merge_parts(parts: list) -> tuple:
    """:func:`_merge_blocks` of the statistics, and the features' overall min and max."""
    merged = _merge_blocks([part[:2] for part in parts])
    ranges = [part[2] for part in parts if part[2] is not None]
    extent = None
    if ranges:
        extent = (np.min([r[0] for r in ranges], axis=0), np.max([r[1] for r in ranges], axis=0))
    return (*merged, extent)


def fit_nearest_mean(
    estimator: NearestMeanClassifier, X: Any, y: Any, sample_weight: Any = None
) -> NearestMeanClassifier:
    """Fit a NearestMeanClassifier on dask arrays, on the workers, exactly.

    One pass over the blocks: per-block sufficient statistics (class counts,
    means and scatter, in float64) and, for ``temperature="auto"``, the
    block's sample of held-out rows (at most about ``max(2000, 5e6 / n_classes)``
    over all blocks),
    merged in a tree; the held-out rows are then scored once by the model of
    the other rows' merged statistics. The result equals
    ``estimator.fit(X, y, sample_weight)`` in memory to float tolerance, for
    every metric and covariance setting, any chunking (one-row chunks,
    chunks with one class or with no rows of some class, unknown block
    lengths), with sample weights.

    Parameters
    ----------
    estimator : NearestMeanClassifier
        Fitted in place (its parameters are used as they are).
    X : dask array or dask DataFrame of shape (n_samples, n_features)
        Training rows.
    y : dask array, dask Series or ndarray of shape (n_samples,)
        One label per row.
    sample_weight : dask array or ndarray of shape (n_samples,), default=None
        Sample weights; None weighs rows equally.

    Returns
    -------
    estimator : NearestMeanClassifier
        ``estimator``, fitted.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.parallel import fit_nearest_mean
    >>> X, y = load_iris(return_X_y=True)
    >>> lazy = fit_nearest_mean(NearestMeanClassifier(), da.from_array(X, chunks=40), y)
    >>> bool(np.allclose(lazy.prototypes_, NearestMeanClassifier().fit(X, y).prototypes_))
    True
    """
    if not isinstance(estimator, NearestMeanClassifier):
        raise ValueError(
            f"fit_nearest_mean fits a NearestMeanClassifier, got {type(estimator).__name__}."
        )
    with fitting(estimator), _progress.reporting(type(estimator).__name__, estimator.verbose):
        return _fit_nearest_mean(estimator, X, y, sample_weight)


def _fit_nearest_mean(estimator, X, y, sample_weight):
    """The body of :func:`fit_nearest_mean`."""
    import dask

    from .. import _validation

    estimator._validate_params()  # as fit does
    names = column_names(X)
    X = as_row_blocks(X)
    refuse_sparse_blocks(X, estimator)
    if not X.shape[0]:  # (as fit; the label checks below indexed an empty array)
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
            f"required by {type(estimator).__name__}."
        )
    y = raveled_column(aligned(y, X, "y"))
    if y.ndim != 1:  # (as fit says it, with the whole y's shape: a block's was named)
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    xs, ys = list(X.to_delayed().ravel()), list(y.to_delayed().ravel())
    ws = [None] * len(xs)
    if sample_weight is not None:
        ws = list(aligned(sample_weight, X, "sample_weight", broadcast=True).to_delayed().ravel())
    estimator._begin_fit(labels_of(y), X.shape[0])
    estimator.n_features_in_ = X.shape[1]
    if names is not None:
        estimator.feature_names_in_ = names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    # what the blocks read of the estimator travels to the workers once, as one task's result
    view = dask.delayed(
        _block_view(estimator), name=f"skproto-nearest-mean-{uuid4().hex}", traverse=False
    )
    stats = [dask.delayed(_block_stats)(view, xb, yb, wb) for xb, yb, wb in zip(xs, ys, ws)]
    rest, held, extent = dask.compute(tree(stats, dask.delayed(_merge_parts)))[0]
    report = _progress.current()
    if report:
        report.line(f"statistics of {len(stats)} blocks, merged")
    if extent is None:
        raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
    _validation.check_range_spread(extent[1] - extent[0], estimator, _validation.MIN_SPREAD, "")
    check_total_weight(rest.count, 0.0 if held is None else held[2])
    if not rest.count.sum() + (0.0 if held is None else held[2].sum()) > 0:
        # each block may weigh nothing (allow_all_zero), not all of them
        raise ValueError("Sample weights must contain at least one non-zero number.")
    estimator._end_fit(rest, held)
    estimator._abs_bound = float(np.max(np.abs(extent)))  # (as fit: bounds a later partial_fit)
    estimator.prototype_cases_ = None
    return estimator
