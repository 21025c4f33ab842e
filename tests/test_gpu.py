"""CUDA training of the torch estimators; skipped where torch sees no GPU.

A model trained on the GPU must predict on a machine without one after
pickling: its fitted state is numpy, and prediction runs on the CPU.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skproto import ProtoClassifier, RBFPrototypeClassifier
from skproto._torch import training as _training

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ESTIMATORS = [
    pytest.param(
        lambda dev: ProtoClassifier(
            n_prototypes_per_class=3, max_epochs=30, random_state=0, device=dev
        ),
        id="proto",
    ),
    pytest.param(
        lambda dev: ProtoClassifier(
            prototype_kind="both",
            projection="linear",
            projection_dim=16,
            max_epochs=30,
            random_state=0,
            device=dev,
        ),
        id="proto-head",
    ),
    pytest.param(
        lambda dev: RBFPrototypeClassifier(
            n_components=20, max_epochs=30, random_state=0, device=dev
        ),
        id="rbf-cbc",
    ),
    pytest.param(
        lambda dev: RBFPrototypeClassifier(
            loss="robust",
            reasoning="nearest",
            n_components=20,
            max_epochs=30,
            random_state=0,
            device=dev,
        ),
        id="rbf-robust",
    ),
]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


_CPU_ONLY_PREDICT = """
import os, pickle, sys
import numpy as np
import torch
assert not torch.cuda.is_available()
clf = pickle.loads(open(sys.argv[1], "rb").read())
X = np.load(sys.argv[2])
np.save(sys.argv[3], clf.predict_proba(X))
"""


@pytest.mark.parametrize("make", ESTIMATORS)
def test_trained_on_gpu_predicts_on_cpu_after_pickling(make, digits, tmp_path):
    X_train, X_test, y_train, y_test = digits
    clf = make("cuda").fit(X_train, y_train)
    assert all(isinstance(v, np.ndarray) for v in clf._state.values())
    proba = clf.predict_proba(X_test)
    (tmp_path / "clf.pkl").write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X_test)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a process that sees no GPU
    subprocess.run(
        [
            sys.executable,
            "-c",
            _CPU_ONLY_PREDICT,
            str(tmp_path / "clf.pkl"),
            str(tmp_path / "X.npy"),
            str(tmp_path / "p.npy"),
        ],
        check=True,
        env=env,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), proba)


@pytest.mark.parametrize("make", ESTIMATORS)
def test_gpu_training_matches_cpu_training_in_accuracy(make, digits):
    X_train, X_test, y_train, y_test = digits
    gpu = make("cuda").fit(X_train, y_train).score(X_test, y_test)
    cpu = make("cpu").fit(X_train, y_train).score(X_test, y_test)
    assert gpu > 0.85
    assert abs(gpu - cpu) < 0.03


def test_auto_device_trains_on_cuda(digits, monkeypatch):
    X_train, _, y_train, _ = digits
    seen = []
    real = _training.resolve_device

    def spy(device, *kinds):
        out = real(device, *kinds)
        seen.append(out.type)
        return out

    monkeypatch.setattr("skproto._torch.estimator.resolve_device", spy)
    ProtoClassifier(max_epochs=2, device="auto", random_state=0).fit(X_train, y_train)
    assert seen and set(seen) == {"cuda"}


def test_a_numbered_gpu_is_accepted(digits):
    # device="cuda:0" (one GPU of several) was refused by the parameter check
    X_train, X_test, y_train, y_test = digits
    clf = ProtoClassifier(max_epochs=2, device="cuda:0", random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.5
