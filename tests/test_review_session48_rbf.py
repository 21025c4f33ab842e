"""Review of the RBF certificate code (session 48): the CBC bound's gradient.

``cbc_radius`` divided by ``2 a-`` (the detections favouring a rival) where a
rival's detections had (nearly) underflowed: the backward's factor ``z / den``
overflowed float32, and times the 0 gradient of an entry that was not the least
``z`` (or of a row whose hinge was 0) it was NaN. Each test failed on the code
before the fix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from skproto import RBFPrototypeClassifier
from skproto.robustness.certificates import cbc_radius


def _positive_head_radius(rival_distance: float, margin: float):
    """The positive head's radius of a row 0.5 from its class's component and
    ``rival_distance`` from the rival's (sigma 1), and the hinge's gradients."""
    dist = torch.tensor([[0.5, rival_distance]], requires_grad=True)
    sigma = torch.tensor(1.0, requires_grad=True)
    d = torch.exp(-dist / sigma)
    r = cbc_radius(d, torch.eye(2), torch.zeros(2, 2), torch.tensor([0]), sigma, torch.tensor(1.0))
    torch.relu(margin - r).sum().backward()
    return r.detach(), dist.grad, sigma.grad


@pytest.mark.parametrize("rival_distance", [69.0, 87.0, 100.0, 200.0])
@pytest.mark.parametrize("margin", [1.0, 1000.0])
def test_cbc_radius_gradient_is_finite_where_a_far_rival_underflows(rival_distance, margin):
    # detections of the rival of 1e-30, 1.6e-38 (about float32's smallest normal),
    # 3.7e-44 (subnormal) and 0: the gradient was NaN at each, the hinge inactive
    # (margin 1) or not (margin 1000)
    r, g_dist, g_sigma = _positive_head_radius(rival_distance, margin)
    assert torch.isfinite(r).all() and r.item() > 30.0
    assert torch.isfinite(g_dist).all()
    assert torch.isfinite(g_sigma)


def test_cbc_radius_of_a_far_rival_keeps_its_value_with_a_zero_gradient():
    # the positive head's bound: z = sqrt(a+ / a-), a radius of (69 - 0.5) / 2
    r, g_dist, _ = _positive_head_radius(69.0, margin=1.0)
    assert r.item() == pytest.approx(34.25, rel=1e-4)
    np.testing.assert_array_equal(g_dist.numpy(), 0.0)  # the hinge is 0 there


def test_cbc_radius_gradient_of_a_far_rival_is_that_of_its_log():
    # with the hinge active, the gradient is taken through log z = log(num) - log(den),
    # which float32 holds where dz / da- (about 4e44) overflowed: the radius is
    # (dist_rival - dist_own) / 2 whatever sigma, so the hinge's gradient is
    # (0.5, -0.5) on the distances and 0 on sigma
    _, g_dist, g_sigma = _positive_head_radius(69.0, margin=1000.0)
    np.testing.assert_allclose(g_dist.numpy(), [[0.5, -0.5]], rtol=1e-5)
    assert abs(g_sigma.item()) < 1e-4


def _random_case(gen: torch.Generator, trial: int):
    n = 4
    K = int(torch.randint(1, 6, (), generator=gen))
    C = int(torch.randint(1, 4, (), generator=gen))
    scale = (1.0, 10.0, 50.0, 100.0, 800.0)[trial % 5]
    dist = torch.rand(n, K, generator=gen) * scale
    sigma = float(torch.rand((), generator=gen)) * 3 + 0.01
    rp, rn = torch.rand(K, C, generator=gen), torch.rand(K, C, generator=gen)
    if trial % 3 == 0:  # the positive head
        rn = torch.zeros_like(rn)
    if trial % 4 == 1:
        rp = torch.where(torch.rand(K, C, generator=gen) < 0.5, torch.zeros_like(rp), rp)
    if trial % 7 == 3:
        rp = torch.zeros_like(rp)
    target = torch.randint(0, C, (n,), generator=gen)
    lipschitz = 1.0 + float(torch.rand((), generator=gen))
    margin = (0.0, 0.5, 5.0, 100.0)[trial % 4]
    return dist, sigma, rp, rn, target, lipschitz, margin


def test_cbc_radius_gradient_is_finite_on_random_float32_cases():
    # rows near and far from components of several classes, positive and
    # positive-negative reasoning, the hinge active or not (the code before the fix:
    # a non-finite gradient in about 8 % of such cases)
    gen = torch.Generator().manual_seed(0)
    bad = []
    for trial in range(400):
        dist, sigma, rp, rn, target, lipschitz, margin = _random_case(gen, trial)
        leaves = [
            dist.requires_grad_(True),
            torch.tensor(sigma, requires_grad=True),
            rp.requires_grad_(True),
            rn.requires_grad_(True),
            torch.tensor(lipschitz, requires_grad=True),
        ]
        d = torch.exp(-leaves[0] / leaves[1])
        r = cbc_radius(d, leaves[2], leaves[3], target, leaves[1], leaves[4])
        with torch.no_grad():  # the values do not depend on whether a gradient is taken
            r_plain = cbc_radius(d, leaves[2], leaves[3], target, leaves[1], leaves[4])
        np.testing.assert_array_equal(r.detach().numpy(), r_plain.numpy())
        loss = torch.relu(margin - r)
        loss = torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss)).sum()
        loss.backward()
        if not all(bool(torch.isfinite(leaf.grad).all()) for leaf in leaves):
            bad.append(trial)
    assert not bad, f"non-finite gradients in trials {bad[:10]} ({len(bad)} of 400)"


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_robust_positive_head_trains_where_rivals_are_not_detected(learn_sigma):
    # two blobs 4 apart at sigma=0.01, which _check_detections accepts for the
    # positive head (it keeps such rows apart): every rival detection underflows,
    # and training "diverged" in its second epoch whatever the learning rate
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (10, 2)), rng.normal(4, 1, (10, 2))])
    y = np.repeat([0, 1], 10)
    clf = RBFPrototypeClassifier(
        loss="robust",
        reasoning="positive",
        sigma=0.01,
        learn_sigma=learn_sigma,
        max_epochs=5,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.fit(X, y)
    assert np.isfinite(clf.prototypes_).all()
    assert clf.score(X, y) == 1.0
    radius = clf.certified_radius(X, y)
    assert np.all(radius > 0)
