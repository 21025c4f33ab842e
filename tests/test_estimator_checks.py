"""scikit-learn's own estimator checks, over several configurations."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skproto import NearestMeanClassifier

CONFIGURATIONS = [
    NearestMeanClassifier(),
    NearestMeanClassifier(metric="cosine", temperature=0.1),
    NearestMeanClassifier(metric="mahalanobis"),
    NearestMeanClassifier(
        metric="mahalanobis", covariance_shrinkage="ledoit_wolf", priors="empirical"
    ),
    NearestMeanClassifier(metric="mahalanobis", covariance="per_class", covariance_shrinkage=0.2),
    NearestMeanClassifier(shrinkage=0.5, priors="empirical"),
]


@parametrize_with_checks(CONFIGURATIONS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
