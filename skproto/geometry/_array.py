"""Tiny helpers that let one formula serve numpy arrays and torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(a: Any) -> bool:
    """Whether ``a`` is a torch tensor (checked without importing torch)."""
    return type(a).__module__.startswith("torch")


def namespace(a: Any):
    """``torch`` for a tensor, ``numpy`` otherwise."""
    if is_torch(a):
        import torch

        return torch
    return np


def row_sqnorms(a: Any):
    """Squared L2 norm of every row (last axis), keeping the axis."""
    if is_torch(a):
        return (a * a).sum(-1, keepdim=True)
    return np.einsum("...j,...j->...", a, a)[..., None]
