"""Shared base of every prototype classifier in skproto.

A prototype classifier here is described by three pieces, which subclasses
provide:

* ``_pairwise(X)``: the matrix that ``transform`` returns, one column per
  prototype (a similarity or a distance; ``_pairwise_name`` says which);
* ``_activation(P)``: the element-wise map from that matrix to what enters the
  class scores (identity for similarities, ``-d / (2 T)`` for distances, ...);
* ``_head()``: the class-connection weights ``W`` (n_prototypes, n_classes) and
  per-class bias ``b`` so that ``scores = _activation(P) @ W + b``.

From these the base derives everything else: ``decision_function``,
``predict``, ``predict_proba``, ``predict_log_proba``, ``score_samples``,
``transform`` and the exact, faithful ``explain``. All of them work on row
chunks of bounded size, so a million rows against thousands of prototypes never
materialise an ``n_samples x n_prototypes x n_features`` array. A subclass may
override ``_scores_chunk`` with a faster computation of the same scores (the
tests check the two agree) and ``_contributions`` when its head is not a dense
linear map.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from scipy.special import logsumexp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.cluster import KMeans
from sklearn.utils import gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._explain import Explanation

__all__ = ["BasePrototypeClassifier"]

#: Number of float entries in one chunk of a (rows x columns) work array. Small
#: enough to stay in cache-friendly blocks, large enough for efficient BLAS.
_CHUNK_ELEMENTS = 2**22


def _reject_sparse(X, estimator) -> None:
    if sparse.issparse(X):
        raise ValueError(
            f"{type(estimator).__name__} does not support sparse input; "
            "got a sparse matrix. Convert it with X.toarray() if it fits in memory."
        )


def chunk_slices(n_rows: int, row_elements: int):
    """Row slices such that one chunk holds about ``_CHUNK_ELEMENTS`` entries."""
    rows = max(1, _CHUNK_ELEMENTS // max(int(row_elements), 1))
    return gen_batches(n_rows, rows)


class BasePrototypeClassifier(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClassifierMixin, BaseEstimator
):
    """Base class for prototype classifiers. Not meant to be used directly."""

    #: what ``transform`` returns, used to label explanations
    _pairwise_name = "similarity"
    #: what the per-class bias of the head means
    _bias_name = "bias"

    # ---------------------------------------------------------------- hooks
    @abstractmethod
    def _pairwise(self, X: np.ndarray) -> np.ndarray:
        """Chunk of ``transform``: (n_rows, n_prototypes) in X's dtype."""

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

    def _score_samples_chunk(self, X: np.ndarray) -> np.ndarray:
        """In-distribution score of a chunk, (n_rows,)."""
        return logsumexp(self._scores_chunk(X), axis=1)

    def _contributions(self, A: np.ndarray) -> np.ndarray:
        """Contribution of every prototype to every class, (n_rows, n_prototypes, n_classes)."""
        W, _ = self._head()
        return A[:, :, None] * W[None, :, :]

    def _contribution_parts(self, A: np.ndarray):
        """Named terms that add up to ``_contributions(A)``, or None (the default).

        Shown by ``explain`` in ``Explanation.parts`` (the CBC head splits a
        component's contribution into presence and absence reasoning).
        """
        return None

    def _explain_bias(self) -> np.ndarray:
        """The per-class term of ``explain``: scores = contributions + this."""
        return self._head()[1]

    def _prototype_sample_indices(self) -> np.ndarray:
        """Training row each prototype stands for, -1 where none."""
        idx = getattr(self, "prototype_sample_indices_", None)
        if idx is None:
            return np.full(len(self.prototypes_), -1, dtype=np.intp)
        return np.asarray(idx, dtype=np.intp)

    # ----------------------------------------------------------- validation
    def _validate_fit_data(self, X, y, *, reset: bool, multi_output: bool = False):
        """Validate training X, y (dense, finite float) and the targets' type.

        With ``multi_output`` a 2-D ``y`` (multi-label indicator) is accepted
        and checked by the estimator.
        """
        _reject_sparse(X, self)
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=multi_output
        )
        if not multi_output:
            with warnings.catch_warnings():
                # a small partial_fit chunk often has more classes than half its
                # rows; that is not a sign of a regression target here
                warnings.filterwarnings(
                    "ignore", "The number of unique classes is greater than 50%"
                )
                check_classification_targets(y)
        return X, y

    def _check_two_classes(self, classes: np.ndarray) -> None:
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes; "
                f"got 1 class: {classes[0]!r}."
            )

    def _validate_sample_weight(self, sample_weight, X) -> np.ndarray:
        """Float64 weights: finite, non-negative, not all zero."""
        return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)

    def _validate_X_predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        _reject_sparse(X, self)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    # -------------------------------------------------------------- chunking
    def _map_chunks(
        self, fn: Callable[[np.ndarray], np.ndarray], X: np.ndarray, n_cols: int, dtype
    ) -> np.ndarray:
        out = np.empty((X.shape[0], n_cols), dtype=dtype)
        work = max(n_cols, X.shape[1])
        for s in chunk_slices(X.shape[0], work):
            out[s] = fn(X[s])
        return out

    def _scores(self, X: np.ndarray) -> np.ndarray:
        return self._map_chunks(self._scores_chunk, X, len(self.classes_), X.dtype)

    @property
    def _n_features_out(self) -> int:
        return len(self.prototypes_)

    # ---------------------------------------------------------- public API
    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Class scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Per-class scores (higher = more likely). For two classes, the score of
            ``classes_[1]`` minus that of ``classes_[0]``, as in scikit-learn.
        """
        X = self._validate_X_predict(X)
        S = self._scores(X)
        return S[:, 1] - S[:, 0] if S.shape[1] == 2 else S

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict class labels: the class with the highest score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels: the argmax of ``predict_proba`` (always, even
            where rounding makes probabilities tie) and of
            ``decision_function`` (except where two classes tie to within
            rounding: both come from the same scores, shifted per row).
        """
        X = self._validate_X_predict(X)
        idx = np.empty(X.shape[0], dtype=np.intp)
        n_classes = len(self.classes_)
        for s in chunk_slices(X.shape[0], max(n_classes, X.shape[1])):
            idx[s] = np.argmax(self._proba_chunk(X[s]), axis=1)
        return self.classes_[idx]

    def _proba_chunk(self, X: np.ndarray) -> np.ndarray:
        """Softmax of the scores of a chunk, in place (scipy's formula, bit for bit).

        ``predict`` takes the argmax of exactly these numbers, so it agrees
        with ``predict_proba`` even where rounding makes probabilities tie.
        """
        P = self._shifted_scores_chunk(X)
        P -= P.max(axis=1, keepdims=True)
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
        return P

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities: the softmax of the per-class scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        X = self._validate_X_predict(X)
        return self._map_chunks(self._proba_chunk, X, len(self.classes_), X.dtype)

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log of :meth:`predict_proba`.

        Computed as the log of the probabilities (zeros raised to the smallest
        normal float, as scikit-learn's discriminant analysis does), so that it
        orders classes exactly as :meth:`predict_proba` does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._validate_X_predict(X)
        proba = self._map_chunks(self._proba_chunk, X, len(self.classes_), X.dtype)
        return np.log(np.maximum(proba, np.finfo(proba.dtype).smallest_normal))

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
        """
        X = self._validate_X_predict(X)
        out = np.empty(X.shape[0], dtype=X.dtype)
        for s in chunk_slices(X.shape[0], max(len(self.classes_), X.shape[1])):
            out[s] = self._score_samples_chunk(X[s])
        return out

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

    def explain(self, X: ArrayLike, n_prototypes: int = 3) -> Explanation:
        """Explain each prediction by its most active prototypes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to explain.
        n_prototypes : int, default=3
            How many prototypes to list per sample (the most active ones:
            the most similar, or the nearest). All others are summed in
            ``other_contribution``.

        Returns
        -------
        explanation : :class:`~skproto.Explanation`
            Faithful by construction: listed contributions plus
            ``other_contribution`` plus ``bias`` equal the per-class scores of
            :meth:`decision_function`.
        """
        if not isinstance(n_prototypes, (int, np.integer)) or n_prototypes < 1:
            raise ValueError(f"n_prototypes must be a positive int, got {n_prototypes!r}.")
        X = self._validate_X_predict(X)
        K, C = len(self.prototypes_), len(self.classes_)
        m = min(int(n_prototypes), K)
        n = X.shape[0]
        top = np.empty((n, m), dtype=np.intp)
        value = np.empty((n, m), dtype=X.dtype)
        contrib = np.empty((n, m, C), dtype=X.dtype)
        other = np.empty((n, C), dtype=X.dtype)
        predicted = np.empty(n, dtype=np.intp)
        bias = self._explain_bias()
        parts = None
        for s in chunk_slices(n, max(K * C, X.shape[1])):
            P = self._pairwise(X[s])
            A = self._activation(P)
            full = self._contributions(A)
            order = np.argsort(-A, axis=1, kind="stable")[:, :m]
            top[s] = order
            value[s] = np.take_along_axis(P, order, axis=1)
            contrib[s] = np.take_along_axis(full, order[:, :, None], axis=1)
            named = self._contribution_parts(A)
            if named is not None:
                if parts is None:
                    parts = {k: np.empty((n, m, C), dtype=X.dtype) for k in named}
                for k, v in named.items():
                    parts[k][s] = np.take_along_axis(v, order[:, :, None], axis=1)
            keep = np.ones(A.shape, dtype=bool)
            np.put_along_axis(keep, order, False, axis=1)
            other[s] = np.where(keep[:, :, None], full, 0).sum(axis=1)
            predicted[s] = np.argmax(self._proba_chunk(X[s]), axis=1)
        scores = contrib.sum(axis=1) + other + bias.astype(X.dtype, copy=False)
        ranked = scores.copy()
        ranked[np.arange(n), predicted] = -np.inf
        runner = np.argmax(ranked, axis=1) if C > 1 else predicted
        margin = scores[np.arange(n), predicted] - ranked[np.arange(n), runner]
        return Explanation(
            classes=self.classes_,
            predicted=self.classes_[predicted],
            runner_up=self.classes_[runner],
            margin=margin,
            prototype_index=top,
            prototype_label=np.asarray(self.prototype_labels_)[top],
            prototype_sample_index=self._prototype_sample_indices()[top],
            value=value,
            value_name=self._pairwise_name,
            contribution=contrib,
            other_contribution=other,
            bias=np.asarray(bias, dtype=X.dtype),
            bias_name=self._bias_name,
            estimator_name=type(self).__name__,
            parts=parts,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# ----------------------------------------------------------------------
# prototype helpers shared by the trained estimators
# ----------------------------------------------------------------------
def distinct_nearest(dist: np.ndarray) -> np.ndarray:
    """Column for each row of ``dist``: nearest first, greedily, without reuse.

    Pairs are taken in order of increasing distance; a column is reused only
    once every column is taken (more prototypes than rows).
    """
    n_rows, n_cols = dist.shape
    out = np.full(n_rows, -1)
    used = np.zeros(n_cols, dtype=bool)
    for flat in np.argsort(dist, axis=None, kind="stable"):
        r, c = divmod(int(flat), n_cols)
        if out[r] < 0 and not used[c]:
            out[r], used[c] = c, True
            if used.all():
                used[:] = False  # more prototypes than rows: allow reuse
            if out.min() >= 0:
                break
    left = out < 0  # only when rows outnumber columns: the nearest column, reused
    out[left] = np.argmin(dist[left], axis=1)
    return out


def kmeans_prototypes(members: np.ndarray, Z: np.ndarray, k: int, rng) -> np.ndarray:
    """``k`` initial prototypes from a class's rows ``members`` (k-means++, seeded by ``rng``).

    A class with fewer distinct rows than ``k`` starts from its rows, repeated
    and jittered by 1e-3 times the std of ``Z`` (all rows); an empty class at
    the mean of ``Z``, jittered.
    """
    scale = 1e-3 * (Z.std() or 1.0)
    if len(members) == 0:  # class absent from the data seen at initialisation
        return Z.mean(0) + scale * rng.standard_normal((k, Z.shape[1]))
    if len(members) < k or len(np.unique(members, axis=0)) < k:
        rows = members[np.arange(k) % len(members)]
        return rows + scale * rng.standard_normal(rows.shape)
    km = KMeans(n_clusters=k, n_init=1, random_state=rng.randint(np.iinfo(np.int32).max))
    return km.fit(members).cluster_centers_
