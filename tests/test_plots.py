"""Plots, checked by their artists on matplotlib's Agg backend."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris

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
from matplotlib.colors import to_rgba  # noqa: E402

from skproto.explain._plot import _COLORS  # noqa: E402

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


# Pinned by a mutation audit of explain/_plot.py (2026-12-06)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def _bar_colour(bar):
    return to_rgba(bar.get_facecolor())


def test_waterfall_bars_are_coloured_by_kind_and_sign_and_hatched_for_absence(iris):
    """Mutation audit of the plots (each case passed under a mutant): kills P02 (positive/negative
    colours swapped), P03 (the bias colour given to
    the 'other' bar) and P04 (the 'presence' parts hatched instead of 'absence')."""
    X, y = iris
    for clf in (
        NearestMeanClassifier().fit(X, y),
        RBFPrototypeClassifier(loss="cbc", max_epochs=2, random_state=0).fit(X, y),
    ):
        display = ExplanationDisplay.from_estimator(clf, X, sample=0, n_prototypes=2)
        signs = set()
        for w, bars in zip(display.waterfalls, display.bars_):
            for step, bar in zip(w.steps, bars):
                if step.kind == "bias":
                    want = _COLORS["bias"]
                else:
                    want = _COLORS["positive"] if step.value >= 0 else _COLORS["negative"]
                    signs.add(step.value >= 0)
                assert _bar_colour(bar) == to_rgba(want), (step.kind, step.value)
                assert bar.get_hatch() in (("//",) if step.part == "absence" else ("", None))
            assert _bar_colour(bars[-1]) == to_rgba(_COLORS["score"])
        if isinstance(clf, NearestMeanClassifier):
            assert signs == {True, False}  # (both signs are drawn in this case)
        else:
            parts = {s.part for w in display.waterfalls for s in w.steps}
            assert {"presence", "absence"} <= parts


def test_waterfall_reads_top_down_and_thumbnails_sit_on_their_bars(iris):
    """Mutation audit of the plots (each case passed under a mutant): kills P05 (bars drawn bottom-
    up: the score bar on top, the bias at the
    bottom) and P06 (each thumbnail placed beside the bar above its own)."""
    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    images = [np.arange(16.0).reshape(4, 4) + i for i in range(len(X))]
    display = ExplanationDisplay.from_estimator(
        clf, X, sample=0, n_prototypes=2, cases=images, X_train=X, y_train=y
    )
    ax, bars = display.axes_[0], display.bars_[0]
    centres = [b.get_y() + b.get_height() / 2 for b in bars]
    assert centres == sorted(centres, reverse=True)  # bias first, on top; score last
    by_height = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]))
    assert by_height[-1][1] == display.waterfalls[0].steps[0].label  # the top row: the bias
    assert by_height[0][1] == "= score"
    # the first panel's thumbnails belong to its prototype steps 1 and 2
    steps = display.waterfalls[0].steps
    proto_rows = [centres[i] for i, s in enumerate(steps) if s.case is not None]
    assert len(proto_rows) == 2
    assert [box.xy[1] for box in display.thumbnails_[:2]] == proto_rows


def test_waterfall_title_states_the_class_score_and_the_zero_line_is_at_zero(iris):
    """Mutation audit of the plots (each case passed under a mutant): kills P07 (the title shows
    the bias as the score) and P11 (the
    reference line drawn at the bias instead of at 0)."""
    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    display = ExplanationDisplay.from_estimator(clf, X, sample=60, n_prototypes=2)
    scores = clf.decision_function(X[60:61])[0]
    for w, ax, role in zip(display.waterfalls, display.axes_, ["predicted", "runner-up"]):
        score = scores[np.searchsorted(clf.classes_, w.label)]
        assert w.role == role
        assert ax.get_title() == f"class {w.label} ({role}): score {score:.4g}"
        assert list(ax.lines[0].get_xdata()) == [0.0, 0.0]


def test_waterfall_from_explanation_alone_shows_the_runner_up_score(iris):
    """Mutation audit of the plots (each case passed under a mutant): kills P08 (without
    runner_up=, the second panel repeated the prediction)
    and P09 (a binary model got one panel only)."""
    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    ex = clf.explain(X[60:61], 2)
    display = ExplanationDisplay.from_explanation(ex)
    labels = [w.label for w in display.waterfalls]
    assert labels == [ex.explained[0], ex.runner_up[0]]
    assert f"class {ex.runner_up[0]} (runner-up):" in display.axes_[1].get_title()
    binary = NearestMeanClassifier().fit(X[:100], y[:100])
    shown = ExplanationDisplay.from_estimator(binary, X[:100], sample=0)
    assert len(shown.axes_) == 2


def test_gallery_titles_name_each_cell_own_label_and_case():
    """Mutation audit of the plots (each case passed under a mutant): kills P12 (every neighbour
    titled with the first neighbour's label), P18
    (every prototype titled with the first prototype's class), P16 (a prototype's
    own case from prototype_cases ignored), P15 (a prototype without a row drew
    the last training case) and P14 (long texts cut at 2 lines instead of 5)."""
    long = "word " * 30
    cases = ["case zero", "case one", long, "the last case"]
    display = PrototypeGalleryDisplay(
        [0, 1],
        ["a", "b"],
        [-1, 2],
        [[0, 1], [1, 3]],
        [["a", "b"], ["b", "c"]],
        [0.5, 1.0],
        cases=cases,
    ).plot()
    titles = [[ax.get_title() for ax in row] for row in display.axes_]
    assert titles == [
        ["#0 'a' purity 0.50", "neighbour 1: 'a'", "neighbour 2: 'b'"],
        ["#1 'b' purity 1.00", "neighbour 1: 'b'", "neighbour 2: 'c'"],
    ]
    assert display.axes_[0, 0].texts[0].get_text() == "-"  # no row: no case
    wrapped = "\n".join(textwrap.wrap(case_text(long, max_chars=120), 28)[:5])
    assert display.axes_[1, 0].texts[0].get_text() == wrapped and wrapped.count("\n") == 4
    own = PrototypeGalleryDisplay(
        [0],
        ["a"],
        [-1],
        np.zeros((1, 0), int),
        np.zeros((1, 0)),
        [1.0],
        prototype_cases=["its own case"],
    ).plot()
    assert own.axes_[0, 0].texts[0].get_text() == "its own case"


def test_gallery_shows_max_classes_classes_and_ten_neighbours_without_the_own_row():
    """Mutation audit of the plots (each case passed under a mutant): kills P13 (max_classes=5 drew
    4 classes) and P17 (n_neighbors=10 gave 9
    neighbours: the own row was among the 10 searched)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    clf = NearestMeanClassifier().fit(X, y)
    display = PrototypeGalleryDisplay.from_estimator(clf, X, y, n_neighbors=10)
    assert [int(c) for c in clf.prototype_labels_[display.prototype_index_]] == [0, 1, 2, 3, 4]
    assert display.neighbors_.shape == (5, 10) and display.axes_.shape == (5, 11)
    assert all(r not in near for r, near in zip(display.rows, display.neighbors_))


def test_embedding_colours_points_and_stars_by_their_own_class():
    """Mutation audit of the plots (each case passed under a mutant): kills P19 (prototype stars
    coloured by another class's colour) and P20
    (a subsample's points coloured by the labels of the first rows)."""
    rng = np.random.RandomState(0)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]], float)
    y = rng.permutation(np.repeat(np.arange(4), 50))
    X = centres[y] + rng.normal(size=(200, 3))
    clf = NearestMeanClassifier().fit(X, y)
    display = EmbeddingDisplay.from_estimator(clf, X, y, max_points=100)
    # each drawn point is the projection of a training row of the label it is coloured by
    projected = display.projector_.transform(X)
    nearest = np.argmin(((display.points[:, None] - projected[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(display.point_labels, y[nearest])
    point_colours = display.points_.get_facecolors()
    star_colours = display.prototypes_.get_facecolors()
    for k, label in enumerate(display.prototype_labels):
        same = point_colours[display.point_labels == label]
        np.testing.assert_allclose(star_colours[k, :3], same[0, :3])
        np.testing.assert_allclose(same[:, :3], same[:1, :3].repeat(len(same), 0))


def test_embedding_legend_names_eleven_classes():
    """Mutation audit of the plots (each case passed under a mutant): kills P22 (the class legend
    dropped for 10 to 12 classes).
    """
    rng = np.random.RandomState(0)
    y = np.arange(110) % 11
    X = rng.normal(size=(110, 3)) + y[:, None]
    clf = NearestMeanClassifier().fit(X, y)
    display = EmbeddingDisplay.from_estimator(clf, X, y)
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts == ["prototypes"] + [str(c) for c in range(11)]


def test_embedding_legend_names_nanosecond_dates_as_dates():
    # classes.tolist() turns datetime64[ns] into int nanoseconds: the legend read
    # 1577836800000000000 (the gallery and the waterfall already show 2020-01-01)
    X, y = load_iris(return_X_y=True)
    days = np.array(["2020-01-01", "2021-06-01", "2022-12-31"], dtype="datetime64[ns]")[y]
    clf = NearestMeanClassifier().fit(X, days)
    display = EmbeddingDisplay.from_estimator(clf, X, days)
    texts = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert texts == ["prototypes", "2020-01-01", "2021-06-01", "2022-12-31"]


# ---- what a person sees (an audit of the human-facing output)
def test_explanation_display_tells_two_classes_apart_and_says_which_is_the_prediction():
    """Panel titles and the legend cut labels to 24 characters: two classes that
    differ in their middle read the same. And with target= the first panel was
    not the prediction, while no title said which one was."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(60, centers=[[0, 0], [3, 0], [9, 9]], random_state=0)
    labels = np.array(
        ["support_level_1_escalation_required", "support_level_2_escalation_required", "other"]
    )
    clf = NearestMeanClassifier().fit(X, labels[y])
    i = int(np.flatnonzero(y == 0)[0])
    display = ExplanationDisplay.from_estimator(clf, X, sample=i)
    first, second = (ax.get_title().rsplit(": score", 1)[0] for ax in display.axes_)
    assert first != second and "(predicted)" in first and "(runner-up)" in second
    legend = EmbeddingDisplay.from_estimator(clf, X, labels[y]).ax_.get_legend()
    names = [t.get_text() for t in legend.get_texts()]
    assert len(set(names)) == len(names), names
    plt.close("all")

    predicted = clf.predict(X[i : i + 1])[0]
    other = next(c for c in clf.classes_ if c != predicted)
    targeted = ExplanationDisplay.from_explanation(clf.explain(X[i : i + 1], 2, target=[other]))
    titles = [ax.get_title() for ax in targeted.axes_]
    assert "(explained, not predicted)" in titles[0]
    assert "(predicted)" in titles[1] and targeted.waterfalls[1].label == predicted
    assert [w.role for w in targeted.waterfalls] == ["explained, not predicted", "predicted"]
    plt.close("all")


def test_embedding_display_never_gives_two_classes_one_colour():
    """Colours were tab20's, taken modulo 20: of 25 classes, pairs looked like one."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(25 * 6, centers=25, n_features=2, random_state=0)
    clf = NearestMeanClassifier().fit(X, y)
    display = EmbeddingDisplay.from_estimator(clf, X, y)
    colours = {tuple(np.round(c, 4)) for c in display.prototypes_.get_facecolors()}
    assert len(colours) == len(clf.classes_)
    plt.close("all")


def test_a_fractional_sample_is_refused():
    """from_estimator(sample=2.7) explained row 2 (int()), where waterfall refuses it."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(TypeError, match="integer"):
        ExplanationDisplay.from_estimator(clf, X, sample=2.7)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda y: None, "y must be an array-like of labels"),
        (lambda y: y + 5, "not in classes_"),
        (lambda y: np.where(y == 0, np.nan, y), "NaN"),
        (lambda y: y.astype(str), "Mix of label types"),
        (lambda y: np.c_[y, y], "indicator of shape"),
    ],
)
def test_embedding_display_checks_y_as_the_gallery_does(bad, match):
    """y=None failed with a TypeError; labels the model does not know, NaN, strings
    against number classes and an indicator of the wrong width were drawn silently
    as classes of their own (a 2-column y as the "classes" 0 and 1)."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match=match):
        EmbeddingDisplay.from_estimator(clf, X, bad(y))
    plt.close("all")


def test_gallery_refuses_a_y_that_is_no_array():
    """y=None failed with "TypeError: len() of unsized object"."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match="y must be an array-like of labels"):
        PrototypeGalleryDisplay.from_estimator(clf, X, None)


def test_a_bool_sample_is_refused():
    """sample=True drew row 1."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(TypeError, match="sample must be an integer row position"):
        ExplanationDisplay.from_estimator(clf, X, sample=True)


@pytest.mark.parametrize("n_classes", [13, 150])
def test_embedding_names_every_class_beyond_twelve_at_its_centre(n_classes):
    """Beyond 12 classes the legend named no class at all (only "prototypes"), and
    150 hues of one colour map cannot be told apart: each class is named on the
    map, just above the median of its points, and the legend says so."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_classes * 6, centers=n_classes, n_features=4, random_state=0)
    names = np.array([f"intent_{k:03d}" for k in range(n_classes)])
    clf = NearestMeanClassifier().fit(X, names[y])
    display = EmbeddingDisplay.from_estimator(clf, X, names[y])
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert legend == ["prototypes", f"{n_classes} classes, each named at its centre"]
    shown = [a.get_text() for a in display.class_names_]
    assert shown == [f"'{name}'" for name in names]  # (as the legend quotes strings)
    assert all(a in display.ax_.texts for a in display.class_names_)
    for name, annotation in zip(names, display.class_names_):
        centre = np.median(display.points[display.point_labels == name], axis=0)
        np.testing.assert_allclose(annotation.xy, centre)
        assert annotation.get_fontsize() <= 6 and annotation.get_bbox_patch() is not None
    # its box is edged in the class's colour, as its star is filled
    stars = display.prototypes_.get_facecolors()
    for k, label in enumerate(display.prototype_labels):
        edge = display.class_names_[int(np.searchsorted(names, label))].get_bbox_patch()
        np.testing.assert_allclose(edge.get_edgecolor()[:3], stars[k, :3])
    plt.close("all")


def test_embedding_of_twelve_classes_keeps_its_legend_of_colours():
    """Up to 12 classes the legend names each by its colour, and the map stays bare."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(12 * 6, centers=12, n_features=4, random_state=0)
    clf = NearestMeanClassifier().fit(X, y)
    display = EmbeddingDisplay.from_estimator(clf, X, y)
    legend = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert legend == ["prototypes"] + [str(c) for c in range(12)]
    assert display.class_names_ == [] and not display.ax_.texts
    plt.close("all")
