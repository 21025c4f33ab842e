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

Distributed *fitting* (tree-merged sufficient statistics of
``NearestMeanClassifier``) is planned (issue 13).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["ParallelPostFit"]

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
        """Fit a clone of ``estimator`` (dask inputs are computed first).

        Returns
        -------
        self
        """
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
