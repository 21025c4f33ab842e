"""Streams of partial_fit on the torch estimators: temperature bookkeeping, weights,
margins and first batches of one row (each test fails on the code before its fix)."""

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from skproto import ProtoClassifier, RBFPrototypeClassifier


def _wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize(
    "Est, params",
    [
        (RBFPrototypeClassifier, {}),
        (RBFPrototypeClassifier, dict(loss="cbc")),
        (ProtoClassifier, {}),
        (ProtoClassifier, dict(head="linear")),
    ],
)
def test_partial_fit_at_a_given_temperature_records_no_fitted_one(Est, params):
    # a fit at temperature="auto", then set_params(temperature=2.0): the stream uses
    # 2.0, and history_ recorded the earlier fit's auto value (as the warm fit did
    # before 42d42d5)
    X, y = _wine()
    clf = Est(max_epochs=3, random_state=0, **params).fit(X, y)
    assert isinstance(clf.history_["temperature"], float)
    clf.set_params(temperature=2.0).partial_fit(X[:50], y[:50])
    assert clf.temperature_ == 2.0
    assert clf.history_["temperature"] is None
    fresh = Est(temperature=2.0, random_state=0, **params)
    fresh.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    assert fresh.history_["temperature"] is None


def test_stream_temperature_does_not_depend_on_a_common_scale_of_sample_weight():
    # the same stream, each row weighing 1, 3 or 0.3 (or no weights): the same
    # components, so the same fitted temperature (as fit); the stream's table
    # smoothed by one pseudo-row against the weights' sum after an arbitrary
    # power-of-two unit (0.1339 at 1, 0.1389 at 3, 0.1313 at 0.3)
    X, y = _wine()
    order = np.random.default_rng(0).permutation(len(X))
    temperatures, components = [], []
    for scale in (None, 1.0, 3.0, 0.3):
        clf = RBFPrototypeClassifier(random_state=0)
        for k, b in enumerate(np.array_split(order, 3)):
            w = None if scale is None else np.full(len(b), scale)
            clf.partial_fit(X[b], y[b], classes=[0, 1, 2] if k == 0 else None, sample_weight=w)
        temperatures.append(clf.temperature_)
        components.append(clf.prototypes_)
    for c in components[1:]:
        np.testing.assert_array_equal(c, components[0])
    assert temperatures == [temperatures[0]] * 4, temperatures


@pytest.mark.parametrize("loss", ["robust", "cbc"])
def test_partial_fit_trains_with_the_margin_set_since_the_fit(loss):
    # set_params(margin=5.0) after fit: partial_fit trained with the fitted margin and
    # kept it in margin_, while the model then recorded margin=5.0 as fitted
    X, y = _wine()
    clf = RBFPrototypeClassifier(loss=loss, max_epochs=3, random_state=0).fit(X, y)
    auto = clf.margin_
    clf.set_params(margin=5.0).partial_fit(X, y)
    assert clf.margin_ == 5.0
    # (_batch_loss reads margin_ when partial_fit builds the loss)
    clf.set_params(margin=None).partial_fit(X, y)
    assert clf.margin_ == auto


def test_a_stream_started_on_fewer_rows_than_omega_dim_learns_every_row_of_omega():
    # principal axes of a first batch of one row: one axis; the other rows of Omega
    # were 0, and a zero row has no gradient (||Omega z||^2): still exactly 0 after
    # 10 epochs on all of wine, a map of rank 1 for omega_dim=3
    X, y = _wine()
    clf = RBFPrototypeClassifier(omega_dim=3, random_state=0)
    clf.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
    for _ in range(10):
        clf.partial_fit(X, y)
    assert np.linalg.matrix_rank(clf.omega_) == 3
    assert (np.linalg.norm(clf.omega_, axis=1) > 0.5).all()


@pytest.mark.parametrize("loss", ["robust", "glvq"])
def test_a_stream_started_on_one_row_reads_the_same_in_any_units(loss):
    # one row has no distance to read: sigma, the margin and the components' step
    # were 1.0 in any units (X * 1e-3: margin_ 700 of its units, accuracy 0.61
    # against 0.97 on X itself)
    X, y = _wine()
    order = np.random.default_rng(0).permutation(len(X))
    fitted = []
    for unit in (1.0, 1e-3):
        clf = RBFPrototypeClassifier(loss=loss, random_state=0)
        clf.partial_fit(X[order[:1]] * unit, y[order[:1]], classes=[0, 1, 2])
        for b in np.array_split(order[1:], 6):
            clf.partial_fit(X[b] * unit, y[b])
        fitted.append(clf)
    a, b = fitted
    np.testing.assert_allclose(b.sigma_, a.sigma_ * 1e-3, rtol=1e-6)
    if loss == "robust":
        np.testing.assert_allclose(b.margin_, a.margin_ * 1e-3, rtol=1e-6)
    np.testing.assert_array_equal(b.predict(X * 1e-3), a.predict(X))
