"""Shared geometry: distances, similarities, covariance estimation and principal axes.

Each formula is written once, for numpy arrays and (where the torch estimators
need it) torch tensors alike; nothing here imports torch.
"""

from .covariance import principal_axes, shrinkage_amount, shrunk_covariance, whitener
from .distances import (
    cosine_distances,
    min_squared_distances,
    normalize_rows,
    squared_distances,
)
from .similarities import cosine_similarity, log_similarity, rbf_similarity

__all__ = [
    "cosine_distances",
    "cosine_similarity",
    "log_similarity",
    "min_squared_distances",
    "normalize_rows",
    "principal_axes",
    "rbf_similarity",
    "shrinkage_amount",
    "shrunk_covariance",
    "squared_distances",
    "whitener",
]
