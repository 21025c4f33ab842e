"""Nearest class mean classifier: closed form, streaming, mergeable."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from scipy.linalg import eigh
from sklearn.base import _fit_context, clone
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BasePrototypeClassifier, chunk_slices

__all__ = ["NearestMeanClassifier"]


# --------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------
def _shift(t3, q4, M2s, tr, n, s):
    """Third/fourth norm moments about ``mean + s`` instead of ``mean``.

    ``M2s`` is the scatter times ``s`` and ``tr`` its trace; works row-wise on
    stacks of classes (leading axis) or on one class.
    """
    ss = np.sum(s * s, axis=-1)
    t3_new = t3 - np.expand_dims(tr, -1) * s - 2.0 * M2s - np.expand_dims(n * ss, -1) * s
    q4_new = (
        q4
        + 4.0 * np.sum(s * M2s, axis=-1)
        + n * ss * ss
        - 4.0 * np.sum(t3 * s, axis=-1)
        + 2.0 * tr * ss
    )
    return t3_new, q4_new


@dataclass
class _ClassStats:
    """Weighted per-class sufficient statistics, exactly updatable and mergeable.

    All arrays are float64 and aligned with one ordering of the classes.
    Central moments are kept about each class mean. New rows are folded in
    with the batch form of Welford's update and two sets are combined with the
    pairwise update of Chan, Golub & LeVeque (1979); the third and fourth norm
    moments the Ledoit-Wolf intensity needs are shifted as in Pebay (2008).

    count : (C,)        sum of sample weights
    mean : (C, p)       weighted mean
    scatter : None, (p, p) pooled over classes, or (C, p, p)
              sum_i w_i (x_i - m_c)(x_i - m_c)^T
    t3 : None or (C, p) sum_i w_i ||x_i - m_c||^2 (x_i - m_c)
    q4 : None or (C,)   sum_i w_i ||x_i - m_c||^4
    """

    count: np.ndarray
    mean: np.ndarray
    scatter: np.ndarray | None = None
    t3: np.ndarray | None = None
    q4: np.ndarray | None = None

    @classmethod
    def empty(cls, n_classes: int, n_features: int, *, scatter, fourth, **_) -> _ClassStats:
        z = np.zeros
        return cls(
            count=z(n_classes),
            mean=z((n_classes, n_features)),
            scatter={
                None: None,
                "pooled": z((n_features, n_features)),
                "per_class": z((n_classes, n_features, n_features)),
            }[scatter],
            t3=z((n_classes, n_features)) if fourth else None,
            q4=z(n_classes) if fourth else None,
        )

    def update(self, X: np.ndarray, codes: np.ndarray, w: np.ndarray, *, normalize: bool) -> None:
        """Fold the rows ``X`` (class ``codes``, weights ``w``) in, in place.

        With ``normalize`` the rows are L2-normalised first (cosine metric).
        Work is proportional to the rows, plus ``p**2`` per class present in
        the rows when per-class scatter matrices are kept.
        """
        for s in chunk_slices(X.shape[0], 4 * X.shape[1]):
            Xs = np.asarray(X[s], dtype=np.float64)
            self._update_chunk(_normalize_rows(Xs) if normalize else Xs, codes[s], w[s])

    def _update_chunk(self, X, codes, w):
        keep = w > 0
        X, codes, w = X[keep], codes[keep], w[keep]
        if not len(w):
            return
        present, local = np.unique(codes, return_inverse=True)
        n_b = np.bincount(local, weights=w)
        G = sparse.csr_matrix((w, (local, np.arange(len(w)))), shape=(len(present), len(w)))
        mean_b = (G @ X) / n_b[:, None]
        n_a = self.count[present]
        n = n_a + n_b
        fa, fb = n_a / n, n_b / n
        d = mean_b - self.mean[present]
        self.mean[present] += d * fb[:, None]
        self.count[present] = n
        if self.scatter is None:
            return
        R = X - mean_b[local]  # residuals about the batch's class means
        Rw = R * w[:, None]
        coef = n_a * fb  # n_a n_b / n
        if self.scatter.ndim == 2:
            self.scatter += Rw.T @ R + (d * coef[:, None]).T @ d
            return
        order = np.argsort(local, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(local))])
        for j, c in enumerate(present):
            rows = order[bounds[j] : bounds[j + 1]]
            Rc, Rwc = R[rows], Rw[rows]
            if self.t3 is not None:
                s_a, s_b = d[j] * fb[j], -d[j] * fa[j]
                S_a = self.scatter[c]
                t_a, q_a = _shift(self.t3[c], self.q4[c], S_a @ s_a, np.trace(S_a), n_a[j], s_a)
                r2 = np.einsum("ij,ij->i", Rc, Rc)
                t_b, q_b = _shift(
                    r2 @ Rwc, (w[rows] * r2) @ r2, Rwc.T @ (Rc @ s_b), w[rows] @ r2, n_b[j], s_b
                )
                self.t3[c], self.q4[c] = t_a + t_b, q_a + q_b
            # residual rows plus the mean-shift row, in one rank-(n+1) product
            self.scatter[c] += np.vstack([Rwc, coef[j] * d[j]]).T @ np.vstack([Rc, d[j]])

    def merge(self, other: _ClassStats) -> _ClassStats:
        """Statistics of the union of two samples (same class order), as a new object."""
        n = self.count + other.count
        safe = np.where(n > 0, n, 1.0)
        fa, fb = self.count / safe, other.count / safe
        d = other.mean - self.mean
        out = _ClassStats(count=n, mean=self.mean + d * fb[:, None])
        if self.scatter is None:
            return out
        coef = self.count * fb  # n_a n_b / n
        if self.scatter.ndim == 2:
            out.scatter = self.scatter + other.scatter + (d * coef[:, None]).T @ d
            return out
        out.scatter = self.scatter + other.scatter + np.einsum("c,ci,cj->cij", coef, d, d)
        if self.t3 is not None:
            parts = [
                _shift(
                    st.t3,
                    st.q4,
                    np.einsum("cij,cj->ci", st.scatter, s),
                    np.einsum("cii->c", st.scatter),
                    st.count,
                    s,
                )
                for st, s in [(self, d * fb[:, None]), (other, -d * fa[:, None])]
            ]
            out.t3 = parts[0][0] + parts[1][0]
            out.q4 = parts[0][1] + parts[1][1]
        return out

    def reindex(self, positions: np.ndarray, n_classes: int) -> _ClassStats:
        """Place class ``k`` of these statistics at row ``positions[k]`` of a larger set."""

        def grow(a):
            if a is None:
                return None
            out = np.zeros((n_classes,) + a.shape[1:])
            out[positions] = a
            return out

        pooled = self.scatter is not None and self.scatter.ndim == 2
        return _ClassStats(
            count=grow(self.count),
            mean=grow(self.mean),
            scatter=self.scatter.copy() if pooled else grow(self.scatter),
            t3=grow(self.t3),
            q4=grow(self.q4),
        )


def _normalize_rows(X: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """Rows scaled to unit L2 norm; rows of norm <= ``tol`` become zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return np.where((norms > tol)[:, None], X, 0) / np.where(norms > tol, norms, 1)[:, None]


# --------------------------------------------------------------------------
# Covariance estimation from the statistics
# --------------------------------------------------------------------------
def _shrinkage_amount(method, S: np.ndarray, n: float, q4: float | None) -> float:
    """Shrinkage intensity for the empirical covariance ``S`` of ``n`` samples.

    ``"ledoit_wolf"`` and ``"oas"`` reproduce scikit-learn's
    ``ledoit_wolf_shrinkage`` / ``OAS`` on centred data (weights act as
    frequencies); ``q4`` is ``sum_i w_i ||x_i - m||^4``.
    """
    if isinstance(method, Real):
        return float(method)
    p = S.shape[0]
    mu = np.trace(S) / p
    if method == "oas":
        if p == 1:
            return 0.0
        alpha = np.mean(S**2)
        den = (n + 1) * (alpha - mu**2 / p)
        return 1.0 if den == 0 else float(min((alpha + mu**2) / den, 1.0))
    if p == 1:
        return 0.0
    delta_ = np.sum(S**2)
    beta = (q4 / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * np.trace(S) + p * mu**2) / p
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(np.clip(beta / delta, 0.0, 1.0))


def _shrunk(S: np.ndarray, amount: float) -> np.ndarray:
    """``(1 - a) S + a tr(S)/p I`` (scikit-learn's ``shrunk_covariance``)."""
    p = S.shape[0]
    out = (1.0 - amount) * S
    out.flat[:: p + 1] += amount * np.trace(S) / p
    return out


_PINV_RTOL = 1e-10


def _whitener(cov: np.ndarray) -> np.ndarray | None:
    """``L`` with ``L @ L.T = pinv(cov)``, or None if ``cov`` is zero.

    Eigenvalues below ``_PINV_RTOL`` times the largest count as zero: a
    relative cut far above rounding noise, so that models built from the same
    data in a different order or chunking keep the same subspace.
    """
    lam, V = eigh(cov)
    if lam[-1] <= 0:
        return None
    keep = lam > lam[-1] * _PINV_RTOL
    return V[:, keep] / np.sqrt(lam[keep])


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------
class NearestMeanClassifier(BasePrototypeClassifier):
    """Nearest class mean classifier with streaming, mergeable statistics.

    Each class ``c`` is represented by one prototype, its (optionally shrunk)
    weighted mean ``mu_c``. A sample is scored against every class by a squared
    distance ``delta_c(x)``, and

    .. math::

        \\text{score}_c(x) = -\\frac{\\delta_c(x)}{2T} + \\log \\pi_c, \\qquad
        P(c \\mid x) = \\operatorname{softmax}_c(\\text{score}_c(x))

    with temperature ``T`` and class priors ``pi``. The squared distance is

    * ``"euclidean"``: ``||x - mu_c||^2``;
    * ``"cosine"``: ``||x/|x| - mu_c/|mu_c| ||^2 = 2 (1 - cos(x, mu_c))``, with
      the means taken over L2-normalised rows (a class whose unit rows cancel
      out, mean norm below 1e-10, gets the zero prototype, ``cos = 0``);
    * ``"mahalanobis"``: ``(x - mu_c)^T Sigma^+ (x - mu_c)`` with the shrunk
      pooled within-class covariance (``covariance="shared"``; with ``T=1``
      the probabilities are exactly the LDA posterior) or one shrunk covariance
      per class (``covariance="per_class"``, the FeCAM rule; no log-determinant
      term is added).

    All statistics (weights, means, scatter matrices) are accumulated in
    float64 with pairwise-stable updates, so :meth:`partial_fit` over any
    chunking and :meth:`merge` of models fitted on disjoint shards give the
    same model as :meth:`fit` on all the data, to float tolerance.

    Parameters
    ----------
    metric : {"euclidean", "cosine", "mahalanobis"}, default="euclidean"
        Distance from a sample to a class mean, see above.
    covariance : {"shared", "per_class"}, default="shared"
        For ``metric="mahalanobis"``: one pooled within-class covariance
        (linear decision boundaries, LDA) or one covariance per class
        (quadratic boundaries, FeCAM). Ignored by the other metrics.
    covariance_shrinkage : "oas", "ledoit_wolf" or float in [0, 1], \
            default="oas"
        Shrinkage of the covariance toward ``tr(Sigma)/p * I``:
        ``Sigma' = (1 - a) Sigma + a tr(Sigma)/p I``, with ``a`` given or
        estimated by OAS or Ledoit-Wolf (as scikit-learn computes them,
        sample weights counting as frequencies). Only for ``"mahalanobis"``.
        ``"ledoit_wolf"`` needs fourth moments, which stay exactly mergeable
        only with one ``n_features**2`` scatter matrix per class: it costs
        ``n_classes`` times the memory of ``"oas"`` and makes each
        ``partial_fit`` call touch ``n_features**2`` numbers per class present.
    shrinkage : float in [0, 1], default=0.0
        Shrinkage of each class mean toward the weighted global mean,
        ``mu_c' = (1 - s) mu_c + s mu``; helps with few samples per class.
    priors : {"uniform", "empirical"} or array-like of shape (n_classes,), \
            default="uniform"
        Class priors ``pi`` in the scores: equal, proportional to the summed
        sample weight of each class, or given (non-negative, summing to one,
        in the order of ``classes_``).
    temperature : float > 0, default=1.0
        Temperature ``T`` of the softmax. It does not change ``predict`` under
        uniform priors.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    class_count_ : ndarray of shape (n_classes,)
        Summed sample weight of each class.
    class_prior_ : ndarray of shape (n_classes,)
        Priors used in the scores.
    means_ : ndarray of shape (n_classes, n_features)
        Weighted class means (of the L2-normalised rows for ``"cosine"``),
        before shrinkage.
    prototypes_ : ndarray of shape (n_classes, n_features)
        The class prototypes used to predict: shrunk means (unit-normalised
        for ``"cosine"``). Row ``k`` stands for ``classes_[k]``. A class
        declared in ``partial_fit(classes=...)`` but not seen yet has a row of
        NaN, score ``-inf`` and probability 0.
    prototype_labels_ : ndarray of shape (n_classes,)
        Class of each prototype (equal to ``classes_``).
    covariance_ : ndarray of shape (n_features, n_features) or \
            (n_classes, n_features, n_features)
        Shrunk covariance used by ``"mahalanobis"`` (only set for it). Where
        it is zero (e.g. a class seen once) the pooled covariance, and then
        the identity, is used instead.
    covariance_shrinkage_ : float or ndarray of shape (n_classes,)
        Shrinkage intensity actually applied (only for ``"mahalanobis"``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.neighbors.NearestCentroid : Euclidean/Manhattan nearest centroid
        without probabilities that agree with ``predict``, streaming or merging.
    sklearn.discriminant_analysis.LinearDiscriminantAnalysis : same decision
        rule as ``metric="mahalanobis"``, ``priors="empirical"``.

    Notes
    -----
    ``transform`` returns the squared distances ``delta_c(x)`` (not
    similarities).

    ``score_samples`` (higher = more in-distribution) is

    * ``"euclidean"``, ``"cosine"``: ``logsumexp_c score_c(x)``, the log
      density of ``x`` under the class mixture (up to a constant, for
      ``T=1``); as ``T`` shrinks it tends to ``-min_c delta_c(x) / (2T)``;
    * ``"mahalanobis"``: ``logsumexp_c score_c(x) + delta_0(x) / (2T)``, where
      ``delta_0`` is the Mahalanobis distance to the global mean under the
      total covariance, shrunk like the within-class one (the shared
      ``covariance_`` plus ``(1 - a)`` times the between-class covariance):
      the log-likelihood ratio of the class mixture against one background
      Gaussian of all the data, i.e. the relative Mahalanobis score of
      Ren et al. (2021). It detects near out-of-distribution inputs much
      better than the plain distance (CLINC150 out-of-scope AUROC 0.972 vs
      0.946); it ignores deviations along directions in which the classes do
      not differ at all.

    Memory: ``"euclidean"`` and ``"cosine"`` keep ``O(n_classes * n_features)``
    numbers; ``"mahalanobis"`` keeps one pooled ``n_features**2`` scatter, or
    one per class with ``covariance="per_class"`` or
    ``covariance_shrinkage="ledoit_wolf"`` (which needs per-class moments to
    stay exactly mergeable).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> round(clf.score(X, y), 3)
    0.98
    >>> stream = NearestMeanClassifier(metric="mahalanobis")
    >>> for rows in np.array_split(np.arange(len(X)), 5):
    ...     stream = stream.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    >>> bool(np.allclose(stream.predict_proba(X), clf.predict_proba(X)))
    True
    """

    _pairwise_name = "squared distance"
    _bias_name = "log prior"

    _parameter_constraints: dict = {
        "metric": [StrOptions({"euclidean", "cosine", "mahalanobis"})],
        "covariance": [StrOptions({"shared", "per_class"})],
        "covariance_shrinkage": [
            StrOptions({"ledoit_wolf", "oas"}),
            Interval(Real, 0, 1, closed="both"),
        ],
        "shrinkage": [Interval(Real, 0, 1, closed="both")],
        "priors": [StrOptions({"uniform", "empirical"}), "array-like"],
        "temperature": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        metric="euclidean",
        *,
        covariance="shared",
        covariance_shrinkage="oas",
        shrinkage=0.0,
        priors="uniform",
        temperature=1.0,
    ):
        self.metric = metric
        self.covariance = covariance
        self.covariance_shrinkage = covariance_shrinkage
        self.shrinkage = shrinkage
        self.priors = priors
        self.temperature = temperature

    # ------------------------------------------------------------ fitting
    def _stats_layout(self) -> dict:
        """Which statistics the current parameters need."""
        if self.metric != "mahalanobis":
            scatter = None
        elif self.covariance == "per_class" or self.covariance_shrinkage == "ledoit_wolf":
            scatter = "per_class"
        else:
            scatter = "pooled"
        return {
            "normalize": self.metric == "cosine",
            "scatter": scatter,
            "fourth": self.metric == "mahalanobis" and self.covariance_shrinkage == "ledoit_wolf",
        }

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> NearestMeanClassifier:
        """Fit the class means (and covariances) on all of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 is kept as float32 at prediction time.
        y : array-like of shape (n_samples,)
            Class labels (any hashable values); at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; they act as frequencies.

        Returns
        -------
        self : NearestMeanClassifier
            Fitted estimator.
        """
        X, y = self._validate_fit_data(X, y, reset=True)
        w = self._validate_sample_weight(sample_weight, X)
        classes, codes = np.unique(y, return_inverse=True)
        self._check_two_classes(classes)
        self._priors_for(len(classes))
        self.classes_ = classes
        self._layout = self._stats_layout()
        self._classes_fixed = False
        self._stats = _ClassStats.empty(len(classes), X.shape[1], **self._layout)
        self._stats.update(X, codes, w, normalize=self._layout["normalize"])
        self._model = self._derive()
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> NearestMeanClassifier:
        """Update the model with one more chunk of data.

        After any sequence of calls the model equals :meth:`fit` on the
        concatenation of all chunks. Classes may be declared up front with
        ``classes`` (then an unknown label in a later chunk is an error), or
        left open: a label never seen before simply adds a class
        (class-incremental learning), and ``classes_`` grows, staying sorted.

        A call costs time proportional to the chunk (plus ``n_features**2``
        per class in the chunk when per-class scatter matrices are kept).
        Covariance factorizations and other derived quantities are refreshed
        once, on the first use after the last call, not after every call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Chunk of training data.
        y : array-like of shape (n_samples,)
            Labels of the chunk.
        classes : array-like of shape (n_classes,), default=None
            All classes that can ever appear. Only on the first call (or equal
            to ``classes_`` later).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; they act as frequencies.

        Returns
        -------
        self : NearestMeanClassifier
            Updated estimator.
        """
        first = not hasattr(self, "_stats")
        X, y = self._validate_fit_data(X, y, reset=first)
        w = self._validate_sample_weight(sample_weight, X)
        labels, inverse = np.unique(y, return_inverse=True)
        if first:
            self._layout = self._stats_layout()
            declared = None if classes is None else np.unique(np.asarray(classes))
            known = labels if declared is None else declared
            self._priors_for(len(np.union1d(known, labels)))  # fail before any change
            self.classes_ = known
            self._classes_fixed = declared is not None
            self._stats = _ClassStats.empty(len(known), X.shape[1], **self._layout)
        else:
            if self._layout != self._stats_layout():
                raise ValueError(
                    "metric, covariance or covariance_shrinkage changed since the first "
                    "call to partial_fit; the accumulated statistics do not fit the new "
                    "setting. Call fit, or partial_fit on a fresh estimator."
                )
            if classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), self.classes_
            ):
                raise ValueError(
                    f"classes={np.unique(np.asarray(classes))!r} is not the same as "
                    f"classes_={self.classes_!r} from earlier calls to partial_fit."
                )
        unknown = np.setdiff1d(labels, self.classes_)
        if unknown.size and self._classes_fixed:
            raise ValueError(
                f"y contains labels {unknown.tolist()!r} that are not in the "
                "classes fixed by the first call to partial_fit: "
                f"{self.classes_.tolist()!r}."
            )
        self._priors_for(len(self.classes_) + unknown.size)  # fail before any change
        if unknown.size:
            union = np.union1d(self.classes_, unknown)
            self._stats = self._stats.reindex(np.searchsorted(union, self.classes_), len(union))
            self.classes_ = union
        codes = np.searchsorted(self.classes_, labels)[inverse]
        self._stats.update(X, codes, w, normalize=self._layout["normalize"])
        self._model = None  # derived lazily, once, on next use
        return self

    def merge(self, *others: NearestMeanClassifier) -> NearestMeanClassifier:
        """Combine models fitted on disjoint data into one.

        The result equals :meth:`fit` on the union of all their training data
        (to float tolerance); the inputs are left unchanged. Useful for
        federated or distributed training: fit one model per shard, merge.

        Parameters
        ----------
        *others : NearestMeanClassifier
            Fitted models with the same parameters and features. Their class
            sets may differ; the result has the union.

        Returns
        -------
        merged : NearestMeanClassifier
            A new fitted estimator.
        """
        models = (self,) + others
        for m in models:
            if not isinstance(m, NearestMeanClassifier):
                raise TypeError(
                    f"can only merge NearestMeanClassifier models, got {type(m).__name__}."
                )
            if not hasattr(m, "_stats"):
                raise ValueError("all models passed to merge must be fitted.")
            if m._layout != m._stats_layout():
                raise ValueError(
                    "cannot merge: a model's statistics were gathered under other "
                    "settings of metric, covariance or covariance_shrinkage (they "
                    "were changed after fitting); refit it first."
                )
        params = self.get_params()
        for m in others:
            other = m.get_params()
            for key, value in params.items():
                if not _same_param(value, other[key]):
                    raise ValueError(
                        f"cannot merge models with different settings: {key}={value!r} "
                        f"vs {key}={other[key]!r}."
                    )
            if m.n_features_in_ != self.n_features_in_:
                raise ValueError(
                    "cannot merge models with different numbers of features: "
                    f"{self.n_features_in_} vs {m.n_features_in_}."
                )
            names_a = getattr(self, "feature_names_in_", None)
            names_b = getattr(m, "feature_names_in_", None)
            if (names_a is None) != (names_b is None) or (
                names_a is not None and not np.array_equal(names_a, names_b)
            ):
                raise ValueError("cannot merge models fitted on different feature names.")
        union = self.classes_
        for m in others:
            union = np.union1d(union, m.classes_)
        stats = None
        for m in models:
            part = m._stats.reindex(np.searchsorted(union, m.classes_), len(union))
            stats = part if stats is None else stats.merge(part)
        merged = clone(self)
        merged._priors_for(len(union))
        merged.classes_ = union
        merged.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            merged.feature_names_in_ = self.feature_names_in_
        merged._layout = dict(self._layout)
        merged._classes_fixed = False
        merged._stats = stats
        merged._model = merged._derive()
        return merged

    # ------------------------------------------------- derived quantities
    @property
    def _fitted(self) -> _Model:
        """The derived model, recomputed once after ``partial_fit`` changed the statistics."""
        if self._model is None:
            self._model = self._derive()
        return self._model

    # Public fitted attributes are views of the derived model, so they are
    # always current, even right after partial_fit.
    class_count_ = property(lambda self: self._fitted.class_count)
    class_prior_ = property(lambda self: self._fitted.class_prior)
    means_ = property(lambda self: self._fitted.means)
    prototypes_ = property(lambda self: self._fitted.prototypes)
    prototype_labels_ = property(lambda self: self.classes_)

    @property
    def covariance_(self) -> np.ndarray:
        return self._mahalanobis_attribute("covariance")

    @property
    def covariance_shrinkage_(self):
        return self._mahalanobis_attribute("covariance_shrinkage")

    def _mahalanobis_attribute(self, name):
        value = getattr(self._fitted, name)
        if value is None:
            raise AttributeError(f"{name}_ is only set for metric='mahalanobis'.")
        return value

    def _derive(self) -> _Model:
        """Every quantity the model uses, computed from the sufficient statistics."""
        st = self._stats
        p = st.mean.shape[1]
        seen = st.count > 0
        total = st.count.sum()
        global_mean = st.count @ st.mean / total
        proto = (1.0 - self.shrinkage) * st.mean + self.shrinkage * global_mean
        if self.metric == "cosine":
            # a mean of unit vectors that (nearly) cancel has no direction:
            # rounding must not pick one, so it becomes the zero vector
            proto = _normalize_rows(proto, tol=1e-10)
        proto[~seen] = 0.0
        prior = self._priors(seen)
        with np.errstate(divide="ignore"):
            log_prior = np.where(seen, np.log(prior), -np.inf)
        center = np.zeros(p) if self.metric == "cosine" else global_mean
        cov = self._covariances(total, center) if self.metric == "mahalanobis" else {}
        T = float(self.temperature)
        kw = {}
        if cov.get("class_whiten") is None:
            # one quadratic form for all classes: score = Xc @ W + b - ||Xc A||^2 / (2T)
            A = cov.get("whiten")
            Pm = proto - center if A is None else (proto - center) @ A
            pn = np.einsum("ij,ij->i", Pm, Pm)
            W = Pm.T / T if A is None else A @ Pm.T / T
            kw = dict(
                mapped_protos=Pm,
                proto_sqnorm=pn,
                W=np.ascontiguousarray(W),
                b=np.where(seen, log_prior - pn / (2.0 * T), -np.inf),
            )
        return _Model(
            seen=seen,
            class_count=st.count.copy(),
            class_prior=prior,
            log_prior=log_prior,
            means=np.where(seen[:, None], st.mean, np.nan),
            prototypes=np.where(seen[:, None], proto, np.nan),
            center=center,
            temperature=T,
            **cov,
            **kw,
        )

    def _priors_for(self, n_classes: int) -> np.ndarray | None:
        """The user's array of priors, validated for ``n_classes`` (None if a string)."""
        if isinstance(self.priors, str):
            return None
        pri = np.asarray(self.priors, dtype=np.float64).ravel()
        if pri.shape != (n_classes,):
            raise ValueError(f"priors has {pri.size} entries but there are {n_classes} classes.")
        if np.any(pri < 0) or not np.isclose(pri.sum(), 1.0):
            raise ValueError("priors must be non-negative and sum to 1.")
        return pri

    def _priors(self, seen: np.ndarray) -> np.ndarray:
        given = self._priors_for(len(seen))
        if given is not None:
            return np.where(seen, given, 0.0)
        if self.priors == "uniform":
            return seen / seen.sum()
        return self._stats.count / self._stats.count.sum()

    def _covariances(self, total: float, center: np.ndarray) -> dict:
        """Shrunk covariances and their whitening maps (``L @ L.T = pinv(cov)``)."""
        st = self._stats
        pooled = st.scatter.sum(axis=0) if st.scatter.ndim == 3 else st.scatter
        S = pooled / total
        q4 = st.q4.sum() if st.q4 is not None else None
        a = _shrinkage_amount(self.covariance_shrinkage, S, total, q4)
        shared = _shrunk(S, a)
        shared_white = _whitener(shared)
        if shared_white is None:  # zero within-class scatter: fall back to Euclidean
            shared_white = np.eye(S.shape[0])
        # Background Gaussian of all the data, for the relative score_samples:
        # the total covariance (within + between classes) shrunk by the same
        # amount toward the same target as the within-class one. Then
        # background - shared = (1 - a) * between is PSD, so no direction
        # without class structure can make an input look *more* typical.
        dev = st.mean - center
        between = (dev * (st.count / total)[:, None]).T @ dev
        background_white = _whitener(shared + (1.0 - a) * between)
        if background_white is None:
            background_white = np.eye(S.shape[0])
        out = dict(background_whiten=background_white)
        if self.covariance == "shared":
            return dict(out, covariance=shared, covariance_shrinkage=a, whiten=shared_white)
        n_classes = len(st.count)
        covs = np.full_like(st.scatter, np.nan)
        amounts = np.full(n_classes, np.nan)
        whiten = [None] * n_classes
        for c in np.flatnonzero(st.count > 0):
            Sc = st.scatter[c] / st.count[c]
            qc = st.q4[c] if st.q4 is not None else None
            amounts[c] = _shrinkage_amount(self.covariance_shrinkage, Sc, st.count[c], qc)
            covs[c] = _shrunk(Sc, amounts[c])
            whiten[c] = _whitener(covs[c])
            if whiten[c] is None:  # zero scatter (e.g. one sample): use the pooled covariance
                covs[c], whiten[c] = shared, shared_white
        return dict(out, covariance=covs, covariance_shrinkage=amounts, class_whiten=whiten)

    # ------------------------------------------------------ computations
    def _centered(self, X: np.ndarray, m: _Model) -> np.ndarray:
        """Rows relative to the model's origin (unit rows for cosine)."""
        if self.metric == "cosine":
            return _normalize_rows(X)
        return X - m.center.astype(X.dtype, copy=False)

    def _row_sqnorm(self, Xc: np.ndarray, m: _Model) -> np.ndarray:
        """``||Xc A||^2`` for the model's whitening ``A`` (identity unless Mahalanobis)."""
        if m.whiten is not None:
            Xc = Xc @ m.whiten.astype(Xc.dtype, copy=False)
        return np.einsum("ij,ij->i", Xc, Xc)

    def _pairwise(self, X: np.ndarray) -> np.ndarray:
        """Squared distances to every class mean, (n_rows, n_classes)."""
        m, dt = self._fitted, X.dtype
        if m.class_whiten is not None:
            D = np.full((X.shape[0], len(self.classes_)), np.inf, dtype=dt)
            proto = np.nan_to_num(m.prototypes)
            for c in np.flatnonzero(m.seen):
                Z = (X - proto[c].astype(dt, copy=False)) @ m.class_whiten[c].astype(dt, copy=False)
                D[:, c] = np.einsum("ij,ij->i", Z, Z)
            return D
        Xm = self._centered(X, m)
        if m.whiten is not None:
            Xm = Xm @ m.whiten.astype(dt, copy=False)
        D = Xm @ (-2.0 * m.mapped_protos.T).astype(dt, copy=False)
        D += m.proto_sqnorm.astype(dt, copy=False)
        D += np.einsum("ij,ij->i", Xm, Xm)[:, None]
        np.maximum(D, 0, out=D)
        D[:, ~m.seen] = np.inf
        return D

    def _activation(self, D: np.ndarray) -> np.ndarray:
        return D * D.dtype.type(-0.5 / self._fitted.temperature)

    def _head(self):
        return np.eye(len(self.classes_)), self._fitted.log_prior

    def _contributions(self, A: np.ndarray) -> np.ndarray:
        # prototype k speaks only for class k (avoid -inf * 0 for unseen classes)
        out = np.zeros(A.shape + (A.shape[1],), dtype=A.dtype)
        k = np.arange(A.shape[1])
        out[:, k, k] = A
        return out

    def _shifted_scores_chunk(self, X: np.ndarray) -> np.ndarray:
        # scores without the per-row term -||x||^2 / (2T): one matrix product
        m, dt = self._fitted, X.dtype
        if m.class_whiten is not None:
            return self._scores_chunk(X)
        S = self._centered(X, m) @ m.W.astype(dt, copy=False)
        S += m.b.astype(dt, copy=False)
        return S

    def _scores_chunk(self, X: np.ndarray) -> np.ndarray:
        m, dt = self._fitted, X.dtype
        if m.class_whiten is not None:
            return self._activation(self._pairwise(X)) + m.log_prior.astype(dt)
        Xc = self._centered(X, m)
        S = Xc @ m.W.astype(dt, copy=False)
        S += m.b.astype(dt, copy=False)
        S -= (self._row_sqnorm(Xc, m) * dt.type(0.5 / m.temperature))[:, None]
        return S

    def _score_samples_chunk(self, X: np.ndarray) -> np.ndarray:
        score = super()._score_samples_chunk(X)
        if self.metric == "mahalanobis":
            m, dt = self._fitted, X.dtype
            Z = (X - m.center.astype(dt, copy=False)) @ m.background_whiten.astype(dt, copy=False)
            score += np.einsum("ij,ij->i", Z, Z) * dt.type(0.5 / m.temperature)
        return score


@dataclass(frozen=True)
class _Model:
    """What a NearestMeanClassifier derives from its statistics to predict."""

    seen: np.ndarray  # classes with data
    class_count: np.ndarray
    class_prior: np.ndarray
    log_prior: np.ndarray  # -inf for unseen classes
    means: np.ndarray
    prototypes: np.ndarray
    center: np.ndarray  # origin the rows are taken relative to
    temperature: float
    covariance: np.ndarray | None = None
    covariance_shrinkage: object | None = None
    whiten: np.ndarray | None = None  # shared Mahalanobis
    class_whiten: list | None = None  # per-class Mahalanobis
    background_whiten: np.ndarray | None = None
    mapped_protos: np.ndarray | None = None
    proto_sqnorm: np.ndarray | None = None
    W: np.ndarray | None = None
    b: np.ndarray | None = None


def _same_param(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if np.ndim(a) or np.ndim(b):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b
