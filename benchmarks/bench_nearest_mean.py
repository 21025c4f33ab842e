"""Benchmark of :class:`skproto.NearestMeanClassifier`.

Run from the repository root::

    python benchmarks/bench_nearest_mean.py            # full run (~5 min on 2 idle cores)
    python benchmarks/bench_nearest_mean.py --quick    # smaller scale part, 1 repeat
    python benchmarks/bench_nearest_mean.py --data /path/to/minilm_l6_v2.npz

Without ``--data`` the CLINC150 file is ``$SKPROTO_CLINC150_NPZ`` if set, else
``<repo>/../shared/data/clinc150/minilm_l6_v2.npz`` (see ``_harness/data.py``).

It prints markdown tables to stdout (progress goes to stderr) and writes them
to ``benchmarks/results/nearest_mean.md``, with every raw number in
``benchmarks/results/nearest_mean.json``.

Sections
--------
1. CLINC150 in-scope accuracy (frozen all-MiniLM-L6-v2 embeddings). Every
   hyper-parameter is chosen on ``val`` only; ``test`` is used once, to report.
   NearestMeanClassifier (euclidean, cosine, mahalanobis shared / per_class)
   next to scikit-learn's NearestCentroid, LDA, LogisticRegression and k-NN.
2. Out-of-scope detection: AUROC of ``score_samples`` (in-scope test queries
   positive, ``oos_test`` negative). ``temperature`` of the euclidean and
   cosine models is chosen by AUROC on ``val`` vs ``oos_val``, and so is the
   temperature of LogisticRegression's largest probability (the same tuning
   for the reference: untuned at T = 1 it read 1 AUROC point lower).
3. Streaming and merging: ``fit`` vs ``partial_fit`` over 100 chunks, and
   ``merge`` of 5 shard models, with the max abs difference of
   ``predict_proba`` to the batch model. If ``partial_fit`` misses its target a
   cProfile summary of it is included.
4. Scale: predict on 1,000,000 x 512 float32 rows against 1000 classes,
   compared with the bare matrix product ``X @ M.T`` (the floor), with the
   peak memory of the predict call. Each measurement runs in a fresh
   subprocess (this script, re-invoked with a hidden ``--_worker`` argument).

If the CLINC150 file is missing, sections 1-3 are skipped with a message and
the synthetic scale part still runs (exit status 0).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid

import skproto
from skproto import NearestMeanClassifier

from _harness.data import benchmark_parser, load_clinc, synthetic_blobs
from _harness.env import blas_threads, finish_machine, machine_info, machine_line
from _harness.report import (
    fmt_params,
    json_default,
    log,
    md_table,
    target_row,
    targets_table,
    write_results,
)
from _harness.selection import select_on_val
from _harness.timing import (
    best_time,
    predict_time,
    proc_meminfo_kib,
    proc_status_kib,
    reset_peak_rss,
    timed,
    with_load,
)

# ---------------------------------------------------------------- grids
MEAN_SHRINKAGE = [0.0, 0.1, 0.3]
COV_SHRINKAGE = ["ledoit_wolf", "oas", 0.1, 0.3, 0.6]
# covariance="per_class" pulled toward the shared covariance (covariance_pooling):
# its own family, on a smaller grid (a per-class fit takes seconds)
POOLING = [0.5, 0.8, 0.9, 0.95, 0.98]
POOLED_COV_SHRINKAGE = ["oas", 0.3]
TEMPERATURES = [1.0, 0.1, 0.03, 0.01, 0.003]
# LogisticRegression's largest probability of softmax(decision_function / T): the
# same val-vs-oos_val choice of T as the NMC models get (T > 1 flattens its logits)
LOGREG_TEMPERATURES = [1.0, 3.0, 10.0, 30.0, 100.0]
LOGREG_C = [1.0, 10.0, 100.0]
KNN_K = [1, 5, 10, 20]
NMC_FAMILIES = {
    "NMC euclidean": {"metric": "euclidean"},
    "NMC cosine": {"metric": "cosine"},
    "NMC mahalanobis shared": {"metric": "mahalanobis", "covariance": "shared"},
    "NMC mahalanobis per_class": {"metric": "mahalanobis", "covariance": "per_class"},
    "NMC mahalanobis per_class pooled": {
        "metric": "mahalanobis",
        "covariance": "per_class",
        "covariance_pooling": POOLING,
    },
}

# ---------------------------------------------------------------- targets
TARGET_AUROC = 0.97
TARGET_PREDICT_RATIO = 2.0
TARGET_STREAM_RATIO = 2.0
WELL_ABOVE_MARGIN = 0.01  # "well above NearestCentroid" = at least 1 accuracy point
EQUIVALENCE_TOL = 1e-5  # max abs predict_proba difference streamed/merged vs batch

# scikit-learn warns on every small partial_fit chunk where classes > rows / 2
_FEW_ROWS_WARNING = "The number of unique classes is greater than 50%"


# ======================================================================
# out-of-scope metrics
# ======================================================================
def auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """AUROC of scores separating in-scope (positive) from out-of-scope."""
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    return float(roc_auc_score(y, np.r_[s_in, s_out]))


def fpr_at_95_tpr(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """Fraction of out-of-scope samples accepted at the threshold keeping 95% in-scope."""
    thr = np.quantile(s_in, 0.05)
    return float(np.mean(s_out >= thr))


# ======================================================================
# 1. accuracy
# ======================================================================
def nmc_grid(base: dict) -> list[dict]:
    if isinstance(base.get("covariance_pooling"), list):
        return [
            {**base, "shrinkage": 0.0, "covariance_shrinkage": c, "covariance_pooling": r}
            for c in POOLED_COV_SHRINKAGE
            for r in base["covariance_pooling"]
        ]
    grid = []
    for s in MEAN_SHRINKAGE:
        if base["metric"] == "mahalanobis":
            grid += [{**base, "shrinkage": s, "covariance_shrinkage": c} for c in COV_SHRINKAGE]
        else:
            grid.append({**base, "shrinkage": s})
    return grid


def test_log_loss(model, d: dict) -> float | None:
    """Log-loss of ``predict_proba`` on X_test (None for a model without one)."""
    if not hasattr(model, "predict_proba"):
        return None
    P = model.predict_proba(d["X_test"])
    return float(log_loss(d["y_test"], P, labels=model.classes_))


def section_accuracy(d: dict) -> dict:
    log("section 1: CLINC150 in-scope accuracy (selection on val)")
    rows, grids, models = [], {}, {}

    for family, base in NMC_FAMILIES.items():
        (val_acc, params, _, _), grid = select_on_val(
            nmc_grid(base), lambda p: NearestMeanClassifier(**p), d, family
        )
        grids[family] = grid
        # refit the chosen configuration on train for a clean fit timing
        model, t_fit = timed(NearestMeanClassifier(**params).fit, d["X_train"], d["y_train"])
        pred, t_pred = predict_time(model, d["X_test"])
        acc = float(np.mean(pred == d["y_test"]))
        shown = {k: v for k, v in params.items() if k not in ("metric", "covariance")}
        rows.append(
            {
                "model": family,
                "params": params,
                "shown_params": shown,
                "val_accuracy": val_acc,
                "test_accuracy": acc,
                "test_log_loss": test_log_loss(model, d),
                "fit_s": t_fit,
                "predict_s": t_pred,
                "kind": "nmc",
            }
        )
        models[family] = model
        log(f"{family}: chose {fmt_params(shown)} -> test acc {acc:.4f}")

    # scikit-learn baselines -------------------------------------------------
    def add_sklearn(name, model, params, val_acc=None, t_fit=None, note=""):
        if t_fit is None:
            model, t_fit = timed(model.fit, d["X_train"], d["y_train"])
        if val_acc is None:
            val_acc = float(np.mean(model.predict(d["X_val"]) == d["y_val"]))
        pred, t_pred = predict_time(model, d["X_test"])
        acc = float(np.mean(pred == d["y_test"]))
        rows.append(
            {
                "model": name,
                "params": params,
                "shown_params": params,
                "val_accuracy": val_acc,
                "test_accuracy": acc,
                "test_log_loss": test_log_loss(model, d),
                "fit_s": t_fit,
                "predict_s": t_pred,
                "kind": "sklearn",
                "note": note,
            }
        )
        models[name] = model
        log(f"{name}: test acc {acc:.4f}")

    add_sklearn("NearestCentroid", NearestCentroid(), {"metric": "euclidean (default)"})
    add_sklearn(
        "LinearDiscriminantAnalysis",
        LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        {"solver": "lsqr", "shrinkage": "auto"},
    )

    (val_acc, params, model, t_fit), grids["LogisticRegression"] = select_on_val(
        [{"C": c} for c in LOGREG_C],
        lambda p: LogisticRegression(max_iter=2000, **p),
        d,
        "LogisticRegression",
    )
    add_sklearn(
        "LogisticRegression",
        model,
        {**params, "max_iter": 2000},
        val_acc,
        t_fit,
        note="fit s is that of the selection fit (same train data)",
    )

    knn = lambda p: KNeighborsClassifier(metric="cosine", algorithm="brute", **p)
    (val_acc, params, model, _), grids["KNeighborsClassifier"] = select_on_val(
        [{"n_neighbors": k} for k in KNN_K], knn, d, "KNeighborsClassifier"
    )
    add_sklearn(
        "KNeighborsClassifier", knn(params), {**params, "metric": "cosine", "weights": "uniform"}
    )
    return {"rows": rows, "grids": grids, "models": models}


# ======================================================================
# 2. out-of-scope detection
# ======================================================================
def section_oos(d: dict, acc: dict) -> dict:
    log("section 2: out-of-scope detection (AUROC, temperature chosen on val)")
    X_in_val, X_out_val = d["X_val"], d["X_oos_val"]
    X_in_test, X_out_test = d["X_test"], d["X_oos_test"]
    rows = []
    for row in (r for r in acc["rows"] if r["kind"] == "nmc"):
        params = row["params"]
        temps = TEMPERATURES if params["metric"] in ("euclidean", "cosine") else [1.0]
        scan, best = [], None
        for T in temps:
            if params.get("temperature") == T:  # the model of section 1, fitted at T
                # (not when its temperature is the default, "auto": reused as
                # "T = 1", it scored the fitted temperature's model)
                model = acc["models"][row["model"]]
            else:
                model = NearestMeanClassifier(**{**params, "temperature": T}).fit(
                    d["X_train"], d["y_train"]
                )
            a_val = auroc(model.score_samples(X_in_val), model.score_samples(X_out_val))
            scan.append({"temperature": T, "val_auroc": a_val})
            if best is None or a_val > best[0]:
                best = (a_val, T, model)
        a_val, T, model = best
        s_in, s_out = model.score_samples(X_in_test), model.score_samples(X_out_test)
        rows.append(
            {
                "model": row["model"],
                "params": params,
                "temperature": T,
                "temperature_scan": scan,
                "val_auroc": a_val,
                "test_auroc": auroc(s_in, s_out),
                "test_fpr95": fpr_at_95_tpr(s_in, s_out),
                "score": "score_samples",
                "kind": "nmc",
            }
        )
        log(f"{row['model']}: T={T} val AUROC {a_val:.4f} test AUROC {rows[-1]['test_auroc']:.4f}")

    def max_proba(T):
        # largest probability of softmax(decision_function / T) (T = 1: predict_proba's)
        def score(m, X):
            Z = m.decision_function(X) / T
            Z = Z - Z.max(axis=1, keepdims=True)
            return 1.0 / np.exp(Z).sum(axis=1)

        return score

    baselines = [
        ("LogisticRegression", "max predict_proba", LOGREG_TEMPERATURES),
        ("LinearDiscriminantAnalysis", "max decision_function", None),
    ]
    for name, what, temps in baselines:
        m = acc["models"][name]
        if temps is None:  # the largest decision value: no temperature to choose
            score = lambda m, X: m.decision_function(X).max(axis=1)
            T, scan = None, None
            a_val = auroc(score(m, X_in_val), score(m, X_out_val))
        else:  # the temperature chosen on val vs oos_val, as for the NMC models
            scan, best = [], None
            for t in temps:
                f = max_proba(t)
                a = auroc(f(m, X_in_val), f(m, X_out_val))
                scan.append({"temperature": t, "val_auroc": a})
                if best is None or a > best[0]:
                    best = (a, t, f)
            a_val, T, score = best
        s_in, s_out = score(m, X_in_test), score(m, X_out_test)
        rows.append(
            {
                "model": name,
                "params": next(r["shown_params"] for r in acc["rows"] if r["model"] == name),
                "temperature": T,
                "temperature_scan": scan,
                "val_auroc": a_val,
                "test_auroc": auroc(s_in, s_out),
                "test_fpr95": fpr_at_95_tpr(s_in, s_out),
                "score": what,
                "kind": "sklearn",
            }
        )
        log(f"{name} ({what}): test AUROC {rows[-1]['test_auroc']:.4f}")
    return {"rows": rows}


# ======================================================================
# 3. streaming and merging
# ======================================================================
def _ready(model, X):
    """Predict one row, which forces anything the model derives lazily; returns the model."""
    model.predict(X[:1])
    return model


def _stream(params, X, y, classes, chunks, budget_s):
    """partial_fit over ``chunks`` (then one predict); stops early once ``budget_s`` is spent."""
    model = NearestMeanClassifier(**params)
    n_warn = 0
    t0 = time.perf_counter()
    done = 0
    for i, rows in enumerate(chunks):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.partial_fit(X[rows], y[rows], classes=classes if i == 0 else None)
        n_warn += sum(_FEW_ROWS_WARNING in str(w.message) for w in caught)
        done = i + 1
        if time.perf_counter() - t0 > budget_s and done < len(chunks):
            break
    _ready(model, X)
    return model, time.perf_counter() - t0, done, n_warn


def _profile_partial_fit(params, X, y, classes, chunks, n_chunks, top=10):
    """cProfile summary (by own time) of partial_fit over the first ``n_chunks`` chunks."""
    model = NearestMeanClassifier(**params)
    prof = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof.enable()
        for i, rows in enumerate(chunks[:n_chunks]):
            model.partial_fit(X[rows], y[rows], classes=classes if i == 0 else None)
        _ready(model, X)
        prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt
    entries = []
    for (file, line, func), (_cc, nc, tt, ct, _) in st.stats.items():
        short = "/".join(Path(file).parts[-2:]) if file != "~" else "built-in"
        entries.append(
            {"function": f"{short}:{line}({func})", "ncalls": nc, "tottime_s": tt, "cumtime_s": ct}
        )
    entries.sort(key=lambda e: e["tottime_s"], reverse=True)
    by_cum = sorted(entries, key=lambda e: e["cumtime_s"], reverse=True)
    own = [e for e in by_cum if e["function"].startswith("skproto/")]
    return {
        "n_chunks": n_chunks,
        "total_s": total,
        "top_by_tottime": entries[:top],
        "skproto_top_by_cumtime": own[:top],
    }


def _max_proba_diff(a, b, X) -> float:
    """Max abs difference of predict_proba, columns aligned on b's classes."""
    pa, pb = a.predict_proba(X), b.predict_proba(X)
    if not np.array_equal(a.classes_, b.classes_):  # a stream stopped early
        pa = pa[:, np.searchsorted(a.classes_, b.classes_)]
    return float(np.max(np.abs(pa.astype(np.float64) - pb)))


def section_streaming(d: dict, acc: dict, *, repeat: int, budget_s: float, profile: bool) -> dict:
    log("section 3: streaming (partial_fit x100) and merging (5 shards)")
    X, y, X_test = d["X_train"], d["y_train"], d["X_test"]
    classes = np.unique(y)
    nmc_rows = [r for r in acc["rows"] if r["kind"] == "nmc"]
    best = max(nmc_rows, key=lambda r: r["val_accuracy"])  # best by val accuracy, not test
    configs = [(f"best by val: {best['model']}", best["params"])]
    for label, params in [
        ("plain euclidean (defaults)", {"metric": "euclidean"}),
        ("mahalanobis (defaults: shared, oas)", {"metric": "mahalanobis"}),
    ]:
        if best["params"] != {**params, "shrinkage": 0.0}:
            configs.append((label, params))

    perm = np.random.default_rng(0).permutation(len(X))
    chunks = np.array_split(perm, 100)
    shards = np.array_split(perm, 5)
    rows = []
    for label, params in configs:

        def fit(params=params):
            return _ready(NearestMeanClassifier(**params).fit(X, y), X)

        batch, t_fit = best_time(fit, 1)
        if t_fit < 10 and repeat > 1:  # cheap enough: best of ``repeat`` (this one included)
            batch, t2 = best_time(fit, repeat - 1)
            t_fit = min(t_fit, t2)
        log(f"{label}: fit {t_fit:.3f}s; partial_fit over {len(chunks)} chunks ...")
        stream, t_stream, done, n_warn = _stream(params, X, y, classes, chunks, budget_s)
        if done == len(chunks) and t_stream < 5 and repeat > 1:
            for _ in range(repeat - 1):
                s2, t2, _, _ = _stream(params, X, y, classes, chunks, budget_s)
                t_stream = min(t_stream, t2)
        extrapolated = done < len(chunks)
        t_stream_100 = t_stream * len(chunks) / done
        if extrapolated:
            # compare with a batch fit on exactly the rows streamed so far
            seen = np.concatenate(chunks[:done])
            ref = NearestMeanClassifier(**params).fit(X[seen], y[seen])
        else:
            ref = batch
        # |dP| on float32 X_test (what users run; float32 arithmetic) and on the
        # same rows in float64 (shows how close the fitted statistics are)
        X_test64 = X_test.astype(np.float64)
        parts = [NearestMeanClassifier(**params).fit(X[s], y[s]) for s in shards]
        merged, t_merge = timed(parts[0].merge, *parts[1:])
        diff_stream = {
            k: _max_proba_diff(stream, ref, Xt) for k, Xt in (("f32", X_test), ("f64", X_test64))
        }
        diff_merge = {
            k: _max_proba_diff(merged, batch, Xt) for k, Xt in (("f32", X_test), ("f64", X_test64))
        }
        row = {
            "config": label,
            "params": params,
            "fit_s": t_fit,
            "partial_fit_100_s": t_stream_100,
            "chunks_run": done,
            "extrapolated": extrapolated,
            "ratio": t_stream_100 / t_fit,
            "per_chunk_ms": 1e3 * t_stream / done,
            "few_rows_warnings": n_warn,
            "max_abs_diff_stream": diff_stream,
            "merge_s": t_merge,
            "max_abs_diff_merge": diff_merge,
        }
        how = f"extrapolated from {done} chunks" if extrapolated else "measured"
        log(
            f"{label}: partial_fit {t_stream_100:.2f}s ({how}), ratio {row['ratio']:.1f}, "
            f"|dP| stream {diff_stream}, merge {diff_merge}"
        )
        if profile and row["ratio"] > TARGET_STREAM_RATIO:
            n_prof = min(done, 20)
            log(f"{label}: ratio above target, profiling partial_fit over {n_prof} chunks")
            row["profile"] = _profile_partial_fit(params, X, y, classes, chunks, n_prof)
        rows.append(row)
    return {
        "rows": rows,
        "n_chunks": len(chunks),
        "n_shards": len(shards),
        "reference_rows": _stream_reference(X, y, classes, chunks, repeat),
    }


def _stream_ratio(make, X, y, classes, chunks, repeat):
    """Best-of-``repeat`` seconds of ``fit`` and of ``partial_fit`` over ``chunks``."""

    def fit():
        return _ready(make().fit(X, y), X)

    def stream():
        model = make()
        for i, rows in enumerate(chunks):
            model.partial_fit(X[rows], y[rows], classes=classes if i == 0 else None)
        return _ready(model, X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GaussianNB warns on small chunks
        _, t_fit = best_time(fit, repeat)
        _, t_stream = best_time(stream, repeat)
    return t_fit, t_stream


def _stream_reference(X, y, classes, chunks, repeat):
    """Context for the ratio: scikit-learn's GaussianNB on the same chunks, and
    NearestMeanClassifier on a 20x larger synthetic stream, where the fixed
    per-call cost of input validation (~1 ms) no longer dominates."""
    from sklearn.naive_bayes import GaussianNB

    log("section 3b: streaming references (GaussianNB; 300,000-row synthetic stream)")
    out = []
    t_fit, t_stream = _stream_ratio(GaussianNB, X, y, classes, chunks, repeat)
    out.append(
        {
            "config": "sklearn GaussianNB (reference)",
            "data": "CLINC150 train",
            "fit_s": t_fit,
            "partial_fit_100_s": t_stream,
            "ratio": t_stream / t_fit,
        }
    )
    rng = np.random.default_rng(1)
    n_big = 300_000
    Xb = rng.standard_normal((n_big, X.shape[1])).astype(np.float32)
    yb = rng.integers(0, len(classes), n_big)
    big_chunks = np.array_split(np.arange(n_big), len(chunks))
    for label, params in [
        ("NMC euclidean", {"metric": "euclidean"}),
        ("NMC mahalanobis (shared, oas)", {"metric": "mahalanobis"}),
    ]:
        t_fit, t_stream = _stream_ratio(
            functools.partial(NearestMeanClassifier, **params),
            Xb,
            yb,
            np.arange(len(classes)),
            big_chunks,
            repeat,
        )
        out.append(
            {
                "config": label,
                "data": f"synthetic {n_big:,} x {X.shape[1]}",
                "fit_s": t_fit,
                "partial_fit_100_s": t_stream,
                "ratio": t_stream / t_fit,
            }
        )
    for r in out:
        log(
            f"{r['config']} on {r['data']}: fit {r['fit_s']:.3f}s, partial_fit "
            f"{r['partial_fit_100_s']:.3f}s, ratio {r['ratio']:.1f}"
        )
    return out


# ======================================================================
# 4. scale (each measurement in a subprocess)
# ======================================================================
SCALE_MODELS = {
    "euclidean": {"metric": "euclidean"},
    "cosine": {"metric": "cosine"},
    # covariance_shrinkage="oas" (the default): the pooled scatter suffices;
    # "ledoit_wolf" keeps one p x p scatter per class. Predict costs the same.
    "mahalanobis shared": {
        "metric": "mahalanobis",
        "covariance": "shared",
        "covariance_shrinkage": "oas",
    },
}


def _worker(spec: dict) -> dict:
    """Body of one scale subprocess; ``spec['task']`` is 'floor' or 'predict'."""
    X, y = synthetic_blobs(spec["n_rows"], spec["n_features"], spec["n_classes"], seed=1)
    X_fit, y_fit = synthetic_blobs(
        spec["n_fit"], spec["n_features"], spec["n_classes"], seed=2, balanced=True
    )
    out = {"task": spec["task"], "threads": blas_threads()}
    repeat = spec["repeat"]

    if spec["task"] == "floor":
        M = NearestMeanClassifier().fit(X_fit, y_fit).prototypes_.astype(np.float32)
        del X_fit, y_fit
        rows = spec["chunk_rows"]
        buf = np.empty((rows, M.shape[0]), dtype=np.float32)

        def chunked():
            for s in range(0, X.shape[0], rows):
                e = min(s + rows, X.shape[0])
                np.matmul(X[s:e], M.T, out=buf[: e - s])

        warm = min(rows, X.shape[0])
        np.matmul(X[:warm], M.T, out=buf[:warm])  # warm-up (threads, caches)
        _, out["chunked_s"] = best_time(chunked, repeat)
        result_bytes = X.shape[0] * M.shape[0] * 4
        avail = proc_meminfo_kib("MemAvailable")
        if avail is None or avail * 1024 > 2.5 * result_bytes:

            def single():
                R = X @ M.T
                del R

            _, out["single_s"] = best_time(single, repeat)
        else:
            out["single_s"] = None
            out["single_skipped"] = f"needs {result_bytes / 2**30:.1f} GiB, not available"
        return out

    params = SCALE_MODELS[spec["model"]]
    model, out["fit_s"] = timed(NearestMeanClassifier(**params).fit, X_fit, y_fit)
    del X_fit, y_fit
    gc.collect()
    # Peak memory of the first (warm-up) predict: reset the kernel's peak-RSS
    # mark, note the resident size while holding X and the model, and read
    # the peak afterwards. tracemalloc (which numpy reports its array buffers
    # to) gives the peak of Python/numpy allocations during the same call.
    out["x_mib"] = X.nbytes / 2**20
    out["peak_reset"] = reset_peak_rss()
    rss_before = proc_status_kib("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    pred, out["warmup_s"] = timed(model.predict, X)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hwm = proc_status_kib("VmHWM")
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["rss_before_mib"] = rss_before / 1024 if rss_before else None
    if out["peak_reset"] and hwm and rss_before:
        out["peak_extra_rss_mib"] = (hwm - rss_before) / 1024
    else:  # fall back to ru_maxrss (only meaningful if predict raised the peak)
        out["peak_extra_rss_mib"] = max(0, maxrss_after - maxrss_before) / 1024
    out["tracemalloc_peak_mib"] = traced_peak / 2**20
    out["ru_maxrss_mib"] = maxrss_after / 1024
    out["accuracy"] = float(np.mean(pred == y))
    del pred
    _, out["predict_s"] = best_time(lambda: model.predict(X), repeat)
    return out


def _run_worker(spec: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "out.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--_worker",
            json.dumps(spec),
            "--_worker-out",
            str(out_file),
        ]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"scale worker {spec} failed with status {proc.returncode}")
        res = json.loads(out_file.read_text())
    # the parent's view: peak RSS of the largest finished child so far
    res["parent_ru_maxrss_children_mib"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    )
    return res


def section_scale(*, quick: bool, repeat_floor: int, repeat_predict: int) -> dict:
    spec = {
        "n_rows": 100_000 if quick else 1_000_000,
        "n_features": 512,
        "n_classes": 1000,
        "n_fit": 10_000 if quick else 50_000,
        "chunk_rows": 65536,
    }
    log(
        f"section 4: scale, X {spec['n_rows']:,} x {spec['n_features']} float32, "
        f"{spec['n_classes']} classes (model fitted on {spec['n_fit']:,} rows)"
    )
    floor = _run_worker({**spec, "task": "floor", "repeat": repeat_floor})
    candidates = {"chunked": floor["chunked_s"]}
    if floor.get("single_s") is not None:
        candidates["single"] = floor["single_s"]
    floor_kind = min(candidates, key=candidates.get)
    floor_s = candidates[floor_kind]
    log(
        f"floor: chunked {floor['chunked_s']:.2f}s, single {floor.get('single_s')}, "
        f"using {floor_kind}"
    )
    rows = []
    for name in SCALE_MODELS:
        log(f"predict {name} ...")
        res = _run_worker({**spec, "task": "predict", "model": name, "repeat": repeat_predict})
        res["model"] = name
        res["params"] = SCALE_MODELS[name]
        res["ratio"] = res["predict_s"] / floor_s
        rows.append(res)
        log(
            f"predict {name}: {res['predict_s']:.2f}s, ratio {res['ratio']:.2f}, "
            f"peak extra RSS {res['peak_extra_rss_mib']:.0f} MiB, acc {res['accuracy']:.3f}"
        )
    gflop = 2 * spec["n_rows"] * spec["n_features"] * spec["n_classes"] / 1e9
    return {
        "spec": spec,
        "floor": floor,
        "floor_kind": floor_kind,
        "floor_s": floor_s,
        "floor_gflops": gflop / floor_s,
        "rows": rows,
        "repeat_floor": repeat_floor,
        "repeat_predict": repeat_predict,
    }


# ======================================================================
# targets and report
# ======================================================================
def evaluate_targets(res: dict) -> list[dict]:
    out = []

    def add(target, measured, ok):
        out.append(target_row(target, measured, ok))

    acc = res.get("accuracy")
    if acc:
        by = {r["model"]: r for r in acc["rows"]}
        nmc = [r for r in acc["rows"] if r["kind"] == "nmc"]
        best = max(nmc, key=lambda r: r["val_accuracy"])
        lda, nc = by["LinearDiscriminantAnalysis"], by["NearestCentroid"]
        add(
            "best NMC test accuracy (config chosen on val) >= LDA",
            f"{best['model']}: {best['test_accuracy']:.4f} vs LDA {lda['test_accuracy']:.4f}",
            best["test_accuracy"] >= lda["test_accuracy"],
        )
        add(
            f"best NMC test accuracy well above NearestCentroid (>= NC + {WELL_ABOVE_MARGIN})",
            f"{best['test_accuracy']:.4f} vs NC {nc['test_accuracy']:.4f}",
            best["test_accuracy"] >= nc["test_accuracy"] + WELL_ABOVE_MARGIN - 1e-9,
        )
    else:
        add("best NMC test accuracy >= LDA, well above NearestCentroid", "no CLINC150 data", None)

    oos = res.get("oos")
    if oos:
        nmc = [r for r in oos["rows"] if r["kind"] == "nmc"]
        best = max(nmc, key=lambda r: r["val_auroc"])
        add(
            f"OOS AUROC of score_samples >= {TARGET_AUROC}: NMC config with the best val AUROC",
            f"{best['model']}: {best['test_auroc']:.4f}",
            best["test_auroc"] >= TARGET_AUROC,
        )
        if acc:
            best_acc = max(
                (r for r in acc["rows"] if r["kind"] == "nmc"), key=lambda r: r["val_accuracy"]
            )["model"]
            if best_acc != best["model"]:
                r = next(r for r in nmc if r["model"] == best_acc)
                add(
                    f"OOS AUROC of score_samples >= {TARGET_AUROC}: best-accuracy NMC config",
                    f"{r['model']}: {r['test_auroc']:.4f}",
                    r["test_auroc"] >= TARGET_AUROC,
                )
    else:
        add(f"OOS AUROC of score_samples >= {TARGET_AUROC}", "no CLINC150 data", None)

    scale = res.get("scale")
    if scale:
        for r in scale["rows"]:
            add(
                f"predict {r['model']} within {TARGET_PREDICT_RATIO:g}x of X @ M.T "
                f"({scale['spec']['n_rows']:,} rows)",
                f"{r['predict_s']:.2f}s / {scale['floor_s']:.2f}s = {r['ratio']:.2f}x",
                r["ratio"] <= TARGET_PREDICT_RATIO,
            )
    else:
        add("predict within 2x of X @ M.T", "scale part not run", None)

    stream = res.get("streaming")
    if stream:
        for r in stream["rows"]:
            note = f" (extrapolated from {r['chunks_run']} chunks)" if r["extrapolated"] else ""
            add(
                f"partial_fit x{stream['n_chunks']} within {TARGET_STREAM_RATIO:g}x of fit: "
                f"{r['config']}",
                f"{r['partial_fit_100_s']:.2f}s / {r['fit_s']:.3f}s = {r['ratio']:.1f}x{note}",
                r["ratio"] <= TARGET_STREAM_RATIO,
            )
        for r in stream.get("reference_rows", []):
            if r["config"].startswith("NMC"):
                add(
                    f"partial_fit x{stream['n_chunks']} within {TARGET_STREAM_RATIO:g}x of fit: "
                    f"{r['config']}, {r['data']}",
                    f"{r['partial_fit_100_s']:.2f}s / {r['fit_s']:.3f}s = {r['ratio']:.1f}x",
                    r["ratio"] <= TARGET_STREAM_RATIO,
                )
        for r in stream["rows"]:
            worst = max(*r["max_abs_diff_stream"].values(), *r["max_abs_diff_merge"].values())
            add(
                f"(extra) streamed and merged predict_proba == batch (<= {EQUIVALENCE_TOL:g}): "
                f"{r['config']}",
                f"{worst:.1e}",
                worst <= EQUIVALENCE_TOL,
            )
    else:
        add("partial_fit within 2x of fit", "no CLINC150 data", None)
    return out


def _fmt_diff(d: dict) -> str:
    return f"{d['f32']:.1e} / {d['f64']:.1e}"


def render(res: dict) -> str:
    m = res["machine"]
    out = ["# NearestMeanClassifier benchmark", ""]
    out.append(
        f"- date: {m['date']}; total wall time {res['wall_s']:.0f} s"
        + (" (--quick)" if res["quick"] else "")
    )
    out.append(machine_line(m))
    out.append(
        f"- python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, "
        f"scikit-learn {m['sklearn']}, skproto {m['skproto']} "
        f"(commit {m.get('git_commit', '?')[:10]}"
        + (", skproto/ has uncommitted changes" if m.get("skproto_uncommitted_changes") else "")
        + f"; skproto imported from {m.get('skproto_path')}, sources hash "
        + f"{m.get('skproto_state')})"
    )
    if res.get("note"):
        out.append(f"- note: {res['note']}")
    if m.get("skproto_changed_during_run"):
        out.append("- WARNING: the skproto sources changed while the benchmark ran")
    pools = m.get("threadpools")
    if isinstance(pools, list):
        blas = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
            f"{p.get('architecture', p.get('threading_layer', ''))})"
            for p in pools
            if p.get("user_api") == "blas"
        ]
        out.append(f"- BLAS: {'; '.join(blas)}")
    out.append(
        f"- load average (1, 5, 15 min) at start / end: {m.get('loadavg_start')} / "
        f"{m.get('loadavg_end')}; 1-min load before/after each section: "
        + ", ".join(
            f"{k} {res[k]['loadavg_1min_before_after']}"
            for k in ("accuracy", "oos", "streaming", "scale")
            if res.get(k)
        )
        + ". The benchmark itself (BLAS threads as listed above; it sets no cap) accounts "
        "for a load of up to the number of those threads; clearly more means other "
        "processes competed for the cores."
    )
    out.append("")

    if res.get("skipped_clinc"):
        out += [f"CLINC150 sections skipped: {res['skipped_clinc']}", ""]

    acc = res.get("accuracy")
    if acc:
        out += [
            "## 1. CLINC150 in-scope accuracy",
            "",
            "Train on `train` (15,000), choose hyper-parameters on `val` (3,000), report on "
            "`test` (4,500). fit s: one fit on train; predict s: best of 2 predicts of "
            "X_test; test log-loss: of predict_proba on X_test (the NMC models at their "
            'default temperature="auto"). k-NN uses cosine distance (the embeddings are '
            "unit-norm, so euclidean would rank neighbours identically).",
            "",
        ]
        rows = [
            [
                r["model"],
                fmt_params(r["shown_params"]),
                f"{r['val_accuracy']:.4f}",
                f"{r['test_accuracy']:.4f}",
                "-" if r.get("test_log_loss") is None else f"{r['test_log_loss']:.3f}",
                f"{r['fit_s']:.3f}",
                f"{r['predict_s']:.3f}",
            ]
            for r in acc["rows"]
        ]
        out += [
            md_table(
                [
                    "model",
                    "chosen params",
                    "val acc",
                    "test acc",
                    "test log-loss",
                    "fit s",
                    "predict s",
                ],
                rows,
                "llrrrrr",
            ),
            "",
        ]
        out += ["Validation grid of the NMC configurations (val accuracy, fit s):", ""]
        grid_rows = []
        for fam in NMC_FAMILIES:
            for g in acc["grids"][fam]:
                p = {k: v for k, v in g["params"].items() if k not in ("metric", "covariance")}
                grid_rows.append(
                    [fam, fmt_params(p), f"{g['val_accuracy']:.4f}", f"{g['fit_s']:.2f}"]
                )
        out += [md_table(["model", "params", "val acc", "fit s"], grid_rows, "llrr"), ""]

    oos = res.get("oos")
    if oos:
        out += [
            "## 2. Out-of-scope detection",
            "",
            "Positive: in-scope `test` (4,500); negative: `oos_test` (1,000). For euclidean "
            "and cosine"
            + (
                ", and for LogisticRegression's largest probability (of "
                "softmax(decision_function / T)),"
                if any(r["kind"] == "sklearn" and r["temperature"] for r in oos["rows"])
                else ""
            )
            + " the temperature is chosen by AUROC on `val` vs `oos_val`; the "
            "mahalanobis models use T=1 (relative Mahalanobis score). FPR@95 = share of "
            "out-of-scope queries accepted at the threshold that keeps 95% of in-scope "
            "test queries.",
            "",
        ]
        rows = [
            [
                r["model"],
                r["score"],
                "-" if r["temperature"] is None else f"{r['temperature']:g}",
                f"{r['val_auroc']:.4f}",
                f"{r['test_auroc']:.4f}",
                f"{r['test_fpr95']:.3f}",
            ]
            for r in oos["rows"]
        ]
        out += [
            md_table(
                ["model", "score", "T", "val AUROC", "test AUROC", "test FPR@95"], rows, "llrrrr"
            ),
            "",
        ]
        scans = [
            f"{r['model']}: "
            + ", ".join(
                f"T={s['temperature']:g}: {s['val_auroc']:.4f}" for s in r["temperature_scan"]
            )
            for r in oos["rows"]
            if len(r.get("temperature_scan") or []) > 1
        ]
        if scans:
            out += ["Temperature scan (val AUROC):", ""] + [f"- {s}" for s in scans] + [""]

    st = res.get("streaming")
    if st:
        out += [
            "## 3. Streaming and merging",
            "",
            f"`fit` on all of `train` vs `partial_fit` over {st['n_chunks']} equal chunks of a "
            f"random permutation (`classes=` on the first call), and `merge` of "
            f"{st['n_shards']} models fitted on disjoint shards. |dP| = max abs difference "
            "of `predict_proba` on X_test to the batch model. The best configuration is "
            "the one with the highest val accuracy in section 1. Both timings end with a "
            "one-row predict, so that anything derived lazily is paid for; fit s is the "
            "best of 3, partial_fit s the best of 3 when one stream takes under 5 s.",
            "",
        ]
        rows = []
        for r in st["rows"]:
            pf = f"{r['partial_fit_100_s']:.3f}" + ("*" if r["extrapolated"] else "")
            rows.append(
                [
                    r["config"],
                    fmt_params(r["params"]),
                    f"{r['fit_s']:.3f}",
                    pf,
                    f"{r['ratio']:.1f}",
                    f"{r['per_chunk_ms']:.1f}",
                    _fmt_diff(r["max_abs_diff_stream"]),
                    f"{r['merge_s']:.3f}",
                    _fmt_diff(r["max_abs_diff_merge"]),
                ]
            )
        out += [
            md_table(
                [
                    "config",
                    "params",
                    "fit s",
                    "partial_fit s",
                    "ratio",
                    "ms/chunk",
                    "|dP| stream f32 / f64",
                    "merge s",
                    "|dP| merge f32 / f64",
                ],
                rows,
                "llrrrrrrr",
            ),
            "",
        ]
        ref = st.get("reference_rows", [])
        if ref:
            out += [
                f"Context for the ratio, {st['n_chunks']} chunks each: scikit-learn's own "
                "streaming classifier on the same CLINC150 chunks, and NearestMeanClassifier "
                "on a synthetic stream 20x larger (150 classes), where the fixed per-call "
                "cost of input validation no longer dominates:",
                "",
            ]
            out += [
                md_table(
                    ["config", "data", "fit s", "partial_fit s", "ratio"],
                    [
                        [
                            r["config"],
                            r["data"],
                            f"{r['fit_s']:.3f}",
                            f"{r['partial_fit_100_s']:.3f}",
                            f"{r['ratio']:.1f}",
                        ]
                        for r in ref
                    ],
                    "llrrr",
                ),
                "",
            ]
        out += [
            "|dP| f32: predict_proba of the float32 X_test (float32 arithmetic); f64: the "
            "same rows cast to float64, which shows the agreement of the fitted "
            "statistics themselves.",
            "",
        ]
        if any(r["extrapolated"] for r in st["rows"]):
            out += [
                "\\* stopped at the time budget and extrapolated linearly to all chunks; "
                "|dP| compares with a batch fit on the rows streamed so far.",
                "",
            ]
        for r in st["rows"]:
            if r["few_rows_warnings"]:
                out += [
                    f"Note: partial_fit emitted {r['few_rows_warnings']} scikit-learn "
                    f"UserWarnings ('{_FEW_ROWS_WARNING} of the number of samples') for "
                    f"{r['config']} (150 rows per chunk, 150 classes); silenced here.",
                    "",
                ]
                break
        for r in st["rows"]:
            prof = r.get("profile")
            if not prof:
                continue
            out += [
                f"cProfile of partial_fit over the first {prof['n_chunks']} chunks (and the "
                f"one-row predict), {r['config']}; profiled total {prof['total_s']:.2f}s. "
                "Top functions by own time, then skproto functions by cumulative time:",
                "",
            ]
            for key in ("top_by_tottime", "skproto_top_by_cumtime"):
                rows = [
                    [e["function"], e["ncalls"], f"{e['tottime_s']:.3f}", f"{e['cumtime_s']:.3f}"]
                    for e in prof[key]
                ]
                out += [
                    md_table(["function", "ncalls", "tottime s", "cumtime s"], rows, "lrrr"),
                    "",
                ]

    sc = res.get("scale")
    if sc:
        spec, fl = sc["spec"], sc["floor"]
        out += [
            "## 4. Scale: predict on synthetic data",
            "",
            f"X: {spec['n_rows']:,} x {spec['n_features']} float32 Gaussian blobs "
            f"({spec['n_classes']} classes, anisotropic noise, fixed seeds); models fitted on "
            f"{spec['n_fit']:,} rows of the same distribution. Floor: the bare product "
            f"`X @ M.T` with M the ({spec['n_classes']}, {spec['n_features']}) float32 "
            f"means, timed (a) in chunks of {spec['chunk_rows']:,} rows into one reused "
            f"output buffer and (b) as one product allocating the full "
            f"{spec['n_rows']:,} x {spec['n_classes']} result; best of "
            f"{sc['repeat_floor']} after a warm-up. The faster one is the floor.",
            "",
        ]
        single = "skipped" if fl.get("single_s") is None else f"{fl['single_s']:.2f}"
        out += [
            md_table(
                ["floor variant", "seconds"],
                [
                    ["chunked, reused buffer", f"{fl['chunked_s']:.2f}"],
                    ["single product", single],
                    [
                        f"floor used ({sc['floor_kind']})",
                        f"{sc['floor_s']:.2f} ({sc['floor_gflops']:.0f} GFLOP/s)",
                    ],
                ],
                "lr",
            ),
            "",
        ]
        rows = [
            [
                r["model"],
                fmt_params({k: v for k, v in r["params"].items() if k != "metric"}),
                f"{r['fit_s']:.2f}",
                f"{r['predict_s']:.2f}",
                f"{r['ratio']:.2f}",
                f"{r['peak_extra_rss_mib']:.0f}",
                f"{r['tracemalloc_peak_mib']:.0f}",
                f"{r['accuracy']:.3f}",
            ]
            for r in sc["rows"]
        ]
        out += [
            md_table(
                [
                    "NMC metric",
                    "params",
                    "fit s",
                    "predict s",
                    "predict / floor",
                    "peak extra RSS MiB",
                    "tracemalloc peak MiB",
                    "accuracy",
                ],
                rows,
                "llrrrrrr",
            ),
            "",
        ]
        x_mib = sc["rows"][0]["x_mib"] if sc["rows"] else 0
        base = (sc["rows"][0].get("rss_before_mib") if sc["rows"] else None) or float("nan")
        out += [
            f"predict s: best of {sc['repeat_predict']} after one warm-up predict. Memory: "
            "each model runs in its own subprocess. Right before the warm-up predict the "
            "process's peak-RSS mark is reset (/proc/self/clear_refs) and its resident size "
            f"noted (X = {x_mib:.0f} MiB plus model and libraries, {base:.0f} MiB in the "
            "first process); 'peak extra RSS' is the kernel's peak (VmHWM) after the predict "
            "minus that baseline. 'tracemalloc peak' is the peak of Python/numpy "
            "allocations traced during the same call (X itself is not counted; the "
            "returned labels are). accuracy = share of the rows predicted as their "
            "generating class (a sanity check; the noise is anisotropic, so mahalanobis "
            "should beat the isotropic metrics).",
            "",
        ]

    out += ["## Targets", "", targets_table(res["targets"]), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "nearest_mean")
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 100k-row scale part, single repeats"
    )
    ap.add_argument("--skip-clinc", action="store_true", help="skip sections 1-3")
    ap.add_argument("--skip-scale", action="store_true", help="skip section 4")
    ap.add_argument(
        "--stream-budget",
        type=float,
        default=240.0,
        help="seconds after which a partial_fit stream stops and is extrapolated",
    )
    ap.add_argument(
        "--no-profile",
        action="store_true",
        help="do not cProfile partial_fit when it misses its target",
    )
    ap.add_argument("--note", default="", help="free text recorded in the report header")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker:  # a scale subprocess
        res = _worker(json.loads(args._worker))
        Path(args._worker_out).write_text(json.dumps(res, default=json_default))
        return 0

    t_start = time.perf_counter()
    res = {
        "quick": args.quick,
        "note": args.note,
        "machine": machine_info(),
        "data": str(args.data),
    }
    log(f"skproto {skproto.__version__} from {Path(skproto.__file__).parent}")

    if not args.skip_clinc:
        d = load_clinc(args.data)
        if d is None:
            res["skipped_clinc"] = f"{args.data} not found"
        else:
            acc = with_load(section_accuracy, d)
            res["accuracy"] = acc
            res["oos"] = with_load(section_oos, d, acc)
            res["streaming"] = with_load(
                section_streaming,
                d,
                acc,
                repeat=1 if args.quick else 3,
                budget_s=args.stream_budget,
                profile=not args.no_profile,
            )
    else:
        res["skipped_clinc"] = "--skip-clinc"
    if not args.skip_scale:
        res["scale"] = with_load(
            section_scale,
            quick=args.quick,
            repeat_floor=1 if args.quick else 3,
            repeat_predict=1 if args.quick else 2,
        )

    res["targets"] = evaluate_targets(res)
    finish_machine(res, res["machine"])
    res["wall_s"] = time.perf_counter() - t_start
    if res.get("accuracy"):
        res["accuracy"].pop("models")  # fitted estimators: not for JSON

    write_results(res, render(res), args.out_dir, "nearest_mean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
