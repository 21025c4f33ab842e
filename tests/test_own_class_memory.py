"""Own-class heads keep each prototype's class, not an n_prototypes x n_classes matrix.

With many classes, the 0/1 class connections of an own-class head were kept
densely: ``ProtoClassifier``'s ``last_layer_`` (float64, built through an
n_classes x n_classes identity), ``RBFPrototypeClassifier``'s
``reasoning_positive_`` and ``reasoning_negative_`` (float64) and its network's
membership buffer (float32, in the pickled state too). At 1,500 classes of 3
rows the pickles weighed 87 MB (ProtoClassifier), 155 MB (RBF) and 52 MB (glvq),
about 1 MB and less without them; at 10,000 classes of 6 rows an RBF fit
peaked at 9.7 GB (1.0 GB against 2.0 GB at 4,000 classes). The attributes are now
built when read, from each prototype's class, with the same values.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier
from skproto.metrics import global_size

_MODELS = {
    "proto": lambda: ProtoClassifier(max_epochs=1, random_state=0),
    "rbf": lambda: RBFPrototypeClassifier(max_epochs=1, random_state=0),
    "glvq": lambda: RBFPrototypeClassifier(loss="glvq", max_epochs=1, random_state=0),
}
_ATTRIBUTES = {
    "proto": ("last_layer_",),
    "rbf": ("reasoning_positive_", "reasoning_negative_"),
    "glvq": ("reasoning_positive_", "reasoning_negative_"),
}


def _many_classes(n_classes: int, per_class: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    X = 3.0 * rng.normal(size=(n_classes, 4))[y] + rng.normal(size=(len(y), 4))
    return X, np.array([f"c{k:04d}" for k in y])


def _largest_array(obj) -> int:
    """Entries of the largest array held in ``obj``'s attributes (and dicts of them)."""
    values = list(vars(obj).values())
    sizes = [0]
    while values:
        v = values.pop()
        if isinstance(v, dict):
            values.extend(v.values())
        elif hasattr(v, "shape") and hasattr(v, "dtype"):
            sizes.append(int(np.prod(v.shape)))
    return max(sizes)


@pytest.fixture(scope="module")
def fitted():
    X, y = _many_classes(600)
    return X, y, {name: make().fit(X, y) for name, make in _MODELS.items()}


@pytest.mark.parametrize("name", list(_MODELS))
def test_own_class_models_keep_no_prototype_by_class_array(fitted, name):
    X, y, models = fitted
    clf = models[name]
    n_prototypes, n_classes = len(clf.prototypes_), len(clf.classes_)
    assert n_prototypes >= n_classes == 600
    assert _largest_array(clf) < n_prototypes * n_classes / 10
    assert len(pickle.dumps(clf)) < 4 * 2**20  # 15-52 MB when the matrices were kept
    loaded = pickle.loads(pickle.dumps(clf))
    assert _largest_array(loaded) < n_prototypes * n_classes / 10
    np.testing.assert_array_equal(loaded.predict_proba(X[:50]), clf.predict_proba(X[:50]))


@pytest.mark.parametrize("name", list(_MODELS))
def test_the_class_connections_are_built_when_read(fitted, name):
    """Each prototype's 0/1 class, float64, in the user's labels' order; r- is 0."""
    X, y, models = fitted
    clf = models[name]
    expected = (clf.prototype_labels_[:, None] == clf.classes_[None, :]).astype(np.float64)
    first = getattr(clf, _ATTRIBUTES[name][0])
    assert first.dtype == np.float64
    np.testing.assert_array_equal(first, expected)
    if name != "proto":
        negative = clf.reasoning_negative_
        assert negative.dtype == np.float64 and negative.shape == expected.shape
        assert not negative.any()
    for attribute in _ATTRIBUTES[name]:
        assert attribute not in vars(clf)  # not kept
        assert hasattr(clf, attribute)
        assert not hasattr(_MODELS[name](), attribute)  # an unfitted model has none
    assert global_size(clf) == len(clf.prototypes_)


def test_a_refit_with_a_dense_head_keeps_its_matrices_and_back_again():
    """A model refitted from an own-class head to a dense one keeps the dense head's
    learned weights; refitted back, it forgets them (they are derived again)."""
    X, y = _many_classes(5, per_class=12)
    clf = RBFPrototypeClassifier(loss="cbc", max_epochs=2, random_state=0).fit(X, y)
    learned = clf.reasoning_positive_
    assert "reasoning_positive_" in vars(clf)
    assert not np.isin(learned, [0.0, 1.0]).all()  # learned weights, not a membership
    clf.set_params(loss="robust").fit(X, y)
    assert "reasoning_positive_" not in vars(clf)
    np.testing.assert_array_equal(
        clf.reasoning_positive_,
        (clf.prototype_labels_[:, None] == clf.classes_[None, :]).astype(float),
    )
    proto = ProtoClassifier(head="linear", max_epochs=2, random_state=0).fit(X, y)
    assert "last_layer_" in vars(proto)
    proto.set_params(head="mixture").fit(X, y)
    assert "last_layer_" not in vars(proto)
    assert set(np.unique(proto.last_layer_)) == {0.0, 1.0}


@pytest.mark.parametrize("name", ["proto", "rbf"])
def test_models_pickled_with_the_matrices_load_without_them(name):
    """A model pickled when the matrices were kept (the attributes, and RBF's
    membership in its state) loads without them and predicts as before."""
    X, y = _many_classes(8, per_class=10)
    clf = _MODELS[name]().fit(X, y)
    expected = clf.predict_proba(X)
    old = pickle.loads(pickle.dumps(clf))
    for attribute in _ATTRIBUTES[name]:
        old.__dict__[attribute] = getattr(clf, attribute)
    if name == "rbf":
        old._state["head.membership"] = clf.reasoning_positive_.astype(np.float32)
    loaded = pickle.loads(pickle.dumps(old))
    for attribute in _ATTRIBUTES[name]:
        assert attribute not in vars(loaded)
    assert "head.membership" not in loaded._state
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    loaded.partial_fit(X[:20], y[:20])  # (RBF's stream reads its state's head)
    assert np.isfinite(loaded.predict_proba(X)).all()


def test_nearest_mean_explains_without_an_identity_of_its_classes(monkeypatch):
    """explain read the per-class term from the head (W, b) and built W, an
    n_classes x n_classes identity, at every call (800 MB at 10,000 classes)."""
    X, y = _many_classes(50, per_class=4)
    clf = NearestMeanClassifier().fit(X, y)
    expected = clf.explain(X[:3]).scores

    def refuse():
        raise AssertionError("explain built the head's identity")

    monkeypatch.setattr(clf, "_head", refuse)
    np.testing.assert_array_equal(clf.explain(X[:3]).scores, expected)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # (the linear refit)
def test_the_mixture_head_trains_without_a_prototype_by_class_one_hot(monkeypatch):
    """The training loss built one_hot(prototypes' classes, n_classes) at every fit,
    for the linear head's L1 only (2 GB of float32 at 10,000 classes of 5)."""
    import torch

    X, y = _many_classes(40, per_class=6)
    shapes = []
    one_hot = torch.nn.functional.one_hot

    def spy(t, *args, **kwargs):
        out = one_hot(t, *args, **kwargs)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch.nn.functional, "one_hot", spy)
    clf = ProtoClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert (len(clf.prototypes_), 40) not in shapes
    linear = ProtoClassifier(head="linear", max_epochs=1, random_state=0).fit(X, y)
    assert (len(linear.prototypes_), 40) in shapes  # (its L1 reads it: W is as large)
