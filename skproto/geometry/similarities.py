"""Similarities from squared distances (numpy arrays or torch tensors)."""

from __future__ import annotations

from typing import Any

from ._array import namespace

__all__ = ["LOG_EPS", "cosine_similarity", "log_similarity", "rbf_similarity"]

#: ProtoPNet's epsilon in ``log((d + 1) / (d + eps))``.
LOG_EPS = 1e-4


def log_similarity(d: Any, eps: float = LOG_EPS) -> Any:
    """ProtoPNet's ``log((d + 1) / (d + eps))`` of squared distances ``d``.

    Computed as ``log1p((1 - eps) / (d + eps))``: no cancellation for large
    ``d`` and no overflow for huge ones.
    """
    return namespace(d).log1p((1.0 - eps) / (d + eps))


def rbf_similarity(d: Any, width: float) -> Any:
    """``exp(-d / width)`` of squared distances ``d``."""
    return namespace(d).exp(-d / width)


def cosine_similarity(d: Any) -> Any:
    """``1 - d`` of cosine distances ``d``: the cosine itself."""
    return 1.0 - d
