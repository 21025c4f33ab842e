"""Distances between rows and prototypes: one implementation, numpy and torch.

Every squared Euclidean distance in skproto -- prediction, training,
initialisation, projection and certificates -- is computed here, by the
expansion ``||x||^2 - 2 x.p + ||p||^2`` (one matrix product), after subtracting
a common ``center`` from both sides. Distances do not change under a common
shift, but the expansion loses about ``eps * (||x||^2 + ||p||^2)`` to
cancellation, so centring on the data makes it accurate for data far from the
origin (float32 data at ``x * 1.37 + 100``, say).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._chunking import chunk_slices
from ._array import is_torch, namespace, row_sqnorms

__all__ = ["cosine_distances", "min_squared_distances", "normalize_rows", "squared_distances"]


def squared_distances(X: Any, P: Any, *, center: Any = None, P_sqnorm: Any = None) -> Any:
    """``||x - p||^2`` between every row of ``X`` and every row of ``P``.

    Parameters
    ----------
    X : ndarray or tensor of shape (..., n_features)
        Rows; leading axes (e.g. a patch axis) are kept.
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
    """
    if center is not None:
        X = X - center
        P = P - center
    if P_sqnorm is None:
        P_sqnorm = row_sqnorms(P)[..., 0]
    if is_torch(X):
        if X.dim() == 2:  # ||p||^2 - 2 x.p in one fused product
            D = namespace(X).addmm(P_sqnorm, X, P.T, alpha=-2.0) + row_sqnorms(X)
        else:
            D = row_sqnorms(X) - 2.0 * (X @ P.T) + P_sqnorm
        return D.clamp_min(0.0)
    D = X @ P.T
    D *= -2.0
    D += P_sqnorm
    D += row_sqnorms(X)
    return np.maximum(D, 0, out=D)


def normalize_rows(X: Any, tol: float = 0.0) -> Any:
    """Rows scaled to unit L2 norm; rows of norm <= ``tol`` become zero.

    For tensors, torch's ``normalize`` (zero rows stay zero; ``tol`` is 1e-12).
    """
    if is_torch(X):
        import torch

        return torch.nn.functional.normalize(X, dim=-1)
    norms = np.sqrt(row_sqnorms(X))
    return np.where(norms > tol, X, 0) / np.where(norms > tol, norms, 1)


def cosine_distances(X: Any, P: Any, *, P_normalized: bool = False) -> Any:
    """``1 - cos(x, p)`` between every row of ``X`` (any leading axes) and of ``P``.

    A zero row has cosine 0 with everything (distance 1). ``P_normalized``
    says that ``P``'s rows already have unit norm (or are zero).
    """
    Pn = P if P_normalized else normalize_rows(P)
    return 1.0 - normalize_rows(X) @ Pn.T


def min_squared_distances(X: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Squared distance of each row of ``X`` to its nearest row of ``P`` (chunked numpy)."""
    out = np.empty(len(X), dtype=np.result_type(X, P))
    center = P.mean(axis=0) if len(P) else None
    for s in chunk_slices(len(X), len(P)):
        out[s] = squared_distances(X[s], P, center=center).min(axis=1)
    return out
