"""Review of the uint64/int64 labels, the RBF detection check and the label displays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier
from skproto._validation import joint_labels
from skproto.explain import ExplanationDisplay, make_report
from skproto.explain._explanation import plain

STREAMS = {
    "nmc": lambda: NearestMeanClassifier(),
    "proto": lambda: ProtoClassifier(max_epochs=2, random_state=0),
    "rbf": lambda: RBFPrototypeClassifier(max_epochs=2, random_state=0),
}


def _blobs(n_classes=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(20 * n_classes, 3)) + np.repeat(np.arange(n_classes), 20)[:, None] * 5


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32])
def test_narrow_signed_classes_and_a_uint64_batch_join_in_int64(name, dtype):
    """Regression: joint_labels tried only the two dtypes, so int8 classes -1, 2 and
    a uint64 label 300 (neither holds the other's labels) stayed float64 for numpy:
    classes_ became [-1.0, 2.0, 300.0] (predict returned floats), and a uint64 label
    of 2**62 + 1 was refused though int64 holds every label."""
    X = _blobs()
    for big in (300 if dtype == np.int8 else 2**40, 2**62 + 1):
        clf = STREAMS[name]().partial_fit(X[:40], np.repeat(np.array([-1, 2], dtype), 20))
        clf.partial_fit(X[40:], np.full(20, big, dtype=np.uint64))
        assert clf.classes_.dtype == np.int64
        np.testing.assert_array_equal(clf.classes_, [-1, 2, big])
        assert clf.predict(X[:1]).dtype == np.int64
        assert clf.predict_proba(X).shape == (60, 3)


def test_merge_of_narrow_signed_and_uint64_classes_stays_integer():
    X = _blobs()
    a = NearestMeanClassifier().fit(X[:40], np.repeat(np.array([-1, 2], np.int8), 20))
    b = NearestMeanClassifier().fit(X[20:], np.repeat(np.array([2, 300], np.uint64), 20))
    merged = a.merge(b)
    assert merged.classes_.dtype == np.int64
    np.testing.assert_array_equal(merged.classes_, [-1, 2, 300])
    known, labels = joint_labels(np.array([-1], np.int8), np.array([300], np.uint64))
    assert known.dtype == labels.dtype == np.int64


@pytest.mark.parametrize("unit", ["ps", "fs", "as"])
def test_durations_finer_than_nanoseconds_are_shown(unit):
    """Regression: plain() cast every duration to days first, and numpy cannot for
    picoseconds and finer ("Integer overflow while computing the conversion factor
    between NumPy datetime units D and ps"): str() of an explanation, its plot and
    the report of a model of such classes raised OverflowError."""
    assert plain(np.timedelta64(1000, unit)) == str(np.timedelta64(1000, unit))
    X = _blobs()
    y = np.repeat(np.array([1000, 2000, 3000], dtype=f"timedelta64[{unit}]"), 20)
    clf = NearestMeanClassifier().fit(X, y)
    assert "1000" in str(clf.explain(X[:1], 1))
    assert "<html" in make_report(clf, X[:2], y[:2]).lower()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ExplanationDisplay.from_estimator(clf, X, sample=0)
    plt.close("all")


def _far_classes(n_classes):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    keep = y < n_classes
    X, y = X[keep], y[keep]
    return X + 1000.0 * y[:, None], y


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("reasoning", ["positive", "positive_negative"])
def test_a_tiny_sigma_is_refused_with_every_class_far_from_the_others(n_classes, reasoning):
    """Regression: with every class far from the others (each class's unit, and so
    its tolerance, is the distance between classes) every row lay "on" its
    component and _check_detections checked nothing: sigma=1e-20 went to
    "Training diverged", and the positive-negative head trained at 1e-3 to the
    accuracy of a constant, silently. (ea39926 caught one far class of three.)"""
    X, y = _far_classes(n_classes)
    clf = RBFPrototypeClassifier(
        loss="cbc", reasoning=reasoning, sigma=1e-20, max_epochs=2, random_state=0
    )
    with pytest.raises(ValueError, match=r"sigma=1e-20 is too small for these rows: every"):
        clf.fit(X, y)
    clf.set_params(sigma=1e-3)
    if reasoning == "positive_negative":
        with pytest.raises(ValueError, match="they lie a median"):  # (the second check)
            clf.fit(X, y)
    else:  # (the positive head keeps the rows apart: it trained, and still does)
        assert clf.fit(X, y).score(X, y) > 0.9
    clf.set_params(sigma=1.0)  # a sigma of the classes' spread trains
    assert clf.fit(X, y).score(X, y) > 0.9
