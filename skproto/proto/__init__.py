"""ProtoClassifier: learned prototypes that are real training cases (torch)."""

from ._estimator import ProtoClassifier

__all__ = ["ProtoClassifier"]
