"""Defects a review found in the input-layout, device and dask-label fixes (each
test fails on the code before its fix)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest


def _rare_representative_data():
    # no row among a class mean's 10 nearest is of its class: prototype_rows
    # searches the class's own rows (_most_active)
    rng = np.random.default_rng(0)
    X = np.r_[[[-10.0, -10.0], [10.0, 10.0]], rng.normal(scale=0.1, size=(12, 2))]
    y = np.array(["a", "a"] + ["b"] * 12)
    return X, y


def test_prototype_rows_of_a_dask_frame():
    # 5cb4a75 took the class's rows by X.iloc[own] wherever X has iloc: a dask
    # DataFrame's iloc selects columns only (NotImplementedError), where
    # np.asarray(X)[own] read it before
    dd = pytest.importorskip("dask.dataframe")
    from skproto import NearestMeanClassifier
    from skproto.explain import prototype_rows

    X, y = _rare_representative_data()
    frame = pd.DataFrame(X, columns=["f0", "f1"])
    clf = NearestMeanClassifier().fit(frame, y)
    expected = prototype_rows(clf, frame, y)
    got = prototype_rows(clf, dd.from_pandas(frame, npartitions=2), y)
    np.testing.assert_array_equal(got, expected)
    assert y[got[0]] == "a"


def test_sparse_boolean_labels_beside_dask_x_read_as_fit_reads_them():
    # 7a1beb9 left in-memory Sparse labels uncast (np.asarray: Sparse[bool] gave bool
    # classes) where fit reads them as float64, and a dask Series of Sparse labels
    # was still "Unknown label type"
    import dask
    import dask.array as da
    import dask.dataframe as dd
    from sklearn.datasets import load_iris

    from skproto import NearestMeanClassifier
    from skproto.parallel import fit_nearest_mean

    X, y = load_iris(return_X_y=True)
    for values in (y == 1, y):
        labels = pd.Series(pd.arrays.SparseArray(values))
        expected = NearestMeanClassifier().fit(X, labels).classes_
        with dask.config.set(scheduler="synchronous"):
            got = fit_nearest_mean(NearestMeanClassifier(), da.from_array(X, chunks=40), labels)
            lazy = fit_nearest_mean(
                NearestMeanClassifier(),
                da.from_array(X, chunks=75),
                dd.from_pandas(labels, npartitions=2),
            )
        for classes in (got.classes_, lazy.classes_):
            assert classes.dtype == expected.dtype, (classes.dtype, expected.dtype)
            np.testing.assert_array_equal(classes, expected)


def test_torch_encoder_takes_a_field_of_a_packed_record():
    # torch refuses strides that are not a multiple of the item size ("given numpy
    # array strides not a multiple of the element byte size"), as it refuses the
    # negative strides _writable copies
    torch = pytest.importorskip("torch")
    from skproto.encoders import TorchEncoder

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()
    records = np.zeros((4, 3), dtype=[("flag", "u1"), ("x", "<f8")])
    records["x"] = np.random.default_rng(0).normal(size=(4, 3))
    field = records["x"]  # strides (27, 9): not multiples of 8
    assert field.strides[-1] % field.itemsize
    out = TorchEncoder(net).fit_transform(field)
    np.testing.assert_array_equal(out, TorchEncoder(net).fit_transform(field.copy()))


def test_a_gpu_number_torch_does_not_see_is_a_value_error(monkeypatch):
    # resolve_device("cuda:1") on a machine with one GPU returned the device: torch's
    # RuntimeError ("CUDA error: invalid device ordinal") came mid-fit
    import torch

    from skproto._torch.training import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0", ("cpu", "cuda")) == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"device='cuda:1' was requested but torch finds 1"):
        resolve_device("cuda:1", ("cpu", "cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="torch finds 1"):
            resolve_device("cuda:3")
