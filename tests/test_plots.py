"""Plots, checked by their artists on matplotlib's Agg backend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier
from skproto.explain import (
    EmbeddingDisplay,
    ExplanationDisplay,
    PrototypeGalleryDisplay,
    case_text,
    prototype_rows,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")

ESTIMATORS = {
    "nearest_mean": lambda: NearestMeanClassifier(),
    "proto": lambda: ProtoClassifier(n_prototypes_per_class=2, max_epochs=4, random_state=0),
    "rbf_cbc": lambda: RBFPrototypeClassifier(loss="cbc", max_epochs=4, random_state=0),
    "rbf_robust": lambda: RBFPrototypeClassifier(loss="robust", max_epochs=4, random_state=0),
}


@pytest.fixture(scope="module")
def data():
    d = load_digits()
    X, y = d.data[:500] / 16.0, d.target[:500] * 10 + 3  # non-contiguous integer labels
    texts = [f"case {i}: a {t} written by hand" for i, t in enumerate(d.target[:500])]
    return X, y, texts, d.images[:500]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, *_ = data
    return {name: make().fit(X, y) for name, make in ESTIMATORS.items()}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_waterfall_bars_end_exactly_at_the_scores(name, fitted, data):
    X, y, texts, _ = data
    clf = fitted[name]
    display = ExplanationDisplay.from_estimator(
        clf, X, sample=7, n_prototypes=3, cases=texts, X_train=X, y_train=y
    )
    ex = clf.explain(X[7:8], 3)
    scores = ex.scores[0]
    assert len(display.axes_) == len(display.bars_) == 2
    expected = [ex.explained[0], ex.runner_up[0]]
    parts = 2 if ex.parts else 1  # the CBC head splits each prototype: presence, absence
    for bars, ax, label in zip(display.bars_, display.axes_, expected):
        widths = np.array([b.get_width() for b in bars])
        lefts = np.array([b.get_x() for b in bars])
        score = scores[np.searchsorted(clf.classes_, label)]
        assert len(bars) == 1 + 3 * parts + 1 + 1  # bias, prototypes, others, score
        np.testing.assert_allclose(widths[:-1].sum(), score, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(widths[-1], score, rtol=1e-9, atol=1e-12)  # the score bar
        np.testing.assert_allclose(lefts[1:-1], np.cumsum(widths[:-2]), atol=1e-12)  # a waterfall
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert ticks[0] == ex.bias_name and ticks[-1] == "= score"
        assert str(label) in ax.get_title()
        rows = prototype_rows(clf, X, y)
        for tick in ticks[1 : 1 + 3 * parts]:  # every prototype bar is labelled with its case
            k = int(tick.split()[0][1:])
            assert tick.endswith(case_text(texts[rows[k]], max_chars=40))


def test_waterfall_shows_image_cases_as_thumbnails(fitted, data):
    from skproto.explain._cases import _to_uint8

    X, y, _, images = data
    clf = fitted["proto"]
    display = ExplanationDisplay.from_estimator(clf, X, sample=0, n_prototypes=2, cases=images)
    assert len(display.thumbnails_) == 4  # 2 prototypes x 2 panels
    drawn = display.thumbnails_[0].offsetbox.get_data()
    rows = prototype_rows(clf)
    k = int(display.axes_[0].get_yticklabels()[1].get_text().split()[0][1:])
    np.testing.assert_array_equal(drawn, _to_uint8(images[rows[k]]))  # as the report


def test_waterfall_from_explanation_and_on_given_axes(fitted, data):
    X, *_ = data
    clf = fitted["nearest_mean"]
    fig, axes = plt.subplots(2, 1)
    display = ExplanationDisplay.from_explanation(clf.explain(X[:3], 2), sample=2, ax=axes)
    assert display.figure_ is fig and display.axes_ == list(axes)
    with pytest.raises(ValueError, match="ax must hold 2 Axes"):
        display.plot(ax=axes[0])


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_gallery_shows_prototypes_neighbours_and_purity(name, fitted, data):
    X, y, texts, _ = data
    clf = fitted[name]
    display = PrototypeGalleryDisplay.from_estimator(
        clf, X, y, cases=texts, classes=[3, 13], n_neighbors=2
    )
    shown = np.flatnonzero(np.isin(clf.prototype_labels_, [3, 13]))
    assert display.axes_.shape == (len(shown), 3)
    np.testing.assert_array_equal(display.prototype_index_, shown)
    from skproto.metrics import prototype_purity

    np.testing.assert_allclose(display.purity_, prototype_purity(clf, X, y, aggregate=None)[shown])
    rows = prototype_rows(clf, X, y)
    for i, k in enumerate(shown):
        title = display.axes_[i, 0].get_title()
        assert title.startswith(f"#{k} ") and f"purity {display.purity_[i]:.2f}" in title
        text = display.axes_[i, 0].texts[0].get_text().replace("\n", " ")
        assert text == case_text(texts[rows[k]], max_chars=120)
        assert rows[k] not in display.neighbors_[i]  # the prototype is not its own neighbour
        for j in range(2):
            assert display.axes_[i, 1 + j].get_title().endswith(str(y[display.neighbors_[i, j]]))
    with pytest.raises(ValueError, match=r"classes \[4\] are not classes"):
        PrototypeGalleryDisplay.from_estimator(clf, X, y, classes=[4])


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_embedding_places_every_prototype(name, fitted, data):
    X, y, *_ = data
    clf = fitted[name]
    display = EmbeddingDisplay.from_estimator(clf, X, y, max_points=300)
    assert len(display.points_.get_offsets()) == 300
    offsets = display.prototypes_.get_offsets()
    assert len(offsets) == len(clf.prototypes_)
    where = clf._prototype_inputs()
    np.testing.assert_allclose(offsets, display.projector_.transform(where), atol=1e-9)
    with pytest.raises(ValueError, match="method must be 'pca' or a transformer"):
        EmbeddingDisplay.from_estimator(clf, X, y, method="tsne")


def test_displays_respect_the_users_figure_and_python_indexing(fitted, data):
    # regressions: tight_layout replaced the layout engine of the user's figure
    # (with a warning); sample=-1 raised "Found array with 0 sample(s)"; a class
    # declared to partial_fit without rows was drawn as a phantom prototype
    import warnings

    X, y, *_ = data
    clf = fitted["nearest_mean"]
    fig, axes = plt.subplots(2, 1, layout="constrained")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ExplanationDisplay.from_estimator(clf, X, sample=1, ax=axes)
    assert type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    last = ExplanationDisplay.from_estimator(clf, X, sample=-1)
    same = ExplanationDisplay.from_estimator(clf, X, sample=len(X) - 1)
    assert [w.score for w in last.waterfalls] == [w.score for w in same.waterfalls]
    with pytest.raises(IndexError, match="sample 500 is out of range for X with 500 rows"):
        ExplanationDisplay.from_estimator(clf, X, sample=500)
    first = y < 33  # classes 3, 13, 23 only, of the declared ones
    partial = NearestMeanClassifier().partial_fit(X[first], y[first], classes=np.unique(y))
    gallery = PrototypeGalleryDisplay.from_estimator(partial, X[first], y[first], max_classes=5)
    assert list(gallery.prototype_index_) == [0, 1, 2]
    assert np.isfinite(gallery.purity_).all()
    plt.close("all")


def test_gallery_takes_datetime_labels():
    # classes_[:max_classes] were compared with classes_.tolist(), which turns
    # datetime64 into dates: "classes [2020-01-01, ...] are not classes of the estimator"
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    days = np.array(["2020-01-01", "2021-01-01", "2022-01-01"], dtype="datetime64[D]")[y]
    clf = NearestMeanClassifier().fit(X, days)
    gallery = PrototypeGalleryDisplay.from_estimator(clf, X, days)
    assert len(gallery.prototype_index) == 3


def test_embedding_draws_a_multilabel_row_once_per_label_it_carries():
    # argmax drew a row without a label as label 0, and a row of {1, 2} as 1 only
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    Y = (rng.rand(60, 3) > 0.6).astype(int)
    clf = ProtoClassifier(head="linear", max_epochs=2, random_state=0).fit(X, Y)
    display = EmbeddingDisplay.from_estimator(clf, X, Y)
    assert len(display.point_labels) == Y.sum()
    np.testing.assert_array_equal(np.bincount(display.point_labels, minlength=3), Y.sum(0))


def test_dollar_signs_in_cases_and_labels_are_drawn_as_written():
    # matplotlib read "$...$" as maths: "send $20 to $mom" was drawn "send 20tomom"
    # in italics, and "50% off $_$ today" raised a ParseSyntaxException in tight_layout
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["$x_1$", "b", "c"])
    clf = NearestMeanClassifier().fit(X, names[y])
    cases = ["50% off $_$ today"] * len(X)
    display = ExplanationDisplay.from_estimator(
        clf, X, sample=0, cases=cases, X_train=X, y_train=names[y], n_prototypes=1
    )
    display.figure_.canvas.draw()
    ax = display.axes_[0]
    assert any("$_$" in t.get_text() for t in ax.get_yticklabels())
    assert not any(t.get_parse_math() for t in ax.get_yticklabels())
    assert "'$x_1$'" in ax.get_title() and not ax.title.get_parse_math()
    gallery = PrototypeGalleryDisplay.from_estimator(clf, X, names[y], cases=cases, n_neighbors=1)
    gallery.figure_.canvas.draw()
    for cell in gallery.axes_.ravel():
        assert not cell.title.get_parse_math()
        assert not any(t.get_parse_math() for t in cell.texts)
    embedding = EmbeddingDisplay.from_estimator(clf, X, names[y])
    embedding.figure_.canvas.draw()
    legend = embedding.ax_.get_legend()
    assert "'$x_1$'" in [t.get_text() for t in legend.get_texts()]
    assert not any(t.get_parse_math() for t in legend.get_texts())


def test_image_cases_are_drawn_as_the_report_shows_them():
    # RGB floats 0..255 were clipped by matplotlib to one flat white picture, and a
    # dark uint8 image was stretched to black..white (the report keeps uint8 as is)
    from skproto.explain._cases import _to_uint8

    rng = np.random.RandomState(0)
    y = np.arange(40) % 2
    rgb = 20 + rng.rand(40, 6, 6, 3) * 200
    dark = (rng.rand(40, 6, 6) * 60).astype(np.uint8)
    for images in (rgb, dark):
        X = images.reshape(40, -1).astype(float)
        clf = NearestMeanClassifier().fit(X, y)
        gallery = PrototypeGalleryDisplay.from_estimator(
            clf, X, y, cases=list(images), n_neighbors=1
        )
        gallery.figure_.canvas.draw()
        renderer = gallery.figure_.canvas.get_renderer()
        cell = gallery.axes_[0, 0].images[0].make_image(renderer, unsampled=True)[0]
        expected = _to_uint8(images[gallery.rows[0]])
        drawn = cell[..., :3] if expected.ndim == 3 else cell[..., 0]
        np.testing.assert_allclose(drawn, expected, atol=1)  # (the grey map rounds)
        waterfall = ExplanationDisplay.from_estimator(
            clf, X, sample=0, cases=list(images), X_train=X, y_train=y
        )
        waterfall.figure_.canvas.draw()
        thumb = waterfall.thumbnails_[0].offsetbox.image
        pixels = thumb.make_image(waterfall.figure_.canvas.get_renderer(), unsampled=True)[0]
        assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20  # not one flat colour


def test_embedding_places_cosine_class_means_among_their_rows():
    # the unit-norm prototypes of the cosine NearestMean were drawn near the origin,
    # outside every class (wine: all three at x = -747 against rows at -227..369)
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    clf = NearestMeanClassifier(metric="cosine").fit(X, y)
    display = EmbeddingDisplay.from_estimator(clf, X, y)
    for k, label in enumerate(display.prototype_labels):
        own = display.points[display.point_labels == label]
        centre, spread = own.mean(axis=0), own.std(axis=0).max()
        assert np.linalg.norm(display.prototype_points[k] - centre) < spread
