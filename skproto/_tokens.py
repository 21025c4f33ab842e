"""skproto's token layout: a sequence of token embeddings as one row of a 2-D ``X``.

A sentence of up to ``n_tokens`` tokens with ``d``-dimensional embeddings is
stored as one row of width ``n_tokens * (d + 1)``: first the ``n_tokens``
embeddings one after another (token ``t`` in columns ``t*d : (t+1)*d``,
zeros for empty slots), then ``n_tokens`` mask columns (1 for a real token,
0 for an empty slot). So token data fits scikit-learn's 2-D ``X`` (pipelines,
cross-validation and pickling work unchanged), and a model told ``n_tokens``
reads the tokens back. ``SentenceEncoder(output="tokens")`` writes it;
``ProtoClassifier(n_tokens=...)`` reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["check_token_layout", "pack_tokens", "token_dim", "unpack_tokens"]


def token_dim(n_columns: int, n_tokens: int) -> int:
    """The embedding width ``d`` of rows of ``n_columns`` columns with ``n_tokens`` slots.

    Parameters
    ----------
    n_columns : int
        Width of the rows, ``n_tokens * (d + 1)``.
    n_tokens : int
        Token slots per row.

    Returns
    -------
    int
        The embedding width ``d`` (a ValueError unless it is at least 1).
    """
    if n_tokens < 1 or n_columns % n_tokens or n_columns // n_tokens < 2:
        raise ValueError(
            f"X has {n_columns} columns, which is not n_tokens * (d + 1) for n_tokens="
            f"{n_tokens} and any d >= 1: token data must be in skproto's token layout "
            "(see skproto.encoders.SentenceEncoder(output='tokens'))."
        )
    return n_columns // n_tokens - 1


def check_token_layout(X: np.ndarray, n_tokens: int, y: np.ndarray | None = None) -> None:
    """Raise a ValueError unless ``X`` is in the token layout: the width fits
    ``n_tokens``, and the mask columns hold 0 or 1. With training labels ``y``,
    some row must have a real token, and so must some row of every class (a
    class without one has nothing a prototype could be).

    Parameters
    ----------
    X : ndarray of shape (n, n_tokens * (d + 1))
        Rows to check.
    n_tokens : int
        Token slots per row.
    y : ndarray of shape (n,) or (n, n_classes), default=None
        Training labels (an indicator matrix for multi-label data); None skips
        the checks of real tokens.
    """
    token_dim(X.shape[1], n_tokens)
    mask = X[:, X.shape[1] - n_tokens :]
    bad = ~((mask == 0) | (mask == 1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"X's last {n_tokens} columns are the token mask (1: a real token, 0: an empty "
            f"slot), but row {row} holds {mask[row, col]:.4g} there: X is not in skproto's "
            "token layout (see skproto.encoders.SentenceEncoder(output='tokens'))."
        )
    if y is None or not len(X):
        return
    real = mask.any(axis=1)
    if not real.any():
        raise ValueError("No row of X has a real token (its mask columns are all 0).")
    if np.ndim(y) == 1:
        classes, codes = np.unique(y, return_inverse=True)
        empty = np.bincount(codes[real], minlength=len(classes)) == 0
        if empty.any():
            raise ValueError(
                f"No row of class(es) {classes[empty].tolist()!r} has a real token "
                "(their mask columns are all 0): there is nothing a prototype could be."
            )
    elif np.ndim(y) == 2:  # a label with rows, none with a real token (fitted silently before)
        Y = np.asarray(y) > 0
        empty = Y.any(axis=0) & ~Y[real].any(axis=0)
        if empty.any():
            raise ValueError(
                f"No row of label(s) {np.flatnonzero(empty).tolist()!r} has a real token "
                "(their mask columns are all 0): there is nothing a prototype could be."
            )


def pack_tokens(embeddings: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Rows of the token layout from ``embeddings`` (n, n_tokens, d) and ``mask`` (n, n_tokens).

    Each row holds its token vectors one after the other (empty slots
    zeroed), then the mask (1: a real token, 0: an empty slot): the input of
    ``ProtoClassifier(n_tokens=...)``.

    Parameters
    ----------
    embeddings : array-like of shape (n, n_tokens, d)
        Token embeddings.
    mask : array-like of shape (n, n_tokens)
        1 for a real token, 0 for an empty slot.

    Returns
    -------
    ndarray of shape (n, n_tokens * (d + 1))
        The rows, in the dtype of ``embeddings``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.encoders import pack_tokens, unpack_tokens
    >>> E = np.arange(8.0).reshape(1, 2, 4)
    >>> X = pack_tokens(E, [[1, 0]])  # the second slot is empty
    >>> X
    array([[0., 1., 2., 3., 0., 0., 0., 0., 1., 0.]])
    >>> values, mask = unpack_tokens(X, n_tokens=2)
    >>> values.shape, mask.tolist()
    ((1, 2, 4), [[True, False]])
    """
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 3:
        raise ValueError(
            "embeddings must be of shape (n, n_tokens, d), one vector per token slot; got "
            f"shape {embeddings.shape}."
        )
    n, t, d = embeddings.shape
    given = np.asarray(mask)
    if given.shape != (n, t) or not np.isin(given, (0, 1)).all():
        # (a transposed mask was reshaped into a scrambled one; a 0.3 kept the token's
        # values where unpack_tokens reads it as empty)
        raise ValueError(
            f"mask must be of shape ({n}, {t}), one entry per token slot of embeddings, "
            f"each 1 (a real token) or 0 (an empty slot); got shape {given.shape}."
        )
    mask = given.astype(embeddings.dtype)
    values = np.where(mask[..., None] > 0, embeddings, 0).reshape(n, t * d)
    return np.concatenate([values, mask], axis=1)


def unpack_tokens(X: Any, n_tokens: int) -> tuple[Any, Any]:
    """``(embeddings (n, n_tokens, d), mask (n, n_tokens) as booleans)`` of token-layout rows.

    Works on numpy arrays and torch tensors; the embeddings are a view. The
    inverse of :func:`pack_tokens` (whose Examples show both).

    Parameters
    ----------
    X : ndarray or tensor of shape (..., n_tokens * (d + 1))
        Rows in the token layout.
    n_tokens : int
        Token slots per row.

    Returns
    -------
    embeddings : ndarray or tensor of shape (..., n_tokens, d)
        The token embeddings (a view of ``X``).
    mask : ndarray or tensor of shape (..., n_tokens)
        True for a real token.

    Examples
    --------
    >>> import torch
    >>> from skproto.encoders import unpack_tokens
    >>> X = torch.tensor([[1.0, 2.0, 3.0, 4.0, 1.0, 0.0]])  # two tokens of d=2, the second empty
    >>> E, mask = unpack_tokens(X, n_tokens=2)
    >>> tuple(E.shape), E[0, 0].tolist(), mask.tolist()
    ((1, 2, 2), [1.0, 2.0], [[True, False]])
    """
    d = token_dim(X.shape[-1], n_tokens)
    values = X[..., : n_tokens * d].reshape(*X.shape[:-1], n_tokens, d)
    mask = X[..., n_tokens * d :] > 0.5
    return values, mask
