"""Robustness: certified radii and certified accuracy.

``certificates`` holds the bounds (torch, shared by training and prediction);
:func:`certified_accuracy` works with any estimator that has a
``certified_radius`` method.
"""

from ._accuracy import certified_accuracy

__all__ = ["certified_accuracy"]
