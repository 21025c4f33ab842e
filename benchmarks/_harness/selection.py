"""Hyper-parameter choice on the validation split."""

from __future__ import annotations

import warnings

import numpy as np

from .report import fmt_params, log
from .timing import timed


def accuracy(model, X, y) -> float:
    """Share of ``model.predict(X)`` equal to ``y``."""
    return float(np.mean(model.predict(X) == y))


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
