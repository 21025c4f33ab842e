"""skproto quickstart: a nearest-mean classifier that explains itself.

Runs in a few seconds on scikit-learn's digits (8x8 images, 64 features):
fits NearestMeanClassifier three ways (batch, streaming, merged shards),
prints test accuracy next to scikit-learn's NearestCentroid, flags unusual
inputs with score_samples, and explains one prediction.

    python examples/quickstart.py
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestCentroid

from skproto import NearestMeanClassifier


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )

    clf = NearestMeanClassifier(metric="mahalanobis").fit(X_train, y_train)
    with warnings.catch_warnings():  # it warns about pixels that are constant in a class
        warnings.simplefilter("ignore", UserWarning)
        baseline = NearestCentroid().fit(X_train, y_train)
    print(f"NearestMeanClassifier(metric='mahalanobis') test accuracy: {clf.score(X_test, y_test):.3f}")
    print(f"sklearn NearestCentroid                     test accuracy: {baseline.score(X_test, y_test):.3f}")

    # Streaming: classes arrive one task at a time (class-incremental), same model as fit.
    stream = NearestMeanClassifier(metric="mahalanobis")
    for task in np.array_split(np.arange(10), 5):
        rows = np.isin(y_train, task)
        stream.partial_fit(X_train[rows], y_train[rows])
    same = np.allclose(stream.predict_proba(X_test), clf.predict_proba(X_test))
    print(f"5 class-incremental partial_fit calls == one fit: {same}")

    # Federated: fit on two disjoint shards, merge.
    half = len(X_train) // 2
    merged = NearestMeanClassifier(metric="mahalanobis").fit(X_train[:half], y_train[:half]).merge(
        NearestMeanClassifier(metric="mahalanobis").fit(X_train[half:], y_train[half:])
    )
    print(f"merge of 2 shard models == one fit: {np.allclose(merged.predict_proba(X_test), clf.predict_proba(X_test))}")

    # Out-of-distribution: random noise images should look unusual.
    noise = np.random.default_rng(0).uniform(0, 16, size=(200, 64))
    scores = np.r_[clf.score_samples(X_test), clf.score_samples(noise)]
    is_digit = np.r_[np.ones(len(X_test)), np.zeros(len(noise))]
    print(f"AUROC of score_samples, digits vs noise: {roc_auc_score(is_digit, scores):.3f}")

    # Every prediction explained by its nearest class means; terms add up to the scores.
    print()
    print(clf.explain(X_test[:1], n_prototypes=3))


if __name__ == "__main__":
    main()
