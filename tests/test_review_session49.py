"""Review of session 49: own-class heads that keep each prototype's class only (e7900f7)
and the dask fit's shared view of the estimator (07d2c43).

``NearestHead`` dropped its membership buffer and built its ``weights()`` as float32
whatever the module's dtype: a float64 head (``.double()``, or the float64 inference
network of a fitted ``RBFPrototypeClassifier``) returned float32 weights, which a
float64 product refused ("expected m1 and m2 to have the same dtype"), where the
buffer had followed the module's conversions.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris

from skproto import RBFPrototypeClassifier
from skproto.heads import NearestHead


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.mark.parametrize(
    "convert, dtype",
    [
        (lambda h: h, torch.float32),
        (lambda h: h.double(), torch.float64),
        (lambda h: h.to(dtype=torch.float64), torch.float64),
        (lambda h: h.half(), torch.float16),
    ],
)
def test_nearest_head_weights_follow_the_module_dtype(convert, dtype):
    head = convert(NearestHead(torch.tensor([0, 1, 0]), n_classes=3))
    rp, rn = head.weights()
    assert rp.dtype == rn.dtype == dtype
    np.testing.assert_array_equal(rp.numpy(), np.eye(3)[[0, 1, 0]])
    assert not rn.any()
    d = torch.tensor([[0.5, 0.25, 0.75]], dtype=dtype)
    np.testing.assert_array_equal((d @ rp).numpy(), [[1.25, 0.25, 0.0]])
    # the state holds each prototype's class only, as the estimator stores it
    assert list(head.state_dict()) == ["labels"]


def test_nearest_head_weights_are_float32_under_another_default_dtype():
    before = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float16)
        head = NearestHead(torch.tensor([0, 1, 0]), n_classes=3)
    finally:
        torch.set_default_dtype(before)
    assert head.weights()[0].dtype == torch.float32


@pytest.mark.parametrize("loss", ["robust", "glvq", "cbc"])
def test_inference_network_reasoning_weights_are_float64_for_every_head(iris, loss):
    X, y = iris
    clf = RBFPrototypeClassifier(loss=loss, max_epochs=2, random_state=0).fit(X, y)
    net = clf._inference_network()
    assert net.components.dtype == torch.float64
    rp, rn = net.reasoning_weights()
    assert rp.dtype == rn.dtype == torch.float64
    # the attributes are those weights, bit for bit
    np.testing.assert_array_equal(rp.numpy(), clf.reasoning_positive_)
    np.testing.assert_array_equal(rn.numpy(), clf.reasoning_negative_)
