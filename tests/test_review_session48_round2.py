"""Review of the CBC certificate's gradient fix (session 48, second round).

The fix decided in the forward pass, for a unit gradient of ``log z`` and a
headroom of 2**8 below the dtype's largest number, where ``cbc_radius`` passed
a gradient; the gradient that reaches ``z`` in training is ``sigma / L`` times
the hinge's slope over the batch's weight, far below 1, so gradients that the
plain backward held finite (and right) were dropped: a row far from every
component at ``sigma=0.05`` lost its whole gradient, and robust training on
digits with the positive head gave another model than before the fix, where
that trained without a non-finite gradient. Where the denominator of ``z`` was
clamped to the smallest normal float (its factors then never reach the
gradient), the row lost its gradient too. Each test failed on the reviewed code.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
import torch
from helpers import cbc_radius_reference

import skproto.rbf._network as rbf_network
from skproto import RBFPrototypeClassifier
from skproto.robustness.certificates import _overtaking_terms, cbc_radius

#: The bound as before the gradient fix (the same values; its gradient is
#: autograd's, NaN where a backward factor overflows). Its terms are
#: ``_overtaking_terms``' (plain torch), scaled since the fix of subnormal
#: radicands (test_review_session48_certificate.py), as the bound's own.
_plain_cbc_radius = partial(cbc_radius_reference, terms=lambda *args: _overtaking_terms(*args)[:2])


def test_a_row_far_from_every_component_keeps_its_gradient():
    # the positive head, a row 2.25 and 2.3 from two classes' components at
    # sigma=0.05: detections of 3e-20 and 1e-20, so 4 a+ a- is subnormal and the
    # radicand's factor for a unit gradient of log z (4e38) overflows float32; the
    # gradient reaching it is sigma / L = 0.05 of that, which float32 holds. The
    # radius is (2.3 - 2.25) / 2 whatever sigma, so the hinge's gradient is
    # (0.5, -0.5) on the distances and 0 on sigma (the reviewed code: all 0)
    dist = torch.tensor([[2.25, 2.3]], requires_grad=True)
    sigma = torch.tensor(0.05, requires_grad=True)
    d = torch.exp(-dist / sigma)
    args = (torch.eye(2), torch.zeros(2, 2), torch.tensor([0]), sigma, torch.tensor(1.0))
    r = cbc_radius(d, *args)
    assert r.item() == pytest.approx(0.025, rel=1e-4)
    torch.relu(1.0 - r).sum().backward()
    np.testing.assert_allclose(dist.grad.numpy(), [[0.5, -0.5]], rtol=1e-4)
    assert abs(sigma.grad.item()) < 1e-3
    # and the plain backward's, bit for bit, where it is finite
    plain_dist = dist.detach().clone().requires_grad_(True)
    plain_sigma = sigma.detach().clone().requires_grad_(True)
    plain_args = (*args[:3], plain_sigma, args[4])
    plain = _plain_cbc_radius(torch.exp(-plain_dist / plain_sigma), *plain_args)
    torch.relu(1.0 - plain).sum().backward()
    np.testing.assert_array_equal(dist.grad.numpy(), plain_dist.grad.numpy())
    assert sigma.grad.item() == plain_sigma.grad.item()


def test_a_clamped_denominator_keeps_the_gradient_of_the_numerator():
    # the target's only evidence is negative (against a class with no reasoning
    # weights, b = 0.4), its detection underflowed: 2 a- = 0.8 tiny is clamped to
    # tiny, so z = 2 b / tiny and the radius sigma log(z) / L; the clamp passes no
    # gradient to a-, and the gradient of the rest is finite (the reviewed code: 0)
    tiny = torch.finfo(torch.float32).tiny
    sigma = torch.tensor(0.1, requires_grad=True)
    r_minus = torch.tensor([[0.0, 0.4]], requires_grad=True)
    d = torch.exp(-torch.tensor([[200.0]]) / sigma)  # 0
    r = cbc_radius(d, torch.zeros(1, 2), r_minus, torch.tensor([1]), sigma, torch.tensor(1.0))
    log_z = float(np.log(np.float32(0.8) / np.float32(tiny)))
    assert r.item() == pytest.approx(0.1 * log_z, rel=1e-6)
    r.sum().backward()
    assert sigma.grad.item() == pytest.approx(log_z, rel=1e-5)
    # d log z / d b = 1 / b, and b = s_1 - s_0 with s the columns' sums of r-
    np.testing.assert_allclose(r_minus.grad.numpy(), [[-0.25, 0.25]], rtol=1e-5)


def test_robust_training_is_unchanged_where_its_gradient_was_finite(monkeypatch):
    # digits, the positive head at sigma=0.05: a few rows lie far from every
    # component, where the reviewed code dropped gradients that autograd held
    # finite; the plain bound trains here without a non-finite gradient, and the
    # model is the one it trains, bit for bit (the reviewed code: probabilities
    # up to 0.55 apart)
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16.0, y[:600]

    def fit():
        clf = RBFPrototypeClassifier(
            loss="robust", reasoning="positive", sigma=0.05, max_epochs=10, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return clf.fit(X, y).predict_proba(X)

    fixed = fit()
    monkeypatch.setattr(rbf_network, "cbc_radius", _plain_cbc_radius)
    np.testing.assert_array_equal(fixed, fit())
