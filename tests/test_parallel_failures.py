"""skproto.parallel under failures and odd inputs (each test fails on the code before its fix)."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from skproto import NearestMeanClassifier  # noqa: E402
from skproto.parallel import ParallelPostFit  # noqa: E402


def test_a_scattered_model_the_cluster_lost_is_scattered_again():
    """After client.restart() (or the death of every worker holding the
    scattered copy), the wrapper kept reusing the lost future: every later lazy
    prediction failed with FutureCancelledError "lost dependencies" until the
    model was fitted again."""
    distributed = pytest.importorskip("distributed")
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    )
    try:
        with distributed.Client(cluster) as client:
            model = ParallelPostFit(NearestMeanClassifier()).fit(X, y)
            Xd = da.from_array(X, chunks=50)
            expected = model.estimator_.predict(X)
            np.testing.assert_array_equal(model.predict(Xd).compute(), expected)
            client.restart()
            np.testing.assert_array_equal(model.predict(Xd).compute(), expected)
    finally:
        cluster.close()


@pytest.mark.parametrize("change", ["wider", "shorter"])
def test_a_streamed_block_unlike_its_declared_shape_is_named(change):
    """A block of another width (or length) than the dask array declares failed
    inside numpy's concatenation ("all the input array dimensions except for
    the concatenation axis must match exactly", "shape mismatch: value array
    of shape (1792,64)") or in the prefetching thread ("boolean index did not
    match"), where fit_nearest_mean names it."""
    import dask
    from sklearn.datasets import load_digits

    from skproto import RBFPrototypeClassifier
    from skproto.parallel import fit_streaming

    X, y = load_digits(return_X_y=True)
    X = X / 16

    def odd(block, block_info=None):
        if block_info[0]["chunk-location"][0] != 8:
            return block
        return np.hstack([block, block[:, :1]]) if change == "wider" else block[:-5]

    Xd = da.from_array(X, chunks=(200, 64)).map_blocks(odd, dtype=float)
    est = RBFPrototypeClassifier(max_epochs=1, random_state=0)
    with (
        dask.config.set(scheduler="synchronous"),
        pytest.raises(ValueError, match="X has a block of shape"),
    ):
        fit_streaming(est, Xd, da.from_array(y, chunks=200), init_rows=30, window_blocks=1)
    assert not hasattr(est, "classes_")


@pytest.mark.parametrize("dtype", ["Int64", "boolean"])
def test_in_memory_nullable_labels_are_read_as_fit_reads_them(dtype):
    """A pandas (not dask) Series of nullable Int64 or boolean labels beside a
    dask X was read by np.asarray: classes_ int64 or bool, where fit, and the
    dask fits given the same labels as a dask Series, give float64."""
    import dask
    import pandas as pd
    from sklearn.datasets import load_iris

    from skproto.parallel import fit_nearest_mean

    X, y = load_iris(return_X_y=True)
    labels = pd.Series(y if dtype == "Int64" else y > 0, dtype=dtype)
    expected = NearestMeanClassifier().fit(X, labels).classes_
    with dask.config.set(scheduler="synchronous"):
        got = fit_nearest_mean(NearestMeanClassifier(), da.from_array(X, chunks=40), labels)
    assert got.classes_.dtype == expected.dtype
    np.testing.assert_array_equal(got.classes_, expected)
