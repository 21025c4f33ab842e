"""Behaviour of NearestMeanClassifier: exactness, invariances, errors, integration."""

import pickle
import tracemalloc
import warnings
from functools import partial

import joblib
import numpy as np
import pytest
from helpers import relative_mahalanobis_reference
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse
from sklearn.base import clone
from sklearn.covariance import OAS, ledoit_wolf_shrinkage
from sklearn.datasets import load_digits, load_iris
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skproto._chunking
from skproto import NearestMeanClassifier as _NearestMeanClassifier


def NearestMeanClassifier(*args, **params):
    """The estimator at temperature 1 unless another is given.

    Most tests here check the documented formulas and the exactness of
    streaming and merging at a fixed temperature; ``temperature="auto"`` (the
    default) has tests of its own below.
    """
    params.setdefault("temperature", 1.0)
    return _NearestMeanClassifier(*args, **params)


SETTINGS = [
    dict(metric="euclidean"),
    dict(metric="cosine", temperature=0.3),
    dict(metric="euclidean", shrinkage=0.3, priors="empirical"),
    dict(metric="mahalanobis"),
    dict(metric="mahalanobis", covariance_shrinkage="ledoit_wolf"),
    dict(metric="mahalanobis", covariance_shrinkage=0.1, priors="empirical"),
    dict(metric="mahalanobis", covariance="per_class"),
    dict(metric="mahalanobis", covariance="per_class", covariance_shrinkage="ledoit_wolf"),
    dict(metric="mahalanobis", covariance="per_class", covariance_shrinkage=0.3),
    dict(metric="mahalanobis", covariance="per_class", covariance_pooling=0.7),
]
setting_ids = ["-".join(f"{k}={v}" for k, v in s.items()) for s in SETTINGS]


@st.composite
def datasets(draw, min_classes=2, max_classes=4):
    """Gaussian blobs of random size, drawn from a hypothesis-chosen seed."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_classes = draw(st.integers(min_classes, max_classes))
    n_features = draw(st.integers(1, 5))
    per_class = draw(st.integers(2, 12))
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = np.repeat(np.arange(n_classes), per_class)
    X = centers[y] + rng.normal(size=(len(y), n_features)) * rng.uniform(0.5, 2, n_features)
    order = rng.permutation(len(y))
    return X[order], y[order]


def split_points(draw, n):
    cuts = draw(st.lists(st.integers(1, n - 1), max_size=6, unique=True)) if n > 1 else []
    return np.split(np.arange(n), sorted(cuts))


def assert_same_model(a, b, X, rtol=1e-6, atol=1e-7):
    np.testing.assert_array_equal(a.classes_, b.classes_)
    np.testing.assert_allclose(a.class_count_, b.class_count_, rtol=1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9, atol=1e-9)
    if hasattr(a, "covariance_"):
        np.testing.assert_allclose(a.covariance_, b.covariance_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=rtol, atol=atol)
    np.testing.assert_allclose(
        a.decision_function(X), b.decision_function(X), rtol=rtol, atol=atol * 10
    )


# --------------------------------------------------------------- exactness
@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(), draw=st.data())
def test_partial_fit_any_chunking_equals_fit(params, data, draw):
    X, y = data
    batch = NearestMeanClassifier(**params).fit(X, y)
    stream = NearestMeanClassifier(**params)
    for rows in split_points(draw.draw, len(y)):
        stream.partial_fit(X[rows], y[rows])
    assert_same_model(stream, batch, X)


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(min_classes=3), draw=st.data())
def test_merge_of_shards_equals_fit_on_union(params, data, draw):
    X, y = data
    # shards split by class and by rows, so their class sets differ
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    shards = [rows for rows in split_points(draw.draw, len(y)) if len(np.unique(y[rows])) >= 2]
    if len(shards) < 2:
        shards = [np.flatnonzero(y != y.max()), np.flatnonzero(y != y.min())]
        X = np.concatenate([X[s] for s in shards])
        y = np.concatenate([y[s] for s in shards])
        shards = [np.arange(len(shards[0])), np.arange(len(shards[0]), len(y))]
    used = np.concatenate(shards)
    models = [NearestMeanClassifier(**params).fit(X[s], y[s]) for s in shards]
    before = [m.decision_function(X) for m in models]
    merged = models[0].merge(*models[1:])
    assert_same_model(merged, NearestMeanClassifier(**params).fit(X[used], y[used]), X)
    for m, d in zip(models, before):  # inputs untouched
        np.testing.assert_array_equal(m.decision_function(X), d)


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(), seed=st.integers(0, 1000))
def test_invariant_to_sample_order(params, data, seed):
    X, y = data
    perm = np.random.default_rng(seed).permutation(len(y))
    a = NearestMeanClassifier(**params).fit(X, y)
    b = NearestMeanClassifier(**params).fit(X[perm], y[perm])
    assert_same_model(a, b, X)


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(min_classes=3), seed=st.integers(0, 1000))
def test_relabelling_classes_permutes_outputs(params, data, seed):
    X, y = data
    k = y.max() + 1
    perm = np.random.default_rng(seed).permutation(k)
    names = np.array([f"class_{i}" for i in perm])  # string labels, new sort order
    a = NearestMeanClassifier(**params).fit(X, y)
    b = NearestMeanClassifier(**params).fit(X, names[y])
    col = np.searchsorted(b.classes_, names[a.classes_])  # column of a's class c in b
    proba = a.predict_proba(X)
    np.testing.assert_allclose(b.predict_proba(X)[:, col], proba, atol=1e-9)
    top2 = np.sort(proba, axis=1)[:, -2:]
    untied = top2[:, 1] - top2[:, 0] > 1e-9  # exact ties may break either way
    np.testing.assert_array_equal(b.predict(X)[untied], names[a.predict(X)][untied])
    np.testing.assert_allclose(b.transform(X)[:, col], a.transform(X), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(max_classes=5))
def test_predict_is_argmax_of_proba_and_decision(params, data):
    X, y = data
    clf = NearestMeanClassifier(**params).fit(X, y)
    Xq = np.concatenate([X, X + 0.37, X * 2.5])
    pred = clf.predict(Xq)
    np.testing.assert_array_equal(pred, clf.classes_[clf.predict_proba(Xq).argmax(1)])
    dec = clf.decision_function(Xq)
    expected = (dec > 0).astype(int) if dec.ndim == 1 else dec.argmax(1)
    np.testing.assert_array_equal(pred, clf.classes_[expected])
    np.testing.assert_allclose(clf.predict_proba(Xq).sum(1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(Xq)), clf.predict_proba(Xq), atol=1e-12)


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(max_classes=5), n_top=st.integers(1, 6))
def test_explain_reproduces_decision_function(params, data, n_top):
    X, y = data
    clf = NearestMeanClassifier(**params).fit(X, y)
    Xq = np.concatenate([X, X + 1.0])
    ex = clf.explain(Xq, n_prototypes=n_top)
    scores = ex.contribution.sum(axis=1) + ex.other_contribution + ex.bias
    dec = clf.decision_function(Xq)
    if dec.ndim == 1:
        dec = np.column_stack([np.zeros_like(dec), dec])
        scores = scores - scores[:, :1]
    np.testing.assert_allclose(scores, dec, rtol=1e-7, atol=1e-7)
    np.testing.assert_array_equal(ex.predicted, clf.predict(Xq))
    # the listed prototypes are the nearest ones, with the distances of transform
    D = clf.transform(Xq)
    m = min(n_top, len(clf.classes_))
    np.testing.assert_allclose(ex.value, np.sort(D, axis=1)[:, :m], rtol=1e-12)
    np.testing.assert_array_equal(ex.prototype_label, clf.classes_[ex.prototype_index])
    assert np.all(ex.prototype_sample_index == -1)  # means are not training rows
    assert np.all(ex.margin >= -1e-9)


@given(data=datasets(), shift=st.lists(st.floats(-50, 50), min_size=5, max_size=5))
def test_euclidean_is_translation_invariant(data, shift):
    X, y = data
    t = np.asarray(shift[: X.shape[1]])
    for params in [dict(), dict(metric="mahalanobis"), dict(shrinkage=0.4)]:
        a = NearestMeanClassifier(**params).fit(X, y)
        b = NearestMeanClassifier(**params).fit(X + t, y)
        np.testing.assert_allclose(
            b.decision_function(X + t), a.decision_function(X), rtol=1e-6, atol=1e-6
        )
        np.testing.assert_allclose(b.score_samples(X + t), a.score_samples(X), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(b.predict(X + t), a.predict(X))


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
@given(data=datasets(), seed=st.integers(0, 1000))
def test_integer_weights_equal_repetition(params, data, seed):
    X, y = data
    w = np.random.default_rng(seed).integers(0, 4, len(y))
    w[np.unique(y, return_index=True)[1]] = 1  # every class keeps a sample
    a = NearestMeanClassifier(**params).fit(X, y, sample_weight=w)
    b = NearestMeanClassifier(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert_same_model(a, b, X)


# ------------------------------------------------ closed-form references
def test_mahalanobis_with_empirical_priors_is_the_lda_posterior():
    X, y = load_iris(return_X_y=True)
    for shrink in [0.0, 0.3]:
        ours = NearestMeanClassifier(
            metric="mahalanobis", covariance_shrinkage=shrink, priors="empirical"
        ).fit(X, y)
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrink or None).fit(X, y)
        np.testing.assert_allclose(ours.predict_proba(X), lda.predict_proba(X), atol=1e-10)


def test_covariance_shrinkage_matches_scikit_learn():
    X, y = load_digits(return_X_y=True)
    X = X[:, X.std(0) > 0][:400]
    y = y[:400]
    means = np.array([X[y == c].mean(0) for c in range(10)])
    R = X - means[y]
    lw = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage="ledoit_wolf").fit(X, y)
    assert lw.covariance_shrinkage_ == pytest.approx(
        ledoit_wolf_shrinkage(R, assume_centered=True), rel=1e-9
    )
    oas = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage="oas").fit(X, y)
    assert oas.covariance_shrinkage_ == pytest.approx(
        OAS(assume_centered=True).fit(R).shrinkage_, rel=1e-9
    )
    per = NearestMeanClassifier(
        metric="mahalanobis", covariance="per_class", covariance_shrinkage="ledoit_wolf"
    ).fit(X, y)
    Xc = X[y == 3] - X[y == 3].mean(0)
    assert per.covariance_shrinkage_[3] == pytest.approx(
        ledoit_wolf_shrinkage(Xc, assume_centered=True), rel=1e-9
    )


def test_euclidean_matches_plain_nearest_centroid():
    X, y = load_digits(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    means = np.array([X[y == c].mean(0) for c in range(10)])
    d2 = ((X[:, None, :] - means[None]) ** 2).sum(-1)
    np.testing.assert_allclose(clf.transform(X), d2, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(
        clf.predict_proba(X),
        np.exp(-d2 / 2 - np.logaddexp.reduce(-d2 / 2, axis=1)[:, None]),
        atol=1e-12,
    )
    np.testing.assert_array_equal(clf.predict(X), d2.argmin(1))


def test_cosine_distance_and_temperature():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(metric="cosine", temperature=0.05).fit(X, y)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    mu = np.array([Xn[y == c].mean(0) for c in range(3)])
    cos = Xn @ (mu / np.linalg.norm(mu, axis=1, keepdims=True)).T
    np.testing.assert_allclose(clf.transform(X), 2 * (1 - cos), atol=1e-12)
    logits = cos / 0.05
    np.testing.assert_allclose(
        clf.predict_proba(X),
        np.exp(logits - np.logaddexp.reduce(logits, axis=1)[:, None]),
        atol=1e-10,
    )


def test_mean_shrinkage_moves_prototypes_to_global_mean():
    X, y = load_iris(return_X_y=True)
    w = np.linspace(0.5, 2, len(y))
    clf = NearestMeanClassifier(shrinkage=0.25).fit(X, y, sample_weight=w)
    global_mean = np.average(X, axis=0, weights=w)
    expected = 0.75 * clf.means_ + 0.25 * global_mean
    np.testing.assert_allclose(clf.prototypes_, expected)
    assert NearestMeanClassifier(shrinkage=1.0).fit(X, y).predict_proba(X).std() < 1e-12


# ------------------------------------------------ streaming / continual
def test_small_chunks_do_not_warn():
    import warnings

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rows in np.array_split(np.arange(150), 50):  # 3 rows, up to 2 classes each
            clf.partial_fit(X[rows], y[rows], classes=[0, 1, 2])


def test_class_incremental_partial_fit_grows_classes():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(metric="mahalanobis")
    clf.partial_fit(X[y == 1], y[y == 1])  # a first task with a single class is allowed
    clf.partial_fit(X[y == 2], y[y == 2])
    np.testing.assert_array_equal(clf.classes_, [1, 2])
    clf.partial_fit(X[y == 0], y[y == 0])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert_same_model(clf, NearestMeanClassifier(metric="mahalanobis").fit(X, y), X)


def test_declared_but_unseen_classes_get_zero_probability():
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    assert np.all(np.isnan(clf.prototypes_[2]))
    assert np.all(np.isinf(clf.transform(X)[:, 2]))
    assert set(clf.predict(X)) <= {0, 1}
    ex = clf.explain(X[:5])
    assert np.all(np.isfinite(ex.margin))


def test_fit_then_partial_fit_continues_the_same_statistics():
    X, y = load_iris(return_X_y=True)
    a = (
        NearestMeanClassifier(metric="mahalanobis")
        .fit(X[:100], y[:100])
        .partial_fit(X[100:], y[100:])
    )
    assert_same_model(a, NearestMeanClassifier(metric="mahalanobis").fit(X, y), X)


# ------------------------------------------------------ float32 / memory
def test_float32_is_computed_in_float32():
    X, y = load_digits(return_X_y=True)
    X32 = X.astype(np.float32)
    for params in SETTINGS:
        clf32 = NearestMeanClassifier(**params).fit(X32, y)
        clf64 = NearestMeanClassifier(**params).fit(X, y)
        assert clf32.means_.dtype == np.float64  # statistics in float64
        for method in ["decision_function", "predict_proba", "transform", "score_samples"]:
            out = getattr(clf32, method)(X32)
            assert out.dtype == np.float32, (params, method)
        agree = np.mean(clf32.predict(X32) == clf64.predict(X))
        assert agree > 0.995, params


def test_chunked_evaluation_matches_one_chunk(monkeypatch):
    X, y = load_digits(return_X_y=True)
    for params in [dict(), dict(metric="mahalanobis", covariance="per_class")]:
        clf = NearestMeanClassifier(**params).fit(X, y)
        whole = [clf.decision_function(X), clf.transform(X), clf.score_samples(X)]
        monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 7 * 64)  # 7-row chunks
        chunked = [clf.decision_function(X), clf.transform(X), clf.score_samples(X)]
        monkeypatch.undo()
        for a, b in zip(whole, chunked):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_prediction_memory_is_bounded():
    """Predicting never allocates an n_samples x n_prototypes x n_features array."""
    rng = np.random.default_rng(0)
    n, p, k = 20_000, 64, 200
    X = rng.normal(size=(n, p)).astype(np.float32)
    clf = NearestMeanClassifier().fit(rng.normal(size=(2 * k, p)), np.arange(2 * k) % k)
    tracemalloc.start()
    clf.predict(X)
    clf.transform(X)  # the output itself is n x k
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    dense_3d = n * k * p * 4
    assert peak < dense_3d / 20, peak
    assert peak < n * k * 4 + 64 * 2**20


# ----------------------------------------------------------- bad input
def make_xy():
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected(bad):
    X, y = make_xy()
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        NearestMeanClassifier().fit(Xb, y)
    clf = NearestMeanClassifier().fit(X, y)
    for method in [
        "predict",
        "predict_proba",
        "decision_function",
        "transform",
        "score_samples",
        "explain",
    ]:
        with pytest.raises(ValueError, match="NaN|infinity"):
            getattr(clf, method)(Xb)
    with pytest.raises(ValueError, match="NaN|infinity"):
        NearestMeanClassifier().partial_fit(Xb, y)


def test_wrong_feature_count_at_predict():
    X, y = make_xy()
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(
        ValueError, match="X has 3 features, but NearestMeanClassifier is expecting 4"
    ):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.partial_fit(X[:, :3], y)


def test_one_class_is_rejected():
    X, y = make_xy()
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        NearestMeanClassifier().fit(X[y == 0], y[y == 0])


def test_empty_input_is_rejected():
    X, y = make_xy()
    with pytest.raises(ValueError, match="0 sample"):
        NearestMeanClassifier().fit(X[:0], y[:0])
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(X[:0])


def test_unknown_class_in_partial_fit_after_classes_fixed():
    X, y = make_xy()
    clf = NearestMeanClassifier().partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in the classes fixed"):
        clf.partial_fit(X[y == 2], y[y == 2])
    with pytest.raises(ValueError, match="is not the same as classes_"):
        clf.partial_fit(X, y, classes=[0, 1, 2])


def test_a_refused_first_partial_fit_leaves_nothing_half_set():
    # classes_ and the statistics were set before the labels were checked, so
    # the corrected call was refused ("is not the same as classes_")
    X, y = make_xy()
    clf = NearestMeanClassifier()
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in classes=\[0, 1\]"):
        clf.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(clf, "classes_")
    clf.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_allclose(clf.prototypes_, NearestMeanClassifier().fit(X, y).prototypes_)


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_float32_far_from_the_origin_keeps_float32_precision(metric, covariance):
    # regression: float32 rows were taken about the float64 mean rounded to
    # float32 (a shift of 0.03 at 1e6): relative errors of 1e-2, 3 of 500
    # predictions changed; now about float32's 1e-7
    rng = np.random.RandomState(0)
    y = rng.randint(0, 5, 500)
    X = (1e6 + rng.normal(size=(500, 8)) + rng.normal(size=(5, 8))[y]).astype(np.float32)
    clf = NearestMeanClassifier(metric=metric, covariance=covariance).fit(X, y)
    D32, D64 = clf.transform(X), clf.transform(X.astype(np.float64))
    assert D32.dtype == np.float32
    assert np.max(np.abs(D32 - D64) / D64.max()) < 1e-5
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X.astype(np.float64)))
    s32, s64 = clf.score_samples(X), clf.score_samples(X.astype(np.float64))
    assert np.max(np.abs(s32 - s64)) < 1e-4 * np.max(np.abs(s64))


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_unshrunk_mahalanobis_does_not_depend_on_the_features_units(covariance):
    # regression: eigenvalues were cut at 1e-10 of the largest of the raw
    # covariance, so a discriminative feature in units 1e-6 of another's was
    # dropped (accuracy 0.52 against LDA's 0.95)
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, 400)
    X = np.column_stack([rng.normal(size=400), rng.normal(size=400) + 2.0 * y])
    params = dict(metric="mahalanobis", covariance=covariance, covariance_shrinkage=0.0)
    params.update(priors="empirical", temperature=1.0)
    unit = NearestMeanClassifier(**params).fit(X, y)
    tiny = NearestMeanClassifier(**params).fit(X * [1.0, 1e-6], y)
    np.testing.assert_allclose(tiny.predict_proba(X * [1.0, 1e-6]), unit.predict_proba(X))
    if covariance == "shared":
        # (lsqr: its covariance is the maximum-likelihood one, as here; svd's was
        # the unbiased one before scikit-learn 1.9, 1e-3 off in the probabilities)
        Xs = X * [1.0, 1e-6]
        lda = LinearDiscriminantAnalysis(solver="lsqr").fit(Xs, y)
        np.testing.assert_allclose(tiny.predict_proba(Xs), lda.predict_proba(Xs), atol=1e-10)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "mahalanobis"])
def test_a_pooled_stream_call_touches_only_the_classes_of_its_chunk(metric, monkeypatch):
    # regression: partial_fit read the statistics of the chunk into arrays of every
    # class and merged all of them, so a call cost n_classes x n_features whatever
    # its rows (10-row chunks of 10,000 classes of 384 features: 121 ms per call,
    # Mahalanobis 836 ms, against 1 and 4 ms with 10 classes), where the docstring
    # promises time proportional to the chunk
    from skproto.nearest_mean import _stats

    rng = np.random.RandomState(0)
    n_classes, p = 2000, 6
    y = np.repeat(np.arange(n_classes), 3)
    X = rng.normal(size=(len(y), p)) + 3 * rng.normal(size=(n_classes, p))[y]
    extra_y = np.array([5, 5, 5, 700, 700, 1999, 1999, 1999])
    extra = rng.normal(size=(len(extra_y), p)) + X[3 * extra_y]
    params = dict(metric=metric, temperature=1.0)
    stream = _NearestMeanClassifier(**params).partial_fit(X, y)
    sizes = []
    real = _stats._two_sum
    monkeypatch.setattr(_stats, "_two_sum", lambda a, b: sizes.append(np.size(a)) or real(a, b))
    stream.partial_fit(extra, extra_y)
    monkeypatch.setattr(_stats, "_two_sum", real)
    assert sizes and max(sizes) <= 3 * p  # three classes in the chunk
    batch = _NearestMeanClassifier(**params).fit(np.vstack([X, extra]), np.r_[y, extra_y])
    np.testing.assert_allclose(stream.means_, batch.means_, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(stream.class_count_, batch.class_count_)
    if metric == "mahalanobis":
        np.testing.assert_allclose(stream.covariance_, batch.covariance_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stream.predict_proba(extra), batch.predict_proba(extra), atol=1e-10)


def test_the_label_kinds_of_numeric_or_string_classes_are_read_from_their_dtype():
    # regression: every partial_fit call checked the kinds of all known classes one
    # Python object at a time (10,000 classes: 5 ms a call, more than folding in a
    # 10-row chunk); an array of numbers or strings has one kind, its dtype's
    from skproto import _validation

    classes = np.arange(1_000_000)
    tracemalloc.start()
    try:
        _validation.check_label_kinds(classes, np.array([3, 5]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # (an object array of the classes: 36 MB)
    for good in (np.array(["a", "b"]), np.array([1.5, 2.0]), np.array([], dtype=float)):
        _validation.check_label_kinds(good, good)
    with pytest.raises(ValueError, match="contains NaN"):
        _validation.check_label_kinds(np.array([1.0, 2.0]), np.array([np.nan]))
    with pytest.raises(ValueError, match="Mix of label types"):
        _validation.check_label_kinds(np.array([1, 2]), np.array(["a"]))


def test_the_label_kinds_from_the_dtype_agree_with_the_per_value_check():
    # regression: the dtype fast path read bytes as strings (make_report then took
    # y=[b"a", ...] against the classes "a", "b" and counted every row a miss:
    # accuracy 0 instead of 0.67) and a NaT as a label (partial_fit refused it
    # as labels that "cannot be held in one array" of their own dtype)
    from skproto import _validation
    from skproto.explain import make_report

    X = np.random.RandomState(0).normal(size=(6, 2))
    y = np.array(["a", "b"] * 3)
    clf = NearestMeanClassifier(temperature=1.0).fit(X, y)
    with pytest.raises(ValueError, match="Mix of label types"):
        make_report(clf, X, y=y.astype("S"))
    with pytest.raises(ValueError, match="Mix of label types"):
        _validation.check_known_labels(clf.classes_, y.astype("S"))
    for unit in ("D", "ns"):
        dates = np.array(["2020-01-01", "2020-01-02", "NaT"] * 2, f"M8[{unit}]")
        with pytest.raises(ValueError, match="missing label"):
            NearestMeanClassifier(temperature=1.0).partial_fit(X, dates)
        assert _validation._label_kinds(dates[:2]) == {False}


def test_a_per_class_stream_factorizes_only_the_classes_of_each_chunk(monkeypatch):
    # regression: with temperature="auto" each partial_fit call factorized the
    # covariance of every class to score its held-out rows (502 eigh per call
    # for 500 classes: 17.7 s for 20 calls of 10 rows). A call now sets its
    # held-out rows aside and factorizes nothing; a buffer that overflows
    # (here every call: a buffer of 0 entries) is scored at once
    import pickle

    from skproto.nearest_mean import _estimator as nm

    rng = np.random.RandomState(0)
    calls = []
    real = nm.whitener
    monkeypatch.setattr(nm, "whitener", lambda cov, floor=0.0: calls.append(1) or real(cov, floor))
    lazy = NearestMeanClassifier(metric="mahalanobis", covariance="per_class", temperature="auto")
    lazy.partial_fit(rng.normal(size=(60, 5)), np.arange(60) % 3)
    lazy.partial_fit(rng.normal(size=(60, 5)), np.arange(60) % 3)
    assert calls == []
    lazy.predict(np.zeros((1, 5)))
    assert len(calls) == 2 * (3 + 1)  # the set-aside rows scored, then the model
    monkeypatch.setattr(nm, "whitener", real)
    monkeypatch.setattr(nm, "_PENDING_ELEMENTS", 0)
    calls.clear()
    y = np.repeat(np.arange(30), 20)
    X = rng.normal(size=(600, 5)) + 3 * rng.normal(size=(30, 5))[y]
    params = dict(metric="mahalanobis", covariance="per_class", temperature="auto")
    extra = rng.normal(size=(80, 5)) + X[y == 7][:1]
    stream = NearestMeanClassifier(**params).partial_fit(X, y)
    stream.partial_fit(extra[:40], np.full(40, 7))  # (the first call held out every class)
    monkeypatch.setattr(nm, "whitener", lambda cov, floor=0.0: calls.append(1) or real(cov, floor))
    stream.partial_fit(extra[40:], np.full(40, 7))
    assert len(calls) == 2  # the pooled covariance and class 7's (per_class: no background)
    monkeypatch.setattr(nm, "whitener", real)
    batch = NearestMeanClassifier(**params).fit(np.vstack([X, extra]), np.r_[y, np.full(80, 7)])
    for a, b in [(stream.covariance_, batch.covariance_), (stream.prototypes_, batch.prototypes_)]:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert "_factor_cache" not in pickle.loads(pickle.dumps(stream)).__dict__
    assert "_factor_cache" in stream.__dict__  # (pickling emptied the live model's cache)
    # the cache held a copy of every class covariance: a fourth C x p x p array
    # next to the scatter, covariance_ and the whitening matrices (docs' Memory)
    stream.predict(X[:1])  # (the model is derived on use)
    whiten = stream._model.class_whiten
    own = [
        a
        for _, mean, factors in stream.__dict__["_factor_cache"].values()
        for a in (mean, *factors)
        if isinstance(a, np.ndarray) and not any(a is w for w in whiten)
    ]  # fmt: skip
    assert sum(a.nbytes for a in own) <= stream.means_.nbytes


def test_negative_or_zero_weights_are_rejected():
    X, y = make_xy()
    w = np.ones(len(y))
    w[5] = -1
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        NearestMeanClassifier().fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="at least one non-zero"):
        NearestMeanClassifier().fit(X, y, sample_weight=np.zeros(len(y)))
    w[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NearestMeanClassifier().fit(X, y, sample_weight=w)


def test_a_later_chunk_may_weigh_nothing_as_rows_of_fit_may():
    # partial_fit (and each dask block) checked that its own weights were not
    # all zero, so chunked data that fit accepted was refused
    X, y = make_xy()
    w = np.ones(len(y))
    rows = np.array_split(np.arange(len(y)), 6)
    w[rows[2]] = 0.0
    ref = NearestMeanClassifier(metric="mahalanobis").fit(X, y, sample_weight=w)
    clf = NearestMeanClassifier(metric="mahalanobis")
    for r in rows:
        clf.partial_fit(X[r], y[r], classes=np.unique(y), sample_weight=w[r])
    np.testing.assert_allclose(clf.prototypes_, ref.prototypes_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(clf.covariance_, ref.covariance_, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="at least one non-zero"):  # nothing to start from
        NearestMeanClassifier().partial_fit(X[:5], y[:5], np.unique(y), np.zeros(5))


def test_sparse_input_is_rejected_clearly():
    X, y = make_xy()
    with pytest.raises(ValueError, match="does not support sparse input"):
        NearestMeanClassifier().fit(sparse.csr_matrix(X), y)
    clf = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match="does not support sparse input"):
        clf.predict(sparse.csr_matrix(X))


def test_invalid_parameters_and_priors():
    X, y = make_xy()
    with pytest.raises(ValueError, match="'metric' parameter"):
        NearestMeanClassifier(metric="manhattan").fit(X, y)
    with pytest.raises(ValueError, match="'temperature' parameter"):
        NearestMeanClassifier(temperature=0).fit(X, y)
    with pytest.raises(ValueError, match="priors has 2 entries but there are 3 classes"):
        NearestMeanClassifier(priors=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="non-negative and sum to 1"):
        NearestMeanClassifier(priors=[0.5, 0.5, 0.5]).fit(X, y)
    # a 2-D array of priors was read as its flattened rows
    with pytest.raises(ValueError, match=r"priors must be 1-D, of shape \(n_classes,\); got "):
        NearestMeanClassifier(priors=[[0.2, 0.3, 0.5]]).fit(X, y)


def test_changed_settings_between_partial_fits_are_rejected():
    X, y = make_xy()
    clf = NearestMeanClassifier().partial_fit(X, y)
    clf.set_params(metric="mahalanobis")
    with pytest.raises(ValueError, match="changed since the first call to partial_fit"):
        clf.partial_fit(X, y)


def test_failed_partial_fit_leaves_the_model_unchanged():
    X, y = make_xy()
    clf = NearestMeanClassifier(priors=[0.5, 0.5]).partial_fit(X[y < 2], y[y < 2])
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match="priors has 2 entries but there are 3 classes"):
        clf.partial_fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_settings_take_effect_at_fit_not_before():
    X, y = make_xy()
    clf = NearestMeanClassifier(metric="mahalanobis", temperature=2.0).fit(X, y)
    before = [clf.decision_function(X), clf.predict_proba(X), clf.score_samples(X)]
    clf.set_params(temperature=0.1, shrinkage=0.5)
    after = [clf.decision_function(X), clf.predict_proba(X), clf.score_samples(X)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    ex = clf.explain(X)
    np.testing.assert_allclose(ex.scores, after[0], rtol=1e-9, atol=1e-9)
    clf.set_params(priors=[0.5, 0.5])
    with pytest.raises(ValueError, match="priors has 2 entries but there are 3 classes"):
        clf.partial_fit(X, y)


def test_merge_rejects_models_whose_settings_changed_after_fit():
    X, y = make_xy()
    a = NearestMeanClassifier().fit(X[:75], y[:75]).set_params(metric="cosine")
    b = NearestMeanClassifier().fit(X[75:], y[75:]).set_params(metric="cosine")
    with pytest.raises(ValueError, match="were changed after fitting"):
        a.merge(b)


def test_merge_rejects_priors_of_the_same_shape_but_other_values():
    X, y = make_xy()
    a = NearestMeanClassifier(priors=[0.2, 0.3, 0.5]).partial_fit(X[:75], y[:75], classes=[0, 1, 2])
    b = NearestMeanClassifier(priors=[0.5, 0.3, 0.2]).partial_fit(X[75:], y[75:], classes=[0, 1, 2])
    message = r"different settings: priors=\[0.2, 0.3, 0.5\] vs priors=\[0.5, 0.3, 0.2\]"
    with pytest.raises(ValueError, match=message):
        a.merge(b)
    same = NearestMeanClassifier(priors=np.array([0.2, 0.3, 0.5]))
    a.merge(same.partial_fit(X[75:], y[75:], classes=[0, 1, 2]))  # equal values merge


def test_merge_rejects_mismatched_models():
    X, y = make_xy()
    a = NearestMeanClassifier().fit(X, y)
    with pytest.raises(ValueError, match="different numbers of features: 4 vs 3"):
        a.merge(NearestMeanClassifier().fit(X[:, :3], y))
    with pytest.raises(
        ValueError, match="different settings: metric='euclidean' vs metric='cosine'"
    ):
        a.merge(NearestMeanClassifier(metric="cosine").fit(X, y))
    with pytest.raises(ValueError, match="must be fitted"):
        a.merge(NearestMeanClassifier())
    with pytest.raises(TypeError, match="can only merge NearestMeanClassifier"):
        a.merge(LinearDiscriminantAnalysis().fit(X, y))


# ---------------------------------------------------------- integration
def test_pipeline_and_grid_search():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NearestMeanClassifier())
    grid = GridSearchCV(
        pipe,
        {
            "nearestmeanclassifier__metric": ["euclidean", "cosine", "mahalanobis"],
            "nearestmeanclassifier__shrinkage": [0.0, 0.2],
        },
        cv=3,
    ).fit(X, y)
    assert grid.best_params_["nearestmeanclassifier__metric"] == "mahalanobis"
    assert grid.best_score_ > 0.9
    assert cross_val_score(NearestMeanClassifier(metric="mahalanobis"), X, y, cv=3).mean() > 0.9


def test_as_feature_step_in_a_pipeline():
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(NearestMeanClassifier(metric="cosine"), LogisticRegression(max_iter=2000))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.9
    names = pipe[0].get_feature_names_out()
    assert list(names[:2]) == ["nearestmeanclassifier0", "nearestmeanclassifier1"]
    frame = NearestMeanClassifier().set_output(transform="pandas").fit(X, y).transform(X)
    assert frame.shape == (len(X), 10)


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
def test_clone_pickle_and_joblib_round_trip(params, tmp_path):
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NearestMeanClassifier(**params).fit(X, labels)
    unfitted = clone(clf)
    assert not hasattr(unfitted, "classes_") and unfitted.get_params() == clf.get_params()
    again = pickle.loads(pickle.dumps(clf))
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    for other in [again, loaded]:
        np.testing.assert_array_equal(other.predict(X), clf.predict(X))
        np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
        # a restored model keeps learning
        other.partial_fit(X[:10], labels[:10])


@pytest.mark.parametrize("params", SETTINGS, ids=setting_ids)
def test_a_stream_loaded_as_read_only_memory_maps_keeps_learning(params, tmp_path):
    # joblib.load(..., mmap_mode="r") gives read-only arrays, which partial_fit
    # updated in place: "ValueError: assignment destination is read-only"
    X, y = load_iris(return_X_y=True)
    first, rest = np.arange(0, 150, 2), np.arange(1, 150, 2)
    clf = NearestMeanClassifier(**params).partial_fit(X[first], y[first])
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    clf.partial_fit(X[rest], y[rest])
    loaded.partial_fit(X[rest], y[rest])
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("weighted", [False, True])
def test_pooled_scatter_is_exact_far_from_the_origin(weighted):
    """The pooled within-class scatter matches a direct two-pass computation at an offset of 1e6."""
    from skproto.nearest_mean._stats import ClassStats

    rng = np.random.RandomState(7)
    codes = rng.randint(0, 4, 3000)
    X = 1e6 + rng.normal(size=(3000, 5)) + codes[:, None] * 0.5
    w = rng.uniform(0, 2, 3000) if weighted else np.ones(3000)
    stats = ClassStats.empty(4, 5, scatter="pooled", fourth=False)
    for part in np.array_split(np.arange(3000), 3):  # and folded in over three updates
        stats.update(X[part], codes[part], w[part], normalize=False)
    expected = np.zeros((5, 5))
    for c in range(4):
        rows = codes == c
        m = np.average(X[rows], axis=0, weights=w[rows])
        R = X[rows] - m
        expected += (R * w[rows, None]).T @ R
    np.testing.assert_allclose(
        stats.scatter, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max()
    )


def _direct_pooled(X, codes, w, n_classes):
    """Counts, means and pooled scatter by the textbook two-pass sums."""
    count, mean, scatter = np.zeros(n_classes), np.zeros((n_classes, X.shape[1])), 0.0
    for c in range(n_classes):
        rows = codes == c
        if w[rows].sum() > 0:
            count[c] = w[rows].sum()
            mean[c] = np.average(X[rows], axis=0, weights=w[rows])
            R = X[rows] - mean[c]
            scatter = scatter + (R * w[rows, None]).T @ R
    return count, mean, scatter


@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("spread", [0.5, 1e5])  # 1e5: too far apart for the one-pass form
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_one_pass_statistics_equal_the_two_pass_sums(offset, spread, weighted, normalize):
    """The statistics read in one pass (or, when that would cancel digits, two) are exact."""
    from skproto.nearest_mean._stats import ClassStats, _one_pass

    rng = np.random.RandomState(11)
    n = 20_000  # several chunks
    codes = rng.randint(0, 5, n)
    codes[:7] = 5  # a class only in the first rows; class 6 has none
    X = offset + rng.normal(size=(n, 4)) + spread * codes[:, None] * np.arange(1, 5)
    w = rng.uniform(0, 2, n) if weighted else np.ones(n)
    w[10:20] = 0.0
    got = ClassStats.of_rows(X, codes, w, 7, normalize=normalize, scatter="pooled", fourth=False)
    if not normalize:  # classes far apart for their spread: the two-pass fallback
        assert (_one_pass(X, codes, w, 7, normalize, True) is None) == (spread > 1)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True) if normalize else X
    count, mean, scatter = _direct_pooled(Xn, codes, w, 7)
    np.testing.assert_allclose(got.count, count, rtol=1e-12)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-10, atol=1e-12 * np.abs(mean).max())
    np.testing.assert_allclose(got.scatter, scatter, rtol=1e-10, atol=1e-12 * np.abs(scatter).max())


@pytest.mark.parametrize("kernel", [True, False])
def test_class_sums_accumulate_in_place(kernel, monkeypatch):
    """Weighted class sums add into the given array, with scipy's kernel or without."""
    from skproto.nearest_mean import _stats

    if not kernel:
        monkeypatch.setattr(_stats, "_csr_matvecs", None)
    rng = np.random.RandomState(14)
    B, codes, w = rng.normal(size=(50, 3)), rng.randint(0, 4, 50), rng.uniform(0, 2, 50)
    sums = np.ones((6, 3))
    _stats._add_class_sums(sums, w, codes, B)
    expected = np.ones((6, 3))
    for i in range(50):
        expected[codes[i]] += w[i] * B[i]
    np.testing.assert_allclose(sums, expected, rtol=1e-13)
    _stats._add_class_sums(sums, w, codes, B[:, ::-1])  # not contiguous: the plain product
    for i in range(50):
        expected[codes[i]] += w[i] * B[i, ::-1]
    np.testing.assert_allclose(sums, expected, rtol=1e-13)


def test_held_out_rows_are_capped_for_few_classes(monkeypatch):
    """Two classes: the held-out sample stops at ``MAX_SCORED_ROWS`` rows, not 5e6 / 2."""
    from skproto import calibration

    monkeypatch.setattr(calibration, "MAX_SCORED_ROWS", 40)
    monkeypatch.setattr(calibration, "MIN_SCORED_ROWS", 10)
    rng = np.random.RandomState(15)
    X, y = rng.normal(size=(2000, 3)), np.arange(2000) % 2
    model = NearestMeanClassifier(temperature="auto")
    model._begin_fit(np.array([0, 1]), len(X))
    assert model._score_stride == 10  # ceil(2000 / (5 * 40))
    rest, held = model._block_statistics(X, y, np.ones(2000))
    assert 20 <= len(held[0]) <= 70  # about 40 of 2000
    assert rest.count.sum() == 2000 - len(held[0])


def test_rows_each_alone_in_their_class_are_computed_in_two_passes():
    """A few held-out rows of distinct classes: no one-pass cancellation, an exact zero scatter."""
    from skproto.nearest_mean._stats import ClassStats, _one_pass

    rng = np.random.RandomState(13)
    codes = np.arange(5) * 7
    X = rng.normal(size=(5, 3)) + 0.01 * codes[:, None]
    w = np.ones(5)
    assert _one_pass(X, codes, w, 300, False, True) is None
    held = ClassStats.of_rows(X, codes, w, 300, normalize=False, scatter="pooled", fourth=False)
    np.testing.assert_array_equal(held.scatter, np.zeros((3, 3)))
    np.testing.assert_allclose(held.mean[codes], X, rtol=1e-15)


def test_a_column_constant_within_a_class_keeps_its_value_as_the_mean():
    """The shifted sums give a constant column's value back exactly (not 1e-17 off)."""
    rng = np.random.RandomState(12)
    X = rng.normal(size=(5000, 3)).astype(np.float32)
    y = np.arange(5000) % 3
    X[y == 0, 1] = np.float32(0.1)
    X[y == 1, 2] = 0.0
    for metric in ["euclidean", "mahalanobis"]:
        model = NearestMeanClassifier(metric=metric).fit(X, y)
        assert model.means_[0, 1] == np.float64(np.float32(0.1))
        assert model.means_[1, 2] == 0.0


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_classes_of_repeated_rows_have_zero_scatter_and_exact_explanations(covariance):
    """Regression: every class a single repeated row left a within-class scatter of
    rounding noise (1e-32), whitened into scores of 1e32 whose expanded quadratic
    form lost the own-class term (-4.5e15 instead of 0) and disagreed with explain."""
    rng = np.random.RandomState(0)
    rows = rng.randn(3, 6) + 3 * np.eye(3, 6)
    X, y = np.tile(rows, (30, 1)), np.tile([0, 1, 2], 30)
    clf = NearestMeanClassifier(metric="mahalanobis", covariance=covariance).fit(X, y)
    Xq = rows + 0.01
    D = clf.decision_function(Xq)
    assert np.abs(D).max() < 100  # no whitening of rounding noise
    np.testing.assert_allclose(np.asarray(clf.explain(Xq).scores), D, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(clf.predict(Xq), [0, 1, 2])


@pytest.mark.parametrize(
    "method, factor", [("oas", 1e180), ("oas", 1e-200), ("ledoit_wolf", 1e-140)]
)
def test_shrinkage_amount_does_not_depend_on_the_units(method, factor):
    """Regression: S**2 overflowed (or underflowed) for data of magnitude 1e90 (1e-100):
    a NaN covariance (or no shrinkage) instead of the amount at unit scale."""
    from skproto.geometry.covariance import shrinkage_amount

    rng = np.random.RandomState(0)
    Z = rng.randn(50, 4) @ rng.randn(4, 4)
    S = Z.T @ Z / 50
    q4 = float(np.sum(np.sum(Z * Z, axis=1) ** 2))
    unit = shrinkage_amount(method, S, 50, q4)
    assert 0 < unit < 1
    q4_scaled = None if method == "oas" else q4 * factor**2
    assert shrinkage_amount(method, S * factor, 50, q4_scaled) == pytest.approx(unit, rel=1e-9)


@given(
    data=datasets(),
    k=st.integers(-150, 150),
    metric=st.sampled_from(["euclidean", "cosine", "mahalanobis"]),
)
def test_defaults_predict_alike_in_any_units_of_X(data, k, metric):
    """At its defaults (temperature="auto"), X * 2**k predicts as X for any k.

    Regression: the temperature grid stopped at 1e-3, and below features of size
    1e-10 the distances vanished next to the log prior: tied scores, one class
    predicted for every row."""
    X, y = data
    a = _NearestMeanClassifier(metric=metric).fit(X, y)
    b = _NearestMeanClassifier(metric=metric).fit(X * 2.0**k, y)
    np.testing.assert_array_equal(b.predict(X * 2.0**k), a.predict(X))
    P = b.predict_proba(X * 2.0**k)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0)


def test_one_row_per_class_is_calibrated_in_the_data_s_units():
    """Regression: with one row per class no held-out row can be scored against
    its class, and the temperature stayed at 1.0 whatever the units: on digits'
    pixels the test log-loss was 14.0 (one row per class; nearly every wrong
    prediction at probability 1). The scores' own scale now places it (3.6)."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import log_loss

    X, y = load_digits(return_X_y=True)
    rows = np.array([np.flatnonzero(y == c)[0] for c in range(10)])
    clf = NearestMeanClassifier(temperature="auto").fit(X[rows], y[rows])
    assert clf.temperature_ > 1.0
    assert log_loss(y, clf.predict_proba(X)) < 5.0
    small = NearestMeanClassifier(temperature="auto").fit(X[rows] / 16.0, y[rows])
    assert small.temperature_ < clf.temperature_ / 100  # squared distances: 256x smaller


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "mahalanobis"])
def test_a_fit_with_no_row_held_out_is_calibrated_in_the_data_s_units(metric):
    """Regression: with few rows none may be held out (about one in five is, by a
    hash of its values); no scores then placed the window and the temperature
    was 1.0 whatever the units (digits, one row per class, 13 of 100 draws:
    test log-loss 15.2 against 3.6 with a row held out). The class means' own
    scores now place it: it follows the units of X, and no row was held out."""
    from sklearn.datasets import load_digits

    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    for _ in range(500):  # one row per class, none held out (by hash), nor at 1e3 x
        rows = np.array([rng.choice(np.flatnonzero(y == c)) for c in range(10)])
        rows_and_scaled = np.r_[X[rows], X[rows] * 1e3].astype(np.float64)
        if np.all(_row_hash(rows_and_scaled) % _HELD_OUT_EVERY != 0):
            break
    else:
        pytest.fail("no draw without a held-out row")
    clf = NearestMeanClassifier(metric=metric, temperature="auto").fit(X[rows], y[rows])
    assert clf._calibration[2] is None  # (no held-out row placed a window)
    assert clf.temperature_ != 1.0
    scaled = NearestMeanClassifier(metric=metric, temperature="auto").fit(X[rows] * 1e3, y[rows])
    assert scaled._calibration[2] is None
    ratio = 1.0 if metric == "cosine" else 1e6  # squared distances
    assert scaled.temperature_ / clf.temperature_ == pytest.approx(ratio, rel=0.5)
    streamed = NearestMeanClassifier(metric=metric, temperature="auto")
    for r in rows:
        streamed.partial_fit(X[[r]], y[[r]], classes=np.arange(10))
    assert streamed.temperature_ == pytest.approx(clf.temperature_, rel=1e-12)


def test_float32_rows_the_cosine_cannot_score_in_float32_are_scored_in_float64():
    # rows far from the origin: the cosine's fitted T is 1e-12, its score terms
    # 1e12, and float32 scores were noise (accuracy 0.11 against 0.905); rows
    # of norm 1e-25 normalised to zero in float32 (every class 1/3)
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:600] + 1e6, y[:600]
    clf = NearestMeanClassifier(metric="cosine", temperature="auto").fit(X, y)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(clf.predict_proba(X32), clf.predict_proba(X), atol=1e-6)
    assert clf.score(X32, y) == clf.score(X, y) > 0.9
    Xs, ys = X[:200] - X[:200].mean(0), y[:200]
    tiny = NearestMeanClassifier(metric="cosine", temperature="auto").fit(Xs, ys)
    small = (Xs * 1e-25).astype(np.float32)
    np.testing.assert_array_equal(tiny.predict(small), tiny.predict(Xs))


def test_mahalanobis_scores_ignore_features_whose_variance_is_rounding_noise():
    # pixels constant within every class of the first 400 digits have variances
    # of 1e-35 (rounding); the correlation whitening scaled them up to unit
    # variance (whitening factors of 4e17): decision_function was 0.09 off
    # explain and an independent pseudo-inverse
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:400] - X.mean(0), y[:400]
    clf = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage=0.0).fit(X, y)
    D = clf.decision_function(X)
    np.testing.assert_allclose(clf.explain(X).scores, D, atol=1e-9)
    inv = np.linalg.pinv(clf.covariance_, rcond=1e-10, hermitian=True)
    sq = np.stack([np.einsum("ij,jk,ik->i", X - m, inv, X - m) for m in clf.prototypes_], 1)
    expected = -sq / (2 * clf.temperature_) + np.log(clf.class_prior_)
    np.testing.assert_allclose(D, expected, atol=1e-8)


def test_ledoit_wolf_refuses_magnitudes_whose_fourth_moments_overflow():
    # at 1e77 the fourth moments overflowed float64: shrinkage 1.0, then NaN,
    # with RuntimeWarnings; below the limit it is the same at every scale
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X - X.mean(0)
    make = lambda: NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage="ledoit_wolf")
    base = make().fit(X, y).covariance_shrinkage_
    assert np.isclose(make().fit(X * 1e60, y).covariance_shrinkage_, base, rtol=1e-10)
    with pytest.raises(ValueError, match="at most 1e\\+70, beyond which ledoit_wolf's fourth"):
        make().fit(X * 1e77, y)
    NearestMeanClassifier(metric="mahalanobis").fit(X * 1e77, y)  # (OAS needs no fourth moment)


def test_one_feature_cancelling_in_the_one_pass_scatter_falls_back_to_two_passes():
    # compared on the traces, feature 0's cancellation (classes 1e3 apart for a
    # spread of 1e-5) hid behind feature 1's spread: its variance came out 0
    # and the model was at chance (0.34) where LDA scores 0.96
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 1000)
    sd = 1e-5
    X = np.c_[
        np.array([0.0, 3 * sd, 1e3])[y] + sd * rng.normal(size=3000), 1e3 * rng.normal(size=3000)
    ]
    clf = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage=0.0).fit(X, y)
    R = X - np.array([X[y == c].mean(0) for c in range(3)])[y]
    np.testing.assert_allclose(clf.covariance_, R.T @ R / len(R), rtol=1e-8)
    assert clf.score(X, y) >= LinearDiscriminantAnalysis().fit(X, y).score(X, y) - 0.01


def test_a_small_spread_far_from_the_origin_is_not_rounding_noise():
    # values 1e6 + 1e-7 z vary by 860 float64 steps: the noise rule dropped the
    # feature (accuracy 0.52 against LDA's 0.85 at offset 1e6, 0.85 at 0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    z = np.c_[rng.normal(size=2000) + 2 * y, rng.normal(size=2000)]
    base = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage=0.0)
    near = base.fit(z * [1e-7, 1.0], y).predict_proba(z * [1e-7, 1.0])
    far = (
        clone(base).fit(z * [1e-7, 1.0] + [1e6, 0.0], y).predict_proba(z * [1e-7, 1.0] + [1e6, 0.0])
    )
    np.testing.assert_allclose(far, near, atol=0.01)


def test_a_stream_takes_a_changed_shrinkage_for_every_class():
    # per-class factors cached for classes a chunk leaves alone kept the old
    # covariance_shrinkage after set_params: [0.5, 0.036, 0.053]
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    kw = dict(metric="mahalanobis", covariance="per_class", temperature="auto")
    clf = NearestMeanClassifier(covariance_shrinkage="oas", **kw)
    clf.partial_fit(X[y > 0], y[y > 0], classes=[0, 1, 2]).partial_fit(X[:25], y[:25])
    clf.set_params(covariance_shrinkage=0.5).partial_fit(X[25:50], y[25:50])
    np.testing.assert_array_equal(clf.covariance_shrinkage_, [0.5, 0.5, 0.5])


def test_a_class_on_the_pooled_covariance_reports_the_pooled_shrinkage():
    # a class of one row uses the pooled covariance, but reported its own amount (1.0)
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X, y = np.r_[X, X[:1] + 1.0], np.r_[y, 3]
    clf = NearestMeanClassifier(metric="mahalanobis", covariance="per_class").fit(X, y)
    shared = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    np.testing.assert_allclose(clf.covariance_[3], shared.covariance_)
    assert clf.covariance_shrinkage_[3] == pytest.approx(shared.covariance_shrinkage_, rel=1e-12)


def test_all_zero_rows_do_not_place_the_cosine_temperature_window():
    # a zero row ties every cosine class up to 1e-16 of rounding; that noise placed
    # the temperature window, temperature_ came out 1e-14 and every probability 0 or 1
    from sklearn.datasets import make_classification
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    from skproto import calibration

    tied = -0.5 * (1.0 + np.array([[0.0, 2.2e-16, 1.1e-16], [1.1e-16, 0.0, 0.0]]))
    assert calibration.grid_center(tied) is None
    X, y = make_classification(500, 10, n_informative=5, n_classes=3, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    plain = _NearestMeanClassifier(metric="cosine").fit(Xtr, ytr)
    Xz = Xtr.copy()
    Xz[np.random.RandomState(0).rand(len(Xz)) < 0.3] = 0.0
    clf = _NearestMeanClassifier(metric="cosine").fit(Xz, ytr)
    # (other rows held out read 0.77-1.33 of plain's over five draws of the zero rows)
    assert clf.temperature_ == pytest.approx(plain.temperature_, rel=0.4)
    P = clf.predict_proba(Xte)
    assert not np.any((P == 0) | (P == 1))
    assert log_loss(yte, P) < 1.0
    # a stream whose first chunk holds one zero row fits the same temperature
    Xi, yi = load_iris(return_X_y=True)
    idx = np.array([132, 1, 114, 62, 110, 27])
    rest = np.setdiff1d(np.arange(150), idx)
    temps = []
    for zero in (False, True):
        s = _NearestMeanClassifier(metric="cosine")
        first_X, first_y = Xi[idx], yi[idx]
        if zero:
            first_X, first_y = np.r_[np.zeros((1, 4)), first_X], np.r_[0, first_y]
        s.partial_fit(first_X, first_y, classes=[0, 1, 2])
        for k in range(0, len(rest), 24):
            s.partial_fit(Xi[rest[k : k + 24]], yi[rest[k : k + 24]])
        temps.append(s.temperature_)
    assert temps[1] == pytest.approx(temps[0], rel=0.2)


# ---------------------------------------------------------------------------
# Tests for the survivors of a mutation audit of nearest_mean/ and parallel/
# (each mutant was applied to a copy of HEAD and passed the suite before these)


def test_weights_that_overflow_the_sums_are_named_before_the_held_out_rows_are_scored():
    # without the check on the statistics of the rows not held out, the message
    # was "The covariance matrix contains NaN or infinity." (no hint at the weights)
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 200)
    X = (rng.normal(size=(200, 3)) + y[:, None]) * 1e98
    with pytest.raises(ValueError, match="Divide sample_weight by a constant"):
        _NearestMeanClassifier(metric="mahalanobis").fit(X, y, sample_weight=np.full(200, 1e190))


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_float32_rows_are_calibrated_as_their_float64_values(metric):
    # held-out rows scored in float32 rounded scores of 1e40: T 1.995e39 against
    # 9.99e39 for the same values in float64 (mean top probability 0.95 vs 0.79)
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 600)
    X32 = ((rng.normal(size=(600, 4)) + y[:, None]) * 1e20 + 3e20).astype(np.float32)
    a = _NearestMeanClassifier(metric=metric).fit(X32, y)
    b = _NearestMeanClassifier(metric=metric).fit(X32.astype(np.float64), y)
    assert a.temperature_ == pytest.approx(b.temperature_, rel=1e-6)


def test_the_held_out_rows_stay_within_their_cap_and_share(monkeypatch):
    """The stride rounds up (floor division held out 70 rows for a cap of 40 at
    390 rows), and the row hash's finaliser mixes the bits: without it, float32
    rows kept ``(h // 5) % stride`` at 0 (70 rows held
    out for a cap of 40)."""
    from skproto import calibration

    monkeypatch.setattr(calibration, "MAX_SCORED_ROWS", 40)
    monkeypatch.setattr(calibration, "MIN_SCORED_ROWS", 10)
    rng = np.random.RandomState(15)
    cases = {
        "float64, 390 rows": rng.normal(size=(390, 3)),
        "float32": rng.normal(size=(2000, 3)).astype(np.float32),
        "small integers": rng.randint(0, 4, size=(2000, 6)).astype(np.float64),
    }
    for name, X in cases.items():
        n = len(X)
        y = np.arange(n) % 2
        m = _NearestMeanClassifier()
        m._begin_fit(np.array([0, 1]), n)
        assert m._score_stride == -(-n // (5 * 40)), name
        _, held = m._block_statistics(X, y, np.ones(n))
        expected = n / (5 * m._score_stride)  # (copies of a row go together)
        assert 0.4 * expected <= len(held[0]) <= 1.6 * expected + 3, (name, len(held[0]))


def test_the_row_hash_separates_rows_of_round_values():
    """Regression: each value's bits were multiplied by column constants in
    arithmetic progression, unfolded: 0/1 values keep their bits at the top, so
    rows of round values shared hashes (and were held out together) far more
    often than chance: 19,931 distinct rows of 1-3 ones among 256 columns gave
    1,472 hashes (the identity's and the small integers' rows were told apart).
    Equal rows still hash alike, -0.0 and 0.0 included."""
    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    rng = np.random.RandomState(0)
    X = np.zeros((20000, 256))
    for _ in range(3):
        X[np.arange(20000), rng.randint(0, 256, 20000)] = 1.0
    cases = {
        "one to three ones": np.unique(X, axis=0),
        "identity": np.eye(2000),
        "small integers": np.unique(rng.randint(0, 3, size=(5000, 8)).astype(float), axis=0),
        "one feature": np.arange(2048.0, 4096.0)[:, None],  # (none twice another)
    }
    for name, rows in cases.items():
        h = _row_hash(rows)
        # (a row and its positive multiples hash alike: rows of small integers that are
        # twice another share its hash; rows of one feature only those a power of two
        # apart)
        directions = np.unique(rows / np.abs(rows).max(axis=1, keepdims=True), axis=0)
        distinct = len(rows) if rows.shape[1] == 1 else len(directions)
        assert len(np.unique(h)) == distinct, name
        share, p = np.mean(h % _HELD_OUT_EVERY == 0), 1 / _HELD_OUT_EVERY
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / len(rows)), name  # 4 sd
    signed = np.array([[-0.0, 1.0, 0.0], [0.0, 1.0, -0.0], [0.0, 1.0, 0.0]])
    assert len(set(_row_hash(signed))) == 1
    assert _row_hash(np.zeros((0, 3))).shape == (0,)


@pytest.mark.parametrize("metric", ["cosine", "mahalanobis", "euclidean"])
def test_the_held_out_rows_do_not_depend_on_the_units_of_X(metric):
    """Regression: the held-out rows were chosen by a hash of each row's values, so
    the same data in other units held out other rows, and the cosine and
    Mahalanobis models, whose scores do not depend on the units, fitted other
    temperatures (noisy digits: probabilities up to 0.02-0.12 apart between ``X``
    and ``X * c`` for c in 2**-30, 1/255, 3, 1e3; Euclidean 0.01-0.06). The hash
    reads each row's direction: the same rows are held out, float32 rows as their
    float64 values, and cosine and Mahalanobis probabilities agree to 1e-14.
    (Euclidean scores scale with the squared units, and the lattice of
    temperatures does not: its temperature follows them within the parabola's
    refinement, probabilities within 0.004.)"""
    X, y = load_digits(return_X_y=True)
    X = X + np.random.default_rng(0).normal(size=X.shape)  # (no product keeps these exact)
    Xtr, ytr, Xte = X[:1200], y[:1200], X[1200:]
    ref = _NearestMeanClassifier(metric=metric).fit(Xtr, ytr)
    held = ref._held_mask(Xtr)
    assert 0.15 < held.mean() < 0.25
    power = 1.0 if metric == "euclidean" else 0.0  # (the temperature is in squared units)
    for factor in [2.0**-30, 1 / 255, 3.0, 1e3]:
        model = _NearestMeanClassifier(metric=metric).fit(Xtr * factor, ytr)
        np.testing.assert_array_equal(model._held_mask(Xtr * factor), held)
        assert model._calibration[1] == ref._calibration[1]  # (the same held-out weight)
        if metric == "euclidean":
            assert model.temperature_ / factor**2 == pytest.approx(ref.temperature_, rel=0.02)
            continue
        assert model.temperature_ == pytest.approx(ref.temperature_ * factor ** (2 * power))
        np.testing.assert_allclose(
            model.predict_proba(Xte * factor), ref.predict_proba(Xte), rtol=0, atol=1e-9
        )
    X32 = Xtr.astype(np.float32)
    a = _NearestMeanClassifier(metric=metric).fit(X32, ytr)
    b = _NearestMeanClassifier(metric=metric).fit(X32.astype(np.float64), ytr)
    assert a.temperature_ == b.temperature_
    # one feature: powers of two hold out the same rows (no other product can)
    x = Xtr[:, 20:21]
    np.testing.assert_array_equal(ref._held_mask(x * 2.0**-40), ref._held_mask(x))
    assert 0.1 < ref._held_mask(x).mean() < 0.3  # (not all of a sign together)


def test_rows_far_from_the_origin_are_held_out_apart():
    """Regression: the hash reads each row over its largest magnitude rounded to 28
    bits. Rows of two features at an offset of 1e9 (unit spread) then had a few
    directions: 4,000 distinct rows shared 5 hashes, none was held out, and
    temperature_ fell back to 0.126 (test log-loss 2.2 against 0.65 centred); at
    1e7, 362 hashes for 6,000 rows. Constant rows of any level shared one hash.
    Rows whose values lie within 2**-16 of one another add their largest
    magnitude's mantissa (powers of two still hold out the same rows)."""
    from skproto.nearest_mean._estimator import _row_hash

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 4000)
    X = rng.normal(size=(4000, 2))
    X[:, 0] += 1.5 * y
    ref = _NearestMeanClassifier().fit(X, y)
    for offset in [1e7, 1e9]:
        Xo = X + offset
        assert len(np.unique(_row_hash(Xo))) == len(np.unique(Xo, axis=0))
        model = _NearestMeanClassifier().fit(Xo, y)
        held = model._held_mask(Xo)
        assert all(0.15 < held[y == c].mean() < 0.25 for c in range(3))
        assert model.temperature_ == pytest.approx(ref.temperature_, rel=0.3)
        np.testing.assert_array_equal(model._held_mask(Xo * 2.0**-20), held)
    constant = np.repeat(rng.uniform(1.0, 100.0, size=(2000, 1)), 5, axis=1)
    assert len(np.unique(_row_hash(constant))) == 2000


def test_a_stream_whose_weight_is_all_in_held_out_rows_is_fitted():
    # the held-out rows were scored by a model of no rows (weight 0 elsewhere):
    # "The covariance matrix contains NaN or infinity."
    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(300, 3)), np.arange(300) % 3
    w = (_row_hash(X) % _HELD_OUT_EVERY == 0).astype(float)
    for metric in ["euclidean", "mahalanobis"]:
        streamed = _NearestMeanClassifier(metric=metric).partial_fit(X, y, sample_weight=w)
        batch = _NearestMeanClassifier(metric=metric).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(streamed.class_count_, batch.class_count_)
        np.testing.assert_allclose(streamed.temperature_, batch.temperature_, rtol=1e-12)
        assert np.isfinite(streamed.predict_proba(X)).all()


def test_updating_a_merged_copy_leaves_the_original_model_as_it_was():
    # the pooled scatter was shared, not copied, by reindex: partial_fit of the
    # merged model changed the original's statistics in place
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(300, 3)), np.arange(300) % 3
    a = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    copy = a.merge()
    copy.partial_fit(X[:50] * 10, y[:50])
    a.partial_fit(X[:30], y[:30])
    ref = NearestMeanClassifier(metric="mahalanobis").fit(np.r_[X, X[:30]], np.r_[y, y[:30]])
    np.testing.assert_allclose(a.covariance_, ref.covariance_, rtol=1e-10)


def test_shards_of_one_class_each_merge_to_a_temperature_in_the_data_s_units():
    # such shards add no held-out losses (their only class always wins): the
    # merged temperature was 1.0 (digits' pixels: fit reads 70.5); the class
    # means' own scores now place it
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    shards = [_NearestMeanClassifier().partial_fit(X[y == c], y[y == c]) for c in range(10)]
    full = _NearestMeanClassifier().fit(X, y)
    # merged before use, their set-aside held-out rows are scored by the merged
    # model: as fit
    merged = shards[0].merge(*shards[1:])
    assert merged.temperature_ == pytest.approx(full.temperature_, rel=1e-9)
    # used first, each shard scored its rows by its own one-class model
    for shard in shards:
        shard.predict(X[:1])
    merged = shards[0].merge(*shards[1:])
    assert merged._calibration[1] == 0
    assert full.temperature_ / 3 < merged.temperature_ < full.temperature_ * 3


def test_a_tree_of_merges_of_streams_calibrates_as_one_merge_and_as_fit():
    """Regression (audit of streams): merge derived the merged model at once,
    which scored the streams' set-aside rows by the model of the merged shards
    only; merged again, they were not the union's. "Associative ... in any
    order or tree" read another temperature for another tree (iris, four
    streamed shards: 1.1643 for one merge and fit, 1.1790 for
    ``((a + b) + c) + d``, 1.1668 for ``(a + b) + (c + d)``)."""
    X, y = load_iris(return_X_y=True)
    parts = np.array_split(np.random.default_rng(0).permutation(len(y)), 4)

    def shards():
        return [_NearestMeanClassifier().partial_fit(X[p], y[p]) for p in parts]

    full = _NearestMeanClassifier().fit(X, y)
    a, b, c, d = shards()
    left = a.merge(b).merge(c).merge(d)
    a, b, c, d = shards()
    balanced = a.merge(b).merge(c.merge(d))
    a, b, c, d = shards()
    flat = a.merge(b, c, d)
    for merged in (flat, left, balanced):
        assert merged.temperature_ == pytest.approx(full.temperature_, rel=1e-9)
        np.testing.assert_allclose(merged.predict_proba(X), full.predict_proba(X), atol=1e-12)


def test_a_merged_model_has_the_documented_prototype_cases_attribute():
    """Regression (audit of streams): ``prototype_cases_`` ("ndarray ... or None")
    was missing from a merged model (AttributeError), as from no other fitted one."""
    from skproto.explain import attach_cases

    X, y = load_iris(return_X_y=True)
    tagged = attach_cases(X[::2].copy(), [f"row {i}" for i in range(0, 150, 2)])
    a = NearestMeanClassifier().fit(tagged, y[::2])
    assert a.prototype_cases_ is not None
    merged = a.merge(NearestMeanClassifier().fit(X[1::2], y[1::2]))
    assert merged.prototype_cases_ is None
    assert NearestMeanClassifier().fit(X, y).merge().prototype_cases_ is None


def test_the_temperature_fallback_sets_no_temporary_model_on_the_estimator(monkeypatch):
    """Regression (review of the fallback): the class means were scored by setting
    a temporary model on the estimator. Derived lazily from a view (after
    ``set_params``) that recursed without end (RecursionError), and a thread
    predicting meanwhile read the temporary model (every probability 1.0)."""
    from sklearn.datasets import load_digits

    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(1)
    for _ in range(200):
        rows = np.array([rng.choice(np.flatnonzero(y == c)) for c in range(10)])
        if np.all(_row_hash(X[rows].astype(np.float64)) % _HELD_OUT_EVERY != 0):
            break
    clf = _NearestMeanClassifier().partial_fit(X[rows], y[rows])
    expected = clf.temperature_
    clf.set_params(shrinkage=0.3)  # predictions use a view with the fit's parameters
    assert clf.temperature_ == expected
    seen = []
    original = _NearestMeanClassifier._scores_chunk

    def spy(self, X, m=None):
        seen.append(self.__dict__.get("_model"))
        return original(self, X, m)

    monkeypatch.setattr(_NearestMeanClassifier, "_scores_chunk", spy)
    fresh = _NearestMeanClassifier().partial_fit(X[rows], y[rows])
    assert fresh.temperature_ == expected
    assert seen and all(model is None for model in seen)


def test_datetime_labels_of_other_units_join_the_classes_when_they_fit():
    """Regression (review of the lossless-union check): equal dates in [D] and [s]
    read as two labels (Python's date against datetime) and were refused; a date
    beyond datetime64[ns]'s range, which wrapped round, is refused."""
    X = np.random.default_rng(0).normal(size=(6, 3))
    days = np.array(["2020-01-01", "2020-01-02"] * 3, "datetime64[D]")
    clf = NearestMeanClassifier().partial_fit(X, days)
    clf.partial_fit(X[:2], days[:2].astype("datetime64[s]"))
    np.testing.assert_array_equal(clf.class_count_, [4, 4])
    nanos = NearestMeanClassifier().partial_fit(X, days.astype("datetime64[ns]"))
    with pytest.raises(ValueError, match="cannot be held in one array"):
        nanos.partial_fit(X[:1], np.array(["2500-01-01"], "datetime64[s]"))
    np.testing.assert_array_equal(nanos.classes_, np.unique(days).astype("datetime64[ns]"))


def test_a_stream_sets_its_held_out_rows_aside_and_calibrates_as_fit():
    """``partial_fit`` sets each chunk's held-out rows aside; they are scored at
    the next use by the model of every other row streamed (as ``fit`` scores
    its own), then added. Regression: each call derived the model of the rows
    before it to score its chunk: 100 chunks of CLINC150 took 58x ``fit``
    (Mahalanobis), and the first chunks' rows, scored by models of a few rows,
    moved test probabilities by up to 0.27 against ``fit``'s."""
    import pickle
    import threading

    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    names = "zero one two three four five six seven eight nine"
    y = np.array(names.split(" "))[y]
    params = dict(metric="mahalanobis", temperature="auto")
    batch = NearestMeanClassifier(**params).fit(X, y)
    order = np.random.RandomState(0).permutation(len(y))
    chunks = np.array_split(order, 40)

    def stream(rows_of):
        m = NearestMeanClassifier(**params)
        for rows in rows_of:
            m.partial_fit(X[rows], y[rows])
        return m

    s = stream(chunks)
    assert sum(len(p[0]) for p in s._pending) > 0  # nothing scored yet
    copy_ = pickle.loads(pickle.dumps(s))  # (set-aside rows travel with the model)
    for m in (s, copy_):
        assert m.temperature_ == pytest.approx(batch.temperature_, rel=1e-9)
        np.testing.assert_allclose(m.class_count_, batch.class_count_)
        np.testing.assert_allclose(m.predict_proba(X[:50]), batch.predict_proba(X[:50]), atol=1e-9)
    # merged streams: their set-aside rows are scored by the merged model
    shards = [stream(chunks[k::3]) for k in range(3)]
    merged = shards[0].merge(*shards[1:])
    assert merged.temperature_ == pytest.approx(batch.temperature_, rel=1e-9)
    assert all(len(m._pending) for m in shards)  # the inputs are left as they were
    # a new class after some chunks: the set-aside rows keep their labels
    half = np.isin(y, ["zero", "one", "two"])
    grown = stream([np.flatnonzero(half), np.flatnonzero(~half)])
    assert grown.temperature_ == pytest.approx(batch.temperature_, rel=1e-9)
    # threads predicting at once right after partial_fit add the rows once
    t = stream(chunks)
    out = []
    threads = [threading.Thread(target=lambda: out.append(t.class_count_.sum())) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert out == [len(y)] * 4
    # set aside under "auto", then fixed: the rows are added all the same
    fixed = stream(chunks[:10]).set_params(temperature=1.0)
    fixed.partial_fit(X[chunks[10]], y[chunks[10]])
    assert fixed.class_count_.sum() == sum(len(c) for c in chunks[:11])
    # a fit forgets a stream's set-aside rows
    refit = stream(chunks[:5]).fit(X, y)
    assert refit._pending == () and refit.class_count_.sum() == len(y)


def test_a_stream_refuses_at_once_what_overflows_with_its_set_aside_rows():
    """Review regressions of the set-aside rows: statistics that overflow only
    with them added were accepted by partial_fit (fit refuses them), and every
    later use predicted 0.5 for every class with numpy's warnings; a model
    pickled before rows were set aside (no ``_pending``) failed in partial_fit
    with an AttributeError."""
    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    X[0, 0], X[2, 0] = 1e99, -1e99
    for k in range(1000):  # row 0 held out, row 2 not (same class)
        X[0, 1] = X[2, 1] = k
        held = _row_hash(X) % _HELD_OUT_EVERY == 0
        if held[0] and not held[2]:
            break
    w = np.ones(40)
    w[[0, 2]] = 9e198  # each half alone stays finite
    for call in ("fit", "partial_fit"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="weighted sums of the rows overflow"):
                getattr(NearestMeanClassifier(metric="mahalanobis", temperature="auto"), call)(
                    X, y, sample_weight=w
                )
    old = NearestMeanClassifier(temperature="auto").partial_fit(X[4:20], y[4:20])
    old.predict(X[:1])
    for name in ("_pending", "_abs_bound"):  # (as a model pickled before them)
        old.__dict__.pop(name)
    old.partial_fit(X[20:], y[20:])
    batch = NearestMeanClassifier(temperature="auto").fit(X[4:], y[4:])
    np.testing.assert_allclose(old.means_, batch.means_, rtol=1e-12)


@pytest.mark.parametrize("temperature", ["auto", 1.0])
@pytest.mark.parametrize(
    "params", [{"covariance": "per_class"}, {"covariance_shrinkage": "ledoit_wolf"}]
)
def test_per_class_streams_update_in_place_and_fail_cleanly(params, temperature):
    """Per-class scatter matrices: a ``temperature="auto"`` stream merged each
    chunk into a copy of every class's p x p matrix (CLINC150 Ledoit-Wolf in 100
    chunks: 24.7 s against fit's 4.6 s). Streams update them in place where a
    bound from the largest value streamed says nothing can overflow (after
    ``fit`` and ``merge`` too), else into a copy, so that a failing call leaves
    the model as it was (with a fixed temperature an overflowing call reset the
    model to unfitted with a warning)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 4)), np.arange(120) % 3
    make = partial(NearestMeanClassifier, metric="mahalanobis", temperature=temperature, **params)
    s = make().partial_fit(X[:60], y[:60])
    scatter = s._stats.scatter
    s.partial_fit(X[60:], y[60:])
    assert s._stats.scatter is scatter  # in place
    batch = make().fit(X, y)
    np.testing.assert_allclose(s.predict_proba(X), batch.predict_proba(X), atol=1e-12)
    for model in (make().fit(X[:60], y[:60]), s.merge(make().fit(X[:30], y[:30]))):
        scatter = model._stats.scatter
        model.partial_fit(X[60:90], y[60:90])
        assert model._stats.scatter is scatter
    if "covariance_shrinkage" in params:  # (Ledoit-Wolf refuses values of 1e99 up front)
        return
    before = s.means_.copy(), s._stats.scatter.copy(), s.predict_proba(X)
    big, w = X[:4].copy(), np.ones(4)
    big[:, 0], w[:] = [1e99, 1e99, 1e99, -1e99], 9e198  # rows 0 and 3: class 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "reset to unfitted" warning)
        with pytest.raises(ValueError, match="weighted sums of the rows overflow"):
            s.partial_fit(big, y[:4], sample_weight=w)
    np.testing.assert_array_equal(s.means_, before[0])
    np.testing.assert_array_equal(s._stats.scatter, before[1])
    np.testing.assert_array_equal(s.predict_proba(X), before[2])


def _held_apart(make_rows, condition, tries=10_000):
    """Rows from ``make_rows(k)`` for the first ``k`` whose row hashes meet ``condition``."""
    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    for k in range(tries):
        rows = make_rows(k)
        if condition(*[_row_hash(X) % _HELD_OUT_EVERY == 0 for X in rows]):
            return rows
    raise AssertionError("no such rows")  # pragma: no cover


@pytest.mark.filterwarnings("error")
def test_streams_and_merges_refuse_what_overflows_with_set_aside_rows():
    """Mutation audit of the set-aside rows (each case was accepted by a mutant, and
    predicted from infinite sums or failed later): the bound on a stream's sums must
    count the largest value of earlier calls and the set-aside weights; the weight
    check the set-aside weights; merge must check the merged sums (two fixed-
    temperature models, each finite, overflowed together), and the scoring of the
    set-aside rows of merged streams the sums with them."""
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    w = np.ones(20)
    w[0] = 9e198
    overflow = pytest.raises(ValueError, match="weighted sums of the rows overflow")
    make = partial(_NearestMeanClassifier, metric="mahalanobis")

    def rows(first, second):
        def make_rows(k):
            A, B = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
            # (k moves the large value's mantissa, which the hash reads of a row
            # whose direction is one feature, not its units)
            m = 1.0 - k * 2.0**-30  # (at most 1: 1e99 is the largest the case takes)
            A[0], B[0] = [first * m, k, 0.0], [second * m, k, 0.0]
            return A, B

        return make_rows

    # a held-out 1e99 in the first chunk, 9e198 on a kept row of the second
    X1, X2 = _held_apart(rows(1e99, 0.0), lambda a, b: a[0] and not b[0])
    stream = make().partial_fit(X1, y, sample_weight=w)
    with overflow:
        stream.partial_fit(X2, y, sample_weight=w)
    # both rows of +-1e59 held out of one chunk
    X = _held_apart(
        lambda k: (
            np.c_[np.r_[1e59, 0, -1e59, [0] * 17] * (1.0 - k * 2.0**-30), [k] * 20, range(20)],
        ),
        lambda h: h[0] and h[2],
    )[0]
    w2 = np.ones(20)
    w2[[0, 2]] = 9e198
    with overflow:
        make().partial_fit(X, y, sample_weight=w2)
    # a weight of 6e199 set aside, then another: the total is refused, as by fit
    Xh = rng.normal(size=(20, 3))
    from skproto.nearest_mean._estimator import _HELD_OUT_EVERY, _row_hash

    wh = np.ones(20)
    wh[np.flatnonzero(_row_hash(Xh) % _HELD_OUT_EVERY == 0)[0]] = 6e199
    stream = _NearestMeanClassifier().partial_fit(Xh, y, sample_weight=wh)
    with pytest.raises(ValueError, match="The sample weights sum to"):
        stream.partial_fit(Xh, y, sample_weight=np.r_[6e199, np.ones(19)])
    # merges
    Xa, Xb = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    Xa[0, 0], Xb[0, 0] = 1e99, -1e99
    fixed = partial(make, temperature=1.0)
    with overflow:
        fixed().fit(Xa, y, sample_weight=w).merge(fixed().fit(Xb, y, sample_weight=w))
    A, B = _held_apart(rows(1e99, -1e99), lambda a, b: a[0] and not b[0])
    a, b = make().partial_fit(A, y, sample_weight=w), make().partial_fit(B, y, sample_weight=w)
    with overflow:
        a.merge(b)


def test_set_aside_rows_are_scored_once_and_bounded(monkeypatch):
    """Mutation audit: a stream used between calls lost the losses of the rows
    scored at earlier uses (temperature 3.0 against fit's 1.16); the buffer bound
    counted rows, not entries; a call at a fixed temperature left the rows set
    aside; a stream sampled its held-out rows without fit's stride for many
    classes."""
    from skproto.nearest_mean import _estimator as module

    X, y = load_iris(return_X_y=True)
    batch = _NearestMeanClassifier().fit(X, y)
    used = _NearestMeanClassifier()
    for part in np.array_split(np.random.RandomState(0).permutation(150), 5):
        used.partial_fit(X[part], y[part])
        used.predict(X[:1])  # (scores the rows set aside so far)
    assert used._calibration[1] == batch._calibration[1]  # every held-out row counted
    # (0.94-1.05 of fit's over five orders of the rows; the mutant's was 2.6 of it)
    assert abs(used.temperature_ - batch.temperature_) < 0.1 * batch.temperature_

    chunks = np.array_split(np.random.RandomState(0).permutation(150), 3)
    t = _NearestMeanClassifier().partial_fit(X[chunks[0]], y[chunks[0]])
    assert len(t._pending) == 1
    t.set_params(temperature=1.0).partial_fit(X[chunks[1]], y[chunks[1]])
    assert t._pending == ()

    Xd, yd = load_digits(return_X_y=True)
    monkeypatch.setattr(module, "_PENDING_ELEMENTS", 64 * 40)  # 40 rows of 64 features
    s = _NearestMeanClassifier()
    for part in np.array_split(np.arange(600), 6):
        s.partial_fit(Xd[part], yd[part])
        assert sum(len(p[0]) for p in s._pending) * 64 <= 64 * 40
    monkeypatch.undo()

    rng = np.random.default_rng(0)
    n_classes, n = 2600, 12000  # many classes: fit scores every other held-out row
    labels = np.r_[np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)]
    Xs = rng.normal(size=(n_classes, 2))[labels] + 0.3 * rng.normal(size=(n, 2))
    stream = _NearestMeanClassifier().partial_fit(Xs, labels)
    fitted = _NearestMeanClassifier().fit(Xs, labels)
    assert fitted._score_stride > 1
    assert stream.temperature_ == fitted.temperature_
    assert stream._calibration[1] == fitted._calibration[1]


def test_a_stream_pickled_before_the_bound_checks_its_sums():
    """Review regression: streams pickled before ``_abs_bound`` existed held a
    ``_max_abs`` of 0.0 at a fixed temperature (only the set-aside check kept it
    up to date); read as the bound, it let an overflowing chunk be added in place
    unchecked (every probability 0 or 1). Such models, without ``_abs_bound``,
    take the checked path."""
    X = np.array([[1e99, 0.5e99], [0.99e99, 0.49e99], [-1e99, 0.2e99], [-0.99e99, 0.21e99]])
    y = np.array([0, 0, 1, 1])
    old = NearestMeanClassifier(metric="mahalanobis", covariance="per_class", temperature=1.0)
    old.partial_fit(X, y, sample_weight=np.full(4, 1e111))
    old.__dict__.pop("_abs_bound")
    old._max_abs = 0.0  # (what such a pickle holds)
    before = old.predict_proba(X)
    with pytest.raises(ValueError, match="weighted sums of the rows overflow"):
        old.partial_fit(
            [[0.0, 0.0], [0.1, 0.2], [0.0, 0.3]], [0, 1, 1], sample_weight=np.full(3, 1e111)
        )
    np.testing.assert_array_equal(old.predict_proba(X), before)


def test_auto_temperature_is_not_over_confident_on_a_few_noisy_rows():
    """One whole uniform pseudo-row smooths the held-out losses. With a tenth of
    one (tried on 2026-12-06), three well-separated held-out rows of 15 noisy
    ones set a temperature of 0.28 and a test log-loss of 3.10, far worse than
    a uniform guess (1.10); with one row: 1.06 and 1.12."""
    from sklearn.datasets import make_classification
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        1000, 8, n_informative=3, n_redundant=2, n_classes=3, flip_y=0.1, random_state=100
    )
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=15, stratify=y, random_state=6)
    m = _NearestMeanClassifier().fit(Xtr, ytr)
    assert log_loss(yte, m.predict_proba(Xte), labels=m.classes_) < 1.3


def _far_rows(offset, n=40, p=2):
    """Two classes of ``n`` rows, spread 1e-3 about ``offset`` (offset / spread 1e3 * offset)."""
    rng = np.random.default_rng(0)
    return offset + 1e-3 * rng.normal(size=(n, p)), np.arange(n) % 2


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
@pytest.mark.parametrize("offset", [1e4, 1e5])
def test_chunked_covariances_equal_fit_far_from_the_origin(covariance, offset):
    # an exactness audit: the chunked statistics kept each mean only to its
    # float64 rounding, so the difference of two chunks' means was off by a
    # unit of the offset, and partial_fit and merge drifted from fit by about
    # 1e-16 * offset / spread (4e-10 at 1e7, 4e-9 at 1e8); the means are now
    # carried with their rounding errors
    X, y = _far_rows(offset)
    kw = dict(metric="mahalanobis", covariance=covariance, covariance_shrinkage=0.0)
    kw["temperature"] = 1.0
    whole = _NearestMeanClassifier(**kw).fit(X, y)
    stream = _NearestMeanClassifier(**kw)
    for s in range(0, len(X), 4):
        stream.partial_fit(X[s : s + 4], y[s : s + 4])
    shards = _NearestMeanClassifier(**kw).fit(X[:20], y[:20])
    merged = shards.merge(_NearestMeanClassifier(**kw).fit(X[20:], y[20:]))
    for other in (stream, merged):
        np.testing.assert_allclose(other.covariance_, whole.covariance_, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(other.means_, whole.means_)


def test_a_chunk_with_classes_far_apart_keeps_each_class_mean_exact():
    # each class's batch mean is taken about one of its own rows: about one row
    # for the whole chunk, the class far from it (1e8 away, spread 1) lost
    # digits to the difference
    rng = np.random.default_rng(1)
    y = np.arange(60) % 2
    X = rng.normal(size=(60, 3)) + 1e8 * y[:, None]
    kw = dict(metric="mahalanobis", covariance="per_class", covariance_shrinkage=0.0)
    kw["temperature"] = 1.0
    whole = _NearestMeanClassifier(**kw).fit(X, y)
    stream = _NearestMeanClassifier(**kw)
    for s in range(0, 60, 7):
        stream.partial_fit(X[s : s + 7], y[s : s + 7])
    np.testing.assert_allclose(stream.covariance_, whole.covariance_, rtol=1e-12, atol=0)
    exact = [np.mean(X[y == c].astype(np.longdouble), axis=0) for c in (0, 1)]
    np.testing.assert_allclose(stream.means_, np.array(exact, dtype=float), rtol=1e-15, atol=0)


# --- pinned by a mutation audit of nearest_mean/ (2026-12-06)


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_a_fit_read_in_many_chunks_equals_one_chunk(metric, monkeypatch):
    # the one-pass statistics take every chunk about the first chunk's
    # reference row: one taken afresh per chunk shifted the means by 4.95
    X, y = load_iris(return_X_y=True)
    X = X + 0.01 * np.arange(len(X))[:, None]  # chunks of different means
    whole = NearestMeanClassifier(metric=metric).fit(X, y)
    monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 7 * 4 * 4)  # 7-row chunks
    chunked = NearestMeanClassifier(metric=metric).fit(X, y)
    exact = np.array([X[y == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(chunked.means_, exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=0, atol=1e-12)
    if metric == "mahalanobis":
        np.testing.assert_allclose(chunked.covariance_, whole.covariance_, rtol=1e-12, atol=0)


def test_a_merged_model_bounds_its_sums_by_its_largest_shard():
    # a merge keeps the largest magnitude any shard streamed: with the smallest,
    # a later chunk of small rows was thought safe, updated in place and
    # overflowed silently (scatter of inf, probabilities 0.5 with no warning)
    X = np.array([[1e100, 0.0], [-1e100, 1.0]])
    big = NearestMeanClassifier(metric="mahalanobis").fit(X, [0, 1], sample_weight=[1e110, 1e110])
    small = NearestMeanClassifier(metric="mahalanobis").fit(
        [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 0, 1]
    )
    merged = big.merge(small)
    with pytest.raises(ValueError, match="overflow float64"):
        merged.partial_fit([[0.0, 0.0], [0.0, 1.0]], [0, 1], sample_weight=[1e110, 1e110])
    assert np.isfinite(merged._stats.scatter).all()  # (unchanged on failure)


def test_cached_class_factors_are_refreshed_when_the_count_changes(monkeypatch):
    # a stream's per-class factor cache is keyed by (count, mean): a row at the
    # class mean leaves the mean but not the covariance (scatter / count) as
    # it was; with the count ignored the stale whitening gave a distance of
    # 2.0 where fit gives 2.24
    from skproto.nearest_mean import _estimator as nm

    monkeypatch.setattr(nm, "_PENDING_ELEMENTS", 0)  # set-aside rows scored at once: a cache
    # (about (6, 1): the streamed mean of class 0 is then exactly (6, 1), and that row
    # is not held out)
    grid = np.array([(6.0 + i, 1.0 + j) for i in range(-2, 3) for j in range(-2, 3)])
    X1, y1 = np.vstack([grid, 2.0 * grid + 10.0]), np.repeat([0, 1], 25)
    X2, y2 = np.tile([6.0, 1.0], (3, 1)), np.zeros(3, dtype=int)  # at class 0's mean
    params = dict(metric="mahalanobis", covariance="per_class", temperature="auto")
    stream = _NearestMeanClassifier(**params).partial_fit(X1, y1)
    stream.predict(X1[:1])  # (derived, and its factors cached)
    assert "_factor_cache" in stream.__dict__
    stream.partial_fit(X2, y2)
    batch = _NearestMeanClassifier(**params).fit(np.vstack([X1, X2]), np.r_[y1, y2])
    np.testing.assert_array_equal(stream.means_[0], [6.0, 1.0])
    Z = np.array([[8.0, 1.0], [6.0, 2.0]])
    np.testing.assert_allclose(stream.transform(Z), batch.transform(Z), rtol=1e-12)
    np.testing.assert_allclose(stream.transform(Z)[:, 0], [2.24, 0.56], rtol=1e-12)


def test_declared_unseen_classes_do_not_move_the_fallback_temperature():
    # with no held-out row the temperature comes from the seen classes' means;
    # the zero rows of declared but unseen classes must not be scored (three
    # of them moved T from 11.2 to 22.4)
    from skproto.nearest_mean._estimator import _row_hash

    rng = np.random.default_rng(0)
    X = np.array([[10.0, 0.0]] * 4 + [[30.0, 0.0]] * 4) + rng.integers(0, 4, size=(8, 2))
    y = np.repeat([0, 1], 4)
    keep = _row_hash(X) % 5 != 0  # (no row held out)
    X, y = X[keep], y[keep]
    declared = _NearestMeanClassifier().partial_fit(X, y, classes=[0, 1, 2, 3, 4])
    plain = _NearestMeanClassifier().partial_fit(X, y, classes=[0, 1])
    assert declared._calibration[2] is None  # (the fallback is used)
    assert declared.temperature_ == plain.temperature_
    np.testing.assert_array_equal(declared.predict_proba(X)[:, :2], plain.predict_proba(X))


@pytest.mark.parametrize(
    "priors, expected",
    [("uniform", [0.5, 0.5, 0.0]), ([0.2, 0.3, 0.5], [0.2, 0.3, 0.0])],
)
def test_declared_but_unseen_classes_have_prior_zero(priors, expected):
    # the priors the scores use: none for a class without data, the others as
    # given (uniform: shared by the classes seen)
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(priors=priors).partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.class_prior_, expected)
    seen = -clf.transform(X)[:, :2] / 2 + np.log(expected[:2])
    np.testing.assert_allclose(clf.decision_function(X)[:, :2], seen, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shrinkage", ["oas", "ledoit_wolf"])
def test_a_per_class_chunk_whose_rows_of_a_class_weigh_nothing_leaves_that_class(shrinkage):
    # Welford's per-class update skips rows of weight zero: a class whose rows
    # in the chunk all weigh nothing keeps its statistics (0/0 made them NaN
    # and predict raised "The covariance matrix contains NaN or infinity")
    X, y = load_iris(return_X_y=True)
    w = np.where(y == 0, 0.0, 1.0)
    w[:10] = 1.0
    params = dict(metric="mahalanobis", covariance="per_class", covariance_shrinkage=shrinkage)
    stream = NearestMeanClassifier(**params).partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    stream.partial_fit(X[10:], y[10:], sample_weight=w[10:])
    batch = NearestMeanClassifier(**params).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(stream.class_count_, [10.0, 50.0, 50.0])
    np.testing.assert_allclose(stream.means_, batch.means_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stream.covariance_, batch.covariance_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stream.predict_proba(X), batch.predict_proba(X), rtol=0, atol=1e-12)


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_a_weighted_ledoit_wolf_stream_equals_fit(covariance):
    # the fourth moments of a class met again in a later chunk are shifted by
    # Pebay's formulas with the chunk's *weighted* trace (unweighted: shrinkage
    # 0.01879 against fit's 0.01908); weights act as frequencies throughout
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))  # every chunk holds every class
    X, y = X[order], y[order]
    w = 1.0 + np.arange(len(X)) % 3
    params = dict(metric="mahalanobis", covariance=covariance, covariance_shrinkage="ledoit_wolf")
    stream = NearestMeanClassifier(**params)
    for rows in np.array_split(np.arange(len(X)), 3):
        stream.partial_fit(X[rows], y[rows], classes=[0, 1, 2], sample_weight=w[rows])
    batch = NearestMeanClassifier(**params).fit(X, y, sample_weight=w)
    copies = w.astype(int)
    repeated = NearestMeanClassifier(**params).fit(
        np.repeat(X, copies, axis=0), np.repeat(y, copies)
    )
    np.testing.assert_allclose(
        stream.covariance_shrinkage_, batch.covariance_shrinkage_, rtol=1e-12
    )
    np.testing.assert_allclose(
        batch.covariance_shrinkage_, repeated.covariance_shrinkage_, rtol=1e-12
    )
    np.testing.assert_allclose(stream.covariance_, batch.covariance_, rtol=1e-12, atol=1e-15)


def test_float32_scores_stay_float32_exactly_while_the_class_terms_allow():
    # the documented rule: float32 holds while (|x - c| |W_k| + |b_k|) eps32 / 2
    # <= 1e-3 for the largest class terms (|W_k| a class's column of W, |b_k| its
    # bias in magnitude): here W_k = +-150, |b_k| = 150**2 / 2 + log 2, so the
    # bound 16777.2 is passed between |x| = 36.8 and 36.9
    X, y = np.array([[-151.0], [-149.0], [149.0], [151.0]]), np.array([0, 0, 1, 1])
    clf = NearestMeanClassifier().fit(X, y)
    np.testing.assert_array_equal(clf.means_, [[-150.0], [150.0]])
    for x, dtype in [
        (30.0, np.float32),
        (-36.8, np.float32),
        (36.9, np.float64),
        (45.0, np.float64),
    ]:
        out = clf.decision_function(np.array([[x]], dtype=np.float32))
        assert out.dtype == dtype, x
        np.testing.assert_allclose(out, clf.decision_function([[x]]), rtol=1e-6)


def test_a_prior_of_zero_is_accepted_and_rules_its_class_out():
    # "non-negative": a zero prior is valid, and its class gets probability 0
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(priors=[0.0, 0.5, 0.5]).fit(X, y)
    np.testing.assert_array_equal(clf.class_prior_, [0.0, 0.5, 0.5])
    proba = clf.predict_proba(X)
    np.testing.assert_array_equal(proba[:, 0], 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(clf.predict(X)) == {1, 2}
    with pytest.raises(ValueError, match="non-negative"):
        NearestMeanClassifier(priors=[-0.1, 0.6, 0.5]).fit(X, y)


def test_relative_mahalanobis_score_uses_the_count_weighted_between_covariance():
    # score_samples = logsumexp(scores) + delta_0 / 2T, delta_0 under the shared
    # covariance plus (1 - a) times the between-class covariance, whose classes
    # weigh by their counts (unweighted: off by 0.99 on unequal classes)

    X, y = load_iris(return_X_y=True)
    rows = np.r_[0:50, 50:70, 100:110]
    X, y = X[rows], y[rows]
    clf = NearestMeanClassifier(metric="mahalanobis", temperature=2.0).fit(X, y)
    expected = relative_mahalanobis_reference(clf, X, 2.0)
    np.testing.assert_allclose(clf.score_samples(X), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_a_within_class_scatter_below_the_floor_of_the_total_spread_is_zero(covariance):
    # a within-class scatter at most 1e-20 of the total spread (within + between
    # classes) counts as zero: here 1e-21 of it, not rounding noise feature by
    # feature, so only this floor zeroes it (relative to the within scatter alone
    # it stayed, 2e-22 .. 2e-21)
    rng = np.random.default_rng(0)
    X = np.repeat([[0.0, 0.0], [1.0, 1.0]], 20, axis=0) + 1e-11 * rng.normal(size=(40, 2)) * [1, 5]
    y = np.repeat([0, 1], 20)
    clf = NearestMeanClassifier(metric="mahalanobis", covariance=covariance).fit(X, y)
    np.testing.assert_array_equal(clf.covariance_, np.zeros_like(clf.covariance_))
    euclidean = NearestMeanClassifier().fit(X, y)  # (then the identity is used)
    np.testing.assert_allclose(clf.transform(X), euclidean.transform(X), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("temperature, dtype", [(1e-4, np.float32), (5e-5, np.float64)])
def test_cosine_float32_rule_counts_the_unit_rows_radius(temperature, dtype):
    # cosine rows are unit vectors (radius 1): the class terms are 1/T + 1/(2T) + |log prior|,
    # 15000.7 at T=1e-4 (float32 holds) and 30000.7 at 5e-5 (beyond 16777: float64)
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(metric="cosine", temperature=temperature).fit(X, y)
    out = clf.decision_function(X.astype(np.float32))
    assert out.dtype == dtype


@pytest.mark.parametrize(
    "params",
    [
        dict(metric="euclidean"),
        dict(metric="mahalanobis"),
        dict(metric="mahalanobis", covariance="per_class"),
    ],
)
def test_auto_temperature_counts_the_priors_of_held_out_rows_once(params):
    # T="auto" minimises the held-out rows' log-loss of softmax(-d / 2T + log prior)
    # under the model of the other rows: the held-out scores are taken without
    # their priors and the table adds them once (twice: T 2.77 against 2.50)
    from skproto import calibration as cal
    from skproto.nearest_mean._estimator import _row_hash

    X, y = load_iris(return_X_y=True)
    rows = np.r_[0:50, 50:70, 100:110]  # unequal classes: empirical priors that differ
    X, y = X[rows], y[rows]
    auto = _NearestMeanClassifier(priors="empirical", **params).fit(X, y)
    held = _row_hash(X) % 5 == 0
    rest = NearestMeanClassifier(priors="empirical", **params).fit(X[~held], y[~held])
    log_prior = np.log(rest.class_prior_)
    scores = rest.decision_function(X[held]) - log_prior  # (at T = 1)
    table = cal.add_grid_losses(cal.NO_LOSSES, scores, log_prior, y[held], None)
    assert auto.temperature_ == pytest.approx(cal.table_temperature(table), rel=1e-9)


def test_a_declared_class_without_rows_keeps_float32_rows_in_float32():
    # a mutation audit: the float32 rule counted an unseen class's column of W
    # (-center / T), so declaring a class with no rows yet moved float32 rows
    # 1e4 from the origin to float64 (column norm 14144 against 2.34)
    rng = np.random.default_rng(0)
    X = 1e4 + rng.normal(size=(40, 2))
    y = np.arange(40) % 2
    X[y == 1] += 3
    two = NearestMeanClassifier().partial_fit(X, y, classes=[0, 1])
    three = NearestMeanClassifier().partial_fit(X, y, classes=[0, 1, 2])
    X32 = X.astype(np.float32)
    assert two.predict_proba(X32).dtype == three.predict_proba(X32).dtype == np.float32
    np.testing.assert_array_equal(three.predict_proba(X32)[:, :2], two.predict_proba(X32))


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_a_far_row_of_tiny_weight_does_not_depend_on_where_it_sits(covariance):
    # a review of the compensated means: each class was first taken about its
    # first row of positive weight; a far row of weight 1e-30 read first
    # rounded every residual to its distance (covariance 3e-6, means 4e-5
    # relative apart from the same rows read with that row last); the classes
    # are now taken about their rounded means, refined
    rng = np.random.default_rng(0)
    n = 400
    y = np.arange(n) % 2
    X = 1e-3 * rng.standard_normal((n, 2))
    X[y == 1] += 0.01
    X[0] = 1e9
    w = np.ones(n)
    w[0] = 1e-30
    last = np.r_[1:n, 0]
    kw = dict(metric="mahalanobis", covariance=covariance, covariance_shrinkage=0.0)
    first = NearestMeanClassifier(**kw).fit(X, y, sample_weight=w)
    other = NearestMeanClassifier(**kw).fit(X[last], y[last], sample_weight=w[last])
    np.testing.assert_allclose(first.covariance_, other.covariance_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(first.means_, other.means_, rtol=1e-14, atol=0)


def test_the_documented_log_of_a_zero_probability_and_stream_temperature():
    """The docs' statements, as a formulas audit read them: a zero probability's
    log is log(smallest subnormal) - 1 (nearest_mean.md left 'tiny' undefined,
    and numpy's finfo.tiny is the smallest normal: -709.4); a stream's held-out
    rows are scored at the next use by every other row streamed so far (the
    docstring said by the earlier rows and the chunk's own)."""
    from sklearn.datasets import load_digits

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(temperature=1e-3).fit(X, y)
    assert clf.predict_proba(X[:1])[0, 1] == 0.0
    tiny = np.finfo(np.float64).smallest_subnormal
    assert clf.predict_log_proba(X[:1])[0, 1] == np.log(tiny) - 1.0
    X, y = load_digits(return_X_y=True)
    chunks = np.array_split(np.arange(len(y)), 5)
    auto = dict(metric="mahalanobis", temperature="auto")
    fit = NearestMeanClassifier(**auto).fit(X, y)
    unused, used = (NearestMeanClassifier(**auto) for _ in range(2))
    for rows in chunks:
        unused.partial_fit(X[rows], y[rows], classes=np.arange(10))
        used.partial_fit(X[rows], y[rows], classes=np.arange(10))
        used.temperature_  # a use: this chunk's held-out rows are scored now
    assert unused.temperature_ == pytest.approx(fit.temperature_, rel=1e-9)
    assert used.temperature_ != pytest.approx(fit.temperature_, rel=1e-3)


# --------------------------------------------------- covariance_pooling (RDA)
def _wide_classes(seed=0, n_classes=4, per_class=12, n_features=20):
    """Fewer rows per class than features, each class its own covariance."""
    rng = np.random.RandomState(seed)
    X = np.vstack(
        [
            rng.normal(size=(per_class, n_features)) @ rng.normal(size=(n_features, n_features))
            + 3 * rng.normal(size=n_features)
            for _ in range(n_classes)
        ]
    )
    return X, np.repeat(np.array(["b", "a", "d", "c"][:n_classes]), per_class)


@pytest.mark.parametrize("pool", [0.3, 0.9])
def test_covariance_pooling_blends_each_class_covariance_with_the_shared_one(pool):
    """covariance_ is (1 - r) times the FeCAM model's shrunk class covariance plus
    r times the shared model's, and the distances are those of that covariance."""
    X, y = _wide_classes()
    per_class = dict(metric="mahalanobis", covariance="per_class")
    own = NearestMeanClassifier(**per_class).fit(X, y)
    shared = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    clf = NearestMeanClassifier(**per_class, covariance_pooling=pool).fit(X, y)
    want = (1 - pool) * own.covariance_ + pool * shared.covariance_[None]
    np.testing.assert_allclose(clf.covariance_, want, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(clf.covariance_shrinkage_, own.covariance_shrinkage_)
    dev = X[:, None, :] - clf.means_[None]
    D = np.einsum("nci,cij,ncj->nc", dev, np.linalg.inv(clf.covariance_), dev)
    np.testing.assert_allclose(clf.transform(X), D, rtol=1e-8)
    assert not np.allclose(clf.transform(X), own.transform(X), rtol=1e-3)


def test_covariance_pooling_at_its_ends_is_fecam_and_the_shared_model():
    X, y = _wide_classes(seed=1)
    per_class = dict(metric="mahalanobis", covariance="per_class")
    fecam = NearestMeanClassifier(**per_class).fit(X, y)
    zero = NearestMeanClassifier(**per_class, covariance_pooling=0.0).fit(X, y)
    np.testing.assert_array_equal(zero.decision_function(X), fecam.decision_function(X))
    one = NearestMeanClassifier(**per_class, covariance_pooling=1.0).fit(X, y)
    shared = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    np.testing.assert_allclose(
        one.decision_function(X), shared.decision_function(X), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_array_equal(one.predict(X), shared.predict(X))


def test_a_pooled_stream_refactors_classes_its_chunk_did_not_touch(monkeypatch):
    """Every class's pooled covariance follows the shared one, which any chunk's
    rows move: a stream that kept the factor of a class absent from the later
    chunks (as the FeCAM rule does, to factorize only the classes of a chunk)
    predicted from a stale shared covariance."""
    from skproto.nearest_mean import _estimator as nm

    monkeypatch.setattr(nm, "_PENDING_ELEMENTS", 0)  # (each call scores its rows: the cache)
    X, y = _wide_classes(seed=2, per_class=40)
    params = dict(metric="mahalanobis", covariance="per_class", covariance_pooling=0.6)
    later = np.isin(y, ["c", "d"]) & (np.arange(len(y)) % 2 == 0)
    stream = NearestMeanClassifier(**params, temperature="auto")
    stream.partial_fit(X[~later], y[~later])
    stream.partial_fit(X[later][:20], y[later][:20])
    stream.partial_fit(X[later][20:], y[later][20:])
    batch = NearestMeanClassifier(**params, temperature="auto").fit(X, y)
    np.testing.assert_allclose(stream.covariance_, batch.covariance_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stream.transform(X), batch.transform(X), rtol=1e-8)


def test_covariance_pooling_is_validated_and_survives_old_pickles():
    X, y = _wide_classes(seed=3)
    with pytest.raises(ValueError, match="covariance_pooling"):
        NearestMeanClassifier(covariance_pooling=1.5).fit(X, y)
    clf = NearestMeanClassifier(metric="mahalanobis", covariance="per_class").fit(X, y)
    state = clf.__getstate__()
    del state["covariance_pooling"]  # (pickled before the parameter existed)
    state["_fit_params"].pop("covariance_pooling")
    old = object.__new__(type(clf))
    old.__setstate__(state)
    assert old.get_params()["covariance_pooling"] == 0.0
    clone(old)
    np.testing.assert_array_equal(old.predict(X), clf.predict(X))
    old.partial_fit(X, y)  # (derives again, with the pooling of its time: none)
