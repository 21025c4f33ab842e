"""skproto: interpretable prototype classifiers for frozen deep features."""

from ._explain import Explanation
from .nearest_mean import NearestMeanClassifier
from .proto import ProtoClassifier
from .rbf import RBFPrototypeClassifier, certified_accuracy

__version__ = "0.1.0.dev0"

__all__ = [
    "Explanation",
    "NearestMeanClassifier",
    "ProtoClassifier",
    "RBFPrototypeClassifier",
    "certified_accuracy",
    "__version__",
]
