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
