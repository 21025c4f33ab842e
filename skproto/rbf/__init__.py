"""RBFPrototypeClassifier: RBF / classification-by-components heads with certified radii (torch)."""

from ._estimator import RBFPrototypeClassifier

__all__ = ["RBFPrototypeClassifier"]
