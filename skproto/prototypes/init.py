"""Initial prototypes: class-wise k-means++."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from .._chunking import chunk_slices

__all__ = ["class_members", "classwise_kmeans", "kmeans_prototypes"]

#: Rows of a class that k-means reads at most (evenly spaced beyond).
KMEANS_ROWS = 20_000


def _one_thread_kmeans() -> threadpool_limits:
    """A block in which scikit-learn's k-means runs on one OpenMP thread.

    Class-wise k-means solves many small problems (CLINC150: 150 of about 80
    rows); on more threads (a fit with ``n_jobs`` of 2 or more: ``None`` is
    one thread already) each Lloyd iteration's parallel region costs more in
    thread start-up and barriers than its work, above all on busy cores,
    where a barrier waits for a descheduled thread (150 classes of CLINC150
    with 2 threads 3.0-3.7 s, one thread 1.0-1.3 s, at a load of 3.6 on 2
    cores). The centres are the same: Lloyd reduces chunks of 256 rows, so
    a class of fewer rows is one chunk whatever the threads.
    """
    return threadpool_limits(limits=1, user_api="openmp")


def jitter_scale(Z: np.ndarray) -> float:
    """1e-3 times the root mean variance of the features of ``Z``, in row chunks
    (``Z.std()`` held two float64 copies of ``Z``).

    Each feature about its own mean: about one mean of all entries, a feature's
    offset counted as spread (one-row classes beside a feature at 1e4 were
    jittered by about 100 units: RBF's robust model read 0.356 on them where
    0.52 fits). Rows without spread (one distinct row, a stream's first batch)
    fall back to the entries' spread about their one mean, the only size such
    a row has in ``Z``'s units (1e-3 if that is 0 too).
    """
    if not Z.size:
        return 1e-3
    Z2 = Z.reshape(len(Z), -1)
    for mean in (np.mean(Z2, axis=0, dtype=np.float64), np.mean(Z2, dtype=np.float64)):
        total = 0.0
        for s in chunk_slices(len(Z2), Z2.shape[1]):
            block = np.asarray(Z2[s], dtype=np.float64) - mean
            total += float(np.vdot(block, block))
        if total > 0:
            return 1e-3 * float(np.sqrt(total / Z2.size))
    return 1e-3


def class_members(T: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """Row indices of each class: ``T`` holds integer codes or a 0/1 indicator.

    Parameters
    ----------
    T : ndarray of shape (n_rows,) or (n_rows, n_classes)
        Integer class codes, or a 0/1 indicator of the classes (multi-label).
    n_classes : int
        Number of classes.

    Returns
    -------
    list of n_classes ndarrays
        Each class's rows, in increasing order.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes import class_members
    >>> class_members(np.array([1, 0, 1]), 3)
    [array([1]), array([0, 2]), array([], dtype=int64)]
    """
    if T.ndim == 2:
        return [np.flatnonzero(T[:, c] > 0) for c in range(n_classes)]
    order = np.argsort(T, kind="stable")
    bounds = np.searchsorted(T[order], np.arange(n_classes + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(n_classes)]


def kmeans_prototypes(
    members: np.ndarray,
    Z: np.ndarray,
    k: int,
    rng: np.random.RandomState,
    scale: float | None = None,
) -> np.ndarray:
    """``k`` initial prototypes from a class's rows ``members`` (k-means++, seeded by ``rng``).

    A class with fewer distinct rows than ``k`` starts from its rows, repeated
    and jittered by ``scale`` (default: 1e-3 times the std of ``Z``, all
    rows); an empty class at the mean of ``Z``, jittered. Of a class of more
    than ``KMEANS_ROWS`` rows, that many evenly spaced ones are read.

    Parameters
    ----------
    members : ndarray of shape (n_members, n_features)
        The class's rows.
    Z : ndarray of shape (n_rows, n_features)
        All rows (for the scale, and an empty class's mean).
    k : int
        Number of prototypes.
    rng : RandomState
        Seeds k-means and draws the jitter.
    scale : float, default=None
        Standard deviation of the jitter; None for 1e-3 times the std of ``Z``.

    Returns
    -------
    ndarray of shape (k, n_features)
        The initial prototypes.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes import kmeans_prototypes
    >>> Z = np.array([[0.0], [0.1], [10.0], [10.1]])
    >>> np.sort(kmeans_prototypes(Z, Z, 2, np.random.RandomState(0)), axis=0).round(2)
    array([[ 0.05],
           [10.05]])
    """
    if scale is None:
        scale = jitter_scale(Z)
    if len(members) > KMEANS_ROWS:  # evenly spaced rows: a start needs no more (149,000
        # rows of a new class took 870 MB in k-means and its copies)
        members = members[np.linspace(0, len(members) - 1, KMEANS_ROWS).astype(np.intp)]
    if len(members) == 0:  # class absent from the data seen at initialisation
        return Z.mean(0) + scale * rng.standard_normal((k, Z.shape[1]))
    first = _few_distinct_rows(members, k)
    if first is not None:  # its distinct rows, in order, each before any repeats
        # (four copies of one row and one other row: all three prototypes sat on
        # the copies, and the other row had none)
        distinct = members[first]
        rows = distinct[np.arange(k) % len(distinct)]
        return rows + scale * rng.standard_normal(rows.shape)
    km = KMeans(n_clusters=k, n_init=1, random_state=rng.randint(np.iinfo(np.int32).max))
    return km.fit(members).cluster_centers_


def starts_on_copies(members: np.ndarray, k: int) -> bool:
    """Whether :func:`kmeans_prototypes` starts the ``k`` prototypes of a class
    of rows ``members`` on its rows, jittered (fewer than ``k`` distinct rows):
    each prototype is then a row moved by about its ``scale`` per feature.
    """
    if len(members) > KMEANS_ROWS:  # (the rows kmeans_prototypes reads)
        members = members[np.linspace(0, len(members) - 1, KMEANS_ROWS).astype(np.intp)]
    return len(members) > 0 and _few_distinct_rows(members, k) is not None


def _has_distinct_rows(rows: np.ndarray, k: int) -> bool:
    """Whether ``rows`` holds at least ``k`` distinct rows (see :func:`_few_distinct_rows`)."""
    return _few_distinct_rows(rows, k) is None


def _few_distinct_rows(rows: np.ndarray, k: int) -> np.ndarray | None:
    """None where ``rows`` holds at least ``k`` distinct rows (compared by value, as
    ``np.unique(rows, axis=0)`` compares them); else the position of each distinct
    row's first occurrence, in order.

    It stops at the ``k``-th distinct row: most classes' first ``k`` rows already
    differ, and sorting every row of every class for this took a third of
    class-wise k-means (500 classes of 10 rows). Past its first ``4 k + 16``
    rows (many repeats) it sorts them after all, once: comparing each row with
    the distinct ones in Python took 37 times as long on 20,000 rows of 49
    distinct values.
    """
    seen: list = []
    for i, row in enumerate(rows[: 4 * k + 16]):
        if not any(np.array_equal(row, rows[j]) for j in seen):
            seen.append(i)
            if len(seen) >= k:
                return None
    if len(rows) <= 4 * k + 16:
        return np.array(seen, dtype=np.intp)
    _, first = np.unique(rows, axis=0, return_index=True)
    return None if len(first) >= k else np.sort(first)


def classwise_kmeans(
    Z: np.ndarray,
    T: np.ndarray,
    counts: np.ndarray,
    rng: np.random.RandomState,
    *,
    own_rows_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[c]`` k-means++ prototypes per class ``c``, class-major.

    Returns the prototypes (n_prototypes, n_features) and the class code of
    each. ``T`` holds integer codes or a 0/1 indicator (multi-label). With
    ``own_rows_only`` a class without rows in ``T`` gets none (heads that score
    a class by its own prototypes only: a class declared to ``partial_fit``
    before its rows arrive, or whose rows all weigh 0, scores -inf); else it
    starts at the mean of ``Z`` (see :func:`kmeans_prototypes`).

    Parameters
    ----------
    Z : ndarray of shape (n_rows, n_features)
        Rows.
    T : ndarray of shape (n_rows,) or (n_rows, n_classes)
        Integer class codes, or a 0/1 indicator of the classes (multi-label).
    counts : ndarray of shape (n_classes,)
        Prototypes wanted per class.
    rng : RandomState
        Seeds k-means and draws the jitter.
    own_rows_only : bool, default=False
        Give a class without rows no prototypes (instead of jittered means).

    Returns
    -------
    prototypes : ndarray of shape (n_prototypes, n_features)
        The initial prototypes, class-major.
    codes : ndarray of shape (n_prototypes,)
        Class code of each prototype.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes import classwise_kmeans
    >>> Z, T = np.array([[0.0], [1.0], [9.0]]), np.array([0, 0, 1])
    >>> P, codes = classwise_kmeans(Z, T, np.array([1, 1]), np.random.RandomState(0))
    >>> P.ravel().tolist(), codes.tolist()
    ([0.5, 9.0], [0, 1])
    """
    members = class_members(T, len(counts))
    if own_rows_only:
        counts = np.where([len(m) > 0 for m in members], counts, 0)
    scale = jitter_scale(Z)  # once, not once per class
    with _one_thread_kmeans():
        P = [
            kmeans_prototypes(Z[members[c]], Z, int(k), rng, scale)
            for c, k in enumerate(counts)
            if k
        ]
    codes = np.repeat(np.arange(len(counts)), counts)
    return np.concatenate(P), codes
