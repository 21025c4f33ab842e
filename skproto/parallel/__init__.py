"""Prediction on dask arrays: lazy, row-blocked, exact (needs ``skproto[dask]``).

Every skproto prediction is row-local, so a fitted estimator predicts a dask
array block by block, lazily, with the same numbers as in memory.
:class:`ParallelPostFit` wraps any fitted (or unfitted) skproto estimator:
``fit`` delegates (a dask array is computed first), and ``predict``,
``predict_proba``, ``predict_log_proba``, ``decision_function``,
``score_samples`` and ``transform`` return dask arrays with the right chunks
and meta when given one (numpy in, numpy out). Unlike dask-ml's
``ParallelPostFit``, ``decision_function``, ``score_samples`` and ``transform``
are covered, and ``explain`` works on a selection of rows.

:func:`fit_nearest_mean` fits a :class:`~skproto.NearestMeanClassifier` on
dask arrays on the workers: each block's sufficient statistics are computed
where the block lives and merged in a tree, then each block's held-out rows
are scored for the temperature; the result equals ``fit`` on the same data in
memory (means, covariances, temperature), whatever the chunking.
``ParallelPostFit(NearestMeanClassifier()).fit`` uses it on dask input.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["ParallelPostFit", "fit_nearest_mean"]

_METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score_samples",
    "transform",
)


def _is_dask(X) -> bool:
    return type(X).__module__.startswith("dask.") and hasattr(X, "map_blocks")


def _dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("skproto.parallel needs dask: pip install 'skproto[dask]'.") from exc
    return da


def _tree(items: list, combine, fan_in: int = 8):
    """Reduce delayed ``items`` with ``combine`` (a delayed function of a list) in a tree."""
    while len(items) > 1:
        items = [combine(items[i : i + fan_in]) for i in range(0, len(items), fan_in)]
    return items[0]


def _merge_pairs(parts: list):
    """Merge a list of ``(stats, rest)`` pairs (``rest`` may be None)."""
    stats, rest = parts[0]
    for s, r in parts[1:]:
        stats = stats.merge(s)
        rest = None if rest is None else rest.merge(r)
    return stats, rest


def _sum_losses(parts: list):
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _block_codes(estimator, X, y, w):
    """Validate one block (as ``fit`` would) and encode its labels."""
    from .. import _validation

    probe = clone(estimator)
    X, y = _validation.validate_fit_data(probe, X, y, reset=True)
    w = _validation.validate_sample_weight(w, X)
    codes = np.searchsorted(estimator.classes_, y)
    return X, codes, w


def _block_stats(estimator, X, y, w):
    X, codes, w = _block_codes(estimator, X, y, w)
    return estimator._block_statistics(X, codes, w)


def _block_losses(estimator, merged, model, X, y, w):
    X, codes, w = _block_codes(estimator, X, y, w)
    stats, rest = merged
    return estimator._held_out_losses(stats, rest, X, codes, w, model=model)


def fit_nearest_mean(estimator, X, y, sample_weight=None):
    """Fit a NearestMeanClassifier on dask arrays, on the workers, exactly.

    Two passes over the blocks: per-block sufficient statistics (class
    counts, means and scatter, in float64), merged in a tree; then, for
    ``temperature="auto"``, the held-out rows of each block scored by the
    model of the other rows' merged statistics. The result equals
    ``estimator.fit(X, y, sample_weight)`` in memory to float tolerance, for
    every metric and covariance setting, any chunking (one-row chunks,
    chunks with one class or with no rows of some class), with sample weights.

    Parameters
    ----------
    estimator : NearestMeanClassifier
        Fitted in place (its parameters are used as they are).
    X : dask array of shape (n_samples, n_features)
    y : dask array or ndarray of shape (n_samples,)
    sample_weight : dask array or ndarray of shape (n_samples,), default=None

    Returns
    -------
    estimator : the fitted estimator

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
    import dask

    da = _dask_array()
    from ..nearest_mean import NearestMeanClassifier

    if not isinstance(estimator, NearestMeanClassifier):
        raise ValueError(
            f"fit_nearest_mean fits a NearestMeanClassifier, got {type(estimator).__name__}."
        )
    X = X if _is_dask(X) else da.from_array(np.asarray(X), chunks=(max(1, len(X)), -1))
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions.")
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    rows = X.chunks[0]

    def aligned(a, name):
        if a is None:
            return [None] * len(rows)
        a = a if _is_dask(a) else da.from_array(np.asarray(a), chunks=-1)
        if a.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows for {X.shape[0]} samples.")
        return list(a.rechunk((rows,)).to_delayed().ravel())

    ys, ws = aligned(y, "y"), aligned(sample_weight, "sample_weight")
    xs = list(X.to_delayed().ravel())
    labels = np.unique(np.concatenate(dask.compute(*[dask.delayed(np.unique)(b) for b in ys])))
    estimator._begin_fit(labels)
    estimator.n_features_in_ = X.shape[1]
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    stats = [dask.delayed(_block_stats)(estimator, xb, yb, wb) for xb, yb, wb in zip(xs, ys, ws)]
    merged = dask.compute(_tree(stats, dask.delayed(_merge_pairs)))[0]
    model = None
    if merged[1] is not None and merged[1].count.sum() > 0:
        model = estimator._derive(merged[1], 1.0)
    pieces = [
        dask.delayed(_block_losses)(estimator, merged, model, xb, yb, wb)
        for xb, yb, wb in zip(xs, ys, ws)
    ]
    losses = dask.compute(_tree(pieces, dask.delayed(_sum_losses)))[0]
    estimator._finish_fit(merged[0], losses)
    estimator.prototype_cases_ = None
    return estimator


class ParallelPostFit(MetaEstimatorMixin, BaseEstimator):
    """Predict with a skproto estimator on dask arrays, block by block.

    Parameters
    ----------
    estimator : skproto estimator
        Fitted or not; :meth:`fit` fits a clone.

    Attributes
    ----------
    estimator_ : the fitted estimator (``estimator`` itself when it was
        already fitted and :meth:`fit` was not called)
    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.parallel import ParallelPostFit
    >>> X, y = load_iris(return_X_y=True)
    >>> model = ParallelPostFit(NearestMeanClassifier()).fit(X, y)
    >>> lazy = model.predict_proba(da.from_array(X, chunks=50))
    >>> lazy.chunks
    ((50, 50, 50), (3,))
    >>> bool((lazy.compute() == model.predict_proba(X)).all())
    True
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator``.

        A NearestMeanClassifier on dask input is fitted on the workers
        (:func:`fit_nearest_mean`); other estimators compute dask inputs first.

        Returns
        -------
        self
        """
        from ..nearest_mean import NearestMeanClassifier

        if _is_dask(X) and isinstance(self.estimator, NearestMeanClassifier):
            self.estimator_ = fit_nearest_mean(clone(self.estimator), X, y, **fit_params)
            self.classes_ = self.estimator_.classes_
            return self
        if _is_dask(X):
            X = X.compute()
        if _is_dask(y):
            y = y.compute()
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def _fitted(self):
        est = getattr(self, "estimator_", None)
        if est is None:
            check_is_fitted(self.estimator)
            est = self.estimator
        return est

    def _width(self, est, method: str) -> int | None:
        """Output columns of ``method`` (None: one value per row)."""
        if method in ("predict", "score_samples"):
            return None
        if method == "transform":
            return len(est.prototypes_)
        if method == "decision_function" and len(est.classes_) == 2:
            return None
        return len(est.classes_)

    def _apply(self, method: str, X):
        est = self._fitted()
        if not _is_dask(X):
            return getattr(est, method)(X)
        da = _dask_array()
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions.")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})  # whole rows in each block
        width = self._width(est, method)
        fn = getattr(est, method)
        # the output's dtype, from one zero row (computes nothing of X)
        probe = np.asarray(fn(np.zeros((1, X.shape[1]), dtype=X.dtype)))
        if width is None:
            return da.map_blocks(fn, X, drop_axis=1, dtype=probe.dtype, meta=probe[:0])
        chunks = (X.chunks[0], (width,))
        return da.map_blocks(fn, X, chunks=chunks, dtype=probe.dtype, meta=probe[:0])

    def predict(self, X):
        """``estimator_.predict``, lazily on a dask array (one label per row)."""
        return self._apply("predict", X)

    def predict_proba(self, X):
        """``estimator_.predict_proba``, lazily on a dask array."""
        return self._apply("predict_proba", X)

    def predict_log_proba(self, X):
        """``estimator_.predict_log_proba``, lazily on a dask array."""
        return self._apply("predict_log_proba", X)

    def decision_function(self, X):
        """``estimator_.decision_function``, lazily on a dask array."""
        return self._apply("decision_function", X)

    def score_samples(self, X):
        """``estimator_.score_samples``, lazily on a dask array."""
        return self._apply("score_samples", X)

    def transform(self, X):
        """``estimator_.transform``, lazily on a dask array."""
        return self._apply("transform", X)

    def explain(self, X, rows=None, **kwargs):
        """``estimator_.explain`` of the selected ``rows`` of ``X`` (computed; all if None)."""
        if rows is not None:
            X = X[np.asarray(rows)]
        if _is_dask(X):
            X = X.compute()
        return self._fitted().explain(X, **kwargs)

    def score(self, X, y):
        """Mean accuracy (dask inputs computed blockwise)."""
        pred = self.predict(X)
        if _is_dask(pred):
            pred = pred.compute()
        if _is_dask(y):
            y = y.compute()
        return float(np.mean(pred == np.asarray(y)))
