"""Assertions shared by the estimator test modules."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skproto._base import BasePrototypeClassifier

#: CLINC150's frozen MiniLM embeddings beside the checkout (CI has them); the
#: tests that need them skip where they are absent
CLINC150_NPZ = Path(
    os.environ.get(
        "SKPROTO_CLINC150_NPZ",
        Path(__file__).resolve().parents[2] / "shared/data/clinc150/minilm_l6_v2.npz",
    )
)


def examples(n: int) -> int:
    """Example budget of a slow property test: ``n``, or 10x under the thorough profile."""
    return 10 * n if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else n


def assert_explain_faithful(clf, X, ex, *, atol):
    """``ex`` (an explanation of X) adds up to decision_function; predict is argmax proba."""
    dec = clf.decision_function(X)
    scores = ex.scores
    if dec.ndim == 1:  # binary: decision_function is score_1 - score_0
        scores = scores[:, 1] - scores[:, 0]
    np.testing.assert_allclose(scores, dec, rtol=1e-9, atol=atol)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[clf.predict_proba(X).argmax(1)])


def record_training(monkeypatch, module) -> dict:
    """Replace ``module.train`` by a spy; the returned dict gets the ``X``, ``T``, ``w`` it saw."""
    seen: dict = {}

    def spy(net, params, loss, Xb, Tb, wb, config, rng, **kw):
        seen.update(X=Xb, T=Tb, w=wb)
        return kw.get("history")

    monkeypatch.setattr(module, "train", spy)
    return seen


def record_splits(monkeypatch, module) -> list:
    """Wrap ``module.train`` (training goes on); the list gets each call's
    ``(X, X_val)``: the rows it trained on and the rows it held out."""
    calls: list = []
    original = module.train

    def spy(net, params, loss, X, T, w, config, rng, **kwargs):
        calls.append((np.asarray(X), kwargs.get("X_val")))
        return original(net, params, loss, X, T, w, config, rng, **kwargs)

    monkeypatch.setattr(module, "train", spy)
    return calls


def few_shot_blobs(n_classes: int, shots: int, n_features: int = 32, n_test: int = 10):
    """``(X, y, X_test, y_test)``: Gaussian classes (unit centres, noise 1.2) with
    ``shots`` training rows and ``n_test`` test rows each (seed 0)."""
    rng = np.random.RandomState(0)
    centers = rng.normal(size=(n_classes, n_features))
    y = np.repeat(np.arange(n_classes), shots)
    X = centers[y] + 1.2 * rng.normal(size=(len(y), n_features))
    y_test = np.repeat(np.arange(n_classes), n_test)
    X_test = centers[y_test] + 1.2 * rng.normal(size=(len(y_test), n_features))
    return X, y, X_test, y_test


def catch_warnings_entered_by_skproto(monkeypatch) -> list:
    """Every ``warnings.catch_warnings`` that skproto's own code enters."""
    import sys
    import warnings

    entered = []
    real = warnings.catch_warnings

    class Spy(real):
        def __enter__(self):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("skproto"):
                entered.append(caller)
            return super().__enter__()

    monkeypatch.setattr(warnings, "catch_warnings", Spy)
    return entered


def relative_mahalanobis_reference(clf, X, temperature: float) -> np.ndarray:
    """The relative Mahalanobis ``score_samples`` of a shared-covariance NearestMean
    model, from its public attributes and an explicit inverse: ``logsumexp`` of the
    class scores plus ``delta_0 / 2T``, ``delta_0`` under the shared covariance plus
    ``(1 - a)`` times the count-weighted between-class covariance."""
    from scipy.special import logsumexp

    n = clf.class_count_
    mean = n @ clf.means_ / n.sum()
    dev = clf.means_ - mean
    between = (dev * (n / n.sum())[:, None]).T @ dev
    background = clf.covariance_ + (1.0 - clf.covariance_shrinkage_) * between
    Z = X - mean
    delta0 = np.einsum("ij,ij->i", Z @ np.linalg.inv(background), Z)
    return logsumexp(clf.decision_function(X), axis=1) + delta0 / (2 * temperature)


def hold_torch_block(inside, done) -> None:
    """Another thread's work, for thread-count tests: this thread's own torch count
    set to 4, then a skproto block of 3 threads held open until ``done`` is set
    (``inside`` is set once in it)."""
    import torch

    from skproto._torch.training import torch_threads

    torch.get_num_threads()
    torch.set_num_threads(4)
    with torch_threads(3):
        inside.set()
        done.wait(10)


class HandBuilt(BasePrototypeClassifier):
    """Similarities are the inputs themselves (column k of X is s_k); scores are
    ``X @ W``: a model whose metrics and explanations are worked out by hand."""

    def __init__(self, W=None, labels=None):
        self.W = W
        self.labels = labels

    def fit(self, X, y=None):
        self.classes_ = np.array(["a", "b"])
        self.prototypes_ = np.eye(len(self.W))
        self.prototype_labels_ = np.asarray(self.labels)
        self.n_features_in_ = len(self.W)
        return self

    def _pairwise(self, X):
        return X

    def _activation(self, P):
        return P

    def _head(self):
        return np.asarray(self.W, dtype=float), np.zeros(2)


def cbc_radius_reference(d, r_plus, r_minus, target, sigma, lipschitz, kappa=None, *, terms):
    """:func:`skproto.robustness.certificates.cbc_radius` written out in plain torch
    (autograd's gradient, no decision of its own), with ``z* = num / den`` from
    ``terms(b, a_plus, a_minus, tiny) -> (num, den)``: the references the
    certificate's tests compare it with (the bound before a fix, or its terms)."""
    import torch

    n_classes = r_plus.shape[1]
    Dp, Dn = d @ r_plus, d @ r_minus
    rows = torch.arange(len(d))
    k = torch.ones_like(d[:, :1]) if kappa is None else kappa[:, None]
    a_plus = Dp[rows, target][:, None] + k * Dn
    a_minus = Dn[rows, target][:, None] + k * Dp
    s = r_minus.sum(0)
    b = s[target][:, None] - k * s[None, :]
    tiny = torch.finfo(d.dtype).tiny
    ones = torch.ones_like(d[:1])
    Sp, Sn = ones @ r_plus, ones @ r_minus
    a_minus_any = Sn[0, target][:, None] + k * Sp
    a_minus = a_minus + a_minus_any * tiny
    num, den = terms(b, a_plus, a_minus, tiny)
    z = num / den
    never = (a_minus_any <= 0) & (b >= 0) & ((a_plus > 0) | (b > 0))
    own = torch.nn.functional.one_hot(target, n_classes) > 0
    z = torch.where(own | never, torch.full_like(z, float("inf")), z)
    z_min = z.min(1).values.clamp_min(tiny)
    finite = torch.isfinite(z_min)
    radius = sigma * torch.log(torch.where(finite, z_min, 1.0)) / lipschitz
    return torch.where(finite, radius, z_min)


def assert_runs_in_fresh_process(code: str, timeout: float = 300) -> None:
    """Run ``code`` in a new Python process (one thread) and check that it exits
    cleanly and prints "ok" last: for what a process does once (torch's
    warnings, its default dtype set before skproto is imported)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


#: What a memory probe's code starts with: the process's resident and peak-resident
#: sizes (MiB) from /proc/self/status, ``rss(key)``, and ``reset_peak()``
MEMORY_PROBE_HEAD = """
import json, re, warnings
import numpy as np
warnings.simplefilter("ignore")

def rss(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024

def reset_peak():
    open("/proc/self/clear_refs", "w").write("5")
"""


def count_scored_rows(monkeypatch) -> list:
    """The number of held-out rows each of NearestMeanClassifier's scoring passes
    gets (its temperature's), appended to the list returned."""
    from skproto import NearestMeanClassifier

    counts = []
    original = NearestMeanClassifier._add_held_out

    def spy(self, losses, model, X, codes, w):
        counts.append(len(X))
        return original(self, losses, model, X, codes, w)

    monkeypatch.setattr(NearestMeanClassifier, "_add_held_out", spy)
    return counts


def peak_extra_mib(code: str, timeout: float = 600) -> dict:
    """Run ``code`` in a fresh process; it prints a JSON line last, such as its
    peak-RSS growth in MiB. Skips where Linux's ``/proc/self/clear_refs`` cannot
    reset the peak-RSS mark."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak-RSS mark")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
