"""Scale-out on dask: exact distributed fits, lazy prediction, out-of-core training.

Needs ``skproto[dask]``.

- :class:`ParallelPostFit` wraps any skproto estimator: ``predict``,
  ``predict_proba``, ``predict_log_proba``, ``decision_function``,
  ``score_samples`` and ``transform`` return dask arrays with the right chunks
  and meta when given a dask array or DataFrame (numpy in, numpy out), and
  ``explain`` works on a selection of rows. Unlike dask-ml's
  ``ParallelPostFit``, ``decision_function``, ``score_samples`` and
  ``transform`` are covered. ``fit`` on dask input fits skproto's
  classifiers out of core (other estimators, Pipelines included, on the
  computed data).
- :func:`fit_nearest_mean` fits a NearestMeanClassifier on the workers: each
  block's sufficient statistics are computed where the block lives and merged
  in a tree; the result equals ``fit`` in memory, whatever the chunking.
- :func:`fit_streaming` trains ProtoClassifier and RBFPrototypeClassifier on
  streamed blocks, and :func:`nearest_rows` is the distributed nearest-row
  search their projection runs on (global row indices).
"""

from ._nearest_mean import fit_nearest_mean
from ._post_fit import ParallelPostFit
from ._streaming import fit_streaming, nearest_rows

__all__ = ["ParallelPostFit", "fit_nearest_mean", "fit_streaming", "nearest_rows"]
