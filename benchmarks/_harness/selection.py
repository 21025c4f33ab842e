"""Hyper-parameter choice on the validation split."""

from __future__ import annotations

import warnings

import numpy as np

from .report import fmt_params, log
from .timing import timed


def accuracy(model, X, y) -> float:
    """Share of ``model.predict(X)`` equal to ``y``."""
    return float(np.mean(model.predict(X) == y))


def log_loss_float64(y, P, classes) -> float:
    """scikit-learn's ``log_loss`` of the probabilities ``P`` in float64.

    Clipped at float64's eps: 36 nats for a row of probability 0 (on float32
    probabilities scikit-learn clips at float32's eps, 16 nats, and the skproto
    models, whose probabilities are float32 for float32 embeddings, read about
    0.001 lower). Float32 rows, which sum to one only to float32 precision, are
    renormalised in float64 first (scikit-learn warned about them); rows further
    from one than that are an error, not silenced.
    """
    from sklearn.metrics import log_loss

    P = np.asarray(P, dtype=np.float64)
    total = P.sum(axis=1, keepdims=True)
    if not np.allclose(total, 1.0, rtol=0.0, atol=1e-5):
        raise ValueError("The probabilities do not sum to one.")
    return float(log_loss(y, P / total, labels=classes))


def select_on_val(candidates, make, d, name: str):
    """Fit every candidate on train and score it on val.

    Returns ``((val accuracy, params, model, fit s) of the best candidate, grid)``;
    ties keep the earlier candidate.
    """
    grid, best = [], None
    for params in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            model, t_fit = timed(make(params).fit, d["X_train"], d["y_train"])
        acc = accuracy(model, d["X_val"], d["y_val"])
        grid.append({"params": params, "val_accuracy": acc, "fit_s": t_fit})
        log(f"  {name} {fmt_params(params)}: val acc {acc:.4f} (fit {t_fit:.2f}s)")
        if best is None or acc > best[0]:  # ties keep the earlier (simpler) candidate
            best = (acc, params, model, t_fit)
    return best, grid
