"""The torch estimators train in float32 whatever torch's default dtype (a review of
session 48): parameters, buffers and constants the package made without a dtype
were made in the caller's ``torch.set_default_dtype``, so under float16 or
bfloat16 they were rounded before training cast them to float32, or overflowed."""

import textwrap

import numpy as np
import pytest
import torch
from helpers import assert_runs_in_fresh_process
from sklearn.datasets import load_iris

from skproto import ProtoClassifier, RBFPrototypeClassifier

MAKERS = {
    "proto": lambda: ProtoClassifier(max_epochs=3, random_state=0),
    "proto-mlp": lambda: ProtoClassifier(projection="mlp", max_epochs=3, random_state=0),
    "proto-linear-head": lambda: ProtoClassifier(head="linear", max_epochs=3, random_state=0),
    "proto-temperature-1e6": lambda: ProtoClassifier(temperature=1e6, max_epochs=3, random_state=0),
    "rbf": lambda: RBFPrototypeClassifier(max_epochs=3, random_state=0),
    "rbf-cbc": lambda: RBFPrototypeClassifier(loss="cbc", max_epochs=3, random_state=0),
}


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture
def default_dtype():
    """Sets torch's default dtype for the test, and restores the one before it."""
    before = torch.get_default_dtype()
    try:
        yield torch.set_default_dtype
    finally:
        torch.set_default_dtype(before)


def _life(make, X, y):
    """predict_proba after fit, after a partial_fit, and the explanation's contributions."""
    est = make().fit(X, y)
    fitted = est.predict_proba(X)
    est.partial_fit(X[::3], y[::3])
    return fitted, est.predict_proba(X), est.explain(X[:5]).contribution


@pytest.fixture(scope="module")
def expected(iris):
    assert torch.get_default_dtype() == torch.float32
    return {name: _life(make, *iris) for name, make in MAKERS.items()}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", list(MAKERS))
def test_training_ignores_the_default_dtype(iris, expected, default_dtype, name, dtype):
    # under torch.set_default_dtype(torch.float16) ProtoClassifier(temperature=1e6)
    # raised "Training diverged in fit: the loss became nan in epoch 1" (its head's
    # scale, 20e6, overflowed float16), and ProtoClassifier at its defaults gave
    # probabilities up to 2e-4 (float16) and 2e-3 (bfloat16) away from float32's
    # (the rbf width, the mixture head's tau, scale, bias and temperature rounded)
    default_dtype(dtype)
    got = _life(MAKERS[name], *iris)
    for g, e in zip(got, expected[name]):
        np.testing.assert_array_equal(g, e)


def test_the_fixture_restored_the_default_dtype():
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_glvq_floor_is_float32_under_a_default_dtype_set_before_import(dtype):
    # skproto.rbf computed GLVQ's least loss, sigmoid(-2), at import in torch's
    # default dtype: set to float16 before the import it was 0.1192017 against
    # float32's 0.1192029, further than the 1e-5 relative room of the "every gradient
    # was 0" check: a stream's first row on its own component (loss 0.1192029) went
    # on to the diagnosis of stuck parameters (which found nothing to report there,
    # so no warning was seen; the partial_fit below keeps it so)
    code = textwrap.dedent(
        f"""
        import warnings
        import torch
        torch.set_default_dtype(torch.{dtype})
        from sklearn.datasets import load_iris
        from skproto import RBFPrototypeClassifier
        from skproto.rbf import _estimator

        least = torch.sigmoid(torch.tensor(-2.0, dtype=torch.float32))
        assert _estimator._GLVQ_FLOOR == float(least)
        X, y = load_iris(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        clf = RBFPrototypeClassifier(loss="glvq", random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            clf.partial_fit(X[:1], y[:1], classes=[0, 1, 2])
        print("ok")
        """
    )
    assert_runs_in_fresh_process(code)
