"""A fitted model served from several threads at once (a web service's use)."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import hold_torch_block
from sklearn.datasets import load_iris, make_classification

from skproto import NearestMeanClassifier, RBFPrototypeClassifier
from skproto._torch.training import torch_threads
from skproto.encoders import TorchEncoder


@pytest.mark.parametrize("method", ["predict_proba", "explain"])
def test_set_params_in_another_thread_does_not_reach_a_call_under_way(monkeypatch, method):
    # a fitted model predicts from its fit until it is fitted again, and
    # _as_fitted's view was to keep other threads' set_params away: but while the
    # parameters were the fit's, the call ran on the estimator itself, and a
    # set_params(metric="cosine") in another thread during it moved a Mahalanobis
    # model's probabilities by 0.47 (a call after it, by 0)
    X, y = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0)
    clf = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    expected = getattr(clf, method)(X[:20])
    inside, changed = threading.Event(), threading.Event()
    real = NearestMeanClassifier._validate_X_predict

    def paused(self, X):  # the call waits, once validated, for the other thread
        out = real(self, X)
        inside.set()
        assert changed.wait(10)
        return out

    monkeypatch.setattr(NearestMeanClassifier, "_validate_X_predict", paused)
    got = []
    serving = threading.Thread(target=lambda: got.append(getattr(clf, method)(X[:20])))
    serving.start()
    assert inside.wait(10)
    clf.set_params(metric="cosine")
    changed.set()
    serving.join()
    if method == "explain":
        got, expected = [got[0].scores], expected.scores
        assert got[0].shape == expected.shape
    np.testing.assert_array_equal(got[0], expected)


@pytest.fixture(scope="module")
def iris_rbf():
    """``(X, a fitted RBFPrototypeClassifier)``, fitted with one thread."""
    X, y = load_iris(return_X_y=True)
    return X, RBFPrototypeClassifier(max_epochs=2, random_state=0).fit(X, y)


def test_a_threads_own_torch_count_survives_predictions_overlapping_another_block(iris_rbf):
    # every prediction block of a thread that overlapped another thread's block
    # (a fit in the background, a model of another n_jobs) restored the count from
    # before the first running block, not the thread's own: a serving thread set
    # to 2 threads was left at the other thread's 4, for good
    X, clf = iris_rbf
    before = torch.get_num_threads()
    inside, done = threading.Event(), threading.Event()

    try:
        torch.set_num_threads(2)
        clf.predict(X)  # alone: the thread keeps its count
        assert torch.get_num_threads() == 2
        t = threading.Thread(target=hold_torch_block, args=(inside, done))
        t.start()
        try:
            assert inside.wait(10)
            for _ in range(2):
                clf.predict(X)
                assert torch.get_num_threads() == 2
        finally:
            done.set()
            t.join()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cached_encodings_are_served_without_listing_the_cache_folder(tmp_path, monkeypatch):
    # every transform through the cache listed every batch file of its folder (one
    # per call that encoded something new): over 6,000 one-row calls a served
    # encoder slowed from 7 ms to 48 ms a call, cache hits (44 ms) included
    module = torch.nn.Linear(4, 2)
    X = np.random.RandomState(0).rand(30, 4).astype(np.float32)
    enc = TorchEncoder(module, memory=tmp_path)
    expected = [enc.transform(X[i : i + 1]) for i in range(len(X))]  # 30 batch files
    listed = []
    real_scandir, real_glob = os.scandir, Path.glob

    def scandir(path="."):
        if str(tmp_path) in str(path):
            listed.append(path)
        return real_scandir(path)

    def glob(self, *args, **kwargs):
        listed.append(self)
        return real_glob(self, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "glob", glob)
    for i in range(len(X)):
        np.testing.assert_array_equal(enc.transform(X[i : i + 1]), expected[i])
    assert listed == []
    # a key it does not know: the folder is read, and another process's entries
    # (here another encoder's) are found there, not encoded again
    Y = np.random.RandomState(1).rand(3, 4).astype(np.float32)
    from_other = TorchEncoder(module, memory=tmp_path).transform(Y)

    def no_encoding(self, model, items):
        raise AssertionError("encoded again")

    monkeypatch.setattr(TorchEncoder, "_encode_block", no_encoding)
    np.testing.assert_array_equal(enc.transform(Y), from_other)
    assert listed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # (fork of a threaded process)
def test_a_fork_while_another_thread_predicts_leaves_the_child_its_thread_counts(iris_rbf):
    # the child inherited the parent's count of open blocks (the other thread's,
    # which never ends there): its threads' first blocks restored, for good, the
    # parent's count from before that block, not the child's own
    X, clf = iris_rbf
    before = torch.get_num_threads()
    inside, done = threading.Event(), threading.Event()

    def other():
        with torch_threads(1):
            inside.set()
            done.wait(10)

    torch.set_num_threads(1)
    t = threading.Thread(target=other)
    t.start()
    try:
        assert inside.wait(10)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report the count a new thread keeps after predicting
            try:
                torch.set_num_threads(3)
                seen = []

                def serve():
                    clf.predict(X)
                    seen.append(torch.get_num_threads())

                w = threading.Thread(target=serve)
                w.start()
                w.join()
                os.write(write, str(seen[0]).encode())
            finally:
                os._exit(0)
        os.close(write)
        got = os.read(read, 16).decode()
        os.close(read)
        os.waitpid(pid, 0)
        assert got == "3"
    finally:
        done.set()
        t.join()
        torch.set_num_threads(before)
