"""Projection ("push"): every prototype becomes a real training row.

Each prototype is moved onto the nearest training row it may take (its own
class's rows, or any row), prototypes of one group going to *distinct* rows
while the group has enough of them, closest pairs first. The search runs over
row chunks and keeps, per prototype, only as many candidate rows as its group
has prototypes, so memory is bounded by ``n_prototypes**2`` plus one chunk,
whatever the number of rows. The greedy choice over those candidates is the
same as over all rows: a prototype's row is never farther down its list than
the number of other prototypes in its group.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .._chunking import chunk_slices
from ..geometry import cosine_distances, squared_distances

__all__ = [
    "candidate_slots",
    "choose_rows",
    "distinct_nearest",
    "merge_candidates",
    "nearest_candidates",
    "project_onto_rows",
]


def _greedy(cand_rows, cand_dist, groups, n_allowed) -> np.ndarray:
    """Distinct nearest candidate per prototype within each group, closest pairs first.

    ``cand_rows``/``cand_dist`` are (n_prototypes, m) candidate rows and
    distances (``inf`` = no candidate). A row is reused within a group only
    once every allowed row of the group is taken. Returns -1 where a
    prototype has no candidate.
    """
    K, m = cand_rows.shape
    out = np.full(K, -1)
    for g in np.unique(groups):
        protos = np.flatnonzero(groups == g)
        rows, dist = cand_rows[protos], cand_dist[protos]
        local, slot = np.nonzero(np.isfinite(dist))
        order = np.lexsort((rows[local, slot], local, dist[local, slot]))
        used: set[int] = set()
        limit = int(n_allowed[protos].max()) if len(protos) else 0
        todo = len(np.unique(local))
        while todo:
            before = todo
            for j in order:
                r, row = local[j], int(rows[local[j], slot[j]])
                if out[protos[r]] >= 0 or row in used:
                    continue
                out[protos[r]] = row
                used.add(row)
                todo -= 1
                if todo == 0:
                    break
                if len(used) >= limit:  # more prototypes than rows: allow reuse
                    used.clear()
            if todo == before:
                break
            # a prototype whose candidates were all taken earlier in the pass
            # (before reuse was allowed) gets one in the next pass
            used.clear()
    return out


def distinct_nearest(dist: np.ndarray) -> np.ndarray:
    """Column for each row of ``dist``: nearest first, greedily, without reuse.

    Pairs are taken in order of increasing distance (ties by row, then
    column); a column is reused only once every column is taken (more rows
    than columns).

    Parameters
    ----------
    dist : ndarray of shape (n_rows, n_cols)
        Distances between rows and columns (``inf``: not allowed).

    Returns
    -------
    ndarray of shape (n_rows,)
        A column for each row.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes import distinct_nearest
    >>> distinct_nearest(np.array([[0.0, 1.0], [0.5, 2.0]]))  # row 1's nearest is taken
    array([0, 1])
    """
    n_rows, n_cols = dist.shape
    cand = np.broadcast_to(np.arange(n_cols), dist.shape)
    return _greedy(cand, dist, np.zeros(n_rows, int), np.full(n_rows, n_cols))


def candidate_slots(groups: np.ndarray) -> int:
    """How many candidate rows each prototype keeps: the size of its largest group.

    Parameters
    ----------
    groups : ndarray of shape (n_prototypes,)
        Group (e.g. class code) of each prototype.

    Returns
    -------
    int
        The number of prototypes in the largest group (0 without prototypes).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.projection import candidate_slots
    >>> candidate_slots(np.array([0, 1, 1, 2, 1]))
    3
    """
    groups = np.asarray(groups)
    return int(np.bincount(np.unique(groups, return_inverse=True)[1]).max()) if len(groups) else 0


def nearest_candidates(
    prototypes: np.ndarray,
    X: np.ndarray,
    *,
    groups: np.ndarray,
    targets: np.ndarray | None = None,
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    metric: str = "sqeuclidean",
    offset: int = 0,
    center: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest allowed rows of ``X`` of every prototype: ``(rows, dist, n_allowed)``.

    One block of a search: ``rows``/``dist`` are (n_prototypes, m) arrays of
    the ``m = candidate_slots(groups)`` nearest rows (numbered from
    ``offset``; ``inf`` distance: none), ``n_allowed`` counts the rows each
    prototype may take. ``targets`` (class codes, or a 2-D indicator)
    restricts prototype ``k`` to rows whose target is ``groups[k]``; None: any
    row. Candidates of blocks combine with :func:`merge_candidates`.
    ``center`` (default: the prototypes' mean) must be the same for all blocks.

    Parameters
    ----------
    prototypes : ndarray of shape (n_prototypes, dim)
        Current prototypes, in the space of ``embed(X)``.
    X : ndarray of shape (n_rows, n_features)
        The block's training rows.
    groups : ndarray of shape (n_prototypes,)
        Group (e.g. class code) of each prototype.
    targets : ndarray of shape (n_rows,) or (n_rows, n_groups), default=None
        Class code (or indicator row) of each row of ``X``; None: any row.
    embed : callable, default=None
        Map from rows of ``X`` to the prototypes' space; None: the identity.
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        Distance between rows and prototypes.
    offset : int, default=0
        Index of the block's first row in the whole data.
    center : ndarray of shape (dim,), default=None
        Centre of the squared distances (see :func:`~skproto.geometry.squared_distances`).

    Returns
    -------
    rows : ndarray of shape (n_prototypes, m)
        The nearest allowed rows (-1: none), nearest first.
    dist : ndarray of shape (n_prototypes, m)
        Their distances (``inf``: none).
    n_allowed : ndarray of shape (n_prototypes,)
        Number of rows of the block each prototype may take.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.projection import nearest_candidates
    >>> X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    >>> P, groups = np.array([[0.4], [0.6], [9.9]]), np.array([0, 0, 1])
    >>> rows, dist, n_allowed = nearest_candidates(P, X, groups=groups, targets=y)
    >>> rows.tolist(), n_allowed.tolist()  # two slots: the largest group has two prototypes
    ([[0, 1], [1, 0], [3, 2]], [2, 2, 2])
    """
    K = len(prototypes)
    m = candidate_slots(groups)
    best_rows = np.full((K, m), -1)
    best_dist = np.full((K, m), np.inf)
    n_allowed = np.zeros(K, dtype=np.intp)
    if center is None:
        center = prototypes.mean(axis=0) if K else None

    def distances(Z, P):
        if metric == "cosine":
            return cosine_distances(Z, P)
        return squared_distances(Z, P, center=center)

    if targets is not None and np.ndim(targets) == 1:
        # class codes: each prototype meets only its own group's rows, so the
        # distances are computed group by group (n_rows x the group's
        # prototypes, not n_rows x all of them)
        members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
        for s in chunk_slices(len(X), max(m, X.shape[1])):
            Z = X[s] if embed is None else embed(X[s])
            Ts = np.asarray(targets[s])
            order = np.argsort(Ts, kind="stable")  # rows of a group stay in row order
            labels, starts = np.unique(Ts[order], return_index=True)
            for g, lo, hi in zip(labels, starts, np.append(starts[1:], len(order))):
                protos = members.get(g)
                if protos is None:
                    continue
                local = order[lo:hi]
                D = distances(Z[local], prototypes[protos])
                n_allowed[protos] += len(local)
                rows = np.broadcast_to(offset + s.start + local, (len(protos), len(local)))
                best_rows[protos], best_dist[protos] = _keep_nearest(
                    np.concatenate([best_rows[protos], rows], axis=1),
                    np.concatenate([best_dist[protos], D.T], axis=1),
                    m,
                )
        return best_rows, best_dist, n_allowed
    for s in chunk_slices(len(X), max(K, X.shape[1])):
        Z = X[s] if embed is None else embed(X[s])
        D = distances(Z, prototypes)
        if targets is not None:
            Ts = targets[s]
            mask = Ts[:, groups] > 0 if Ts.ndim == 2 else Ts[:, None] == groups[None, :]
            D = np.where(mask, D, np.inf)
            n_allowed += mask.sum(axis=0)
        else:
            n_allowed += D.shape[0]
        rows = np.arange(offset + s.start, offset + s.stop)
        best_rows, best_dist = _keep_nearest(
            np.concatenate([best_rows, np.broadcast_to(rows, (K, len(rows)))], axis=1),
            np.concatenate([best_dist, D.T], axis=1),
            m,
        )
    return best_rows, best_dist, n_allowed


def _keep_nearest(rows: np.ndarray, dist: np.ndarray, m: int):
    """The ``m`` nearest candidates per prototype, ties by row index (deterministic)."""
    order = np.lexsort((rows, dist), axis=1)[:, :m]
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(dist, order, axis=1)


def merge_candidates(a: tuple, b: tuple) -> tuple:
    """Candidates of the union of two blocks' rows (from :func:`nearest_candidates`).

    Parameters
    ----------
    a, b : tuple
        ``(rows, dist, n_allowed)`` of each block.

    Returns
    -------
    tuple
        ``(rows, dist, n_allowed)`` of both blocks: the nearest candidates of
        either, and the summed counts.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.projection import merge_candidates, nearest_candidates
    >>> X, P, groups = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([[0.4], [9.9]]), [0, 0]
    >>> a = nearest_candidates(P, X[:2], groups=groups)
    >>> b = nearest_candidates(P, X[2:], groups=groups, offset=2)  # rows 2 and 3
    >>> rows, dist, n_allowed = merge_candidates(a, b)
    >>> rows.tolist(), n_allowed.tolist()  # as one search over all four rows
    ([[0, 1], [3, 2]], [4, 4])
    """
    m = a[0].shape[1]
    rows, dist = _keep_nearest(
        np.concatenate([a[0], b[0]], axis=1), np.concatenate([a[1], b[1]], axis=1), m
    )
    return rows, dist, a[2] + b[2]


def choose_rows(candidates: tuple, groups: np.ndarray) -> np.ndarray:
    """Row of every prototype from merged candidates (-1: none); see :func:`_greedy`.

    Parameters
    ----------
    candidates : tuple
        ``(rows, dist, n_allowed)`` from :func:`nearest_candidates` or
        :func:`merge_candidates`.
    groups : ndarray of shape (n_prototypes,)
        Group of each prototype; prototypes of one group get distinct rows.

    Returns
    -------
    ndarray of shape (n_prototypes,)
        Row of each prototype, -1 where it has no candidate.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.projection import choose_rows, nearest_candidates
    >>> X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    >>> P, groups = np.array([[0.4], [0.45], [9.9]]), np.array([0, 0, 1])
    >>> candidates = nearest_candidates(P, X, groups=groups, targets=y)
    >>> choose_rows(candidates, groups).tolist()  # both nearest row 0: distinct rows
    [0, 1, 3]
    """
    rows, dist, n_allowed = candidates
    return _greedy(rows, dist, np.asarray(groups), n_allowed)


def check_search(prototypes, groups, metric: str) -> np.ndarray:
    """``groups`` as an array, after checking the arguments of a nearest-row search
    (a short ``groups`` left prototypes without a row, and an unknown metric was
    read as ``"sqeuclidean"``)."""
    if metric not in ("sqeuclidean", "cosine"):
        raise ValueError(f"metric must be 'sqeuclidean' or 'cosine', got {metric!r}.")
    P = np.asarray(prototypes)
    if P.ndim != 2 or P.dtype.kind not in "iuf" or not np.isfinite(P).all():
        # (a list failed with "'list' object has no attribute 'mean'", a 1-D array
        # inside numpy, and NaN prototypes took no row, silently)
        raise ValueError(
            "prototypes must be a 2-D array of finite numbers, (n_prototypes, dim); got "
            f"shape {P.shape} of {P.dtype}."
        )
    groups = np.asarray(groups)
    if groups.shape != (len(prototypes),):
        raise ValueError(
            f"groups has shape {groups.shape}: one group per prototype "
            f"({len(prototypes)}) is needed."
        )
    return groups


def project_onto_rows(
    prototypes: np.ndarray,
    X: np.ndarray,
    *,
    groups: ArrayLike,
    targets: np.ndarray | None = None,
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    metric: str = "sqeuclidean",
) -> np.ndarray:
    """Training row of ``X`` each prototype is projected onto.

    Parameters
    ----------
    prototypes : ndarray of shape (n_prototypes, dim)
        Current prototypes, in the space of ``embed(X)``.
    X : ndarray of shape (n_rows, n_features)
        Training rows.
    groups : ndarray of shape (n_prototypes,)
        Prototypes of one group go to distinct rows (e.g. their class code).
    targets : ndarray of shape (n_rows,) or (n_rows, n_groups), default=None
        Class code (or indicator row) of each row of ``X``: prototype ``k``
        may only take rows of its group ``groups[k]``. None: any row.
    embed : callable, default=None
        Map from rows of ``X`` to the prototypes' space (a latent map), applied
        chunk by chunk. None: the identity.
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        Distance between rows and prototypes.

    Returns
    -------
    indices : ndarray of shape (n_prototypes,)
        Row of ``X`` for each prototype, -1 where it may take no row.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes import project_onto_rows
    >>> X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    >>> P = np.array([[0.4], [0.6], [9.9]])  # two prototypes of class 0, one of class 1
    >>> project_onto_rows(P, X, groups=np.array([0, 0, 1]), targets=y)
    array([0, 1, 3])
    """
    groups = check_search(prototypes, groups, metric)
    prototypes = np.asarray(prototypes)  # (a list passed the check, then failed with
    # "'list' object has no attribute 'mean'", as nearest_rows' did)
    found = nearest_candidates(
        prototypes, X, groups=groups, targets=targets, embed=embed, metric=metric
    )
    return choose_rows(found, groups)
