"""Certified L2 radii of prototype classifiers (torch; training and prediction share them).

Both bounds take the quantities of the forward pass and return a *signed*
radius for a target class: no perturbation of norm below it can make the
target lose; negative where the target does not win. ``slack`` absorbs the
rounding error of the distances the bounds are computed from (see
:func:`distance_rounding_bound`), so a radius computed in floating point never
claims more than the exact one.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bisector_radius", "cbc_radius", "distance_rounding_bound"]


def distance_rounding_bound(
    z_sqnorm: torch.Tensor, u_sqnorm_max: torch.Tensor, n_terms: int
) -> torch.Tensor:
    """Bound on the rounding error of expanded squared distances, per row.

    ``||z||^2 - 2 z.u + ||u||^2`` summed over ``n_terms`` products in the
    dtype of ``z_sqnorm`` is off by at most ``gamma (||z||^2 + ||u||^2)``
    with ``gamma = n eps / (1 - n eps)`` (Higham's bound for dot products);
    doubled for the map ``Omega`` and the sums around it.

    Parameters
    ----------
    z_sqnorm : tensor of shape (n,)
        ``||z||^2`` of each row.
    u_sqnorm_max : tensor of shape ()
        Largest ``||u||^2`` of the prototypes.
    n_terms : int
        Number of products in each dot product (the feature dimension).

    Returns
    -------
    tensor of shape (n,)
        Bound on the absolute error of each row's squared distances.

    Examples
    --------
    >>> import torch
    >>> from skproto.robustness.certificates import distance_rounding_bound
    >>> z, u = torch.tensor([[3.0, 4.0]]), torch.tensor([[3.001, 4.001]])
    >>> bound = distance_rounding_bound((z * z).sum(1), (u * u).sum(), n_terms=2)
    >>> d2 = (z * z).sum(1) - 2.0 * (z @ u.T)[:, 0] + (u * u).sum()  # expanded, in float32
    >>> exact = ((z.double() - u.double()) ** 2).sum(1)
    >>> bool((d2 - exact).abs() <= bound)
    True
    """
    eps = torch.finfo(z_sqnorm.dtype).eps
    gamma = 2.0 * (n_terms + 4) * eps / (1.0 - (n_terms + 4) * eps)
    return gamma * (z_sqnorm + u_sqnorm_max)


def cbc_radius(
    d: torch.Tensor,
    r_plus: torch.Tensor,
    r_minus: torch.Tensor,
    target: torch.Tensor,
    sigma: torch.Tensor,
    lipschitz: torch.Tensor,
    kappa: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stable-CBC bound (Saralajew et al., AAAI 2025, Theorem 1), (n,).

    ``d`` are the detections ``exp(-dist / sigma)`` (n, K); a perturbation of
    norm ``eps`` moves every distance by at most ``L eps`` (``L`` =
    ``lipschitz``), so with ``z = exp(L eps / sigma)`` every detection stays in
    ``[d / z, d z]``, and ``p_i - p_j >= A+ / z - A- z + b`` stays positive for
    ``z < z*_j = (b + sqrt(b^2 + 4 A+ A-)) / (2 A-)``. A detection of 0 (it
    may have underflowed) counts as up to the smallest normal float, so the
    radius stays a valid bound far from every component.

    Parameters
    ----------
    d : tensor of shape (n, K)
        Detections ``exp(-dist / sigma)``, in [0, 1].
    r_plus : tensor of shape (K, n_classes)
        Positive reasoning weights.
    r_minus : tensor of shape (K, n_classes)
        Negative reasoning weights.
    target : tensor of shape (n,)
        Class code (int64) of the target class of each row.
    sigma : tensor of shape ()
        Bandwidth of the detections.
    lipschitz : tensor of shape ()
        Lipschitz constant ``L`` of the distances (the norm of ``Omega``, or 1).
    kappa : tensor of shape (n,), default=None
        A factor ``>= 1`` by which the target's score must stay ahead within
        the radius, ``p_t >= kappa p_j`` (so that scores which round to a tie
        cannot flip the prediction): ``p_t - kappa p_j`` has the same form, with
        ``kappa`` on class ``j``'s terms. None: 1.

    Returns
    -------
    tensor of shape (n,)
        Signed certified radius of each row (negative where the target does not win).

    Examples
    --------
    >>> import torch
    >>> from skproto.robustness.certificates import cbc_radius
    >>> d = torch.exp(-torch.tensor([[1.0, 3.0], [1.0, 3.0]]))  # distances 1 and 3, sigma 1
    >>> one, target = torch.tensor(1.0), torch.tensor([0, 1])
    >>> radius = cbc_radius(d, torch.eye(2), torch.zeros(2, 2), target, one, one)
    >>> [round(v, 4) for v in radius.tolist()]  # a move of 1 makes both distances 2
    [1.0, -1.0]
    """
    n_classes = r_plus.shape[1]
    Dp, Dn = d @ r_plus, d @ r_minus  # (n, C)
    rows = torch.arange(len(d), device=d.device)
    k = torch.ones_like(d[:, :1]) if kappa is None else kappa[:, None]
    a_plus = Dp[rows, target][:, None] + k * Dn  # terms favouring the target over class j
    a_minus = Dn[rows, target][:, None] + k * Dp  # terms favouring j
    s = r_minus.sum(0)
    b = s[target][:, None] - k * s[None, :]
    tiny = torch.finfo(d.dtype).tiny
    # a detection of 0 may have underflowed (far from its component): it counts as
    # up to the smallest normal float, which only enlarges a- (a smaller, still
    # valid radius; exactly 0, a- made the first form 0 / tiny: a radius of -708).
    # a- is structurally 0 where no reasoning weight can favour class j.
    ones = torch.ones_like(d[:1])
    Sp, Sn = ones @ r_plus, ones @ r_minus  # (1, C): a- with every detection at 1
    a_minus_any = Sn[0, target][:, None] + k * Sp
    a_minus = a_minus + a_minus_any * tiny
    # structurally nothing favours class j and the target keeps a lead: never overtaken
    never = (a_minus_any <= 0) & (b >= 0) & ((a_plus > 0) | (b > 0))
    own = torch.nn.functional.one_hot(target, n_classes) > 0
    if torch.is_grad_enabled() and any(t.requires_grad for t in (b, a_plus, a_minus)):
        # the gradient decided in the backward, at the gradient that reaches z (a
        # rival far from the row, its detections below about 1e-26 in float32, made
        # z's backward overflow: NaN, and loss="robust" with reasoning="positive"
        # at sigma=0.01 on two blobs 4 apart "diverged" whatever the learning rate)
        z = _OvertakingBound.apply(b, a_plus, a_minus, tiny)
    else:
        num, den, _ = _overtaking_terms(b, a_plus, a_minus, tiny)
        z = num / den
    z = torch.where(own | never, torch.full_like(z, float("inf")), z)
    z_min = z.min(1).values.clamp_min(tiny)
    # no rival can ever win (every other class without reasoning weights: the
    # positive head's first class of a stream): an infinite radius, whose
    # gradient through sigma and lipschitz (log(inf) / L) was 0 * inf = NaN, so
    # loss="robust" diverged on a first partial_fit of one class; taken as 0
    finite = torch.isfinite(z_min)
    radius = sigma * torch.log(torch.where(finite, z_min, 1.0)) / lipschitz
    return torch.where(finite, radius, z_min)


def _power_of_two(k, dtype):
    """``2**k`` for an integer tensor ``0 <= k < 2**(exponent bits - 1) - 1``, in
    ``dtype``, exactly (its bits; ``torch.ldexp`` forms ``2**k`` in the default
    dtype, where it overflows)."""
    if dtype == torch.float64:
        return ((k.to(torch.int64) + 1023) << 52).view(torch.float64)
    if dtype == torch.float32:
        return ((k.to(torch.int32) + 127) << 23).view(torch.float32)
    return torch.exp2(k.to(torch.float64)).to(dtype)  # (16-bit floats: k <= 66, exact)


def _upscale(b, a_plus, a_minus, tiny):
    """Two powers of two (each of the inputs' shape) whose product brings the
    largest of ``|b|, a+, a-`` of each entry into ``[1/2, 1)``; 1 where it is at
    least 1/2 (the entries are only ever scaled up, so no product overflows and
    none underflows more than before)."""
    dtype = b.dtype
    largest = torch.maximum(torch.maximum(b.abs(), a_plus.abs()), a_minus.abs())
    _, exponent = torch.frexp(largest)  # largest = m 2**exponent, m in [1/2, 1)
    # (the least subnormal is 2**-1074 in float64, 2**-149 in float32)
    most = -math.frexp(tiny * torch.finfo(dtype).eps)[1]
    up = torch.where(torch.isfinite(largest), -exponent, 0).clamp(0, most)
    half = torch.div(up, 2, rounding_mode="floor")
    return _power_of_two(half, dtype), _power_of_two(up - half, dtype)


def _overtaking_terms(b, a_plus, a_minus, tiny):
    """``(numerator, denominator, root)`` of :func:`cbc_radius`'s ``z*``, each of
    the inputs' shape.

    ``z* = (b + root) / (2 a-) = 2 a+ / (root - b)`` with ``root = sqrt(b^2 + 4 a+
    a-)``, each form where it is stable (the first for ``b >= 0``). The square
    root's gradient is infinite at 0, and 0 times it NaN even where the root is
    not used: a radicand of 0 (a rival with no reasoning weight at all, a CBC
    class without training rows: ``r+ = r- = 0``, so ``b = a- = 0`` with
    positive reasoning) made ``loss="robust"`` diverge; its gradient there is
    taken as 0, the value is unchanged. The numerator and denominator are
    chosen before the one division, so that the form not used adds no
    infinite factor to the gradient.

    ``z*`` is the same for ``(s b, s a+, s a-)`` with any ``s > 0``, so each
    entry's three are first scaled by a power of two (exact) that brings the
    largest into ``[1/2, 1)`` (where it is below), and ``num``, ``den`` and
    ``root`` are those of the scaled entry (``den``'s floor ``tiny`` scaled
    with it). Where no step of the unscaled form, or of its backward, leaves
    the normal range, the quotient and its gradient are the same, bit for bit;
    below it (``b^2`` or ``4 a+ a-`` under the smallest normal float: with the
    positive head, target and rival detections of ``exp(-366)`` and
    ``exp(-380)`` in float64, ``exp(-40)`` and ``exp(-65)`` in float32) the
    unscaled form's rounding to the subnormals enlarged the root, and the
    radius by up to 0.31 ``sigma / L``: a certificate above its own bound.
    """
    high, low = _upscale(b.detach(), a_plus.detach(), a_minus.detach(), tiny)
    b, a_plus, a_minus = (t * high * low for t in (b, a_plus, a_minus))
    radicand = b * b + 4.0 * a_plus * a_minus
    zero = radicand == 0  # (a NaN still reads NaN)
    root = torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, radicand)))
    upper = b >= 0
    num = torch.where(upper, b + root, 2.0 * a_plus)
    den = torch.where(upper, 2.0 * a_minus, root - b).clamp_min(tiny * high * low)
    return num, den, root


class _OvertakingBound(torch.autograd.Function):
    """``z* = num / den`` of :func:`_overtaking_terms`, (n, C), whose gradient is
    the one autograd forms for it wherever that is finite, bit for bit.

    Elsewhere (a rival far from the row: ``a-`` near the smallest normal float,
    where ``z / den`` or the radicand's factor overflows, and times the 0
    gradient of an entry that is not the least ``z`` that was NaN) it is the
    gradient through ``log z = log(num) - log(den)`` times ``z``, formed in
    float64 for a float32 ``z`` (its factors ``1 / den`` and ``1 / root``
    overflow float32 there, not float64), and 0 where that too is not finite
    (a gradient beyond the dtype's range; ``sigma`` then keeps only that of
    its own factor in ``sigma log z / L``). Decided in the backward, at the
    gradient that actually reaches ``z``: a test in the forward pass, for a
    unit gradient of ``log z`` with a headroom of 2**8, dropped gradients
    that the plain backward held finite and right (``sigma / L`` and the
    batch mean leave it that room and more): robust training on digits with
    the positive head at sigma=0.05 gave another model.
    """

    @staticmethod
    def forward(ctx, b, a_plus, a_minus, tiny):
        ctx.save_for_backward(b, a_plus, a_minus)
        ctx.tiny = tiny
        num, den, _ = _overtaking_terms(b, a_plus, a_minus, tiny)
        return num / den

    @staticmethod
    def backward(ctx, grad):
        saved, tiny = ctx.saved_tensors, ctx.tiny
        with torch.enable_grad():
            inputs = [t.detach().requires_grad_(True) for t in saved]
            num, den, _ = _overtaking_terms(*inputs, tiny)
            z = num / den
            plain = torch.autograd.grad(z, inputs, grad)
        ok = torch.isfinite(plain[0]) & torch.isfinite(plain[1]) & torch.isfinite(plain[2])
        if bool(ok.all()):
            return (*plain, None)
        # the rest through log z, in float64 for float32 (zeros where ok: their
        # inputs are replaced by a bound of z = 1, whose backward is finite)
        wide = torch.float64 if grad.dtype == torch.float32 else grad.dtype
        keep = ~ok
        with torch.enable_grad():
            b, a_plus, a_minus = (
                torch.where(keep, t.detach(), torch.full_like(t, fill)).to(wide)
                for t, fill in zip(saved, (0.0, 1.0, 1.0))
            )
            for t in (b, a_plus, a_minus):
                t.requires_grad_(True)
            num, den, _ = _overtaking_terms(b, a_plus, a_minus, tiny)
            log_z = torch.log(num) - torch.log(den)
            # dz = z d(log z): the gradient reaching log z is grad * z (0 where ok)
            upstream = torch.where(keep, grad.to(wide) * z.detach().to(wide), 0.0)
            upstream = torch.where(torch.isfinite(upstream), upstream, 0.0)
            logged = torch.autograd.grad(log_z, (b, a_plus, a_minus), upstream)
        out = []
        for p, g in zip(plain, logged):
            g = g.to(grad.dtype)
            good = keep & torch.isfinite(g)
            out.append(torch.where(ok, p, torch.where(good, g, torch.zeros_like(g))))
        return (*out, None)


def bisector_radius(
    d2: torch.Tensor,
    gap: torch.Tensor,
    own_index: torch.Tensor,
    labels: torch.Tensor,
    target: torch.Tensor,
    lipschitz: torch.Tensor,
    slack: torch.Tensor | None = None,
    gap_rows: torch.Tensor | None = None,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Nearest-prototype bound: ``max_{i own} min_{j other} (d2_j - d2_i) / (2 gap_ij L)``, (n,).

    ``d2`` (n, K) are squared distances, ``gap`` (K, K) the distances between
    prototypes, ``own_index`` (n_classes, m) each class's prototypes (padded
    with -1) and ``labels`` (K,) each prototype's class. Works on the target
    class's own prototypes only, (n, m, K), so robust training stays cheap.
    ``slack`` (n,) bounds the rounding error of every ``d2`` entry of a row.
    ``gap_rows`` (K,): the row of ``gap`` that holds each prototype's gaps,
    when ``gap`` holds only the rows of the target classes' prototypes.

    Parameters
    ----------
    d2 : tensor of shape (n, K)
        Squared distances of the rows to the prototypes.
    gap : tensor of shape (K, K) or (n_needed, K)
        Distances between prototypes (or the rows of those ``gap_rows`` points to).
    own_index : tensor of shape (n_classes, m)
        Indices of each class's prototypes, padded with -1.
    labels : tensor of shape (K,)
        Class code of each prototype.
    target : tensor of shape (n,)
        Class code (int64) of the target class of each row.
    lipschitz : tensor of shape ()
        Lipschitz constant ``L`` of the distances.
    slack : tensor of shape (n,), default=None
        Bound on the rounding error of each row's ``d2`` entries; None: none.
    gap_rows : tensor of shape (K,), default=None
        Row of ``gap`` of each prototype (-1: absent); None: ``gap`` is (K, K).
    margin : tensor of shape (n,), default=None
        A distance ``e`` by which an own prototype must stay nearer than every
        rival within the radius, ``d_j - d_i >= e`` (so that scores which
        round to a tie cannot flip the prediction); the bound becomes
        ``(d2_j - d2_i - 2 e d_i - e^2) / (2 (gap_ij + e) L)``. None: 0.

    Returns
    -------
    tensor of shape (n,)
        Signed certified radius of each row (``inf`` without a rival class).

    Examples
    --------
    >>> import torch
    >>> from skproto.robustness.certificates import bisector_radius
    >>> d2 = torch.tensor([[1.0, 9.0], [1.0, 9.0]])  # a row at 1; prototypes at 0 and 4
    >>> gap, labels = torch.tensor([[0.0, 4.0], [4.0, 0.0]]), torch.tensor([0, 1])
    >>> own_index, target = torch.tensor([[0], [1]]), torch.tensor([0, 1])
    >>> bisector_radius(d2, gap, own_index, labels, target, torch.tensor(1.0)).tolist()
    [1.0, -1.0]
    """
    idx_all = own_index[target]  # (n, m), -1 = padding
    valid = idx_all >= 0
    idx = idx_all.clamp_min(0)
    d2_own = d2.gather(1, idx)  # (n, m)
    num = d2[:, None, :] - d2_own[:, :, None]  # [n, i, j] = d2_j - d2_i
    if slack is not None:
        num = num - 2.0 * slack[:, None, None]
    g = gap[idx if gap_rows is None else gap_rows[idx]]  # (n, m, K)
    if margin is not None:
        # d_j^2 - d_i^2 = 2 g s (s: the signed distance to the bisector) and a move
        # of r changes s by at most L r and d_i by at most L r: d_j - d_i >= e holds
        # while 2 g (s - L r) >= 2 e (d_i + L r) + e^2
        e = margin[:, None, None]
        num = num - 2.0 * e * torch.sqrt(d2_own)[:, :, None] - e * e
        g = g + e
    tiny = torch.finfo(d2.dtype).tiny
    ratio = torch.where(g > 0, num / (2.0 * g).clamp_min(tiny), torch.zeros_like(num))
    same = (labels[None, :] == target[:, None])[:, None, :]  # j of the target class
    ratio = ratio.masked_fill(same, float("inf"))
    inner = ratio.min(2).values.masked_fill(~valid, -float("inf"))
    best = inner.max(1).values
    # no rival class (a stream's first class): an infinite radius, whose
    # gradient through lipschitz (inf / L) would be 0 * inf = NaN in training
    finite = torch.isfinite(best)
    return torch.where(finite, torch.where(finite, best, 0.0) / lipschitz, best)
