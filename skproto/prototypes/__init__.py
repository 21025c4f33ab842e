"""Where prototypes come from: class-wise initialisation and projection onto training rows."""

from .init import class_members, classwise_kmeans, kmeans_prototypes
from .projection import distinct_nearest, project_onto_rows

__all__ = [
    "class_members",
    "classwise_kmeans",
    "distinct_nearest",
    "kmeans_prototypes",
    "project_onto_rows",
]
