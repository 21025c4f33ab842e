"""Tiny helpers that let one formula serve numpy arrays and torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(a: Any) -> bool:
    """Whether ``a`` is a torch tensor (checked without importing torch).

    Parameters
    ----------
    a : object
        An array, tensor or anything else.

    Returns
    -------
    bool
        True for a torch object.
    """
    return type(a).__module__.startswith("torch")


def namespace(a: Any):
    """``torch`` for a tensor, ``numpy`` otherwise.

    Parameters
    ----------
    a : ndarray or tensor
        An array or tensor.

    Returns
    -------
    module
        The ``torch`` or ``numpy`` module.
    """
    if is_torch(a):
        import torch

        return torch
    return np


def row_sqnorms(a: Any):
    """Squared L2 norm of every row (last axis), keeping the axis.

    Parameters
    ----------
    a : ndarray or tensor of shape (..., n_features)
        Rows.

    Returns
    -------
    ndarray or tensor of shape (..., 1)
        ``||row||^2`` of each row.
    """
    if is_torch(a):
        return (a * a).sum(-1, keepdim=True)
    return np.einsum("...j,...j->...", a, a)[..., None]
