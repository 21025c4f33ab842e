"""Time-zone-aware dates (a review of the report's refusal of them): the estimators'
own ``fit``, ``partial_fit`` and ``score`` and a ``class_weight`` key refuse them by
name, as the report, the gallery and ``explain``'s target do; and the embedding
map names a class whose points hold a NaN at the points that are drawn. Each test
failed before its fix."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from skproto import NearestMeanClassifier, RBFPrototypeClassifier
from skproto._validation import check_class_weight_labels, class_weights

pd = pytest.importorskip("pandas")

X = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.0, 6.0]] * 3)
DAYS = np.array(["2022-03-04", "2022-03-04", "2022-03-05", "2022-03-05"] * 3, "datetime64[D]")
UTC = datetime.timezone.utc
AWARE = {
    "Timestamp": lambda: pd.Series(pd.to_datetime(DAYS).tz_localize("UTC")),
    "datetime": lambda: [datetime.datetime(*d.item().timetuple()[:3], tzinfo=UTC) for d in DAYS],
    "one among naive": lambda: (
        [pd.Timestamp(d) for d in DAYS[:-1]] + [pd.Timestamp(DAYS[-1], tz="Europe/Paris")]
    ),
}
REFUSED = r"^y contains the time-zone-aware timestamp .*naive dates .*Make the dates of y naive"


@pytest.mark.parametrize("kind", list(AWARE))
def test_fit_and_partial_fit_refuse_aware_dates_by_name(kind):
    # fit refused them with scikit-learn's "Unknown label type: unknown. Maybe you
    # are trying to fit a classifier, which expects discrete classes on a regression
    # target with continuous values" (the report's docs say "as fit refuses them")
    aware = AWARE[kind]()
    with pytest.raises(ValueError, match=REFUSED):
        NearestMeanClassifier().fit(X, aware)
    with pytest.raises(ValueError, match=REFUSED):
        NearestMeanClassifier().partial_fit(X, aware)
    with pytest.raises(ValueError, match=REFUSED):  # a later call of a stream
        NearestMeanClassifier().partial_fit(X, DAYS).partial_fit(X, aware)
    with pytest.raises(ValueError, match=REFUSED):  # the torch estimators' fit
        RBFPrototypeClassifier(max_epochs=1, random_state=0).fit(X, aware)
    # partial_fit's classes: by their own name (was "classes are not class labels:
    # Unknown label type: unknown")
    with pytest.raises(ValueError, match=r"^classes contains the time-zone-aware timestamp"):
        NearestMeanClassifier().partial_fit(X, DAYS, classes=list(aware)[-3:])


def test_labels_that_are_no_dates_keep_their_own_refusal():
    # the time-zone check runs only where scikit-learn's check failed
    with pytest.raises(ValueError, match="^Unknown label type: unknown"):
        NearestMeanClassifier().fit(X, np.array([object()] * len(X)))
    with pytest.raises(ValueError, match="^Unknown label type: continuous"):
        NearestMeanClassifier().fit(X, np.linspace(0.1, 0.9, len(X)))
    with pytest.raises(ValueError, match="^classes are not class labels: Unknown label type"):
        NearestMeanClassifier().partial_fit(X, [0, 1] * 6, classes=[0.5, 1.5])


@pytest.mark.parametrize("kind", list(AWARE))
def test_score_refuses_aware_dates_by_name(kind):
    # score failed with scikit-learn's "Classification metrics can't handle a mix of
    # unknown and binary targets"
    clf = NearestMeanClassifier().fit(X, DAYS)
    with pytest.raises(ValueError, match=r"^y contains the time-zone-aware timestamp"):
        clf.score(X, AWARE[kind]())


def test_score_reads_naive_timestamps_and_dates_as_the_report_does():
    # a y that make_report scores (Timestamps against datetime64 classes) failed in
    # score with "a mix of unknown and binary targets"
    clf = NearestMeanClassifier().fit(X, DAYS.astype("datetime64[ns]"))
    assert clf.score(X, [pd.Timestamp(d) for d in DAYS]) == 1.0
    assert clf.score(X, pd.Series(pd.to_datetime(DAYS)).astype(object)) == 1.0
    assert clf.score(X, DAYS) == 1.0  # (datetime64 itself, and labels of other kinds)
    strings = NearestMeanClassifier().fit(X, np.array(["a", "a", "b", "b"] * 3))
    assert strings.score(X, ["a", "a", "b", "b"] * 3) == 1.0


def test_parallel_post_fit_scores_dates_as_its_estimator_does():
    # ParallelPostFit.score ("as estimator_.score") failed on both with "a mix of
    # unknown and binary targets"
    pytest.importorskip("dask")
    from skproto.parallel import ParallelPostFit

    wrapped = ParallelPostFit(NearestMeanClassifier()).fit(X, DAYS)
    assert wrapped.score(X, [pd.Timestamp(d) for d in DAYS]) == 1.0
    with pytest.raises(ValueError, match=r"^y contains the time-zone-aware timestamp"):
        wrapped.score(X, AWARE["Timestamp"]())


@pytest.mark.parametrize("unit", ["D", "ns"])
@pytest.mark.parametrize("full", [False, True])
def test_an_aware_class_weight_key_is_refused_by_name(unit, full):
    # a UTC Timestamp key was read as its UTC date and weighed that class silently
    # (a New York one of the same instant named another day), and a dict that also
    # weighed every class took an aware key as an extra label and ignored it
    classes = np.unique(DAYS).astype(f"datetime64[{unit}]")
    for key in (
        pd.Timestamp("2022-03-04", tz="UTC"),
        pd.Timestamp("2022-03-03 19:00", tz="America/New_York"),
        datetime.datetime(2022, 3, 4, tzinfo=UTC),
    ):
        weights = {key: 5.0}
        if full:
            weights.update(dict.fromkeys(classes, 1.0))
        message = r"^class_weight contains the time-zone-aware timestamp .*tz_localize\(None\)"
        with pytest.raises(ValueError, match=message):
            class_weights(weights, classes, np.ones(2))
        with pytest.raises(ValueError, match=message):
            check_class_weight_labels(weights, classes)
    # naive keys still weigh their class
    assert class_weights({pd.Timestamp("2022-03-04"): 5.0}, classes, np.ones(2)).tolist() == [
        5.0,
        1.0,
    ]


def test_an_estimator_refuses_an_aware_class_weight_key():
    clf = RBFPrototypeClassifier(
        class_weight={pd.Timestamp("2022-03-04", tz="UTC"): 5.0}, max_epochs=1, random_state=0
    )
    with pytest.raises(ValueError, match="^class_weight contains the time-zone-aware"):
        clf.fit(X, DAYS)


def test_embedding_names_a_class_at_its_drawn_points_when_one_is_nan():
    # beyond 12 classes each class is named at the median of its points; one point
    # at NaN (a transformer's, or given to the constructor) made that median NaN and
    # the class was named nowhere, though its other points were drawn; a class whose
    # points are all NaN is named at its prototype
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skproto.explain import EmbeddingDisplay

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(13), 3)
    points = rng.normal(size=(len(labels), 2)) + 10.0 * labels[:, None]
    points[0] = np.nan  # one of class 0's three points
    points[labels == 1] = np.nan  # all of class 1's
    prototypes = 10.0 * np.arange(13)[:, None] + np.zeros((13, 2))
    display = EmbeddingDisplay(points, labels, prototypes, np.arange(13), None).plot()
    np.testing.assert_allclose(display.class_names_[0].xy, np.median(points[1:3], axis=0))
    np.testing.assert_allclose(display.class_names_[1].xy, prototypes[1])
    for c in range(2, 13):
        np.testing.assert_allclose(
            display.class_names_[c].xy, np.median(points[labels == c], axis=0)
        )
    plt.close("all")
