"""Labels of any kind (an audit): dates, durations, a missing date, label-keyed
parameters. Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier

FAST = dict(max_epochs=2, batch_size=32, random_state=0)
MAKERS = {
    "nmc": lambda: NearestMeanClassifier(temperature=1.0),
    "proto-mixture": lambda: ProtoClassifier(**FAST),
    "rbf": lambda: RBFPrototypeClassifier(**FAST),
}


def blobs(n_classes=3, per_class=10, seed=0):
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(n_classes), per_class)
    return rng.normal(size=(len(codes), 3)) + 4.0 * codes[:, None], codes


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("unit", ["D", "ns"])
def test_a_missing_date_is_no_class(name, unit):
    # fit took a NaT among datetime64 labels as a class of its own (predict could
    # return NaT), where NearestMeanClassifier's partial_fit refused it as a missing
    # label; the torch estimators' first partial_fit took it too
    X, codes = blobs()
    days = np.array(["2020-01-01", "2021-01-01", "NaT"], f"datetime64[{unit}]")[codes]
    message = r"y contains NaT \(a missing label\)"
    with pytest.raises(ValueError, match=message):
        MAKERS[name]().fit(X, days)
    with pytest.raises(ValueError, match=message):
        MAKERS[name]().partial_fit(X, days)
    clf = MAKERS[name]().partial_fit(X[:20], days[:20])
    with pytest.raises(ValueError, match=message):
        clf.partial_fit(X, days)
    assert not np.isnat(clf.classes_).any()


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("first_kind", ["numbers", "durations"])
def test_durations_and_numbers_do_not_join_the_classes(name, first_kind):
    # numpy makes numbers durations: a batch of timedelta64 labels after the
    # classes [0, 1] turned them into 0 and 1 days (predict returned durations),
    # and after duration classes the label 5 became a class of 5 days, silently
    X, codes = blobs()
    numbers = codes.copy()
    durations = codes.astype("timedelta64[D]")
    first, later = (numbers, durations) if first_kind == "numbers" else (durations, numbers)
    clf = MAKERS[name]().partial_fit(X[:20], first[:20])
    with pytest.raises(ValueError, match="cannot be compared with classes of dtype"):
        clf.partial_fit(X[20:], later[20:])
    assert clf.classes_.dtype == first.dtype
    np.testing.assert_array_equal(clf.classes_, first[:20:10])
    if name == "nmc":
        other = NearestMeanClassifier(temperature=1.0).fit(X[10:], later[10:])
        with pytest.raises(ValueError, match="cannot be compared with classes of dtype"):
            clf.merge(other)


@pytest.mark.parametrize("name", list(MAKERS))
def test_explain_target_finds_datetime_classes_in_any_unit(name):
    # explain compared .item() of the labels: datetime64[ns] classes became ints and
    # a datetime64 of days a date, so a target of 2021-01-01 (as numpy.datetime64
    # in days or seconds, or a pandas.Timestamp) was "not one of the classes seen in
    # fit: [1577836800000000000, ...]"
    pd = pytest.importorskip("pandas")
    X, codes = blobs()
    days = np.array(["2020-01-01", "2021-01-01", "2022-01-01"], "datetime64[ns]")
    clf = MAKERS[name]().fit(X, days[codes])
    for target in (
        np.datetime64("2021-01-01"),
        np.datetime64("2021-01-01T00:00:00"),
        pd.Timestamp("2021-01-01"),
        days[1],
        np.array(["2021-01-01"] * 2, "datetime64[D]"),
    ):
        ex = clf.explain(X[:2], 1, target=target)
        np.testing.assert_array_equal(ex.explained, days[[1, 1]])
    # equal values only: 05:00 on a class's day is no class (a cast to days would
    # drop the hours), and the classes are named as dates
    with pytest.raises(ValueError, match=r"not one of the classes seen in fit: \[np.datetime64"):
        clf.explain(X[:1], 1, target=np.datetime64("2021-01-01T05:00"))
    day_classes = MAKERS[name]().fit(X, days[codes].astype("datetime64[D]"))
    with pytest.raises(ValueError, match="not one of the classes"):
        day_classes.explain(X[:1], 1, target=np.datetime64("2021-01-01T05:00"))
    ex = day_classes.explain(X[:1], 1, target=pd.Timestamp("2022-01-01"))
    assert ex.explained[0] == np.datetime64("2022-01-01")


@pytest.mark.parametrize("make", [MAKERS["proto-mixture"], MAKERS["rbf"]])
def test_a_class_weight_key_between_datetime_classes_is_no_class(make):
    # a key of 05:00 was cast to the classes' unit (days), which dropped the hours:
    # it weighed the class of its day, without a word
    X, codes = blobs()
    days = np.array(["2020-01-01", "2020-01-02", "2020-01-03"], "datetime64[D]")
    clf = make().set_params(class_weight={np.datetime64("2020-01-01T05:00"): 5.0})
    with pytest.raises(ValueError, match="class_weight names labels that are not classes"):
        clf.fit(X, days[codes])
    exact = make().set_params(class_weight={np.datetime64("2020-01-01T00:00"): 5.0})
    exact.fit(X, days[codes])  # (the same instant in another unit weighs its class)


def test_the_gallery_takes_one_label_as_one_class():
    # classes="b" was read as a sequence and failed with numpy's TypeError
    # "iteration over a 0-d array"
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skproto.explain import PrototypeGalleryDisplay

    X, codes = blobs()
    y = np.array(["a", "b", "c"])[codes]
    clf = NearestMeanClassifier(temperature=1.0).fit(X, y)
    one = PrototypeGalleryDisplay.from_estimator(clf, X, y, classes="b")
    listed = PrototypeGalleryDisplay.from_estimator(clf, X, y, classes=["b"])
    np.testing.assert_array_equal(one.prototype_index, listed.prototype_index)
    assert one.prototype_label.tolist() == ["b"]
    with pytest.raises(ValueError, match=r"classes \['bc'\] are not classes of the estimator"):
        PrototypeGalleryDisplay.from_estimator(clf, X, y, classes="bc")
    plt.close("all")


def test_priors_keyed_by_label_are_a_value_error():
    # a dict (as class_weight takes) passed the parameter check as array-like and
    # raised numpy's TypeError ("float() argument must be ... not 'dict'")
    X, codes = blobs()
    for priors in ({0: 0.2, 1: 0.3, 2: 0.5}, {0.2, 0.3, 0.5}):
        with pytest.raises(ValueError, match="in the order of classes_"):
            NearestMeanClassifier(priors=priors).fit(X, codes)
    ordered = NearestMeanClassifier(priors=[0.2, 0.3, 0.5]).fit(X, codes)
    np.testing.assert_allclose(ordered.class_prior_, [0.2, 0.3, 0.5])


def test_declared_classes_with_a_nat_name_it():
    # the NaT was named "None" (it is None once cast to object)
    dates = np.array(["2020-01-01", "NaT"], dtype="M8[D]")
    X = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="classes contains NaT"):
        NearestMeanClassifier().partial_fit(X, dates[[0, 0, 0, 0]], classes=dates)


@pytest.mark.parametrize("name", list(MAKERS))
def test_explain_target_finds_date_classes_by_the_values_tolist_gives(name):
    # the date of a datetime64[D] class (classes_.tolist()'s value) was its key
    # under .item(); keyed by datetime64 values, it was "not one of the classes"
    import datetime

    X, codes = blobs()
    days = np.array(["2020-01-01", "2021-01-01", "2022-01-01"], "datetime64[D]")
    for unit in ("D", "us"):
        clf = MAKERS[name]().fit(X, days[codes].astype(f"datetime64[{unit}]"))
        for target in (clf.classes_.tolist()[1], datetime.date(2021, 1, 1)):
            ex = clf.explain(X[:2], 1, target=target)
            np.testing.assert_array_equal(ex.explained, days[[1, 1]])


@pytest.mark.parametrize("name", list(MAKERS))
def test_explain_target_finds_duration_classes_in_any_unit(name):
    # timedelta64[ns] classes (pandas' durations) were keyed by .item(), ints: a
    # target of 2 days (numpy.timedelta64 in days, a pandas.Timedelta or a
    # datetime.timedelta) was "not one of the classes seen in fit: [86400000000000, ...]"
    import datetime

    pd = pytest.importorskip("pandas")
    X, codes = blobs()
    durations = np.array([1, 2, 3], "timedelta64[D]").astype("timedelta64[ns]")
    clf = MAKERS[name]().fit(X, durations[codes])
    for target in (
        np.timedelta64(2, "D"),
        pd.Timedelta(days=2),
        datetime.timedelta(days=2),
        np.array([2, 2], "timedelta64[D]"),
    ):
        ex = clf.explain(X[:2], 1, target=target)
        np.testing.assert_array_equal(ex.explained, durations[[1, 1]])
    day_classes = MAKERS[name]().fit(X, durations[codes].astype("timedelta64[D]"))
    with pytest.raises(ValueError, match=r"seen in fit: \[np.timedelta64\(1,'D'\)"):
        day_classes.explain(X[:1], 1, target=np.timedelta64(36, "h"))  # (1.5 days)


def test_a_report_takes_python_timedeltas_against_duration_classes():
    # durations were refused beside any other labels, Python's timedelta objects
    # (a list of them as make_report's y) too, which compared right before
    import datetime
    import re

    from skproto.explain import make_report

    X, codes = blobs()
    durations = np.array([1, 2, 3], "timedelta64[D]")[codes]
    clf = NearestMeanClassifier(temperature=1.0).fit(X, durations)
    y = durations[::5][::-1]  # (some wrong)
    python = [datetime.timedelta(days=int(d / np.timedelta64(1, "D"))) for d in y]
    marks = [
        re.findall(r"class='(right|wrong)'", make_report(clf, X[::5], y=labels))
        for labels in (y, python)
    ]
    assert marks[0] == marks[1] and "wrong" in marks[0] and "right" in marks[0]
    make_report(clf, X[:2], X_train=X, y_train=[datetime.timedelta(days=int(c) + 1) for c in codes])


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("dtype", ["datetime64[ns]", "timedelta64[D]"])
def test_a_missing_date_among_declared_classes_is_named(name, dtype):
    # a NaT in partial_fit's classes was refused as "classes contains None" (cast
    # to object, a NaT is None), as y's was before
    X, codes = blobs(n_classes=2)
    declared = np.array([1, 2, "NaT"], dtype)
    with pytest.raises(ValueError, match=r"classes contains NaT \(a missing label\)"):
        MAKERS[name]().partial_fit(X, declared[codes], classes=declared)
    with pytest.raises(ValueError, match=r"classes contains None \(a missing label\)"):
        MAKERS[name]().partial_fit(X, codes, classes=np.array([0, 1, None], dtype=object))
