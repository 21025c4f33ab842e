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
    assert len(svgs) == 4  # two queries, the prediction and the runner-up
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
