"""Interpretability metrics: known answers on a hand-built model, then every estimator."""

import numpy as np
import pytest
from helpers import HandBuilt
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier
from skproto.metrics import (
    explanation_stability,
    global_size,
    own_class_evidence,
    prototype_neighbors,
    prototype_purity,
    top_k_evidence_share,
)

# prototypes 0, 1 of class "a" and 2 of class "b"; prototype 2 also votes for "a"
W = np.array([[1.0, 0.0], [1.0, -1.0], [0.5, 1.0]])
LABELS = ["a", "a", "b"]


@pytest.fixture
def hand():
    return HandBuilt(W, LABELS).fit(np.eye(3))


def test_own_class_evidence_known_answer(hand):
    # row 0: contributions to "a" = (3, 1, 1): own (3 + 1) of 5 positive
    # row 1: to "b" (predicted, 0 - 0 + 2 > 0 + 0 + 1) = (0, 0, 2): all own
    # row 2: to "a" = (2, 1, 0.5): own (2 + 1) of 3.5
    # row 3: to "a" = (4, -1, 0.5): the negative one is no evidence; own 4 of 4.5
    X = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 2.0], [2.0, 1.0, 1.0], [4.0, -1.0, 1.0]])
    np.testing.assert_array_equal(hand.predict(X), ["a", "b", "a", "a"])
    got = own_class_evidence(hand, X, aggregate=None)
    expected = [4 / 5, 1.0, 3 / 3.5, 4 / 4.5]
    np.testing.assert_allclose(got, expected)
    assert own_class_evidence(hand, X) == pytest.approx(np.mean(expected))
    assert own_class_evidence(hand, X, aggregate="median") == pytest.approx(np.median(expected))


def test_top_k_evidence_share_known_answer(hand):
    X = np.array([[3.0, 1.0, 2.0], [2.0, 1.0, 1.0]])  # to "a": (3, 1, 1) and (2, 1, 0.5)
    np.testing.assert_allclose(top_k_evidence_share(hand, X, 1, aggregate=None), [3 / 5, 2 / 3.5])
    np.testing.assert_allclose(top_k_evidence_share(hand, X, 2, aggregate=None), [4 / 5, 3 / 3.5])
    np.testing.assert_allclose(top_k_evidence_share(hand, X, 3, aggregate=None), [1.0, 1.0])
    with pytest.raises(ValueError, match="k must be a positive int"):
        top_k_evidence_share(hand, X, 0)


def test_no_positive_evidence_counts_as_one(hand):
    X = np.array([[-1.0, 0.0, -0.1]])  # predicted "b"; its contributions (0, 0, -0.1)
    assert own_class_evidence(hand, X) == 1.0
    assert top_k_evidence_share(hand, X) == 1.0


def test_prototype_purity_known_answer(hand):
    # activation of prototype k on row i is X[i, k]; the 2 most activated rows
    X = np.array([[5.0, 0.0, 0.0], [4.0, 0.0, 9.0], [0.0, 3.0, 8.0], [0.0, 2.0, 0.0]])
    y = np.array(["a", "b", "b", "a"])
    # proto 0 ("a"): rows 0, 1 -> a, b: 0.5; proto 1 ("a"): rows 2, 3 -> b, a: 0.5
    # proto 2 ("b"): rows 1, 2 -> b, b: 1
    np.testing.assert_allclose(prototype_purity(hand, X, y, n_neighbors=2, aggregate=None),
                               [0.5, 0.5, 1.0])  # fmt: skip
    assert prototype_purity(hand, X, y, n_neighbors=1) == pytest.approx(np.mean([1, 0, 1]))


def test_global_size_known_answer(hand):
    assert global_size(hand) == 3
    sparse = HandBuilt(np.array([[1.0, 0.0], [1e-6, 0.0], [0.0, 2.0]]), LABELS).fit(np.eye(3))
    assert global_size(sparse) == 2
    assert global_size(sparse, tol=0.0) == 3


def test_explanation_stability_known_answer(hand):
    # far from any tie: noise of norm 0.01 never changes the top prototype
    X = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert explanation_stability(hand, X, noise=0.01, random_state=0) == 1.0
    # an exact tie between prototypes 0 and 1: the noise decides, about half the time
    X = np.array([[1.0, 1.0, 0.0]] * 200)
    p = explanation_stability(hand, X, noise=1e-3, n_draws=1, random_state=0)
    assert 0.3 < p < 0.7


ESTIMATORS = [
    lambda: NearestMeanClassifier(),
    lambda: ProtoClassifier(n_prototypes_per_class=2, max_epochs=10, random_state=0),
    lambda: RBFPrototypeClassifier(max_epochs=10, random_state=0),
    lambda: RBFPrototypeClassifier(loss="glvq", n_components=6, max_epochs=10, random_state=0),
]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_every_estimator_has_every_metric(make):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = make().fit(X, names)
    for value in [
        own_class_evidence(clf, X),
        top_k_evidence_share(clf, X, 1),
        prototype_purity(clf, X, names),
        explanation_stability(clf, X, noise=0.05, random_state=0),
    ]:
        assert 0.0 <= value <= 1.0
    assert 1 <= global_size(clf) <= len(clf.prototypes_)
    assert top_k_evidence_share(clf, X, len(clf.prototypes_)) == pytest.approx(1.0)


@pytest.mark.parametrize("head", ["dense", "mixture", "linear"])
def test_evidence_metrics_match_the_explanation(head):
    """Own-class evidence and the top-1 share, against their formulas on explain's
    contributions. (A mutation audit: with only one prototype per class, or
    contributions of class 0 alone, explaining the least likely class or reading
    class 0's column survived.)"""
    X, y = load_iris(return_X_y=True)
    params = {"l1_weight": 0.0} if head == "dense" else {"head": head}
    clf = ProtoClassifier(n_prototypes_per_class=2, max_epochs=10, random_state=0, **params)
    clf.fit(X, y)
    ex = clf.explain(X, n_prototypes=len(clf.prototypes_))
    col = np.searchsorted(clf.classes_, ex.explained)
    c = np.maximum(ex.contribution[np.arange(len(X)), :, col], 0)
    own = ex.prototype_label == ex.explained[:, None]
    total = np.maximum(c.sum(1), 1e-300)
    expected = np.where(c.sum(1) > 0, (c * own).sum(1) / total, 1.0)
    np.testing.assert_allclose(own_class_evidence(clf, X, aggregate=None), expected)
    top1 = np.where(c.sum(1) > 0, c.max(1) / total, 1.0)
    np.testing.assert_allclose(top_k_evidence_share(clf, X, 1, aggregate=None), top1)
    assert len(np.unique(col)) == 3 and np.std(top1) > 0.03  # (cases that can tell)


def test_neighbours_reach_every_row():
    """Mutation audit: n_neighbors equal to the number of rows (or one row) must
    return every row, ties to the lower row."""
    X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    clf = NearestMeanClassifier().fit(X, y)
    np.testing.assert_array_equal(
        prototype_neighbors(clf, X, n_neighbors=4), [[0, 1, 2, 3], [2, 3, 1, 0]]
    )
    np.testing.assert_array_equal(
        prototype_purity(clf, X, y, n_neighbors=4, aggregate=None), [0.5, 0.5]
    )
    np.testing.assert_array_equal(prototype_neighbors(clf, X[:1], n_neighbors=1), [[0], [0]])


def test_explanation_stability_noise_follows_the_units_of_X():
    """Regression: the default noise was 0.1 in input units, imperceptible on pixel
    values and larger than the rows on features of size 1e-3; "auto" is 5 % of the
    median row norm, so the measure reads the same in any units."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16
    y = y[:300]
    unit = NearestMeanClassifier().fit(X, y)
    base = explanation_stability(unit, X[:100], random_state=0, aggregate=None)
    explicit = 0.05 * np.median(np.linalg.norm(X[:100], axis=1))
    np.testing.assert_array_equal(
        base, explanation_stability(unit, X[:100], noise=explicit, random_state=0, aggregate=None)
    )
    for scale in (1e-3, 255.0):
        scaled = NearestMeanClassifier().fit(X * scale, y)
        got = explanation_stability(scaled, X[:100] * scale, random_state=0, aggregate=None)
        np.testing.assert_array_equal(got, base)
    with pytest.raises(ValueError, match="noise must be a positive finite float"):
        explanation_stability(unit, X[:5], noise=0.0)


def test_classes_declared_without_rows_have_no_prototype_to_measure():
    """Regression: NearestMeanClassifier's class declared to partial_fit without rows
    has a NaN mean; its 'prototype' got purity 0 (digits, 4 of 10 classes seen: mean
    purity 0.4 against 1.0) and counted in the global size (10 against 4), and the
    HTML report's gallery read 'mean purity nan' for every class without prototypes."""
    from sklearn.datasets import load_digits

    from skproto.explain import make_report

    X, y = load_digits(return_X_y=True)
    seen = y < 4
    nmc = NearestMeanClassifier().partial_fit(X[seen], y[seen], classes=np.arange(10))
    assert prototype_purity(nmc, X[seen], y[seen]) == 1.0
    per = prototype_purity(nmc, X[seen], y[seen], aggregate=None)
    np.testing.assert_array_equal(np.isnan(per), np.arange(10) >= 4)
    assert global_size(nmc) == 4
    proto = ProtoClassifier(random_state=0).partial_fit(X[seen], y[seen], classes=np.arange(10))
    for model in (nmc, proto):
        html = make_report(model, X[:5], y[:5], X_train=X[seen], y_train=y[seen])
        assert "nan" not in html.lower()
        assert html.count("(no prototypes yet)") == 6


def test_purity_refuses_labels_of_another_kind():
    """Regression: integer y against string classes read as purity 0.0, silently."""
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NearestMeanClassifier().fit(X, names)
    assert prototype_purity(clf, X, names) == 1.0
    with pytest.raises(ValueError, match="Mix of label types"):
        prototype_purity(clf, X, y)


def test_metrics_of_a_model_fitted_on_a_dataframe_are_silent():
    # regression: the metrics validated X to numpy, then passed that to explain,
    # which warned "X does not have valid feature names"
    import warnings

    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_iris

    from skproto import NearestMeanClassifier, ProtoClassifier
    from skproto.proto import PROTOPNET

    X, y = load_iris(return_X_y=True, as_frame=True)
    assert isinstance(X, pd.DataFrame)
    for est in [
        NearestMeanClassifier().fit(X, y),
        ProtoClassifier(**PROTOPNET, max_epochs=2, random_state=0).fit(X, y),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            explanation_stability(est, X, random_state=0)
            own_class_evidence(est, X)
            top_k_evidence_share(est, X)
            prototype_purity(est, X, y)


def test_every_metric_takes_a_pipeline_ending_in_a_skproto_estimator():
    # "'Pipeline' object has no attribute '_validate_X_predict'"
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skproto import NearestMeanClassifier
    from skproto import metrics as m

    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NearestMeanClassifier()).fit(X, y)
    Z, clf = pipe[0].transform(X), pipe[-1]
    assert m.own_class_evidence(pipe, X) == m.own_class_evidence(clf, Z)
    assert m.top_k_evidence_share(pipe, X, 2) == m.top_k_evidence_share(clf, Z, 2)
    assert m.prototype_purity(pipe, X, y) == m.prototype_purity(clf, Z, y)
    np.testing.assert_array_equal(m.prototype_neighbors(pipe, X), m.prototype_neighbors(clf, Z))
    assert m.explanation_stability(pipe, X, random_state=0) == m.explanation_stability(
        clf, Z, random_state=0
    )
    assert m.global_size(pipe) == m.global_size(clf) == 3
    with pytest.raises(ValueError, match="skproto.metrics measure a skproto estimator"):
        m.global_size(StandardScaler().fit(X))


def test_metric_arguments_are_validated_as_scikit_learn_would():
    # unknown labels read as misses (purity 0.0, silently); noise=inf blamed X;
    # tol=None raised TypeError; True was taken for k=1
    from sklearn.datasets import load_iris

    from skproto import NearestMeanClassifier
    from skproto.metrics import (
        explanation_stability,
        global_size,
        prototype_purity,
        top_k_evidence_share,
    )

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match=r"y contains labels \[10, 11, 12\] not in classes_"):
        prototype_purity(clf, X, y + 10)
    with pytest.raises(ValueError, match="noise must be a positive finite float"):
        explanation_stability(clf, X, noise=np.inf)
    with pytest.raises(ValueError, match="noise must be a positive finite float"):
        explanation_stability(clf, X, noise=True)
    for tol in (None, "0.1", True):
        with pytest.raises(ValueError, match=r"tol must be a float in \[0, 1\)"):
            global_size(clf, tol=tol)
    with pytest.raises(ValueError, match="k must be a positive int, got True"):
        top_k_evidence_share(clf, X, k=True)
    with pytest.raises(ValueError, match="n_draws must be a positive int, got True"):
        explanation_stability(clf, X, n_draws=True)


def test_explanation_stability_of_a_pipeline_perturbs_what_its_final_step_sees():
    # documented: the noise and its "auto" norm are in the final step's feature space
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skproto import NearestMeanClassifier
    from skproto.metrics import explanation_stability

    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NearestMeanClassifier()).fit(X, y)
    a = explanation_stability(pipe, X, random_state=1, aggregate=None)
    b = explanation_stability(pipe[-1], pipe[0].transform(X), random_state=1, aggregate=None)
    np.testing.assert_array_equal(a, b)


def test_a_column_vector_y_reads_as_the_labels_it_holds():
    """Regression: ``fit`` and ``score`` take an ``(n, 1)`` y as its labels (with
    scikit-learn's DataConversionWarning), but the helpers read any 2-D y as a
    multi-label indicator: ``prototype_purity`` and ``prototype_rows`` raised an
    IndexError, ``make_report`` "The truth value of an array ... is ambiguous"
    (and the gallery and embedding displays failed the same way)."""
    from sklearn.exceptions import DataConversionWarning

    from skproto.explain import make_report, prototype_rows

    X, y = load_iris(return_X_y=True)
    column = y.reshape(-1, 1)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.warns(DataConversionWarning):
        assert prototype_purity(clf, X, column) == prototype_purity(clf, X, y)
    with pytest.warns(DataConversionWarning):
        np.testing.assert_array_equal(prototype_rows(clf, X, column), prototype_rows(clf, X, y))
    with pytest.warns(DataConversionWarning):
        page = make_report(clf, X[:5], column[:5], X_train=X, y_train=column)
    assert "accuracy on these queries" in page
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    from skproto.explain import EmbeddingDisplay, PrototypeGalleryDisplay

    with pytest.warns(DataConversionWarning):
        PrototypeGalleryDisplay.from_estimator(clf, X, column)
    with pytest.warns(DataConversionWarning):
        EmbeddingDisplay.from_estimator(clf, X, column)
    mpl.pyplot.close("all")


# ---------------------------------------------------------------------------
# Tests for the survivors of a mutation audit of metrics/ and the report (each
# mutant, applied to a copy of HEAD, passed the suite before these)


def test_the_report_s_median_share_is_the_median(hand):
    import re

    from skproto.explain import make_report

    X = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 2.0], [2.0, 1.0, 1.0], [4.0, -1.0, 1.0]])
    page = make_report(hand, X)
    shown = re.search(r"top prototype \(median\)</td><td class='num'>([\d.]+)", page).group(1)
    median = top_k_evidence_share(hand, X, aggregate="median")
    assert shown == f"{median:.3f}" != f"{top_k_evidence_share(hand, X):.3f}"


def test_multilabel_purity_counts_only_rows_that_carry_the_label():
    from skproto.metrics import prototype_purity

    hand = HandBuilt(np.eye(2), ["a", "b"]).fit(np.eye(2))
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    Y = np.array([[1, 0], [0, 1], [0, 1]])  # row 1 lacks label "a"
    np.testing.assert_array_equal(
        prototype_purity(hand, X, Y, n_neighbors=2, aggregate=None), [0.5, 1.0]
    )


def test_global_size_leaves_out_a_prototype_connected_to_nothing():
    W0 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert global_size(HandBuilt(W0, ["a", "b", "a"]).fit(np.eye(3)), tol=0.0) == 2


def test_prototype_neighbours_break_ties_toward_the_lower_row():
    from skproto.metrics import prototype_neighbors

    X = np.array([[0.0], [0.0], [5.0], [5.0]])
    clf = NearestMeanClassifier().fit(X, [0, 0, 1, 1])
    np.testing.assert_array_equal(prototype_neighbors(clf, X, n_neighbors=1), [[0], [2]])


def test_a_multilabel_explanation_predicts_what_predict_does_at_one_half():
    h = HandBuilt(np.array([[1.0, 0.0], [0.0, 0.0]]), ["a", "b"]).fit(np.eye(2))
    h._multilabel = True  # label "b" has logit 0: p = 0.5, not predicted
    X = np.array([[1.0, 1.0]])
    np.testing.assert_array_equal(h.explain(X, 1).predicted, h.predict(X))
    np.testing.assert_array_equal(h.predict(X), [[1, 0]])


def test_the_report_s_gallery_purity_steps_and_neighbours():
    import re

    from skproto.explain import make_report

    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 1, (20, 2)), rng.normal(1.5, 1, (20, 2))]
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    clf = NearestMeanClassifier().fit(X, y)
    purity = prototype_purity(clf, X, y, aggregate=None)
    assert purity[0] != purity[1]
    page = make_report(clf, X[:1], X_train=X, y_train=y, n_neighbors=10)
    found = re.findall(r"\(1 prototypes, mean purity ([\d.]+)\)", page)
    assert found == [f"{p:.2f}" for p in purity]  # each class its own prototypes' mean
    Xi, yi = load_iris(return_X_y=True)
    iris = NearestMeanClassifier().fit(Xi, yi)
    page = make_report(iris, Xi[:1], n_prototypes=2)
    svg = page[page.index("<svg") : page.index("</svg>")]
    zero = re.findall(r"<rect class='(\w+)'[^>]*><title>[^<]*: 0</title>", svg)
    assert zero and set(zero) == {"pos"}  # a zero step is drawn as a positive one
    page = make_report(iris, Xi[:1], X_train=Xi, y_train=yi, n_neighbors=10)
    first = page[page.index("<div class='proto'") :]
    first = first[: first.index("</ol>")]
    assert first.count("<li") == 10


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProtoClassifier(head="linear", max_epochs=2, last_layer_max_iter=0, random_state=0),
        lambda: RBFPrototypeClassifier(
            loss="cbc", reasoning="positive_negative", max_epochs=2, random_state=0
        ),
    ],
)
def test_the_evidence_metrics_never_build_the_rows_x_prototypes_x_classes_array(make, monkeypatch):
    """Heads that connect every prototype to every class: the metrics took
    explain's (rows, prototypes, classes) contributions to read one class's
    column, so their time grew with the classes squared (a timing audit: RBF
    with 400 classes, own_class_evidence 7.0 s, now 0.06 s). They read the
    explained class's column only, with the same values."""
    from skproto.metrics import explanation_stability

    X, y = load_iris(return_X_y=True)
    clf = make().fit(X, y)
    expected = (own_class_evidence(clf, X), top_k_evidence_share(clf, X))
    ex = clf.explain(X, n_prototypes=len(clf.prototypes_))
    col = np.searchsorted(ex.classes, ex.explained)
    contrib = ex.contribution[np.arange(len(X)), :, col]
    positive = np.clip(contrib, 0, None)
    own = ex.prototype_label == ex.explained[:, None]
    share = (positive * own).sum(1) / positive.sum(1)
    assert expected[0] == pytest.approx(np.nanmean(share), abs=1e-12)
    calls = []
    cls = type(clf)
    monkeypatch.setattr(cls, "_contributions", lambda self, A: calls.append(1))
    assert (own_class_evidence(clf, X), top_k_evidence_share(clf, X)) == expected
    explanation_stability(clf, X[:20], n_draws=1, random_state=0)
    assert calls == []


def test_prototype_neighbours_sort_only_each_chunk_s_best_candidates(monkeypatch):
    """prototype_neighbors sorted every row of every chunk to keep the best
    n_neighbors (2,000 prototypes over 20,000 rows: 2.7 of 3.2 s in lexsort);
    each chunk is now cut to its best first, the same neighbours."""
    import skproto.metrics as metrics

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    expected = prototype_neighbors(clf, X, n_neighbors=5)
    widths = []
    lexsort = np.lexsort

    def recording(keys, axis=-1):
        widths.append(np.shape(keys[0])[-1])
        return lexsort(keys, axis=axis)

    monkeypatch.setattr(metrics.np, "lexsort", recording)
    np.testing.assert_array_equal(prototype_neighbors(clf, X, n_neighbors=5), expected)
    assert widths and max(widths) <= 10


@pytest.mark.parametrize(
    "make",
    [
        lambda: NearestMeanClassifier(),
        lambda: NearestMeanClassifier(metric="mahalanobis"),
        lambda: ProtoClassifier(max_epochs=2, random_state=0),
        lambda: ProtoClassifier(head="linear", max_epochs=2, last_layer_max_iter=0, random_state=0),
        lambda: RBFPrototypeClassifier(max_epochs=2, random_state=0),
        lambda: RBFPrototypeClassifier(loss="cbc", max_epochs=2, random_state=0),
        lambda: RBFPrototypeClassifier(
            loss="cbc", reasoning="positive_negative", max_epochs=2, random_state=0
        ),
    ],
)
def test_explained_contributions_are_a_column_of_the_contributions(make):
    """The metrics read _explained_contributions; every head's must be the
    column of its _contributions that each row names, to the bit."""
    X, y = load_iris(return_X_y=True)
    clf = make().fit(X, y)
    A = clf._activation(clf._pairwise(X))
    cols = np.random.RandomState(0).randint(0, len(clf.classes_), len(X))
    full = clf._contributions(A)
    np.testing.assert_array_equal(
        clf._explained_contributions(A, cols), full[np.arange(len(X)), :, cols]
    )


def test_explanation_stability_passes_an_own_class_head_once_per_chunk(monkeypatch):
    # explain's ranking of ties by class (contribution_order) needs the class of each
    # prototype: _top_prototype asked the head for the contributions a second time to
    # get them, another pass of ProtoClassifier's mixture head per chunk and draw
    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(max_epochs=2, random_state=0).fit(X, y)
    expected = explanation_stability(clf, X, n_draws=2, random_state=0, aggregate=None)
    calls = []
    passes = ProtoClassifier._own_class_contributions

    def counted(self, A):
        calls.append(len(A))
        return passes(self, A)

    monkeypatch.setattr(ProtoClassifier, "_own_class_contributions", counted)
    again = explanation_stability(clf, X, n_draws=2, random_state=0, aggregate=None)
    np.testing.assert_array_equal(again, expected)
    assert sum(calls) == 3 * len(X)  # the rows, then each draw's: one pass each


def test_neighbours_and_purity_rank_underflowed_detections_by_distance():
    """RBFPrototypeClassifier(sigma=0.02) on digits predicts well (0.99), but the
    detections exp(-dist / sigma) of most rows underflow to 0: tied at 0, the
    neighbours of a component were rows 0, 1, 2, ... and its purity that of
    those rows (0.28 on all of digits), not of its nearest rows (1.0)."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import pairwise_distances

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    clf = RBFPrototypeClassifier(sigma=0.02, max_epochs=2, random_state=0).fit(X, y)
    assert (clf.transform(X) == 0).mean() > 0.9  # (the case: most detections underflow)
    nearest = np.argsort(pairwise_distances(X, clf.prototypes_), axis=0, kind="stable")[:5].T
    np.testing.assert_array_equal(prototype_neighbors(clf, X, n_neighbors=5), nearest)
    expected = (y[nearest] == np.asarray(clf.prototype_labels_)[:, None]).mean(axis=1)
    np.testing.assert_allclose(prototype_purity(clf, X, y, n_neighbors=5, aggregate=None), expected)


def test_neighbours_rank_a_row_without_tokens_below_underflowed_rows():
    """A token row without a real token has similarity 0 by definition (not by
    underflow), and pooled_distances gives it a placeholder distance of 1: ranked by
    minus that distance, it was named the nearest neighbour of every prototype, above
    the real rows whose similarities underflowed (rows 67, 69 ... are nearer)."""
    from sklearn.datasets import load_digits

    from skproto.encoders import pack_tokens

    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    E = np.stack([X[:, :32], X[:, 32:]], axis=1)
    mask = np.ones((len(X), 2), dtype=int)
    mask[-1] = 0  # the last row: no real token
    clf = ProtoClassifier(
        similarity="rbf",
        n_tokens=2,
        projection=None,
        n_prototypes_per_class=1,
        max_epochs=2,
        random_state=0,
    ).fit(pack_tokens(E, mask), y)
    far = pack_tokens(E * 50 + 500, mask)  # every similarity underflows to 0
    assert (clf.transform(far) == 0).all()
    neighbors = prototype_neighbors(clf, far, n_neighbors=3)
    assert not (neighbors == len(X) - 1).any()
    d = clf._run("pooled_distances", clf._validate_X_predict(far))[:-1]
    expected = np.argsort(d, axis=0, kind="stable")[:3].T
    np.testing.assert_array_equal(neighbors, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_explanation_stability_refuses_noise_that_overflows_the_rows(dtype):
    """noise=1e200 moved the rows far beyond the 1e100 the model accepts: every squared
    distance overflowed to inf and the "stability" was read from ties, silently (1e40 on
    float32 rows: "computed non-finite class scores")."""
    X, y = load_iris(return_X_y=True)
    X = X.astype(dtype)
    clf = NearestMeanClassifier().fit(X, y)
    for noise in (1e120, 1e200):
        with pytest.raises(ValueError, match="noise=.* beyond 1e\\+100"):
            explanation_stability(clf, X, noise=noise, random_state=0)
    # float32 rows moved beyond float32's range are computed in float64, as float64 rows
    for noise in (1e30, 1e40):
        same = explanation_stability(clf, X.astype(np.float64), noise=noise, random_state=0)
        assert explanation_stability(clf, X, noise=noise, random_state=0) == pytest.approx(same)


@pytest.mark.parametrize("y", [None, 3])
def test_prototype_purity_refuses_a_y_that_is_no_array(y):
    """y=None failed with "TypeError: len() of unsized object"."""
    X, y_true = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y_true)
    with pytest.raises(ValueError, match="y must be an array-like of labels"):
        prototype_purity(clf, X, y)
