"""Review of the CBC certificate's arithmetic (session 48): subnormal radicands.

``cbc_radius`` formed ``root = sqrt(b^2 + 4 a+ a-)`` from the bound's terms as
they were; where ``4 a+ a-`` (or ``b^2``) fell below the smallest normal float
(with the positive head, target and rival detections around ``exp(-366)`` and
``exp(-380)`` in float64, ``exp(-40)`` and ``exp(-65)`` in float32) rounding to
the subnormals enlarged the root, and the radius exceeded the exact value of
its own bound by up to 0.31 ``sigma / L`` in float64 (0.33 in float32): an
over-claimed certificate. The
bound's ``z*`` is the same for the three terms scaled by any ``s > 0``, and
scaling by a power of two is exact, so each entry's terms are now brought near 1
first. The tests of the over-claim failed on the code before the fix; those of
normal-range inputs pin its values and gradients, bit for bit, to the unscaled
form's (the code before the fix).
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from functools import partial

import numpy as np
import pytest
import torch
from helpers import cbc_radius_reference

from skproto.robustness.certificates import cbc_radius


def _exact_log_z(d, r_plus, r_minus, target, kappa=1.0):
    """``log z*`` of the bound (``sigma = L = 1``) from the detections and
    reasoning weights as given (floats, so exact rationals), in 60 digits;
    ``None`` where no rival can overtake or ``z*`` is 0."""
    with localcontext() as ctx:
        ctx.prec = 60
        tiny = Decimal(float(torch.finfo(d.dtype).tiny))
        k = Decimal(float(kappa))
        dd = [Decimal(float(x)) for x in d.tolist()]
        rp = [[Decimal(float(x)) for x in row] for row in r_plus.tolist()]
        rn = [[Decimal(float(x)) for x in row] for row in r_minus.tolist()]
        n_classes = len(rp[0])
        Dp = [sum(dk * row[c] for dk, row in zip(dd, rp)) for c in range(n_classes)]
        Dn = [sum(dk * row[c] for dk, row in zip(dd, rn)) for c in range(n_classes)]
        Sp = [sum(row[c] for row in rp) for c in range(n_classes)]
        Sn = [sum(row[c] for row in rn) for c in range(n_classes)]
        best = None
        for j in range(n_classes):
            if j == target:
                continue
            a_plus = Dp[target] + k * Dn[j]
            a_minus = Dn[target] + k * Dp[j] + (Sn[target] + k * Sp[j]) * tiny
            b = Sn[target] - k * Sn[j]
            if a_minus == 0:
                continue
            root = (b * b + 4 * a_plus * a_minus).sqrt()
            z = (b + root) / (2 * a_minus) if b >= 0 else 2 * a_plus / (root - b)
            best = z if best is None else min(best, z)
        if best is None or best <= 0:
            return None
        return best.ln()


def _over_claims(dtype, exponents, r_plus, r_minus):
    """Largest excess of the radius over the exact bound, in units of
    ``eps (1 + |bound|)`` of ``dtype``, over rows of detections ``exp(-e)`` with
    ``e`` every pair of ``exponents`` (target 0; rows whose exact ``z*`` lies
    below the smallest normal float, where the radius is clamped, are left out)."""
    pairs = [(e0, e1) for e0 in exponents for e1 in exponents]
    extra = r_plus.shape[0] - 2
    rows = [[e0, e1] + [e1 + 1.0] * extra for e0, e1 in pairs]
    d = torch.exp(-torch.tensor(rows, dtype=torch.float64)).to(dtype)
    one = torch.tensor(1.0, dtype=dtype)
    r_plus, r_minus = r_plus.to(dtype), r_minus.to(dtype)
    target = torch.zeros(len(d), dtype=torch.int64)
    radius = cbc_radius(d, r_plus, r_minus, target, one, one)
    eps, log_tiny = torch.finfo(dtype).eps, math.log(torch.finfo(dtype).tiny)
    worst, checked = -math.inf, 0
    for row, r in zip(d, radius.tolist()):
        exact = _exact_log_z(row, r_plus, r_minus, 0)
        if exact is None or exact <= Decimal(log_tiny) + 1:
            continue
        checked += 1
        excess = (Decimal(r) - exact) / (1 + abs(exact))
        worst = max(worst, float(excess) / eps)
    return worst, checked


@pytest.mark.parametrize(
    ("dtype", "low", "high", "band"),
    [(torch.float64, 300.0, 745.0, (350.0, 376.0)), (torch.float32, 30.0, 104.0, (40.0, 50.0))],
)
def test_the_positive_heads_radius_never_exceeds_its_exact_bound(dtype, low, high, band):
    # one-hot positive reasoning (b = 0, z* = sqrt(a+ / a-)), detections from
    # exp(-low) to exp(-high) and more finely about where 4 a+ a- turns
    # subnormal: the code before the fix claimed up to 0.31 (float64) and 0.33
    # (float32) more than the bound
    exponents = np.union1d(np.linspace(low, high, 90), np.linspace(*band, 50))
    worst, checked = _over_claims(dtype, exponents, torch.eye(2), torch.zeros(2, 2))
    assert checked > 15000
    assert worst <= 8.0


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [(torch.float64, 340.0, 380.0), (torch.float32, 38.0, 52.0)],
)
def test_the_radius_with_mixed_reasoning_never_exceeds_its_exact_bound(dtype, low, high):
    # three components, positive reasoning spread over two classes and negative
    # reasoning that cancels in b (b = 0 again, as the positive head's): the
    # code before the fix claimed up to 0.34 (float64) and 0.012 (float32) more
    r_plus = torch.tensor([[1.0, 0.25], [0.5, 1.0], [0.25, 0.5]], dtype=torch.float64)
    r_minus = torch.tensor([[0.0, 0.5], [0.5, 0.0], [0.0, 0.0]], dtype=torch.float64)
    worst, checked = _over_claims(dtype, np.linspace(low, high, 40), r_plus, r_minus)
    assert checked > 1000
    assert worst <= 8.0


def _unscaled_terms(b, a_plus, a_minus, tiny):
    """``(num, den)`` of ``z*`` as before the fix: from the unscaled terms."""
    radicand = b * b + 4.0 * a_plus * a_minus
    zero = radicand == 0
    root = torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, radicand)))
    upper = b >= 0
    num = torch.where(upper, b + root, 2.0 * a_plus)
    den = torch.where(upper, 2.0 * a_minus, root - b).clamp_min(tiny)
    return num, den


#: The bound as before the fix (its gradient autograd's, which the fixed code
#: keeps where it is finite)
_unscaled_cbc_radius = partial(cbc_radius_reference, terms=_unscaled_terms)


def _normal_range_inputs(dtype, seed, n=2000, n_components=6, n_classes=4):
    """Random detections (``exp(-U(0, 12))``: every term stays normal),
    reasoning weights of mixed scales with zeros, targets and ``kappa``."""
    rng = np.random.default_rng(seed)
    d = np.exp(-rng.uniform(0.0, 12.0, (n, n_components)))
    scale = 10.0 ** rng.uniform(-3.0, 0.0, (n_components, n_classes))
    r_plus = rng.uniform(0.0, 1.0, (n_components, n_classes)) * scale
    r_minus = rng.uniform(0.0, 1.0, (n_components, n_classes)) * (
        rng.uniform(size=(n_components, n_classes)) < 0.4
    )
    target = rng.integers(0, n_classes, n)
    kappa = 1.0 + rng.exponential(0.5, n) * (rng.uniform(size=n) < 0.5)

    def as_tensor(a):
        return torch.tensor(a, dtype=dtype)

    sigma, lipschitz = rng.uniform(0.1, 2.0), rng.uniform(0.5, 3.0)
    return (
        as_tensor(d),
        as_tensor(r_plus),
        as_tensor(r_minus),
        torch.tensor(target),
        as_tensor(sigma),
        as_tensor(lipschitz),
        as_tensor(kappa),
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("with_kappa", [False, True])
def test_normal_range_radii_and_gradients_are_unchanged_bit_for_bit(dtype, seed, with_kappa):
    d, r_plus, r_minus, target, sigma, lipschitz, kappa = _normal_range_inputs(dtype, seed)
    kappa = kappa if with_kappa else None
    with torch.no_grad():
        fixed = cbc_radius(d, r_plus, r_minus, target, sigma, lipschitz, kappa)
        before = _unscaled_cbc_radius(d, r_plus, r_minus, target, sigma, lipschitz, kappa)
    assert torch.isfinite(before).all()
    assert torch.equal(fixed, before)

    grads = []
    for radius_fn in (cbc_radius, _unscaled_cbc_radius):
        leaves = [t.clone().requires_grad_(True) for t in (d, r_plus, r_minus, sigma, lipschitz)]
        ld, lrp, lrn, ls, ll = leaves
        radius = radius_fn(ld, lrp, lrn, target, ls, ll, kappa)
        # a hinge-like weighting, so every row's gradient differs
        weights = torch.linspace(0.5, 1.5, len(radius), dtype=dtype)
        (radius * weights).sum().backward()
        assert torch.equal(radius.detach(), before)
        grads.append([leaf.grad for leaf in leaves])
    for new, old in zip(*grads):
        assert torch.isfinite(old).all()
        assert torch.equal(new, old)
