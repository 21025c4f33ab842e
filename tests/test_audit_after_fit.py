"""A fitted model's life after fit: loaded with joblib's ``mmap_mode``, and
trained again inside the caller's torch contexts (an audit of the defects found)."""

import textwrap

import pytest
import torch
from helpers import assert_runs_in_fresh_process
from numpy.testing import assert_array_equal
from sklearn.datasets import load_iris

from skproto import ProtoClassifier, RBFPrototypeClassifier


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.mark.parametrize("head", ["mixture", "linear"])
def test_memory_mapped_proto_explains_and_streams_without_torch_warnings(tmp_path, head):
    # joblib.load(..., mmap_mode="r") makes the fitted arrays read-only: explain
    # (mixture head) and partial_fit (linear head: its codes, and the kept cases of
    # the exact prototypes) handed them to torch.as_tensor, which warned "The given
    # NumPy array is not writable, and PyTorch does not support non-writable
    # tensors" at the user's call. torch warns once per process, so each run is a
    # fresh one.
    code = textwrap.dedent(
        f"""
        import warnings
        import joblib
        import numpy as np
        from sklearn.datasets import load_iris
        from skproto import ProtoClassifier

        X, y = load_iris(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        est = ProtoClassifier(head={head!r}, max_epochs=2, random_state=0).fit(X, y)
        path = {str(tmp_path / "model.joblib")!r}
        joblib.dump(est, path)
        loaded = joblib.load(path, mmap_mode="r")
        assert not loaded.prototypes_.flags.writeable  # (memory-mapped)
        expected = est.explain(X[:5]).contribution
        warnings.simplefilter("error")
        np.testing.assert_array_equal(loaded.explain(X[:5]).contribution, expected)
        loaded.explain(X[:5], rank_by="activation")
        loaded.partial_fit(X[::3], y[::3])
        est.partial_fit(X[::3], y[::3])
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
        print("ok")
        """
    )
    assert_runs_in_fresh_process(code)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProtoClassifier(max_epochs=2, random_state=0),
        lambda: ProtoClassifier(projection="mlp", max_epochs=2, random_state=0),
        lambda: RBFPrototypeClassifier(max_epochs=2, random_state=0),
        lambda: RBFPrototypeClassifier(loss="glvq", max_epochs=2, random_state=0),
    ],
)
def test_fit_and_partial_fit_inside_autocast_train_as_outside(iris, make):
    # inside torch.autocast("cpu", dtype=torch.bfloat16) ProtoClassifier's fit raised
    # "TypeError: Got unsupported ScalarType BFloat16" and RBF's fit and partial_fit
    # "ValueError: data type <class 'numpy.str_'> not inexact"; ProtoClassifier's
    # partial_fit trained in bfloat16, silently (other probabilities). Training now
    # turns autocast off, as it turns autograd on under torch.no_grad()
    X, y = iris
    expected = make().fit(X, y)
    streamed = make().fit(X, y).partial_fit(X[::3], y[::3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        est = make().fit(X, y)
        assert_array_equal(est.predict_proba(X), expected.predict_proba(X))
        est.partial_fit(X[::3], y[::3])
    assert_array_equal(est.predict_proba(X), streamed.predict_proba(X))


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("skproto").NearestMeanClassifier(),
        lambda: ProtoClassifier(max_epochs=1, random_state=0),
        lambda: RBFPrototypeClassifier(max_epochs=1, random_state=0),
    ],
    ids=["nearest_mean", "proto", "rbf"],
)
def test_a_pickle_from_another_skproto_version_warns_as_scikit_learn_s_do(make):
    """A pickle recorded no skproto version, so one loaded by another version said
    nothing (scikit-learn records its own version for its estimators only): it
    now warns with scikit-learn's InconsistentVersionWarning, naming skproto and
    both versions; the same version, and a pickle from before versions were kept,
    load silently."""
    import copy
    import pickle
    import warnings

    from sklearn.exceptions import InconsistentVersionWarning

    import skproto

    X, y = load_iris(return_X_y=True)
    est = make().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = pickle.loads(pickle.dumps(est))
        copy.deepcopy(est)
    assert_array_equal(same.predict(X), est.predict(X))
    assert "_skproto_version" not in same.__dict__
    state = est.__getstate__()
    assert state["_skproto_version"] == skproto.__version__
    old = dict(state, _skproto_version="0.0.1")
    with pytest.warns(InconsistentVersionWarning, match=r"\(skproto\) from version 0\.0\.1"):
        loaded = type(est).__new__(type(est))
        loaded.__setstate__(old)
    assert_array_equal(loaded.predict(X), est.predict(X))
    del state["_skproto_version"]  # (pickled before the version was kept)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        type(est).__new__(type(est)).__setstate__(state)
