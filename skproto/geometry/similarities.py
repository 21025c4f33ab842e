"""Similarities from squared distances (numpy arrays or torch tensors)."""

from __future__ import annotations

from numbers import Real
from typing import Any

from ._array import namespace

__all__ = ["LOG_EPS", "cosine_similarity", "log_similarity", "rbf_similarity"]

#: ProtoPNet's epsilon in ``log((d + 1) / (d + eps))``.
LOG_EPS = 1e-4


def log_similarity(d: Any, eps: float = LOG_EPS) -> Any:
    """ProtoPNet's ``log((d + 1) / (d + eps))`` of squared distances ``d``.

    Computed as ``log1p((1 - eps) / (d + eps))``: no cancellation for large
    ``d`` and no overflow for huge ones.

    Parameters
    ----------
    d : ndarray or tensor
        Squared distances (>= 0).
    eps : float, default=1e-4
        Bounds the similarity at ``d = 0``: ``log(1 / eps)``.

    Returns
    -------
    ndarray or tensor of the shape of ``d``
        Decreasing in ``d``, 0 at ``d = inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import log_similarity
    >>> log_similarity(np.array([0.0, 1.0, np.inf])).round(4)
    array([9.2103, 0.693 , 0.    ])
    """
    if isinstance(eps, Real) and not 0.0 < eps < 1.0:  # (-1 gave NaN and inf)
        raise ValueError(f"eps must be in (0, 1), got {eps!r}.")
    return namespace(d).log1p((1.0 - eps) / (d + eps))


def rbf_similarity(d: Any, width: float) -> Any:
    """``exp(-d / width)`` of squared distances ``d``.

    Parameters
    ----------
    d : ndarray or tensor
        Squared distances (>= 0).
    width : float
        Squared distance at which the similarity is ``1 / e``.

    Returns
    -------
    ndarray or tensor of the shape of ``d``
        Similarities in (0, 1], 1 at ``d = 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import rbf_similarity
    >>> rbf_similarity(np.array([0.0, 2.0]), width=2.0).round(4)
    array([1.    , 0.3679])
    """
    if isinstance(width, Real) and not 0.0 < width < float("inf"):  # (0 gave NaN, -1 > 1)
        raise ValueError(f"width must be a positive finite number, got {width!r}.")
    return namespace(d).exp(-d / width)


def cosine_similarity(d: Any) -> Any:
    """``1 - d`` of cosine distances ``d``: the cosine itself.

    Parameters
    ----------
    d : ndarray or tensor
        Cosine distances, ``1 - cos``, in ``[0, 2]``.

    Returns
    -------
    ndarray or tensor of the shape of ``d``
        Cosines, in ``[-1, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.geometry import cosine_similarity
    >>> cosine_similarity(np.array([0.0, 1.0, 2.0]))
    array([ 1.,  0., -1.])
    """
    return 1.0 - d
