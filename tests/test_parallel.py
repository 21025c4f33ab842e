"""Lazy prediction on dask arrays (skproto.parallel)."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier  # noqa: E402
from skproto.parallel import ParallelPostFit  # noqa: E402

METHODS = [
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score_samples",
    "transform",
]


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    y = np.array(["a", "b", "c"])[rng.randint(0, 3, 150)]
    X = rng.normal(size=(150, 4)) + 2.0 * np.searchsorted(["a", "b", "c"], y)[:, None]
    return X, y


@pytest.mark.parametrize(
    "make",
    [
        lambda: NearestMeanClassifier(metric="mahalanobis"),
        lambda: ProtoClassifier(n_prototypes_per_class=2, max_epochs=3, random_state=0),
        lambda: RBFPrototypeClassifier(max_epochs=3, random_state=0),
    ],
    ids=["nearest_mean", "proto", "rbf"],
)
def test_lazy_methods_equal_in_memory(make, data):
    X, y = data
    model = ParallelPostFit(make()).fit(da.from_array(X, chunks=(37, 2)), da.from_array(y, 40))
    Xd = da.from_array(X, chunks=(37, 2))  # rows split unevenly, columns split too
    for method in METHODS:
        lazy = getattr(model, method)(Xd)
        assert isinstance(lazy, da.Array), method
        expected = getattr(model.estimator_, method)(X)
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype, method
        assert lazy.chunks[0] == Xd.chunks[0], method
        got = lazy.compute(scheduler="threads")
        if expected.dtype.kind in "fc":
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=method)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=method)
        np.testing.assert_array_equal(getattr(model, method)(X), expected)  # numpy in, numpy out
    ex = model.explain(Xd, rows=[3, 7], n_prototypes=2)
    np.testing.assert_allclose(ex.scores, model.estimator_.explain(X[[3, 7]], 2).scores)
    assert model.score(Xd, da.from_array(y, 50)) == model.estimator_.score(X, y)


def test_binary_decision_function_is_one_column(data):
    X, y = data
    keep = y != "c"
    model = ParallelPostFit(NearestMeanClassifier()).fit(X[keep], y[keep])
    lazy = model.decision_function(da.from_array(X, chunks=50))
    assert lazy.ndim == 1
    np.testing.assert_allclose(lazy.compute(), model.estimator_.decision_function(X))


def test_a_fitted_estimator_is_used_as_is(data):
    X, y = data
    fitted = NearestMeanClassifier().fit(X, y)
    model = ParallelPostFit(fitted)
    np.testing.assert_array_equal(model.predict(da.from_array(X, 40)).compute(), fitted.predict(X))
    with pytest.raises(ValueError, match="X must be a 2-D dask array"):
        model.predict(da.from_array(X[:, 0], 40))


# ----------------------------------------------------------------- distributed fit
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit="1GiB",
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


CONFIGS = [
    {},
    {"metric": "cosine"},
    {"metric": "mahalanobis"},
    {"metric": "mahalanobis", "covariance": "per_class"},
    {"metric": "mahalanobis", "covariance_shrinkage": "oas"},
    {"metric": "mahalanobis", "covariance": "per_class", "temperature": 1.0},
]


def _assert_same_fit(got, ref):
    np.testing.assert_array_equal(got.classes_, ref.classes_)
    np.testing.assert_allclose(got._stats.count, ref._stats.count, rtol=1e-12)
    np.testing.assert_allclose(got.prototypes_, ref.prototypes_, rtol=1e-10, atol=1e-12)
    if ref._stats.scatter is not None:
        scale = np.abs(ref._stats.scatter).max()
        np.testing.assert_allclose(got._stats.scatter, ref._stats.scatter, atol=1e-10 * scale)
    np.testing.assert_allclose(got.temperature_, ref.temperature_, rtol=1e-10)


@pytest.mark.parametrize(
    "params", CONFIGS, ids=lambda p: ",".join(map(str, p.values())) or "default"
)
def test_distributed_fit_equals_in_memory_fit(client, params):
    from skproto.parallel import fit_nearest_mean

    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 5)) + rng.randint(0, 3, (400, 1))
    y = np.array([10, 20, 40, 80])[np.argmax(X[:, :4], axis=1)]  # non-contiguous labels
    w = rng.uniform(0.0, 2.0, 400)
    w[::7] = 0.0
    ref = NearestMeanClassifier(**params).fit(X, y, sample_weight=w)
    Xd = da.from_array(X, chunks=(53, 2))
    got = fit_nearest_mean(
        NearestMeanClassifier(**params), Xd, da.from_array(y, 60), da.from_array(w, 100)
    )
    _assert_same_fit(got, ref)
    np.testing.assert_allclose(got.predict_proba(X), ref.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_distributed_fit_chunk_edge_cases(client):
    from skproto.parallel import ParallelPostFit, fit_nearest_mean

    rng = np.random.RandomState(1)
    y = np.array(["a", "b", "c"])[np.sort(rng.randint(0, 3, 45))]  # sorted: class-pure chunks
    X = rng.normal(size=(45, 3)) + (y == "b")[:, None] * 2.0
    params = {"metric": "mahalanobis", "covariance": "per_class"}
    ref = NearestMeanClassifier(**params).fit(X, y)
    for chunks in (1, 7, 45):  # one-row chunks; chunks with one class or no rows of some
        got = fit_nearest_mean(NearestMeanClassifier(**params), da.from_array(X, chunks), y)
        _assert_same_fit(got, ref)
    unknown = da.from_array(X, chunks=10)
    unknown = unknown[unknown[:, 0] > -np.inf]  # same rows, unknown chunk sizes
    assert np.isnan(unknown.chunks[0][0])
    got = fit_nearest_mean(NearestMeanClassifier(**params), unknown, y)
    _assert_same_fit(got, ref)
    model = ParallelPostFit(NearestMeanClassifier(**params)).fit(da.from_array(X, 9), y)
    _assert_same_fit(model.estimator_, ref)
    lazy = model.predict_proba(da.from_array(X, 9))
    np.testing.assert_allclose(lazy.compute(), ref.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_distributed_fit_errors(client):
    from skproto.parallel import fit_nearest_mean

    X = da.from_array(np.random.RandomState(0).normal(size=(20, 2)), 5)
    y = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="fits a NearestMeanClassifier, got ProtoClassifier"):
        fit_nearest_mean(ProtoClassifier(), X, y)
    with pytest.raises(ValueError, match="y has 19 rows for 20 samples."):
        fit_nearest_mean(NearestMeanClassifier(), X, y[:19])
    bad = np.random.RandomState(0).normal(size=(20, 2))
    bad[13, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_nearest_mean(NearestMeanClassifier(), da.from_array(bad, 5), y)
    with pytest.raises(
        ValueError, match="needs at least two classes|at least 2 classes|two classes"
    ):
        fit_nearest_mean(NearestMeanClassifier(), X, np.zeros(20))


def _die_once(block, marker):
    """Identity on a block, except that the first call kills its worker process."""
    import os
    from pathlib import Path

    if block.size and not Path(marker).exists():  # (map_blocks probes with an empty block)
        Path(marker).write_text("killed")
        os._exit(1)  # the worker dies mid-fit; its nanny starts a new one
    return block


def test_distributed_fit_survives_a_killed_worker(client, tmp_path):
    from skproto.parallel import fit_nearest_mean

    rng = np.random.RandomState(2)
    X = rng.normal(size=(300, 4)) + rng.randint(0, 3, (300, 1))
    y = np.argmax(X[:, :3], axis=1)
    ref = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    marker = str(tmp_path / "killed")
    Xd = da.from_array(X, chunks=50).map_blocks(_die_once, marker, dtype=X.dtype, meta=X[:0])
    got = fit_nearest_mean(NearestMeanClassifier(metric="mahalanobis"), Xd, y)
    assert (tmp_path / "killed").exists()  # a worker did die during the fit
    _assert_same_fit(got, ref)  # the task was retried: the result is still exact


def test_grid_search_on_the_dask_joblib_backend(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    rng = np.random.RandomState(3)
    X = rng.normal(size=(120, 4)) + rng.randint(0, 3, (120, 1))
    y = np.argmax(X[:, :3], axis=1)
    grid = {"metric": ["euclidean", "cosine", "mahalanobis"]}
    local = GridSearchCV(NearestMeanClassifier(), grid, cv=3).fit(X, y)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(NearestMeanClassifier(), grid, cv=3, n_jobs=-1).fit(X, y)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
