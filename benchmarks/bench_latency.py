"""Single-row prediction latency of the three estimators, side by side in one run.

Run from the repository root::

    python benchmarks/bench_latency.py               # CLINC150 (digits if the file is absent)
    python benchmarks/bench_latency.py --threads 2   # torch / BLAS threads (default 1)
    python benchmarks/bench_latency.py --quick       # fewer timed calls

It fits ``NearestMeanClassifier()`` (defaults), ``ProtoClassifier`` and
``RBFPrototypeClassifier`` on the training split (CLINC150's frozen MiniLM
embeddings; scikit-learn's digits, with a message, if the file is missing),
with a short training (``max_epochs=5``, ``random_state=0``): only prediction
is timed, and its cost depends on the number of prototypes and the head, not
on how well they were trained. The torch estimators run at their defaults
(``ProtoClassifier``: 5 prototypes per class, linear map, mixture head;
``RBFPrototypeClassifier(loss="robust")``: nearest-prototype head, 3 per
class).

For each estimator, ``predict``, ``predict_proba`` and ``decision_function``
are timed

* on ONE row: ``--calls`` calls (default 2,000) after ``--warmup`` untimed
  calls, each on a ``(1, n_features)`` slice of the test set, the rows cycling
  through it; each call timed on its own; median and 90th percentile. The
  three estimators take turns in blocks of 50 calls on the same rows, so that
  load from other processes falls on all of them alike;
* on the full test set: best of ``--repeat`` calls.

Target: each torch estimator's single-row ``predict`` median within 2x of
NearestMeanClassifier's. Prints markdown tables (progress on stderr) and
writes ``latency.md`` and ``latency.json`` to ``--out-dir`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import gc
import sys
import time
import warnings

import numpy as np

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier

from _harness.data import add_threads_and_note, benchmark_parser, load_dataset
from _harness.env import (
    finish_run,
    header_lines,
    machine_info,
    section_loads,
    set_threads,
    skproto_n_jobs,
    torch_run_record,
)
from _harness.report import fmt_params, log, md_table, target_row, targets_table
from _harness.selection import accuracy
from _harness.timing import best_time, call_latency, timed, with_load

METHODS = ("predict", "predict_proba", "decision_function")
REFERENCE = "NearestMeanClassifier"
TRAINING = {"max_epochs": 5, "random_state": 0}  # short: only prediction is timed
PROTO_PARAMS = dict(TRAINING)  # the defaults: 5 prototypes per class, mixture head
RBF_COMPONENTS_PER_CLASS = 3
RBF_PARAMS = {"loss": "robust", **TRAINING}  # its default head: nearest, 3 per class

CALLS = {"full": 2000, "quick": 200}
WARMUP = {"full": 200, "quick": 20}
REPEAT = {"full": 5, "quick": 2}
BLOCK = 50  # single-row calls per turn: the estimators alternate in blocks of this size

TARGET_RATIO = 2.0  # single-row predict median / NearestMeanClassifier's


def estimators(n_classes: int) -> dict:
    """name -> (unfitted estimator, the parameters given to it)."""
    rbf = {"n_components": RBF_COMPONENTS_PER_CLASS * n_classes, **RBF_PARAMS}
    return {
        REFERENCE: (NearestMeanClassifier(), {}),
        "ProtoClassifier": (ProtoClassifier(**PROTO_PARAMS), PROTO_PARAMS),
        "RBFPrototypeClassifier": (RBFPrototypeClassifier(**rbf), rbf),
    }


def section_latency(d: dict, *, n_calls: int, warmup: int, repeat: int) -> dict:
    log(
        f"latency: single-row calls x{n_calls} (after {warmup} warm-up calls) and the full "
        f"test set ({len(d['X_test'])} rows, best of {repeat})"
    )
    X_test = d["X_test"]
    rows = [X_test[i : i + 1] for i in range(len(X_test))]  # (1, n_features) views
    n_classes = len(np.unique(d["y_train"]))
    out, models = {}, {}
    for name, (est, params) in estimators(n_classes).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 5 epochs: convergence warnings expected
            model, t_fit = timed(est.fit, d["X_train"], d["y_train"])
        models[name] = model
        out[name] = {
            "params": params,
            "fit_s": t_fit,
            "n_prototypes": int(len(model.prototypes_)),
            "test_accuracy": accuracy(model, X_test, d["y_test"]),
            "single_row": {},
            "full_test": {},
        }
        log(
            f"{name}: fit {t_fit:.1f}s, {out[name]['n_prototypes']} prototypes, "
            f"test acc {out[name]['test_accuracy']:.4f}"
        )
    for method in METHODS:
        gc.collect()
        # the estimators take turns (blocks of calls), so load bursts hit all alike
        fns = {name: getattr(model, method) for name, model in models.items()}
        for name, stats in call_latency(fns, rows, n_calls, warmup, BLOCK).items():
            _, best = best_time(lambda fn=fns[name]: fn(X_test), repeat)
            out[name]["single_row"][method] = stats
            out[name]["full_test"][method] = {"best_s": best, "per_row_s": best / len(X_test)}
            log(
                f"  {name}.{method}: one row median {1e6 * stats['median_s']:.0f} us, "
                f"p90 {1e6 * stats['p90_s']:.0f} us; full test set {1e3 * best:.1f} ms"
            )
    ref = out[REFERENCE]["single_row"]
    ratios = {
        name: {m: rec["single_row"][m]["median_s"] / ref[m]["median_s"] for m in METHODS}
        for name, rec in out.items()
        if name != REFERENCE
    }
    return {
        "estimators": out,
        "ratios_to_reference": ratios,
        "reference": REFERENCE,
        "n_calls": n_calls,
        "warmup": warmup,
        "block": BLOCK,
        "repeat": repeat,
        "n_test": len(X_test),
        "n_train": len(d["X_train"]),
        "n_features": int(X_test.shape[1]),
        "n_classes": n_classes,
        "dtype": str(X_test.dtype),
    }


def evaluate_targets(res: dict) -> list[dict]:
    lat = res["latency"]
    ref = lat["estimators"][REFERENCE]["single_row"]["predict"]["median_s"]
    out = []
    for name, r in lat["ratios_to_reference"].items():
        med = lat["estimators"][name]["single_row"]["predict"]["median_s"]
        out.append(
            target_row(
                f"{name}: single-row predict median within {TARGET_RATIO:g}x of "
                f"{REFERENCE} ({res['dataset']})",
                f"{1e6 * med:.0f} us / {1e6 * ref:.0f} us = {r['predict']:.2f}x",
                r["predict"] <= TARGET_RATIO,
            )
        )
    return out


def _us(seconds: float) -> str:
    return f"{1e6 * seconds:.0f}"


def render(res: dict) -> str:
    out = header_lines(
        res,
        "# Single-row prediction latency",
        "fewer timed calls",
        section_loads(res, ("latency",)),
    )
    lat = res["latency"]
    ests = lat["estimators"]
    out += [
        f"## {res['dataset']}",
        "",
        f"{lat['n_train']:,} training rows, {lat['n_test']:,} test rows, {lat['n_features']} "
        f"features ({lat['dtype']}), {lat['n_classes']} classes; torch intra-op threads: "
        f"{res['torch_num_threads']}. Fitted with a short training (only prediction is "
        "timed); test accuracy shown as a sanity check only.",
        "",
    ]
    if res.get("fallback"):
        out += [f"Note: {res['fallback']}", ""]
    out += [
        md_table(
            ["estimator", "params", "prototypes", "fit s", "test acc"],
            [
                [
                    name,
                    fmt_params(r["params"]),
                    str(r["n_prototypes"]),
                    f"{r['fit_s']:.1f}",
                    f"{r['test_accuracy']:.4f}",
                ]
                for name, r in ests.items()
            ],
            "llrrr",
        ),
        "",
        "### One row per call",
        "",
        f"{lat['n_calls']:,} calls per method after {lat['warmup']} untimed warm-up calls; "
        "each call gets one `(1, n_features)` test row, cycling through the test set, and "
        f"is timed on its own. The estimators take turns in blocks of {lat['block']} calls "
        "on the same rows, so that load from other processes falls on all of them alike. "
        f"Microseconds per call; ratio: median / {REFERENCE}'s median for the same method.",
        "",
    ]
    rows = []
    for name, r in ests.items():
        for m in METHODS:
            s = r["single_row"][m]
            ratio = lat["ratios_to_reference"].get(name, {}).get(m)
            rows.append(
                [
                    name,
                    m,
                    _us(s["median_s"]),
                    _us(s["p90_s"]),
                    _us(s["mean_s"]),
                    "1.00" if ratio is None else f"{ratio:.2f}",
                ]
            )
    out += [
        md_table(
            ["estimator", "method", "median us", "p90 us", "mean us", "ratio"], rows, "llrrrr"
        ),
        "",
        "### Full test set per call",
        "",
        f"Best of {lat['repeat']} calls on all {lat['n_test']:,} test rows.",
        "",
    ]
    rows = [
        [
            name,
            m,
            f"{1e3 * r['full_test'][m]['best_s']:.1f}",
            f"{1e6 * r['full_test'][m]['per_row_s']:.2f}",
        ]
        for name, r in ests.items()
        for m in METHODS
    ]
    out += [md_table(["estimator", "method", "ms", "us per row"], rows, "llrr"), ""]
    out += ["## Targets", "", targets_table(res["targets"]), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "latency")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {CALLS['quick']} timed single-row calls per method",
    )
    ap.add_argument(
        "--calls",
        type=int,
        default=None,
        help=f"timed single-row calls per method (default {CALLS['full']})",
    )
    ap.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"untimed single-row calls first (default {WARMUP['full']})",
    )
    add_threads_and_note(ap)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    threads = set_threads(args.threads)
    # skproto's torch estimators set their own threads (n_jobs, default 1)
    PROTO_PARAMS["n_jobs"] = RBF_PARAMS["n_jobs"] = skproto_n_jobs(args.threads)
    info = machine_info(with_torch=True)
    res = torch_run_record(args, threads, info)
    log(f"threads: {threads}")

    d = load_dataset("clinc150", args.data, announce_missing=False)
    res["dataset"] = "clinc150"
    if d is None:
        msg = f"CLINC150 file {args.data} not found: falling back to scikit-learn's digits"
        print(msg, file=sys.stderr, flush=True)
        print(msg)
        d = load_dataset("digits", args.data)
        res["dataset"] = "digits"
        res["fallback"] = msg

    res["latency"] = with_load(
        section_latency,
        d,
        n_calls=args.calls or CALLS[mode],
        warmup=WARMUP[mode] if args.warmup is None else args.warmup,
        repeat=REPEAT[mode],
    )
    res["targets"] = evaluate_targets(res)
    finish_run(res, info, t_start, render, args.out_dir, "latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
