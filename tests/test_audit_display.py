"""What a person sees of unusual labels: plot titles, the report's marks, error messages."""

from __future__ import annotations

import datetime
import re

import numpy as np
import pytest
from browser import probe

from skproto import NearestMeanClassifier
from skproto.explain import (
    ExplanationDisplay,
    PrototypeGalleryDisplay,
    make_report,
    prototype_rows,
)

#: two classes whose names differ only in their middle, and a third
ESCALATION = [
    "escalation_level_1_required_now",
    "escalation_level_2_required_now",
    "other",
]


def _three_classes(labels):
    X = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0], [4.0, 0.0], [4.2, 0.0]])
    y = np.repeat(np.asarray(labels), 2)
    return X, y, NearestMeanClassifier().fit(X, y)


def _plots():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return pytest.importorskip("matplotlib.pyplot")


def test_waterfall_title_names_the_prediction_apart_from_every_class():
    # the prediction (level 1) and runner-up ('other') were named apart from each
    # other only: the title read "class 'escalation…equired_now' (predicted)", which
    # level 2 reads as too, while the panel's bars named both classes in full
    plt = _plots()
    X, y, clf = _three_classes(ESCALATION)
    display = ExplanationDisplay.from_estimator(clf, X, sample=0, n_prototypes=3)
    title = display.axes_[0].get_title()
    assert title.startswith("class 'escalation_level_1_required_now' (predicted)"), title
    ticks = [t.get_text() for t in display.axes_[0].get_yticklabels()]
    assert "#0 'escalation_level_1_required_now'" in ticks
    plt.close("all")


def test_gallery_titles_name_a_class_apart_from_the_classes_not_shown():
    # with level 2 not shown, level 1's prototype was titled 'escalation…equired_now'
    plt = _plots()
    X, y, clf = _three_classes(ESCALATION)
    display = PrototypeGalleryDisplay.from_estimator(
        clf, X, y, classes=[ESCALATION[0]], n_neighbors=1
    )
    titles = [ax.get_title().replace("\n", "") for ax in display.axes_.ravel()]
    assert all("escalation_level_1_required_now" in t for t in titles), titles
    plt.close("all")


def test_gallery_titles_keep_the_spaces_that_tell_two_labels_apart():
    # the wrapped titles dropped the spaces a line break fell on: the neighbours of
    # 'aaaaaaaaaaaaa bbbb' and of 'aaaaaaaaaaaaa  bbbb' were both titled
    # "neighbour 1: 'aaaaaaaaaaaaa\nbbbb'"
    plt = _plots()
    labels = ["aaaaaaaaaaaaa bbbb", "aaaaaaaaaaaaa  bbbb", "zzz"]
    X, y, clf = _three_classes(labels)
    display = PrototypeGalleryDisplay.from_estimator(clf, X, y, n_neighbors=1)
    neighbours = [row[1].get_title() for row in display.axes_]
    assert len(set(neighbours)) == 3, neighbours
    shown = sorted(
        t.split(":", 1)[1].replace("\n", "").replace("\u00a0", " ").lstrip() for t in neighbours
    )
    assert shown == sorted(repr(label) for label in labels)
    plt.close("all")


def _dated(unit: str):
    X = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0]])
    days = np.array(["2020-01-01", "2020-01-01", "2021-01-01", "2021-01-01"], f"datetime64[{unit}]")
    return X, days, NearestMeanClassifier().fit(X, days)


@pytest.mark.parametrize("unit", ["D", "ns"])
@pytest.mark.parametrize("kind", ["python", "pandas"])
def test_report_marks_right_predictions_of_python_and_pandas_dates_right(unit, kind):
    # numpy compared datetime64[D] classes with Python datetimes as dates, and [ns]
    # ones as integers: every right prediction was marked "wrong (true 2020-01-01
    # 00:00:00)", and accuracy read 0; as y_train they were "not in classes_"
    X, days, clf = _dated(unit)
    if kind == "python":
        y = [datetime.datetime(2020, 1, 1)] * 2 + [datetime.datetime(2021, 1, 1)] * 2
    else:
        pd = pytest.importorskip("pandas")
        y = list(pd.to_datetime(days.astype("datetime64[ns]")))
    page = make_report(clf, X, y, X_train=X, y_train=y)
    assert re.findall(r"class='(right|wrong)'", page) == ["right"] * 4
    assert "accuracy on these queries</td><td class='num'>1.0000" in page
    np.testing.assert_array_equal(prototype_rows(clf, X, y), [0, 2])


def test_report_refuses_a_y_of_dates_beside_strings_by_name():
    # np.unique of the report's y ran before the label checks: numpy's TypeError
    # "'<' not supported between instances of 'str' and 'Timestamp'"
    pd = pytest.importorskip("pandas")
    X, _, clf = _dated("D")
    y = [pd.Timestamp("2020-01-01"), "x", "x", "x"]
    with pytest.raises(ValueError, match=r"Mix of label types \(strings and numbers\) in y"):
        make_report(clf, X, y)


def test_report_marks_right_predictions_of_pandas_durations_right():
    # timedelta64[ns] classes compared with Timedeltas and Python timedeltas as integers
    pd = pytest.importorskip("pandas")
    X = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0]])
    durations = np.array([1, 1, 2, 2], "timedelta64[D]").astype("timedelta64[ns]")  # pandas' unit
    clf = NearestMeanClassifier().fit(X, durations)
    y = [pd.Timedelta(days=1)] * 2 + [datetime.timedelta(days=2)] * 2
    page = make_report(clf, X, y, X_train=X, y_train=y)
    assert re.findall(r"class='(right|wrong)'", page) == ["right"] * 4


def test_report_in_a_browser_says_right_for_pandas_dates(tmp_path):
    # what a person reads: no "wrong" on the page
    pd = pytest.importorskip("pandas")
    X, days, clf = _dated("ns")
    page = make_report(clf, X, list(pd.to_datetime(days)))
    text = probe(page, "document.body.dataset.probe=document.body.innerText;", tmp_path / "p.html")
    assert "wrong" not in text and text.count("right") == 4, text


def test_label_errors_name_dates_as_dates_not_nanosecond_integers():
    # "y contains labels [1646352000000000000] not in classes_" for 2022-03-04, and
    # "against classes [1577836800000000000, 1609459200000000000]"
    X, days, clf = _dated("ns")
    other = days.copy()
    other[0] = np.datetime64("2022-03-04", "ns")
    with pytest.raises(ValueError, match="not in classes_") as info:
        make_report(clf, X, X_train=X, y_train=other)
    assert "2022-03-04" in str(info.value) and "1646352000000000000" not in str(info.value)
    with pytest.raises(ValueError, match="against classes") as info:
        make_report(clf, X, ["2020-01-01"] * 4)
    assert "2020-01-01" in str(info.value) and "1577836800000000000" not in str(info.value)
    with pytest.raises(ValueError, match="not in classes=") as info:
        NearestMeanClassifier().partial_fit(X, other, classes=np.unique(days))
    assert "1577836800000000000" not in str(info.value), str(info.value)


def test_durations_are_named_in_their_coarsest_exact_unit():
    # pandas' durations (timedelta64[ns]) of one and two days were named
    # "86400000000000 nanoseconds" in the text, the plots and the report
    plt = _plots()
    X = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0]])
    durations = np.array([1, 1, 2, 2], "timedelta64[D]").astype("timedelta64[ns]")
    clf = NearestMeanClassifier().fit(X, durations)
    text = str(clf.explain(X[:1], 2))
    assert "predicted 1 days" in text and "nanoseconds" not in text, text
    display = ExplanationDisplay.from_estimator(clf, X, sample=0)
    assert display.axes_[0].get_title().startswith("class 1 days (predicted)")
    page = make_report(clf, X[:1])
    assert "<bdi>1 days</bdi>" in page and "nanoseconds" not in page
    plt.close("all")


@pytest.mark.parametrize("unit", ["D", "ns"])
def test_gallery_takes_a_timestamp_or_a_date_as_its_classes(unit):
    # explain(target=) takes them; the gallery said "classes [Timestamp('2021-01-01
    # 00:00:00')] are not classes of the estimator" (and of a Python date, for [ns])
    plt = _plots()
    pd = pytest.importorskip("pandas")
    X, days, clf = _dated(unit)
    for label in (pd.Timestamp("2021-01-01"), datetime.date(2021, 1, 1)):
        display = PrototypeGalleryDisplay.from_estimator(clf, X, days, classes=label, n_neighbors=1)
        assert display.axes_[0, 0].get_title() == "#1 2021-01-01 purity 0.50"
    X, y, named = _three_classes(ESCALATION)
    with pytest.raises(ValueError, match=r"classes \['nope'\] are not classes"):
        PrototypeGalleryDisplay.from_estimator(named, X, y, classes=["nope"])
    plt.close("all")
