"""Explanations of predictions: the :class:`Explanation` result type.

Plots and HTML reports of explanations will live here too.
"""

from ._explanation import Explanation

__all__ = ["Explanation"]
