"""Covariance estimation: shrinkage intensities, shrunk covariances, whitening maps."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy.linalg import eigh, lapack

from .._validation import check_positive_int

__all__ = ["PINV_RTOL", "principal_axes", "shrinkage_amount", "shrunk_covariance", "whitener"]

#: Eigenvalues below this times the largest count as zero in :func:`whitener`.
PINV_RTOL = 1e-10


def shrinkage_amount(method: str | float, S: np.ndarray, n: float, q4: float | None) -> float:
    """Shrinkage intensity for the empirical covariance ``S`` of ``n`` samples.

    ``"ledoit_wolf"`` and ``"oas"`` reproduce scikit-learn's
    ``ledoit_wolf_shrinkage`` / ``OAS`` on centred data (weights act as
    frequencies); ``q4`` is ``sum_i w_i ||x_i - m||^4``. A float is returned
    as it is.

    Parameters
    ----------
    method : {"oas", "ledoit_wolf"} or float
        Estimator of the intensity, or the intensity itself (in [0, 1]).
    S : ndarray of shape (n_features, n_features)
        The empirical (maximum-likelihood) covariance.
    n : float
        The number (summed weight) of samples.
    q4 : float or None
        ``sum_i w_i ||x_i - m||^4``, needed by ``"ledoit_wolf"`` only.

    Returns
    -------
    float
        The shrinkage intensity, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.covariance import OAS
    >>> from skproto.geometry import shrinkage_amount
    >>> X = np.random.RandomState(0).normal(size=(50, 4))
    >>> S = np.cov(X.T, bias=True)
    >>> bool(np.isclose(shrinkage_amount("oas", S, 50, None), OAS().fit(X).shrinkage_))
    True
    """
    if isinstance(method, Real):
        if not 0 <= method <= 1:
            raise ValueError(f"A shrinkage amount must be in [0, 1], got {method!r}.")
        return float(method)
    if method not in ("oas", "ledoit_wolf"):
        raise ValueError(f"method must be 'oas', 'ledoit_wolf' or a float, got {method!r}.")
    p = S.shape[0]
    mu = np.trace(S) / p
    if np.isfinite(mu) and mu > 0:  # the amount is scale-free: squares of S must not overflow
        S, q4, mu = S / mu, None if q4 is None else q4 / mu / mu, 1.0
    if method == "oas":
        if p == 1:
            return 0.0
        alpha = np.mean(S**2)
        den = (n + 1) * (alpha - mu**2 / p)
        # (alpha >= mu^2 / p, equal for S = mu I: rounded below it, an isotropic S
        # gave -2.5e14, a "shrinkage" that scaled S's rounding noise by that much)
        return 1.0 if den <= 0 else float(min((alpha + mu**2) / den, 1.0))
    if p == 1:
        return 0.0
    delta_ = np.sum(S**2)
    beta = (q4 / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * np.trace(S) + p * mu**2) / p
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(np.clip(beta / delta, 0.0, 1.0))


def shrunk_covariance(S: np.ndarray, amount: float) -> np.ndarray:
    """``(1 - a) S + a tr(S)/p I`` (scikit-learn's ``shrunk_covariance``).

    Parameters
    ----------
    S : ndarray of shape (n_features, n_features)
        Covariance matrix.
    amount : float
        Shrinkage intensity ``a``, in [0, 1].

    Returns
    -------
    ndarray of shape (n_features, n_features)
        The shrunk covariance.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import shrunk_covariance
    >>> shrunk_covariance(np.diag([3.0, 1.0]), 0.5)
    array([[2.5, 0. ],
           [0. , 1.5]])
    """
    if not 0.0 <= amount <= 1.0:  # (as shrinkage_amount: 2.0 was taken)
        raise ValueError(f"amount must be in [0, 1], got {amount!r}.")
    p = S.shape[0]
    out = (1.0 - amount) * S
    out.flat[:: p + 1] += amount * np.trace(S) / p
    return out


def whitener(cov: np.ndarray, floor: float = 0.0) -> np.ndarray | None:
    """``L`` with ``L @ L.T = inv(cov)`` (a generalised inverse where ``cov`` is
    singular), or None if ``cov`` is zero.

    The inverse is taken of the correlation matrix ``C = D^-1 cov D^-1``
    (``D`` the features' standard deviations), as scikit-learn's
    ``LinearDiscriminantAnalysis(solver="svd")`` does: eigenvalues of ``C``
    below ``PINV_RTOL`` times the largest count as zero, a relative cut far
    above rounding noise, so that models built from the same data in a
    different order or chunking keep the same subspace, and one that does
    not depend on the features' units (cut on ``cov`` itself, a feature whose
    variance was 1e-12 of another's was dropped).

    Parameters
    ----------
    cov : ndarray of shape (n_features, n_features)
        Symmetric positive semi-definite.
    floor : float, default=0.0
        A lower bound of the smallest eigenvalue of ``cov`` known by
        construction (a shrunk covariance's ``a tr(S) / p``). Where it shows
        that no eigenvalue is cut, the inverse is taken from a Cholesky
        factorisation (``L`` upper triangular) instead of an eigendecomposition:
        the same ``L @ L.T`` to rounding, 4-5 times faster in all (2,048
        features, one thread: 0.5-0.7 s against 2.5-2.9 s; the factorisations
        alone 0.30 s against 2.4 s).

    Returns
    -------
    L : ndarray of shape (n_features, rank) or None
        The whitening map (``x @ L`` whitens ``x``); None if ``cov`` is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import whitener
    >>> cov = np.array([[4.0, 1.0], [1.0, 2.0]])
    >>> L = whitener(cov)
    >>> bool(np.allclose(L @ L.T, np.linalg.inv(cov)))
    True
    >>> U = whitener(cov, floor=1.0)  # (eigenvalues 1.59 and 4.41: the Cholesky path)
    >>> bool(np.allclose(U @ U.T, np.linalg.inv(cov))), bool(np.allclose(U, np.triu(U)))
    (True, True)
    """
    if not np.all(np.isfinite(cov)):  # (a NaN diagonal read as "cov is zero": None)
        raise ValueError("The covariance matrix contains NaN or infinity.")
    d = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    top = float(np.max(d, initial=0.0))
    if not top > 0:
        return None
    d = np.where(d > top * 1e-150, d, top)  # a constant feature: its row and column are 0
    # (also: no product overflows for huge X)
    C = cov / d[:, None] / d[None, :]
    # C's eigenvalues lie in [floor / top**2, trace(C) <= p]: where that range's low
    # end is far above the cut, nothing is cut, and the full inverse is wanted
    if floor / top**2 > _CHOLESKY_MARGIN * PINV_RTOL * len(d):
        G, info = lapack.dpotrf(C, lower=1, clean=1)
        if info == 0:
            G_inv, info = lapack.dtrtri(G, lower=1)
            if info == 0:  # inv(C) = G_inv.T @ G_inv
                return G_inv.T / d[:, None]
    # Divide and conquer: LAPACK's default
    # for scipy (MRRR) took 3x longer on correlation matrices than on the raw
    # covariance (a per-class CLINC150 covariance: 75 ms, "evd" 14 ms), and the
    # per-class Mahalanobis fit 10 s where it took 3.4 s before the correlation
    # (one feature: C is 1 x 1, which "evd" refused before scipy 1.14, scipy #20512)
    lam, V = eigh(C, driver="evd") if len(C) > 1 else (np.diag(C).copy(), np.ones((1, 1)))
    if lam[-1] <= 0:
        return None
    keep = lam > lam[-1] * PINV_RTOL
    return V[:, keep] / np.sqrt(lam[keep]) / d[:, None]


#: How far above the cut :func:`whitener`'s eigenvalue bound must be for its
#: Cholesky path (rounding moves eigenvalues by far less).
_CHOLESKY_MARGIN = 1e3


#: Rows :func:`principal_axes` reads at most.
AXES_ROWS = 10_000


def principal_axes(X: np.ndarray, dim: int, max_rows: int = AXES_ROWS) -> np.ndarray:
    """The main axes of the centred rows of ``X``: ``(k, n_features)`` orthonormal rows.

    ``k = min(dim, n_features, rows read)``, read on at most ``max_rows``
    evenly spaced rows (an estimate: a start, not a decomposition), each axis
    signed so that its largest entry is positive (deterministic). With more
    rows than features only the ``k`` leading eigenvectors of the scatter are
    computed, not a full SVD.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Rows.
    dim : int
        Number of axes wanted.
    max_rows : int, default=10_000
        Rows read at most.

    Returns
    -------
    ndarray of shape (k, n_features)
        Orthonormal axes, in order of decreasing variance.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import principal_axes
    >>> X = np.random.RandomState(0).normal(size=(200, 3)) * [10.0, 1.0, 0.1]
    >>> principal_axes(X, 1).round(2)
    array([[ 1., -0.,  0.]])
    """
    check_positive_int(dim, "dim")
    check_positive_int(max_rows, "max_rows")
    X = np.asarray(X)[:: max(1, -(-len(X) // max_rows))]
    U = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
    n_rows, p = U.shape
    if n_rows > p and p > 1:
        # more rows than features: the top axes of the scatter U^T U (p x p), only
        # the `dim` wanted (the full SVD of 10,000 rows of 4,096 features, all
        # their axes, took 58 s on one thread for the 384 of a projection's start)
        _, V = eigh(U.T @ U, subset_by_index=[p - min(dim, p), p - 1], overwrite_a=True)
        axes = V[:, ::-1].T
    else:
        _, _, Vt = np.linalg.svd(U, full_matrices=False)
        axes = Vt[:dim]
    signs = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    return axes * np.where(signs == 0, 1.0, signs)[:, None]
