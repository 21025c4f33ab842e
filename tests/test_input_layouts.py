"""Input containers and memory layouts users pass (each test fails on the code before its fix)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skproto import NearestMeanClassifier
from skproto.explain import prototype_rows


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda a: a[..., ::-1], id="flipped-view"),  # BGR -> RGB, a view
        pytest.param(lambda a: a.astype(a.dtype.newbyteorder(">")), id="big-endian"),
        pytest.param(lambda a: [im[:, ::-1] for im in a], id="list-of-mirrored-views"),
    ],
)
def test_torch_encoder_takes_arrays_torch_refuses(layout):
    # torch.as_tensor refuses negative strides and a non-native byte order; the
    # encoder failed with torch's ValueError on a plain numpy view of an image
    torch = pytest.importorskip("torch")
    from skproto.encoders import TorchEncoder

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    images = np.random.default_rng(0).uniform(size=(5, 2, 2, 3)).astype(np.float32)
    given = layout(images)
    expected = [np.ascontiguousarray(np.asarray(im, dtype=np.float32)) for im in given]
    before = [np.array(im, copy=True) for im in given]
    out = TorchEncoder(net).fit_transform(given)
    np.testing.assert_array_equal(out, TorchEncoder(net).fit_transform(expected))
    for im, was in zip(given, before):  # the user's images are left as they were
        np.testing.assert_array_equal(im, was)


def test_prototype_rows_of_a_frame_does_not_warn_of_missing_feature_names():
    # No row among a class mean's 10 nearest is of its class: its representative is
    # searched among the class's rows, which were passed as np.asarray(X), and a
    # model fitted on a DataFrame warned "X does not have valid feature names"
    rng = np.random.default_rng(0)
    X = np.r_[[[-10.0, -10.0], [10.0, 10.0]], rng.normal(scale=0.1, size=(12, 2))]
    y = np.array(["a", "a"] + ["b"] * 12)
    frame = pd.DataFrame(X, columns=["f0", "f1"])
    clf = NearestMeanClassifier().fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = prototype_rows(clf, frame, y)
    np.testing.assert_array_equal(rows, prototype_rows(NearestMeanClassifier().fit(X, y), X, y))
    assert y[rows[0]] == "a"
