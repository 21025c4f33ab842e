"""Nearest class mean classifier: closed form, streaming, mergeable (numpy only)."""

from ._estimator import NearestMeanClassifier

__all__ = ["NearestMeanClassifier"]
