"""The Explanation result type: text, table, and its exact decomposition."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from skproto import Explanation, NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier

NAMES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def explanation():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(metric="mahalanobis").fit(X, NAMES[y])
    return clf, X[[0, 60, 120, 70]], clf.explain(X[[0, 60, 120, 70]], n_prototypes=2)


def test_fields_shapes_and_decomposition(explanation):
    clf, X, ex = explanation
    assert isinstance(ex, Explanation) and len(ex) == 4
    assert ex.prototype_index.shape == ex.value.shape == (4, 2)
    assert ex.contribution.shape == (4, 2, 3) and ex.other_contribution.shape == (4, 3)
    np.testing.assert_array_equal(ex.classes, clf.classes_)
    np.testing.assert_array_equal(ex.predicted, clf.predict(X))
    np.testing.assert_allclose(ex.scores, clf.decision_function(X), rtol=1e-10, atol=1e-10)
    scores = clf.decision_function(X)
    top2 = np.sort(scores, axis=1)[:, -2:]
    np.testing.assert_allclose(ex.margin, top2[:, 1] - top2[:, 0], rtol=1e-10)
    assert all(r != p for r, p in zip(ex.runner_up, ex.predicted))
    assert ex.value_name == "squared distance" and ex.bias_name == "log prior"


def test_text_names_classes_prototypes_and_totals(explanation):
    _, _, ex = explanation
    text = str(ex)
    lines = text.splitlines()
    assert lines[0] == "NearestMeanClassifier explanation of 4 sample(s)"
    assert "sample 0: predicted 'setosa'" in text
    assert "runner-up 'versicolor'" in text
    for needle in ["squared distance", "other prototypes", "log prior", "= class score"]:
        assert needle in text
    # the totals printed for sample 0 are its scores, rounded to 4 digits
    total = next(line for line in lines if "= class score" in line).split()
    pred = list(ex.classes).index(ex.predicted[0])
    assert float(total[-2]) == pytest.approx(ex.scores[0, pred], rel=1e-3)
    assert "<Explanation of 4 sample(s)" in repr(ex)


def test_text_is_truncated_for_many_samples():
    X, y = load_iris(return_X_y=True)
    ex = NearestMeanClassifier().fit(X, y).explain(X)
    text = str(ex)
    assert text.count("\nsample ") == 10
    assert text.rstrip().endswith("... 140 more sample(s); see to_frame()")


def test_records_and_frame(explanation):
    _, _, ex = explanation
    records = ex.to_records()
    assert len(records) == 4 * 2
    first = records[0]
    assert first["sample"] == 0 and first["rank"] == 1 and first["prototype_label"] == "setosa"
    assert first["training_index"] == -1
    pred = list(ex.classes).index(ex.predicted[0])
    assert first["to_explained"] == pytest.approx(float(ex.contribution[0, 0, pred]))
    assert first["predicted"] == first["explained"] == ex.predicted[0]
    pd = pytest.importorskip("pandas")
    frame = ex.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [
        "sample",
        "predicted",
        "explained",
        "runner_up",
        "margin",
        "rank",
        "prototype",
        "prototype_label",
        "training_index",
        "value",
        "to_explained",
        "to_runner_up",
    ]
    assert len(frame) == 8


def test_explain_rejects_bad_n_prototypes(explanation):
    clf, X, _ = explanation
    for bad in [0, -1, 1.5, "3"]:
        with pytest.raises(ValueError, match="n_prototypes must be a positive int"):
            clf.explain(X, n_prototypes=bad)


def test_text_columns_stay_aligned_with_long_labels():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["a", "an intent label that goes on and on and on", "mid-size label"])
    ex = NearestMeanClassifier().fit(X, labels[y]).explain(X[[0, 60, 120]], n_prototypes=3)
    text = str(ex)
    assert "Columns:" in text and "contribution" in text
    blocks = text.split("\nsample ")[1:]
    for block in blocks:
        table = block.splitlines()[1:]
        assert len({len(line) for line in table}) == 1, table  # every line ends at the same column
        assert all(len(line) < 140 for line in table)
        assert "…" in table[0] or "an intent" not in table[0]


def test_explain_ranks_by_contribution_by_default():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    ex = clf.explain(X, n_prototypes=1)
    assert ex.ranked_by == "contribution"
    np.testing.assert_array_equal(ex.prototype_label[:, 0], ex.explained)  # its own mean
    by_activation = clf.explain(X, n_prototypes=3, rank_by="activation")
    np.testing.assert_array_equal(by_activation.prototype_index[:, 0], clf.transform(X).argmin(1))
    with pytest.raises(ValueError, match="rank_by must be"):
        clf.explain(X, rank_by="similarity")


def _own_class_models():
    from skproto import ProtoClassifier, RBFPrototypeClassifier

    return {
        "nmc": NearestMeanClassifier(),
        "proto": ProtoClassifier(random_state=0, max_epochs=3),
        "rbf": RBFPrototypeClassifier(random_state=0, max_epochs=3),
    }


@pytest.mark.parametrize("name", ["nmc", "proto", "rbf"])
@pytest.mark.parametrize("rank_by", ["contribution", "activation"])
def test_own_class_heads_explain_without_the_dense_contribution_array(name, rank_by, monkeypatch):
    """Regression: explain built every row's (n_prototypes, n_classes) contributions,
    although each prototype of these heads speaks for its own class only: with
    1,000 classes of 5 prototypes that is 5 million numbers per row (explaining
    500 rows took 8.8 s against 0.05 s for predict_proba; now 0.28 s). The own-class
    path gives the dense path's explanation."""
    from sklearn.datasets import load_digits

    from skproto._base import BasePrototypeClassifier
    from skproto.metrics import own_class_evidence, top_k_evidence_share

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = _own_class_models()[name].fit(X[:800], y[:800])
    fast = clf.explain(X[800:900], n_prototypes=3, rank_by=rank_by)
    shares = own_class_evidence(clf, X[800:900], aggregate=None)
    tops = top_k_evidence_share(clf, X[800:900], k=2, aggregate=None)
    with monkeypatch.context() as m:  # the dense path, as before
        m.setattr(type(clf), "_contributions_are_own_class", False)
        dense = clf.explain(X[800:900], n_prototypes=3, rank_by=rank_by)
        np.testing.assert_allclose(own_class_evidence(clf, X[800:900], aggregate=None), shares)
        np.testing.assert_allclose(
            top_k_evidence_share(clf, X[800:900], k=2, aggregate=None), tops, atol=1e-12
        )
    np.testing.assert_array_equal(fast.prototype_index, dense.prototype_index)
    np.testing.assert_array_equal(fast.contribution, dense.contribution)
    np.testing.assert_allclose(fast.other_contribution, dense.other_contribution, atol=1e-12)
    np.testing.assert_allclose(fast.scores, clf.decision_function(X[800:900]), atol=1e-9)

    def dense_array(self, A):
        raise AssertionError("explain built the (rows, prototypes, classes) array")

    monkeypatch.setattr(BasePrototypeClassifier, "_contributions", dense_array)
    monkeypatch.setattr(type(clf), "_contributions", dense_array)
    clf.explain(X[800:810])
    own_class_evidence(clf, X[800:810])


def test_an_unknown_target_is_named_in_the_user_s_labels():
    """The error lists the classes as plain values ([0, 1, 2]), not numpy reprs
    ([np.int64(0), ...]); string labels as strings."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match=r"target has label 7, .*: \[0, 1, 2\]\.$"):
        clf.explain(X[:2], target=7)
    named = NearestMeanClassifier().fit(X, np.array(["a", "b", "c"])[y])
    with pytest.raises(ValueError, match=r"target has label 'z', .*: \['a', 'b', 'c'\]\.$"):
        named.explain(X[:2], target="z")


def test_text_of_an_explained_target_names_the_prediction_too():
    # with target= the header called the target "predicted"
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    assert clf.predict(X[:1])[0] == 0
    text = str(clf.explain(X[:1], 2, target=2))
    assert "sample 0: predicted 0 (score " in text and "; explaining 2 (score " in text


def test_long_labels_that_differ_at_their_end_stay_apart():
    # shortened at the end, "..._billing" and "..._billing2" read the same
    from skproto.explain._explanation import _label

    a, b = "customer_support_request_billing", "customer_support_request_billing2"
    assert _label(a) != _label(b) and len(_label(a)) <= 24 and "…" in _label(b)
    assert _label(a, limit=None) == repr(a)


def test_prototype_rows_and_the_embedding_plot_under_pandas_output():
    # the fallback search of prototype_rows and EmbeddingDisplay indexed transform
    # output as an ndarray: InvalidIndexError under transform_output="pandas"
    pytest.importorskip("pandas")
    import sklearn

    from skproto.explain import prototype_rows

    t = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    ring = 5 * np.c_[np.cos(t), np.sin(t)]  # class 0: a ring around class 1's blob
    blob = np.random.RandomState(0).normal(scale=0.3, size=(30, 2))
    X, y = np.r_[ring, blob], np.r_[np.zeros(30, int), np.ones(30, int)]
    clf = NearestMeanClassifier().fit(X, y)
    expected = prototype_rows(clf, X, y)
    with sklearn.config_context(transform_output="pandas"):
        np.testing.assert_array_equal(prototype_rows(clf, X, y), expected)
    clf.set_output(transform="pandas")
    np.testing.assert_array_equal(prototype_rows(clf, X, y), expected)
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.decomposition import PCA

    from skproto.explain import EmbeddingDisplay

    Xi, yi = load_iris(return_X_y=True)
    model = NearestMeanClassifier().fit(Xi, yi)
    plain = EmbeddingDisplay.from_estimator(model, Xi, yi)
    with sklearn.config_context(transform_output="pandas"):
        shown = EmbeddingDisplay.from_estimator(model, Xi, yi)
    np.testing.assert_allclose(shown.points, plain.points)
    pca = PCA(2).set_output(transform="pandas")
    assert EmbeddingDisplay.from_estimator(model, Xi, yi, method=pca).points.shape == (150, 2)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_project_prototypes_and_merge_of_unfitted_models_raise_not_fitted():
    from sklearn.exceptions import NotFittedError

    from skproto import ProtoClassifier

    X, y = load_iris(return_X_y=True)
    with pytest.raises(NotFittedError):
        ProtoClassifier().project_prototypes(X, y)
    with pytest.raises(NotFittedError, match="all models passed to merge must be fitted"):
        NearestMeanClassifier().fit(X, y).merge(NearestMeanClassifier())


def test_explain_decides_as_predict_where_float32_probabilities_tie():
    # explain took the argmax of float64 probabilities, predict that of the float32
    # ones predict_proba returns: on tied rows it explained a class not predicted
    from skproto import RBFPrototypeClassifier

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    m = y > 0
    clf = RBFPrototypeClassifier(4, max_epochs=5, random_state=0).fit(X[m], y[m])
    a, b = X[60], X[120]
    lo, hi = 0.0, 1.0  # the decision boundary on the segment a-b
    first = clf.predict(a[None])[0]
    for _ in range(60):
        mid = (lo + hi) / 2
        same = clf.predict(((1 - mid) * a + mid * b)[None])[0] == first
        lo, hi = (mid, hi) if same else (lo, mid)
    x0 = ((1 - lo) * a + lo * b).astype(np.float32)
    rows = []
    for j in range(4):  # float32 neighbours of the boundary point
        v = x0[j]
        for _ in range(300):
            v = np.nextafter(v, np.float32(np.inf))
            x = x0.copy()
            x[j] = v
            rows.append(x)
    C = np.array(rows, dtype=np.float32)
    ex = clf.explain(C, 1)
    np.testing.assert_array_equal(ex.predicted, clf.predict(C))
    np.testing.assert_array_equal(ex.explained, clf.predict(C))


def test_with_prototype_cases_keeps_images_whole_and_checks_lengths():
    # np.asarray of equal-shape images made an (n, n_top, 8, 8) array of pixels
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    ex = clf.explain(X[:2], n_prototypes=3)
    images = [X[y == c].mean(0).reshape(8, 8) for c in clf.classes_]
    shown = ex.with_prototype_cases(images)
    assert shown.cases.shape == (2, 3)
    assert shown.cases[0, 0].shape == (8, 8)
    assert "<image 8x8>" in str(shown)
    pairs = ex.with_prototype_cases([(c, c) for c in range(10)])
    assert pairs.cases.shape == (2, 3) and pairs.cases[0, 0] == (ex.prototype_index[0, 0],) * 2
    with pytest.raises(ValueError, match="prototype_cases has 1 entries, but this explanation"):
        ex.with_prototype_cases(["a"])
    with pytest.raises(ValueError, match="prototype_rows has 1 entries, but this explanation"):
        ex.with_cases(list(range(len(X))), [1])
    with pytest.raises(ValueError, match="n_prototypes must be a positive int, got True"):
        clf.explain(X[:2], True)


def test_the_legend_of_a_multi_label_explanation_of_a_label_not_predicted():
    from sklearn.datasets import make_multilabel_classification

    from skproto import ProtoClassifier

    X, Y = make_multilabel_classification(n_samples=150, n_features=6, n_classes=3, random_state=0)
    clf = ProtoClassifier(2, max_epochs=3, random_state=0).fit(X, Y)
    row = np.flatnonzero(clf.predict(X)[:, 0] == 0)[:1]
    text = " ".join(str(clf.explain(X[row], 1, target=0)).splitlines()[1:3])
    assert "contributions to the explained class's score" in text
    predicted = int(np.flatnonzero(clf.predict(X[row])[0])[0])
    text = " ".join(str(clf.explain(X[row], 1, target=predicted)).splitlines()[1:3])
    assert "contributions to the predicted class's score" in text


# ---------------------------------------------------------------------------
# Tests for the survivors of a mutation audit of explain/ (each mutant, applied
# to a copy of HEAD, passed the suite before these)


def test_the_runner_up_s_numbers_in_text_and_records_are_its_own():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    ex = clf.explain(X[[60]], n_prototypes=2)
    scores = clf.decision_function(X[[60]])[0]
    pred, run = (list(clf.classes_).index(v) for v in (ex.predicted[0], ex.runner_up[0]))
    line = next(row for row in str(ex).splitlines() if row.startswith("sample 0"))
    assert f"runner-up {ex.runner_up[0]} (score {scores[run]:.4g})" in line
    for rec in ex.to_records():  # each mean speaks only for its own class
        own = clf.prototype_labels_[rec["prototype"]]
        assert (rec["to_runner_up"] != 0) == (own == ex.runner_up[0])
        assert (rec["to_explained"] != 0) == (own == ex.predicted[0])
    assert pred != run


def test_a_label_of_exactly_the_shown_length_is_shown_whole():
    X = np.array([[0.0], [1.0], [9.0], [10.0]])
    y = np.array(["a" * 22, "a" * 22, "b" * 22, "b" * 22])  # a repr of 24 characters
    ex = NearestMeanClassifier().fit(X, y).explain(X[:1], n_prototypes=1)
    line = next(row for row in str(ex).splitlines() if row.startswith("sample 0"))
    assert repr("a" * 22) in line and repr("b" * 22) in line


def test_cases_of_prototypes_without_a_row_and_a_short_case_list():
    X = np.array([[0.0], [1.0], [9.0], [10.0]])
    clf = NearestMeanClassifier().fit(X, [0, 0, 1, 1])
    ex = clf.explain([[9.5]], n_prototypes=2)
    assert ex.with_cases(["a", "b", "c", "d"]).cases.tolist() == [[None, None]]  # means
    three = NearestMeanClassifier().fit(np.array([[0.0], [5.0], [10.0]]), [0, 1, 2])
    listed = three.explain([[10.0]], n_prototypes=1)  # lists prototype 2
    with pytest.raises(ValueError, match="prototype_cases has 2 entries"):
        listed.with_prototype_cases(["c0", "c1"])


def test_the_legend_of_a_targeted_explanation_names_the_explained_class():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    assert "explained class's score" in str(clf.explain(X[[0]], n_prototypes=2, target=2))
    assert "predicted class's score" in str(clf.explain(X[[0]], n_prototypes=2))


def test_the_waterfall_counts_the_prototypes_it_does_not_list():
    from skproto.explain import waterfall

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)  # 3 prototypes, 1 listed
    assert waterfall(clf.explain(X[:1], n_prototypes=1), 0).steps[-1].label == (
        "2 other prototypes"
    )


def test_the_waterfall_checks_its_column_and_row():
    """A column other than the two class columns, or a row past the
    explanation, is refused by name (the docs audit found an AttributeError
    for 'x', an IndexError from numpy for 'margin', and 'predicted' accepted);
    rows count from the end as in Python."""
    from skproto.explain import waterfall

    X, y = load_iris(return_X_y=True)
    ex = NearestMeanClassifier().fit(X, y).explain(X[[0, 50, 100]], n_prototypes=1)
    for column in ("x", "margin", "predicted"):
        with pytest.raises(
            ValueError, match=f"column must be 'explained' or 'runner_up', got '{column}'"
        ):
            waterfall(ex, 0, column=column)
    for row in (3, -4):
        with pytest.raises(
            IndexError, match=f"sample {row} is out of range for an explanation of 3 rows"
        ):
            waterfall(ex, row)
    assert waterfall(ex, -1).label == waterfall(ex, 2).label == 2
    assert waterfall(ex, -1, column="runner_up").score == waterfall(ex, 2, column="runner_up").score


def test_a_pipeline_keeps_the_cases_given_beside_its_training_rows():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skproto.explain._steps import unpipe

    X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), [0, 0, 1, 1]
    pipe = make_pipeline(StandardScaler(), NearestMeanClassifier()).fit(X, y)
    texts = ["zero", "one", "nine", "ten"]
    assert list(unpipe(pipe, X[:1], X, cases=texts)[4]) == texts


def test_a_prototype_is_represented_by_the_nearest_row_of_its_own_class():
    from skproto.explain import prototype_rows
    from skproto.metrics import prototype_neighbors

    X, y = np.array([[-10.0], [10.0], [0.5], [19.5]]), np.array([0, 0, 1, 1])
    clf = NearestMeanClassifier().fit(X, y)  # means 0 and 10: each nearer the other's rows
    np.testing.assert_array_equal(y[prototype_rows(clf, X, y)], [0, 1])
    np.testing.assert_array_equal(prototype_rows(clf, X, y), [0, 2])
    # one neighbour each: class 1's (its mean 19.53) is row 3, of class 0; its
    # nearest own row is then 28.0. (Two rows of a class are as near to their
    # mean: the test read a tie that rounding broke, and the row hash moved it)
    X = np.array([[-10.0], [4.0], [7.5], [19.0], [0.6], [30.0], [28.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    clf = NearestMeanClassifier().fit(X, y)
    near = prototype_neighbors(clf, X, n_neighbors=1)
    assert near[:, 0].tolist() == [1, 3]
    np.testing.assert_array_equal(prototype_rows(clf, X, y, neighbors=near), [1, 6])


# --------------------------------------------- pins from a mutation audit of the text
def test_ten_samples_are_printed_whole_and_eleven_are_cut():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    ten = str(clf.explain(X[:10], 1))
    assert ten.count("\nsample ") == 10 and "more sample(s)" not in ten
    eleven = str(clf.explain(X[:11], 1))
    assert eleven.count("\nsample ") == 10
    assert eleven.rstrip().endswith("... 1 more sample(s); see to_frame()")


def test_a_total_row_wider_than_the_columns_widens_them():
    # the totals' numbers stay under their columns when a row's name is long
    import dataclasses

    X, y = load_iris(return_X_y=True)
    ex = NearestMeanClassifier().fit(X, y).explain(X[:1], 2)
    ex = dataclasses.replace(
        ex, bias_name="log prior of the class, as estimated from the training data"
    )
    table = str(ex).split("\nsample ")[1].splitlines()[1:]
    assert any("log prior of the class, as estimated" in line for line in table)
    assert len({len(line) for line in table}) == 1, table


def test_training_row_zero_is_a_row():
    # row 0 is a training row like any other: shown in the text, its case attached
    import dataclasses

    X, y = load_iris(return_X_y=True)
    ex = NearestMeanClassifier().fit(X, y).explain(X[:1], 2)
    ex = dataclasses.replace(ex, prototype_sample_index=np.array([[0, 7]]))
    rows = [line.split() for line in str(ex).splitlines() if line.strip()[:2] in ("1 ", "2 ")]
    assert [r[1:2] + r[3:4] for r in rows][:2] == [["0", "0"], ["1", "7"]]
    cases = ex.with_cases(["case0", "case1", "case2", *["x"] * 5], prototype_rows=[0, 1, 2])
    assert cases.cases.tolist() == [[f"case{k}" for k in ex.prototype_index[0]]]
    assert cases.case_rows.tolist() == [ex.prototype_index[0].tolist()]


def test_with_cases_refuses_a_row_one_past_the_cases():
    X, y = load_iris(return_X_y=True)
    ex = NearestMeanClassifier().fit(X, y).explain(X[:2], 2)
    with pytest.raises(ValueError, match="cases has 2 entries but a prototype is training row 2"):
        ex.with_cases(["a", "b"], prototype_rows=[2, 2, 2])


def test_a_binary_explanation_names_the_other_class_as_runner_up():
    X, y = load_iris(return_X_y=True)
    keep = y < 2
    clf = NearestMeanClassifier().fit(X[keep], y[keep])
    ex = clf.explain(X[[0, 60]], 1)
    np.testing.assert_array_equal(ex.runner_up, [1, 0])
    scores = clf.decision_function(X[[0, 60]])
    scores = np.column_stack([-scores / 2, scores / 2]) if scores.ndim == 1 else scores
    np.testing.assert_allclose(ex.margin, np.abs(scores[:, 1] - scores[:, 0]), rtol=1e-10)
    assert np.isfinite(ex.margin).all()


def test_explain_refuses_targets_of_another_length():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    message = r"target must be one label or one label per sample \(2\), got shape \(3,\)"
    with pytest.raises(ValueError, match=message):
        clf.explain(X[:2], 1, target=[2, 1, 0])
    with pytest.raises(ValueError, match=r"one label per sample \(2\), got shape \(1,\)"):
        clf.explain(X[:2], 1, target=[2])


def test_a_class_added_by_partial_fit_has_no_case_row():
    # class 1 arrives later and sorts between 0 and 2: its mean is no training row,
    # and the case rows of the others move with them
    from skproto.explain import attach_cases

    X, y = load_iris(return_X_y=True)
    first = y != 1
    cases = np.array([f"row{i}" for i in range(first.sum())], dtype=object)
    clf = NearestMeanClassifier().fit(attach_cases(X[first].copy(), cases), y[first])
    before = clf.explain(X[[0, 120]], 1, rank_by="activation")
    clf.partial_fit(X[y == 1], y[y == 1])
    ex = clf.explain(X[[60]], n_prototypes=3, rank_by="activation")
    position = dict(zip(ex.prototype_index[0].tolist(), ex.case_rows[0].tolist()))
    assert position[1] == -1 and ex.cases[0, list(ex.prototype_index[0]).index(1)] is None
    assert position[0] == before.case_rows[0, 0] and position[2] == before.case_rows[1, 0]


def test_a_multilabel_prototype_is_represented_by_a_row_carrying_its_label():
    # (a surviving mutant took each prototype's nearest row whatever its labels:
    # label 2 is noise here, so the nearest row of its prototypes rarely has it)
    from skproto import ProtoClassifier
    from skproto.explain import prototype_rows

    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    Y = np.c_[X[:, 0] > 0, X[:, 1] > 0, rng.rand(200) < 0.2].astype(int)
    clf = ProtoClassifier(n_prototypes_per_class=3, project=False, max_epochs=3, random_state=0)
    clf.fit(X, Y)
    rows = prototype_rows(clf, X, Y)
    codes = np.searchsorted(clf.classes_, clf.prototype_labels_)
    assert (rows >= 0).all() and (Y[rows, codes] == 1).all()


def test_runner_up_and_prototype_rows_take_a_pipeline():
    # both raised "'Pipeline' object has no attribute ..." while the metrics,
    # the displays and make_report take a Pipeline ending in a skproto model
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skproto.explain import explain_with_runner_up, prototype_rows

    X, y = load_iris(return_X_y=True)
    X = X * [1.0, 100.0, 1.0, 1.0]  # (the scaler changes which rows represent the means)
    pipe = make_pipeline(StandardScaler(), NearestMeanClassifier()).fit(X, y)
    clf, Z = pipe[-1], pipe[0].transform(X)
    rows = prototype_rows(pipe, X, y)
    np.testing.assert_array_equal(rows, prototype_rows(clf, Z, y))
    assert not np.array_equal(rows, prototype_rows(NearestMeanClassifier().fit(X, y), X, y))
    cases = [f"row {i}" for i in range(len(X))]
    got = explain_with_runner_up(pipe, X[[0, 60, 120]], cases=cases, X_train=X, y_train=y)
    want = explain_with_runner_up(clf, Z[[0, 60, 120]], cases=cases, X_train=Z, y_train=y)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.cases, b.cases)
    # a one-step Pipeline is its classifier (it was returned whole, and refused)
    from sklearn.pipeline import Pipeline

    from skproto.metrics import prototype_purity

    one = Pipeline([("clf", NearestMeanClassifier())]).fit(Z, y)
    np.testing.assert_array_equal(prototype_rows(one, Z, y), rows)
    first, _ = explain_with_runner_up(one, Z[[0, 60, 120]], cases=cases, X_train=Z, y_train=y)
    np.testing.assert_array_equal(first.cases, want[0].cases)
    assert prototype_purity(one, Z, y) == prototype_purity(clf, Z, y)


@pytest.mark.parametrize(
    "make",
    [
        lambda: NearestMeanClassifier(),
        lambda: ProtoClassifier(head="linear", max_epochs=2, last_layer_max_iter=0, random_state=0),
    ],
)
def test_an_explanation_shares_no_array_with_the_model(make):
    """explain's bias and classes were the model's own arrays: editing one
    explanation changed classes_ (and predict) and every later explanation
    (a state audit)."""
    X, y = load_iris(return_X_y=True)
    clf = make().fit(X, y)
    classes = clf.classes_.copy()
    ex = clf.explain(X[:5])
    ex.bias[:] = 0.0
    ex.classes[:] = classes + 10
    np.testing.assert_array_equal(clf.classes_, classes)
    later = clf.explain(X[:5])
    np.testing.assert_allclose(later.scores, clf.decision_function(X[:5]), rtol=1e-9, atol=1e-9)


# ---- what a person reads in str(explanation) (an audit of the human-facing output)
_ISOLATE_OPEN, _ISOLATE_CLOSE = "\u2066\u2067\u2068", "\u2069"


def _unisolated_rtl(line: str) -> list[str]:
    """Right-to-left letters and bidi embeddings / overrides outside an isolate."""
    import unicodedata

    depth, bad = 0, []
    for ch in line:
        if ch in _ISOLATE_OPEN:
            depth += 1
        elif ch == _ISOLATE_CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and unicodedata.bidirectional(ch) in (
            "R", "AL", "RLO", "RLE", "LRO", "LRE", "PDF",
        ):  # fmt: skip
            bad.append(ch)
    return bad


def _four_rows():
    X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    return X, y, NearestMeanClassifier().fit(X, y)


def test_str_isolates_right_to_left_cases_from_the_numbers_beside_them():
    """In a bidi-aware view of str(explanation) (a notebook's output, a browser's
    <pre>), an Arabic case swapped the similarity and contribution columns and a
    RIGHT-TO-LEFT OVERRIDE in a case showed 0.9917 as 7199.0. Such cases are now
    wrapped in directional isolates, and bidi controls in them shown escaped (a
    POP DIRECTIONAL ISOLATE in a case would close the isolate early)."""
    from skproto.explain import prototype_rows

    X, y, clf = _four_rows()
    cases = ["\u202eevil \u2069\u0645", "b", "مرحبا بالعالم", "d"]
    ex = clf.explain([[9.5]], 2).with_cases(cases, prototype_rows(clf, X, y))
    assert set(ex.cases.ravel()) == {cases[0], cases[2]}
    text = str(ex)
    bad = {ln: _unisolated_rtl(ln) for ln in text.splitlines() if _unisolated_rtl(ln)}
    assert not bad, bad
    assert "\\u202eevil \\u2069\u0645" in text and "\u202e" not in text


def test_str_isolates_right_to_left_class_labels_from_the_numbers_beside_them():
    """Arabic class labels: the header showed the two '-> c' columns swapped and a
    contribution -1.593 as '1.593-' under 'class'."""
    X = np.array([[0.0], [1.0], [9.0], [10.0]])
    clf = NearestMeanClassifier().fit(X, np.array(["إلغاء", "إلغاء", "رصيد", "رصيد"]))
    lines = str(clf.explain([[9.5]], 2)).splitlines()
    bad = {ln: _unisolated_rtl(ln) for ln in lines if _unisolated_rtl(ln)}
    assert not bad, bad
    plain = str(NearestMeanClassifier().fit(X, np.array(list("aabb"))).explain([[9.5]], 2))
    assert "\u2068" not in plain  # (left-to-right text is left as it is)


def test_str_columns_stay_aligned_with_wide_and_combining_characters():
    """Widths were counted with len(): with CJK cases the header and the rows were
    89, 97 and 105 columns wide on a screen, the numbers under the wrong header."""
    import unicodedata

    from skproto.explain import prototype_rows

    def width(text: str) -> int:
        return sum(
            0
            if unicodedata.combining(ch) or unicodedata.category(ch) == "Cf"
            else 2
            if unicodedata.east_asian_width(ch) in "WF"
            else 1
            for ch in text
        )

    X, y, clf = _four_rows()
    cases = ["日本語のテキスト", "e\u0301e\u0301", "日本語のテキスト日本語のテキスト", "plain"]
    ex = clf.explain([[9.5], [0.5]], 2).with_cases(cases, prototype_rows(clf, X, y))
    lines = str(ex).splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("rank")]
    assert len(starts) == 2
    for start in starts:
        table = lines[start : start + 3]  # the header and the two prototypes' rows
        assert len({width(ln) for ln in table}) == 1, table


def test_shortened_labels_never_make_two_classes_read_the_same():
    """Labels cut to 24 characters in the middle read the same where they differ
    only there: the header showed "-> 'support_le…on_required'" twice."""
    from skproto.explain._explanation import label_texts

    X = np.array([[0.0], [1.0], [9.0], [10.0], [20.0], [21.0]])
    labels = np.array(
        ["support_level_1_escalation_required", "support_level_2_escalation_required", "z"]
    )
    clf = NearestMeanClassifier().fit(X, labels[[0, 0, 1, 1, 2, 2]])
    lines = str(clf.explain([[5.0]], 2)).splitlines()
    header = next(ln for ln in lines if ln.lstrip().startswith("rank"))
    to_first, to_second = header.split("-> ")[1:]
    assert to_first.strip() != to_second.strip(), header
    texts = label_texts(["a" * 40, "a" * 40, "b" + "a" * 39, "short"])
    assert texts[0] == texts[1] and texts[0] != texts[2]  # (one label, one name)
    assert len(texts[0]) < 40 + 2 and texts[3] == "'short'"


def test_records_tell_the_prediction_from_a_targeted_class():
    """to_records put the class given as target= in its 'predicted' column (and
    the contribution to it in 'to_predicted'): the frame misreported the model's
    prediction."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, np.array(["ant", "bee", "cow"])[y])
    predicted = clf.predict(X[:1])[0]
    other = next(c for c in clf.classes_ if c != predicted)
    ex = clf.explain(X[:1], 1, target=[other])
    (record,) = ex.to_records()
    assert record["predicted"] == predicted and record["explained"] == other
    column = list(clf.classes_).index(other)
    assert record["to_explained"] == pytest.approx(float(ex.contribution[0, 0, column]))


def test_waterfalls_do_not_each_rename_every_class(monkeypatch):
    """Each waterfall named every class again (to keep shortened names apart): a
    report of 100 queries over 2,000 classes took 12.5 s instead of 0.1 s (a
    review). The names are computed once per explanation."""
    import skproto.explain._explanation as module
    from skproto.explain import waterfall

    rng = np.random.RandomState(0)
    K = 2000
    X, y = rng.randn(2 * K, 3), np.repeat([f"c{i:04d}" for i in range(K)], 2)
    ex = NearestMeanClassifier().fit(X, y).explain(X[:20])
    calls = []
    label = module._label
    monkeypatch.setattr(module, "_label", lambda *a, **k: calls.append(1) or label(*a, **k))
    for i in range(20):
        waterfall(ex, i)
        waterfall(ex, i, column="runner_up")
    str(ex)
    assert len(calls) <= 2 * K + 1000, len(calls)  # one pass over the classes


def test_an_untargeted_multilabel_panel_says_which_score_it_is():
    """A multi-label row that predicts no label was titled 'explained, not
    predicted' (the words for a target) where the report says 'not predicted
    (highest score)' (a review). Plots and report now read the same role."""
    from sklearn.datasets import make_multilabel_classification

    from skproto.explain import waterfall
    from skproto.explain._steps import runner_up_waterfall

    X, Y = make_multilabel_classification(200, 10, n_classes=4, random_state=0)
    clf = ProtoClassifier(n_prototypes_per_class=2, max_epochs=3, random_state=0).fit(X, Y)
    ex = clf.explain(X[:10])
    predicted = clf.predict(X[:10])
    (none,) = np.nonzero(predicted.sum(1) == 0)
    (some,) = np.nonzero(predicted.sum(1) > 0)
    assert len(none) and len(some)
    assert waterfall(ex, int(none[0])).role == "not predicted (highest score)"
    assert waterfall(ex, int(some[0])).role == "predicted (highest score)"
    assert waterfall(ex, int(none[0]), column="runner_up").role == "not predicted (next score)"
    target = ex.classes[np.argmin(ex.scores[some[0]])]
    targeted = clf.explain(X[some[:1]], target=[target])
    assert waterfall(targeted, 0).role.endswith("(target)")
    second = clf.explain(X[none[:1]], target=ex.runner_up[none[:1]])
    assert runner_up_waterfall(second, 0).role == "not predicted (next score)"


def _dense_head(kind: str, epochs: int):
    """A head whose prototypes speak for every class: CBC or ProtoPNet's linear one."""
    from skproto import RBFPrototypeClassifier

    if kind == "rbf-cbc":
        return RBFPrototypeClassifier(loss="cbc", max_epochs=epochs, random_state=0)
    return ProtoClassifier(head="linear", max_epochs=epochs, last_layer_max_iter=0, random_state=0)


@pytest.mark.parametrize("kind", ["rbf-cbc", "proto-linear"])
def test_explaining_a_dense_head_builds_no_rows_by_prototypes_by_classes_array(kind, monkeypatch):
    # explain built each chunk's (rows, K, C) contributions element by element
    # (and RBF's presence and absence parts twice over, once for their sum): with
    # 300 and 200 classes 55x and 120x transform + predict_proba, and 44x the same
    # explanation from matrix products (the listed prototypes' terms gathered,
    # the others' sum the products' less theirs); with 500 classes 1.6 s (CBC)
    # and 2.1 s (linear) for 300 rows. The numbers are the full array's

    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(40), 3)
    X = rng.normal(size=(120, 8)) + 4 * rng.normal(size=(40, 8))[y]
    clf = _dense_head(kind, epochs=2).fit(X, y)
    Xt = rng.normal(size=(30, 8))
    A = clf._activation(clf._pairwise(Xt))
    full = clf._contributions(A)  # (rows, K, C)
    expected = clf.explain(Xt, n_prototypes=4)
    np.testing.assert_allclose(expected.scores, clf.decision_function(Xt), rtol=1e-5, atol=1e-5)
    top = expected.prototype_index
    np.testing.assert_array_equal(
        expected.contribution, np.take_along_axis(full, top[:, :, None], axis=1)
    )
    rest = full.sum(axis=1) - expected.contribution.sum(axis=1)
    np.testing.assert_allclose(expected.other_contribution, rest, atol=1e-5)
    if kind == "rbf-cbc":
        assert set(expected.parts) == {"presence", "absence"}
        np.testing.assert_array_equal(
            expected.parts["presence"] + expected.parts["absence"], expected.contribution
        )
    calls = []
    monkeypatch.setattr(type(clf), "_contributions", lambda self, A: calls.append(1))
    ex = clf.explain(Xt, n_prototypes=4)
    assert calls == []
    np.testing.assert_array_equal(ex.prototype_index, top)
    np.testing.assert_array_equal(ex.contribution, expected.contribution)


@pytest.mark.parametrize("kind", ["rbf-cbc", "proto-linear"])
def test_with_every_prototype_listed_a_dense_head_has_no_other_contribution(kind):
    # regression: other_contribution became the products g(A) @ U less the listed
    # terms, a rounding residue (1e-15) where no prototype is left ("0 other
    # prototypes" with a value); it was exactly 0

    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(5), 12)
    X = rng.normal(size=(60, 4)) + 3 * rng.normal(size=(5, 4))[y]
    clf = _dense_head(kind, epochs=3).fit(X, y)
    ex = clf.explain(X[:20], n_prototypes=len(clf.prototypes_))
    assert (ex.other_contribution == 0).all()
    np.testing.assert_allclose(ex.scores, clf.decision_function(X[:20]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "make, shift",
    [
        (lambda: RBFPrototypeClassifier(max_epochs=20, random_state=0), 500.0),
        (lambda: RBFPrototypeClassifier(loss="cbc", max_epochs=5, random_state=0), 500.0),
        (
            lambda: ProtoClassifier(
                similarity="rbf", projection=None, max_epochs=5, random_state=0
            ),
            100.0,
        ),
    ],
    ids=["rbf-nearest", "rbf-cbc", "proto-rbf"],
)
def test_explain_names_the_nearest_prototypes_where_similarities_underflow(make, shift):
    # exp(-distance / sigma) is 0 for a query far from every prototype: explain
    # ranked the zeros by index and named prototype 0 (of class 0, with
    # rank_by="contribution" too, for a row that the nearest component, of class
    # 2, predicts) instead of the nearest ones
    from skproto import RBFPrototypeClassifier as RBF
    from skproto.metrics import _top_prototype  # (explanation_stability's ranking)

    X, y = load_iris(return_X_y=True)
    clf = make().fit(X, y)
    q = X[[100, 120]] + shift
    assert (clf.transform(q) == 0).all()  # every similarity underflows
    Z = q if isinstance(clf, RBF) else clf._run("latent", q)
    nearest = np.argsort(((Z[:, None, :] - clf.prototypes_) ** 2).sum(-1), axis=1)[:, :2]
    ex = clf.explain(q, n_prototypes=2, rank_by="activation")
    np.testing.assert_array_equal(ex.prototype_index, nearest)
    if isinstance(clf, RBF) and clf.loss == "robust":  # the nearest head
        ex = clf.explain(q, n_prototypes=1)
        np.testing.assert_array_equal(ex.prototype_index[:, 0], nearest[:, 0])
        np.testing.assert_array_equal(ex.prototype_label[:, 0], clf.predict(q))
        np.testing.assert_array_equal(_top_prototype(clf, q), nearest[:, 0])
    # where nothing underflows, the ranking is the activations' as before
    ex = clf.explain(X, n_prototypes=3, rank_by="activation")
    A = clf.transform(X)
    np.testing.assert_array_equal(ex.prototype_index, np.argsort(-A, axis=1, kind="stable")[:, :3])


@pytest.mark.parametrize(
    "kw, shift, zero",
    [
        (dict(similarity="cosine"), 0.0, True),  # the cosine of a zero row is 0
        (dict(similarity="rbf"), 100.0, False),  # exp(-d / width) underflows to 0
    ],
    ids=["cosine-zero-row", "rbf-far-row"],
)
def test_contribution_ties_name_prototypes_of_the_explained_class(kw, shift, zero):
    # one prototype per class: a row whose similarity to every prototype is 0 gives
    # each a contribution of 0, and explain (with explanation_stability's ranking)
    # named prototype 0, of class 0, for a row predicted to be of class 2 by the biases
    from skproto.metrics import _top_prototype

    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(
        n_prototypes_per_class=1, projection=None, max_epochs=5, random_state=0, **kw
    ).fit(X, NAMES[y])
    q = np.zeros((2, 4)) if zero else X[[100, 120]] + shift
    assert (clf.transform(q) == 0).all()
    ex = clf.explain(q, n_prototypes=1)
    np.testing.assert_array_equal(ex.prototype_label[:, 0], clf.predict(q))
    for target in clf.classes_:
        ex = clf.explain(q, n_prototypes=1, target=target)
        assert (ex.prototype_label == target).all()
    np.testing.assert_array_equal(clf.prototype_labels_[_top_prototype(clf, q)], clf.predict(q))


def test_representatives_of_underflowed_components_are_their_nearest_own_class_rows():
    """A component of RBFPrototypeClassifier after partial_fit is no training row;
    its representative is the row of its class that activates it most. With
    sigma=0.02 on digits most detections underflow to 0, and the representative
    was the first row of the class (tied at 0), not the nearest one."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import pairwise_distances

    from skproto.explain import prototype_rows

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    clf = RBFPrototypeClassifier(sigma=0.02, random_state=0).partial_fit(
        X, y, classes=np.arange(10)
    )
    assert (clf._prototype_sample_indices() < 0).all()  # (components, no rows)
    assert (clf.transform(X) == 0).mean() > 0.9
    distance = pairwise_distances(X, clf.prototypes_)
    expected = [
        np.flatnonzero(y == label)[np.argmin(distance[y == label, k])]
        for k, label in enumerate(clf.prototype_labels_)
    ]
    np.testing.assert_array_equal(prototype_rows(clf, X, y), expected)
    # the search of the class's rows when none of the given neighbours is of its class
    no_neighbours = np.full((len(expected), 1), -1)
    np.testing.assert_array_equal(prototype_rows(clf, X, y, neighbors=no_neighbours), expected)


@pytest.mark.parametrize(
    "make",
    [
        NearestMeanClassifier,
        lambda: ProtoClassifier(n_prototypes_per_class=1, max_epochs=2, random_state=0),
        lambda: ProtoClassifier(head="linear", n_prototypes_per_class=1, max_epochs=2),
        lambda: RBFPrototypeClassifier(random_state=0),
    ],
)
def test_a_class_scoring_minus_inf_is_no_runner_up(make):
    """runner_up is the explained class itself where every other class is declared
    to partial_fit without rows yet (margin inf), as documented and as the heads
    that mark such classes impossible did; NearestMeanClassifier and the mixture
    head, whose scores say so by -inf, named the class of score -inf the runner-up
    (the argmax of -inf), and the report and plots drew its -inf waterfall."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    clf = make().partial_fit(X, [1, 1, 1], classes=[1, -2])
    ex = clf.explain(X, 2)
    assert ex.explained.tolist() == [1, 1, 1]
    assert ex.runner_up.tolist() == [1, 1, 1] and np.all(ex.margin == np.inf)
    # a class with rows is still the runner-up beside one without
    clf = make().partial_fit(X, [1, 1, 3], classes=[1, -2, 3])
    ex = clf.explain(X, 2)
    assert set(ex.runner_up.tolist()) <= {1, 3} and np.all(np.isfinite(ex.margin))


def test_waterfall_refuses_a_bool_sample():
    """waterfall(e, True) failed inside numpy ("only 0-dimensional arrays can be
    converted to Python scalars"): True was read as a boolean mask."""
    from skproto.explain import waterfall

    X, y = load_iris(return_X_y=True)
    e = NearestMeanClassifier().fit(X, y).explain(X[:3])
    with pytest.raises(TypeError, match="sample must be an integer row position"):
        waterfall(e, True)


@pytest.mark.parametrize("cases", [None, 5])
def test_attach_cases_refuses_cases_that_are_no_sequence(cases):
    """cases=None failed with "object of type 'NoneType' has no len()"."""
    from skproto.explain import attach_cases

    with pytest.raises(ValueError, match="cases must be a sequence"):
        attach_cases(np.zeros((2, 1)), cases)


def test_attach_cases_refuses_a_0d_array():
    """A 0-d array failed with "len() of unsized object"."""
    from skproto.explain import attach_cases

    with pytest.raises(ValueError, match="attach_cases tags numpy arrays of rows"):
        attach_cases(np.array(1.0), ["a"])


def test_prototype_rows_refuses_a_scalar_y():
    """prototype_rows(clf, X, 3) failed with "TypeError: len() of unsized object"."""
    from skproto.explain import prototype_rows

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match="y must be an array-like of labels"):
        prototype_rows(clf, X, 3)
