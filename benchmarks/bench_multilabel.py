"""Multi-label ProtoClassifier at its defaults against one logistic regression per label.

Run from the repository root::

    python benchmarks/bench_multilabel.py --threads 2

Three ``make_multilabel_classification`` sets (a quarter held out, then
standardised by the training rows' mean and scale; fixed seeds): per-label
test accuracy, subset accuracy, mean binary cross-entropy and fit seconds
of ``ProtoClassifier()``, of ``ProtoClassifier(project=False)`` (prototypes
not tied to real rows: what the cases cost) and of
``OneVsRestClassifier(LogisticRegression())``. Writes ``multilabel.md`` and
``multilabel.json`` to ``--out-dir``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler

from skproto import ProtoClassifier

from _harness.env import finish_run, short_header, start_run
from _harness.report import log, md_table

#: (labels, features, rows, seed) of the generated sets
SETS = [(4, 10, 1000, 0), (8, 30, 2000, 1), (5, 20, 1500, 2)]


def _bce(Y: np.ndarray, P: np.ndarray) -> float:
    P = np.clip(P, 1e-7, 1 - 1e-7)
    return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))


def _models(n_jobs: int) -> dict:
    return {
        "ProtoClassifier()": lambda: ProtoClassifier(random_state=0, n_jobs=n_jobs),
        "ProtoClassifier(project=False)": lambda: ProtoClassifier(
            project=False, random_state=0, n_jobs=n_jobs
        ),
        "OneVsRest(LogisticRegression())": lambda: OneVsRestClassifier(LogisticRegression()),
    }


def run_set(n_labels: int, n_features: int, n_rows: int, seed: int, n_jobs: int) -> dict:
    X, Y = make_multilabel_classification(
        n_samples=n_rows, n_features=n_features, n_classes=n_labels, random_state=seed
    )
    X, X_test, Y, Y_test = train_test_split(X, Y, random_state=0)
    # standardised by the training rows' statistics only (the test rows stay unseen)
    scaler = StandardScaler().fit(X)
    X, X_test = scaler.transform(X), scaler.transform(X_test)
    out = {"labels": n_labels, "features": n_features, "rows": n_rows, "seed": seed}
    for name, make in _models(n_jobs).items():
        t = time.perf_counter()
        model = make().fit(X, Y)
        fit_s = time.perf_counter() - t
        pred = model.predict(X_test)
        out[name] = {
            "per_label_accuracy": float(np.mean(pred == Y_test)),
            "subset_accuracy": float(np.mean((pred == Y_test).all(axis=1))),
            "bce": _bce(Y_test, model.predict_proba(X_test)),
            "fit_s": fit_s,
        }
        log(f"  {n_labels} labels: {name} {out[name]}")
    return out


def render(res: dict) -> str:
    lines = short_header(res, "# Multi-label: ProtoClassifier at its defaults") + [
        "- `make_multilabel_classification`, a quarter held out, standardised by the training "
        "rows' statistics; test numbers",
        "",
    ]
    rows = []
    for s in res["sets"]:
        for name in _models(1):
            r = s[name]
            rows.append(
                [
                    f"{s['labels']} labels, {s['features']} features, {s['rows']:,} rows",
                    name,
                    f"{r['per_label_accuracy']:.3f}",
                    f"{r['subset_accuracy']:.3f}",
                    f"{r['bce']:.3f}",
                    f"{r['fit_s']:.1f}",
                ]
            )
    headers = ["data", "model", "per-label acc", "subset acc", "cross-entropy", "fit s"]
    lines.append(md_table(headers, rows))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args, res, n_jobs, t_start = start_run(__doc__, "multilabel", argv)
    res["sets"] = [run_set(*s, n_jobs=n_jobs) for s in SETS]
    finish_run(res, res["machine"], t_start, render, args.out_dir, "multilabel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
