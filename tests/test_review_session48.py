"""Review of NearestMeanClassifier's covariance_pooling and of checked_indicator."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from skproto import NearestMeanClassifier, calibration
from skproto._validation import checked_indicator

PER_CLASS = dict(metric="mahalanobis", covariance="per_class")


def _with_one_row_class():
    """Three classes of 30 rows (unit spread) and a class of one row at 10."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(30, 5)) + 4 * rng.normal(size=5) for _ in range(3)])
    X = np.vstack([X, np.full((1, 5), 10.0)])
    return X, np.r_[np.repeat([0, 1, 2], 30), 3], rng


@pytest.mark.parametrize("pool", [0.01, 0.5])
def test_a_one_row_class_keeps_the_pooled_covariance_under_pooling(pool):
    """Regression: a class of zero scatter (one row) takes the pooled covariance
    (covariance_'s docstring, the rule at r = 0); blended, it was r * Sigma, so
    its distances were 1 / r times the shared model's: at r = 0.01, 37 % of rows
    drawn about the one-row class (the spread of every class) went to others,
    none at r = 0 or r = 0.1."""
    X, y, rng = _with_one_row_class()
    shared = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    fecam = NearestMeanClassifier(**PER_CLASS).fit(X, y)
    clf = NearestMeanClassifier(**PER_CLASS, covariance_pooling=pool).fit(X, y)
    np.testing.assert_allclose(fecam.covariance_[3], shared.covariance_, rtol=1e-12)
    np.testing.assert_allclose(clf.covariance_[3], shared.covariance_, rtol=1e-12)
    assert clf.covariance_shrinkage_[3] == shared.covariance_shrinkage_
    Q = X[-1] + rng.normal(size=(200, 5))
    assert (fecam.predict(Q) == 3).all()
    assert (clf.predict(Q) == 3).all()
    # the classes with scatter are still blended
    want = (1 - pool) * fecam.covariance_[:3] + pool * shared.covariance_[None]
    np.testing.assert_allclose(clf.covariance_[:3], want, rtol=1e-12)


def test_an_old_pickle_keeps_its_pooling_through_set_params():
    """Regression: a model pickled before covariance_pooling existed got the
    attribute (0.0) but its fit's parameters had none, so a
    set_params(covariance_pooling=...) before the first use of one loaded without
    a derived model (pickled before background_map, or after a partial_fit) was
    read at predict time: scikit-learn's convention is that it waits for a refit."""
    rng = np.random.RandomState(0)
    X = np.vstack(
        [rng.normal(size=(30, 5)) * rng.uniform(0.3, 3, 5) + 2 * rng.normal(size=5) for _ in "abc"]
    )
    y = np.repeat([0, 1, 2], 30)
    clf = NearestMeanClassifier(**PER_CLASS).fit(X, y)
    expected = clf.decision_function(X)
    for keep_fit_params in (True, False):
        state = copy.deepcopy(clf.__getstate__())
        del state["covariance_pooling"]
        state["_fit_params"].pop("covariance_pooling")
        if not keep_fit_params:  # (older still: _base.__setstate__ records them)
            del state["_fit_params"]
        state["_model"] = None
        old = object.__new__(NearestMeanClassifier)
        old.__setstate__(state)
        old.set_params(covariance_pooling=0.9)
        np.testing.assert_array_equal(old.decision_function(X), expected)
        old.partial_fit(X[:3], y[:3])  # (a refit takes the new pooling)
        assert old._fit_params["covariance_pooling"] == 0.9


@pytest.mark.parametrize(
    ("T", "shown"),
    [
        (np.eye(3, dtype=complex), "values of dtype complex128"),
        (np.eye(3, dtype="timedelta64[ns]"), "values of dtype timedelta64[ns]"),
        (np.eye(3).astype("datetime64[ns]"), "np.datetime64('1970-01-01"),
        (np.array([["1", None], ["0", "1"]], dtype=object), "'1'"),
    ],
)
def test_the_indicator_refusal_names_an_offending_value(T, shown):
    """Regression: every value of a complex or duration indicator equals 0 or 1, and
    the message said "got None"; a datetime64 one's first value was shown as its
    integer, "got 0", a value the message allows."""
    with pytest.raises(ValueError, match="0/1 values; got ") as info:
        checked_indicator(T[:, :2])
    assert shown in str(info.value)
    assert not str(info.value).endswith(("got None.", "got 0."))
    if T.dtype != object:
        with pytest.raises(ValueError, match="0/1 values; got "):
            calibration.temperature_log_loss(np.zeros((3, 3)), T, None, 1.0)


def test_the_indicator_check_takes_what_it_took():
    """The fast paths (bool, integers, an object array's types read once) keep
    what the check accepts and refuses."""
    Y = np.array([[0, 1, 1], [1, 0, 0]])
    for ok in (Y.astype(bool), Y.astype(np.uint8), Y.astype(np.int64), Y.astype(object)):
        np.testing.assert_array_equal(checked_indicator(ok), Y)
    for bad, value in ((Y * 2, "2"), (Y - 1, "-1"), (np.array([[0, "1"]], dtype=object), "'1'")):
        with pytest.raises(ValueError, match=f"got {value}"):
            checked_indicator(bad)
    assert checked_indicator(np.zeros((0, 3), dtype=np.int8)).shape == (0, 3)
