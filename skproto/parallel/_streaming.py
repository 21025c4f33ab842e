"""Out-of-core training of the torch estimators, and the distributed nearest-row search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import uuid4

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import check_random_state

from .._base import fitting
from .._chunking import take_rows_of
from .._validation import check_class_weight_labels, class_weights, weighted_counts
from ..prototypes.projection import (
    check_search,
    choose_rows,
    merge_candidates,
    nearest_candidates,
)
from ._common import (
    aligned,
    as_row_blocks,
    column_names,
    dask_array,
    labels_of,
    raveled_column,
    refuse_sparse_blocks,
    tree,
)


def _block_candidates(shared, X, T, offset):
    P, groups, embed, metric, center = shared
    return nearest_candidates(
        P, X, groups=groups, targets=T, embed=embed, metric=metric, offset=offset, center=center
    )


def _merge_all(parts: list):
    out = parts[0]
    for p in parts[1:]:
        out = merge_candidates(out, p)
    return out


def nearest_rows(
    prototypes: np.ndarray,
    X: Any,
    *,
    groups: ArrayLike,
    targets: Any = None,
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    metric: str = "sqeuclidean",
) -> np.ndarray:
    """:func:`~skproto.prototypes.project_onto_rows` on a dask array, on the workers.

    Each block keeps, per prototype, its nearest allowed rows (as many as the
    prototype's group has prototypes; global row indices); the candidate lists
    are merged in a tree and the greedy distinct choice runs once on the
    result, so the indices equal those of the in-memory search on the same
    rows (ties by the lowest global row). One exception: rows at exactly the
    same distance from a prototype (equal rows, or small-integer features)
    can differ by a rounding unit with the blocks' sizes (the distances are
    computed by a matrix product), and the tie then goes either way: of
    equal rows, another copy may be chosen (the same values).

    Parameters
    ----------
    prototypes : ndarray of shape (n_prototypes, dim)
        Current prototypes, in the space of ``embed(X)``.
    X : dask array of shape (n_rows, n_features)
        Training rows.
    groups : ndarray of shape (n_prototypes,)
        Prototypes of one group go to distinct rows (e.g. their class code).
    targets : dask array of shape (n_rows,), default=None
        Class code of each row; prototype ``k`` may only take rows of class
        ``groups[k]``. None: any row.
    embed : callable, default=None
        Map from rows of ``X`` to the prototypes' space, applied block by
        block on the workers. None: the identity.
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        Distance between rows and prototypes.

    Returns
    -------
    indices : ndarray of shape (n_prototypes,)
        Global row of ``X`` for each prototype, -1 where it may take none.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skproto.parallel import nearest_rows
    >>> X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    >>> P = np.array([[0.4], [0.6], [9.9]])  # two prototypes of class 0, one of class 1
    >>> nearest_rows(P, da.from_array(X, chunks=2), groups=[0, 0, 1], targets=da.from_array(y, 2))
    array([0, 1, 3])
    """
    import dask

    groups = check_search(prototypes, groups, metric)
    prototypes = np.asarray(prototypes)
    X = as_row_blocks(X)
    if embed is None and prototypes.shape[1] != X.shape[1]:  # (numpy's broadcast error)
        raise ValueError(
            f"prototypes have {prototypes.shape[1]} features, X has {X.shape[1]}: without "
            "embed they must live in the space of X's rows."
        )
    center = prototypes.mean(axis=0) if len(prototypes) else None
    # the prototypes and the map travel to the workers once, as one task's result
    shared = dask.delayed(
        (prototypes, groups, embed, metric, center),
        name=f"skproto-search-{uuid4().hex}",
        traverse=False,
    )
    xs = list(X.to_delayed().ravel())
    ts = [None] * len(xs)
    if targets is not None:
        ts = list(aligned(targets, X, "targets").to_delayed().ravel())
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int)
    found = [
        dask.delayed(_block_candidates)(shared, xb, tb, int(o))
        for xb, tb, o in zip(xs, ts, offsets)
    ]
    merged = dask.compute(tree(found, dask.delayed(_merge_all)))[0]
    return choose_rows(merged, groups)


def _checked_shape(block, name, block_info=None):
    """A block of ``X`` as the array declares it: one of another width (or length)
    failed inside numpy ("all the input array dimensions except for the
    concatenation axis must match exactly") or torch."""
    declared = tuple(block_info[None]["chunk-shape"])
    if block.shape != declared:
        raise ValueError(
            f"X has a block of shape {block.shape}, but the dask array declares "
            f"{declared} there; {name} fits the array as its chunks declare it "
            f"({declared[1]} features)."
        )
    return block


def _codes(block, classes):
    return np.searchsorted(classes, block)


def _not_in(index, rows):
    return ~np.isin(index, rows)


def _where_counted(codes, w):
    return np.where(w > 0, codes, -1)


def _checked_weights(w):
    """One block's weights checked as ``fit`` checks them (one block may weigh nothing,
    or hold no row: a filtered frame's partition)."""
    from .._validation import validate_sample_weight

    if not len(w):
        return np.asarray(w, dtype=np.float64)
    return validate_sample_weight(w, w, allow_all_zero=True)


def _positive_counts(codes, w, n_classes: int):
    return np.bincount(codes[w > 0], minlength=n_classes)[None, :]


def _rows_of_classes(codes, w, wanted, offset):
    """``(2, n)``: global indices and classes of the rows of positive weight whose
    class is in ``wanted``."""
    local = np.flatnonzero(np.isin(codes, wanted) & (w > 0))
    return np.vstack([offset + local, codes[local]])


def _complete_sample(T, w, init, val, n_classes: int, per_class: int) -> np.ndarray:
    """``init`` plus up to ``per_class`` rows (of positive weight, not held out) of
    each class that has such rows but none in ``init``: a rare class a uniform
    sample missed had no prototype, and its rows made the loss infinite."""
    import dask

    Ti, wi = take_rows_of((T, w), init)
    missing = np.setdiff1d(np.arange(n_classes), Ti[wi > 0])
    if not len(missing):
        return init
    offsets = np.concatenate([[0], np.cumsum(T.chunks[0])[:-1]])
    parts = [
        dask.delayed(_rows_of_classes)(tb, wb, missing, off)
        for tb, wb, off in zip(T.to_delayed().ravel(), w.to_delayed().ravel(), offsets)
    ]
    rows, codes = np.hstack(dask.compute(*parts))
    outside = ~np.isin(rows, val)
    rows, codes = rows[outside], codes[outside]
    if not len(rows):
        return init
    keep = np.concatenate([rows[codes == c][:per_class] for c in np.unique(codes)])
    return np.sort(np.concatenate([init, keep]))


def _log2_sum(w):
    from .._torch.training import log2_weights

    positive = w[w > 0]
    return np.array([[*log2_weights(w), positive.min() if len(positive) else np.inf]])


def _weight_scale(w, estimator) -> float:
    """:func:`~skproto._torch.training.weight_unit` of the positive weights (one
    pass), whose span is checked as ``fit`` checks it (the lightest rows were
    dropped without a word, where ``fit`` raises)."""
    import dask

    from .._torch.training import check_weight_span, weight_unit

    parts = w.map_blocks(_log2_sum, chunks=(1, 4), new_axis=1, dtype=np.float64)
    (total, count), top, least = dask.compute(
        parts[:, :2].sum(axis=0), parts[:, 2].max(), parts[:, 3].min()
    )
    unit = weight_unit(float(total), int(count), float(top))
    if count:
        check_weight_span(float(least), float(2.0**top), unit, estimator)
    return unit


def _times_class_weight(w, codes, class_weight):
    return w * class_weight[codes]


def _class_weights(estimator, T, w, classes) -> np.ndarray | None:
    """Per-class weights of ``class_weight`` ("balanced": from the classes' global
    summed weights, as ``fit`` counts them)."""
    import dask

    cw = estimator.class_weight
    if cw is None:
        return None
    counts = None
    if cw == "balanced":
        top = float(w.max().compute()) or 1.0  # (as weighted_counts scales them)
        blocks = zip(T.to_delayed().ravel(), w.to_delayed().ravel())
        parts = [dask.delayed(weighted_counts)(b, v, len(classes), top) for b, v in blocks]
        counts = np.sum(dask.compute(*parts), axis=0)
    return class_weights(cw, classes, counts)


def fit_streaming(
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: Any = None,
    *,
    window_blocks: int = 4,
    validation_rows: int = 50_000,
    init_rows: int | None = None,
) -> Any:
    """Train a ProtoClassifier or RBFPrototypeClassifier on dask data, out of core.

    The estimator's own training, with the data streamed: every epoch reads
    the blocks of ``X`` in a fresh random order, ``window_blocks`` at a time
    (the next window is computed, on the workers, while the current one
    trains), and shuffles the rows within each window. Only two windows, the
    held-out rows and the initialisation sample are ever in memory.
    Projection onto training rows (and the per-epoch pull of the snap cost)
    is a distributed nearest-row search (:func:`nearest_rows`), so
    ``prototype_sample_indices_`` are global rows of ``X``.

    It differs from ``fit`` in memory in three documented ways:

    - the early-stopping rows are ``validation_fraction`` of the rows (at
      most ``validation_rows``) drawn uniformly, not stratified, and they also
      calibrate the temperature;
    - the initial prototypes (class-wise k-means) come from a uniform sample
      of ``init_rows`` rows (default: ``max(20000, 100 * n_classes)``), to
      which a class the sample missed adds up to ``max(10, 2 *
      n_prototypes_per_class)`` of its rows (one more pass over ``y``);
    - shuffling mixes rows within windows of blocks, not over all rows: when
      the rows are ordered (e.g. sorted by class), use more ``window_blocks``
      or shuffle the blocks' contents first.

    Rows of weight 0 are absent, as in ``fit``: they start no prototype and
    no prototype is projected onto them.

    Parameters
    ----------
    estimator : ProtoClassifier or RBFPrototypeClassifier
        Fitted in place with its own parameters (``random_state`` makes the
        result deterministic for a fixed chunking).
    X : dask array or dask DataFrame of shape (n_samples, n_features)
        Training rows.
    y : dask array or Series of shape (n_samples,)
        One label per row.
    sample_weight : dask array of shape (n_samples,), default=None
        Sample weights; None weighs rows equally.
    window_blocks : int, default=4
        Blocks whose rows are shuffled together.
    validation_rows : int, default=50_000
        Cap on the early-stopping rows held in memory.
    init_rows : int, default=None
        Rows of the initialisation sample.

    Returns
    -------
    estimator : ProtoClassifier or RBFPrototypeClassifier
        ``estimator``, fitted.

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import load_digits
    >>> from skproto import ProtoClassifier
    >>> from skproto.parallel import fit_streaming
    >>> X, y = load_digits(return_X_y=True)
    >>> Xd, yd = da.from_array(X, chunks=300), da.from_array(y, chunks=300)
    >>> clf = fit_streaming(ProtoClassifier(random_state=0), Xd, yd)
    >>> clf.score(X, y) > 0.9
    True
    >>> rows = clf.prototype_sample_indices_  # global rows of X, each of its prototype's class
    >>> bool((y[rows] == clf.prototype_labels_).all())
    True
    """

    from .._torch.estimator import TorchPrototypeClassifier

    if not isinstance(estimator, TorchPrototypeClassifier):
        raise ValueError(
            "fit_streaming trains ProtoClassifier or RBFPrototypeClassifier, got "
            f"{type(estimator).__name__} (use fit_nearest_mean for NearestMeanClassifier)."
        )
    with fitting(estimator):  # (a failure leaves the estimator as it was)
        return _fit_streaming(
            estimator, X, y, sample_weight, window_blocks, validation_rows, init_rows
        )


def _fit_streaming(estimator, X, y, sample_weight, window_blocks, validation_rows, init_rows):
    """The body of :func:`fit_streaming`."""
    import torch

    from .._torch.training import new_history, train, training_context

    estimator._validate_params()
    counts = [("window_blocks", window_blocks, 1, ""), ("validation_rows", validation_rows, 0, "")]
    if init_rows is not None:
        counts.append(("init_rows", init_rows, 1, "None or "))
    for name, value, least, other in counts:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be {other}an int >= {least}, got {value!r}.")
    if getattr(estimator, "n_tokens", None):
        raise ValueError("fit_streaming does not train token prototypes (n_tokens) yet.")
    if getattr(estimator, "warm_start", False) and hasattr(estimator, "_state"):
        # (it was ignored: the streamed "warm start" trained afresh)
        raise ValueError(
            "fit_streaming trains a new model; it does not continue a fitted one "
            "(warm_start=True). Set warm_start=False, or continue in memory with fit."
        )
    if getattr(estimator, "head", None) == "linear":
        raise ValueError(
            "head='linear' refits its last layer on all rows in memory; fit_streaming "
            "trains the other heads."
        )
    da = dask_array()
    names = column_names(X)
    X = as_row_blocks(X)
    refuse_sparse_blocks(X, estimator)
    X = X.map_blocks(_checked_shape, type(estimator).__name__, dtype=X.dtype, meta=X._meta)
    y = aligned(y, X, "y")
    y = raveled_column(y)
    if y.ndim != 1:
        if not getattr(estimator, "_supports_multilabel", False):  # (it said to fit
            # in memory, where such an estimator refuses a 2-D y too)
            raise ValueError(f"{type(estimator).__name__} does not support multi-label targets.")
        raise ValueError("fit_streaming takes one label per row (fit multi-label in memory).")
    n = X.shape[0]
    if sample_weight is None:
        w = da.ones(n, chunks=X.chunks[0], dtype=np.float64)
    else:  # checked as fit checks them, block by block as they are read
        w = aligned(sample_weight, X, "sample_weight", broadcast=True)
        w = w.map_blocks(_checked_weights, dtype=np.float64)
    classes = labels_of(y)
    check_class_weight_labels(estimator.class_weight, classes)
    T = y.map_blocks(_codes, classes, dtype=np.intp)
    cw = _class_weights(estimator, T, w, classes)
    if cw is not None:
        w = da.map_blocks(_times_class_weight, w, T, cw, dtype=np.float64)
    if sample_weight is not None or cw is not None:  # as in fit: any scale of weights
        w = w / _weight_scale(w, estimator)

    # held-out and initialisation rows, drawn by global index (one read of X)
    rng = check_random_state(estimator.random_state)
    draw = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
    n_val = 0
    if estimator.early_stopping:
        n_val = min(int(np.ceil(estimator.validation_fraction * n)), validation_rows, n - 2)
    n_init = init_rows or max(20_000, 100 * len(classes))
    pool = draw.choice(n, min(n, n_val + n_init), replace=False)
    val = np.sort(pool[:n_val])
    init = np.sort(pool[n_val:])
    per_class = getattr(estimator, "n_prototypes_per_class", 1) or 1
    init = _complete_sample(T, w, init, val, len(classes), max(10, 2 * per_class))
    Xp, yp, wp = take_rows_of((X, y, w), np.concatenate([val, init]))
    Xs, ys = estimator._validate_training_data(Xp, yp, reset=True)
    Tp = estimator._set_targets(ys, classes=classes)
    for name in ("_classes_fixed", "_stream_losses"):  # a fit starts afresh, as fit does
        estimator.__dict__.pop(name, None)
    if names is not None:
        estimator.feature_names_in_ = names
    if n_val:  # as fit, never hold out a class's every row (it got no prototype,
        # and an infinite validation loss stopped training after n_iter_no_change)
        parts = da.map_blocks(
            _positive_counts, T, w, len(classes), chunks=(1, len(classes)), new_axis=1
        )
        total = parts.sum(axis=0).compute()
        held_out = np.bincount(Tp[:n_val][wp[:n_val] > 0], minlength=len(classes))
        back = np.isin(Tp[:n_val], np.flatnonzero((held_out >= total) & (total > 0)))
        if back.any():
            order = np.r_[np.flatnonzero(~back), np.flatnonzero(back), np.arange(n_val, len(Tp))]
            Xs, Tp, wp = Xs[order], Tp[order], wp[order]
            val, init = val[~back], np.r_[val[back], init]
            n_val = len(val)
    if n_val and (wp[:n_val] == 0).any():
        # as fit, which splits the rows of positive weight: a held-out row of
        # weight 0 is absent (a held-out split of such rows watched a loss of 0)
        kept = np.r_[np.flatnonzero(wp[:n_val] > 0), np.arange(n_val, len(Tp))]
        Xs, Tp, wp = Xs[kept], Tp[kept], wp[kept]
        val = val[kept[kept < n_val]]
        n_val = len(val)
    wp = wp.astype(np.float32)
    held = (Xs[:n_val].astype(np.float32), Tp[:n_val], wp[:n_val])
    fit_w = w
    if n_val:
        index = da.arange(n, chunks=X.chunks[0])
        fit_w = w * index.map_blocks(_not_in, val, dtype=bool)

    # rows of weight 0 are absent, as in fit: they start no prototype, and the
    # searches (projection, the snap cost's pull) read their target as -1
    search = da.map_blocks(_where_counted, T, w, dtype=T.dtype)
    # the snap cost's pull, like fit's, reads the training rows only (it was
    # drawn toward held-out rows, which then shaped training and its stopping)
    pull_search = da.map_blocks(_where_counted, T, fit_w, dtype=T.dtype)
    counted = n_val + np.flatnonzero(wp[n_val:] > 0)
    if not len(counted):
        raise ValueError(
            "Every row of the initialisation sample has weight 0 (sample_weight times "
            "class_weight); fit_streaming has nothing to start from."
        )

    X32 = X.astype(np.float32)
    estimator._window_blocks = window_blocks
    try:
        # (the config reads _window_blocks: made before it was set, every stream
        # read windows of 4 blocks whatever window_blocks said)
        config = estimator._training_config(estimator.max_epochs, "fit", n - n_val)
        if not n_val:  # no row held out: no early stopping, as in fit
            config = replace(config, early_stopping=False)
        with training_context(estimator._n_threads):
            net = estimator._build(Xs[counted], Tp[counted], rng)
            # float32 as in fit (tensors made at a float64 default dtype stayed float64)
            net = net.to(estimator._device, torch.float32)
            history = new_history()
            estimator.n_iter_ = 0
            score = estimator._score_fn(net)
            val_kw = {}
            if n_val:
                val_kw = dict(X_val=held[0], targets_val=held[1], weights_val=held[2])
            train(
                net,
                estimator._trainable(net),
                estimator._batch_loss(net),
                X32,
                T,
                fit_w,
                config,
                rng,
                score=score,
                history=history,
                on_epoch_end=estimator._on_epoch_end(net, X32, pull_search),
                **val_kw,
            )
            estimator.n_iter_ = len(history["loss"])
            if not n_val:  # the temperature is fitted on the initialisation sample
                held = (Xs.astype(np.float32), Tp, wp)
            history["val_accuracy_before_projection"] = score(*held)
            estimator._project_and_refit(
                net,
                X,
                X32,
                T,
                w,
                history,
                rng,
                project=estimator.project,
                held_out=held,
                search=search,
                held_rows=val if n_val else init,
            )
    finally:
        del estimator._window_blocks
    estimator.prototype_cases_ = None
    estimator._n_seen = n  # a later partial_fit counts its rows after these
    return estimator


__all__ = ["fit_streaming", "nearest_rows"]
