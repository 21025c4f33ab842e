"""Row chunks of bounded size: how every skproto computation bounds its memory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["CHUNK_ELEMENTS", "chunk_slices", "is_dask", "take_rows"]

#: Number of float entries in one chunk of a (rows x columns) work array. Small
#: enough to stay in cache-friendly blocks, large enough for efficient BLAS.
#: Read at call time, so tests can shrink it to force many chunks.
CHUNK_ELEMENTS = 2**22


def chunk_slices(n_rows: int, row_elements: int) -> Iterator[slice]:
    """Row slices such that one chunk holds about ``CHUNK_ELEMENTS`` entries.

    ``row_elements`` is the number of entries one row needs in the largest
    work array of the computation (e.g. ``max(n_prototypes, n_features)``).
    """
    rows = max(1, CHUNK_ELEMENTS // max(int(row_elements), 1))
    return (slice(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows))


def is_dask(X) -> bool:
    """Whether ``X`` is a dask collection (checked without importing dask)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "map_blocks")


def take_rows(X, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` as a numpy array; on a dask array only the blocks holding them are read."""
    rows = np.asarray(rows, dtype=np.intp)
    if not is_dask(X):
        return X[rows]
    if not len(rows):
        return np.empty((0,) + X.shape[1:], dtype=X.dtype)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows),) + X.shape[1:], dtype=X.dtype)
    out[order] = np.asarray(X[rows[order]].compute())
    return out
