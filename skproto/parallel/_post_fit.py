"""ParallelPostFit: a fitted skproto estimator predicting dask arrays block by block."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._base import BasePrototypeClassifier
from .._chunking import is_dask, take_rows
from .._validation import scored_labels, warn_user
from ..explain._explanation import Explanation
from ..explain._steps import unpipe
from ._common import as_row_blocks, column_dtypes, column_names, dask_array, is_dask_frame
from ._nearest_mean import fit_nearest_mean
from ._streaming import fit_streaming

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.utils.metadata_routing import MetadataRouter


def _mixed(rows, dtypes) -> bool:
    """Whether ``rows`` are one object array of a dask DataFrame's columns (``dtypes``)."""
    return dtypes is not None and rows.dtype == object


def _as_frame(rows, names, dtypes=None):
    """``rows`` as a pandas frame of the columns ``names`` (None: unnamed), each
    column of its dtype in ``dtypes`` (the dask DataFrame's) where ``rows`` is one
    object array: a frame mixing strings (or booleans) and float32 numbers came
    back as object columns, or as an object array, and its numbers were computed
    in float64, not in float32 as in memory."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=names)
    if _mixed(rows, dtypes):
        frame = frame.astype(dict(zip(frame.columns, dtypes)))
    return frame


def _call(block, est, method, names, dtype=None, empty=None, dtypes=None):
    """``est.<method>`` of one block (as a frame with the fitted column names, if
    any, and the columns' ``dtypes``), as ``dtype`` when given (the dtype
    declared for every block); ``empty`` for a block without rows (a filtered
    frame's partition), which the estimator's validation refuses."""
    if empty is not None and not len(block):
        return empty
    if names is not None or _mixed(block, dtypes):
        block = _as_frame(block, names, dtypes)
    out = getattr(est, method)(block)
    return out if dtype is None else np.asarray(out, dtype=dtype)


def _routing_enabled() -> bool:
    from sklearn import get_config

    return bool(get_config().get("enable_metadata_routing", False))


def _row_indices(rows, n: int) -> np.ndarray:
    """Integer positions of ``rows``: indices, a boolean mask of ``n`` entries, or a slice.

    (A mask of a dask ``X`` was read as the indices 0 and 1: 150 rows
    explained instead of the 3 selected.)
    """
    if isinstance(rows, slice):
        return np.arange(n)[rows]
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise ValueError(
                f"A boolean rows mask needs one entry per row of X ({n}), got shape {rows.shape}."
            )
        return np.flatnonzero(rows)
    if rows.size and not np.issubdtype(rows.dtype, np.integer):  # ([1.7] read as row 1)
        raise ValueError(
            "rows must be integer positions, a boolean mask or a slice, got values of "
            f"dtype {rows.dtype}."
        )
    if rows.ndim > 1:  # (failed inside numpy or dask)
        raise ValueError(f"rows must be 1-D positions, got shape {rows.shape}.")
    if rows.size and not (rows.min() >= -n and rows.max() < n):  # (numpy's or dask's
        # IndexError)
        raise ValueError(
            f"rows must be positions in [-{n}, {n}) of X's {n} rows; got positions from "
            f"{rows.min()} to {rows.max()}."
        )
    return rows.astype(np.intp).reshape(-1)  # (one position: that row, as a 1-row X)


def _estimator_has(method: str):
    """Whether the (fitted, else given) estimator, or a Pipeline's last step for
    ``explain``, has ``method``: the wrapper offers only what its estimator does,
    as scikit-learn's wrappers do (with all of them, StackingClassifier and
    CalibratedClassifierCV chose predict_proba or decision_function of a
    LinearSVC or a KNeighborsClassifier, which has none, and failed)."""

    def check(self) -> bool:
        est = self.__dict__.get("estimator_", self.estimator)
        if method == "explain":
            est = est[-1] if hasattr(est, "steps") else est
        return hasattr(est, method)

    return check


class ParallelPostFit(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Predict with a skproto estimator on dask arrays, block by block.

    Parameters
    ----------
    estimator : classifier
        A skproto classifier or a Pipeline ending in one (any scikit-learn
        classifier predicts too, without ``explain``; a multi-output one, whose
        ``classes_`` is a list, only ``predict``); fitted or not: :meth:`fit`
        fits a clone.

    Attributes
    ----------
    estimator_ : estimator
        The fitted estimator (``estimator`` itself when it was already fitted
        and :meth:`fit` was not called).
    classes_ : ndarray of shape (n_classes,)
        Class labels of the fitted estimator.

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

    _parameter_constraints: dict = {"estimator": [HasMethods(["fit", "predict"])]}

    def __init__(self, estimator: BaseEstimator) -> None:
        self.estimator = estimator

    def __getattr__(self, name: str) -> Any:
        # wrapping an already fitted estimator: it is estimator_, with its classes_;
        # the fitted estimator's input attributes are this wrapper's
        if name in ("estimator_", "classes_", "n_features_in_", "feature_names_in_"):
            estimator = self.__dict__.get("estimator_")
            if estimator is None:
                estimator = self.__dict__.get("estimator")
                try:
                    check_is_fitted(estimator)
                except (NotFittedError, TypeError):
                    estimator = None
            if estimator is not None:
                if name == "estimator_":
                    return estimator
                if hasattr(estimator, name):
                    return getattr(estimator, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __sklearn_is_fitted__(self) -> bool:
        # fitted by fit, or wrapping a fitted estimator (check_is_fitted, displays
        # and FrozenEstimator treated a fitted wrapped model as unfitted)
        try:
            self._fitted()
        except (NotFittedError, TypeError):
            return False
        return True

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        if inner.classifier_tags is not None and tags.classifier_tags is not None:
            tags.classifier_tags.multi_label = inner.classifier_tags.multi_label
        tags.input_tags = inner.input_tags
        tags.transformer_tags = inner.transformer_tags
        return tags

    def fit(self, X: Any, y: Any, **fit_params: Any) -> ParallelPostFit:
        """Fit a clone of ``estimator``; on dask input, out of core on the workers
        for NearestMeanClassifier, ProtoClassifier and RBFPrototypeClassifier.

        A NearestMeanClassifier is fitted exactly by :func:`fit_nearest_mean`;
        ProtoClassifier and RBFPrototypeClassifier train on streamed blocks
        (:func:`fit_streaming`). Numpy input is fitted in memory, and so is
        dask input for any other estimator (a Pipeline included): its ``X`` and
        ``y`` are computed whole first.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Training rows.
        y : array-like, dask array or dask Series of shape (n_samples,) or (n_samples, n_classes)
            Labels (an indicator matrix for a multi-label estimator).
        **fit_params : dict
            Passed to the estimator's ``fit`` (e.g. ``sample_weight``); with
            metadata routing enabled, those the estimator requested.

        Returns
        -------
        self : ParallelPostFit
            The fitted wrapper.
        """
        from .._torch.estimator import TorchPrototypeClassifier
        from ..nearest_mean import NearestMeanClassifier

        self._validate_params()  # (ParallelPostFit("x") raised clone's TypeError)
        if _routing_enabled():  # the parameters the estimator asked for (set_fit_request)
            from sklearn.utils.metadata_routing import process_routing

            fit_params = process_routing(self, "fit", **fit_params).estimator.fit
        lazy = is_dask(X) or is_dask_frame(X)
        if lazy and isinstance(self.estimator, NearestMeanClassifier):
            self.estimator_ = fit_nearest_mean(clone(self.estimator), X, y, **fit_params)
        elif lazy and isinstance(self.estimator, TorchPrototypeClassifier):
            self.estimator_ = fit_streaming(clone(self.estimator), X, y, **fit_params)
        else:
            if lazy:
                X = X.compute()
            if is_dask(y) or is_dask_frame(y):
                y = y.compute()
            self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def get_metadata_routing(self) -> MetadataRouter:
        """scikit-learn's metadata routing: ``fit``'s parameters go to the
        estimator's ``fit`` as it requested them; ``score`` takes ``sample_weight``.

        Returns
        -------
        routing : MetadataRouter
            The routing of this wrapper and of its ``estimator``.
        """
        from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping

        fit = MethodMapping().add(caller="fit", callee="fit")
        router = MetadataRouter(owner=type(self).__name__).add_self_request(self)
        return router.add(estimator=self.estimator, method_mapping=fit)

    def _fitted(self):
        est = getattr(self, "estimator_", None)
        if est is None:
            self._validate_params()
            check_is_fitted(self.estimator)
            est = self.estimator
        return est

    @staticmethod
    def _layout(est, method: str) -> tuple[int | None, np.dtype]:
        """``(columns, dtype)`` of ``method``'s output (columns None: one value per row).

        Known without computing anything. (The dtype was read from a prediction
        of one row of zeros, which not every pipeline takes: a OneHotEncoder
        refused the unknown category 0.) Scores and probabilities come back in
        float64 for every block: float32 rows are computed in float32 only where
        a block's values allow it (else in float64, as in memory for all of X),
        so none is rounded to inf.
        """
        est = unpipe(est, None)[0]  # (a Pipeline's last step predicts)
        while hasattr(est, "best_estimator_"):  # a fitted search predicts with its best
            # estimator (a multi-label one's labels were declared one per row: "could
            # not broadcast input array from shape (20,3) into shape (20,)")
            est = unpipe(est.best_estimator_, None)[0]
        if isinstance(est.classes_, list):  # scikit-learn's multi-output classifiers
            if method != "predict":  # (one array per output: no one dask array)
                raise ValueError(
                    f"{type(est).__name__} has several outputs; its {method} returns one "
                    "array per output, which ParallelPostFit does not compute lazily. "
                    "Call it on computed rows."
                )
            kinds = [np.asarray(c).dtype for c in est.classes_]
            return len(est.classes_), np.result_type(*kinds)
        # a label indicator per row (skproto's multi-label models, OneVsRestClassifier's)
        multilabel = getattr(est, "_link", None) == "sigmoid" or getattr(est, "multilabel_", False)
        if method == "predict":
            if multilabel:
                return len(est.classes_), np.dtype(int)
            return None, np.asarray(est.classes_).dtype
        float64 = np.dtype(np.float64)
        if method == "score_samples":
            return None, float64
        if method == "transform":
            if not hasattr(est, "prototypes_"):  # another classifier's transform (as
                # LinearDiscriminantAnalysis'): as many columns as its output's names
                # (it failed with "object has no attribute 'prototypes_'")
                return len(est.get_feature_names_out()), float64
            return len(est.prototypes_), float64
        if method == "decision_function" and len(est.classes_) == 2 and not multilabel:
            return None, float64
        return len(est.classes_), float64

    @staticmethod
    def _block_names(est, names, width: int):
        """The column names the blocks are predicted with (``names``: the dask input's,
        of ``width`` columns).

        A skproto estimator fitted with other names than the input has (some
        against none) gets scikit-learn's warning once, here, at the user's
        call; each block then comes with the names it was fitted with, or none
        (as in memory, columns are read by position). Left to the blocks, the
        warning was raised once per block, from inside scikit-learn.
        """
        if not isinstance(est, BasePrototypeClassifier):  # (a Pipeline may select by name)
            return names
        fitted = getattr(est, "feature_names_in_", None)
        if names is None and fitted is not None and width == len(fitted):
            warn_user(
                f"X does not have valid feature names, but {type(est).__name__} was fitted "
                "with feature names",
                UserWarning,
            )
            return fitted
        if names is not None and fitted is None and hasattr(est, "n_features_in_"):
            warn_user(
                f"X has feature names, but {type(est).__name__} was fitted without feature names",
                UserWarning,
            )
            return None
        return names

    def _apply(self, method: str, X):
        est = self._fitted()
        if not (is_dask(X) or is_dask_frame(X)):
            return getattr(est, method)(X)
        da = dask_array()
        names, dtypes = column_names(X), column_dtypes(X)
        X = as_row_blocks(X, known=False)  # whole rows in each block
        names = self._block_names(est, names, X.shape[1])
        width, dtype = self._layout(est, method)
        empty = np.empty((0,) if width is None else (0, width), dtype=dtype)
        args = (_call, X, self._shipped(est), method, names, dtype, empty, dtypes)
        if width is None:
            return da.map_blocks(*args, drop_axis=1, dtype=dtype, meta=empty)
        chunks = (X.chunks[0], (width,))
        return da.map_blocks(*args, chunks=chunks, dtype=dtype, meta=empty)

    def _shipped(self, est):
        """``est``, or, under a distributed client, its copy scattered to every worker.

        A fitted model can weigh megabytes; scattered, it travels once per
        worker instead of inside every task, and is reused while the model
        stays as it was: a skproto estimator gets a new ``_fit_token`` at
        every ``fit`` / ``partial_fit`` (a copy kept regardless went on
        predicting with the model as it was, after a ``partial_fit``). Other
        estimators (a Pipeline) are scattered at every call.
        """
        if "distributed" not in sys.modules:
            return est
        from dask.base import get_scheduler
        from distributed import get_client

        try:
            client = get_client()
        except ValueError:  # no client: dask's local schedulers
            return est
        if getattr(get_scheduler(), "__self__", None) is not client:
            return est  # a client exists, but dask is told to use another scheduler
        token = est.__dict__.get("_fit_token")
        cached = self.__dict__.get("_scattered")
        same = cached is not None and cached[0] is est and cached[1] is client
        # (a copy the cluster lost, to client.restart() or dead workers, is scattered
        # anew: reused, every later prediction failed with "lost dependencies")
        alive = same and cached[3].status == "finished"
        if token is not None and alive and cached[2] is token:
            return cached[3]
        future = client.scatter(est, broadcast=True, hash=False)
        if token is not None:
            self._scattered = (est, client, token, future)
        return future

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_scattered", None)  # futures belong to one client
        return state

    def predict(self, X: Any) -> Any:
        """``estimator_.predict``, lazily on a dask array (one label per row).

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples; dask input gives a lazy result, anything else a computed one.

        Returns
        -------
        labels : ndarray or dask array of shape (n_samples,) or (n_samples, n_classes)
            Predicted labels (an indicator matrix for a multi-label estimator).
        """
        return self._apply("predict", X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """``estimator_.predict_proba``, lazily on a dask array.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples; dask input gives a lazy result, anything else a computed one.

        Returns
        -------
        proba : ndarray or dask array of shape (n_samples, n_classes)
            Class probabilities, in the order of ``classes_``.
        """
        return self._apply("predict_proba", X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """``estimator_.predict_log_proba``, lazily on a dask array.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples; dask input gives a lazy result, anything else a computed one.

        Returns
        -------
        log_proba : ndarray or dask array of shape (n_samples, n_classes)
            Logs of the class probabilities, in the order of ``classes_``.
        """
        return self._apply("predict_log_proba", X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        """``estimator_.decision_function``, lazily on a dask array.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples; dask input gives a lazy result, anything else a computed one.

        Returns
        -------
        scores : ndarray or dask array of shape (n_samples,) or (n_samples, n_classes)
            Class scores (one per row for a binary, single-label estimator).
        """
        return self._apply("decision_function", X)

    @available_if(_estimator_has("score_samples"))
    def score_samples(self, X: Any) -> Any:
        """``estimator_.score_samples``, lazily on a dask array.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples; dask input gives a lazy result, anything else a computed one.

        Returns
        -------
        scores : ndarray or dask array of shape (n_samples,)
            The estimator's score of each sample.
        """
        return self._apply("score_samples", X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """``estimator_.transform``, lazily on a dask array.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples; dask input gives a lazy result, anything else a computed one.

        Returns
        -------
        activations : ndarray or dask array of shape (n_samples, n_prototypes)
            The estimator's ``transform`` of each sample (one column per prototype).
        """
        return self._apply("transform", X)

    @available_if(_estimator_has("transform"))
    def fit_transform(self, X: Any, y: Any, **fit_params: Any) -> Any:
        """:meth:`fit`, then :meth:`transform` of the same ``X``.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Training rows.
        y : array-like, dask array or dask Series of shape (n_samples,) or (n_samples, n_classes)
            Labels.
        **fit_params : dict
            Passed to :meth:`fit`.

        Returns
        -------
        activations : ndarray or dask array of shape (n_samples, n_prototypes)
            The fitted estimator's ``transform`` of ``X``.
        """
        return self.fit(X, y, **fit_params).transform(X)

    @available_if(_estimator_has("explain"))
    def explain(self, X: Any, rows: ArrayLike | slice | None = None, **kwargs: Any) -> Explanation:
        """``estimator_.explain`` of the selected ``rows`` of ``X`` (computed; all if None).

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples.
        rows : array-like of int or bool, slice or None, default=None
            Integer positions (negative ones count from the end), a boolean
            mask with one entry per row, or a slice; None: all rows.
        **kwargs : dict
            Passed to the estimator's ``explain``.

        Returns
        -------
        Explanation
            The explanation of the selected rows.
        """
        names, dtypes = column_names(X), column_dtypes(X)
        if is_dask_frame(X) or is_dask(X):
            X = as_row_blocks(X, known=rows is not None)  # row indices need block lengths
            X = X.compute() if rows is None else take_rows(X, _row_indices(rows, X.shape[0]))
        elif rows is not None:
            rows = _row_indices(rows, len(X))
            X = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
        if names is not None or _mixed(X, dtypes):
            X = _as_frame(X, names, dtypes)
        # a Pipeline ending in a skproto classifier: its steps, then the classifier's
        # explain (Pipeline has none), as make_report does
        estimator, X, *_ = unpipe(self._fitted(), X)
        if not hasattr(estimator, "explain"):
            raise AttributeError(
                f"{type(estimator).__name__} has no explain: only skproto classifiers "
                "(or Pipelines ending in one) explain their predictions."
            )
        return estimator.explain(X, **kwargs)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy, as ``estimator_.score`` (subset accuracy for multi-label y);
        dask inputs are computed blockwise.

        Parameters
        ----------
        X : array-like, dask array or dask DataFrame of shape (n_samples, n_features)
            Samples.
        y : array-like, dask array or dask Series of shape (n_samples,) or (n_samples, n_classes)
            True labels.
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        float
            The (weighted) accuracy.
        """
        pred = self.predict(X)
        if is_dask(pred):
            pred = pred.compute()
        if is_dask(y) or is_dask_frame(y):
            y = y.compute()
        if is_dask(sample_weight) or is_dask_frame(sample_weight):
            sample_weight = sample_weight.compute()
        # (dates against datetime64 classes as estimator_.score reads them)
        y = scored_labels(np.asarray(y), getattr(self._fitted(), "classes_", None))
        return float(accuracy_score(y, pred, sample_weight=sample_weight))
