"""Defects a review found in fixes of streams, reports, dask labels (fail before the fix)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from skproto import RBFPrototypeClassifier


def _wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_partial_fit_margin_none_on_a_cbc_model_pickled_before_auto_margin():
    # a model fitted before 48afe28 has no _auto_margin: partial_fit after
    # set_params(margin=None) kept the margin it was fitted at (0.5) while
    # _fit_params recorded margin=None, where a fresh model trains at 0.3
    X, y = _wine()
    clf = RBFPrototypeClassifier(loss="cbc", margin=0.5, max_epochs=2, random_state=0).fit(X, y)
    del clf.__dict__["_auto_margin"]  # as unpickled from a fit before the change
    clf.set_params(margin=None).partial_fit(X[:40], y[:40])
    assert clf.margin_ == 0.3
    assert clf._fit_params["margin"] is None


def test_report_waterfall_draws_a_minus_inf_score_to_the_edge():
    # a class declared to partial_fit without rows scores -inf; the report's SVG put
    # its scale's left edge on the zero line (the finite ends were all 0), so the -inf
    # bars were 0.5 px wide at x=4: drawn as a score of 0, where the plot draws them
    # to the left of the zero line
    import re

    from skproto import NearestMeanClassifier
    from skproto.explain import waterfall
    from skproto.explain._report import _svg

    X = np.array([[0.0, 0.0], [0.0, 1.0]])
    clf = NearestMeanClassifier().partial_fit(X, [1, 1], classes=[1, -2])
    # (-2, the only other class, is no runner-up: its score drawn as explain's target)
    page = _svg(waterfall(clf.explain(X[:1], 2, target=[-2]), 0))
    svg = re.search(r"<svg class='waterfall'[^>]*class -2'>.*?</svg>", page).group(0)
    zero = float(re.search(r"<line x1='([^']*)'", svg).group(1))
    score = re.search(r"<rect class='score' x='([^']*)' y='[^']*' width='([^']*)'", svg)
    x, width = float(score.group(1)), float(score.group(2))
    assert zero > 4.0 + 10, zero  # room left of 0 for the -inf bars
    assert x == 4.0 and x + width == zero, (x, width, zero)  # from the edge to 0


def test_omega_start_of_a_small_first_batch_does_not_factor_a_p_by_p_matrix(monkeypatch):
    # a first batch with fewer rows than omega_dim: the missing rows of Omega came
    # from a QR of [axes; eye(p)] (p x (p + k)): 12 s and 600 MiB more at p = 4096
    # (omega_dim=32, one row) against 0.1 s for a first batch of 40 rows
    p, omega_dim = 300, 4
    sizes = []
    qr = np.linalg.qr

    def spy(a, *args, **kwargs):
        sizes.append(np.shape(a))
        return qr(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "qr", spy)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(2, p)), np.array([0, 1])
    clf = RBFPrototypeClassifier(omega_dim=omega_dim, random_state=0).partial_fit(X, y)
    assert sizes and max(a * b for a, b in sizes) <= p * omega_dim, sizes
    assert np.linalg.matrix_rank(clf._state["omega"]) == omega_dim  # (as before)


def test_in_memory_sparse_pandas_labels_beside_dask_x_read_as_fit_reads_them():
    # 2fdb75b cast in-memory pandas labels by _numpy_dtype, which reads pandas'
    # SparseDtype as object: a Sparse[int64] Series of labels, fitted at 09e6e83
    # (classes_ int64, as fit in memory), raised "Unknown label type: unknown"
    import dask
    import dask.array as da
    import pandas as pd
    from sklearn.datasets import load_iris

    from skproto import NearestMeanClassifier
    from skproto.parallel import fit_nearest_mean

    X, y = load_iris(return_X_y=True)
    labels = pd.Series(pd.arrays.SparseArray(y))
    expected = NearestMeanClassifier().fit(X, labels).classes_
    with dask.config.set(scheduler="synchronous"):
        got = fit_nearest_mean(NearestMeanClassifier(), da.from_array(X, chunks=40), labels)
    assert got.classes_.dtype == expected.dtype
    np.testing.assert_array_equal(got.classes_, expected)
    frame = pd.DataFrame({"w": pd.arrays.SparseArray(np.ones(len(y)))})["w"]
    with dask.config.set(scheduler="synchronous"):
        fit_nearest_mean(
            NearestMeanClassifier(), da.from_array(X, chunks=40), y, sample_weight=frame
        )
