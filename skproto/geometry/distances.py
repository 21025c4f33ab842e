"""Distances between rows and prototypes: one implementation, numpy and torch.

Every squared Euclidean distance in skproto -- prediction, training,
initialisation, projection and certificates -- is computed here, by the
expansion ``||x||^2 - 2 x.p + ||p||^2`` (one matrix product), after subtracting
a common ``center`` from both sides. Distances do not change under a common
shift, but the expansion loses about ``eps * (||x||^2 + ||p||^2)`` to
cancellation, so centring on the data makes it accurate for data far from the
origin (float32 data at ``x * 1.37 + 100``, say). Where a distance is so small
that cancellation dominates it (a sample on top of a prototype, whose distance
should be 0), the entry is recomputed directly as ``||x - p||^2`` -- except
where torch records gradients through the operands (training), where the
expansion is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _chunking
from .._chunking import chunk_slices
from ._array import is_torch, namespace, row_sqnorms

__all__ = ["cosine_distances", "min_squared_distances", "normalize_rows", "squared_distances"]


def squared_distances(X: Any, P: Any, *, center: Any = None, P_sqnorm: Any = None) -> Any:
    """``||x - p||^2`` between every row of ``X`` and every row of ``P``.

    Parameters
    ----------
    X : ndarray or tensor of shape (..., n_features)
        Rows; leading axes (e.g. a patch axis) are kept. Integer (or boolean)
        arrays are computed in float64; tensors must be floating.
    P : ndarray or tensor of shape (n_prototypes, n_features)
        Prototypes, of the same type and dtype as ``X``.
    center : ndarray or tensor of shape (n_features,), default=None
        Subtracted from both before the expansion (see the module docstring).
    P_sqnorm : ndarray or tensor of shape (n_prototypes,), default=None
        ``||p||^2`` of every row of ``P`` (after centring), when precomputed.

    Returns
    -------
    D : ndarray or tensor of shape (..., n_prototypes)
        Squared distances, clipped at 0 (differentiable for tensors).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import squared_distances
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0]]) + 1e8  # far from the origin
    >>> squared_distances(X, X[:1], center=X.mean(0))
    array([[ 0.],
           [25.]])
    """
    if not is_torch(X):  # integer rows: in float64 (``D *= -2.0`` could not cast back)
        X, P = (a if np.asarray(a).dtype.kind in "fc" else np.asarray(a, float) for a in (X, P))
    if center is not None:
        X = X - center
        P = P - center
    if P_sqnorm is None:
        P_sqnorm = row_sqnorms(P)[..., 0]
    X_sqnorm = row_sqnorms(X)
    if is_torch(X):
        torch = namespace(X)
        training = torch.is_grad_enabled() and (X.requires_grad or P.requires_grad)
        if X.dim() != 2:
            if training:
                return (X_sqnorm - 2.0 * (X @ P.T) + P_sqnorm).clamp_min(0.0)
            # leading axes: as rows of a matrix, refined too (they were not: a
            # distance of 8e-4 read 0.0078 in float32 far from the origin)
            flat = squared_distances(X.reshape(-1, X.shape[-1]), P, P_sqnorm=P_sqnorm)
            return flat.reshape(*X.shape[:-1], -1)
        D = torch.addmm(P_sqnorm, X, P.T, alpha=-2.0)  # ||p||^2 - 2 x.p, one fused product
        if training:
            return (D + X_sqnorm).clamp_min(0.0)  # training: the plain expansion
        D.add_(X_sqnorm).clamp_min_(0.0)
        _refine(D, X, P, X_sqnorm, P_sqnorm)
        return D
    D = X @ P.T
    D *= -2.0
    D += P_sqnorm
    D += X_sqnorm
    np.maximum(D, 0, out=D)
    if D.size:  # (leading axes: refined as the rows of a matrix, views of D and X)
        p = X.shape[-1]
        _refine(D.reshape(-1, D.shape[-1]), X.reshape(-1, p), P, X_sqnorm.reshape(-1, 1), P_sqnorm)
    return D


def _refine(D, X, P, X_sqnorm, P_sqnorm) -> None:
    """Recompute in place, as ``||x - p||^2``, the entries that cancellation dominates.

    The expansion's error is about ``eps (||x||^2 + ||p||^2)``; entries below
    ``eps^(1/3)`` times that scale (relative error above ``eps^(2/3)``:
    3.6e-11 in float64, 2.4e-5 in float32) are recomputed. They are the
    (near-)coincident pairs, usually a handful; they are processed in
    batches of bounded size.
    """
    if D.shape[0] == 0 or D.shape[1] == 0:
        return
    eps = float(np.finfo(str(D.dtype).split(".")[-1]).eps)
    tol = eps ** (1.0 / 3.0)
    # usually nothing to do, and one comparison of three numbers says so
    if float(D.min()) > tol * (float(X_sqnorm.max()) + float(P_sqnorm.max())):
        return
    # rows that can hold such an entry (few), then the entries within them
    if is_torch(D):
        torch = namespace(D)
        near = D.amin(1) <= tol * (X_sqnorm[:, 0] + P_sqnorm.max())
        cand = torch.nonzero(near).flatten()
        r, c = torch.nonzero(D[cand] <= tol * (X_sqnorm[cand] + P_sqnorm), as_tuple=True)
        rows, cols = cand[r], c
    else:
        near = D.min(axis=1) <= tol * (X_sqnorm[:, 0] + P_sqnorm.max())
        cand = np.flatnonzero(near)
        if len(cand) == 0:
            return
        r, cols = np.nonzero(D[cand] <= tol * (X_sqnorm[cand] + P_sqnorm))
        rows = cand[r]
    if len(rows) == 0:
        return
    step = max(1, _chunking.CHUNK_ELEMENTS // max(X.shape[1], 1))
    for s in range(0, len(rows), step):
        r, c = rows[s : s + step], cols[s : s + step]
        diff = X[r] - P[c]
        D[r, c] = (diff * diff).sum(-1)


def normalize_rows(X: Any, tol: float = 0.0) -> Any:
    """Rows scaled to unit L2 norm; rows of norm <= ``tol`` become zero.

    For tensors, torch's ``normalize``: rows are divided by ``max(norm,
    1e-12)``, so zero rows stay zero and rows of smaller norm shrink rather
    than vanish (``tol`` is not read). The numpy path squares the entries: rows
    whose squared norm under- or overflows (norms near 1e-160 or 1e160, 1e20
    in float32) become zero; the estimators refuse such data before.

    Parameters
    ----------
    X : ndarray or tensor of shape (..., n_features)
        Rows.
    tol : float, default=0.0
        Rows of norm at most this become zero (numpy only).

    Returns
    -------
    ndarray or tensor of the shape of ``X``
        The rows of unit norm (or zero).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import normalize_rows
    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    if is_torch(X):
        import torch

        return torch.nn.functional.normalize(X, dim=-1)
    norms = np.sqrt(row_sqnorms(X))
    keep = (norms > tol) | np.isnan(norms)  # (a NaN row stays NaN, not a zero row)
    return np.where(keep, X, 0) / np.where(keep, norms, 1)


def cosine_distances(X: Any, P: Any, *, P_normalized: bool = False) -> Any:
    """``1 - cos(x, p)`` between every row of ``X`` (any leading axes) and of ``P``.

    A zero row has cosine 0 with everything (distance 1). ``P_normalized``
    says that ``P``'s rows already have unit norm (or are zero).

    Parameters
    ----------
    X : ndarray or tensor of shape (..., n_features)
        Rows; leading axes are kept.
    P : ndarray or tensor of shape (n_prototypes, n_features)
        Prototypes, of the same type as ``X``.
    P_normalized : bool, default=False
        Whether ``P``'s rows already have unit norm (or are zero).

    Returns
    -------
    ndarray or tensor of shape (..., n_prototypes)
        In ``[0, 2]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import cosine_distances
    >>> cosine_distances(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    array([[0., 1., 2.]])
    """
    Pn = P if P_normalized else normalize_rows(P)
    D = 1.0 - normalize_rows(X) @ Pn.T
    # (rounding put self-distances at -4e-16 and opposite rows at 2 + 4e-16; a
    # tensor that is being differentiated keeps them, and its gradients)
    if is_torch(D):
        return D if D.requires_grad else D.clamp_(0.0, 2.0)
    return np.clip(D, 0.0, 2.0, out=D)


def min_squared_distances(X: np.ndarray, P: np.ndarray, *, floor: float = 0.0) -> np.ndarray:
    """Squared distance of each row of ``X`` to its nearest row of ``P`` (chunked numpy).

    Squared distances below ``floor`` do not count (a prototype placed on the
    row itself, as when a class has no more rows than prototypes); a row
    with none at or beyond it gets ``inf``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Rows.
    P : ndarray of shape (n_prototypes, n_features)
        Prototypes.
    floor : float, default=0.0
        Squared distances below this are ignored.

    Returns
    -------
    ndarray of shape (n_rows,)
        Least squared distance of each row (``inf`` if none counts).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import min_squared_distances
    >>> X, P = np.array([[0.0], [1.0], [5.0]]), np.array([[0.0], [4.0]])
    >>> min_squared_distances(X, P)
    array([0., 1., 1.])
    >>> min_squared_distances(X, P, floor=0.5)  # the first row's prototype is itself
    array([16.,  1.,  1.])
    """
    # a floating result (integer rows truncated the distances, and inf became -2**63)
    out = np.empty(len(X), dtype=np.result_type(X, P, np.float32))
    if not len(P):  # no prototype: none is near
        out[:] = np.inf
        return out
    center = P.mean(axis=0)
    for s in chunk_slices(len(X), max(len(P), X.shape[1])):
        sq = squared_distances(X[s], P, center=center)
        if floor > 0:
            sq[sq < floor] = np.inf
        out[s] = sq.min(axis=1)
    return out
