"""The one torch training loop shared by skproto's learned estimators.

Mini-batch Adam over numpy data, with deterministic shuffling, optional early
stopping on a held-out split (restoring the best parameters), per-epoch
history and progress printing. The estimator supplies the module, the loss and
the score; the loop knows nothing about prototypes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight

__all__ = [
    "TorchTrainingMixin",
    "TrainingConfig",
    "resolve_device",
    "to_tensor",
    "train",
    "weighted_accuracy",
]


def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available) as a torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch finds no CUDA device.")
    return torch.device(device)


def to_tensor(a: np.ndarray, device: torch.device, dtype=torch.float32) -> torch.Tensor:
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
    is recorded each epoch on the training data and, with early stopping, on
    ``X_val``. With ``config.early_stopping`` training stops after
    ``n_iter_no_change`` epochs in which the loss on ``X_val`` did not drop
    by at least ``tol``, and the parameters of the best epoch are restored;
    without it, the same rule applies to the training loss. Shuffling draws from
    ``rng``, so a fixed seed gives the same result on the same device.

    ``on_epoch_end(epoch)`` (1-based, counting this call's epochs) runs after
    each epoch's updates, before it is scored.

    Returns the ``history`` dict, extended with this run's epochs.
    """
    history = {} if history is None else history
    for key in ("loss", "train_score", "val_loss", "val_score", "seconds"):
        history.setdefault(key, [])
    dev = config.device
    Xt, Tt, Wt = to_tensor(X, dev), _targets(targets, dev), to_tensor(weights, dev)
    if config.early_stopping:
        if weights_val is None:
            weights_val = np.ones(len(X_val), dtype=np.float32)
        Xv, Tv, Wv = to_tensor(X_val, dev), _targets(targets_val, dev), to_tensor(weights_val, dev)
    optimizer = torch.optim.Adam(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    n = len(X)
    best, best_state, stale = -np.inf, None, 0
    for epoch in range(config.max_epochs):
        start = time.perf_counter()
        module.train()
        order = torch.as_tensor(rng.permutation(n), device=dev)
        total = 0.0
        for s in range(0, n, config.batch_size):
            idx = order[s : s + config.batch_size]
            optimizer.zero_grad()
            loss = batch_loss(Xt[idx], Tt[idx], Wt[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        module.eval()
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1)
        epoch_loss = total / n
        history["loss"].append(epoch_loss)
        train_score = score(X, targets, weights) if score is not None else np.nan
        history["train_score"].append(train_score)
        if config.early_stopping:
            with torch.no_grad():
                val_loss = float(batch_loss(Xv, Tv, Wv))
            history["val_loss"].append(val_loss)
            if score is not None:
                history["val_score"].append(score(X_val, targets_val, weights_val))
            current = -val_loss
        else:
            current = -epoch_loss
        history["seconds"].append(time.perf_counter() - start)
        if config.verbose:
            msg = f"[{config.name}] epoch {len(history['loss']):4d}  loss {epoch_loss:.5f}"
            if score is not None:
                msg += f"  train {train_score:.4f}"
            if config.early_stopping:
                msg += f"  val loss {history['val_loss'][-1]:.5f}"
                if score is not None:
                    msg += f"  val {history['val_score'][-1]:.4f}"
            print(msg + f"  ({history['seconds'][-1]:.2f}s)", flush=True)
        if current > best + config.tol:
            best, stale = current, 0
            if config.early_stopping:
                best_state = copy.deepcopy(module.state_dict())
        else:
            stale += 1
            if stale >= config.n_iter_no_change:
                if config.verbose:
                    print(f"[{config.name}] no improvement in {stale} epochs: stopping", flush=True)
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    return history


def weighted_accuracy(hit: np.ndarray, w: np.ndarray | None = None) -> float:
    """Mean of ``hit`` weighted by ``w`` (plain mean without usable weights; 0 if empty)."""
    if w is None or not np.sum(w) > 0:
        return float(np.mean(hit)) if len(hit) else 0.0
    return float(np.average(hit, weights=w))


def _targets(targets: np.ndarray, device: torch.device) -> torch.Tensor:
    if targets.ndim == 1:
        return torch.as_tensor(targets, dtype=torch.long, device=device)
    return to_tensor(targets, device)


class TorchTrainingMixin:
    """Plumbing shared by skproto's torch-trained estimators.

    Reads the estimator's own parameters (``max_epochs``-style settings,
    ``class_weight``, ``early_stopping``, ``validation_fraction``, ``device``,
    ...), so every estimator trains, weights and splits the same way.
    """

    #: parameter constraints of the training settings every torch estimator takes
    _training_constraints: dict = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _training_config(self, max_epochs: int, name: str) -> TrainingConfig:
        """Settings of one :func:`train` call; early stopping only for ``name="fit"``."""
        return TrainingConfig(
            max_epochs=max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            early_stopping=self.early_stopping and name == "fit",
            verbose=self.verbose,
            device=resolve_device(self.device),
            name=name,
        )

    def _training_weights(self, T, sample_weight, X, multilabel: bool = False) -> np.ndarray:
        """Sample weights times class weights (single-label), float32."""
        w = self._validate_sample_weight(sample_weight, X)
        if self.class_weight is not None and not multilabel:
            w = w * compute_sample_weight(self.class_weight, T)
        return w.astype(np.float32)

    def _early_stopping_split(self, T, rng, multilabel: bool = False):
        """``(fit_rows, val_rows)``; ``val_rows`` is None without early stopping.

        Stratified by class when every class can be (else a plain random split).
        """
        fit_rows = np.arange(len(T))
        if not self.early_stopping:
            return fit_rows, None
        n_val = int(np.ceil(self.validation_fraction * len(T)))
        n_classes = len(self.classes_)
        stratify = None if multilabel else T
        if stratify is not None and (
            n_val < n_classes or len(T) - n_val < n_classes or np.bincount(T).min() < 2
        ):
            stratify = None  # too little data to stratify
        return train_test_split(
            fit_rows,
            test_size=n_val,
            stratify=stratify,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
