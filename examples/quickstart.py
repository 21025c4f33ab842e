"""skproto quickstart: prototype classifiers that explain themselves.

Runs in about ten seconds on scikit-learn's digits (8x8 images, 64 features):

1. NearestMeanClassifier fitted three ways (batch, streaming, merged shards),
   next to scikit-learn's NearestCentroid; unusual inputs flagged with
   score_samples; one prediction explained.
2. ProtoClassifier: learned prototypes that are real training images; one
   prediction explained by the training rows it resembles.
3. RBFPrototypeClassifier: a certified radius per prediction, and certified
   accuracy at several perturbation sizes.

    python examples/quickstart.py
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestCentroid

from skproto import (
    NearestMeanClassifier,
    ProtoClassifier,
    RBFPrototypeClassifier,
    certified_accuracy,
)


def _same_as(model, reference, X_test) -> str:
    """Whether ``model`` has ``reference``'s statistics, and how often they predict alike.

    The statistics are exactly fit's; with ``temperature="auto"`` the
    temperature is fitted on differently held-out rows, so probabilities are
    close, not equal.
    """
    same = np.allclose(model.means_, reference.means_) and np.allclose(
        model.covariance_, reference.covariance_
    )
    agree = np.mean(model.predict(X_test) == reference.predict(X_test))
    return f"{same} (means and covariance; predictions agree on {agree:.0%})"


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )

    clf = NearestMeanClassifier(metric="mahalanobis").fit(X_train, y_train)
    with warnings.catch_warnings():  # it warns about pixels that are constant in a class
        warnings.simplefilter("ignore", UserWarning)
        baseline = NearestCentroid().fit(X_train, y_train)
    for name, model in [
        ("NearestMeanClassifier(metric='mahalanobis')", clf),
        ("sklearn NearestCentroid", baseline),
    ]:
        print(f"{name:<44} test accuracy: {model.score(X_test, y_test):.3f}")

    # Streaming: classes arrive one task at a time (class-incremental), same model as fit.
    stream = NearestMeanClassifier(metric="mahalanobis")
    for task in np.array_split(np.arange(10), 5):
        rows = np.isin(y_train, task)
        stream.partial_fit(X_train[rows], y_train[rows])
    print(
        f"5 class-incremental partial_fit calls == one fit: {_same_as(stream, clf, X_test)}; "
        f"temperature {stream.temperature_:.2f} against {clf.temperature_:.2f}"
    )

    # Federated: fit on two disjoint shards, merge.
    half = len(X_train) // 2
    merged = (
        NearestMeanClassifier(metric="mahalanobis")
        .fit(X_train[:half], y_train[:half])
        .merge(NearestMeanClassifier(metric="mahalanobis").fit(X_train[half:], y_train[half:]))
    )
    print(f"merge of 2 shard models == one fit: {_same_as(merged, clf, X_test)}")

    # Out-of-distribution: random noise images should look unusual.
    noise = np.random.default_rng(0).uniform(0, 16, size=(200, 64))
    scores = np.r_[clf.score_samples(X_test), clf.score_samples(noise)]
    is_digit = np.r_[np.ones(len(X_test)), np.zeros(len(noise))]
    print(f"AUROC of score_samples, digits vs noise: {roc_auc_score(is_digit, scores):.3f}")

    # Every prediction explained by its nearest class means; terms add up to the scores.
    print()
    print(clf.explain(X_test[:1], n_prototypes=3))

    # Learned prototypes that ARE training images ("this looks like that"), each
    # class scored by its own cases only; probabilities calibrated on held-out rows.
    Xs_train, Xs_test = X_train / 16, X_test / 16
    proto = ProtoClassifier(random_state=0).fit(Xs_train, y_train)
    rows = proto.prototype_sample_indices_
    print()
    print(
        f"ProtoClassifier() test accuracy: {proto.score(Xs_test, y_test):.3f}; "
        f"its {len(rows)} prototypes are training images of their own class: "
        f"{np.array_equal(y_train[rows], proto.prototype_labels_)}"
    )
    ex = proto.explain(Xs_test[:1], n_prototypes=3)
    cases = ex.prototype_sample_index[0]
    c = np.searchsorted(proto.classes_, ex.predicted[0])
    shares = ex.contribution[0, :, c] / (ex.scores[0, c] - ex.bias[c])  # of its evidence
    print(
        f"test image 0 is a {ex.predicted[0]} "
        f"(probability {proto.predict_proba(Xs_test[:1]).max():.2f}); the training images "
        f"behind that: rows {cases.tolist()} (labels {y_train[cases].tolist()}), "
        f"carrying {np.round(shares, 2).tolist()} of the evidence"
    )

    # A certified radius: no perturbation smaller than it changes the prediction.
    rbf = RBFPrototypeClassifier(
        n_components=30, loss="robust", reasoning="nearest", max_epochs=40, random_state=0
    ).fit(Xs_train, y_train)
    radius = rbf.certified_radius(Xs_test, y_test)
    eps = [0.1, 0.3, 0.5]
    acc = certified_accuracy(rbf, Xs_test, y_test, eps)
    print()
    print(
        f"RBFPrototypeClassifier(loss='robust') test accuracy {rbf.score(Xs_test, y_test):.3f}; "
        f"median certified L2 radius {np.median(radius):.3f} (pixels scaled to [0, 1])"
    )
    print("certified accuracy at eps " + ", ".join(f"{e}: {a:.3f}" for e, a in zip(eps, acc)))


if __name__ == "__main__":
    main()
