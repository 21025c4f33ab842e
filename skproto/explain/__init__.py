"""Explanations of predictions a person can read and look at.

- :class:`Explanation`: the one result type of every estimator's ``explain``
  (exact: contributions plus bias equal the class scores); ``with_cases``
  attaches the raw training case (text, image, any object) behind each
  listed prototype.
- Plots in scikit-learn's Display style (need matplotlib, ``skproto[plot]``):
  :class:`ExplanationDisplay` (a prediction's waterfall),
  :class:`PrototypeGalleryDisplay` (prototypes as cases with their nearest
  training cases and purity) and :class:`EmbeddingDisplay` (a 2-D map).
- :func:`make_report`: one self-contained HTML file (inline CSS and images,
  no network) with every query's waterfall and cases, and a global page.
- Case helpers: :func:`attach_cases` (tag a feature array with its raw inputs:
  an estimator fitted on it keeps its prototypes' cases, ``prototype_cases_``;
  the encoders of :mod:`skproto.encoders` do it for you), :func:`prototype_rows`,
  :func:`rendered`, :func:`case_text`, :func:`png_bytes`.
"""

from ._cases import (
    attach_cases,
    case_text,
    cases_of,
    png_bytes,
    png_data_uri,
    prototype_rows,
    rendered,
)
from ._explanation import Explanation
from ._plot import EmbeddingDisplay, ExplanationDisplay, PrototypeGalleryDisplay
from ._report import make_report
from ._steps import Step, Waterfall, explain_with_runner_up, unpipe, waterfall

__all__ = [
    "EmbeddingDisplay",
    "Explanation",
    "ExplanationDisplay",
    "PrototypeGalleryDisplay",
    "Step",
    "Waterfall",
    "attach_cases",
    "case_text",
    "cases_of",
    "explain_with_runner_up",
    "make_report",
    "png_bytes",
    "png_data_uri",
    "prototype_rows",
    "rendered",
    "unpipe",
    "waterfall",
]
