"""Few rows per class: every estimator at its defaults against the references.

Run from the repository root::

    python benchmarks/bench_fewshot.py --threads 2

Two settings, each with 1, 2, 4 and 8 training rows per class:

- CLINC150 intents (frozen MiniLM embeddings): that many rows of each of the
  150 intents drawn from ``train`` (seed 0), scored on the whole ``test``
  split (skipped if the file is missing);
- 200 synthetic Gaussian classes in 64 dimensions (unit-variance centres,
  noise 1.2), scored on 10 fresh rows per class.

Test accuracy, log-loss and fit seconds of ``NearestMeanClassifier()``,
``ProtoClassifier()``, ``RBFPrototypeClassifier()`` and
``LogisticRegression()`` (scikit-learn's default C: with one row per class
nothing is left to tune on). Writes ``fewshot.md`` and ``fewshot.json`` to
``--out-dir``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier

from _harness.data import load_clinc
from _harness.env import finish_run, short_header, start_run
from _harness.report import log, md_table
from _harness.selection import log_loss_float64

SHOTS = [1, 2, 4, 8]


def _models(n_jobs: int) -> dict:
    return {
        "NearestMeanClassifier()": lambda: NearestMeanClassifier(),
        "ProtoClassifier()": lambda: ProtoClassifier(random_state=0, n_jobs=n_jobs),
        "RBFPrototypeClassifier()": lambda: RBFPrototypeClassifier(random_state=0, n_jobs=n_jobs),
        "LogisticRegression()": lambda: LogisticRegression(max_iter=2000),
    }


def _synthetic(shots: int) -> tuple:
    rng = np.random.RandomState(0)
    centers = rng.normal(size=(200, 64))
    y = np.repeat(np.arange(200), shots)
    X = centers[y] + 1.2 * rng.normal(size=(len(y), 64))
    y_test = np.repeat(np.arange(200), 10)
    X_test = centers[y_test] + 1.2 * rng.normal(size=(len(y_test), 64))
    return X, y, X_test, y_test


def _clinc_shots(d: dict, shots: int) -> tuple:
    rng = np.random.RandomState(0)
    y = d["y_train"]
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)]
    )
    return d["X_train"][rows], y[rows], d["X_test"], d["y_test"]


def run(name: str, data, n_jobs: int) -> list:
    out = []
    for shots in SHOTS:
        X, y, X_test, y_test = data(shots)
        for model_name, make in _models(n_jobs).items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t = time.perf_counter()
                model = make().fit(X, y)
                fit_s = time.perf_counter() - t
            P = model.predict_proba(X_test)
            row = {
                "data": name,
                "shots": shots,
                "model": model_name,
                "accuracy": float(model.score(X_test, y_test)),
                "log_loss": log_loss_float64(y_test, P, model.classes_),
                "fit_s": fit_s,
                "warnings": sorted({type(w.message).__name__ for w in caught}),
            }
            log(f"  {name} {shots}-shot {model_name}: {row}")
            out.append(row)
    return out


def render(res: dict) -> str:
    lines = short_header(res, "# Few rows per class, every estimator at its defaults") + [
        "- CLINC150: that many training rows per intent (seed 0), the whole test split; "
        "synthetic: 200 Gaussian classes in 64-d, 10 test rows per class",
        "",
    ]
    rows = [
        [
            r["data"],
            r["shots"],
            r["model"],
            f"{r['accuracy']:.3f}",
            f"{r['log_loss']:.3f}",
            f"{r['fit_s']:.1f}",
            ", ".join(r["warnings"]) or "none",
        ]
        for r in res["rows"]
    ]
    headers = ["data", "rows per class", "model", "test acc", "log-loss", "fit s", "warnings"]
    lines.append(md_table(headers, rows))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args, res, n_jobs, t_start = start_run(__doc__, "fewshot", argv)
    res["rows"] = []
    d = load_clinc(args.data)
    if d is not None:
        res["rows"] += run("CLINC150", lambda k: _clinc_shots(d, k), n_jobs)
    res["rows"] += run("synthetic", _synthetic, n_jobs)
    finish_run(res, res["machine"], t_start, render, args.out_dir, "fewshot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
