"""Review of 5796e99 (training that moves no parameter at a nonzero loss warns):
false alarms and a false message it gave. Each test failed on 5796e99."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skproto import ProtoClassifier, RBFPrototypeClassifier


def _iris():
    X, y = load_iris(return_X_y=True)
    rows = np.random.RandomState(0).permutation(len(y))
    return StandardScaler().fit_transform(X)[rows], y[rows]


@pytest.mark.parametrize("estimator", [RBFPrototypeClassifier, ProtoClassifier])
def test_a_learning_rate_too_small_to_move_a_parameter_is_named_as_such(estimator):
    """At learning_rate=1e-12 every gradient is nonzero but every step rounds away in
    float32: the warning read "every gradient was 0" and blamed the scale (sigma,
    rbf_width, temperature), at its 'auto' value."""
    X, y = _iris()
    kw = {"head": "linear", "projection": None} if estimator is ProtoClassifier else {}
    clf = estimator(learning_rate=1e-12, max_epochs=2, random_state=0, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X, y)
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert messages, "no ConvergenceWarning"
    assert "every gradient was 0" not in messages[0]
    assert "learning_rate=1e-12, was too small to change a parameter" in messages[0]


def test_a_class_arriving_in_a_batch_of_two_rows_trains_silently_at_the_defaults():
    """A stream of 2 iris rows a call at default parameters warned at its second
    call, which brings a declared class: only the new class's components train,
    started on its one row, which sits on them, far from the other row; no
    gradient reaches them, and the loss is the frozen classes'. Defaults are
    silent."""
    X, y = _iris()
    clf = RBFPrototypeClassifier(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X[:2], y[:2], classes=[0, 1, 2])
        assert 0 in y[2:4] and 0 not in y[:2]  # (rows of classes 2, 1, then 0, 2)
        clf.partial_fit(X[2:4], y[2:4])
    assert clf.n_iter_ == 2


@pytest.mark.parametrize("declared", [True, False])
def test_new_classes_without_a_map_train_nothing_and_do_not_warn(declared):
    """The mixture head's partial_fit bringing a class to a model without a map
    (projection=None) trains nothing by design (the prototypes are the cases, the
    head stays as fitted): train got no parameter, and warned that "every
    gradient was 0", the model "still where it started"."""
    X, y = _iris()
    clf = ProtoClassifier(projection=None, random_state=0)
    old = y < 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X[old], y[old], classes=[0, 1, 2] if declared else None)
        clf.partial_fit(X[~old][:10], y[~old][:10])
    assert clf.predict(X[~old][:10]).tolist().count(2) >= 5


def test_a_stall_at_a_minimum_after_training_does_not_warn():
    """The robust loss of 4 separated rows falls to 0.0497, where its gradients all
    but vanish: from epoch 209 no step changes a parameter. That warned that
    "every gradient was 0" (none was) and that the model was "still where it
    started" (it had trained 208 epochs); it is at a minimum, not unconverged."""
    X = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    y = np.array([0, 0, 1, 1])
    clf = RBFPrototypeClassifier(
        max_epochs=230, early_stopping=False, n_iter_no_change=1000, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert len(clf.history_["loss"]) == 230
    assert clf.history_["loss"][-1] == pytest.approx(clf.history_["loss"][-20], rel=1e-6)
    assert clf.history_["loss"][-1] > 0
    assert clf.score(X, y) == 1.0


def test_glvq_at_its_least_loss_does_not_warn():
    """GLVQ's loss is at least sigmoid(-2) = 0.1192 (every row on a component of its
    class), not 0: a stream's first call on one row, on its own component, is at
    the minimum, and warned that every gradient was 0 "at a loss of 0.1192",
    blaming sigma (which GLVQ does not read)."""
    X, y = _iris()
    clf = RBFPrototypeClassifier(loss="glvq", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
        clf.partial_fit(X[1:40], y[1:40])
    assert clf.score(X, y) > 0.6
