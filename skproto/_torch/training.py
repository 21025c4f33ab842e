"""The one torch training loop shared by skproto's learned estimators.

Mini-batch Adam over numpy data, with deterministic shuffling, optional early
stopping on a held-out split (restoring the best parameters), per-epoch
history and progress printing. Dask arrays are streamed: each epoch reads the
blocks in a fresh random order, a window of a few blocks at a time (the next
window is read while the current one trains), and shuffles the rows within
each window (``skproto.parallel.fit_streaming``). The estimator supplies the module, the loss and
the score; the loop knows nothing about prototypes.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._chunking import chunk_slices, is_dask
from .._progress import Progress
from .._validation import FLOAT32_MAX_ABS, warn_user
from ..geometry import squared_distances
from ..geometry._array import row_sqnorms

__all__ = [
    "TrainingConfig",
    "new_history",
    "resolve_device",
    "resolve_n_threads",
    "to_tensor",
    "torch_threads",
    "cpu_default",
    "train",
    "weighted_accuracy",
]

#: Training rows (at most) the per-epoch ``train_score`` and the training
#: accuracies around the projection are measured on.
SCORED_ROWS = 2000


def scored_sample(X: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> tuple:
    """At most :data:`SCORED_ROWS` rows of ``(X, targets, weights)``, in row order.

    The training accuracies of ``history_`` are estimates on these rows: a
    pass over every row each epoch cost 11% of a CLINC150 fit, and the two
    passes around the projection (13,500 and 15,000 rows) 0.7 s of its 12.
    The rows are drawn at random, the same ones for the same number of rows
    (a seed of their own, so ``random_state``'s stream is untouched); evenly
    spaced rows aliased with a periodic order of the classes (``y = [0, 1,
    2, 3] * 2000``: every 4th row, all of class 0, an accuracy of 1.0 read
    where the model scored 0.51).
    """
    if len(X) <= SCORED_ROWS:
        return X, targets, weights
    # (a Generator draws k of n rows in O(k): RandomState.choice shuffled all n,
    # 0.6 s at 5 million rows, three times a fit)
    rows = np.sort(np.random.default_rng(0).choice(len(X), SCORED_ROWS, replace=False))
    return X[rows], targets[rows], weights[rows]


#: Per-epoch keys of ``history_``: lists with one entry per epoch.
EPOCH_KEYS = ("loss", "train_score", "val_loss", "val_score", "seconds")


def new_history() -> dict:
    """The one ``history_`` schema of the torch estimators, empty.

    ``loss``, ``train_score`` (on at most :data:`SCORED_ROWS` training rows,
    :func:`scored_sample`), ``val_loss``, ``val_score``, ``seconds``: one
    entry per epoch of the main training (over all ``fit``/``partial_fit``
    calls; the ``val_*`` lists only with early stopping).
    ``accuracy_before_projection`` (on at most :data:`SCORED_ROWS` rows
    trained on), ``val_accuracy_before_projection`` (on the early-stopping
    split) and ``accuracy_after_projection`` (on at most :data:`SCORED_ROWS`
    rows of all, after the refit): floats, or
    None where not measured. ``refit``: None, or what the stage after
    projection did: ``method`` ("lbfgs" or "adam"), ``loss`` (per L-BFGS
    evaluation or per epoch), ``n_iter``, ``seconds``, ``converged`` and
    ``max_gradient`` (None where not measured). ``temperature``: the
    temperature fitted on held-out rows by ``temperature="auto"``, else None.
    """
    history: dict = {key: [] for key in EPOCH_KEYS}
    history.update(
        accuracy_before_projection=None,
        val_accuracy_before_projection=None,
        accuracy_after_projection=None,
        refit=None,
        temperature=None,
    )
    return history


def resolve_device(device: str, kinds: tuple[str, ...] | None = None) -> torch.device:
    """``"cpu"``, ``"cuda"`` (or ``"cuda:1"``, ...) or ``"auto"`` (CUDA when available) as
    a torch device; a ``ValueError`` where CUDA is asked for and torch finds none, or
    no GPU of that number (torch's own errors are an ``AssertionError`` and a
    ``RuntimeError``), for a string torch does not read as
    a device, and for a device type outside ``kinds`` (None: any torch device). The
    estimators' (``kinds=("cpu", "cuda")``) and the encoders' (any)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:  # (torch: "Expected one of cpu, cuda, ...")
        raise ValueError(f"device={device!r} is not a torch device: {error}") from None
    if kinds is not None and resolved.type not in kinds:
        raise ValueError(
            f"device={device!r}: training runs on {', '.join(map(repr, kinds))} (or "
            "'cuda:N' for the N-th GPU), or 'auto' (CUDA where torch finds it)."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but torch finds no CUDA device.")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        # (torch's own error came at the first tensor moved there, mid-fit: a RuntimeError
        # "CUDA error: invalid device ordinal")
        raise ValueError(
            f"device={device!r} was requested but torch finds {torch.cuda.device_count()} "
            "CUDA device(s) (numbered from 0)."
        )
    return resolved


def resolve_n_threads(n_jobs: int | None) -> int:
    """Threads for ``n_jobs``: None -> 1, -1 -> every usable core, -2 -> all but one, ..."""
    if n_jobs is None:
        return 1
    if n_jobs > 0:
        return int(n_jobs)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (usable or 1) + 1 + int(n_jobs))


# torch's thread count (OpenMP) is per thread, and a new thread starts from the
# last count set in any thread: a thread that enters its first block while other
# threads' blocks run may read a count one of them set, not a count of its own, so
# it restores the count from before the first of the running blocks instead (each
# thread restoring what it read left new threads at another block's n_jobs). Only
# its first block: torch reads a thread's count from the shared one once, at the
# thread's first use, and from then on the count it reads is its own (every block
# of a thread that had set its own count, overlapping another thread's, left it at
# that thread's count)
_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0  # blocks running, in all threads
_THREADS_BEFORE = 1  # the count before the first of them
_THREADS_LOCAL = threading.local()  # .depth: this thread's blocks running; .known: a
# block of this thread has read its count before


def thread_count() -> int:
    """This thread's torch thread count; read while no block runs, it is the thread's
    own (a later block of this thread restores it)."""
    with _THREADS_LOCK:
        current = torch.get_num_threads()
        if not _THREADS_USERS:
            _THREADS_LOCAL.known = True
    return current


def _after_fork_in_child() -> None:
    """The child of a fork has only the thread that forked: the blocks other threads
    had open never end there (the child's first blocks restored, for good, the count
    from before them), and one of them may have held the lock."""
    global _THREADS_LOCK, _THREADS_USERS
    _THREADS_LOCK = threading.Lock()
    _THREADS_USERS = getattr(_THREADS_LOCAL, "depth", 0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def torch_threads(n_threads: int, *, blas: bool = False) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads (restored afterwards).

    With ``blas`` the BLAS and OpenMP pools of numpy, scipy and scikit-learn
    (k-means) are limited too, through threadpoolctl. A nested block restores
    its thread's count from before it; a thread's first block restores the
    count from before the first block running in any thread, its later blocks
    the thread's own count.
    """
    global _THREADS_USERS, _THREADS_BEFORE
    with _THREADS_LOCK:
        depth = getattr(_THREADS_LOCAL, "depth", 0)
        known = getattr(_THREADS_LOCAL, "known", False)
        current = torch.get_num_threads()
        _THREADS_LOCAL.known = True
        if _THREADS_USERS == 0:
            _THREADS_BEFORE = current
        restore = current if depth or known or not _THREADS_USERS else _THREADS_BEFORE
        _THREADS_USERS += 1
        _THREADS_LOCAL.depth = depth + 1
        if current != n_threads:
            torch.set_num_threads(n_threads)
    try:
        if blas:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=n_threads):
                yield
        else:
            yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            _THREADS_LOCAL.depth -= 1
            if torch.get_num_threads() != restore:
                torch.set_num_threads(restore)


def cpu_default() -> contextlib.AbstractContextManager:
    """A block in which tensors created without a device are on the CPU.

    Prediction runs on the CPU; where the caller made another device torch's
    default (``torch.set_default_device("cuda")``), the tensors a network makes
    for itself would land there, next to CPU parameters. A no-op otherwise.
    """
    if torch.empty(0, dtype=torch.float32).device.type == "cpu":
        return contextlib.nullcontext()
    return torch.device("cpu")


@contextlib.contextmanager
def training_context(n_threads: int) -> Iterator[None]:
    """Train with ``n_threads`` threads (:func:`torch_threads`, BLAS too), autograd
    on and autocast off, whatever the caller set: a fit inside ``torch.no_grad()`` or
    ``torch.inference_mode()`` failed ("element 0 of tensors does not require grad"),
    and one inside ``torch.autocast("cpu", dtype=torch.bfloat16)`` failed in ``fit``
    ("Got unsupported ScalarType BFloat16", "data type <class 'numpy.str_'> not
    inexact") or trained a ``partial_fit`` in bfloat16's 3 digits, silently."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch_threads(n_threads, blas=True))
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        stack.enter_context(torch.autocast("cpu", enabled=False))
        # (turning it off sets thread-local flags only, CUDA or not: the check of
        # torch.cuda.is_available() it replaces reached the driver on every CPU fit,
        # which a process that forks CUDA-using workers afterwards must not have done)
        stack.enter_context(torch.autocast("cuda", enabled=False))
        yield


def to_tensor(a: np.ndarray, device: torch.device, dtype=torch.float32) -> torch.Tensor:
    """A tensor of ``a`` (copied where ``a`` is read-only, e.g. a pandas view)."""
    if not a.flags.writeable:
        a = a.copy()
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)


@dataclass
class TrainingConfig:
    """Settings of one call of :func:`train` (taken from the estimator's parameters)."""

    max_epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    n_iter_no_change: int = 10
    tol: float = 1e-4
    early_stopping: bool = False
    verbose: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "train"
    #: the parameter ``max_epochs`` comes from, named by verbose's "reached" line
    #: (None: a single pass by design, e.g. ``partial_fit``'s epoch: no such line)
    epochs_param: str | None = "max_epochs"
    #: blocks of a dask array shuffled together (streamed training)
    window_blocks: int = 4
    #: warn (ConvergenceWarning) when the first epoch moves no parameter at a nonzero loss;
    #: off where the loss is mostly that of parts kept fixed on purpose (a
    #: class-incremental partial_fit training only the new classes' components)
    warn_unmoved: bool = True
    #: the least loss there is (0 for most; GLVQ's sigmoid(-2), every row on its own
    #: class's prototype): a first epoch that moved nothing at this loss is at the
    #: minimum, no warning
    loss_floor: float = 0.0
    #: the estimator's scales of the data's distances that were given as numbers (not
    #: "auto"), which a first epoch whose every gradient was 0 is blamed on; None: not
    #: known, every such scale is named. Empty (all fitted to the data): no gradient
    #: at the start is the data's (identical rows of different classes, a constant X:
    #: a flat loss no parameter changes), no warning
    set_scales: tuple[str, ...] | None = None


def stream_windows(
    X, targets, weights, window_blocks: int
) -> Callable[[np.random.RandomState], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Windows of dask arrays ``(X, targets, weights)`` (aligned row blocks), for one epoch.

    ``windows(rng)`` yields ``(X, targets, weights)`` numpy arrays of
    ``window_blocks`` blocks drawn in a random block order, rows of weight 0
    left out, X as float32. The next window is computed (on the dask
    scheduler: the cluster's workers, if a client is active) while the
    current one is used, so at most two windows are in memory.
    """
    import dask

    def parts(a):
        return list(a.rechunk({0: X.chunks[0]}).to_delayed().ravel())

    xs = list(X.rechunk({1: -1}).to_delayed().ravel())
    ts, ws = parts(targets), parts(weights)

    def load(blocks):
        got = dask.compute(*[(xs[i], ts[i], ws[i]) for i in blocks])
        Xw = np.concatenate([g[0] for g in got]).astype(np.float32, copy=False)
        Tw = np.concatenate([g[1] for g in got])
        Ww = np.concatenate([g[2] for g in got]).astype(np.float32, copy=False)
        top = float(np.abs(Xw).max(initial=0.0))
        if not np.isfinite(top):
            raise ValueError("Input X contains NaN or infinity (in a streamed block of rows).")
        if top > FLOAT32_MAX_ABS:  # (as fit refuses it; it trained to a NaN loss)
            raise ValueError(
                f"X contains values up to {top:.3g} in magnitude (in a streamed block of "
                f"rows); training in float32 accepts at most {FLOAT32_MAX_ABS:g}, beyond "
                "which squared distances overflow. Rescale X."
            )
        keep = Ww > 0
        return Xw[keep], Tw[keep], Ww[keep]

    def windows(rng):
        order = rng.permutation(len(xs))
        groups = [order[i : i + window_blocks] for i in range(0, len(order), window_blocks)]
        with ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(load, groups[0])
            for k in range(len(groups)):
                current = ahead.result()
                if k + 1 < len(groups):
                    ahead = pool.submit(load, groups[k + 1])
                yield current

    return windows


def _held_out_loss(batch_loss, X, T, W, rows: int) -> float:
    """``batch_loss`` of all of ``(X, T, W)``, ``rows`` rows at a time.

    The loss is a weighted mean over rows plus terms of the parameters alone,
    so the chunks' losses weighted by their rows' weights combine exactly. In
    one call, the held-out rows of a 1,000-class RBF model held (rows,
    prototypes of a class, all prototypes) arrays: 350 MB more at 2,000 rows.
    """
    if len(X) <= rows:
        return float(batch_loss(X, T, W))
    total, weight = 0.0, 0.0
    for s in range(0, len(X), rows):
        w = float(W[s : s + rows].sum())
        if w > 0:
            total += float(batch_loss(X[s : s + rows], T[s : s + rows], W[s : s + rows])) * w
            weight += w
    return total / weight if weight > 0 else float(batch_loss(X[:rows], T[:rows], W[:rows]))


def train(
    module: torch.nn.Module,
    parameters: list,
    batch_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    X: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    config: TrainingConfig,
    rng: np.random.RandomState,
    *,
    score: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None = None,
    X_val: np.ndarray | None = None,
    targets_val: np.ndarray | None = None,
    weights_val: np.ndarray | None = None,
    history: dict | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict:
    """Optimise ``parameters`` of ``module`` with Adam on mini-batches.

    ``batch_loss(xb, tb, wb)`` returns the (weighted mean) loss of one batch.
    ``score(X, targets, weights)`` (higher is better, weighted like the loss)
    is recorded each epoch on the training data (at most :data:`SCORED_ROWS`
    rows of it, :func:`scored_sample`) and, with early stopping, on ``X_val``. With
    ``config.early_stopping`` training stops after ``n_iter_no_change``
    epochs in which the loss on ``X_val`` did not drop by at least ``tol``,
    and the parameters of the epoch with the lowest ``X_val`` loss are
    restored (also when it improved on the one before by less than ``tol``);
    without it, the same stopping rule applies to the training loss. Either
    way an epoch whose loss is exactly 0 and that moved no parameter ends
    training: every later one would repeat it. A first epoch that moved no
    parameter at a loss above 0 (above ``config.loss_floor``) warns
    (ConvergenceWarning: the model is returned as it started), unless
    ``config.warn_unmoved`` is off, no parameter got a gradient, or every
    gradient was 0 with no scale of the data given (``config.set_scales`` empty).
    Shuffling draws from ``rng``, so a fixed seed gives the same result on the
    same device.

    ``on_epoch_end(epoch)`` (1-based, counting this call's epochs) runs after
    each epoch's updates, before it is scored.

    Returns the ``history`` dict, extended with this run's epochs (a plain
    dict of the :data:`EPOCH_KEYS` lists when none is given).
    """
    history = {key: [] for key in EPOCH_KEYS} if history is None else history
    dev = config.device
    if is_dask(X):
        windows = stream_windows(X, targets, weights, config.window_blocks)
    else:
        whole = to_tensor(X, dev), _targets(targets, dev), to_tensor(weights, dev)

        def windows(_rng):
            yield whole

    if config.early_stopping:
        if weights_val is None:
            weights_val = np.ones(len(X_val), dtype=np.float32)
        Xv, Tv = to_tensor(X_val, dev), _targets(targets_val, dev)
        Wv = to_tensor(weights_val, dev)
    optimizer = Adam(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    best = lowest = -np.inf  # (negated losses: higher is better)
    best_state, stale, best_epoch = None, 0, 0
    if score is not None and not is_dask(X):
        scored = scored_sample(X, targets, weights)
    for epoch in range(config.max_epochs):
        start = time.perf_counter()
        # the parameters at the epoch's start: an epoch of zero loss that moved
        # none of them is repeated exactly by every later one
        before = [q.detach().clone() for q in parameters]
        # a streamed epoch (hours over a large dask array) shows its progress
        # within, rate-limited; it printed once it had ended
        report = Progress(config.name) if config.verbose and is_dask(X) else None
        with _diverging(config, module, epoch):  # (a raw torch error of NaN parameters)
            module.train()
            total, n = 0.0, 0
            for Xt, Tt, Wt in windows(rng):
                if report and n:
                    report.tick(
                        lambda n=n, total=total: (
                            f"epoch {len(history['loss']) + 1}: {n} rows "
                            f"streamed, loss {total / n:.5f}"
                        )
                    )
                if not torch.is_tensor(Xt):
                    Xt, Tt, Wt = to_tensor(Xt, dev), _targets(Tt, dev), to_tensor(Wt, dev)
                order = torch.as_tensor(rng.permutation(len(Xt)), device=dev)
                n += len(Xt)
                for s in range(0, len(Xt), config.batch_size):
                    idx = order[s : s + config.batch_size]
                    optimizer.zero_grad()
                    loss = batch_loss(Xt[idx], Tt[idx], Wt[idx])
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(idx)
        module.eval()
        epoch_loss = total / max(n, 1)
        if not np.isfinite(epoch_loss):
            what = f"the loss became {epoch_loss} in epoch {epoch + 1}"
            raise ValueError(_diverged(config, what))
        # the call's first epoch only: a later one that moves nothing stalled where the
        # earlier ones took the model, at a point where Adam's steps vanish (a minimum
        # of a loss above 0: the robust loss of 4 separated rows stalled at 0.0497
        # in epoch 209, every gradient nonzero, and was told "every gradient was 0 ...
        # still where it started")
        if (
            epoch == 0
            and config.warn_unmoved
            and epoch_loss > config.loss_floor + 1e-5 * abs(config.loss_floor)
            and not _moved(before, parameters)
        ):
            message = _stuck_message(config, epoch_loss, optimizer)
            if message is not None:
                warn_user(message, ConvergenceWarning)
        if on_epoch_end is not None:
            # (its search for the rows nearest the prototypes refuses non-finite ones:
            # a diverged run read "prototypes must be ... finite numbers")
            if not _finite_parameters(module):
                what = f"a parameter became non-finite in epoch {epoch + 1}"
                raise ValueError(_diverged(config, what))
            on_epoch_end(epoch + 1)
        history["loss"].append(epoch_loss)
        in_memory = score is not None and not is_dask(X)
        train_score = score(*scored) if in_memory else np.nan
        history["train_score"].append(train_score)
        if config.early_stopping:
            with torch.no_grad(), _diverging(config, module, epoch):
                val_loss = _held_out_loss(batch_loss, Xv, Tv, Wv, config.batch_size)
            history["val_loss"].append(val_loss)
            if score is not None:
                history["val_score"].append(score(X_val, targets_val, weights_val))
            current = -val_loss
        else:
            current = -epoch_loss
        history["seconds"].append(time.perf_counter() - start)
        if config.verbose:
            msg = f"[{config.name}] epoch {len(history['loss']):4d}  loss {epoch_loss:.5f}"
            if np.isfinite(train_score):  # (none while streaming)
                msg += f"  train {train_score:.4f}"
            if config.early_stopping:
                msg += f"  val loss {history['val_loss'][-1]:.5f}"
                if score is not None:
                    msg += f"  val {history['val_score'][-1]:.4f}"
            print(msg + f"  ({history['seconds'][-1]:.2f}s)", flush=True)
        # the patience counts epochs since the loss last dropped by ``tol`` below
        # the level that reset it; the state kept is the one with the lowest loss
        # (an epoch that improved it by less than ``tol`` included)
        if current > lowest:
            lowest, best_epoch = current, len(history["loss"])
            if config.early_stopping:
                best_state = copy.deepcopy(module.state_dict())
        if epoch_loss == 0.0 and not _moved(before, parameters):
            if config.verbose:
                print(f"[{config.name}] zero loss, no parameter moved: stopping", flush=True)
            break
        if current > best + config.tol:
            best, stale = current, 0
        else:
            stale += 1
            if stale >= config.n_iter_no_change:
                if config.verbose:
                    print(
                        f"[{config.name}] no improvement in {stale} epochs: stopping",
                        flush=True,
                    )
                break
    else:
        if config.verbose and config.max_epochs and config.epochs_param:
            print(f"[{config.name}] reached {config.epochs_param}={config.max_epochs}", flush=True)
    if best_state is not None:
        module.load_state_dict(best_state)
        if config.verbose and best_epoch != len(history["loss"]):
            print(
                f"[{config.name}] restored epoch {best_epoch} (the lowest held-out loss)",
                flush=True,
            )
    if not _finite_parameters(module):
        raise ValueError(_diverged(config, "a parameter became non-finite"))
    return history


def _moved(before: list, parameters: list) -> bool:
    """Whether any of ``parameters`` differs from its copy in ``before``."""
    return not all(torch.equal(a, q) for a, q in zip(before, parameters))


def _stuck_message(config: TrainingConfig, loss: float, optimizer: Adam) -> str | None:
    """The warning for a first epoch whose steps moved no parameter at a nonzero loss, or
    None where no parameter got a gradient (nothing this loss trains: e.g. a
    ``partial_fit`` bringing new classes to a mixture model without a map).

    Read from the optimizer's first moments, only then: all 0 where every step was
    0 (every gradient 0); otherwise steps were taken, each too small to change a
    parameter in float32 (a tiny ``learning_rate``, or gradients far below Adam's
    ``eps``): "every gradient was 0" was false at learning_rate=1e-12."""
    moments = [st[1] for st in optimizer.state if st is not None]
    if not moments:
        return None
    if not any(bool(m.any()) for m in moments):
        # (with every scale at "auto", a loss that is flat at the start is the data's:
        # a first batch of two copies of a row with different labels, at its least
        # loss (ln 2, GLVQ's 0.5), warned at default parameters that a scale "too
        # small for the data's distances" underflowed every gradient)
        scales = config.set_scales
        if scales is not None and not scales:
            return None
        names = ", ".join(scales or ("sigma", "rbf_width", "temperature"))
        return (
            f"Training ({config.name}) moved no parameter in epoch 1: every gradient was "
            f"0 at a loss of {loss:.4g}, so the model is still where it started. A scale "
            f"that is too small for the data's distances ({names}) makes every gradient "
            "underflow; its 'auto' value fits the data."
        )
    return (
        f"Training ({config.name}) moved no parameter in epoch 1: every step, at "
        f"learning_rate={config.learning_rate:g}, was too small to change a parameter in "
        f"float32 at a loss of {loss:.4g}, so the model is still where it started. Raise "
        "learning_rate; gradients that all but vanish (a scale such as sigma, rbf_width "
        "or temperature too small for the data's distances) shrink the steps too."
    )


@contextlib.contextmanager
def _diverging(config: TrainingConfig, module: torch.nn.Module, epoch: int) -> Iterator[None]:
    """Turn an error that a step's non-finite parameters caused (torch.linalg's SVD of
    a NaN map raised before the epoch's loss could be checked) into the message of a
    diverged run; any other error passes as it is."""
    try:
        yield
    except RuntimeError as exc:
        if _finite_parameters(module):
            raise
        what = f"a parameter became non-finite in epoch {epoch + 1}"
        raise ValueError(_diverged(config, what)) from exc


def _finite_parameters(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _diverged(config: TrainingConfig, what: str) -> str:
    """The message of a training run that diverged (never a silently broken model)."""
    return (
        f"Training diverged in {config.name}: {what}. Lower learning_rate (it was "
        f"{config.learning_rate:g}) or any very large loss parameter (a margin or cost "
        "weight), or rescale X (e.g. with sklearn.preprocessing.StandardScaler)."
    )


def _about_own_mean(rows: np.ndarray) -> np.ndarray:
    """Each row less the mean of its own values, unless that leaves it 0 (a constant
    row keeps its values): the size of one row in X's units that a common offset of
    every feature does not change (a first batch of one row of digits + 2**20 read
    the offset as its scale: sigma 1.2e7 against 92, accuracy 0.10 against 0.89)."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    flat = ~np.any(centred, axis=1)
    centred[flat] = rows[flat]
    return centred


def training_centre(X: np.ndarray) -> np.ndarray:
    """The point a network takes its inputs about: the mean of the rows ``X``
    rounded to float32 (zeros for no rows), as float64 (so that float32 holds
    it exactly). ProtoClassifier's map and RBFPrototypeClassifier's components
    train about it: far from the origin for the data's spread, float32 could
    not hold a training step where the rows lie."""
    mean = np.mean(X, axis=0, dtype=np.float64) if len(X) else np.zeros(X.shape[1])
    return mean.astype(np.float32).astype(np.float64)


def data_scale(X: np.ndarray) -> float:
    """The power of two nearest the median norm of the centred rows of ``X``; where
    that is 0 (one distinct row), of the rows' own size about their mean value
    (:func:`_about_own_mean`); 1.0 if none (or rows at 0).

    The unit of the parameters that live in the units of ``X`` (see
    :func:`in_units`), or the divisor of the inputs (ProtoClassifier's
    ``InputScale``): a power of two scales exactly, so that training on
    ``X * 2**k`` is training on ``X``, and the learning rate means the same
    in any units of ``X``.
    """
    if not len(X):
        return 1.0
    mean = np.mean(X, axis=0, dtype=np.float64)
    sq = np.empty(len(X))
    for s in chunk_slices(len(X), X.shape[1]):  # (no centred copy of X at once)
        sq[s] = row_sqnorms(np.asarray(X[s], dtype=np.float64) - mean)[:, 0]
    median = float(np.median(np.sqrt(sq)))
    if not (np.isfinite(median) and median > 0):
        # one distinct row (a stream's first batch of one row): its size about its
        # own mean value, the only size it has in X's units that a common offset
        # does not change (1.0 made a stream's scales depend on the units)
        for s in chunk_slices(len(X), X.shape[1]):
            sq[s] = row_sqnorms(_about_own_mean(np.asarray(X[s], dtype=np.float64)))[:, 0]
        median = float(np.median(np.sqrt(sq)))
        if not (np.isfinite(median) and median > 0):
            return 1.0
    return float(2.0 ** np.round(np.log2(median)))


def squared_distances_to_others(
    Z: np.ndarray, P: np.ndarray, own: np.ndarray | None = None
) -> np.ndarray:
    """Squared distance of each row of ``Z`` to its nearest row of ``P`` other than
    itself, for the rows that have one.

    A row of ``P`` within rounding of the row (a squared distance of at most
    ``64 eps (|z - c|^2 + |p - c|^2)`` about the rows of ``P``'s mean ``c``, the
    bound of the expansion's rounding in the arrays' precision ``eps``) is the
    row itself (with no more rows per class than prototypes, k-means returns
    the rows); counted, it made the scales derived from these distances (RBF's
    ``sigma`` and margin, ``rbf_width``) about 0. The test is relative to the
    pair, not to the data: when it was 1 % of the data's unit
    (:func:`data_scale`), a class lying 1,000 units from two others of spread 1
    (iris, standardised, one class shifted) had its neighbours' own components
    ignored, and RBF's ``sigma`` started at 2,900 where 0.74 fits: training
    accuracy 0.67.

    ``own`` (one squared distance per row of ``P``, default 0) widens the test
    where the caller knows more: RBF's components started on jittered copies of
    a class's rows, and those on near copies of a row (see
    :func:`skproto.rbf._estimator._own_tolerance`); counted, they made ``sigma``
    and the margin about the jitter, or the copies' difference.
    """
    near = nearest_others(Z, P, own)[0]
    return near[np.isfinite(near)]


def nearest_others(
    Z: np.ndarray, P: np.ndarray, own: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(near, on)`` per row of ``Z``: the squared distance to its nearest row of
    ``P`` other than itself (inf where none), and whether some row of ``P`` is the
    row itself (the test of :func:`squared_distances_to_others`)."""
    dtype = np.result_type(Z, P, np.float32)
    near, on = np.full(len(Z), np.inf, dtype=dtype), np.zeros(len(Z), dtype=bool)
    if not len(Z) or not len(P):  # (no prototype: none is near)
        return near, on
    center = P.mean(axis=0)
    eps = np.finfo(dtype).eps
    p_sq = row_sqnorms(P - center)[:, 0]
    for s in chunk_slices(len(Z), max(len(P), Z.shape[1])):
        sq = squared_distances(Z[s], P, center=center)
        z_sq = row_sqnorms(Z[s] - center)[:, 0]
        bound = 64 * eps * (z_sq[:, None] + p_sq[None, :])
        if own is not None:
            bound = np.maximum(bound, own[None, :])
        itself = sq <= bound
        on[s] = itself.any(axis=1)
        sq[itself] = np.inf
        near[s] = sq.min(axis=1)
    return near, on


def log2_weights(w: np.ndarray) -> tuple[float, int, float]:
    """``(sum of log2 w, count, largest log2 w)`` over the positive weights ``w``
    (for :func:`weight_unit`)."""
    positive = w[w > 0]
    if not positive.size:
        return 0.0, 0, -np.inf
    logs = np.log2(positive)
    return float(logs.sum()), int(positive.size), float(logs.max())


#: The largest weight is scaled to at most 2**this: float32 holds up to 2**128.
_TOP_WEIGHT_LOG2 = 64


def weight_unit(log2_total: float, count: int, log2_top: float = -np.inf) -> float:
    """The power of two nearest the geometric mean of ``count`` positive weights
    whose log2 sum to ``log2_total`` (1.0 for none): dividing by it scales
    the weights exactly, whatever their range. Larger where the largest
    weight (log2 ``log2_top``) would stay above ``2**64``: weights more than
    float32's range apart (1e-300 and 1) overflowed float32 on both sides of
    their geometric mean; now the smallest underflow, as they would next to
    the largest in any float32 sum.
    """
    if not count:
        return 1.0
    exponent = max(np.round(log2_total / count), np.round(log2_top) - _TOP_WEIGHT_LOG2)
    return float(2.0**exponent)


def check_weight_span(lightest: float, heaviest: float, unit: float, estimator) -> None:
    """Raise if the lightest positive weight, divided by ``unit``, is 0 in float32
    (the rows would be dropped without a word, beside the heaviest)."""
    if np.float32(lightest / unit) == 0:
        with np.errstate(over="ignore"):
            ratio = heaviest / lightest  # (1e300 / 1e-300 read "span inf times")
        span = (
            f"{ratio:.3g}"
            if np.isfinite(ratio)
            else f"2**{np.log2(heaviest) - np.log2(lightest):.0f}"
        )
        raise ValueError(
            f"The weights of the rows (sample_weight times class_weight) span "
            f"{span} times, more than float32, in which "
            f"{type(estimator).__name__} trains, can hold next to each other (about 1e57); "
            "give the lightest rows weight 0, or weigh them less unequally."
        )


#: Attribute of a parameter holding the unit of its values (1.0 if absent).
_UNIT = "_skproto_unit"


def in_units(parameter: torch.nn.Parameter, unit: float) -> torch.nn.Parameter:
    """Mark ``parameter`` as measured in ``unit``: :class:`Adam` steps it ``unit`` times as far.

    For a parameter in the units of the data (e.g. RBF components), with
    ``unit = data_scale(X)``, the optimiser moves it the same fraction of the
    data's spread whatever the units of ``X``.
    """
    setattr(parameter, _UNIT, float(unit))
    return parameter


class Adam:
    """Adam (Kingma & Ba), step for step equal to ``torch.optim.Adam``'s defaults.

    Written out because constructing the first ``torch.optim`` optimizer in a
    process imports ``torch._dynamo``, about two seconds that a first
    ``fit`` would pay for an update of a few tensors. As in torch, a
    parameter without a gradient is skipped and keeps its own step count;
    ``weight_decay`` adds ``weight_decay * p`` to the gradient (L2, not AdamW).
    A parameter marked by :func:`in_units` steps in its unit.
    """

    def __init__(
        self,
        parameters,
        lr: float,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.parameters = list(parameters)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.state = [None] * len(self.parameters)

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for i, p in enumerate(self.parameters):
            if p.grad is None:
                continue
            if self.state[i] is None:
                self.state[i] = [0, torch.zeros_like(p), torch.zeros_like(p)]
            st = self.state[i]
            st[0] += 1
            step, m, v = st
            unit = getattr(p, _UNIT, 1.0)
            g = p.grad
            if unit != 1.0:
                # the moments are those of the unitless gradient (``unit`` times p's):
                # a gradient in a parameter of unit u is 1/u of the unitless one, so an
                # absolute eps outweighed it on data of large units (X * 2**30 trained
                # differently from X), and its square underflowed float32 to 0 for
                # large units (the mixture head's bias at temperature=1e30, ~1e-31:
                # v = 0 against eps / u = 1e-38 stepped the logits ~1e4 a step)
                g = g * unit
            if self.weight_decay:  # (a decay of p in its unit: weight_decay * p / unit**2)
                g = g.add(p if unit == 1.0 else p / unit, alpha=self.weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g.conj(), value=1 - beta2)
            bias1 = 1 - beta1**step
            bias2_sqrt = (1 - beta2**step) ** 0.5
            denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
            value = -self.lr * unit / bias1
            if abs(value) <= torch.finfo(p.dtype).max:
                p.addcdiv_(m, denom, value=value)
            else:  # (torch refuses such a scalar with a RuntimeError: the step overflows,
                # and the training loop reports the non-finite parameters as divergence)
                p.add_(m / denom * value)


def weighted_accuracy(hit: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean of ``hit`` weighted by ``w`` (plain mean without usable weights; 0 if empty)."""
    if w is None or not np.sum(w) > 0:
        return float(np.mean(hit)) if len(hit) else 0.0
    return float(np.average(hit, weights=w))


def _targets(targets: np.ndarray, device: torch.device) -> torch.Tensor:
    if targets.ndim == 1:
        return torch.as_tensor(targets, dtype=torch.long, device=device)
    return to_tensor(targets, device)
