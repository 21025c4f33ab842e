"""Row chunks of bounded size: how every skproto computation bounds its memory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = [
    "CHUNK_ELEMENTS",
    "Float64Rows",
    "chunk_slices",
    "is_dask",
    "prototype_row_elements",
    "take_rows",
    "take_rows_of",
]

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


class Float64Rows:
    """float32 rows that read as float64, one chunk at a time.

    What prediction gets where float32 rows must be computed in float64: the
    chunk loops index it (``X[s]`` is a float64 copy of those rows only), so
    the whole of ``X`` is never copied (``X.astype(np.float64)`` took twice
    X's memory before any chunk). Anything else that reads it as an array
    (``np.asarray``, arithmetic) gets the whole float64 copy, as before.

    Parameters
    ----------
    rows : ndarray of shape (n_samples, n_features)
        The float32 rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto._chunking import Float64Rows
    >>> X = Float64Rows(np.ones((4, 2), dtype=np.float32))
    >>> X.shape, X.dtype, X[:2].dtype, len(X)
    ((4, 2), dtype('float64'), dtype('float64'), 4)
    """

    dtype = np.dtype(np.float64)

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    @property
    def shape(self) -> tuple:
        return self.rows.shape

    @property
    def ndim(self) -> int:
        return self.rows.ndim

    @property
    def size(self) -> int:
        return self.rows.size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.rows[key], dtype=np.float64)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.rows.astype(np.float64 if dtype is None else dtype)


def prototype_row_elements(n_features: int, n_prototypes: int, n_tokens: int | None) -> int:
    """Entries one input row needs against ``n_prototypes``: its width, or its distances
    to them, which a token row (``n_tokens`` slots) holds per token before pooling
    (counted as ``n_prototypes``, a chunk of token rows was ``n_tokens`` times the
    budget: 30,000 rows of 32 tokens x 1,000 prototypes took fit's peak from 0.98 to
    1.65 GB)."""
    return max(n_features, max(1, n_tokens or 0) * n_prototypes)


def is_dask(X) -> bool:
    """Whether ``X`` is a dask collection (checked without importing dask)."""
    return type(X).__module__.startswith("dask.") and hasattr(X, "map_blocks")


def is_dask_frame(X) -> bool:
    """A dask DataFrame or Series (checked without importing dask).

    Here, beside :func:`is_dask`, rather than in :mod:`skproto.parallel`: the
    explanation helpers check for a frame, and importing that package (scikit-learn's
    clustering with it) added about 170 ms to a process's first ``make_report``.

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    bool
        Whether ``X`` is a dask DataFrame or Series (also dask-expr 1.x's, of
        module ``dask_expr._collection``, before dask 2025.1 merged it in).
    """
    module = type(X).__module__
    return module.startswith(("dask.", "dask_expr.")) and hasattr(X, "to_dask_array")


def take_rows(X, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` as a numpy array; on a dask array only the blocks holding them are read."""
    return take_rows_of((X,), rows)[0]


def take_rows_of(arrays: tuple, rows: np.ndarray) -> list[np.ndarray]:
    """``a[rows]`` of each of ``arrays`` (aligned rows), dask ones computed together."""
    rows = np.asarray(rows, dtype=np.intp)
    if not any(is_dask(a) for a in arrays):
        return [a[rows] for a in arrays]
    import dask

    order = np.argsort(rows, kind="stable")  # dask reads sorted rows block by block
    got = dask.compute(*[a[rows[order]] for a in arrays]) if len(rows) else None
    out = []
    for k, a in enumerate(arrays):
        part = np.empty((len(rows),) + a.shape[1:], dtype=a.dtype)
        if len(rows):
            part[order] = np.asarray(got[k])
        out.append(part)
    return out
