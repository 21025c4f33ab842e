"""ProtoClassifier: learned prototypes that are real training cases (torch)."""

from ._estimator import PROTOPNET, ProtoClassifier

__all__ = ["PROTOPNET", "ProtoClassifier"]
