"""Tests from a mutation audit: each one failed under a mutant that the rest of the
suite let pass (the mutants are listed in ``tests/mutation_check.py``)."""

from __future__ import annotations

import numpy as np

from skproto import calibration as cal


def _scores(n=600, seed=0):
    rng = np.random.default_rng(seed)
    S = rng.normal(scale=3.0, size=(n, 3))
    y = np.where(rng.random(n) < 0.2, rng.integers(0, 3, n), S.argmax(1))
    return S, y


def test_merged_grid_tables_keep_a_table_sharing_exactly_three_points():
    # merge_grid_losses leaves out a table only when *fewer than 3* lattice points
    # are common: two windows overlapping on exactly 3 merge, with both weights
    S, y = _scores()
    lp = np.zeros(3)
    ta = (*cal.grid_log_loss(S[:400], lp, y[:400], None, cal.lattice(0, 5)), 0)
    tb = (*cal.grid_log_loss(S[400:], lp, y[400:], None, cal.lattice(2, 5)), 2)
    sums, total, k_lo = cal.merge_grid_losses([ta, tb])
    assert (k_lo, sums.shape[1], total) == (2, 3, 600.0)
    direct = cal.grid_log_loss(S, lp, y, None, cal.lattice(2, 3))[0]
    np.testing.assert_allclose(sums, direct, rtol=1e-9)
    # two common points: the lighter table is left out, with its weight
    tc = (*cal.grid_log_loss(S[400:], lp, y[400:], None, cal.lattice(3, 5)), 3)
    assert cal.merge_grid_losses([ta, tc])[1:] == (400.0, 0)


def test_the_first_scores_place_the_window_centred_on_their_grid_center():
    # add_grid_losses: the first scores with a spread place the window of
    # temperature_window(grid_center(D)); its middle is the lattice point itself
    S, y = _scores()
    for scale in (1.0, 1e-4, 1e5):
        D = S * scale
        center = cal.grid_center(D)
        sums, total, k_lo = cal.add_grid_losses(cal.NO_LOSSES, D, np.zeros(3), y, None)
        assert k_lo == center - cal.GRID_HALF and sums.shape[1] == 2 * cal.GRID_HALF + 1
        window = cal.temperature_window(center)
        np.testing.assert_array_equal(cal.lattice(k_lo, sums.shape[1]), window)
        np.testing.assert_allclose(sums, cal.grid_log_loss(D, np.zeros(3), y, None, window)[0])
        # nothing scored against its class: the window's middle, lattice point `center`
        seen_only = (np.zeros_like(sums), 0.0, k_lo)
        assert cal.table_temperature(seen_only) == float(cal.lattice(center, 1)[0])


def test_pooled_covariance_far_from_the_origin_is_exact_when_read_in_two_passes():
    # classes 1e4 apart for a unit spread: the pooled scatter is read in two
    # passes (the one-pass form would cancel digits); the residuals are taken
    # about the class means rounded, so the scatter must be corrected to the
    # refined means: without that, 3e-9 relative off at 1e10 (exact: 1e-15)
    from skproto import NearestMeanClassifier

    rng = np.random.default_rng(0)
    n, off = 50_000, 1e10
    X = np.vstack([off + rng.normal(size=(n, 2)), off + 1e4 + rng.normal(size=(n, 2))])
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    clf = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage=0.0, temperature=1.0)
    cov = clf.fit(X, y).covariance_
    exact = 0
    for c in (0, 1):
        Xc = X[y == c].astype(np.longdouble)
        R = Xc - Xc.mean(axis=0)
        exact = exact + R.T @ R
    exact = (exact / (2 * n)).astype(np.float64)
    assert np.abs(cov - exact).max() <= 1e-12 * np.abs(exact).max()


def test_ledoit_wolf_of_an_isotropic_covariance_is_scikit_learn_s_zero():
    # scikit-learn's ledoit_wolf_shrinkage caps beta at delta: an exactly
    # isotropic covariance (delta = 0) has shrinkage 0, not beta / 0 clipped to 1
    from sklearn.covariance import ledoit_wolf_shrinkage

    from skproto import NearestMeanClassifier
    from skproto.geometry import shrinkage_amount

    B = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    X, y = np.vstack([B, B + 10.0]), np.repeat([0, 1], 4)
    R = np.vstack([B, B])  # the rows about their class means
    expected = ledoit_wolf_shrinkage(R, assume_centered=True)
    assert expected == 0.0
    S, q4 = R.T @ R / 8, float((np.sum(R * R, axis=1) ** 2).sum())
    assert shrinkage_amount("ledoit_wolf", S, 8, q4) == expected
    for covariance in ("shared", "per_class"):
        clf = NearestMeanClassifier(
            metric="mahalanobis",
            covariance=covariance,
            covariance_shrinkage="ledoit_wolf",
            temperature=1.0,
        ).fit(X, y)
        np.testing.assert_array_equal(clf.covariance_shrinkage_, expected)


def test_cached_class_factors_are_refreshed_when_only_the_mean_changes(monkeypatch):
    # a stream's per-class factor cache is keyed by (count, mean): a row whose
    # weight is below the rounding of a huge class count leaves the count as it
    # was but moves the mean (and the covariance); keyed by the count alone the
    # stale whitening gave a distance of 2.0 where fit gives 1.9956
    from skproto import NearestMeanClassifier
    from skproto.nearest_mean import _estimator as nm

    monkeypatch.setattr(nm, "_PENDING_ELEMENTS", 0)  # set-aside rows scored at once: a cache
    grid = np.array([(1.0 + i, 1.0 + j) for i in range(-2, 3) for j in range(-2, 3)])
    X1, y1 = np.vstack([grid, 2.0 * grid + 10.0]), np.repeat([0, 1], 25)
    w1 = np.full(50, 2.0**53 / 20)
    X2, y2, w2 = np.array([[1e7, 1.0]]), np.array([0]), np.array([0.5])
    params = dict(metric="mahalanobis", covariance="per_class", temperature="auto")
    stream = NearestMeanClassifier(**params).partial_fit(X1, y1, sample_weight=w1)
    stream.predict(X1[:1])  # (derived, and its factors cached)
    assert "_factor_cache" in stream.__dict__
    count, mean = stream.class_count_.copy(), stream.means_.copy()
    stream.partial_fit(X2, y2, sample_weight=w2)
    assert np.array_equal(stream.class_count_, count) and not np.array_equal(stream.means_, mean)
    batch = NearestMeanClassifier(**params).fit(
        np.vstack([X1, X2]), np.r_[y1, y2], sample_weight=np.r_[w1, w2]
    )
    Z = np.array([[3.0, 1.0], [1.0, 2.0]])
    np.testing.assert_allclose(stream.transform(Z), batch.transform(Z), rtol=1e-9)
    assert abs(stream.transform(Z)[0, 0] - 1.99557) < 1e-5


def test_rows_for_which_every_class_is_impossible_get_uniform_probabilities():
    # the only class with rows has prior 0 and the other has no rows yet: every
    # score is -inf, which says nothing: probabilities are uniform (the softmax
    # of -inf - -inf was NaN, and predict_proba raised)
    from skproto import NearestMeanClassifier

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    clf = NearestMeanClassifier(priors=[0.0, 1.0], temperature=1.0)
    clf.partial_fit(X, [0, 0, 0], classes=[0, 1])
    np.testing.assert_array_equal(clf.predict_proba(X), 0.5)
    np.testing.assert_array_equal(clf.predict(X), [0, 0, 0])
    np.testing.assert_array_equal(clf.predict_proba(X.astype(np.float32)), 0.5)


def test_distinct_nearest_takes_tied_pairs_by_row_then_column():
    # distinct_nearest's docs: pairs by increasing distance, ties by row, then
    # column; a column is reused once every column is taken. Row 1 takes column
    # 1 (column 0 is row 0's); then both are taken, and row 2's first tied pair is
    # column 0 (by column first, row 2 was given column 1)
    from skproto.prototypes import distinct_nearest

    dist = np.array([[0.0, 0.0], [2.0, 2.0], [2.0, 2.0]])
    np.testing.assert_array_equal(distinct_nearest(dist), [0, 1, 0])


def test_cbc_radius_counts_an_underflowed_rival_detection_as_the_smallest_float():
    # the rival's only component detects 0 (underflowed, far away): it counts as
    # the smallest normal float, so the target, which wins (0.8 against 0),
    # keeps a positive radius log(sqrt(0.8 / tiny)) = 354; read as exactly 0 the
    # first form was 0 / tiny and the radius log(tiny) = -708, as if it lost
    import torch

    from skproto.robustness.certificates import cbc_radius

    f64 = torch.float64
    one = torch.tensor(1.0, dtype=f64)
    r = cbc_radius(
        torch.tensor([[0.8, 0.0]], dtype=f64),
        torch.eye(2, dtype=f64),
        torch.zeros(2, 2, dtype=f64),
        torch.tensor([0]),
        one,
        one,
    )
    tiny = np.finfo(np.float64).tiny
    assert float(r[0]) > 0
    np.testing.assert_allclose(float(r[0]), 0.5 * (np.log(0.8) - np.log(tiny)), rtol=1e-12)


def test_temperature_log_loss_weights_rows_as_repetitions():
    # the documented *weighted* mean log-loss: integer weights equal repeated rows
    # (softmax and sigmoid targets, with and without smoothing)
    S, y = _scores(200, seed=1)
    w = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    w[:50] = 0.0  # rows that weigh nothing do not count
    rep = np.repeat(np.arange(len(y)), w.astype(int))
    T2 = np.eye(3)[y]
    for T in (y, T2):
        for smoothing in (0.0, 0.2):
            got = cal.temperature_log_loss(S, T, w, 1.7, smoothing)
            want = cal.temperature_log_loss(S[rep], T[rep], None, 1.7, smoothing)
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_binary_decision_function_of_rows_where_both_classes_are_impossible_is_zero():
    # found by the mutation audit: the binary score classes_[1] minus classes_[0]
    # was -inf - -inf = NaN where predict_proba reads uniform and predict classes_[0]
    from skproto import NearestMeanClassifier

    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    clf = NearestMeanClassifier(priors=[0.0, 1.0], temperature=1.0)
    clf.partial_fit(X, [0, 0, 0], classes=[0, 1])
    for Xq in (X, X.astype(np.float32)):
        d = clf.decision_function(Xq)
        np.testing.assert_array_equal(d, 0.0)
        assert d.dtype == clf._scores(clf._validate_X_predict(Xq)).dtype
