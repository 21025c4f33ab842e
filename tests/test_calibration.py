"""temperature="auto": the held-out temperature of every estimator, and its statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skproto import NearestMeanClassifier, ProtoClassifier
from skproto.calibration import (
    TEMPERATURE_GRID,
    fit_temperature,
    grid_center,
    grid_log_loss,
    grid_temperature,
    lattice,
    merge_grid_losses,
    temperature_log_loss,
    temperature_window,
)


def sampled_labels(t_true, n=20_000, n_classes=5, seed=0):
    """Scores, and labels drawn from softmax(scores / t_true): the calibrated temperature."""
    rng = np.random.default_rng(seed)
    S = rng.normal(scale=3.0, size=(n, n_classes))
    P = np.exp(S / t_true - (S / t_true).max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (P.cumsum(1) > rng.random(n)[:, None]).argmax(1)
    return S, y


@pytest.mark.parametrize("t_true", [0.3, 1.0, 4.0])
def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at(t_true):
    S, y = sampled_labels(t_true)
    assert fit_temperature(S, y) == pytest.approx(t_true, rel=0.05)


@pytest.mark.parametrize("t_true", [0.3, 1.0, 4.0])
def test_grid_statistic_recovers_it_and_adds_up_over_chunks(t_true):
    S, y = sampled_labels(t_true)
    lp = np.zeros(S.shape[1])
    whole = grid_log_loss(S, lp, y, None)
    halves = [grid_log_loss(S[s], lp, y[s], None) for s in (slice(0, 7000), slice(7000, None))]
    np.testing.assert_allclose(whole[0], halves[0][0] + halves[1][0], rtol=1e-12)
    assert whole[1] == halves[0][1] + halves[1][1] == len(y)
    assert grid_temperature(*whole) == pytest.approx(t_true, rel=0.05)
    # each grid entry is the summed log-loss at that temperature (its
    # exponentials are summed in float32: exact to about 1e-8 relative)
    i = len(TEMPERATURE_GRID) // 2
    expected = temperature_log_loss(S, y, None, TEMPERATURE_GRID[i]) * len(y)
    assert whole[0][0, i] == pytest.approx(expected, rel=1e-7)
    smoothed = temperature_log_loss(S, y, None, TEMPERATURE_GRID[i], smoothing=1.0) * len(y)
    assert whole[0][1, i] == pytest.approx(smoothed, rel=1e-7)


def test_separable_held_out_rows_do_not_drive_the_temperature_to_zero():
    S = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 1.0]])
    y = np.array([0, 1, 0])
    t = fit_temperature(S, y)
    assert 0.2 < t < 10  # finite: one uniform pseudo-row keeps it away from 0
    assert 0.2 < grid_temperature(*grid_log_loss(S, np.zeros(2), y, None)) < 10
    assert grid_temperature(np.zeros((2, len(TEMPERATURE_GRID))), 0.0) == 1.0  # nothing held out


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.5, random_state=0, stratify=y)


def log_loss(clf, X, y):
    P = clf.predict_proba(X)
    return -np.mean(np.log(P[np.arange(len(y)), np.searchsorted(clf.classes_, y)]))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "mahalanobis"])
def test_nearest_mean_auto_temperature_calibrates_held_out_probabilities(digits, metric):
    X_tr, X_te, y_tr, y_te = digits
    auto = NearestMeanClassifier(metric=metric).fit(X_tr, y_tr)
    fixed = NearestMeanClassifier(metric=metric, temperature=1.0).fit(X_tr, y_tr)
    np.testing.assert_array_equal(auto.predict(X_te), fixed.predict(X_te))  # same decisions
    assert auto.temperature_ != 1.0 and fixed.temperature_ == 1.0
    assert log_loss(auto, X_te, y_te) < 0.8 * log_loss(fixed, X_te, y_te)
    assert log_loss(auto, X_te, y_te) < 0.5
    # the scores are the documented formula at the fitted temperature
    S = -auto.transform(X_te) / (2 * auto.temperature_) + np.log(auto.class_prior_)
    np.testing.assert_allclose(auto.decision_function(X_te), S, rtol=1e-7, atol=1e-10)


def test_nearest_mean_auto_temperature_streams_and_merges(digits):
    X_tr, _, y_tr, _ = digits
    batch = NearestMeanClassifier().fit(X_tr, y_tr)
    stream = NearestMeanClassifier()
    for s in np.array_split(np.arange(len(y_tr)), 6):
        stream.partial_fit(X_tr[s], y_tr[s])
    np.testing.assert_allclose(stream.means_, batch.means_, rtol=1e-10)
    # the same rows held out (by hash), scored by the model of all the others
    assert stream.temperature_ == pytest.approx(batch.temperature_, rel=1e-9)
    half = len(y_tr) // 2
    a = NearestMeanClassifier().fit(X_tr[:half], y_tr[:half])
    b = NearestMeanClassifier().fit(X_tr[half:], y_tr[half:])
    merged = a.merge(b)
    # shards of one dataset place their windows of temperatures within a step of
    # each other: their losses add on the common points
    sums, total, k_lo = merge_grid_losses([a._calibration, b._calibration])
    assert sums.shape[1] >= len(TEMPERATURE_GRID) - 1
    assert total == a._calibration[1] + b._calibration[1] == merged._calibration[1]
    expected = grid_temperature(sums, total, lattice(k_lo, sums.shape[1]))
    assert merged.temperature_ == pytest.approx(expected, rel=1e-12)
    again = NearestMeanClassifier().fit(X_tr, y_tr)
    assert again.temperature_ == batch.temperature_  # deterministic


def test_proto_auto_temperature_is_fitted_on_the_early_stopping_split(digits):
    X_tr, X_te, y_tr, y_te = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = ProtoClassifier(n_prototypes_per_class=2, max_epochs=10, random_state=0)
        clf.fit(X_tr, y_tr)
    assert clf.temperature_ == clf.history_["temperature"]
    fixed = clf.set_params(temperature=1.0).fit(X_tr, y_tr)
    auto = ProtoClassifier(n_prototypes_per_class=2, max_epochs=10, random_state=0)
    auto.fit(X_tr, y_tr)
    np.testing.assert_array_equal(auto.predict(X_te), fixed.predict(X_te))
    # about 90 held-out rows: an estimate, not a guarantee of a better test loss
    assert log_loss(auto, X_te, y_te) <= 1.1 * log_loss(fixed, X_te, y_te)


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_proto_auto_temperature_trusts_the_trained_scale_on_few_held_out_rows(loader):
    """A dozen held-out rows, all right, no longer soften the probabilities.

    With the targets smoothed by one uniform pseudo-row, twelve held-out iris
    rows asked for a confidence of about 0.95 and the temperature went to
    2-3: 5-fold log-loss 0.30 against 0.17 at temperature 1 (wine: 0.16
    against 0.12). The scale of ProtoClassifier's scores is trained, so the
    pseudo-row now pulls towards temperature 1: 0.14 and 0.12.
    """
    X, y = loader(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)

    def cv_log_loss(temperature):
        model = make_pipeline(
            StandardScaler(), ProtoClassifier(random_state=0, temperature=temperature)
        )
        return -cross_val_score(model, X, y, cv=cv, scoring="neg_log_loss").mean()

    assert cv_log_loss("auto") <= 1.1 * cv_log_loss(1.0)


def test_a_class_no_row_can_take_leaves_the_temperature_fitted():
    """Regression: a class with no prototype (its rows all weighed 0) scores -inf
    in every row; fit_temperature dropped every row with a non-finite score, so
    none was left and t fell back to 1 (digits, class 9 at weight 0: RBF's
    test log-loss 1.66 against 0.08)."""
    from skproto import RBFPrototypeClassifier

    rng = np.random.RandomState(0)
    T = rng.randint(0, 3, 400)
    S = 2.0 * np.eye(3)[T] + rng.normal(size=(400, 3))
    t = fit_temperature(S, T)
    S_dead = np.column_stack([S[:, :1], np.full(400, -np.inf), S[:, 1:]])
    assert fit_temperature(S_dead, np.array([0, 2, 3])[T]) == pytest.approx(t, rel=1e-6)
    X, y = load_digits(return_X_y=True)
    X, y = X[:800] / 16.0, y[:800]
    w = np.where(y == 9, 0.0, 1.0)
    for make in (lambda: RBFPrototypeClassifier(max_epochs=10, random_state=0),
                 lambda: ProtoClassifier(max_epochs=5, random_state=0)):  # fmt: skip
        weighted = make().fit(X, y, sample_weight=w)
        assert weighted.temperature_ != 1.0
        plain = make().fit(X[y != 9], y[y != 9])
        assert weighted.temperature_ == pytest.approx(plain.temperature_, rel=0.5)


def test_fit_temperature_prior():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(12, 3))
    T = np.argmax(S, axis=1)  # separated: without a pseudo-row t would go to 0
    uniform = fit_temperature(S, T)
    assert fit_temperature(S * 0, T, prior=2.0) == pytest.approx(2.0, rel=1e-3)  # no evidence
    # one pseudo-row on t = 1, then on t = 4 (the scores scaled by 4 give the same loss)
    t1 = fit_temperature(S, T, prior=1.0)
    assert 0 < t1 < 1.0 and t1 != pytest.approx(uniform, rel=1e-2)
    assert fit_temperature(4 * S, T, prior=4.0) == pytest.approx(4 * t1, rel=1e-3)
    # many rows: the prior hardly moves a temperature they pin down
    S = rng.normal(size=(20000, 3))
    T = np.array([rng.choice(3, p=np.exp(s / 2) / np.exp(s / 2).sum()) for s in S])
    assert fit_temperature(S, T, prior=1.0) == pytest.approx(2.0, rel=0.05)
    assert fit_temperature(S, T, prior=1.0) == pytest.approx(fit_temperature(S, T), rel=0.01)
    assert fit_temperature(np.full((3, 2), np.nan), np.zeros(3, int), prior=3.0) == 3.0


def test_rbf_auto_temperature_sharpens_p_c_normalisation(digits):
    from skproto import RBFPrototypeClassifier

    X_tr, X_te, y_tr, y_te = digits
    params = dict(max_epochs=15, early_stopping=True, random_state=0)
    auto = RBFPrototypeClassifier(**params).fit(X_tr, y_tr)
    fixed = RBFPrototypeClassifier(temperature=1.0, **params).fit(X_tr, y_tr)
    np.testing.assert_array_equal(auto.predict(X_te), fixed.predict(X_te))
    np.testing.assert_allclose(auto.decision_function(X_te), fixed.decision_function(X_te))
    assert fixed.temperature_ == 1.0 and auto.temperature_ < 1.0  # p_c / sum p is too flat
    assert log_loss(auto, X_te, y_te) < 0.8 * log_loss(fixed, X_te, y_te)


def test_nearest_mean_held_out_rows_follow_the_rows_not_their_order_or_weights(digits):
    X_tr, _, y_tr, _ = digits
    base = NearestMeanClassifier().fit(X_tr, y_tr)
    order = np.random.default_rng(0).permutation(len(y_tr))
    shuffled = NearestMeanClassifier().fit(X_tr[order], y_tr[order])
    assert shuffled.temperature_ == pytest.approx(base.temperature_, rel=1e-12)
    w = np.ones(len(y_tr))
    w[:50] = 2.0  # a weight of 2 is the row twice
    weighted = NearestMeanClassifier().fit(X_tr, y_tr, sample_weight=w)
    repeated = NearestMeanClassifier().fit(
        np.concatenate([X_tr, X_tr[:50]]), np.concatenate([y_tr, y_tr[:50]])
    )
    assert weighted.temperature_ == pytest.approx(repeated.temperature_, rel=1e-10)


def test_grid_windows_follow_the_scale_of_the_scores_and_merge_on_common_points():
    S, y = sampled_labels(1.0, n=4000)
    lp = np.zeros(S.shape[1])
    # the unit window is the historical grid; a window moves by lattice steps
    np.testing.assert_array_equal(temperature_window(0), TEMPERATURE_GRID)
    np.testing.assert_allclose(temperature_window(7), TEMPERATURE_GRID * 10**1.05, rtol=1e-12)
    assert grid_center(S) == grid_center(S * 1.0001)
    assert grid_center(S * 1e6) == grid_center(S) + 40  # 6 decades = 40 steps of 0.15
    assert grid_center(np.zeros((5, 3))) is None  # no spread: no scale to read
    assert grid_center(np.c_[np.zeros(4), np.full(4, -np.inf)]) is None  # one class
    # the same rows scored on two overlapping windows merge on their common points
    k_a, k_b = -20, -15
    ta = (*grid_log_loss(S[:2000], lp, y[:2000], None, lattice(k_a, 41)), k_a)
    tb = (*grid_log_loss(S[2000:], lp, y[2000:], None, lattice(k_b, 41)), k_b)
    sums, total, k_lo = merge_grid_losses([ta, tb])
    assert (k_lo, sums.shape[1], total) == (k_b, 36, 4000.0)
    direct = grid_log_loss(S, lp, y, None, lattice(k_b, 36))[0]
    np.testing.assert_allclose(sums, direct, rtol=1e-9)
    # a table of a very different scale is left out, with its weight
    tc = (*grid_log_loss(S[:10], lp, y[:10], None, lattice(200, 41)), 200)
    sums2, total2, k2 = merge_grid_losses([ta, tb, tc])
    assert (k2, total2) == (k_b, 4000.0)
    assert merge_grid_losses([])[2] is None


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "mahalanobis"])
@pytest.mark.parametrize("scale", [1e-150, 2.0**-40, 1 / 255, 255.0, 2.0**40, 1e98])
def test_nearest_mean_temperature_follows_the_units_of_X(digits, metric, scale):
    """Regression: the temperature grid was fixed in absolute units (1e-3 to 1e3), so
    Euclidean nearest means on pixel values (0-255) had log-loss 2.2 instead of 0.33,
    and features of magnitude 1e-10 got uniform probabilities and tied predictions."""
    X_tr, X_te, y_tr, y_te = digits
    unit = NearestMeanClassifier(metric=metric).fit(X_tr, y_tr)
    scaled = NearestMeanClassifier(metric=metric).fit(X_tr * scale, y_tr)
    np.testing.assert_array_equal(scaled.predict(X_te * scale), unit.predict(X_te))
    P = scaled.predict_proba(X_te * scale)
    assert np.isfinite(P).all()
    assert log_loss(scaled, X_te * scale, y_te) < 1.15 * log_loss(unit, X_te, y_te)


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_nearest_mean_class_incremental_stream_is_calibrated(digits, metric, monkeypatch):
    """Regressions: partial_fit scored each chunk before learning it ("test, then
    train"), so a chunk of new classes had no score for its true class and a
    class-incremental stream kept temperature 1.0 (Mahalanobis on digits: T = 1
    against fit's 2.4, over-confident). Then each chunk's held-out rows were
    scored by the model of the rows before them: early chunks by models of
    fewer classes, and the temperature ran 1.1-1.3x fit's (test log-loss
    1.07-1.25x over six splits). The held-out rows are now set aside and scored
    at the next use by the model of every other row: as in fit, exactly."""
    from skproto.nearest_mean import _estimator as nm

    X_tr, X_te, y_tr, y_te = digits
    batch = NearestMeanClassifier(metric=metric).fit(X_tr, y_tr)
    stream = NearestMeanClassifier(metric=metric)
    for task in np.array_split(np.arange(10), 5):
        rows = np.isin(y_tr, task)
        stream.partial_fit(X_tr[rows], y_tr[rows])
    assert stream.temperature_ == pytest.approx(batch.temperature_, rel=1e-9)
    assert stream._calibration[1] == batch._calibration[1] > 0  # the same held-out rows
    np.testing.assert_allclose(stream.means_, batch.means_, rtol=1e-10)
    np.testing.assert_allclose(stream.predict_proba(X_te), batch.predict_proba(X_te), atol=1e-9)
    # a buffer too small for them scores each call's rows at once (by the model
    # of the rows streamed so far): calibrated still, not as fit
    monkeypatch.setattr(nm, "_PENDING_ELEMENTS", 0)
    eager = NearestMeanClassifier(metric=metric)
    for task in np.array_split(np.arange(10), 5):
        rows = np.isin(y_tr, task)
        eager.partial_fit(X_tr[rows], y_tr[rows])
        assert eager._pending == ()
    assert eager.temperature_ == pytest.approx(batch.temperature_, rel=0.4)
    assert log_loss(eager, X_te, y_te) < 1.3 * log_loss(batch, X_te, y_te)
    # one call on all rows is fit, temperature included
    one = NearestMeanClassifier(metric=metric).partial_fit(X_tr, y_tr)
    assert one.temperature_ == pytest.approx(batch.temperature_, rel=1e-12)
    np.testing.assert_allclose(one.predict_proba(X_te), batch.predict_proba(X_te), rtol=1e-9)


def test_a_stream_whose_first_chunks_hold_one_class_places_its_window_later(digits):
    """Regression: chunks of one class each (class-incremental) have scores without
    spread at first; the first of them fixed the window at the unit scale, and on
    pixel values (0-255) the temperature stopped at its end (1e3 against fit's 1.7e4:
    log-loss 3.2 against 0.32)."""
    X_tr, X_te, y_tr, y_te = digits
    X_tr, X_te = X_tr * 255, X_te * 255
    batch = NearestMeanClassifier().fit(X_tr, y_tr)
    stream = NearestMeanClassifier()
    for c in np.unique(y_tr):
        stream.partial_fit(X_tr[y_tr == c], y_tr[y_tr == c])
    assert stream.temperature_ == pytest.approx(batch.temperature_, rel=0.5)
    assert log_loss(stream, X_te, y_te) < 1.2 * log_loss(batch, X_te, y_te)


def test_torch_temperature_reads_a_bounded_number_of_rows(monkeypatch):
    """Regression: temperature="auto" scored every held-out row at once, with
    several float64 (rows x classes) copies: 2.3 GB for 40,000 rows of 1,000
    classes. Like NearestMeanClassifier it now reads at most ``scored_rows``."""
    from skproto import RBFPrototypeClassifier, calibration
    from skproto._torch import estimator as template

    seen = []
    real = template.fit_temperature

    def spy(S, *args, **kwargs):
        seen.append(len(S))
        return real(S, *args, **kwargs)

    monkeypatch.setattr(template, "fit_temperature", spy)
    monkeypatch.setattr(calibration, "SCORED_PAIRS", 300)
    monkeypatch.setattr(calibration, "MIN_SCORED_ROWS", 50)
    X, y = load_iris(return_X_y=True)
    X = np.repeat(X, 4, axis=0) + np.random.RandomState(0).normal(0, 0.01, (600, 4))
    y = np.repeat(y, 4)
    clf = RBFPrototypeClassifier(loss="glvq", early_stopping=False, max_epochs=3, random_state=0)
    clf.fit(X, y)
    assert seen == [100]  # 300 pairs / 3 classes, of the 600 rows
    assert 0 < clf.temperature_ < 1e3


@pytest.mark.parametrize("prior", [0.0, 1e-60])
def test_grid_losses_with_an_improbable_top_class_are_exact(prior):
    """Regression: the grid's exponentials assumed a row's largest term is
    exp(0); with the top-scoring class of prior 0 or 1e-60 every term was 0 in
    float32 and the loss -inf, so the temperature went to the grid's end."""
    from scipy.special import logsumexp

    from skproto.calibration import TEMPERATURE_GRID, grid_log_loss

    D = np.array([[-1.0, -2.0, 0.0], [-2.0, -1.0, 0.0], [-1.5, -1.2, 0.0]])
    T = np.array([0, 1, 0])
    with np.errstate(divide="ignore"):
        lp = np.log([0.5, 0.5 - prior, prior])
    sums, _ = grid_log_loss(D, lp, T, None)
    for i, t in enumerate(TEMPERATURE_GRID):
        Z = D / t + lp
        exact = -(Z - logsumexp(Z, axis=1, keepdims=True))[np.arange(3), T].sum()
        assert sums[0, i] == pytest.approx(exact, rel=1e-5, abs=1e-6)


def test_one_impossible_class_of_one_row_does_not_decide_the_grid_temperature():
    # one -inf score in a row (not its true class) made the uniform target's
    # loss inf at every temperature: the grid's lowest was chosen (3.8 -> 0.001)
    S, y = sampled_labels(4.0, n=2000)
    lp = np.zeros(S.shape[1])
    clean = grid_temperature(*grid_log_loss(S, lp, y, None))
    row = int(np.flatnonzero(y != 0)[0])
    S[row, 0] = -np.inf
    assert grid_temperature(*grid_log_loss(S, lp, y, None)) == pytest.approx(clean, rel=0.01)


def test_integer_weights_place_the_temperature_grid_like_repeated_rows():
    # the grid's window followed an unweighted median over the held-out rows:
    # on rows without signal, where the temperature is clipped at the window's
    # edge, weights of 2 and 3 gave 7943, repeated rows 3981
    rng = np.random.RandomState(42)  # scikit-learn's check_sample_weight_equivalence data
    X, y, w = rng.rand(15, 30), rng.randint(0, 3, 15), rng.randint(0, 5, 15)
    kw = dict(metric="mahalanobis", covariance="per_class", covariance_shrinkage="ledoit_wolf")
    weighted = NearestMeanClassifier(**kw).fit(X, y, sample_weight=w)
    repeated = NearestMeanClassifier(**kw).fit(X.repeat(w, axis=0), y.repeat(w))
    assert weighted.temperature_ == pytest.approx(repeated.temperature_, rel=1e-9)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-12)


def test_the_smoothed_losses_are_the_documented_formulas():
    # (surviving mutants: the multi-label target lost its symmetry, s / 2 on both
    # sides, and the grid's pseudo-row weight was not pinned to 1 / (total + 1))
    from scipy.special import log_expit

    from skproto import calibration as cal

    rng = np.random.default_rng(0)
    S, Y = rng.normal(size=(7, 3)), rng.random((7, 3)) < 0.5
    s, t = 0.2, 1.7
    target = (1 - s) * Y + s / 2
    expected = -(target * log_expit(S / t) + (1 - target) * log_expit(-S / t)).mean(1).mean()
    assert cal.temperature_log_loss(S, Y.astype(float), None, t, s) == pytest.approx(expected)
    # the grid's minimum of (1 - eps) sums[0] + eps sums[1], eps = 1 / (total + 1)
    grid = cal.TEMPERATURE_GRID
    sums = np.vstack([(np.log(grid) - 1.0) ** 2, (np.log(grid) + 2.0) ** 2])
    total = 3.0
    eps = 1.0 / (total + 1.0)
    best = np.exp((1 - eps) * 1.0 - eps * 2.0)  # the parabola's vertex, in log t
    assert cal.grid_temperature(sums, total) == pytest.approx(best, rel=1e-9)


def test_grid_statistics_pinned_by_a_mutation_audit():
    """Mutation audit of calibration.py: each case below passed under a mutant
    (a median that read the upper middle value, spreads of tied best scores or
    of rows that weigh nothing, rows whose class has prior 0, a class no row can
    take moving the uniform target, tables of disjoint windows merged, the
    middle of an empty window)."""
    from skproto.calibration import (
        NO_LOSSES,
        _weighted_median,
        add_grid_losses,
        grid_center,
        grid_log_loss,
        merge_grid_losses,
        table_temperature,
    )

    assert _weighted_median(np.array([10.0, 10.0, 1000.0]), np.ones(3)) == 10.0
    assert grid_center(np.array([[10.0, 0, 0], [10.0, 0, 0], [1000.0, 0, 0]])) == 0
    # the best score tied with the median: the spread is the distance to the lowest
    tied = np.array([[5.0, 5.0, 0.0], [5.0, 5.0, 0.0]])
    assert grid_center(tied) == -2
    assert add_grid_losses(NO_LOSSES, tied, np.log(np.ones(3) / 3), np.array([0, 2]), None)[1] == 2
    # rows that weigh nothing place no window
    D = np.array([[1.0, 0, 0], [50.0, 0, 0], [100.0, 0, 0]])
    assert grid_center(D, np.array([1.0, 0.0, 1.0])) == grid_center(D[[0, 2]]) == 5
    assert grid_center(D, np.zeros(3)) is None
    # a row of a class with prior 0 is not scored (its loss is infinite)
    with np.errstate(divide="ignore"):
        sums, total = grid_log_loss(
            np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0]]),
            np.log([0.5, 0.5, 0.0]),
            np.array([0, 1, 2]),
            None,
        )
    assert total == 2.0 and np.isfinite(sums).all()
    # a class no row can take (score -inf) leaves every loss as it was
    D = np.array([[2.0, 0.5, 1.0], [0.0, 2.0, 1.0]])
    prior = np.log([0.2, 0.7, 0.1])
    base = grid_log_loss(D, prior, np.array([0, 1]), None)
    wider = grid_log_loss(
        np.c_[D, [-np.inf, -np.inf]], np.log([0.2, 0.7, 0.1, 0.4]), np.array([0, 1]), None
    )
    np.testing.assert_allclose(wider[0], base[0], rtol=1e-6)
    # tables whose windows share fewer than 3 points: the lighter one is left out
    rng = np.random.default_rng(0)
    S = rng.normal(scale=3.0, size=(2000, 3))
    y = np.where(rng.random(2000) < 0.2, rng.integers(0, 3, 2000), S.argmax(1))
    a = add_grid_losses(NO_LOSSES, S, np.zeros(3), y, None)
    b = add_grid_losses(NO_LOSSES, S[:500] * 1e6, np.zeros(3), y[:500], None)
    merged = merge_grid_losses([a, b])
    assert merged[0].shape == a[0].shape and merged[1] == 2000 and merged[2] == a[2]
    assert table_temperature(merged) == table_temperature(a)
    # nothing scored: the middle of the window
    assert table_temperature((np.zeros((2, 41)), 0.0, -20)) == 1.0


# --- pinned by a mutation audit of calibration, covariance, distances and certificates (2026-12-06)
def test_weights_that_sum_to_zero_weigh_rows_equally():
    # K04: documented ("None (or all zero) weighs rows equally"); np.average raised
    # ZeroDivisionError without the sum check
    from skproto import calibration as cal

    rng = np.random.default_rng(0)
    S = rng.normal(scale=3.0, size=(200, 3))
    y = S.argmax(1)
    zero = np.zeros(200)
    assert cal.temperature_log_loss(S, y, zero, 1.0) == cal.temperature_log_loss(S, y, None, 1.0)
    assert cal.fit_temperature(S, y, zero) == cal.fit_temperature(S, y)


def test_a_class_impossible_for_some_rows_only_is_kept():
    # K05: only a class whose score is -inf in *every* row is left out; one that
    # some rows cannot take leaves those rows out (as non-finite rows), not the class
    from skproto import calibration as cal

    rng = np.random.default_rng(0)
    S = rng.normal(scale=3.0, size=(300, 3))
    y = np.where(rng.random(300) < 0.2, rng.integers(0, 3, 300), S.argmax(1))
    S[(y != 2) & (np.arange(300) < 100), 2] = -np.inf
    keep = np.isfinite(S).all(axis=1)
    assert cal.fit_temperature(S, y) == cal.fit_temperature(S[keep], y[keep])


def _brute_minimiser(f):
    """exp of the argmin of f over log t in TEMPERATURE_BOUNDS (steps of 7e-5 near the least)."""
    u = np.linspace(np.log(1e-3), np.log(1e3), 200_001)
    coarse = np.array([f(x) for x in u[::100]])
    i = int(coarse.argmin())
    fine = u[max(i - 1, 0) * 100 : min(i + 1, len(coarse) - 1) * 100 + 1]
    return float(np.exp(fine[np.argmin([f(x) for x in fine])]))


def test_fit_temperature_minimises_the_documented_objectives():
    # K09 (pseudo-row share 1 / n, not 1 / (n + 1)), K10 (|log(t / prior)| for its
    # square) and K11 (xatol 1e-2) all moved the fitted temperature off the
    # documented minimiser: 1.4745, 1.3416 (prior) and 1.4413 against 1.4395
    from skproto import calibration as cal

    rng = np.random.default_rng(1)
    S = rng.normal(scale=3.0, size=(12, 3))
    y = np.where(rng.random(12) < 0.3, rng.integers(0, 3, 12), S.argmax(1))
    n = len(S)

    def smoothed(u):
        return cal.temperature_log_loss(S, y, None, np.exp(u), 1 / (n + 1))

    def pulled(u):
        return cal.temperature_log_loss(S, y, None, np.exp(u)) + (u - np.log(5.0)) ** 2 / (n + 1)

    assert cal.fit_temperature(S, y) == pytest.approx(_brute_minimiser(smoothed), rel=3e-4)
    assert cal.fit_temperature(S, y, prior=5.0) == pytest.approx(_brute_minimiser(pulled), rel=3e-4)


def test_grid_log_loss_rows_are_the_documented_sums():
    # K24: row 1 (the uniform target) lost the mean log prior (1.42 for 4.93
    # at t = 1); K20: a class of prior 0 entered the uniform target's mean
    # (1.37 for 2.98), though it has probability 0 at every temperature
    from skproto import calibration as cal

    D = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.5], [1.0, 0.5, 3.0]])
    T = np.array([0, 1, 0])
    prior = np.log([0.2, 0.3, 0.5])
    grid = np.array([0.5, 1.0, 2.0])
    sums, total = cal.grid_log_loss(D, prior, T, None, grid=grid)
    assert total == 3.0
    for j, t in enumerate(grid):
        Z = D / t + prior
        log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        assert sums[0, j] == pytest.approx(-log_p[np.arange(3), T].sum(), rel=1e-8)
        assert sums[1, j] == pytest.approx(-log_p.mean(axis=1).sum(), rel=1e-8)
    # a class of prior 0 changes neither row
    with np.errstate(divide="ignore"):
        three, _ = cal.grid_log_loss(D, np.log([0.5, 0.5, 0.0]), T, None)
    two, _ = cal.grid_log_loss(D[:, :2], np.log([0.5, 0.5]), T, None)
    np.testing.assert_allclose(three, two, rtol=1e-6, atol=1e-4)  # (exponentials in float32)


@pytest.mark.parametrize("make", ["nearest_mean", "proto", "rbf"])
def test_a_fit_under_numpy_raise_on_every_floating_point_error(digits, make):
    # np.seterr(all="raise") (a debugging setting, under which scikit-learn's
    # LogisticRegression and LinearDiscriminantAnalysis fit) made every default fit
    # fail with "FloatingPointError: underflow encountered in exp": the temperature's
    # log-losses exponentiate scores far below a row's top, whose 0 is meant
    from skproto import RBFPrototypeClassifier

    X, _, y, _ = digits
    X = X * 16.0  # (the pixels' own units)
    clf = {
        "nearest_mean": NearestMeanClassifier(),
        "proto": ProtoClassifier(max_epochs=2, random_state=0),
        "rbf": RBFPrototypeClassifier(max_epochs=2, random_state=0),
    }[make]
    expected = clone_fit_predict(clf, X, y)
    with np.errstate(all="raise"):
        got = clone_fit_predict(clf, X, y)
    np.testing.assert_array_equal(got, expected)


def clone_fit_predict(clf, X, y):
    """``predict_proba`` of a clone of ``clf`` fitted on half of ``X`` and updated by
    ``partial_fit`` on the other half (its held-out rows scored on first use)."""
    from sklearn.base import clone

    half = len(X) // 2
    model = clone(clf).fit(X[:half], y[:half])
    model.partial_fit(X[half:], y[half:])
    return model.predict_proba(X)


@pytest.mark.parametrize("make", ["proto", "rbf"])
def test_history_records_the_temperature_the_model_uses(make):
    # history_["temperature"] was the float64 optimum, temperature_ the float32
    # buffer the model divides by: 0.72950368 against 0.72950369; docs/proto.md
    # says both record it
    from sklearn.datasets import load_iris

    from skproto import RBFPrototypeClassifier

    X, y = load_iris(return_X_y=True)
    clf = {
        "proto": ProtoClassifier(max_epochs=3, random_state=0),
        "rbf": RBFPrototypeClassifier(max_epochs=3, random_state=0),
    }[make].fit(X, y)
    assert clf.history_["temperature"] == clf.temperature_
    clf.partial_fit(X[:20], y[:20])  # (RBF refits it on each batch)
    assert clf.history_["temperature"] == clf.temperature_


def test_a_warm_fit_at_a_given_temperature_records_no_fitted_one():
    # a warm fit after set_params(temperature=2.0) kept the earlier fit's auto value
    # in history_ (0.5715) while temperature_ read 2.0; a fresh fit records None
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(max_epochs=2, warm_start=True, random_state=0).fit(X, y)
    assert clf.history_["temperature"] == clf.temperature_
    clf.set_params(temperature=2.0).fit(X, y)
    assert clf.temperature_ == 2.0
    assert clf.history_["temperature"] is None


def test_grid_log_loss_is_silent_where_a_scaled_score_leaves_float32():
    """A score far below the top at a small grid temperature left float32's range in
    the product (a RuntimeWarning "overflow encountered in multiply" reached the user
    of a one-row partial_fit far from the origin); the term is exp(-inf) = 0, as meant."""
    import warnings

    from scipy.special import logsumexp

    from skproto import calibration as cal

    D = np.array([[0.0, -1e29], [0.0, -1.0]])
    T, grid = np.array([0, 1]), np.array([1e-10, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sums, total = cal.grid_log_loss(D, np.zeros(2), T, None, grid=grid)
    expected = [sum(logsumexp(D[r] / t) - D[r, T[r]] / t for r in range(2)) for t in grid]
    np.testing.assert_allclose(sums[0], expected, rtol=1e-6)
    assert total == 2.0


def _scores():
    rng = np.random.default_rng(0)
    S = rng.normal(scale=3.0, size=(200, 3))
    return S, S.argmax(1)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda S, y: fit_temperature(S, y + 3), "class codes in \\[0, 3\\)"),
        (lambda S, y: fit_temperature(S, y.astype(float)), "integer class codes"),
        (lambda S, y: fit_temperature(S, y[:-1]), "one class code per row"),
        (lambda S, y: fit_temperature(S, y, np.ones(10)), "one weight per row"),
        (lambda S, y: fit_temperature(S, y, np.full(200, np.nan)), "finite non-negative"),
        (lambda S, y: fit_temperature(S, y, -np.ones(200)), "finite non-negative"),
        (lambda S, y: fit_temperature(S[:, 0], y), "S must be 2-D"),
        (lambda S, y: fit_temperature(S, y, prior="x"), "prior must be"),
        (lambda S, y: fit_temperature(S, y, prior=True), "prior must be"),
        (lambda S, y: temperature_log_loss(S, y, None, 0.0), "t must be a positive"),
        (lambda S, y: temperature_log_loss(S, y, None, -1.0), "t must be a positive"),
        (lambda S, y: temperature_log_loss(S, y, None, 1.0, 1.5), "smoothing must be"),
        (lambda S, y: temperature_log_loss(S, y + 3, None, 1.0), "class codes in"),
        (lambda S, y: temperature_log_loss(S, y, np.ones(199), 1.0), "one weight per row"),
        (lambda S, y: temperature_log_loss(np.empty((0, 3)), y[:0], None, 1.0), "at least one"),
        (lambda S, y: grid_log_loss(S, np.zeros(3), y + 3, None), "class codes in"),
        (lambda S, y: grid_log_loss(S, np.zeros(2), y, None), "log_prior must hold"),
        (lambda S, y: grid_log_loss(S, np.zeros(3), y, np.ones(5)), "one weight per row"),
        (lambda S, y: grid_log_loss(S, np.zeros(3), y, None, grid=[0.0, 1.0]), "grid must"),
        (lambda S, y: grid_log_loss(S, np.zeros(3), y, None, grid=[]), "grid must"),
        (lambda S, y: grid_center(S, np.ones(3)), "one finite non-negative weight"),
        (lambda S, y: grid_center(S[:, 0]), "D must be 2-D"),
        (lambda S, y: grid_temperature(np.zeros((2, 5)), 10.0), "sums must have shape"),
        (lambda S, y: grid_temperature(np.zeros((2, 0)), 10.0, []), "grid must"),
        (
            lambda S, y: grid_temperature(np.full((2, 5), np.nan), 10.0, lattice(-2, 5)),
            "sums must not contain NaN",
        ),
    ],
)
def test_calibration_functions_refuse_bad_input(call, match):
    """Codes out of range, misaligned targets or weights and a t of 0 failed inside numpy
    (IndexError, TypeError, AxisError) or returned NaN; negative or NaN weights, a
    negative t, a smoothing beyond [0, 1] and a mismatched table were used silently."""
    S, y = _scores()
    with pytest.raises(ValueError, match=match):
        call(S, y)


def test_an_empty_split_of_float_codes_adds_nothing_to_a_table():
    from skproto import calibration as cal

    # np.array([]) is float: the check let it through (no row to check), and
    # grid_log_loss then indexed the scores by it, an IndexError once a table had
    # started; fit_temperature takes the same split (1.0)
    rng = np.random.default_rng(0)
    S = rng.normal(size=(50, 4))
    T = rng.integers(0, 4, 50)
    table = cal.add_grid_losses(cal.NO_LOSSES, S, np.zeros(4), T, None)
    empty = cal.add_grid_losses(table, np.zeros((0, 4)), np.zeros(4), np.array([]), np.array([]))
    np.testing.assert_array_equal(empty[0], table[0])
    assert empty[1:] == table[1:]
    assert cal.fit_temperature(np.zeros((0, 4)), np.array([]), None) == 1.0


def test_a_zero_dimensional_temperature_or_prior_is_a_number():
    from skproto import calibration as cal

    # numpy 0-d arrays were taken before the audit's checks (isinstance Real refuses them)
    rng = np.random.default_rng(0)
    S = rng.normal(size=(50, 4))
    T = rng.integers(0, 4, 50)
    assert cal.temperature_log_loss(S, T, None, np.array(2.0)) == cal.temperature_log_loss(
        S, T, None, 2.0
    )
    assert cal.fit_temperature(S, T, None, prior=np.array(1.0)) == cal.fit_temperature(
        S, T, None, prior=1.0
    )
    with pytest.raises(ValueError, match="positive finite"):
        cal.temperature_log_loss(S, T, None, np.array(0.0))
    with pytest.raises(ValueError, match="positive finite"):
        cal.temperature_log_loss(S, T, None, np.array(True))


def test_a_row_of_weight_zero_leaves_the_grid_temperature_unchanged():
    # (its loss, inf at the window's small temperatures where its scores' spread
    # overflowed, times its weight 0 made NaN sums: grid_temperature raised, and
    # before its NaN check named the window's first temperature)
    from skproto.calibration import NO_LOSSES, add_grid_losses, table_temperature

    rng = np.random.default_rng(0)
    S = rng.normal(size=(50, 2))
    y = S.argmax(1)
    alone = table_temperature(add_grid_losses(NO_LOSSES, S, np.zeros(2), y, None))
    S0 = np.vstack([S, [[0.0, -1e306]]])
    y0, w0 = np.append(y, 1), np.append(np.ones(50), 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no 0 * inf inside)
        table = add_grid_losses(NO_LOSSES, S0, np.zeros(2), y0, w0)
    assert np.isfinite(table[0]).all() and table[1] == 50.0
    assert table_temperature(table) == alone
