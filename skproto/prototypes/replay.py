"""Gaussian stand-ins for the rows of classes a class-incremental ``partial_fit`` no longer sees.

An estimator keeps, per class, the count, mean and sum of squared distances
to the mean of every row it has trained on (:func:`class_moments`, merged
exactly by :func:`merge_moments`). When a later batch brings new classes, the
earlier classes are replayed as draws of ``N(mean, spread * I)``
(:func:`gaussian_replay`), so the new classes' training also sees where the
earlier classes' rows lie, not only their stored prototypes.
"""

from __future__ import annotations

import numpy as np

from .._chunking import chunk_slices
from .._validation import label_codes
from ..nearest_mean._stats import ClassStats

__all__ = [
    "average_class_weight",
    "class_moments",
    "gaussian_replay",
    "merge_moments",
    "reindex_moments",
]


def average_class_weight(w: np.ndarray, T: np.ndarray, n_rows: int) -> float:
    """The weight of each of ``n_rows`` replayed rows that together weigh as an
    average class of the batch: ``sum(w) / (classes in T) / n_rows``.

    From the batch's weights, not its row count: the batch's rows weigh their
    (rescaled) sample weights, so a count made a common scale of the weights
    move the balance between the batch and the replay (weights of 1.4
    against 1.0 moved class-incremental probabilities by up to 0.085).

    Parameters
    ----------
    w : ndarray of shape (n_batch,)
        The batch's training weights.
    T : ndarray of shape (n_batch,)
        The batch's class codes.
    n_rows : int
        Replayed rows per class.

    Returns
    -------
    float
        The weight of one replayed row.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.replay import average_class_weight
    >>> average_class_weight(np.full(6, 2.0), np.array([0, 0, 0, 1, 1, 1]), 4)
    1.5
    """
    return float(np.sum(w, dtype=np.float64)) / len(np.unique(T)) / n_rows


def class_moments(X: np.ndarray, T: np.ndarray, n_classes: int) -> tuple:
    """``(count, mean, m2)`` of the rows of each class code ``T`` (float64).

    ``m2`` is the sum of squared distances to the class mean; moments of two
    samples merge exactly (Chan, Golub & LeVeque).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Rows.
    T : ndarray of shape (n_rows,)
        Integer class code of each row.
    n_classes : int
        Number of classes.

    Returns
    -------
    count : ndarray of shape (n_classes,)
        Number of rows of each class.
    mean : ndarray of shape (n_classes, n_features)
        Mean row of each class.
    m2 : ndarray of shape (n_classes,)
        Sum of squared distances of each class's rows to its mean.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.replay import class_moments
    >>> count, mean, m2 = class_moments(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]), 2)
    >>> count.tolist(), mean.tolist(), m2.tolist()
    ([2.0, 1.0], [[1.0], [5.0]], [2.0, 0.0])
    """
    ones = np.ones(len(T))
    st = ClassStats.of_rows(X, T, ones, n_classes, normalize=False, scatter=None, fourth=False)
    m2 = np.zeros(n_classes)
    for s in chunk_slices(len(T), X.shape[1]):
        R = np.asarray(X[s], dtype=np.float64) - st.mean[T[s]]
        m2 += np.bincount(T[s], weights=np.einsum("ij,ij->i", R, R), minlength=n_classes)
    return st.count, st.mean, m2


def merge_moments(a: tuple, b: tuple) -> tuple:
    """The moments of the union of two samples (same class order).

    Parameters
    ----------
    a, b : tuple
        ``(count, mean, m2)`` of each sample, as :func:`class_moments` returns.

    Returns
    -------
    tuple
        ``(count, mean, m2)`` of both samples together.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.replay import class_moments, merge_moments
    >>> X, T = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 0, 1])
    >>> halves = merge_moments(class_moments(X[:2], T[:2], 2), class_moments(X[2:], T[2:], 2))
    >>> [np.allclose(h, w) for h, w in zip(halves, class_moments(X, T, 2))]
    [True, True, True]
    """
    (na, ma, qa), (nb, mb, qb) = a, b
    n = na + nb
    fb = nb / np.maximum(n, 1.0)
    d = mb - ma
    return n, ma + d * fb[:, None], qa + qb + na * fb * np.einsum("ij,ij->i", d, d)


def reindex_moments(moments: tuple, classes: np.ndarray, union: np.ndarray) -> tuple:
    """``moments`` of ``classes`` placed at their rows of the (sorted) ``union``.

    Parameters
    ----------
    moments : tuple
        ``(count, mean, m2)``, one row per class of ``classes``.
    classes : ndarray of shape (n_classes,)
        Class labels of the moments' rows.
    union : ndarray of shape (n_union,)
        Sorted class labels that include ``classes``.

    Returns
    -------
    tuple
        ``(count, mean, m2)`` with one row per class of ``union``; zeros for
        the classes not in ``classes``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.replay import class_moments, reindex_moments
    >>> moments = class_moments(np.array([[1.0], [3.0]]), np.array([0, 1]), 2)
    >>> union = np.array(["a", "b", "c", "d"])
    >>> count, mean, m2 = reindex_moments(moments, np.array(["b", "d"]), union)
    >>> count.tolist(), mean.ravel().tolist()
    ([0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 3.0])
    """
    at = label_codes(union, classes)
    out = (np.zeros(len(union)), np.zeros((len(union), moments[1].shape[1])), np.zeros(len(union)))
    for grown, old in zip(out, moments):
        grown[at] = old
    return out


def gaussian_replay(
    moments: tuple, present: np.ndarray, k: int, rng: np.random.RandomState
) -> tuple:
    """``k`` draws of N(mean, spread * I) for each class with rows seen but not in ``present``.

    ``spread`` is the class's mean squared distance to its mean per feature.

    Parameters
    ----------
    moments : tuple
        ``(count, mean, m2)`` per class code, as :func:`class_moments` returns.
    present : ndarray
        Class codes of the current batch (not replayed).
    k : int
        Draws per replayed class.
    rng : RandomState
        Draws the rows.

    Returns
    -------
    rows : ndarray of shape (n_replayed * k, n_features)
        The draws (float32), class-major.
    codes : ndarray of shape (n_replayed * k,)
        Class code of each draw.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.prototypes.replay import class_moments, gaussian_replay
    >>> moments = class_moments(np.array([[0.0], [2.0], [10.0]]), np.array([0, 0, 1]), 2)
    >>> rows, codes = gaussian_replay(moments, np.array([1]), 3, np.random.RandomState(0))
    >>> rows.shape, codes.tolist()  # class 1 is in the batch: only class 0 is replayed
    ((3, 1), [0, 0, 0])
    >>> gaussian_replay(moments, np.array([0]), 2, np.random.RandomState(0))[0].ravel().tolist()
    [10.0, 10.0]
    """
    count, mean, m2 = moments
    earlier = np.setdiff1d(np.flatnonzero(count > 0), present)
    p = mean.shape[1]
    scale = np.sqrt(m2[earlier] / np.maximum(count[earlier], 1.0) / p)
    noise = rng.standard_normal((len(earlier), k, p)) * scale[:, None, None]
    rows = (mean[earlier][:, None, :] + noise).reshape(-1, p).astype(np.float32)
    return rows, np.repeat(earlier, k)
