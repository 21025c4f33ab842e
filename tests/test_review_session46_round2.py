"""Review of 6a53a63 (the sigma check with every row on a component): regressions
and misses found by a second review. Each test failed on the code it reviewed."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skproto.rbf import RBFPrototypeClassifier


def _far_iris(n_classes=2, extra=None):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    keep = y < n_classes
    X, y = X[keep] + 1000.0 * y[keep][:, None], y[keep]
    if extra:  # a far class of `extra` identical rows (one row: a one-row class)
        row = X[:1] - 1000.0 * y[:1, None] + 1000.0 * n_classes
        X, y = np.vstack([X, np.repeat(row, extra, axis=0)]), np.r_[y, [n_classes] * extra]
    return X, y


@pytest.mark.parametrize("extra", [1, 5])
@pytest.mark.parametrize("first", ["fit", "partial_fit"])
def test_a_tiny_sigma_is_refused_with_a_one_row_far_class_among_far_classes(extra, first):
    """Regression: every row lay "on" its component, and the fallback checked the
    rows against their own components with the one-row (or duplicate-row) class
    among them: its row is at distance 0, exp(-0 / sigma) = 1, and nothing was
    refused; sigma=1e-20 went to "Training diverged" with the positive head."""
    X, y = _far_iris(2, extra)
    clf = RBFPrototypeClassifier(
        loss="cbc", reasoning="positive", sigma=1e-20, max_epochs=2, random_state=0
    )
    with pytest.raises(ValueError, match=r"sigma=1e-20 is too small for these rows: every"):
        if first == "fit":
            clf.fit(X, y)
        else:
            clf.partial_fit(X, y, classes=np.unique(y))
    clf.set_params(sigma=1.0)  # a sigma of the classes' spread trains
    assert clf.fit(X, y).score(X, y) > 0.9


@pytest.mark.parametrize("n_classes", [2, 3])
def test_one_row_and_duplicate_classes_still_train_at_a_small_sigma(n_classes):
    """Rows exactly on their components (one-row classes, exact duplicates) are
    detected by 1 whatever sigma: nothing to refuse (they trained before)."""
    rng = np.random.RandomState(0)
    C = 20.0 * rng.normal(size=(3 * n_classes, 4))
    one_row = (C, np.arange(len(C)))
    duplicates = (np.repeat(C, 3, axis=0), np.repeat(np.arange(len(C)), 3))
    for X, y in (one_row, duplicates):
        for reasoning in ("positive", "positive_negative"):
            clf = RBFPrototypeClassifier(
                loss="cbc", reasoning=reasoning, sigma=1e-6, max_epochs=5, random_state=0
            )
            assert clf.fit(X, y).score(X, y) == 1.0


@pytest.mark.parametrize("first", ["fit", "partial_fit"])
def test_the_positive_head_is_refused_where_it_learns_nothing(first, monkeypatch):
    """A strict xfail until 2026-12-07 read the refusal of three iris classes 1,000
    apart at sigma=1e-6 (reasoning='positive') as a regression, since the model
    scored 1.0 before: that score was the untrained start's (each row's nearest
    component). Every detection rounds to 0 in float32 there, every gradient is 0
    and nothing moves: with the check bypassed, training warns that no parameter
    moved, and the refusal stands."""
    import skproto.rbf._estimator as rbf_module

    X, y = _far_iris(3)

    def make():
        return RBFPrototypeClassifier(
            loss="cbc", reasoning="positive", sigma=1e-6, max_epochs=3, random_state=0
        )

    def run(clf):
        if first == "fit":
            return clf.fit(X, y)
        return clf.partial_fit(X, y, classes=np.unique(y))

    with pytest.raises(ValueError, match=r"exp\(-dist / sigma\) of a training row rounds to 0"):
        run(make())
    monkeypatch.setattr(rbf_module, "_check_detections", lambda *args, **kwargs: None)
    with pytest.warns(ConvergenceWarning, match=r"moved no parameter in epoch 1: every gradient"):
        run(make())


def test_a_positive_head_that_passes_the_check_but_learns_nothing_warns():
    """At sigma=1e-3 the same data pass the check (a few detections do not round
    to 0) but no gradient survives: the model was returned untrained, silently.
    Training that moves no parameter at a nonzero loss now warns; sigma='auto'
    and 3e-3 train, silently."""
    X, y = _far_iris(3)
    kw = dict(loss="cbc", reasoning="positive", max_epochs=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"Training \(fit\) moved no parameter"):
        RBFPrototypeClassifier(sigma=1e-3, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sigma in (3e-3, "auto"):
            assert RBFPrototypeClassifier(sigma=sigma, **kw).fit(X, y).score(X, y) == 1.0
