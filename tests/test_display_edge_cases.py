"""The report and plots on realistic and odd inputs (each test fails before its fix)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from skproto import NearestMeanClassifier, ProtoClassifier
from skproto.explain import make_report


def test_gallery_titles_of_clinc150_labels_stay_in_their_cells():
    """CLINC150's own labels ('what_are_your_hobbies', 23 characters with its quotes,
    not shortened) made a prototype's title ('#141 ... purity 1.00') wider than its
    cell: it ran over the first neighbour's title and its start was cut off at the
    figure's left edge."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from skproto.explain import PrototypeGalleryDisplay

    labels = ["what_are_your_hobbies", "restaurant_reservation"]
    display = PrototypeGalleryDisplay(
        [141, 97],
        labels,
        [0, 1],
        [[2, 3, 4], [5, 6, 7]],
        [[labels[0]] * 3, [labels[1]] * 3],
        [1.0, 0.9],
        cases=[f"training sentence {i}" for i in range(8)],
    ).plot()
    fig = display.figure_
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    for row in display.axes_:
        boxes = [ax.title.get_window_extent(renderer) for ax in row]
        for box in boxes:
            assert box.x0 >= 0 and box.x1 <= width, (box.x0, box.x1, width)
        for left, right in zip(boxes, boxes[1:]):
            assert left.x1 <= right.x0, (left.x1, right.x0)
    # what the titles say is kept (on more than one line)
    title = display.axes_[0, 0].get_title().replace("\n", " ")
    assert title == "#141 'what_are_your_hobbies' purity 1.00"


@pytest.mark.parametrize(
    "make",
    [
        NearestMeanClassifier,
        lambda: ProtoClassifier(n_prototypes_per_class=1, max_epochs=2, random_state=0),
    ],
)
def test_report_of_a_class_declared_to_partial_fit_draws_finite_waterfalls(make):
    """A class declared to partial_fit with no rows yet scores -inf: its runner-up
    waterfall had x='nan' and width='nan' on every bar (Chromium: 'Error: <rect>
    attribute x: Expected length, "nan"' per bar, and no waterfall)."""
    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    clf = make().partial_fit(X, [1, 1], classes=[1, -2])
    assert np.isinf(clf.explain(X[:1], 2, target=[-2]).scores[0, 0])
    page = make_report(clf, X, cases=["a", "b"], X_train=X, y_train=[1, 1])
    svgs = re.findall(r"<svg class='waterfall'.*?</svg>", page)
    assert len(svgs) == 2  # two queries, the prediction only (no runner-up: -2 is -inf)
    # (-2, the only other class, is no runner-up: the -inf score drawn as a target)
    from skproto.explain import waterfall
    from skproto.explain._report import _svg

    svgs.append(_svg(waterfall(clf.explain(X[:1], 2, target=[-2]), 0)))
    numbers = [float(v) for svg in svgs for v in re.findall(r"\b(?:x|width|x1|x2)='([^']*)'", svg)]
    assert numbers and np.all(np.isfinite(numbers)), [n for n in numbers if not np.isfinite(n)]


def test_waterfall_plot_of_a_class_declared_to_partial_fit_is_finite():
    """The same -inf score drew no bar at all in ExplanationDisplay's runner-up panel
    (infinite bar widths; 37 RuntimeWarnings 'invalid value encountered')."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import warnings

    from skproto.explain import ExplanationDisplay

    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    clf = NearestMeanClassifier().partial_fit(X, [1, 1], classes=[1, -2])
    # (-2 is no runner-up: the only other class, it scores -inf; explained as a target)
    explanation = clf.explain(X[:1], 2, target=[-2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        display = ExplanationDisplay.from_explanation(explanation)
        display.figure_.canvas.draw()
    assert display.axes_[0].get_title() == "class -2 (explained, not predicted): score -inf"
    for bars in display.bars_:
        for bar in bars:
            assert np.isfinite([bar.get_x(), bar.get_width()]).all()
    left, right = display.axes_[0].get_xlim()
    assert np.isfinite([left, right]).all() and left < 0  # the -inf bars reach the left


_NO_RIVAL_MODELS = [
    NearestMeanClassifier,
    lambda: ProtoClassifier(n_prototypes_per_class=1, max_epochs=2, random_state=0),
    lambda: ProtoClassifier(head="linear", n_prototypes_per_class=1, max_epochs=2, random_state=0),
]


@pytest.mark.parametrize("make", _NO_RIVAL_MODELS)
def test_waterfall_plot_draws_a_sample_without_a_rival_once(make):
    """Where every other class scores -inf (declared to partial_fit without rows),
    explain names the explained class its own runner-up: ExplanationDisplay drew the
    same "predicted" panel twice (two Axes, titles and bars alike). One panel now,
    whose title says that there is no runner-up; a class with rows beside it is
    still drawn as the runner-up."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skproto.explain import ExplanationDisplay

    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    clf = make().partial_fit(X, [1, 1], classes=[1, -2])
    explanation = clf.explain(X, 2)
    assert explanation.runner_up.tolist() == [1, 1]
    for display in (
        ExplanationDisplay.from_estimator(clf, X, sample=1, n_prototypes=2),
        ExplanationDisplay.from_explanation(explanation, sample=1),
    ):
        display.figure_.canvas.draw()
        assert len(display.figure_.axes) == len(display.axes_) == 1
        assert len(display.bars_) == len(display.waterfalls) == 1
        assert len(display.axes_[0].patches) == len(display.waterfalls[0].steps) + 1  # + score
        title = display.axes_[0].get_title()
        assert title.startswith("class 1 (predicted; no runner-up") and "-inf" in title
        plt.close(display.figure_)
    # a class with rows is still the runner-up, in a panel of its own
    clf = make().partial_fit(np.vstack([X, [[5.0, 5.0]]]), [1, 1, 3], classes=[1, -2, 3])
    display = ExplanationDisplay.from_estimator(clf, X, sample=0, n_prototypes=2)
    titles = [ax.get_title() for ax in display.figure_.axes]
    assert len(titles) == 2 and "(runner-up)" in titles[1] and "no runner-up" not in titles[0]
    plt.close(display.figure_)


@pytest.mark.parametrize("make", _NO_RIVAL_MODELS)
def test_report_draws_a_sample_without_a_rival_once(make, tmp_path):
    """The report drew the same "predicted" panel (heading, waterfall and table) twice
    for such a sample, as the prediction and as the runner-up. Opened in Chromium:
    one panel per query, and a line saying there is no runner-up."""
    from browser import probe

    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    clf = make().partial_fit(X, [1, 1], classes=[1, -2])
    page = make_report(clf, X, cases=["a", "b"], X_train=X, y_train=[1, 1])
    seen = probe(
        page,
        "document.querySelectorAll('details').forEach(function(d){d.open=true});"
        "var q=document.querySelectorAll('details.query'),out=[];"
        "for(var i=0;i<q.length;i++){var h=q[i].querySelectorAll('.panel h4'),t=[];"
        "for(var j=0;j<h.length;j++){t.push(h[j].textContent)}"
        "var n=q[i].querySelector('.no-rival');"
        "out.push(q[i].querySelectorAll('.panel svg.waterfall').length+'/'+t.join(',')+'/'"
        "+(n&&n.getClientRects().length?n.textContent:''))}"
        "document.body.dataset.probe=out.join('|');",
        tmp_path / "report.html",
    )
    rival = "no runner-up: every other class scores -inf"
    queries = seen.split("|")  # per query: waterfalls / panel headings / no-rival line
    assert len(queries) == 2, seen
    for query in queries:
        drawn, headings, note = query.split("/")
        assert drawn == "1" and headings.startswith("predicted 1: score "), seen
        assert "," not in headings and note == rival, seen


def test_report_encodes_each_training_image_of_an_image_array_once(monkeypatch):
    """Images passed as one array (``digits.images``, as the docs do) were encoded
    again for every query: the cache keyed the case by ``id``, and with_cases stores
    a fresh view ``cases[r]`` per listed prototype (8,010 PNG encodings for 797
    digits queries, 50 for a list of the same images; 128 x 128 RGB images: 18.7 s
    against 4.4 s for 300 queries)."""
    from sklearn.datasets import load_digits

    import skproto.explain._report as report

    d = load_digits()
    X, y, images = d.data[:400] / 16.0, d.target[:400], d.images[:400]
    clf = NearestMeanClassifier().fit(X, y)
    encoded = []

    def counting(image):
        encoded.append(1)
        return png_data_uri(image)

    from skproto.explain import png_data_uri

    monkeypatch.setattr(report, "png_data_uri", counting)
    pages = []
    for cases in (images, list(images)):
        encoded.clear()
        pages.append(make_report(clf, X[:100], cases=cases, X_train=X, y_train=y))
        rows_shown = set(re.findall(r"data-(?:train-)?row='(\d+)'", pages[-1]))
        assert len(encoded) == len(rows_shown), (len(encoded), len(rows_shown))
    # and the page is the same either way
    strip = re.compile(r"generated by skproto in [\d.]+ s")
    assert strip.sub("", pages[0]) == strip.sub("", pages[1])


def test_a_sparse_indicator_y_is_refused_as_fit_refuses_it():
    """make_report and the gallery read a sparse multi-label y_train as a 0-d object
    array and failed with a bare "len() of unsized object"; fit's TypeError now."""
    sparse = pytest.importorskip("scipy.sparse")
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(120, 6, n_classes=3, random_state=0)
    clf = NearestMeanClassifier().fit(X, Y.argmax(axis=1))
    with pytest.raises(TypeError, match="Sparse data was passed for y"):
        make_report(clf, X[:2], X_train=X, y_train=sparse.csr_matrix(Y))
    from skproto.metrics import prototype_purity

    with pytest.raises(TypeError, match="Sparse data was passed for y"):
        prototype_purity(clf, X, sparse.csr_matrix(Y))


def test_text_of_a_sample_without_rival_shows_its_class_once():
    # (the text view named the explained class the runner-up and printed its column
    # twice, "-> 1  -> 1", where every other class was declared without rows)
    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    clf = NearestMeanClassifier().partial_fit(X, [1, 1], classes=[1, -2])
    text = str(clf.explain(X))
    assert ", runner-up" not in text
    assert text.count("no runner-up (every other class scores -inf)") == 2
    header = next(line for line in text.splitlines() if "rank" in line)
    assert header.split()[-2:] == ["->", "1"]
    score = next(line for line in text.splitlines() if "= class score" in line)
    assert score.split()[-1] == "-0.125" and score.count("-0.125") == 1
    # a sample with a rival keeps both columns
    clf.partial_fit(np.array([[5.0, 5.0]]), [-2])
    text = str(clf.explain(X[:1]))
    assert "runner-up -2" in text
    header = next(line for line in text.splitlines() if "rank" in line)
    assert header.split()[-4:] == ["->", "1", "->", "-2"]


def test_no_rival_is_not_said_to_score_minus_inf_where_its_score_is_finite(tmp_path):
    """RBFPrototypeClassifier scores a class declared to partial_fit without rows
    finitely (0), yet names it no runner-up: the text, the plot and the report said
    that every other class scores -inf, against the scores they show."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skproto import RBFPrototypeClassifier
    from skproto.explain import ExplanationDisplay

    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    for loss in ("glvq", "cbc"):
        clf = RBFPrototypeClassifier(loss=loss, max_epochs=2, random_state=0)
        clf.partial_fit(X, [1, 1], classes=[1, -2])
        explanation = clf.explain(X, 2)
        assert explanation.runner_up.tolist() == [1, 1]
        assert np.isfinite(explanation.scores).all()
        said = "no other class can be predicted"
        text = str(explanation)
        assert "-inf" not in text and text.count(f"no runner-up ({said})") == 2
        display = ExplanationDisplay.from_explanation(explanation, sample=0)
        title = display.axes_[0].get_title()
        assert f"no runner-up: {said}" in title and "-inf" not in title
        plt.close(display.figure_)
        page = make_report(clf, X, cases=["a", "b"], X_train=X, y_train=[1, 1])
        assert re.findall(r"<p class='no-rival'>(.*?)</p>", page) == [f"no runner-up: {said}"] * 2
