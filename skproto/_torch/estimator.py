"""The one template of skproto's torch-trained estimators.

``TorchPrototypeClassifier`` does everything a torch-trained prototype
classifier needs except its model: validating and encoding the training data,
sample and class weights, the early-stopping split, thread control, the
training loop, projection of the prototypes onto training rows, the stage
that refits the rest after it, the bookkeeping of ``history_``, keeping the
fitted parameters as float64 numpy arrays (so a model trained on a GPU
pickles and predicts anywhere), and prediction through one cached float64
CPU module. An estimator fills in the hooks below; the base class
``BasePrototypeClassifier`` then derives the public API from
``_pairwise``, ``_scores_chunk`` and the head.

Hooks (see each method's docstring): ``_build``, ``_batch_loss``,
``_network``, ``_prototype_groups`` and ``_set_fitted_attributes`` are
required; ``_refit`` (default: nothing), ``_trainable``,
``_projection_space``, ``_snapped_values``, ``_exact_prototypes``,
``_state_arrays``, ``_unchanged_prototypes`` and ``_on_epoch_end`` are optional.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _validation
from .._base import BasePrototypeClassifier, same_param
from .._chunking import chunk_slices, is_dask, prototype_row_elements, take_rows
from .._progress import Progress
from .._validation import FLOAT32_MAX, warn_user
from ..calibration import (
    NO_LOSSES,
    add_grid_losses,
    fit_temperature,
    scored_rows,
    table_temperature,
)
from ..prototypes import project_onto_rows
from ..prototypes.replay import class_moments, merge_moments
from .training import (
    TrainingConfig,
    check_weight_span,
    cpu_default,
    log2_weights,
    new_history,
    resolve_device,
    resolve_n_threads,
    scored_sample,
    thread_count,
    to_tensor,
    torch_threads,
    train,
    training_context,
    weight_unit,
    weighted_accuracy,
)

__all__ = [
    "TorchPrototypeClassifier",
    "copies_held_out_together",
    "counted_rows",
    "state_tensors",
]


def counted_rows(w: np.ndarray, *, context: str = "fit") -> np.ndarray | None:
    """The rows that take part in training (weight > 0), or None when all do.

    Rows of weight 0 (sample weight times class weight) are absent, as in
    NearestMeanClassifier: they start no prototype, are never projected
    onto, and a class whose rows all weigh 0 gets no prototype from them.
    """
    if w.all():
        return None
    if context and not w.any():
        raise ValueError(
            f"Every row has weight 0 (sample_weight times class_weight); {context} has "
            "nothing to learn from."
        )
    return np.flatnonzero(w > 0)


def _possible(S: np.ndarray) -> np.ndarray:
    """Log prior of the calibration: 0 for a class some row can take, -inf for none."""
    return np.where(np.isfinite(S).any(axis=0), 0.0, -np.inf)


def _per_row(w: np.ndarray | None) -> np.ndarray | None:
    """Row weights scaled to a mean of 1, for the stream's table of temperature losses.

    The table smooths its targets by one pseudo-row against the total weight of
    the rows scored (:func:`~skproto.calibration.grid_temperature`), as
    ``fit_temperature`` does against their number; the weights training uses are
    divided by an arbitrary power of two (``weight_unit``), so that total, and
    with it ``temperature_`` after ``partial_fit``, changed with a common scale of
    ``sample_weight`` (wine, three batches: 0.134 at weights of 1, 0.139 at 3).
    """
    if w is None or not len(w):
        return w
    mean = float(np.mean(w, dtype=np.float64))
    return w if mean <= 0 else np.asarray(w, dtype=np.float64) / mean


def _own_prototypes(prototype_rows: np.ndarray, held_rows: np.ndarray):
    """``(positions in held_rows, prototypes)`` of the prototypes that are held-out rows."""
    if not len(held_rows):
        return None
    order = np.argsort(held_rows, kind="stable")
    sorted_rows = held_rows[order]
    j = np.clip(np.searchsorted(sorted_rows, prototype_rows), 0, len(sorted_rows) - 1)
    k = np.flatnonzero((prototype_rows >= 0) & (sorted_rows[j] == prototype_rows))
    return (order[j[k]], k) if k.size else None


def _row_values(block: np.ndarray, dtype) -> np.ndarray:
    """Rows of ``block`` (in ``dtype``, as the network reads them) as unsigned integers
    of their values' bits, 2-D and contiguous; ``-0.0`` reads as ``0.0``."""
    v = np.asarray(block, dtype=dtype)
    if v.dtype.kind == "f":
        v = v + v.dtype.type(0)  # (-0.0 + 0.0 is 0.0: a new contiguous array)
    elif v.dtype.kind == "b":
        v = v.astype(np.uint8)
    v = np.ascontiguousarray(v).reshape(len(v), -1)
    return v.view(f"u{v.dtype.itemsize}")


def _rows_equal(parts, rows, others, dtype) -> np.ndarray:
    """Whether each row of ``rows`` equals the row of ``others`` by value in every part."""
    same = np.ones(len(rows), dtype=bool)
    for part in parts:
        same &= (
            (np.asarray(part[rows], dtype=dtype) == np.asarray(part[others], dtype=dtype))
            .reshape(len(rows), -1)
            .all(axis=1)
        )
    return same


#: rows hashed at a time (of at most about this many values: no second X in memory)
_HASH_VALUES = 1 << 18


def _copy_groups(*parts: np.ndarray, dtype=None) -> np.ndarray:
    """For each row of the ``parts`` (same rows), the first row of its group of
    exact copies: equal values in every part, read in ``dtype`` where given (the
    float32 rows the network trains on: float64 rows that round to one float32
    row are copies to it, and so are ``-0.0`` and ``0.0``); NaN rows are no copies.

    Each row gets a numeric hash of its values' bits (computed a block of rows at
    a time, with fixed coefficients: no copy of the data, and the same groups in
    every process, which Python's per-process ``hash`` of bytes promised only
    without collisions), and a row is a copy of the first row of its hash only
    where their values are equal, so a hash collision merges nothing.
    """
    n = len(parts[0])
    digest = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k, part in enumerate(parts):
            width = int(np.prod(np.shape(part)[1:], dtype=np.int64))
            coef = np.random.RandomState(k).randint(0, 1 << 62, size=max(width, 1), dtype=np.int64)
            coef = coef.astype(np.uint64) * np.uint64(4) + np.uint64(1)  # odd, up to 2^64
            step = max(1, _HASH_VALUES // max(width, 1))
            for i in range(0, n, step):
                bits = _row_values(part[i : i + step], dtype).astype(np.uint64)
                h = (bits * coef).sum(axis=1, dtype=np.uint64)
                h ^= h >> np.uint64(31)
                digest[i : i + step] = digest[i : i + step] * np.uint64(0x9E3779B97F4A7C15) + h
    order = np.argsort(digest, kind="stable")
    sorted_digest = digest[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_digest[1:] != sorted_digest[:-1]
    rep = np.empty(n, dtype=np.intp)
    rep[order] = order[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
    copies = np.flatnonzero(rep != np.arange(n))
    step = max(1, _HASH_VALUES // max(1, sum(int(np.prod(np.shape(p)[1:])) for p in parts)))
    bad = [
        copies[i : i + step][
            ~_rows_equal(parts, copies[i : i + step], rep[copies[i : i + step]], dtype)
        ]
        for i in range(0, len(copies), step)
    ]
    # (a collision, or NaN: each such row is a copy of the first earlier row of its
    # hash that it equals, else its own group)
    for i in np.concatenate([np.zeros(0, dtype=np.intp), *bad]):
        rep[i] = i
        for j in np.flatnonzero(digest[:i] == digest[i]):
            if rep[j] == j and _rows_equal(parts, np.array([i]), np.array([j]), dtype)[0]:
                rep[i] = j
                break
    return rep


def _copies_as_weights(X, S: np.ndarray, T: np.ndarray, w: np.ndarray | None):
    """``(S, T, w)`` of held-out rows with exact copies (same row of ``X``, scores and
    class) merged into one row weighing their summed weights.

    The loss is the same; what changes is the number of rows
    :func:`~skproto.calibration.fit_temperature` weighs its one pseudo-row
    against, which counts rows, not weight: a row given 3 times now counts as a
    row of weight 3 does (once), not as 3 rows' worth of evidence (digits, 4
    rows a class given 3 times: test log-loss 0.744 at the fitted temperature,
    0.586 at the best one). Multi-label targets and data without copies are
    returned as given.
    """
    if np.ndim(T) != 1 or not isinstance(X, np.ndarray) or X.ndim != 2 or len(X) < 2:
        return S, T, w
    rep = _copy_groups(X, S, np.asarray(T).reshape(-1, 1))
    first, inverse = np.unique(rep, return_inverse=True)
    if len(first) == len(rep):
        return S, T, w
    weights = np.ones(len(rep)) if w is None else np.asarray(w, dtype=np.float64)
    return S[first], T[first], np.bincount(inverse.ravel(), weights=weights, minlength=len(first))


def copies_held_out_together(
    X: np.ndarray, T: np.ndarray, fit_rows: np.ndarray, val_rows: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(fit_rows, val_rows)`` with the exact copies of a row on one side of the split
    (single-label ``T``, in-memory ``X``; others as given). Copies are rows of
    equal float32 values, as the network reads them (``-0.0`` is ``0.0``).

    The held-out split stops training early and is what ``temperature="auto"``
    is fitted on; a copy of a held-out row left among the training rows let the
    network learn that row, so its held-out loss was an in-sample one and the
    temperature came out over-confident (digits' training half with every row
    given 3 times, 4 seeds: ProtoClassifier's test log-loss 0.124 at the fitted
    temperature 0.98, 0.092 at the temperature best on the test rows, 1.76).

    Where a held-out row has copies among the training rows, the held-out
    rows are redrawn as whole groups of copies: those of the drawn held-out
    rows, in the order drawn, each whose rows fit in what is left of the number
    drawn (at least one group; a larger group stays in training), so that
    about ``validation_fraction`` of the rows, and of the distinct rows, is
    held out as before (moving every copy in instead
    held out three times as many distinct rows of data given 3 times: 4 digits
    a class read a test log-loss of 0.78, against 0.59 given once). A class
    that would be left without a training row keeps all its rows for
    training. A split without such copies (CLINC150's) is returned as drawn.
    """
    if (
        val_rows is None
        or not len(val_rows)
        or np.ndim(T) != 1
        or not isinstance(X, np.ndarray)
        or X.ndim != 2
        or not X.shape[1]
    ):
        return fit_rows, val_rows
    group = _copy_groups(X, dtype=np.float32)  # (the rows as trained on)
    held = np.zeros(len(X), dtype=bool)  # by group (its first row)
    held[group[val_rows]] = True
    if not held[group[fit_rows]].any():  # (no held-out row has a trained copy)
        return fit_rows, val_rows
    drawn = group[val_rows]
    drawn = drawn[np.sort(np.unique(drawn, return_index=True)[1])]  # in the order drawn
    sizes = np.bincount(group, minlength=len(X))[drawn]
    # each group that fits in what is left of the rows drawn, in the order drawn: one
    # group larger than that (40 empty rows of 200, 20 drawn) was held out whole when
    # drawn first (twice the rows asked for) and else ended the split there (1 row)
    take, room = [], len(val_rows)
    for g, size in zip(drawn.tolist(), sizes.tolist()):
        if size <= room:
            take.append(g)
            room -= size
    held[:] = False
    held[take or drawn[:1]] = True
    lost = np.setdiff1d(T[fit_rows], T[~held[group]])
    if lost.size:  # such a class's copies are all trained on
        held[group[np.isin(T, lost)]] = False
    val_rows = np.flatnonzero(held[group])
    fit_rows = np.flatnonzero(~held[group])
    return fit_rows, (val_rows if len(val_rows) else None)


def state_tensors(state: dict) -> dict:
    """Torch copies of a numpy state (copied: the arrays may be read-only memmaps)."""
    return {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in state.items()}


class TorchPrototypeClassifier(BasePrototypeClassifier):
    """Template of the torch-trained prototype classifiers. Not meant to be used directly."""

    #: whether a 2-D indicator ``y`` (multi-label) is accepted
    _supports_multilabel = False
    _cases_are_rows = True
    #: name of the network parameter that holds the prototypes
    _prototype_parameter = "prototypes"
    #: network method whose output the output link turns into probabilities
    _link_method = "scores"
    #: name of the network buffer that holds the input rows prototypes are tied to
    _cases_buffer: str | None = None

    #: the parameters that shape the fitted network: ``partial_fit``,
    #: ``fit`` with ``warm_start`` and ``project_prototypes`` continue that
    #: network, so cannot follow a change of them (:meth:`_check_structure`)
    _structure_params: tuple = ()

    #: parameter constraints of the training settings every torch estimator takes
    _training_constraints: dict = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        # (torch takes them as float32 numbers: larger ones raised a RuntimeError)
        "learning_rate": [Interval(Real, 0, FLOAT32_MAX, closed="neither")],
        "weight_decay": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str],  # (and "cuda:N")
        "n_jobs": [  # joblib's convention: 0 means nothing
            None,
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _check_structure(self, action: str, remedy: str) -> None:
        """Raise if a parameter of :attr:`_structure_params` changed since the last fit."""
        fitted = self.__dict__.get("_fit_params")
        if fitted is None:
            return
        changed = [  # (a model pickled before a parameter existed recorded none for it)
            n
            for n in self._structure_params
            if n in fitted and not same_param(getattr(self, n), fitted[n])
        ]
        if changed:
            raise ValueError(
                f"{action} continues the fitted network, but {', '.join(changed)} "
                f"changed since it was fitted; {remedy}."
            )

    # ------------------------------------------------------------------ hooks
    def _build(self, X: np.ndarray, T: np.ndarray, rng) -> torch.nn.Module:
        """Initial network from the training rows ``X`` (as validated) and targets ``T``."""
        raise NotImplementedError

    def _batch_loss(self, net: torch.nn.Module) -> Callable:
        """``loss(xb, tb, wb)``: the weighted mean loss of one mini-batch."""
        raise NotImplementedError

    def _network(self, state: dict, dtype) -> torch.nn.Module:
        """A CPU network of ``dtype`` holding the numpy ``state`` (no training state)."""
        raise NotImplementedError

    def _refit(self, net, X, T, w, history: dict, rng, *, projected: bool) -> None:
        """What runs after projection (or instead of it), on all training rows.

        Records what it did in ``history["refit"]`` (see ``new_history``).
        """

    def _prototype_groups(self, net) -> np.ndarray | None:
        """Class code of each prototype for projection onto its own class's rows.

        None: a prototype may take any row (prototypes of one group -- here,
        all -- still go to distinct rows).
        """
        raise NotImplementedError

    def _set_fitted_attributes(self, net) -> None:
        """Public fitted attributes from ``self._state`` (float64 numpy arrays) and ``net``."""
        raise NotImplementedError

    def _trainable(self, net) -> list:
        """Parameters the main training optimises."""
        return [p for p in net.parameters() if p.requires_grad]

    def _projection_space(self, net):
        """``(embed, prototypes, metric)``: where projection measures distances.

        ``embed`` maps float32 rows (numpy) into the prototypes' space, where
        ``prototypes`` (numpy) live; ``metric`` is "sqeuclidean" or "cosine".
        """
        P = getattr(net, self._prototype_parameter).detach().cpu().numpy()
        return None, P, "sqeuclidean"

    def _snapped_values(self, net, rows: np.ndarray) -> np.ndarray:
        """What a prototype projected onto float32 ``rows`` becomes (default: the rows)."""
        return rows

    def _exact_prototypes(self, net, rows: np.ndarray) -> np.ndarray:
        """Float64 value of prototypes projected onto the exact (float64) training ``rows``."""
        return rows

    def _on_epoch_end(self, net, X, T) -> Callable[[int], None] | None:
        """Called after each training epoch of ``fit`` (e.g. periodic projection)."""
        return None

    def _on_projected(self, net, X: np.ndarray, indices: np.ndarray) -> None:
        """Called after the final projection onto rows ``X[indices]`` (before the refit)."""

    def _rows_arrive(self, net, T: np.ndarray) -> None:
        """Before a ``partial_fit`` batch (or a warm ``fit``) trains ``net``: the rows
        (of positive weight, class codes ``T``) arrive, and a class that had none
        becomes scorable in a head that keeps which classes are (``possible``)."""
        possible = getattr(net.head, "possible", None)
        if possible is not None and T.ndim == 1 and len(T):
            with torch.no_grad():
                possible[torch.as_tensor(np.unique(T), device=possible.device)] = True

    def _check_warm_targets(self, T: np.ndarray) -> None:
        """Refuse a warm ``fit`` whose rows (of positive weight, targets ``T``) the
        fitted network cannot score (default: every row can be)."""

    def _continued_network(self, state: dict) -> torch.nn.Module:
        """The float32 network of a fitted ``state`` to train on, at the temperature the
        parameters give now: a float set since the fit replaces the fitted one (a warm
        start kept the old one, silently)."""
        net = self._network(state, torch.float32)
        buffer = self._temperature_buffer(net)
        if buffer is not None and self.temperature != "auto":
            with torch.no_grad():
                buffer.fill_(float(self.temperature))
        return net

    def _temperature_buffer(self, net) -> torch.Tensor | None:
        """The buffer the link's input is divided by, fitted when ``temperature="auto"``.

        The template sets it to 1, evaluates ``_link_method`` on held-out rows
        and sets it to the temperature that minimises their log-loss.
        """
        return None

    # ------------------------------------------------------------ settings
    @property
    def _n_threads(self) -> int:
        return resolve_n_threads(self.n_jobs)

    @property
    def _device(self) -> torch.device:
        return resolve_device(self.device, ("cpu", "cuda"))

    @property
    def _learning_rate(self) -> float:
        """The Adam learning rate training uses (``learning_rate``, resolved)."""
        return self.learning_rate

    def _batch_size(self, n_rows: int | None) -> int:
        """The mini-batch size of a run over ``n_rows`` training rows (None: ``partial_fit``)."""
        return self.batch_size

    def _training_config(
        self, max_epochs: int, name: str, n_rows: int | None = None
    ) -> TrainingConfig:
        """Settings of one :func:`train` call; early stopping only for ``name="fit"``."""
        return TrainingConfig(
            max_epochs=max_epochs,
            batch_size=self._batch_size(n_rows),
            learning_rate=self._learning_rate,
            weight_decay=self.weight_decay,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            early_stopping=self.early_stopping and name == "fit",
            verbose=self.verbose,
            device=self._device,
            name=name,
            # (partial_fit's one epoch is no limit reached; the refit after projection
            # runs RBFPrototypeClassifier's project_epochs)
            epochs_param={"partial_fit": None, "after projection": "project_epochs"}.get(
                name, "max_epochs"
            ),
            window_blocks=getattr(self, "_window_blocks", 4),  # set by fit_streaming
            set_scales=self._set_scales(),
            loss_floor=self._loss_floor(),
        )

    def _set_scales(self) -> tuple[str, ...] | None:
        """The parameters scaling the data's distances in training that were given as
        numbers, not "auto" (:attr:`TrainingConfig.set_scales`); None: not known."""
        return None

    def _loss_floor(self) -> float:
        """The least training loss there is (:attr:`TrainingConfig.loss_floor`)."""
        return 0.0

    def _training_weights(self, T, w: np.ndarray, classes=None) -> np.ndarray:
        """Validated sample weights ``w`` times class weights (single-label), float32.

        ``T`` codes rows by ``classes`` (default: ``classes_``). The weights
        are divided by :func:`~skproto._torch.training.weight_unit`, a power
        of two (an exact scaling: the losses are weighted means, and rows
        replayed by ``partial_fit`` weigh as an average class of the batch's
        weights, :func:`~skproto.prototypes.replay.average_class_weight`):
        weights of 1e39, beyond
        float32, overflowed, and training reported a divergence. Weights
        further apart than float32 holds raise a ValueError.
        """
        if self.class_weight is not None and T.ndim == 2:
            raise ValueError(
                "class_weight weighs the rows of each class; a multi-label row has "
                "several classes. Weigh rows with sample_weight instead."
            )
        if self.class_weight is not None:
            classes = self.classes_ if classes is None else classes
            counts = _validation.weighted_counts(T, w, len(classes))
            with np.errstate(over="ignore"):
                w = w * _validation.class_weights(self.class_weight, classes, counts)[T]
            if not np.isfinite(w).all():  # (it read "span 2**inf times")
                raise ValueError(
                    "sample_weight times class_weight overflows float64: the classes' "
                    f"summed weights are too far apart for class_weight={self.class_weight!r}; "
                    "weigh the rows less unequally."
                )
        unit = weight_unit(*log2_weights(w))
        if (w > 0).any():
            check_weight_span(w[w > 0].min(), w.max(), unit, self)
        return (w / unit).astype(np.float32)

    def _early_stopping_split(self, T, rng):
        """``(fit_rows, val_rows)``; ``val_rows`` is None without early stopping.

        Stratified by class when every class can be; else a random split that
        leaves every class at least one training row (one row per class is
        kept out of the draw), and no split when no row is left to draw.
        """
        fit_rows = np.arange(len(T))
        if not self.early_stopping:
            return fit_rows, None
        n_val = int(np.ceil(self.validation_fraction * len(T)))
        n_classes = len(self.classes_)
        seed = rng.randint(np.iinfo(np.int32).max)
        if T.ndim == 2:  # (all rows held out, or none left: no split, as single-label)
            if not 0 < n_val < len(T):
                return fit_rows, None
            fit, val = train_test_split(fit_rows, test_size=n_val, random_state=seed)
            # a label's every positive row held out trained it with none, silently (2
            # positives in 60 rows, validation_fraction=0.5: 12 seeds in 40, and the
            # label was never predicted for its rows): one of them goes back; so does one
            # of a label's negative rows all held out (it trained as every row's label)
            back = [
                val[np.argmax(side[val, j])]
                for side in (T > 0, T <= 0)
                for j in np.flatnonzero(side[val].any(axis=0) & ~side[fit].any(axis=0))
            ]
            if len(back):
                back = np.unique(back)
                fit, val = np.concatenate([fit, back]), val[~np.isin(val, back)]
                if not len(val):
                    return fit_rows, None
            return fit, val
        if n_val >= n_classes and len(T) - n_val >= n_classes and np.bincount(T).min() >= 2:
            fit, val = train_test_split(fit_rows, test_size=n_val, stratify=T, random_state=seed)
            if len(np.unique(T[fit])) == len(np.unique(T)):
                return fit, val
            # (a large validation_fraction held out a small class's every row: it
            # got no prototype and was never predicted, silently)
        # too little data to stratify: never hold out a class's last training row
        draws = np.random.RandomState(seed)
        order = draws.permutation(len(T))
        keep = order[np.unique(T[order], return_index=True)[1]]
        draw = np.setdiff1d(fit_rows, keep)
        if not len(draw):
            return fit_rows, None
        val = np.sort(draws.choice(draw, size=min(n_val, len(draw)), replace=False))
        return np.setdiff1d(fit_rows, val), val

    def _checked_split(self, X, T, fit_rows, val_rows):
        """``(fit_rows, val_rows)`` of the rows of positive weight ``X``, ``T``, made
        fit for the model: as given here (models of parts check that every class can
        have a prototype)."""
        return fit_rows, val_rows

    # ------------------------------------------------------------- fitting
    def _validate_training_data(self, X, y, *, reset: bool):
        multi = self._supports_multilabel and _validation.is_multilabel(y)
        X, y = _validation.validate_fit_data(
            self, X, y, reset=reset, multi_output=multi, min_spread=None
        )
        _validation.check_float32_training_range(X, self)  # (its spread bound is stricter)
        return X, y

    def _validate_batch(self, X, y, sample_weight, *, reset: bool):
        """``(X, y, sample_weight)`` of a ``partial_fit`` call, all checked before it
        changes anything (a batch that brings classes grows the model first)."""
        X, y = self._validate_training_data(X, y, reset=reset)
        # a batch whose rows all weigh 0 changes nothing (a first one raises, below)
        return X, y, _validation.validate_sample_weight(sample_weight, X, allow_all_zero=True)

    def _set_targets(self, y, classes=None) -> np.ndarray:
        """Encode the targets of a first fit; sets ``classes_``."""
        self.classes_, T, self._multilabel = _validation.encode_fit_targets(
            self, y, classes=classes, allow_multilabel=self._supports_multilabel
        )
        return T

    def _fit(self, X, y, sample_weight, *, warm: bool):
        """The whole of ``fit``: train, then project and refit on every row."""
        X_raw = X
        X, y = self._validate_training_data(X, y, reset=not warm)
        if not warm:  # a fit starts afresh: nothing of an earlier stream carries over
            for name in ("_classes_fixed", "_stream_losses"):
                self.__dict__.pop(name, None)
        T = _validation.encode_targets(self, y) if warm else self._set_targets(y)
        _validation.check_class_weight_labels(self.class_weight, self.classes_)
        w = self._training_weights(T, _validation.validate_sample_weight(sample_weight, X))
        if self._multilabel and len(T):
            # as scikit-learn's OneVsRestClassifier warns: such a label (no positive
            # row, or only rows of weight 0) gets free prototypes, and is predicted
            lost = ~((T > 0) & (w[:, None] > 0)).any(axis=0)
            if lost.any():
                warn_user(
                    f"Label(s) {np.flatnonzero(lost).tolist()} of the multi-label y have no "
                    f"positive training row of positive weight; {type(self).__name__} cannot "
                    "learn them and may predict them.",
                    UserWarning,
                )
        X_all, y_all = X, y
        kept = counted_rows(w)
        if kept is not None:
            X, T, w = X[kept], T[kept], w[kept]
        if warm:
            self._check_warm_targets(T)
        rng = check_random_state(self.random_state)
        fit_rows, val_rows = self._early_stopping_split(T, rng)
        fit_rows, val_rows = copies_held_out_together(X, T, fit_rows, val_rows)
        fit_rows, val_rows = self._checked_split(X, T, fit_rows, val_rows)
        X32 = X.astype(np.float32, copy=False)
        X_fit, T_fit, w_fit = X32[fit_rows], T[fit_rows], w[fit_rows]
        val = {}
        if val_rows is not None:
            val = dict(X_val=X32[val_rows], targets_val=T[val_rows], weights_val=w[val_rows])
        with training_context(self._n_threads):
            if warm:
                net = self._continued_network(self._state).to(self._device)
                self._rows_arrive(net, T)  # (a class declared to partial_fit, now with rows)
                history = self.history_
                if getattr(self, "_moments", None) is not None:
                    # what class-incremental replay draws from: every row trained on
                    # (a warm fit kept describing the first fit's rows only)
                    batch = class_moments(X[fit_rows], T_fit, len(self.classes_))
                    self._moments = merge_moments(self._moments, batch)
            else:
                net = self._build(X[fit_rows], T_fit, rng).to(self._device, torch.float32)
                history = new_history()
                self.n_iter_ = 0
            before = len(history["loss"])
            score = self._score_fn(net)
            config = self._training_config(self.max_epochs, "fit", len(X_fit))
            if not val:  # too few rows to hold any out: train without early stopping
                config = replace(config, early_stopping=False)
            train(
                net,
                self._trainable(net),
                self._batch_loss(net),
                X_fit,
                T_fit,
                w_fit,
                config,
                rng,
                score=score,
                history=history,
                on_epoch_end=self._on_epoch_end(net, X_fit, T_fit),
                **val,
            )
            self.n_iter_ += len(history["loss"]) - before
            history["accuracy_before_projection"] = score(*scored_sample(X_fit, T_fit, w_fit))
            if val:
                history["val_accuracy_before_projection"] = score(
                    val["X_val"], val["targets_val"], val["weights_val"]
                )
            held_out, held_rows = (X32, T, w), np.arange(len(X))
            if val_rows is not None:
                held_out, held_rows = (X32[val_rows], T[val_rows], w[val_rows]), val_rows
            self._project_and_refit(
                net,
                X,
                X32,
                T,
                w,
                history,
                rng,
                project=self.project,
                held_out=held_out,
                held_rows=held_rows,
                warm=warm,
            )
        self._rows_of_given(kept)
        self._keep_cases(X_raw, X_all, y_all, kept=kept)
        return self

    def _rows_of_given(self, kept: np.ndarray | None) -> None:
        """``prototype_sample_indices_`` as rows of the X given, where only its rows
        ``kept`` (of positive weight, :func:`counted_rows`) were searched."""
        if kept is not None:
            rows = self.prototype_sample_indices_
            self.prototype_sample_indices_ = np.where(rows >= 0, kept[np.maximum(rows, 0)], -1)

    def _project_and_refit(
        self,
        net,
        X,
        X32,
        T,
        w,
        history,
        rng,
        *,
        project: bool,
        held_out=None,
        search=None,
        held_rows=None,
        warm=False,
    ) -> None:
        """Projection onto rows of ``X`` (all of them), the refit stage, calibration, store.

        ``warm``: the network continues a fitted one; unprojected, prototypes
        tied to their rows stay those rows' latent vectors (the stale free
        vectors were stored), though which rows of this ``X`` is not known.

        ``held_out`` (rows, targets, weights) are what ``temperature="auto"``
        is fitted on (default: ``X`` itself), and ``held_rows`` their rows of
        ``X`` (default: all). ``search``: the targets the projection reads
        (default ``T``; -1 marks a row no prototype may take).
        """
        indices = np.full(len(getattr(net, self._prototype_parameter)), -1)
        owner = None
        if project:
            start = time.perf_counter()
            C, TC, owner = self._candidates(X32, T if search is None else search)
            indices = self._snap(net, C, TC)
            self._on_projected(net, C, indices)
            if self.verbose:
                print(
                    f"[{type(self).__name__}] projected {int(np.sum(indices >= 0))} of "
                    f"{len(indices)} prototypes onto training rows "
                    f"({time.perf_counter() - start:.2f}s)",
                    flush=True,
                )
        self._refit(net, X32, T, w, history, rng, projected=project)
        if project and is_dask(X32):  # streamed: the held-out rows are in memory
            history["val_accuracy_after_projection"] = self._score_fn(net)(*held_out)
        elif project:
            history["accuracy_after_projection"] = self._score_fn(net)(*scored_sample(X32, T, w))
        own = None
        if project:  # a held-out row a prototype became is scored without that prototype
            rows = indices if owner is None else np.where(indices >= 0, owner[0][indices], -1)
            if held_rows is None and held_out is None:
                held_rows = np.arange(len(X))
            if held_rows is not None:
                own = _own_prototypes(rows, np.asarray(held_rows))
        self._calibrate(net, *(held_out or (X32, T, w)), history, own=own)
        self._part_indices = None
        tied = self._kept_prototypes().get("rows") if warm and not project else None
        if tied is not None:
            self._store(net, indices, history, rows=tied)
        elif owner is None:
            self._store(net, indices, history, X_exact=X)
        else:  # parts: exact float64 rows of the chosen parts, named by (row, part)
            found = indices >= 0
            rows = np.full(len(indices), -1)
            rows[found] = owner[0][indices[found]]
            parts = np.full(len(indices), -1)
            parts[found] = owner[1][indices[found]]
            exact = self._exact_parts(X, rows, parts) if found.all() else None
            self._part_indices = parts
            self._store(net, rows, history, rows=exact, X_exact=None)

    def _calibrate(self, net, X, T, w, history: dict, own=None) -> None:
        """Fit the temperature on ``(X, T, w)`` when ``temperature="auto"``.

        ``own`` (rows of ``X``, prototypes): prototypes that are those rows
        themselves; where the head can leave a prototype out
        (:meth:`_scores_without`), such a row is scored by the other
        prototypes, as an unseen row would be. Scored by itself it is
        classified with full confidence: with fewer rows per class than
        prototypes, where held-out rows become prototypes, ProtoClassifier's
        temperature was over-confident (200 classes of 4 rows: test log-loss
        1.70, now 0.75).
        """
        buffer = self._temperature_buffer(net)
        if buffer is not None and getattr(self, "temperature", None) != "auto":
            # a given temperature is no fitted one: None, as in a fresh fit (a warm fit
            # after set_params(temperature=2.0) kept the earlier fit's auto value)
            history["temperature"] = None
        if buffer is None or getattr(self, "temperature", None) != "auto" or not len(X):
            return
        most = scored_rows(len(self.classes_))
        if len(X) > most:  # evenly spaced rows: all of them held (rows x classes) float64
            # scores many times over (2.3 GB for 40,000 rows of 1,000 classes)
            keep = np.unique(np.linspace(0, len(X) - 1, most).round().astype(np.intp))
            X, T, w = X[keep], T[keep], w[keep]
            if own is not None:
                at = np.searchsorted(keep, own[0]).clip(max=len(keep) - 1)
                kept = keep[at] == own[0]
                own = (at[kept], own[1][kept]) if kept.any() else None
        S = self._unit_temperature_scores(net, buffer, X, own)
        t = fit_temperature(*_copies_as_weights(X, S, T, w), prior=self._temperature_prior)
        with torch.no_grad():
            buffer.fill_(t)
        history["temperature"] = float(buffer)  # (as used: rounded to the buffer's float32)
        if self.verbose:
            print(f"[{type(self).__name__}] temperature {t:.4g} (held-out rows)", flush=True)
        if self._calibrates_batches:  # where a later partial_fit continues from
            self._stream_losses = (
                NO_LOSSES
                if T.ndim != 1
                else add_grid_losses(NO_LOSSES, S, _possible(S), T, _per_row(w))
            )

    def _unit_temperature_scores(self, net, buffer: torch.Tensor, X, own=None) -> np.ndarray:
        """The link's input on rows ``X`` at temperature 1 (``buffer`` keeps its value).

        ``own``: see :meth:`_calibrate`.
        """
        saved = float(buffer)
        with torch.no_grad():
            buffer.fill_(1.0)
        X = np.asarray(X, dtype=np.float32)
        S = self._evaluate(net, X, self._link_method)
        if own is not None:
            rows, local = np.unique(own[0], return_inverse=True)
            without = self._scores_without(net, X[rows], (local, own[1]))
            if without is not None:
                S[rows] = without
        with torch.no_grad():
            buffer.fill_(saved)
        return S

    def _scores_without(self, net, X: np.ndarray, left_out) -> np.ndarray | None:
        """The link's input on rows ``X`` with prototypes ``left_out = (rows, prototypes)``
        of those rows left out, or None where the head cannot leave one out."""
        return None

    #: The temperature ``temperature="auto"`` starts from when few held-out
    #: rows are seen (:func:`~skproto.calibration.fit_temperature`'s
    #: ``prior``): 1.0 for a model whose loss trains the scale of its scores,
    #: None (targets smoothed towards uniform instead) for one whose does not.
    _temperature_prior: float | None = None

    #: Whether ``partial_fit`` refits the temperature on each batch after
    #: learning it (:meth:`_calibrate_batch`): for models whose loss does not
    #: train the scale of their scores.
    _calibrates_batches = False

    def _add_to_stream_losses(self, net, X, T, w) -> bool:
        """Add the losses of rows ``X`` (scores at temperature 1) to the stream's table.

        The losses of every ``partial_fit`` batch (and of ``fit``'s held-out
        rows, if it ran first) add up in one table of the temperatures of
        :mod:`skproto.calibration`. Returns whether the rows added anything.
        """
        buffer = self._temperature_buffer(net)
        auto = getattr(self, "temperature", None) == "auto"
        if buffer is None or not auto or not len(X) or np.ndim(T) != 1:
            return False
        S = self._unit_temperature_scores(net, buffer, X)
        before = getattr(self, "_stream_losses", NO_LOSSES)
        self._stream_losses = add_grid_losses(before, S, _possible(S), T, _per_row(w))
        return self._stream_losses[1] > before[1]

    def _apply_stream_temperature(self, net, history: dict) -> None:
        """Set the temperature to the one of the stream's table of losses."""
        t = table_temperature(self._stream_losses)
        buffer = self._temperature_buffer(net)
        with torch.no_grad():
            buffer.fill_(t)
        history["temperature"] = float(buffer)  # (as used: rounded to the buffer's float32)

    def _calibrate_batch(self, net, X, T, w, history: dict) -> None:
        """After a ``partial_fit`` batch: add its losses to the stream's and refit the temperature.

        Only where ``_calibrates_batches``. ``partial_fit`` holds no row out,
        so the batch is scored by the model that has just learnt it (a chunk
        of new classes can be scored no other way). A loss that does not
        train the scores' scale (RBF's certified hinge) leaves the
        temperature of 1 far off (CLINC150, 75 then 75 new intents: test
        log-loss 4.45; digits, 5 then 5 new classes: 1.74), and this
        in-sample temperature is close to the best (0.217 on CLINC150, one
        fit: 0.188; digits 0.138 against 0.139 at the temperature fitted on
        the test rows themselves). Where a cross-entropy trains that scale,
        the in-sample temperature is over-confident (ProtoClassifier on
        CLINC150: log-loss 0.26-0.27 against 0.23 at 1), and so was scoring
        each batch's rows of known classes before learning them (a 5-chunk
        stream on CLINC150: 0.24 against 0.229, while the next batches,
        trained at that temperature, lost 0.5 points of accuracy; on digits
        the same rule helped, 0.40 to 0.16): ProtoClassifier keeps its own.
        """
        if self._calibrates_batches and self._add_to_stream_losses(net, X, T, w):
            self._apply_stream_temperature(net, history)

    def _partial_fit(self, X, y, classes, sample_weight):
        """One epoch of training on a batch; the first call fixes the classes."""
        first = not hasattr(self, "_state")
        X, y, sample_weight = self._validate_batch(X, y, sample_weight, reset=first)
        if first:
            if not (self._supports_multilabel and _validation.is_multilabel(y)) and (
                classes is None
            ):
                raise ValueError("classes must be passed on the first call to partial_fit.")
            classes_, T, multilabel = _validation.encode_fit_targets(
                self, y, classes=classes, allow_multilabel=self._supports_multilabel
            )
        else:
            _validation.check_same_classes(self, classes)
            T = _validation.encode_targets(self, y)
        w = self._training_weights(T, sample_weight, classes_ if first else None)
        kept = counted_rows(w, context="the first call to partial_fit" if first else "")
        if kept is not None:
            X, T, w = X[kept], T[kept], w[kept]
        if first:  # (nothing is set before the call's checks have passed)
            self.classes_, self._multilabel = classes_, multilabel
            self.n_iter_ = 0
        X32 = X.astype(np.float32, copy=False)
        rng = check_random_state(self.random_state)
        keep_exact = {} if first else self._kept_prototypes()
        with training_context(self._n_threads):
            if first:
                net = self._build(X, T, rng).to(self._device, torch.float32)
                history = new_history()
            else:
                net = self._continued_network(self._state).to(self._device)
                rng = np.random.RandomState(rng.randint(2**31 - 1) + self.n_iter_)
                history = self.history_
                self._rows_arrive(net, T)
            if len(T):  # the batch has rows of positive weight
                train(
                    net,
                    self._trainable(net),
                    self._batch_loss(net),
                    X32,
                    T,
                    w,
                    self._training_config(1, "partial_fit"),
                    rng,
                    history=history,
                )
                self._calibrate_batch(net, X32, T, w, history)
        self.n_iter_ += int(len(T) > 0)  # (an epoch ran; none for a batch of weight 0)
        rows = keep_exact.pop("indices", np.full(len(getattr(net, self._prototype_parameter)), -1))
        self._store(net, rows, history, **keep_exact)
        self._keep_cases(None, X, y, first_row=0)  # earlier prototypes keep their cases
        return self

    def _kept_prototypes(self) -> dict:
        """``_store``'s arguments (and ``indices``) that keep the stored prototypes'
        exact values and rows through a ``partial_fit`` that leaves them (or
        their rows) as they were."""
        return dict(
            previous=(self._state[self._prototype_parameter], self.prototype_sample_indices_)
        )

    def _project_onto(self, X, y, sample_weight):
        """Project the fitted prototypes onto (X, y) and run the refit stage."""
        self._check_structure("project_prototypes", "call fit")
        X_raw = X
        X, y = self._validate_training_data(X, y, reset=False)
        T = _validation.encode_targets(self, y)
        w = self._training_weights(T, _validation.validate_sample_weight(sample_weight, X))
        X_all, y_all = X, y
        # rows of weight 0 are no candidates, as in fit (they were: 7 of iris's 15
        # prototypes landed on such rows with every other row weighing 0)
        kept = counted_rows(w, context="project_prototypes")
        if kept is not None:
            X, T, w = X[kept], T[kept], w[kept]
        X32 = X.astype(np.float32, copy=False)
        with training_context(self._n_threads):
            net = self._continued_network(self._state).to(self._device)
            rng = check_random_state(self.random_state)
            self._project_and_refit(net, X, X32, T, w, self.history_, rng, project=True)
        self._rows_of_given(kept)
        # (the cases of the rows of fit's X were kept)
        self._keep_cases(X_raw, X_all, y_all, kept=kept)
        return self

    # ---------------------------------------------------------- evaluation
    def _evaluate(self, net, X: np.ndarray, method: str = "scores") -> np.ndarray:
        """``net.<method>`` of float32 rows ``X`` in chunks, as numpy (training device)."""
        dev = next(net.parameters()).device
        K = len(getattr(net, self._prototype_parameter))
        width = prototype_row_elements(X.shape[1], K, getattr(net, "n_tokens", None))
        out = None
        with torch.no_grad():
            for s in list(chunk_slices(len(X), width)) or [slice(0, 0)]:
                # (no rows: the method's own width, not the classes' count, which
                # broke the projection when no row could take a prototype)
                part = getattr(net, method)(to_tensor(X[s], dev)).cpu().numpy()
                if out is None:  # (into one array: the chunks and their concatenation
                    # held the output twice, 320 MB for 40,000 rows of 1,000 classes)
                    out = np.empty((len(X),) + part.shape[1:], dtype=part.dtype)
                out[s] = part
        return out

    def _score_fn(self, net) -> Callable:
        """Weighted accuracy (subset accuracy for multi-label) of the current network.

        Weighted by sample and class weights, like the loss, so early stopping
        follows the objective being optimised.
        """

        def score(X, T, w=None):
            S = self._evaluate(net, X)
            hit = np.all((S > 0) == (T > 0), axis=1) if T.ndim == 2 else S.argmax(1) == T
            return weighted_accuracy(hit, w)

        return score

    # ---------------------------------------------------------- projection
    def _candidates(self, X: np.ndarray, T: np.ndarray):
        """``(C, TC, owner)``: what prototypes may be projected onto, and their targets.

        The rows of ``X`` themselves by default (``owner`` None). A model of
        parts returns every part (e.g. every real token) as a row of ``C``,
        with its row's target, and ``owner = (row, part)`` index arrays.
        """
        return X, T, None

    def _exact_parts(self, X: np.ndarray, rows: np.ndarray, parts: np.ndarray) -> np.ndarray:
        """The parts ``(rows[k], parts[k])`` of float64 ``X``, one row per prototype."""
        raise NotImplementedError

    def _snap(self, net, X: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Move every prototype onto its nearest allowed row of ``X``; the rows' indices.

        Prototypes of one class go to distinct rows while the class has
        enough rows (closest pairs first); -1 where a prototype may take no row.
        """
        indices = self._nearest_rows(net, X, T)
        found = indices >= 0
        param = getattr(net, self._prototype_parameter)
        with torch.no_grad():
            values = self._snapped_values(net, take_rows(X, indices[found]))
            param[torch.as_tensor(found, device=param.device)] = torch.as_tensor(
                values, dtype=param.dtype, device=param.device
            )
        return indices

    def _nearest_rows(self, net, X: np.ndarray, T: np.ndarray) -> np.ndarray:
        """The row of ``X`` that :meth:`_snap` would move each prototype onto (-1: none).

        On a dask array (``skproto.parallel.fit_streaming``) the search runs
        block by block on the workers and returns global row indices.
        """
        groups = self._prototype_groups(net)
        targets = T
        if groups is None:  # any row; streamed targets of -1 mark rows of weight 0
            targets = -(T < 0).astype(int) if is_dask(T) else None
            groups = np.zeros(len(getattr(net, self._prototype_parameter)), dtype=int)
        embed, P, metric = self._projection_space(net)
        if is_dask(X):
            from ..parallel import nearest_rows

            report = Progress(type(self).__name__) if self.verbose else None
            found = nearest_rows(P, X, groups=groups, targets=targets, embed=embed, metric=metric)
            if report:  # (a pass over all the blocks: minutes for millions of rows)
                report.line(f"nearest rows of {len(P)} prototypes over {X.numblocks[0]} blocks")
            return found
        return project_onto_rows(P, X, groups=groups, targets=targets, embed=embed, metric=metric)

    # ----------------------------------------------------------- fitted state
    def _store(
        self, net, indices: np.ndarray, history: dict, X_exact=None, rows=None, previous=None
    ) -> None:
        """Keep the fitted parameters as float64 numpy arrays (pickles need no torch state).

        Projected prototypes are recomputed in float64 from the exact training
        rows (``X_exact[indices]``, or ``rows``: the row of every prototype), so
        a prototype in the input space *equals* its training row.
        ``previous`` (the stored prototypes and their row indices before a
        ``partial_fit``, the first of the network's): those that training left
        where they were keep their exact values and rows (a batch of weight 0,
        or the earlier classes' components while new ones learn, were rounded
        to float32 and lost their rows).
        """
        self._remember_params()  # (the network follows them: _as_fitted)
        if (
            self._temperature_buffer(net) is not None
            and getattr(self, "temperature", "auto") != "auto"
        ):
            # a given temperature is no fitted one, whatever stored it: a partial_fit
            # after set_params(temperature=2.0) kept the earlier fit's auto value
            history["temperature"] = None
        state = self._state_arrays(net)
        indices = np.array(indices, dtype=np.intp)
        if previous is not None:
            before, before_rows = previous
            now = state[self._prototype_parameter][: len(before)]
            same = self._unchanged_prototypes(now, before, state)
            now[same] = before[same]
            indices[: len(before)][same] = np.asarray(before_rows)[same]
        found = np.flatnonzero(indices >= 0)
        if rows is not None:
            found = np.arange(len(rows))
        elif X_exact is not None and len(found):
            rows = np.asarray(take_rows(X_exact, indices[found]), dtype=np.float64)
        if rows is not None and len(found):
            state[self._prototype_parameter][found] = self._exact_prototypes(net, rows)
            if self._cases_buffer is not None:
                state[self._cases_buffer][found] = rows
        self._state = state
        self._inference_cache = self._frozen_network(state)
        self.prototype_sample_indices_ = indices
        self.history_ = history
        self.loss_curve_ = list(history["loss"])
        self._set_fitted_attributes(net)

    def _state_arrays(self, net) -> dict:
        """The network's state as ``_state`` keeps it: float64 numpy arrays."""
        return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in net.state_dict().items()}

    def _unchanged_prototypes(self, now: np.ndarray, before: np.ndarray, state: dict) -> np.ndarray:
        """Which of the stored prototypes ``before`` training left where they were
        (``now``, of the new ``state``): equal in the network's float32."""
        return np.all(now.astype(np.float32) == before.astype(np.float32), axis=1)

    # ------------------------------------------------------------ inference
    def _fit_context(self):
        # the training code places its tensors on the training device itself and
        # takes the default device for the CPU: under torch.set_default_device("cuda")
        # the start of the map, the stream's state and the calibration mixed devices
        return cpu_default()

    def _frozen_network(self, state: dict) -> torch.nn.Module:
        """The float64 CPU inference network of ``state``: no gradients, precomputed terms."""
        with cpu_default():  # (whatever device the caller made torch's default)
            return self._network(state, torch.float64).eval().requires_grad_(False).freeze()

    def _inference_network(self) -> torch.nn.Module:
        """The fitted network in float64 on the CPU, built when the state is stored."""
        return self._inference_cache

    def _run(self, method: str, X: np.ndarray, *args) -> np.ndarray:
        """``method`` of the inference network on ``X`` (computed in float64), as numpy."""
        x = torch.from_numpy(np.require(X, dtype=np.float64, requirements=("C", "W")))
        net = self._inference_network()  # no parameter requires grad: nothing is recorded
        n_threads = self._n_threads
        with cpu_default():
            if n_threads == thread_count():
                return getattr(net, method)(x, *args).numpy()
            with torch_threads(n_threads):
                return getattr(net, method)(x, *args).numpy()

    def _pairwise(self, X: np.ndarray) -> np.ndarray:
        return self._run("pairwise", X)

    def _scores_chunk(self, X: np.ndarray) -> np.ndarray:
        return self._run("scores", X)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it may be the instance's __dict__
        state.pop("_inference_cache", None)  # a torch module: rebuilt when unpickled
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_state" in self.__dict__:  # built with the parameters of the fit
            self._inference_cache = self._as_fitted()._frozen_network(self._state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
