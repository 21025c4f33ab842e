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
