"""Random state (an audit of "deterministic given random_state"): reading an
estimator's members (``inspect.getmembers``, which scikit-learn's HTML repr of a
fitted estimator runs) draws no random number, so displaying a model neither
consumes numpy's global RandomState nor advances a shared RandomState instance,
and the next fit from that instance is the one it would have been. The
ProtoClassifier tests failed before the fix (its noise seed was a property that
drew from ``random_state``)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier

RNG = np.random.RandomState(0)
X = np.vstack([RNG.randn(12, 3), RNG.randn(12, 3) + 3.0])
y = np.repeat([0, 1], 12)

MAKERS = {
    "nearest_mean": lambda rs: NearestMeanClassifier(),
    "proto": lambda rs: ProtoClassifier(max_epochs=1, n_prototypes_per_class=1, random_state=rs),
    "rbf": lambda rs: RBFPrototypeClassifier(max_epochs=1, n_components=2, random_state=rs),
}


def _global_state():
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (under test)
    return keys.tobytes(), pos, has_gauss, cached


@pytest.mark.parametrize("name", list(MAKERS))
def test_introspection_draws_nothing_from_the_global_random_state(name):
    for est in (MAKERS[name](None), MAKERS[name](None).fit(X, y)):
        before = _global_state()
        inspect.getmembers(est)
        est._repr_html_()
        assert _global_state() == before


@pytest.mark.parametrize("name", ["proto", "rbf"])
def test_displaying_a_model_leaves_a_shared_random_state_as_it_was(name):
    make = MAKERS[name]
    plain = np.random.RandomState(0)
    make(plain).fit(X, y)
    expected = make(plain).fit(X, y).predict_proba(X)

    shown = np.random.RandomState(0)
    make(shown).fit(X, y)._repr_html_()
    np.testing.assert_array_equal(make(shown).fit(X, y).predict_proba(X), expected)
