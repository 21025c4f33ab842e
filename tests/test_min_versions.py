"""The declared minimum versions (pyproject.toml): code paths for the older
libraries, simulated here on the installed ones (a minimum-versions audit ran
the suite on numpy 1.24.4, scipy 1.10.0, scikit-learn 1.6.1, pandas 1.5.3,
matplotlib 3.6.3; dask and distributed 2024.6.1, the first without the
scheduler's lost-worker hang, dask/distributed #8702, with pandas 2.0.3)."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier


def test_sample_weights_are_checked_without_scikit_learn_1_9_s_keyword(monkeypatch):
    """scikit-learn's _check_sample_weight took allow_all_zero_weights only from 1.9:
    on 1.6-1.8 every fit was a TypeError. Without the keyword the all-zero check
    is made here, with 1.9's message."""
    from sklearn.utils.validation import _check_sample_weight

    from skproto import _validation

    extra = {"allow_all_zero_weights": True} if _validation._ALL_ZERO_KEYWORD else {}

    def before_1_9(sample_weight, X, dtype=None, copy=False, ensure_non_negative=False):
        return _check_sample_weight(
            sample_weight, X, dtype=dtype, copy=copy, ensure_non_negative=ensure_non_negative,
            **extra,
        )  # fmt: skip

    monkeypatch.setattr(_validation, "_check_sample_weight", before_1_9)
    monkeypatch.setattr(_validation, "_ALL_ZERO_KEYWORD", False, raising=False)
    X, y = load_iris(return_X_y=True)
    w = np.ones(len(y))
    fitted = NearestMeanClassifier().fit(X, y, sample_weight=w)
    assert fitted.score(X, y) == NearestMeanClassifier().fit(X, y).score(X, y)
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero"):
        NearestMeanClassifier().fit(X, y, sample_weight=np.zeros(len(y)))
    stream = NearestMeanClassifier().partial_fit(X, y, sample_weight=w)
    stream.partial_fit(X[:5], y[:5], sample_weight=np.zeros(5))  # a later batch may weigh 0


def test_one_feature_mahalanobis_without_scipy_1_14_s_fix(monkeypatch):
    """scipy's eigh(driver="evd") refused a 1 x 1 matrix before 1.14 (scipy #20512):
    a Mahalanobis fit on one feature failed with LAPACK's lwork error."""
    from skproto.geometry import covariance

    real = covariance.eigh

    def before_1_14(a, *args, driver=None, **kwargs):
        if driver == "evd" and np.shape(a) == (1, 1):
            raise ValueError("dsyevd:lwork=1")
        return real(a, *args, driver=driver, **kwargs)

    monkeypatch.setattr(covariance, "eigh", before_1_14)
    X, y = load_iris(return_X_y=True)
    for covariance_kind in ("shared", "per_class"):
        clf = NearestMeanClassifier(metric="mahalanobis", covariance=covariance_kind)
        assert clf.fit(X[:, :1], y).score(X[:, :1], y) > 0.7


def test_dask_expr_1_frames_are_dask_frames():
    """dask 2024.6.1 to 2024.12 build frames in the separate dask-expr 1.x package
    (module dask_expr._collection): read as arrays, not as dask frames, they
    lost their column names and skipped the casts of extension dtypes."""
    from skproto.parallel._common import is_dask_frame

    frame = type("DataFrame", (), {"__module__": "dask_expr._collection", "to_dask_array": 0})
    assert is_dask_frame(frame())
