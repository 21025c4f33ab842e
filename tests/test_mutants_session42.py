"""Tests pinning mutants that survived a mutation run over session 42's changes
(progress lines, explain's ordering of underflowed activations, the RBF training
origin)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


# ----------------------------------------------------------------- progress
def test_a_line_restarts_the_progress_interval(capsys):
    """A tick right after a line prints nothing: the line, not the start, is the
    last one shown (mutant: ``line`` left ``_shown`` at the start, and a loop's
    first tick after a step's line printed at once)."""
    from skproto._progress import Progress

    report = Progress("x", every=0.05)
    time.sleep(0.06)
    report.line("step")
    report.tick(lambda: "tick")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[x] step (")


def test_nearest_mean_partial_fit_line_counts_the_held_out_rows(iris, capsys):
    """partial_fit's line gives the total weight so far, the rows a stream set
    aside for the temperature included (mutant: only the rows in the statistics)."""
    X, y = iris
    clf = NearestMeanClassifier(verbose=1)
    rows = np.random.default_rng(0).permutation(len(X))
    for part in np.array_split(rows, 3):
        clf.partial_fit(X[part], y[part], classes=[0, 1, 2])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "more rows" in ln]
    totals = [float(re.search(r"total weight (\S+) so far", ln).group(1)) for ln in lines]
    assert totals == [50.0, 100.0, 150.0]


@pytest.mark.parametrize(
    "make, name, smallest",
    [
        ("ProtoClassifier", "temperature", 1e-15),  # (trained at: gradients grow as 1/T)
        ("ProtoClassifier", "rbf_width", float(np.finfo(np.float32).tiny)),
        ("RBFPrototypeClassifier", "temperature", float(np.finfo(np.float32).tiny)),
    ],
)
def test_float32s_smallest_normal_is_a_valid_divisor(make, name, smallest):
    """The bound is closed: its smallest value (float32's smallest normal, kept as
    itself rather than 0) is accepted (mutant: an open bound refused it)."""
    import skproto

    getattr(skproto, make)(**{name: smallest})._validate_params()


# ------------------------------------------------------------------ explain
def test_explain_computes_distances_again_only_for_underflowed_rows(iris, monkeypatch):
    """``underflow_order`` asks for the distances of the rows holding an underflowed
    activation only (mutant: of every row, another pass over all of them)."""
    from skproto import RBFPrototypeClassifier

    X, y = iris
    clf = RBFPrototypeClassifier(max_epochs=3, random_state=0).fit(X, y)
    asked = []
    run = clf._run

    def counted(what, Z, *args, **kwargs):
        if what == "distances":
            asked.append(len(Z))
        return run(what, Z, *args, **kwargs)

    monkeypatch.setattr(clf, "_run", counted)
    q = np.vstack([X[:5], X[[100]] + 500.0])  # the last row's detections underflow
    assert (clf.transform(q[-1:]) == 0).all() and (clf.transform(q[:5]) > 0).all()
    asked.clear()
    clf.explain(q, n_prototypes=2, rank_by="activation")
    assert asked == [1]


def test_explain_ranks_the_underflowed_detections_of_a_partly_underflowed_row(iris):
    """A row with some detections positive and others underflowed to 0 ranks the
    zeros by distance too (mutant: only rows where every detection underflows,
    and this row's zeros went by index)."""
    from skproto import RBFPrototypeClassifier

    X, y = iris
    clf = RBFPrototypeClassifier(max_epochs=3, random_state=0).fit(X, y)
    q = X[[0]] + [[400.0, 0.0, 0.0, 0.0]]
    A = clf.transform(q)[0]
    zero = np.flatnonzero(A == 0)
    assert 2 <= len(zero) < len(A)
    D = clf._run("distances", q)[0]
    assert D[zero[1]] < D[zero[0]]  # (the index order is not the distance order)
    ex = clf.explain(q, n_prototypes=len(A), rank_by="activation")
    np.testing.assert_array_equal(ex.prototype_index[0], np.argsort(D, kind="stable"))


# ------------------------------------------------------------- RBF origin
def test_a_new_class_of_one_row_keeps_its_component_on_that_row():
    """A class arriving in partial_fit with one row starts its component on that
    row, rounded to float32 as the network holds the row, and it stays there
    (mutant: the new component kept its float64 value, 1e-8 from where the
    network holds its row, and Adam stepped it away)."""
    from sklearn.datasets import load_digits

    from skproto import RBFPrototypeClassifier

    X, y = load_digits(return_X_y=True)
    X = X[:200] / 3.0 + 2.0**20  # (not exact in float32)
    y = y[:200]
    i = int(np.flatnonzero(y != y[0])[0])
    clf = RBFPrototypeClassifier(loss="glvq", random_state=0)
    clf.partial_fit(X[:1], y[:1], classes=np.arange(10))
    clf.partial_fit(X[i : i + 1], y[i : i + 1])  # (its class arrives)
    clf.partial_fit(X[i : i + 1], y[i : i + 1])
    np.testing.assert_array_equal(clf.prototypes_[-1], X[i].astype(np.float32))


@pytest.fixture(scope="module")
def shifted_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:300] / 3.0 + 2.0**20, y[:300].copy()  # (not exact in float32)


def test_a_component_on_row_0_is_held_where_the_network_holds_that_row(shifted_digits):
    """Row 0 is a row too: a component projected onto it trains from float32(x) -
    origin (mutant: ``rows > 0`` left it at float32(x - origin), a rounding away)."""
    import torch

    from skproto import RBFPrototypeClassifier

    X, y = shifted_digits
    y = y.copy()
    y[0] = 10  # (a class of one row, row 0: its component is projected onto it)
    clf = RBFPrototypeClassifier(
        random_state=0, max_epochs=2, project=True, early_stopping=False
    ).fit(X, y)
    rows = clf.prototype_sample_indices_
    assert np.all(rows >= 0) and 0 in rows
    net = clf._continued_network(clf._state)
    held = torch.as_tensor(X[rows], dtype=torch.float32) - net.origin
    np.testing.assert_array_equal(net.components.detach().numpy(), held.numpy())


def test_a_batch_of_weight_0_keeps_the_projected_components_and_their_rows(shifted_digits):
    """A partial_fit that moves no component keeps each one's exact value and row
    (mutant: ``_unchanged_prototypes`` always False, they were stored as trained,
    float32 about the origin, and lost their rows)."""
    from skproto import RBFPrototypeClassifier

    X, y = shifted_digits
    clf = RBFPrototypeClassifier(random_state=0, max_epochs=2, project=True).fit(X, y)
    before, rows = clf.prototypes_.copy(), clf.prototype_sample_indices_.copy()
    assert np.all(rows >= 0)
    clf.partial_fit(X[:20], y[:20], sample_weight=np.zeros(20))
    np.testing.assert_array_equal(clf.prototypes_, before)
    np.testing.assert_array_equal(clf.prototype_sample_indices_, rows)
