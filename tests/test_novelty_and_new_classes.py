"""Audit of two promises: ``score_samples`` flags inputs unlike the training
data, and ``partial_fit`` learns new classes without retraining."""

import numpy as np
import pytest
from helpers import relative_mahalanobis_reference
from scipy.special import logsumexp
from sklearn.datasets import load_digits

from skproto import NearestMeanClassifier


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(float), y


@pytest.mark.parametrize("shrinkage", ["oas", 0.6])
def test_per_class_mahalanobis_score_samples_flags_far_rows(digits, shrinkage):
    # A class's own covariance can be wider than the pooled background in some
    # direction; the relative term then outgrew the class distances and rows far
    # out scored as more typical than every training row (+5e6 at 1e4 away).
    X, y = digits
    clf = NearestMeanClassifier(
        metric="mahalanobis", covariance="per_class", covariance_shrinkage=shrinkage
    ).fit(X, y)
    train = clf.score_samples(X)
    direction = np.random.default_rng(0).standard_normal(X.shape[1])
    direction /= np.linalg.norm(direction)
    far = X.mean(axis=0) + np.array([1e2, 1e4, 1e8])[:, None] * direction
    far = np.vstack([far, np.full((1, X.shape[1]), 16.0), 10 * X[:5]])
    scores = clf.score_samples(far)
    assert np.all(np.isfinite(scores))
    assert np.all(scores < train.min()), (scores, train.min())
    # ordered: further out, less typical
    assert scores[0] > scores[1] > scores[2]
    # the documented score: logsumexp of the class scores
    np.testing.assert_allclose(
        clf.score_samples(X[:50]), logsumexp(clf.decision_function(X[:50]), axis=1), rtol=1e-10
    )


@pytest.mark.parametrize("shrinkage", ["oas", "ledoit_wolf", 0.0])
def test_shared_mahalanobis_score_is_not_rounding_far_along_a_constant_feature(digits, shrinkage):
    # Along a feature constant in training the class structure sees nothing and
    # the relative score stays where it is at the mean. It was formed as the
    # difference of two squared distances: at 1e15 both were ~1e30 and the score
    # read 0 -- above every training row (max -0.64).
    X, y = digits
    col = int(np.flatnonzero(X.std(axis=0) == 0)[0])
    clf = NearestMeanClassifier(metric="mahalanobis", covariance_shrinkage=shrinkage).fit(X, y)
    train = clf.score_samples(X)
    rows = np.repeat(X.mean(axis=0)[None], 6, axis=0)
    rows[:, col] += [0.0, 1e3, 1e8, 1e15, 1e30, 1e90]
    scores = clf.score_samples(rows)
    assert np.all(scores < train.max())
    np.testing.assert_allclose(scores, scores[0], rtol=1e-9)


def test_shared_mahalanobis_far_rows_never_more_typical_with_a_singular_covariance(digits):
    # covariance_shrinkage=0: a feature constant within each class but not across
    # them has no within-class spread, so Sigma^+ ignores it, while a generalised
    # inverse of the background covariance did not: rows far along it scored
    # ever higher (+1.5e17 at 1e9, the training rows at most 2.3).
    X, y = digits
    X = np.hstack([X, y[:, None].astype(float)])
    clf = NearestMeanClassifier(
        metric="mahalanobis", covariance_shrinkage=0.0, temperature=1.0
    ).fit(X, y)
    train = clf.score_samples(X)
    rows = np.repeat(X.mean(axis=0)[None], 4, axis=0)
    rows[:, -1] += [1e1, 1e3, 1e6, 1e9]
    scores = clf.score_samples(rows)
    assert np.all(np.isfinite(scores))
    assert np.all(scores <= train.max()), (scores, train.max())
    assert np.all(np.diff(scores) <= 1e-9 * np.abs(scores[:-1]))


def test_rbf_trains_alike_with_a_common_offset(digits):
    # the components train in float32 about the training rows' mean: where X lies
    # (old code) a step at 2**20 (lr x data unit, ~0.03) was below half float32's
    # spacing there (0.0625) and rounded away, and training stalled at its start
    from sklearn.model_selection import train_test_split

    from skproto import RBFPrototypeClassifier

    X, y = digits
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    plain = RBFPrototypeClassifier(random_state=0, max_epochs=20).fit(Xtr, ytr)
    shifted = RBFPrototypeClassifier(random_state=0, max_epochs=20).fit(Xtr + 2.0**20, ytr)
    # (old code: 0.972 against 0.952, 20 epochs against 11, the early stop of a model
    # whose loss never improved; at the default 100 epochs 0.980 against 0.952)
    assert shifted.score(Xte + 2.0**20, yte) >= plain.score(Xte, yte) - 0.01
    assert np.mean(shifted.predict(Xte + 2.0**20) == plain.predict(Xte)) >= 0.99


def test_relative_mahalanobis_score_with_more_classes_than_features():
    # the background term, formed by Woodbury's identity (and compressed to the
    # rank when the classes outnumber it), equals the explicit inverse
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=3000, n_features=8, centers=40, random_state=0)
    clf = NearestMeanClassifier(metric="mahalanobis", temperature=2.0).fit(X, y)
    expected = relative_mahalanobis_reference(clf, X, 2.0)
    np.testing.assert_allclose(clf.score_samples(X), expected, rtol=1e-10, atol=1e-10)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(clf.score_samples(X32), expected, rtol=1e-4, atol=1e-3)


def test_rbf_warns_where_float32_cannot_hold_a_step(digits):
    # about the rows' mean a common offset leaves the steps alone (old code warned at
    # + 2**20: float32's spacing, 0.125, exceeded a step of 1e-3 x the data's unit
    # of 32); a step too small for the components' spread about the mean still warns
    import warnings

    from skproto import RBFPrototypeClassifier

    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RBFPrototypeClassifier(random_state=0, max_epochs=1).fit(X + 2.0**20, y)
        RBFPrototypeClassifier(random_state=0, max_epochs=1).fit(X * 1e-4, y)
    with pytest.warns(UserWarning, match=r"exceeds a training step") as rec:
        RBFPrototypeClassifier(random_state=0, max_epochs=1, learning_rate=1e-10).fit(X, y)
    assert rec[0].filename == __file__
