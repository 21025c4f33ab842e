"""Benchmark of :class:`skproto.ProtoClassifier` (issue 3).

Run from the repository root::

    python benchmarks/bench_proto.py --threads 2   # full: 33 + 3 + 12 ProtoClassifier fits, ~27 min
    python benchmarks/bench_proto.py --quick       # one configuration per kind, 5 epochs (~2 min)
    python benchmarks/bench_proto.py --data /path/to/minilm_l6_v2.npz

It prints markdown tables to stdout (progress goes to stderr) and writes them
to ``benchmarks/results/proto.md``, with every raw number in
``benchmarks/results/proto.json`` (``--out-dir`` changes the folder).

Sections
--------
1. ProtoClassifier on CLINC150 (frozen all-MiniLM-L6-v2 embeddings, 150
   classes) for ``prototype_kind`` trivial / support / both. Hyper-parameters
   are chosen on ``val`` only (accuracy after projection) from a small grid;
   ``test`` is used once, to report. Test accuracy is given after projection
   (the fitted model) and before it: a second model with ``project=False``
   and the same settings and seed, i.e. the un-projected model (its training
   draws the same random numbers, so it is the first model's state right
   before the push; the report checks that the two agree on the accuracy
   before projection recorded in ``history_``).
2. Side by side, in the same run: LogisticRegression and LinearSVC (C tuned
   on val), KNeighborsClassifier (k tuned on val, cosine) and skproto's
   NearestMeanClassifier (metric tuned on val).
3. GLVQ references: ``sklvq`` and ``sklearn-lvq``, run by
   ``benchmarks/lvq_reference.py`` in a *separate* virtual environment
   (``--lvq-python``, default ``benchmarks/.lvq-venv/bin/python``, a folder
   git ignores; ``--make-lvq-venv`` creates it there with pip, pinned to this
   environment's scikit-learn and NumPy). Each is tried as installed (the
   error is recorded) and, if that fails, with the minimal in-process
   compatibility shims listed in the report.
4. Targets: ProtoClassifier after projection with <= 5 prototypes per class
   >= the best tuned linear probe (test accuracy, same run); fit < 60 s;
   projection costs < 1 point of test accuracy.

Threads: ``--threads N`` (default 1) caps torch's intra-op threads and the
BLAS/OpenMP pools of every model (threadpoolctl) and of the LVQ subprocess.
On a shared 2-core machine a second busy process makes torch's 2-thread
OpenMP loops wait on each other (one epoch of ProtoClassifier took 46 s with 2
threads against 1 s with 1 thread while another process used one core; on the
idle machine 2 threads took 0.64 s against 0.95 s), so the default measures
with one thread; ``--threads 0`` keeps the libraries' defaults. The 1-min
load average before/after each section is recorded.

If the CLINC150 file is missing, the benchmark prints a message and exits
with status 0 without writing results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from skproto import NearestMeanClassifier, ProtoClassifier
from skproto.proto import PROTOPNET

from _harness.data import add_threads_and_note, benchmark_parser, load_clinc
from _harness.env import (
    finish_run,
    header_lines,
    machine_info,
    section_loads,
    set_threads,
    skproto_n_jobs,
)
from _harness.paths import BENCH_DIR
from _harness.report import (
    fmt_params,
    log,
    md_table,
    target_row,
    targets_table,
)
from _harness.selection import accuracy, select_on_val
from _harness.timing import predict_time, timed, with_load

# ---------------------------------------------------------------- grids
PROTO_KINDS = ["trivial", "support", "both"]
PROTO_FIXED = {
    # ProtoPNet's objective and dense last layer: the configuration this
    # benchmark studies (bench_defaults.py measures the mixture-head default);
    # the grid sets similarity, temperature and projection
    **{k: v for k, v in PROTOPNET.items() if k not in ("similarity", "temperature", "projection")},
    "early_stopping": True,
    "n_iter_no_change": 5,
    "learning_rate": 3e-3,
    "batch_size": 512,
    "random_state": 0,
}
PROTO_MAX_EPOCHS = {"full": 20, "quick": 5}
# after selection: the chosen configuration refitted with these other seeds,
# to show how much one test accuracy moves with the seed alone
PROTO_EXTRA_SEEDS = {"full": [1, 2, 3, 4], "quick": []}
PROTO_SIMILARITIES = [{"similarity": "cosine", "temperature": 0.1}, {"similarity": "log"}]
# prototypes per class and branch, by grid level; "both" has two branches, so
# its levels keep the total (2k) within the target's 5 per class
PROTO_N = {"trivial": [3, 5], "support": [3, 5], "both": [1, 2]}
# grid: without a head, the cosine similarity with ProtoPNet's wrong-class L1
# (1e-4) and with a 10x weaker one (more accurate, less own-class evidence);
# the weak-L1 models also tune alpha, the last-layer refit's regulariser
# (the analogue of the C tuned for the linear probes; 1/alpha = C); then
# ProtoPNet's log similarity and a linear head. A level indexes PROTO_N.
PROTO_L1 = [1e-4, 1e-5]  # ProtoPNet's default first
# ProtoPNet's L1 is on W at T = 1; skproto's is on W / T (the logits' units), so the
# cosine configurations at T = 0.1 pass l1 * 0.1 for the same penalty (the same
# objective this grid ran until 2026-12-07, when the L1 was on W)
COSINE_T = PROTO_SIMILARITIES[0]["temperature"]
PROTO_ALPHA = [0.1, 0.03, 0.3]  # the default first
PROTO_GRID = (
    [
        {
            **PROTO_SIMILARITIES[0],
            "level": lv,
            # (rounded: 1e-5 * 0.1 is 1.0000000000000002e-06 in binary, which the
            # tables printed)
            "l1_weight": float(f"{l1 * COSINE_T:.12g}"),
            "alpha": a,
            "projection": None,
        }
        for lv in (0, 1)
        for l1 in PROTO_L1
        for a in (PROTO_ALPHA if l1 < 1e-4 else PROTO_ALPHA[:1])
    ]
    + [
        {
            **PROTO_SIMILARITIES[1],
            "level": lv,
            "l1_weight": PROTO_L1[0],
            "alpha": PROTO_ALPHA[0],
            "projection": None,
        }
        for lv in (0, 1)
    ]
    + [
        {
            **PROTO_SIMILARITIES[0],
            "level": 1,
            "l1_weight": float(f"{PROTO_L1[0] * COSINE_T:.12g}"),
            "alpha": PROTO_ALPHA[0],
            "projection": "linear",
        }
    ]
)
# --quick: one configuration per kind
PROTO_QUICK = [
    {"similarity": "cosine", "temperature": 0.1, "level": 0, "l1_weight": 1e-5, "projection": None}
]

LINEAR_C = {"full": [0.1, 1.0, 10.0, 100.0], "quick": [1.0]}
LOGREG_MAX_ITER = 2000
SVC_MAX_ITER = 2000
KNN_K = {"full": [1, 5, 10, 20], "quick": [10]}
NMC_METRICS = ["euclidean", "cosine", "mahalanobis"]  # other parameters: defaults

# the throwaway venv of lvq_reference.py: inside this checkout, ignored by git
# (benchmarks/.gitignore); --lvq-python points elsewhere
DEFAULT_LVQ_PYTHON = BENCH_DIR / ".lvq-venv" / "bin" / "python"
LVQ_PACKAGES = ["sklvq", "sklearn-lvq"]

# ---------------------------------------------------------------- targets
TARGET_MAX_PROTOS = 5
TARGET_FIT_S = 60.0
TARGET_PROJECTION_COST = 0.01  # before minus after, test accuracy (1 point)


def proto_grid(quick: bool) -> list[dict]:
    """Candidate configurations (shared by the kinds; ``level`` indexes PROTO_N), cheapest first."""
    return [dict(p) for p in (PROTO_QUICK if quick else PROTO_GRID)]


def proto_params(cfg: dict, kind: str) -> dict:
    """ProtoClassifier parameters of grid entry ``cfg`` for ``prototype_kind=kind``."""
    params = {k: v for k, v in cfg.items() if k != "level"}
    return {**params, "n_prototypes_per_class": PROTO_N[kind][cfg["level"]], "prototype_kind": kind}


def _seed_summary(r: dict) -> str:
    acc = list(r.get("seed_test_accuracy", {}).values())
    if len(acc) < 2:
        return "-"
    return (
        f"{np.mean(acc):.4f} ± {np.std(acc, ddof=1):.4f} "
        f"(n={len(acc)}, min {min(acc):.4f}, max {max(acc):.4f})"
    )


def own_evidence_share(model, X) -> float:
    """Mean share of the positive evidence for the predicted class from its own prototypes."""
    S = model.transform(X)
    W = model.last_layer_ / model.temperature_
    predicted = model.predict(X)
    pred = np.searchsorted(model.classes_, predicted)
    contrib = S * W[:, pred].T  # (n, K): each prototype's contribution to the predicted class
    pos = np.clip(contrib, 0, None)
    own = model.prototype_labels_[None, :] == predicted[:, None]
    total = pos.sum(1)
    return float(np.mean(np.where(total > 0, (pos * own).sum(1) / np.maximum(total, 1e-300), 1.0)))


def _short(params: dict) -> dict:
    """The parameters that vary in the grid, in a fixed order, for tables."""
    keys = (
        "similarity",
        "temperature",
        "n_prototypes_per_class",
        "l1_weight",
        "alpha",
        "projection",
    )
    return {k: params[k] for k in keys if k in params}


# ======================================================================
# 1. ProtoClassifier
# ======================================================================
def fit_proto(params: dict, d: dict):
    """Fit one ProtoClassifier on train; (model, record) with val accuracy and history."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, t_fit = timed(ProtoClassifier(**params).fit, d["X_train"], d["y_train"])
    h = model.history_
    rec = {
        "params": params,
        "val_accuracy": accuracy(model, d["X_val"], d["y_val"]),
        "val_own_evidence": own_evidence_share(model, d["X_val"]),
        "fit_s": t_fit,
        "epochs": int(model.n_iter_),
        "epoch_s_mean": float(np.mean(h["seconds"])) if h.get("seconds") else None,
        # accuracies recorded by fit: on its training rows and on the early-stopping split
        "es_split": {
            k: float(h[k])
            for k in (
                "accuracy_before_projection",
                "accuracy_after_projection",
                "val_accuracy_before_projection",
                "val_accuracy_after_projection",
            )
            if h.get(k) is not None
        },
        "final_loss": float(h["loss"][-1]) if h.get("loss") else None,
        "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught}),
    }
    return model, rec


def section_proto(d: dict, *, quick: bool, max_epochs: int, budget_s: float | None) -> dict:
    log("section 1: ProtoClassifier (selection on val, accuracy after projection)")
    fixed = {**PROTO_FIXED, "max_epochs": max_epochs}
    grid = proto_grid(quick)
    t0 = time.perf_counter()
    records = {k: [] for k in PROTO_KINDS}
    best = {}  # kind -> (val acc, model, record)
    skipped = []
    # configurations outer, kinds inner: a time budget cuts every kind at the same place
    for i, cfg in enumerate(grid):
        for kind in PROTO_KINDS:
            params = {**proto_params(cfg, kind), **fixed}
            if budget_s is not None and i > 0 and time.perf_counter() - t0 > budget_s:
                skipped.append(params)
                log(f"  {kind} {fmt_params(_short(params))}: skipped (time budget)")
                continue
            model, rec = fit_proto(params, d)
            records[kind].append(rec)
            es = rec["es_split"]
            log(
                f"  {kind} {fmt_params(_short(params))}: val acc {rec['val_accuracy']:.4f} "
                f"(es split before projection {es.get('val_accuracy_before_projection', 0):.4f}; "
                f"{rec['epochs']} epochs, "
                f"fit {rec['fit_s']:.1f}s)"
            )
            if kind not in best or rec["val_accuracy"] > best[kind][0]:  # ties keep the earlier
                best[kind] = (rec["val_accuracy"], model, rec)

    rows = []
    for kind in PROTO_KINDS:
        if kind not in best:
            continue
        val_acc, model, rec = best[kind]
        params = rec["params"]
        pred, t_pred = predict_time(model, d["X_test"])
        test_after = float(np.mean(pred == d["y_test"]))
        # the un-projected model: same settings and seed, project=False
        log(f"{kind}: chose {fmt_params(_short(params))}; fitting project=False ...")
        raw, raw_rec = fit_proto({**params, "project": False}, d)
        pred_raw, t_pred_raw = predict_time(raw, d["X_test"])
        test_before = float(np.mean(pred_raw == d["y_test"]))
        same_state = (
            raw_rec["epochs"] == rec["epochs"]
            and raw_rec["es_split"].get("val_accuracy_before_projection")
            == rec["es_split"].get("val_accuracy_before_projection")
            and raw_rec["es_split"].get("accuracy_before_projection")
            == rec["es_split"].get("accuracy_before_projection")
        )
        real_rows = None
        if params.get("projection") is None:
            idx = model.prototype_sample_indices_
            real_rows = bool(
                (idx >= 0).all()
                and np.array_equal(model.prototypes_, d["X_train"][idx].astype(np.float64))
            )
        row = {
            "kind": kind,
            "params": params,
            "shown_params": _short(params),
            "n_prototypes": int(len(model.prototype_labels_)),
            "val_accuracy_after": val_acc,
            "val_accuracy_before": raw_rec["val_accuracy"],
            "test_accuracy_after": test_after,
            "test_accuracy_before": test_before,
            "projection_cost": test_before - test_after,
            "fit_s": rec["fit_s"],
            "fit_s_unprojected": raw_rec["fit_s"],
            "predict_s": t_pred,
            "predict_s_unprojected": t_pred_raw,
            "epochs": rec["epochs"],
            "epoch_s_mean": rec["epoch_s_mean"],
            "es_split": rec["es_split"],
            "unprojected_same_state": same_state,
            "prototypes_are_training_rows": real_rows,
            "n_distinct_prototype_rows": int(len(np.unique(model.prototype_sample_indices_))),
            "own_evidence_share": own_evidence_share(model, d["X_test"]),
        }
        seeds = {params["random_state"]: test_after}
        for seed in PROTO_EXTRA_SEEDS["quick" if quick else "full"]:
            other, _ = fit_proto({**params, "random_state": seed}, d)
            seeds[seed] = accuracy(other, d["X_test"], d["y_test"])
            log(f"{kind}: seed {seed}: test acc after projection {seeds[seed]:.4f}")
        row["seed_test_accuracy"] = seeds
        rows.append(row)
        log(
            f"{kind}: test acc before/after projection {test_before:.4f}/{test_after:.4f} "
            f"(cost {100 * row['projection_cost']:.2f} pts), fit {rec['fit_s']:.1f}s, "
            f"same pre-projection state: {same_state}"
        )
    return {
        "rows": rows,
        "grid": records,
        "skipped": skipped,
        "fixed": fixed,
        "grid_size": len(grid),
    }


# ======================================================================
# 2. baselines
# ======================================================================
def section_baselines(d: dict, *, quick: bool) -> dict:
    log("section 2: baselines (selection on val)")
    mode = "quick" if quick else "full"
    rows, grids = [], {}

    def add(name, sel, shown, extra=None):
        (val_acc, params, model, t_fit), grid = sel
        grids[name] = grid
        pred, t_pred = predict_time(model, d["X_test"])
        acc = float(np.mean(pred == d["y_test"]))
        row = {
            "model": name,
            "params": params,
            "shown_params": {**params, **shown},
            "val_accuracy": val_acc,
            "test_accuracy": acc,
            "fit_s": t_fit,
            "predict_s": t_pred,
            "note": (extra(model) if extra else ""),
        }
        rows.append(row)
        log(f"{name}: chose {fmt_params(params)} -> test acc {acc:.4f}")

    add(
        "LogisticRegression",
        select_on_val(
            [{"C": c} for c in LINEAR_C[mode]],
            lambda p: LogisticRegression(max_iter=LOGREG_MAX_ITER, **p),
            d,
            "LogisticRegression",
        ),
        {"max_iter": LOGREG_MAX_ITER},
        lambda m: (
            "did not converge (n_iter_ = max_iter)" if np.max(m.n_iter_) >= LOGREG_MAX_ITER else ""
        ),
    )
    add(
        "LinearSVC",
        select_on_val(
            [{"C": c} for c in LINEAR_C[mode]],
            lambda p: LinearSVC(max_iter=SVC_MAX_ITER, **p),
            d,
            "LinearSVC",
        ),
        {"max_iter": SVC_MAX_ITER},
        lambda m: (
            "did not converge (n_iter_ = max_iter)" if np.max(m.n_iter_) >= SVC_MAX_ITER else ""
        ),
    )
    add(
        "KNeighborsClassifier",
        select_on_val(
            [{"n_neighbors": k} for k in KNN_K[mode]],
            lambda p: KNeighborsClassifier(metric="cosine", algorithm="brute", **p),
            d,
            "KNeighborsClassifier",
        ),
        {"metric": "cosine"},
    )
    add(
        "NearestMeanClassifier",
        select_on_val(
            [{"metric": m} for m in NMC_METRICS],
            lambda p: NearestMeanClassifier(**p),
            d,
            "NearestMeanClassifier",
        ),
        {},
        lambda m: "other parameters at their defaults (mahalanobis: shared, oas)",
    )
    return {"rows": rows, "grids": grids}


# ======================================================================
# 3. GLVQ references (separate virtual environment)
# ======================================================================
def _versions_here() -> dict:
    return {"numpy": np.__version__, "scikit-learn": sklearn.__version__}


def make_lvq_venv(python: Path) -> dict:
    """Create the throwaway venv with sklvq and sklearn-lvq (pinned to our sklearn/numpy)."""
    venv = python.parent.parent
    pins = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]
    cmds = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", *pins, *LVQ_PACKAGES],
    ]
    out = {"venv": str(venv), "commands": [" ".join(c) for c in cmds], "available": {}}
    for c in cmds:
        log("  $ " + " ".join(c))
        p = subprocess.run(c, capture_output=True, text=True)
        out.setdefault("returncodes", []).append(p.returncode)
        if p.returncode != 0:
            out["pip_tail"] = (p.stdout + p.stderr)[-2000:]
            return out
    for pkg in LVQ_PACKAGES:  # which releases the index offers (one look-up each)
        p = subprocess.run(
            [str(python), "-m", "pip", "index", "versions", pkg], capture_output=True, text=True
        )
        line = next((ln for ln in p.stdout.splitlines() if "Available versions" in ln), "")
        out["available"][pkg] = line.split(":", 1)[-1].strip() or (p.stderr.strip()[-200:])
    return out


def section_lvq(d_path: Path, *, python: Path, make: bool, quick: bool, threads: int) -> dict:
    log(f"section 3: GLVQ references via {python}")
    res = {"python_path": str(python), "here": _versions_here()}
    if not python.exists():
        if not make:
            res["skipped"] = (
                f"{python} not found; create it with --make-lvq-venv, or: "
                f"python3 -m venv {python.parent.parent} && "
                f"{python.parent}/pip install scikit-learn numpy " + " ".join(LVQ_PACKAGES)
            )
            log(res["skipped"])
            return res
        res["venv"] = make_lvq_venv(python)
        if not python.exists() or any(res["venv"].get("returncodes", [1])):
            res["skipped"] = "creating the venv failed (see venv.pip_tail)"
            return res
    env = dict(os.environ)
    if threads > 0:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lvq.json"
        cmd = [
            str(python),
            str(BENCH_DIR / "lvq_reference.py"),
            "--data",
            str(d_path),
            "--out",
            str(out),
        ] + (["--quick"] if quick else [])
        p, secs = timed(
            subprocess.run, cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env
        )
        res["wall_s"] = secs
        if p.returncode != 0 or not out.exists():
            res["skipped"] = f"lvq_reference.py failed with status {p.returncode}"
            return res
        res.update(json.loads(out.read_text()))
    return res


# ======================================================================
# targets and report
# ======================================================================
def best_linear(res: dict) -> dict | None:
    base = res.get("baselines")
    if not base:
        return None
    lin = [r for r in base["rows"] if r["model"] in ("LogisticRegression", "LinearSVC")]
    # the bar is the stricter of the two val-tuned probes (the higher test accuracy):
    # a reference picked for its height, no skproto model chosen on test (picked on
    # val, LinearSVC, it would be 0.9527 instead of 0.9547 and three targets pass)
    return max(lin, key=lambda r: r["test_accuracy"]) if lin else None


def evaluate_targets(res: dict) -> list[dict]:
    out = []

    def add(target, measured, ok):
        out.append(target_row(target, measured, ok))

    proto = res.get("proto")
    lin = best_linear(res)
    if not proto or not proto["rows"]:
        add("ProtoClassifier targets", "no CLINC150 data", None)
        return out
    thr = res["threads"]["torch_num_threads"]
    chosen = max(proto["rows"], key=lambda r: r["val_accuracy_after"])  # first on ties
    for r in proto["rows"] + [dict(chosen, kind=f"val-selected kind ({chosen['kind']})")]:
        # prototypes per class: "both" has two branches of n_prototypes_per_class each
        k = r["params"]["n_prototypes_per_class"] * (
            2 if r["params"]["prototype_kind"] == "both" else 1
        )
        ok = (
            (r["test_accuracy_after"] >= lin["test_accuracy"] - 1e-12 and k <= TARGET_MAX_PROTOS)
            if lin
            else None
        )
        add(
            f"{r['kind']}: test acc after projection (<= {TARGET_MAX_PROTOS} prototypes/class) "
            ">= best tuned linear probe",
            f"{r['test_accuracy_after']:.4f} ({k}/class) vs {lin['model']} "
            f"{lin['test_accuracy']:.4f}"
            if lin
            else "no baseline",
            ok,
        )
    for r in proto["rows"]:
        add(
            f"{r['kind']}: fit < {TARGET_FIT_S:g} s ({thr} torch thread(s))",
            f"{r['fit_s']:.1f} s ({r['epochs']} epochs)",
            r["fit_s"] < TARGET_FIT_S,
        )
    for r in proto["rows"]:
        add(
            f"{r['kind']}: projection cost < {100 * TARGET_PROJECTION_COST:g} point "
            "(test acc before - after)",
            f"{r['test_accuracy_before']:.4f} - {r['test_accuracy_after']:.4f} = "
            f"{100 * r['projection_cost']:+.2f} pts",
            r["projection_cost"] < TARGET_PROJECTION_COST,
        )
    return out


def _pct(x):
    return "-" if x is None else f"{x:.4f}"


def render_lvq(lvq: dict) -> list[str]:
    out = ["## 3. GLVQ references (separate virtual environment)", ""]
    if lvq.get("venv"):
        v = lvq["venv"]
        out += [f"Environment created by this run: `{v['venv']}`:", ""]
        out += [f"- `{c}`" for c in v["commands"]]
        for pkg, av in v.get("available", {}).items():
            out.append(f"- versions offered by the package index for {pkg}: {av}")
        out.append("")
    if lvq.get("skipped") and not lvq.get("packages"):
        return out + [f"Skipped: {lvq['skipped']}", ""]
    out += [
        f"Python {lvq.get('python')} at `{lvq.get('executable')}` with numpy "
        f"{lvq.get('numpy')}, scipy {lvq.get('scipy')}, scikit-learn {lvq.get('sklearn')} "
        f"(this environment: numpy {lvq['here']['numpy']}, scikit-learn "
        f"{lvq['here']['scikit-learn']}). Each package's GLVQ is fitted on the CLINC150 "
        "training split as installed ('stock'); where that fails, again after the "
        "minimal in-process shims listed below ('shimmed'). Not tuned on val "
        "(one configuration each).",
        "",
    ]
    rows = []
    for p in lvq.get("packages", []):
        st = p.get("stock", {})
        stock = (
            "OK"
            if st.get("ok")
            else f"{st['error']['type']}: {st['error']['message']}"
            + (f" (`{st['error']['at']}`)" if st["error"].get("at") else "")
        )
        sh = p.get("shimmed")
        shim = (
            "-"
            if sh is None
            else (
                f"OK: test acc {sh['test_accuracy']:.4f}, fit {sh['fit_s']:.1f} s"
                if sh.get("ok")
                else f"{sh['error']['type']}: {sh['error']['message']}"
            )
        )
        rows.append(
            [
                f"{p['distribution']} {p.get('version') or '(not installed)'}",
                f"{p['estimator']}({fmt_params(p['params'])})",
                stock,
                shim,
            ]
        )
    out += [md_table(["package", "estimator", "stock (as installed)", "shimmed"], rows, "llll"), ""]
    for p in lvq.get("packages", []):
        if p.get("shims"):
            out += [f"Shims for {p['distribution']}:", ""] + [f"- {s}" for s in p["shims"]] + [""]
    return out


def render(res: dict) -> str:
    out = header_lines(
        res,
        "# ProtoClassifier benchmark (issue 3)",
        "one configuration per kind, fewer epochs, reduced baseline grids",
        section_loads(res, ("proto", "baselines", "lvq")),
    )

    proto = res.get("proto")
    if proto:
        fx = proto["fixed"]
        out += [
            "## 1. ProtoClassifier on CLINC150",
            "",
            "Train on `train` (15,000), choose on `val` (3,000) by accuracy *after* "
            "projection, report on `test` (4,500). Fixed: "
            + fmt_params(fx)
            + f". Grid ({proto['grid_size']} configuration(s) per kind): "
            + (
                "; ".join(
                    fmt_params({k: v for k, v in g.items() if k != "level"})
                    + ", n_prototypes_per_class="
                    + "/".join(str(PROTO_N[kind][g["level"]]) for kind in PROTO_KINDS)
                    for g in proto_grid(res["quick"])
                )
            )
            + " (n_prototypes_per_class for trivial/support/both; 'both' has two branches, "
            "so its prototypes per class are twice that). "
            "'before' = the same settings and seed with `project=False` (the un-projected "
            "model, with the same last-layer refit); cost = test before - after, in points. "
            "fit s: the selection fit (training, projection and last-layer refit); predict s: "
            "best of 2 predicts of X_test. test after, all seeds: the chosen configuration "
            "refitted with random_state 0-4 (selection used seed 0 only), mean ± sd of test "
            "accuracy after projection. own evidence: over test samples, the mean share of "
            "the positive contributions to the predicted class's score that come from that "
            "class's own prototypes (1 = every 'this looks like that' is a same-class case).",
            "",
        ]
        rows = [
            [
                r["kind"],
                fmt_params(r["shown_params"]),
                str(r["n_prototypes"]),
                f"{r['val_accuracy_before']:.4f}",
                f"{r['val_accuracy_after']:.4f}",
                f"{r['test_accuracy_before']:.4f}",
                f"{r['test_accuracy_after']:.4f}",
                f"{100 * r['projection_cost']:+.2f}",
                str(r["epochs"]),
                f"{r['fit_s']:.1f}",
                f"{r['fit_s_unprojected']:.1f}",
                f"{r['predict_s']:.3f}",
                f"{r['own_evidence_share']:.2f}",
                _seed_summary(r),
            ]
            for r in proto["rows"]
        ]
        out += [
            md_table(
                [
                    "kind",
                    "chosen params",
                    "prototypes",
                    "val before",
                    "val after",
                    "test before",
                    "test after",
                    "cost pts",
                    "epochs",
                    "fit s",
                    "fit s (project=False)",
                    "predict s",
                    "own evidence",
                    "test after, all seeds",
                ],
                rows,
                "llrrrrrrrrrrrr",
            ),
            "",
        ]
        checks = []
        for r in proto["rows"]:
            c = f"{r['kind']}: project=False model has the same pre-projection state: " + (
                "yes (same epochs and history accuracies)"
                if r["unprojected_same_state"]
                else "NO (epochs or history accuracies differ)"
            )
            if r["prototypes_are_training_rows"] is not None:
                c += (
                    "; every prototype equals its training row"
                    if r["prototypes_are_training_rows"]
                    else "; prototypes do NOT all equal their training rows"
                )
            c += (
                f"; {r['n_distinct_prototype_rows']} distinct training rows for "
                f"{r['n_prototypes']} prototypes"
            )
            checks.append(c)
        out += ["Checks:", ""] + [f"- {c}" for c in checks] + [""]
        out += [
            "Validation grid. 'es split before' = accuracy of the jointly trained model "
            "(before projection and last-layer refit) on the 10% early-stopping split held "
            "out of `train` inside `fit` (`history_['val_accuracy_before_projection']`); "
            "projection and refit then use all of `train`.",
            "",
        ]
        rows = []
        for kind in PROTO_KINDS:
            for g in proto["grid"][kind]:
                es = g["es_split"]
                rows.append(
                    [
                        kind,
                        fmt_params(_short(g["params"])),
                        f"{g['val_accuracy']:.4f}",
                        _pct(es.get("val_accuracy_before_projection")),
                        f"{g['val_own_evidence']:.2f}",
                        str(g["epochs"]),
                        "-" if g["epoch_s_mean"] is None else f"{g['epoch_s_mean']:.2f}",
                        f"{g['fit_s']:.1f}",
                    ]
                )
        out += [
            md_table(
                [
                    "kind",
                    "params",
                    "val acc (after)",
                    "es split before",
                    "val own evidence",
                    "epochs",
                    "s/epoch",
                    "fit s",
                ],
                rows,
                "llrrrrrr",
            ),
            "",
        ]
        if proto["skipped"]:
            out += [
                f"Skipped by the time budget ({len(proto['skipped'])}): "
                + "; ".join(
                    f"{p['prototype_kind']} {fmt_params(_short(p))}" for p in proto["skipped"]
                ),
                "",
            ]
        warns = sorted(
            {w for kind in PROTO_KINDS for g in proto["grid"][kind] for w in g["warnings"]}
        )
        if warns:
            out += (
                ["Warnings raised during the ProtoClassifier fits:", ""]
                + [f"- {w}" for w in warns]
                + [""]
            )

    base = res.get("baselines")
    if base or proto:
        out += [
            "## 2. Side by side (same run, same splits)",
            "",
            "Every model chosen on `val`. ProtoClassifier: after projection (the fitted "
            "model). GLVQ rows: see section 3 (not tuned; shimmed packages).",
            "",
        ]
        rows = []
        for r in (proto or {}).get("rows", []):
            rows.append(
                [
                    f"ProtoClassifier {r['kind']}",
                    fmt_params(r["shown_params"]),
                    f"{r['val_accuracy_after']:.4f}",
                    f"{r['test_accuracy_after']:.4f}",
                    f"{r['fit_s']:.2f}",
                    f"{r['predict_s']:.3f}",
                    "",
                ]
            )
            rows.append(
                [
                    f"ProtoClassifier {r['kind']} (project=False)",
                    fmt_params(r["shown_params"]),
                    f"{r['val_accuracy_before']:.4f}",
                    f"{r['test_accuracy_before']:.4f}",
                    f"{r['fit_s_unprojected']:.2f}",
                    f"{r['predict_s_unprojected']:.3f}",
                    "not prototype-as-real-case",
                ]
            )
        for r in (base or {}).get("rows", []):
            rows.append(
                [
                    r["model"],
                    fmt_params(r["shown_params"]),
                    f"{r['val_accuracy']:.4f}",
                    f"{r['test_accuracy']:.4f}",
                    f"{r['fit_s']:.2f}",
                    f"{r['predict_s']:.3f}",
                    r.get("note", ""),
                ]
            )
        for p in (res.get("lvq") or {}).get("packages", []):
            for mode in ("stock", "shimmed"):
                s = p.get(mode)
                if s and s.get("ok"):
                    rows.append(
                        [
                            f"{p['distribution']} {p['version']} {p['estimator']} ({mode})",
                            fmt_params(p["params"]),
                            f"{s['val_accuracy']:.4f}",
                            f"{s['test_accuracy']:.4f}",
                            f"{s['fit_s']:.2f}",
                            f"{s['predict_s']:.3f}",
                            "separate venv; not tuned",
                        ]
                    )
        out += [
            md_table(
                ["model", "params", "val acc", "test acc", "fit s", "predict s", "note"],
                rows,
                "llrrrrl",
            ),
            "",
        ]
        if base:
            out += [
                "Baseline validation grids (val accuracy, fit s): "
                + "; ".join(
                    f"{name}: "
                    + ", ".join(
                        f"{fmt_params(g['params'])} {g['val_accuracy']:.4f} ({g['fit_s']:.1f}s)"
                        for g in grid
                    )
                    for name, grid in base["grids"].items()
                ),
                "",
            ]

    if res.get("lvq"):
        out += render_lvq(res["lvq"])

    out += ["## 4. Targets", "", targets_table(res["targets"]), ""]
    lin = best_linear(res)
    if lin:
        out += [
            f"Best tuned linear probe = the higher test accuracy of LogisticRegression and "
            f"LinearSVC in this run ({lin['model']}, {fmt_params(lin['params'])}).",
            "",
        ]
    return "\n".join(out)


# ======================================================================
# main
# ======================================================================
def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "proto")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: one configuration per kind, {PROTO_MAX_EPOCHS['quick']} epochs, "
        "small baseline grids",
    )
    ap.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help=f"ProtoClassifier max_epochs (default {PROTO_MAX_EPOCHS['full']}, "
        f"{PROTO_MAX_EPOCHS['quick']} with --quick)",
    )
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds after which the remaining ProtoClassifier grid configurations "
        "are skipped (each kind keeps at least its first one)",
    )
    ap.add_argument(
        "--lvq-python",
        type=Path,
        default=DEFAULT_LVQ_PYTHON,
        help="python of the throwaway venv with sklvq/sklearn-lvq (default: "
        "benchmarks/.lvq-venv/bin/python, ignored by git)",
    )
    ap.add_argument(
        "--make-lvq-venv",
        action="store_true",
        help="create that venv (the folder above its bin/) with pip if it does not exist",
    )
    ap.add_argument("--skip-lvq", action="store_true", help="skip section 3")
    add_threads_and_note(ap)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    d = load_clinc(args.data)
    if d is None:
        return 0  # load_clinc printed why; nothing to benchmark without the data

    threads = set_threads(args.threads)
    # skproto's torch estimators set their own threads (n_jobs, default 1)
    PROTO_FIXED["n_jobs"] = skproto_n_jobs(args.threads)
    info = machine_info(with_torch=True)
    max_epochs = args.max_epochs or PROTO_MAX_EPOCHS["quick" if args.quick else "full"]
    res = {
        "quick": args.quick,
        "note": args.note,
        "machine": info,
        "threads": threads,
        "data": str(args.data),
        "max_epochs": max_epochs,
    }
    log(f"threads: {threads}")

    res["proto"] = with_load(
        section_proto, d, quick=args.quick, max_epochs=max_epochs, budget_s=args.time_budget
    )
    res["baselines"] = with_load(section_baselines, d, quick=args.quick)
    if not args.skip_lvq:
        res["lvq"] = with_load(
            section_lvq,
            args.data,
            python=args.lvq_python,
            make=args.make_lvq_venv,
            quick=args.quick,
            threads=args.threads,
        )

    res["targets"] = evaluate_targets(res)
    finish_run(res, info, t_start, render, args.out_dir, "proto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
