"""Audit for high-dimensional inputs (image-backbone embeddings of 1,024-4,096 features).

- :func:`skproto.geometry.principal_axes`, the start of ``ProtoClassifier``'s
  default narrowing map (``projection_dim="auto"``: 384 outputs for wider rows),
  took the full SVD of up to 10,000 centred rows to keep 384 of their axes: 58 s
  and 2.3 GB on one thread for 10,000 rows of 4,096 features (10.7 s for 2,048),
  most of a one-epoch fit on 12,000 such rows. With more rows than features it
  now takes the leading axes of the scatter ``U^T U`` only (9.0 s, 1.0 GB; 2.0 s
  for 2,048 features): the same axes to 1e-13.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from skproto.geometry import principal_axes


def test_principal_axes_of_more_rows_than_features_skip_the_full_svd(monkeypatch):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 60)) @ rng.normal(size=(60, 60)) + 5.0
    svds = []
    svd = np.linalg.svd
    monkeypatch.setattr(
        np.linalg, "svd", lambda A, *a, **k: svds.append(A.shape) or svd(A, *a, **k)
    )
    axes = principal_axes(X, 8)
    assert svds == []  # (the full SVD of the 400 x 60 rows, all 60 axes, before)
    reference = PCA(8).fit(X).components_
    np.testing.assert_allclose(np.abs(axes), np.abs(reference), atol=1e-10)
    np.testing.assert_allclose(axes @ axes.T, np.eye(8), atol=1e-12)
    assert np.all(axes[np.arange(8), np.argmax(np.abs(axes), axis=1)] > 0)  # signed as before
    # fewer rows than features (and one feature) keep the SVD: as many axes as rows
    assert principal_axes(X[:5], 8).shape == (5, 60)
    assert principal_axes(X[:, :1], 3).shape == (1, 1)
