"""Checks of the benchmark scripts' measurements (from a benchmark audit).

The scripts live in ``benchmarks/`` and import ``_harness`` from there, so
that folder goes on ``sys.path`` for these tests.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_multilabel_scaler_sees_only_the_training_rows(monkeypatch):
    """The standardisation is fitted on the training rows, not on the test rows too."""
    pytest.importorskip("torch")
    import bench_multilabel
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    fitted_rows = []

    class Recording(StandardScaler):
        def fit(self, X, y=None, sample_weight=None):
            fitted_rows.append(len(X))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(bench_multilabel, "StandardScaler", Recording)
    monkeypatch.setattr(
        bench_multilabel,
        "_models",
        lambda n_jobs: {"lr": lambda: OneVsRestClassifier(LogisticRegression())},
    )
    bench_multilabel.run_set(4, 10, 1000, 0, n_jobs=1)
    # train_test_split's default keeps a quarter out: 750 training rows of 1,000
    assert fitted_rows == [750]


def test_dask_gram_gflops_counts_the_symmetric_product(monkeypatch):
    """numpy forms X.T @ X as a symmetric rank-k update: rows * p * (p + 1) flops,
    not the 2 * rows * p**2 of a general product (that count doubled the rate)."""
    import bench_dask

    seconds = {
        "generate_s": 0.05,
        "gram64_s": 0.2,
        "cast_and_gram64_s": 0.25,
        "gram32_s": 0.1,
        "block_statistics_s": 0.3,
        "product_s": 0.4,
        "predict_s": 0.5,
    }

    class Client:
        def submit(self, fn, *args, **kwargs):
            return SimpleNamespace(result=lambda: dict(seconds))

        def close(self):
            pass

    monkeypatch.setattr(
        bench_dask, "cluster", lambda n, limit: (SimpleNamespace(close=lambda: None), Client())
    )
    rows, p, c = 50_000, bench_dask.N_FEATURES, bench_dask.N_CLASSES
    out = bench_dask.section_kernels(SimpleNamespace(memory_limit="1GiB", block_rows=rows))
    assert out["gram64_gflops"] == pytest.approx(rows * p * (p + 1) / 0.2 / 1e9)
    # X @ M.T is a general product: 2 * rows * p * c flops
    assert out["product_gflops"] == pytest.approx(2 * rows * p * c / 0.4 / 1e9)


def test_nearest_mean_oos_tunes_the_reference_temperature_like_the_nmc_models():
    """The NMC models' temperature is chosen by val-vs-oos_val AUROC; LogisticRegression's
    largest probability gets the same choice (at T = 1 only, on CLINC150 its test AUROC
    read 0.9612 where the val-chosen temperature gives about 0.972)."""
    import bench_nearest_mean as bn
    import numpy as np
    from scipy.special import softmax
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    centers = 3.0 * rng.normal(size=(6, 8))

    def rows(n):
        y = rng.randint(0, 6, n)
        return centers[y] + rng.normal(size=(n, 8)), y

    X, y = rows(600)
    d = {"X_val": rows(300)[0], "X_test": rows(300)[0]}
    d["X_oos_val"] = 1.5 * rng.normal(size=(60, 8))
    d["X_oos_test"] = 1.5 * rng.normal(size=(60, 8))
    lr = LogisticRegression(C=100.0, max_iter=2000).fit(X, y)
    lda = LinearDiscriminantAnalysis().fit(X, y)
    acc = {
        "rows": [
            {"model": "LogisticRegression", "kind": "sklearn", "shown_params": {}},
            {"model": "LinearDiscriminantAnalysis", "kind": "sklearn", "shown_params": {}},
        ],
        "models": {"LogisticRegression": lr, "LinearDiscriminantAnalysis": lda},
    }
    out = bn.section_oos(d, acc)
    row = next(r for r in out["rows"] if r["model"] == "LogisticRegression")

    def val_auroc(T):
        f = lambda X: softmax(lr.decision_function(X) / T, axis=1).max(axis=1)
        return bn.auroc(f(d["X_val"]), f(d["X_oos_val"]))

    # on these data an over-confident probe separates better at a flatter temperature
    assert max(val_auroc(T) for T in (3.0, 10.0, 30.0, 100.0)) > val_auroc(1.0) + 0.005
    assert row["temperature"] is not None and row["temperature"] > 1.0
    assert row["val_auroc"] == pytest.approx(val_auroc(row["temperature"]))
    assert row["val_auroc"] > val_auroc(1.0)
    f = lambda X: softmax(lr.decision_function(X) / row["temperature"], axis=1).max(axis=1)
    assert row["test_auroc"] == pytest.approx(bn.auroc(f(d["X_test"]), f(d["X_oos_test"])))


def test_saved_encoder_results_label_their_mib_figures_mib():
    """bench_encoders measures memory in MiB (ru_maxrss / 1024, nbytes / 2**20) and
    its bound adds 1024 of them, 1 GiB; the saved results of the last run, written
    before the labels were corrected, still said MB and GB (docs/encoders.md,
    which quotes them, already said MiB). They read as the script writes them now."""
    import json

    import bench_encoders

    results = BENCH / "results"
    saved = json.loads((results / "encoders.json").read_text())
    report = (results / "encoders.md").read_text()
    assert report == bench_encoders.render(saved) + "\n"
    for text in (report, json.dumps(saved)):
        assert " MB" not in text and " GB" not in text
    m = saved["memory"]
    assert m["output_mb"] == 100_000 * 384 * 4 / 2**20  # (float32 embeddings, in MiB)
    bound = m["loaded_mb"] + 2 * m["output_mb"] + 1024
    assert saved["targets"][1]["measured"] == f"{m['peak_mb']:.0f} MiB (bound {bound:.0f} MiB)"
