"""Models pickled by earlier versions load into fitted models that keep their promises.

Each old state is built by hand from a model fitted now: the attribute the
earlier code did not set is removed before pickling, so no old commit is needed.
"""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _as_pickled_without(model, *names):
    """``model`` pickled and loaded as code that did not set ``names`` wrote it."""
    old = pickle.loads(pickle.dumps(model))
    for name in names:
        del old.__dict__[name]
    return pickle.loads(pickle.dumps(old))


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_nearest_mean_pickled_before_fit_params_predicts_from_its_fit(iris, metric):
    # pickled before fitted models kept their fit's parameters (1319d23): set_params
    # without a refit moved every probability (metric read at predict time)
    X, y = iris
    loaded = _as_pickled_without(NearestMeanClassifier(metric).fit(X, y), "_fit_params")
    expected = loaded.predict_proba(X)
    loaded.set_params(metric="cosine")
    assert_array_equal(loaded.predict_proba(X), expected)
    assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict_proba(X), expected)


def test_rbf_pickled_before_fit_params_keeps_its_network(iris):
    # set_params(loss="cbc") on such a model changed explain and made its pickle fail
    # to load (KeyError 'head.logits'); partial_fit did not refuse the new structure
    X, y = iris
    est = RBFPrototypeClassifier(max_epochs=2, random_state=0).fit(X, y)
    loaded = _as_pickled_without(est, "_fit_params")
    proba, margin = loaded.predict_proba(X), loaded.explain(X[:5]).margin
    loaded.set_params(loss="cbc")
    assert_array_equal(loaded.explain(X[:5]).margin, margin)
    assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict_proba(X), proba)
    with pytest.raises(ValueError, match="loss changed since it was fitted"):
        loaded.partial_fit(X[:20], y[:20])


def test_rbf_pickled_before_its_class_moments_keeps_streaming(iris):
    # the nearest head's stand-ins of earlier classes come from class moments kept
    # since ee3806f: every partial_fit of a model pickled before raised
    # AttributeError '_moments'; it streams, new classes trained without stand-ins
    # as then, and the earlier components stay where they were
    X, y = iris
    est = RBFPrototypeClassifier(max_epochs=5, random_state=0).fit(X[y < 2], y[y < 2])
    loaded = _as_pickled_without(est, "_moments")
    before = loaded.prototypes_.copy()
    loaded.partial_fit(X[y == 2], y[y == 2])
    assert loaded.classes_.tolist() == [0, 1, 2]
    assert_array_equal(loaded.prototypes_[: len(before)], before)
    assert loaded.score(X[y == 2], y[y == 2]) > 0.8
    loaded.partial_fit(X, y)
    assert np.isfinite(loaded.predict_proba(X)).all()
    assert loaded.score(X, y) > 0.8


def test_proto_pickled_before_fit_params_keeps_its_network(iris):
    # set_params(similarity="log") on such a model made its pickle fail to load
    # (RuntimeError: missing keys in state_dict), and partial_fit with it
    X, y = iris
    est = ProtoClassifier(n_prototypes_per_class=2, max_epochs=2, random_state=0).fit(X, y)
    loaded = _as_pickled_without(est, "_fit_params")
    proba = loaded.predict_proba(X)
    loaded.set_params(similarity="log")
    assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict_proba(X), proba)
    with pytest.raises(ValueError, match="similarity changed since it was fitted"):
        loaded.partial_fit(X[:20], y[:20])


def test_merged_model_pickled_before_prototype_cases_has_them(iris):
    # a merge pickled before 0bbb6df had no prototype_cases_ (AttributeError), which
    # every fitted model documents
    X, y = iris
    a = NearestMeanClassifier("mahalanobis").fit(X[::2], y[::2])
    b = NearestMeanClassifier("mahalanobis").fit(X[1::2], y[1::2])
    merged = a.merge(b)
    expected = merged.predict_proba(X)
    loaded = _as_pickled_without(merged, "prototype_cases_")
    assert loaded.prototype_cases_ is None
    assert_array_equal(loaded.predict_proba(X), expected)
    assert np.isfinite(loaded.explain(X[:3]).margin).all()


def test_unfitted_estimator_unpickles_unchanged():
    est = pickle.loads(pickle.dumps(NearestMeanClassifier()))
    assert not hasattr(est, "_fit_params") and not hasattr(est, "prototype_cases_")


def test_linear_proto_pickled_before_it_kept_its_classes_without_rows_scores_every_class(iris):
    # the linear head keeps which classes have rows (head.possible, in the state); a
    # model pickled before it scored every class with its column of W, and loads so
    X, y = iris
    est = ProtoClassifier(head="linear", max_epochs=2, random_state=0)
    for _ in range(3):
        est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert_array_equal(est.predict_proba(X)[:, 2], 0.0)
    old = pickle.loads(pickle.dumps(est))
    del old._state["head.possible"]
    old.last_layer_ = old._state["head.weight"]  # (as the earlier code set it)
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded._impossible_classes() is None
    proba = loaded.predict_proba(X)
    assert np.all(proba > 0)
    ex = loaded.explain(X)
    np.testing.assert_allclose(ex.scores, loaded.decision_function(X), rtol=1e-9, atol=1e-9)
    loaded.partial_fit(X[:50], y[:50])
    assert np.all(loaded.predict_proba(X) > 0)


def test_proto_pickled_before_it_counted_its_rows_refuses_to_stream_by_name(iris):
    # a mixture model pickled before afae896 has no row count: every partial_fit
    # raised AttributeError '_n_seen'; new prototypes' row indices cannot be placed
    X, y = iris
    est = ProtoClassifier(n_prototypes_per_class=2, max_epochs=2, random_state=0).fit(X, y)
    loaded = _as_pickled_without(est, "_n_seen")
    assert_array_equal(loaded.predict(X), est.predict(X))
    with pytest.raises(ValueError, match="saved by an earlier version of skproto"):
        loaded.partial_fit(X[:20], y[:20])
