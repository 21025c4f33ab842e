"""Extreme magnitudes and float32 numerics: compute correctly or raise a clear ValueError."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier

FAST = dict(max_epochs=10, random_state=0)
ALL = [
    pytest.param(lambda: NearestMeanClassifier(), id="nmc"),
    pytest.param(lambda: NearestMeanClassifier(metric="mahalanobis"), id="nmc-mahalanobis"),
    pytest.param(lambda: ProtoClassifier(**FAST), id="proto"),
    pytest.param(lambda: RBFPrototypeClassifier(**FAST), id="rbf"),
    pytest.param(lambda: RBFPrototypeClassifier(loss="glvq", **FAST), id="rbf-glvq"),
]
TORCH = ALL[2:]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_scaled_inputs_give_valid_probabilities(make, scale, iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = make().fit(X, y)
        for Xs in [X * np.float32(scale), X.astype(np.float64) * scale]:
            proba = clf.predict_proba(Xs)
            assert np.all(np.isfinite(proba))
            np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
            assert np.all(np.isfinite(clf.decision_function(Xs)))
            assert set(clf.predict(Xs)) <= set(clf.classes_)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "mahalanobis"])
def test_nearest_mean_is_exact_on_huge_float32_data(metric, iris):
    # Fitted and applied on the same scaled data, the nearest mean is the same
    # as on the original data: the computation moves to float64 where float32
    # would overflow, instead of returning NaN.
    X, y = iris
    plain = NearestMeanClassifier(metric=metric).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        # fit scores its held-out rows (temperature="auto") in float64 too
        scaled = NearestMeanClassifier(metric=metric).fit(X * np.float32(1e30), y)
        pred = scaled.predict(X * np.float32(1e30))
        proba = scaled.predict_proba(X * np.float32(1e30))
        scores = scaled.decision_function(X * np.float32(1e30))
    np.testing.assert_array_equal(pred, plain.predict(X))
    # computed (and returned) in float64: -1e60 does not fit float32
    assert proba.dtype == scores.dtype == np.float64
    assert np.all(np.isfinite(proba)) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_nearest_mean_on_tiny_float32_data_is_as_certain_as_at_unit_scale(metric, iris):
    # At 1e-30 the squared distances are 1e-60: the fitted temperature follows
    # them (it used to stop at 1e-3, and the probabilities came out uniform)
    X, y = iris
    unit = NearestMeanClassifier(metric=metric).fit(X, y)
    scaled = NearestMeanClassifier(metric=metric).fit(X * np.float32(1e-30), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        proba = scaled.predict_proba(X * np.float32(1e-30))
    assert np.all(np.isfinite(proba))
    codes = np.searchsorted(scaled.classes_, y)
    loss = -np.mean(np.log(proba[np.arange(len(y)), codes]))
    unit_loss = -np.mean(np.log(unit.predict_proba(X)[np.arange(len(y)), codes]))
    assert loss < 1.2 * unit_loss < 0.5
    np.testing.assert_array_equal(
        scaled.predict(X * np.float32(1e-30)), scaled.classes_[proba.argmax(1)]
    )
    np.testing.assert_array_equal(scaled.predict(X * np.float32(1e-30)), unit.predict(X))


@pytest.mark.parametrize("make", TORCH)
@pytest.mark.parametrize(
    "scale, message", [(1e30, "at most 1e\\+15"), (1e-30, "differ by at most")]
)
def test_torch_estimators_refuse_data_float32_training_cannot_hold(make, scale, message, iris):
    X, y = iris
    with pytest.raises(ValueError, match=message):
        make().fit(X.astype(np.float64) * scale, y)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "mahalanobis"])
def test_nearest_mean_refuses_data_whose_squared_distances_underflow(metric, iris):
    """1e-160 fitted a temperature of 0 (the constraint says > 0), then predict
    failed with an internal error; 1e-170 gave every class 1/3, cosine too."""
    X, y = iris
    X = X.astype(np.float64)
    for scale in (1e-160, 1e-170):
        with pytest.raises(ValueError, match="differ by at most .* at least 1e-150"):
            NearestMeanClassifier(metric=metric).fit(X * scale, y)
    tiny = NearestMeanClassifier(metric=metric).fit(X * 1e-140, y)  # still fine
    np.testing.assert_array_equal(
        tiny.predict(X * 1e-140), NearestMeanClassifier(metric=metric).fit(X, y).predict(X)
    )


@pytest.mark.parametrize("make", TORCH)
def test_data_float32_rounds_away_is_refused(make):
    """Digits + 1e9: float32 rounded every value to 1e9, and
    RBFPrototypeClassifier trained to chance (0.10) without a word."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    with pytest.raises(ValueError, match="moves X's rows by up to .* values up to 1e\\+09"):
        make().fit(X + 1e9, y)
    noisy = X + np.random.RandomState(0).uniform(size=X.shape)
    with pytest.raises(ValueError, match="vary too little for it"):
        make().fit(noisy + 1e8, y)
    make().fit(noisy + 1e5, y)  # rounded by at most 0.004: fine
    near = np.hstack([X, 1.0 + 1e-12 * noisy[:, :1]])  # float noise on a constant: fine
    make().fit(near, y)
    make().fit(X + 1e7, y)  # integers below 2**24: exact in float32
    make().fit(np.hstack([X, np.full((len(X), 1), 0.2)]), y)  # constant: nothing lost


@pytest.mark.parametrize("make", ALL)
def test_values_whose_squares_overflow_float64_are_rejected(make, iris):
    X, y = iris
    huge = X.astype(np.float64) * 1e200
    with pytest.raises(ValueError, match="values up to .* in magnitude"):
        make().fit(huge, y)
    clf = make().fit(X, y)
    for method in ["predict", "predict_proba", "decision_function", "transform", "explain"]:
        with pytest.raises(ValueError, match="Rescale X"):
            getattr(clf, method)(huge[:3])


@pytest.fixture(scope="module")
def shifted_digits():
    """Digits far from the origin: x * 1.37 + 100 (float32 cancellation territory)."""
    X, y = load_digits(return_X_y=True)
    return X * 1.37 + 100.0, y


def test_log_similarity_of_a_prototypes_own_row_in_float32(shifted_digits):
    X, y = shifted_digits
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = ProtoClassifier(similarity="log", projection=None, max_epochs=3, random_state=0).fit(
            X32, y
        )
    rows = clf.prototype_sample_indices_
    own = np.arange(len(rows))
    top = np.log(1.0 / 1e-4)  # log((0 + 1) / (0 + 1e-4)): a sample on its prototype
    np.testing.assert_allclose(clf.transform(X32[rows])[own, own], top, rtol=1e-6)
    np.testing.assert_allclose(clf.transform(X[rows])[own, own], top, rtol=1e-3)
    np.testing.assert_allclose(
        clf.decision_function(X32), clf.decision_function(X), rtol=1e-3, atol=1e-3
    )


@pytest.mark.parametrize(
    "params", [dict(loss="glvq"), dict(loss="robust", reasoning="nearest"), dict()]
)
def test_float32_certificates_never_exceed_float64_ones(params, shifted_digits):
    # A float32 input is its float64 value moved by rounding; the certificate is
    # 1-Lipschitz in the input for the bisector bound and computed in float64
    # either way, so it may differ by at most that move (it used to exceed the
    # float64 radius by up to 0.0102 on 849 of 1,797 rows).
    X, y = shifted_digits
    clf = RBFPrototypeClassifier(n_components=20, max_epochs=5, random_state=0, **params)
    clf.fit(X, y)
    X32 = X.astype(np.float32)
    r64, r32 = clf.certified_radius(X), clf.certified_radius(X32)
    moved = np.linalg.norm(X32.astype(np.float64) - X, axis=1)
    lipschitz = 1.0 if clf._head_kind == "nearest" else np.inf
    assert np.all(r32 <= r64 + lipschitz * moved + 1e-9)
    np.testing.assert_allclose(r32, r64, rtol=1e-3, atol=1e-3)


def test_float64_escalation_does_not_depend_on_chunking(iris, monkeypatch):
    import skproto._chunking

    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    Xs = X * np.float32(1e30)
    Xs[:100] = X[:100]  # the first chunks fit float32, the last ones do not
    whole = clf.decision_function(Xs)
    monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 4 * 5)  # 5-row chunks
    chunked = clf.decision_function(Xs)
    assert whole.dtype == chunked.dtype == np.float64
    np.testing.assert_array_equal(whole, chunked)


@pytest.mark.parametrize("make", ALL)
def test_labels_mixing_strings_and_numbers_are_a_value_error(make, iris):
    """Regression: an object y holding strings and numbers raised numpy's
    TypeError ('<' not supported between 'int' and 'str') from deep inside."""
    X, y = iris
    mixed = np.array(["setosa" if v == 0 else int(v) for v in y], dtype=object)
    with pytest.raises(ValueError, match=r"Mix of label types \(strings and numbers\) in y"):
        make().fit(X, mixed)
    with pytest.raises(ValueError, match=r"Mix of label types \(strings and numbers\) in y"):
        make().partial_fit(X, mixed, classes=["setosa", 1, 2])


def test_building_blocks_give_exact_numbers_or_clear_errors():
    # from an audit of the public building blocks; each line failed before
    import torch
    from scipy.spatial.distance import cdist

    from skproto import calibration as cal
    from skproto.geometry import (
        cosine_distances,
        min_squared_distances,
        normalize_rows,
        principal_axes,
        shrinkage_amount,
        squared_distances,
        whitener,
    )
    from skproto.losses import st_protopnet_loss, weighted_mean
    from skproto.robustness.certificates import cbc_radius

    # integer rows: truncated distances, and inf became -2**63
    np.testing.assert_allclose(
        min_squared_distances(np.array([[0], [7]]), np.array([[1], [2], [4]])), [1.0, 9.0]
    )
    np.testing.assert_array_equal(
        min_squared_distances(np.array([[0], [3]]), np.array([[0]]), floor=0.5), [np.inf, 9.0]
    )
    # leading axes are refined as rows are (0.0 and 0.0078 for 8e-4 far from the origin)
    rng = np.random.RandomState(0)
    X = (rng.rand(5, 3) * 1.37 + 100).astype(np.float32)
    P = X[:1] + np.float32(0.02) * np.array([[1, 1, 0]], dtype=np.float32)
    exact = cdist(X.astype(float), P.astype(float), "sqeuclidean")
    for D in (
        squared_distances(X[None], P)[0],
        squared_distances(torch.tensor(X)[None], torch.tensor(P))[0].numpy(),
    ):
        np.testing.assert_allclose(D, exact, rtol=1e-3)
    # cosine distances stay in [0, 2]; a NaN row stays NaN
    D = cosine_distances(rng.rand(200, 4), rng.rand(200, 4))
    D_self = cosine_distances(D, D)
    assert D_self.min() >= 0.0 and D_self.max() <= 2.0
    assert np.isnan(normalize_rows(np.array([[np.nan, 1.0]]))).all()
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        whitener(np.array([[np.nan, 0.0], [0.0, 1.0]]))
    # a weighted mean of tiny weights (the clamp at 1e-12 gave 0.1 for a mean of ones)
    assert float(weighted_mean(torch.ones(10), torch.full((10,), 1e-14))) == pytest.approx(1.0)
    assert float(weighted_mean(torch.ones(3), torch.zeros(3))) == 0.0
    # a detection of 0 may have underflowed: a large, finite radius (it read -708)
    d = torch.tensor([[0.8, 0.0]], dtype=torch.float64)
    r = cbc_radius(
        d,
        torch.eye(2, dtype=torch.float64),
        torch.zeros(2, 2, dtype=torch.float64),
        torch.tensor([0]),
        torch.tensor(1.0, dtype=torch.float64),
        torch.tensor(1.0, dtype=torch.float64),
    )
    assert 300 < float(r[0]) < np.inf
    # and infinite where no reasoning weight can favour the other class
    r = cbc_radius(
        d,
        torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64),
        torch.zeros(2, 2, dtype=torch.float64),
        torch.tensor([0]),
        torch.tensor(1.0, dtype=torch.float64),
        torch.tensor(1.0, dtype=torch.float64),
    )
    assert float(r[0]) == np.inf
    # rows whose best class ties with the median still place the window
    S = np.tile([5.0, 5.0, 0.0], (20, 1))
    table = cal.add_grid_losses(cal.NO_LOSSES, S, np.zeros(3), np.zeros(20, dtype=int), None)
    assert table[1] == 20.0 and table[2] is not None
    # arguments that were taken silently
    with pytest.raises(ValueError, match="kind must be 'support' or 'trivial'"):
        st_protopnet_loss(torch.eye(2), torch.tensor([0, 1]), 2, "supprt")
    with pytest.raises(ValueError, match="method must be 'oas', 'ledoit_wolf' or a float"):
        shrinkage_amount("lw", np.eye(2), 10.0, None)
    with pytest.raises(ValueError, match=r"A shrinkage amount must be in \[0, 1\]"):
        shrinkage_amount(1.5, np.eye(2), 10.0, None)
    with pytest.raises(ValueError, match="dim must be a positive int"):
        principal_axes(rng.rand(10, 3), -1)
    with pytest.raises(ValueError, match="prior must be a positive finite temperature"):
        cal.fit_temperature(rng.rand(10, 3), rng.randint(0, 3, 10), prior=0.0)


@pytest.mark.parametrize(
    "params",
    [dict(loss="robust", reasoning="positive"), dict(loss="glvq")],
    ids=["robust-positive", "glvq"],
)
def test_rbf_trains_on_small_scale_data_as_at_unit_scale(params, iris):
    # a fixed 1e-12 smoothed every squared distance: at scale 1e-8 each detection
    # underflowed and training diverged at any learning rate (robust loss, CBC
    # head), and GLVQ's relative distance was bent (prototypes 0.12 off)
    X, y = iris
    X = X.astype(np.float64)
    unit = RBFPrototypeClassifier(max_epochs=30, random_state=0, **params).fit(X, y)
    small = RBFPrototypeClassifier(max_epochs=30, random_state=0, **params).fit(X * 1e-8, y)
    assert small.score(X * 1e-8, y) >= unit.score(X, y) - 0.02
    np.testing.assert_allclose(small.prototypes_ * 1e8, unit.prototypes_, atol=0.05)


def test_a_float32_output_that_overflows_late_is_float64_for_every_row(iris, monkeypatch):
    # (a surviving mutant: casting the output computed so far to float64, rather
    # than starting again in float64, kept the earlier chunks' float32 rounding)
    import skproto._chunking

    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    rows = np.arange(40, dtype=np.float32).reshape(20, 2)

    def scores(x):  # float64 values, the last rows beyond float32's range
        return x[:, :1].astype(np.float64) * 1e37 + 1.0 / 3.0

    monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 4)  # a few rows per chunk
    out = clf._map_chunks(scores, rows, 1, np.float32)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, scores(rows))
    # the one row beyond float32's range is not the first of its chunk
    monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 12)  # four rows a chunk
    one = np.zeros((20, 2), dtype=np.float32)
    one[6, 0] = 100.0
    out = clf._map_chunks(scores, one, 1, np.float32)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, scores(one))


def test_float32_squared_distances_far_from_the_origin_are_refined():
    # (a surviving mutant: refining only entries below eps**0.5 of the norms, not
    # eps**(1/3), left small float32 distances off by 6.6e-4 relative here)
    from skproto.geometry import squared_distances

    rng = np.random.default_rng(0)
    for scale in [1e-3, 1e-2, 0.1, 1.0]:
        P = (rng.normal(size=(20, 16)) * 1.37 + 100).astype(np.float32)
        X = (P[rng.integers(20, size=400)] + rng.normal(size=(400, 16)) * scale).astype(np.float32)
        D = squared_distances(X, P)
        exact = ((X.astype(np.float64)[:, None] - P.astype(np.float64)[None]) ** 2).sum(-1)
        assert D.dtype == np.float32
        np.testing.assert_allclose(D, exact, rtol=1e-5)


@pytest.mark.parametrize("make", ALL)
def test_a_frame_of_sparse_columns_gets_the_sparse_input_message(make):
    """Regression: scipy's sparse matrices got the documented ValueError, a pandas
    DataFrame of sparse columns scikit-learn's TypeError ("Sparse data was passed
    for X, but dense data is required")."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), np.arange(30) % 3
    frame = pd.DataFrame(X).astype(pd.SparseDtype("float", 0))
    with pytest.raises(ValueError, match="does not support sparse input; got a DataFrame"):
        make().fit(frame, y)
    clf = make().fit(X, y)
    with pytest.raises(ValueError, match="does not support sparse input; got a DataFrame"):
        clf.predict(frame)


def test_input_checks_at_their_boundaries():
    """From a mutation audit of ``_validation``: each check below could be
    changed (a one-sided magnitude, a strict bound made inclusive, identical
    rows refused, two-row data unchecked) with no test failing."""
    y = [0, 0, 1, 1]
    rows = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    # large negative values are refused as large positive ones are (predicted
    # silently at 1e-200 scale: every probability 0 or 1)
    negative = rows.copy()
    negative[0, 0] = -1e200
    with pytest.raises(ValueError, match=r"values up to 1e\+200 in magnitude"):
        NearestMeanClassifier().fit(negative, y)
    clf = NearestMeanClassifier().fit(rows, y)
    with pytest.raises(ValueError, match=r"values up to 1e\+200 in magnitude"):
        clf.predict(negative)
    # "at most 1e100": the bound itself is accepted, the next float is not
    edge = rows.copy()
    edge[0, 0] = 1e100
    NearestMeanClassifier().fit(edge, y)
    edge[0, 0] = np.nextafter(1e100, np.inf)
    with pytest.raises(ValueError, match="accepts at most 1e\\+100"):
        NearestMeanClassifier().fit(edge, y)
    # rows that are all equal have no spread to underflow: fitted (uniform)
    same = NearestMeanClassifier().fit(np.ones((4, 2)), y)
    np.testing.assert_allclose(same.predict_proba(np.ones((1, 2))), [[0.5, 0.5]])
    # two rows that float32 rounds onto one value are refused like more rows
    with pytest.raises(ValueError, match="float32"):
        RBFPrototypeClassifier(**FAST).fit([[1e9, 0.0], [1e9 + 10, 0.0]], [0, 1])


@pytest.mark.parametrize("make", ALL)
def test_partial_fit_label_checks(make):
    """From a mutation audit of ``_validation``, and two defects it found:
    declared classes mixing strings and numbers became strings silently
    (``classes=["a", 1]`` gave ``classes_ = ["1", "a"]``, and the label 1 could
    then never be trained on), None among them raised numpy's TypeError; a
    chunk with more classes than half its rows warned (scikit-learn's
    regression-target hint); labels beyond the declared classes raised an
    IndexError in the torch estimators; declared classes no label can take
    (2.5, inf) were accepted."""
    X = np.random.default_rng(0).normal(size=(24, 3))
    with pytest.raises(ValueError, match=r"Mix of label types \(strings and numbers\) in classes"):
        make().partial_fit(X[:4], ["a", "a", "1", "1"], classes=["a", 1])
    with pytest.raises(ValueError, match=r"classes contains None \(a missing label\)"):
        make().partial_fit(X[:4], ["a", "a", "b", "b"], classes=["a", "b", None])
    with pytest.raises(ValueError, match=r"y contains labels \[2\] that are not in classes"):
        make().partial_fit(X, np.arange(24) % 3, classes=[0, 1])
    # declared labels no y may hold were accepted and stayed at probability 0
    # (a meta-estimator audit); scikit-learn's partial_fit refuses them
    binary = np.arange(4) % 2.0
    with pytest.raises(ValueError, match="classes are not class labels: Unknown label type"):
        make().partial_fit(X[:4], binary, classes=[0.0, 1.0, 2.5])
    for odd in (np.inf, np.nan):
        with pytest.raises(ValueError, match="classes contains NaN or infinity"):
            make().partial_fit(X[:4], binary, classes=[0.0, 1.0, odd])
    with warnings.catch_warnings():  # 60 unique declared classes are not a regression target
        warnings.simplefilter("error")
        assert len(make().partial_fit(X[:4], binary, classes=np.arange(60.0)).classes_) == 60
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = make().partial_fit(X[:22], np.arange(22) % 12)  # 12 classes in 22 rows
    assert clf.classes_.tolist() == list(range(12))


def test_balanced_class_weights_count_classes_with_rows_only():
    """A class whose rows all weigh 0 gets no share of "balanced" (as
    scikit-learn), and a batch that weighs nothing at all gives weights of 1
    without numpy's 0 / 0 RuntimeWarning (it leaked from partial_fit)."""
    from skproto._validation import class_weights

    np.testing.assert_allclose(
        class_weights("balanced", np.arange(3), [4.0, 0.0, 2.0]), [0.75, 1, 1.5]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(class_weights("balanced", np.arange(3), np.zeros(3)), 1.0)
        X = np.random.default_rng(0).normal(size=(30, 2))
        y = np.arange(30) % 3
        clf = ProtoClassifier(class_weight="balanced", **FAST)
        clf.fit(X, y, sample_weight=np.where(y == 2, 0.0, 1.0))
        clf.partial_fit(X, y, sample_weight=np.zeros(30))


@pytest.mark.parametrize("head", ["linear", "mixture"])
def test_a_later_call_must_keep_the_label_layout(head):
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    Y = np.stack([y, 1 - y], axis=1)
    clf = ProtoClassifier(head=head, **FAST).partial_fit(X, y, classes=[0, 1])
    # (the mixture head streams single-label y only, and says so first)
    layout = "does not match the label layout" if head == "linear" else "streams single-label y"
    with pytest.raises(ValueError, match=layout):
        clf.partial_fit(X, Y)
    if head == "linear":
        multi = ProtoClassifier(head=head, **FAST).fit(X, Y)
        with pytest.raises(ValueError, match="does not match the label layout"):
            multi.partial_fit(X, y)


def test_geometry_pinned_by_a_mutation_audit():
    """Mutation audit of skproto/geometry: each case below passed under a mutant
    (refinement skipped or too narrow for float32 rows far from the origin, a row
    at the floor dropped, a whitener that cut a real direction or kept a
    subnormal one, principal axes off in float32 or reading more rows than
    asked, an OAS amount of 1 for one feature)."""
    from sklearn.covariance import OAS

    from skproto.geometry import (
        min_squared_distances,
        principal_axes,
        shrinkage_amount,
        squared_distances,
        whitener,
    )

    def exact(X, P):
        return ((X.astype(np.float64)[:, None] - P.astype(np.float64)[None]) ** 2).sum(-1)

    X = np.array([[1000.3, 999.7], [0.01, 0.0]], dtype=np.float32)
    P = np.array([[1002.1, 999.7], [0.0, 0.01]], dtype=np.float32)
    np.testing.assert_allclose(squared_distances(X, P)[0, 0], exact(X, P)[0, 0], rtol=1e-6)
    rng = np.random.RandomState(0)
    X = (1000 + rng.normal(size=(200, 2))).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, 200)
    # each row's own prototype at squared distance 14,000 (inside the refinement band
    # set by the largest prototype norm), and one prototype at the origin
    P = np.vstack([X + np.sqrt(14000.0) * np.c_[np.cos(angle), np.sin(angle)], [[0, 0]]])
    P = P.astype(np.float32)
    own = np.arange(200)
    got, want = squared_distances(X, P)[own, own], exact(X, P)[own, own]
    assert np.max(np.abs(got - want) / want) < 1e-6
    np.testing.assert_array_equal(
        min_squared_distances(np.array([[0.0], [1.0]]), np.array([[0.0]]), floor=1.0),
        [np.inf, 1.0],  # (below the floor does not count; at it, it does)
    )
    cov = np.array([[1.0, 1 - 1e-8], [1 - 1e-8, 1.0]])
    L = whitener(cov)
    assert L.shape == (2, 2)
    np.testing.assert_allclose(L @ L.T, np.linalg.inv(cov), rtol=1e-6)
    L = whitener(np.diag([1.0, 1e-310]))  # a subnormal variance is no direction
    assert L.shape == (2, 1) and np.abs(L).max() == 1.0
    X = (1e5 + rng.normal(size=(1000, 2)) * [0.05, 0.045]).astype(np.float32)
    X64 = X.astype(np.float64)
    axis = np.linalg.svd(X64 - X64.mean(0), full_matrices=False)[2][0]
    assert abs(principal_axes(X, 1)[0] @ axis) > 1 - 1e-9
    assert principal_axes(rng.normal(size=(3, 5)), 5, max_rows=2).shape == (2, 5)
    one = rng.normal(size=(10, 1))
    S = np.cov(one.T, bias=True).reshape(1, 1)
    assert shrinkage_amount("oas", S, 10, None) == OAS().fit(one).shrinkage_ == 0.0


def test_float32_outputs_keep_values_up_to_float32_s_largest():
    # float32's largest value casts to itself: an output holding it stays float32
    from skproto._base import _fits_float32

    top = float(np.finfo(np.float32).max)
    assert np.float32(top) == top
    assert _fits_float32(np.array([-top, top, np.inf, -np.inf, np.nan]))
    assert not _fits_float32(np.array([np.nextafter(top, np.inf)]))
    assert not _fits_float32(np.array([1.0, -2 * top]))
    assert _fits_float32(np.array([np.inf])) and _fits_float32(np.empty(0))


def test_a_row_that_no_class_can_take_gets_uniform_probabilities(iris):
    # (defensive: no estimator scores every class -inf today; without the guard
    # the row's probabilities were 0 / 0 and predict_proba raised)
    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    scores = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, -np.inf]])
    clf._link_scores_chunk = lambda x: scores[: len(x)].copy()
    P = clf.predict_proba(X[:2])
    np.testing.assert_allclose(P[0], [1 / 3] * 3)
    np.testing.assert_allclose(P[1], [1 / (1 + np.e), np.e / (1 + np.e), 0.0])


def test_whitener_takes_cholesky_only_where_its_floor_shows_nothing_is_cut():
    """A shrunk covariance's known floor (``a tr(S) / p``) lets the whitener
    invert by Cholesky: the same ``L @ L.T`` as the eigendecomposition, upper
    triangular. A floor too small to show that no eigenvalue is cut keeps the
    eigendecomposition (and its cut), as does a floor that is not a bound."""
    from skproto.geometry import shrunk_covariance, whitener

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 6)) * [1e3, 1.0, 1.0, 1e-3, 1.0, 1.0]  # mixed units
    S = np.cov(X.T, bias=True)
    a = 0.05
    cov = shrunk_covariance(S, a)
    floor = a * np.trace(S) / 6
    U, L = whitener(cov, floor), whitener(cov)
    d = np.sqrt(np.diag(cov))  # (compared in correlation units: entries span 1e-12 to 1e0)
    np.testing.assert_allclose(d[:, None] * (U @ U.T) * d, d[:, None] * (L @ L.T) * d, atol=1e-12)
    np.testing.assert_allclose(cov @ U @ U.T, np.eye(6), atol=1e-12)
    np.testing.assert_array_equal(U, np.triu(U))
    assert not np.allclose(L, np.triu(L))  # (the eigendecomposition's map is full)
    # a singular covariance whose claimed floor is tiny keeps the cut: rank 1
    sing = np.outer([1.0, 2.0], [1.0, 2.0])
    assert whitener(sing, 1e-12).shape == (2, 1)
    # just above the margin: Cholesky; just below: the eigendecomposition
    cov2 = np.diag([1.0, 1.0])
    edge = 1e3 * 1e-10 * 2
    assert whitener(cov2, edge * 1.01).shape == (2, 2)
    np.testing.assert_array_equal(whitener(cov2, edge * 1.01), np.eye(2))
    # a floor that is no bound (a matrix that is not positive definite): the
    # factorisation fails and the eigendecomposition cuts as before
    assert whitener(sing, 1.0).shape == (2, 1)


def test_a_shrunk_mahalanobis_fit_needs_no_eigendecomposition(monkeypatch):
    """A default Mahalanobis fit (OAS shrinkage) inverts its covariances by
    Cholesky: on 2,048 features four eigendecompositions took 9 of a fit's
    11.5 s (now 3.6 s); shared and per-class, the scores equal those of the
    eigendecomposition's maps."""
    import skproto.geometry.covariance as covariance
    from skproto import NearestMeanClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 20)) * np.geomspace(1e-2, 1e2, 20)
    y = rng.randint(0, 3, 300)
    X += y[:, None]
    calls = []
    real = covariance.eigh
    for cov in ("shared", "per_class"):
        calls.clear()
        monkeypatch.setattr(covariance, "eigh", lambda *a, **k: calls.append(1) or real(*a, **k))
        fast = NearestMeanClassifier(metric="mahalanobis", covariance=cov).fit(X, y)
        assert calls == []
        monkeypatch.setattr(covariance, "_CHOLESKY_MARGIN", np.inf)  # the old path
        slow = NearestMeanClassifier(metric="mahalanobis", covariance=cov).fit(X, y)
        assert len(calls) > 0
        monkeypatch.undo()
        np.testing.assert_allclose(
            fast.decision_function(X), slow.decision_function(X), rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(fast.score_samples(X), slow.score_samples(X), rtol=1e-9)
        assert fast.temperature_ == pytest.approx(slow.temperature_, rel=1e-9, abs=0)


# Pinned by a mutation audit of the encoders, validation, losses and
# initialisation (2026-12-06)


def test_balanced_weights_near_float64_s_top_do_not_overflow_the_class_sums():
    # V13: summing raw weights of 1e307 overflowed to inf, and "balanced" gave nan
    X = np.random.default_rng(0).normal(size=(60, 2))
    y = np.arange(60) % 2
    clf = ProtoClassifier(class_weight="balanced", max_epochs=2, random_state=0)
    clf.fit(X, y, sample_weight=np.full(60, 1e307))
    assert clf.classes_.tolist() == [0, 1]


def test_a_column_vector_y_is_single_label_for_a_multilabel_capable_model():
    # V15: an (n, 1) y counted as multi-label and was refused as a bad indicator
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    with pytest.warns(Warning):  # scikit-learn's DataConversionWarning
        clf = ProtoClassifier(max_epochs=2, random_state=0).fit(X, y[:, None])
    assert clf.classes_.tolist() == [0, 1]


def test_a_later_multilabel_batch_must_have_one_column_per_class():
    # V18: a batch of 2 columns against 3 classes raised torch's IndexError
    X = np.random.default_rng(0).normal(size=(20, 2))
    Y = np.eye(3)[np.arange(20) % 3]
    clf = ProtoClassifier(head="linear", max_epochs=2, random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match="does not match the label layout"):
        clf.partial_fit(X, Y[:, :2])


def test_a_frame_without_columns_is_not_called_sparse():
    # V02: with X.shape[1] dropped, a frame with no columns (all of its zero columns
    # "sparse") got the sparse-input message
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError) as info:
        NearestMeanClassifier().fit(pd.DataFrame(index=range(4)), [0, 0, 1, 1])
    assert "sparse" not in str(info.value)


# --- pinned by a mutation audit of calibration, covariance, distances and certificates (2026-12-06)
def test_the_shrinkage_floor_is_the_least_eigenvalue_of_a_singular_shrunk_covariance():
    # C22: the floor handed to whitener must be a lower bound of the shrunk
    # covariance's eigenvalues (it decides the Cholesky path); a floor of
    # a tr(S) (not / p) claimed 3x the least eigenvalue
    from skproto.geometry import shrunk_covariance
    from skproto.nearest_mean._estimator import _shrinkage_floor

    S = np.outer([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])  # rank 1: the bound is attained
    a = 0.1
    least = np.linalg.eigvalsh(shrunk_covariance(S, a)).min()
    assert _shrinkage_floor(S, a) == pytest.approx(least, rel=1e-12)
    assert _shrinkage_floor(S, a) == pytest.approx(a * 14.0 / 3)


def test_torch_cosine_distances_stay_in_0_2_without_gradients():
    # D09: the torch path clamps too when no gradient is recorded (rounding put
    # self-distances below 0)
    import torch

    from skproto.geometry import cosine_distances

    rng = np.random.RandomState(0)
    D = torch.tensor(cosine_distances(rng.rand(200, 4), rng.rand(200, 4)))
    D_self = cosine_distances(D, D)
    assert float(D_self.min()) >= 0.0 and float(D_self.max()) <= 2.0
    assert float(cosine_distances(D, -D).max()) <= 2.0


def test_ledoit_wolf_amount_of_a_covariance_already_at_its_target_is_zero():
    # C06: without beta = min(beta, delta), S = I / 2 (delta = 0) read 1.0, with a
    # divide-by-zero warning; scikit-learn's ledoit_wolf_shrinkage gives 0
    import warnings

    from sklearn.covariance import ledoit_wolf_shrinkage

    from skproto.geometry import shrinkage_amount

    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # centred, S = I / 2
    q4 = float((np.sum(X**2, axis=1) ** 2).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        amount = shrinkage_amount("ledoit_wolf", X.T @ X / 4, 4, q4)
    assert amount == ledoit_wolf_shrinkage(X, assume_centered=True) == 0.0


def test_whitener_cholesky_boundary_is_relative_to_the_largest_variance():
    # C12 (floor / top), C13 (margin 1), C14 (no factor p), C15 (>=): the
    # documented condition is floor / top**2 > 1e3 * PINV_RTOL * p, strictly;
    # below it the eigendecomposition's map (full), above it Cholesky's (triangular)
    from skproto.geometry import whitener

    cov = 4.0 * np.array([[1.0, 0.5], [0.5, 1.0]])  # top**2 = 4, p = 2
    edge = 1e3 * 1e-10 * 2 * 4.0
    below, at, above = (whitener(cov, edge * f) for f in (0.99, 1.0, 1.01))
    assert not np.allclose(below, np.triu(below)) and not np.allclose(at, np.triu(at))
    np.testing.assert_array_equal(above, np.triu(above))
    np.testing.assert_allclose(above @ above.T, np.linalg.inv(cov), rtol=1e-12)
    # in large units a floor far below the cut relative to top**2 keeps the cut
    # (C12 took Cholesky here: a rank-2 map scaling the 1e-11 direction by 2e5)
    s = 1e10
    near = s * np.array([[1.0, 1 - 1e-11], [1 - 1e-11, 1.0]])
    L = whitener(near, np.linalg.eigvalsh(near).min())
    assert L.shape == (2, 1)
    np.testing.assert_allclose(L @ L.T * s, np.full((2, 2), 0.25), rtol=1e-6)


def test_squared_distances_of_integer_rows():
    # an audit: integer rows raised numpy's UFuncTypeError ("Cannot cast ufunc
    # 'multiply' output from dtype('float64') to dtype('int64')") from D *= -2.0
    from skproto.geometry import squared_distances

    D = squared_distances(np.array([[0, 0], [3, 4]]), np.array([[0, 0], [3, 0]]))
    np.testing.assert_array_equal(D, [[0.0, 9.0], [25.0, 16.0]])
    assert D.dtype == np.float64
    assert squared_distances(np.ones((2, 2), np.float32), np.ones((1, 2), np.float32)).dtype == (
        np.float32
    )
