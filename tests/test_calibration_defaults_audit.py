"""Audit of the default estimators' calibrated probabilities (temperature="auto").

ProtoClassifier and RBFPrototypeClassifier hold out a split of the rows for early
stopping and fit their temperature on it. A training row that is an exact copy
of a held-out row let the network learn the held-out row, so the temperature
was fitted on in-sample losses (digits with every row repeated 3 times:
ProtoClassifier's test log-loss 0.131 at the fitted temperature against 0.087
at the best one on the test rows).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import record_splits

import skproto._torch.estimator as torch_estimator
from skproto import ProtoClassifier, RBFPrototypeClassifier


@pytest.mark.parametrize("Estimator", [ProtoClassifier, RBFPrototypeClassifier])
def test_copies_of_held_out_rows_are_not_trained_on(Estimator, monkeypatch):
    """Every row given 3 times: no held-out row may have a copy among the training
    rows (before, all 18 held-out rows had copies there)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 4)) + y[:, None]
    calls = record_splits(monkeypatch, torch_estimator)
    Estimator(max_epochs=2, random_state=0).fit(np.repeat(X, 3, axis=0), np.repeat(y, 3))
    ((X_fit, X_val),) = calls
    assert X_val is not None and len(X_val)
    trained = {row.tobytes() for row in X_fit}
    leaked = sum(row.tobytes() in trained for row in X_val)
    assert leaked == 0, f"{leaked} of {len(X_val)} held-out rows are trained on"
    # each group of copies is held out whole, about validation_fraction of the rows
    assert len(X_val) % 3 == 0 and len(X_fit) + len(X_val) == 180 and len(X_val) <= 18


def test_copies_held_out_together_keeps_every_class_and_plain_splits():
    from skproto._torch.estimator import copies_held_out_together

    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    X = np.arange(16.0).reshape(8, 2)
    fit, val = np.array([0, 1, 3, 4, 6]), np.array([2, 5, 7])
    # no copies: the split as drawn (CLINC150's embeddings have none)
    out = copies_held_out_together(X, y, fit, val)
    assert out[0] is fit and out[1] is val
    # a copy of held-out row 2 joins it; the groups, in the order drawn, fill the 3
    # rows drawn: row 7 goes back to training
    X[1] = X[2]
    fit2, val2 = copies_held_out_together(X, y, fit, val)
    assert val2.tolist() == [1, 2, 5] and fit2.tolist() == [0, 3, 4, 6, 7]
    # class 2's two rows are copies: holding them out would leave it untrained
    X[7] = X[6]
    fit3, val3 = copies_held_out_together(X, y, fit, np.array([7, 5, 2]))
    assert val3.tolist() == [5] and fit3.tolist() == [0, 1, 2, 3, 4, 6, 7]
    # nothing held out, a multi-label target: unchanged
    assert copies_held_out_together(X, y, np.arange(8), None)[1] is None
    T2 = np.eye(3)[y]
    assert copies_held_out_together(X, T2, fit, val)[1] is val


def test_copies_of_held_out_rows_count_as_one_weighted_row():
    """fit_temperature weighs its pseudo-row against the number of rows, and a
    sample_weight of 3 is one row: 3 copies of a held-out row now count as that
    one row of weight 3 does (before, as 3 rows: a pseudo-row a third as heavy,
    and an over-confident temperature on data given 3 times)."""
    from skproto._torch.estimator import _copies_as_weights
    from skproto.calibration import fit_temperature

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    S = np.column_stack([X[:, 0], -X[:, 0]]) * 5
    T = (X[:, 0] < 0).astype(np.intp)
    w = rng.uniform(0.5, 2.0, 12)
    rep = np.repeat(np.arange(12), 3)
    S3, T3, w3 = _copies_as_weights(X[rep], S[rep], T[rep], w[rep])
    assert len(S3) == 12
    np.testing.assert_allclose(fit_temperature(S3, T3, w3), fit_temperature(S, T, 3 * w))
    # rows of one input but another class or other scores are not copies
    T_other = T[rep].copy()
    T_other[0] = 1 - T_other[0]
    assert len(_copies_as_weights(X[rep], S[rep], T_other, w[rep])[0]) == 13
    assert _copies_as_weights(X, S, T, w)[0] is S
