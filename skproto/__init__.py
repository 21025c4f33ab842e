"""skproto: interpretable prototype classifiers for frozen deep features.

The torch-backed estimators (``ProtoClassifier``, ``RBFPrototypeClassifier``)
are imported on first access (PEP 562), so ``import skproto`` and
``NearestMeanClassifier`` do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import metrics
from .explain import Explanation
from .nearest_mean import NearestMeanClassifier
from .robustness import certified_accuracy

if TYPE_CHECKING:  # pragma: no cover
    from .proto import ProtoClassifier
    from .rbf import RBFPrototypeClassifier

__version__ = "0.1.0.dev0"

__all__ = [
    "Explanation",
    "NearestMeanClassifier",
    "ProtoClassifier",
    "RBFPrototypeClassifier",
    "certified_accuracy",
    "metrics",
    "__version__",
]

_LAZY = {"ProtoClassifier": ".proto", "RBFPrototypeClassifier": ".rbf"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
