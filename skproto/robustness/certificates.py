"""Certified L2 radii of prototype classifiers (torch; training and prediction share them).

Both bounds take the quantities of the forward pass and return a *signed*
radius for a target class: no perturbation of norm below it can make the
target lose; negative where the target does not win. ``slack`` absorbs the
rounding error of the distances the bounds are computed from (see
:func:`distance_rounding_bound`), so a radius computed in floating point never
claims more than the exact one.
"""

from __future__ import annotations

import torch

__all__ = ["bisector_radius", "cbc_radius", "distance_rounding_bound"]

#: :func:`cbc_radius` passes a gradient only where its backward's factors, for a
#: unit gradient of ``log z``, stay below the dtype's largest number / 2**this (room
#: for the loss's own factor, sigma / L times the hinge's slope, and the sum over a
#: batch's rows)
_HEADROOM = 8


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
    num, den, root = _overtaking_terms(b, a_plus, a_minus, tiny)
    z = num / den
    live = None
    if z.requires_grad:
        # the gradient only where its backward stays inside the dtype's range
        # (_HEADROOM): a rival far from the row (a- below about 1e-26 in float32, its
        # detections underflowing) has a z / den beyond float32's range, and times
        # the 0 gradient of an entry that is not the least z, or of a row whose hinge
        # is 0, that was NaN: loss="robust" with reasoning="positive" at sigma=0.01
        # on two blobs 4 apart "diverged" whatever the learning rate. There the
        # gradient is taken as 0: those entries' inputs are replaced by harmless
        # values, not only their result (a where() passes the NaN of a discarded
        # branch); every value is the one computed here
        ok = _finite_backward(z.detach(), den.detach(), root.detach(), b, a_plus, a_minus, tiny)
        if not bool(ok.all()):
            live = ok & ~(own | never)
            kept = _overtaking_terms(*_harmless(live, b, a_plus, a_minus), tiny)
            z = torch.where(live, kept[0] / kept[1], z.detach())
    z = torch.where(own | never, torch.full_like(z, float("inf")), z)
    least, j = z.min(1)
    z_min = least.clamp_min(tiny)
    # no rival can ever win (every other class without reasoning weights: the
    # positive head's first class of a stream): an infinite radius, whose
    # gradient through sigma and lipschitz (log(inf) / L) was 0 * inf = NaN, so
    # loss="robust" diverged on a first partial_fit of one class; taken as 0
    finite = torch.isfinite(z_min)
    radius = sigma * torch.log(torch.where(finite, z_min, 1.0)) / lipschitz
    if live is not None:
        # a row whose least z has no gradient above: its log z = log(num) - log(den)
        # has one, in range where z's own backward was not (a rival of a- 1e-30:
        # d log z / d a- = -1 / (2 a-), where dz / da- overflowed); where that too is
        # out of range, none, through sigma either (sigma log z / L alone, without
        # z's own dependence on sigma, is not its gradient: 56 where the whole one
        # was 0.41, on a misclassified row)
        frozen = ~live.gather(1, j[:, None])[:, 0] & (least >= tiny) & finite
        at = [t.gather(1, j[:, None])[:, 0] for t in (b, a_plus, a_minus)]
        n_, d_, r_ = _overtaking_terms(*(t.detach() for t in at), tiny)
        logged = frozen & _finite_log_backward(n_, d_, r_, *at)
        n_, d_, _ = _overtaking_terms(*_harmless(logged, *at), tiny)
        step = torch.log(n_) - torch.log(d_)
        log_z = torch.log(torch.where(finite, z_min, 1.0)).detach() + (step - step.detach())
        radius = torch.where(
            logged, sigma * log_z / lipschitz, torch.where(frozen, radius.detach(), radius)
        )
    return torch.where(finite, radius, z_min)


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
    """
    radicand = b * b + 4.0 * a_plus * a_minus
    zero = radicand == 0  # (a NaN still reads NaN)
    root = torch.where(zero, 0.0, torch.sqrt(torch.where(zero, 1.0, radicand)))
    upper = b >= 0
    num = torch.where(upper, b + root, 2.0 * a_plus)
    den = torch.where(upper, 2.0 * a_minus, root - b).clamp_min(tiny)
    return num, den, root


@torch.no_grad()
def _finite_backward(z, den, root, b, a_plus, a_minus, tiny):
    """Where the backward of ``num / den`` (:func:`_overtaking_terms`) stays finite, (n, C) bool.

    Its factors for a unit gradient of ``log z``, as the backward forms them:
    ``1 / z / den`` (the numerator's), ``(z / den) / z`` (the denominator's) and
    those over ``2 root`` (the radicand's), each at most the dtype's largest
    number over ``2**_HEADROOM``; and ``z / den`` finite (times the 0 gradient of
    an entry that is not the least, or below ``tiny``, where only it is formed).
    """
    big = torch.finfo(z.dtype).max
    limit = big * 2.0**-_HEADROOM
    ratio = z / den
    inv = 1.0 / z
    g_num, g_den = inv / den, ratio * inv
    g_rad = torch.where(root > 0, torch.where(b >= 0, g_num, g_den) / (2.0 * root), 0.0)
    scale = torch.maximum(torch.maximum(a_plus, a_minus), b.abs())
    within = (g_num <= limit) & (g_den <= limit) & (g_rad <= limit) & (4.0 * scale * g_rad <= limit)
    return (ratio <= big) & ((z < tiny) | within)


def _harmless(keep, b, a_plus, a_minus):
    """``(b, a+, a-)`` where ``keep``, else ``(0, 1, 1)`` (a bound of ``z* = 1``,
    whose backward is finite): the inputs of the entries whose gradient is not
    taken, so that a where() after them passes no NaN of theirs."""
    return (
        torch.where(keep, b, torch.zeros_like(b)),
        torch.where(keep, a_plus, torch.ones_like(a_plus)),
        torch.where(keep, a_minus, torch.ones_like(a_minus)),
    )


@torch.no_grad()
def _finite_log_backward(num, den, root, b, a_plus, a_minus):
    """Where the backward of ``log(num) - log(den)`` (:func:`_overtaking_terms`)
    stays in range, as :func:`_finite_backward` tells it for ``z``: its factors
    ``1 / num``, ``1 / den`` and those over ``2 root``, each at most the dtype's
    largest number over ``2**_HEADROOM``, with ``num > 0``."""
    limit = torch.finfo(num.dtype).max * 2.0**-_HEADROOM
    g_num, g_den = 1.0 / num, 1.0 / den
    g_rad = torch.where(root > 0, torch.where(b >= 0, g_num, g_den) / (2.0 * root), 0.0)
    scale = torch.maximum(torch.maximum(a_plus, a_minus), b.abs())
    within = (g_num <= limit) & (g_den <= limit) & (g_rad <= limit) & (4.0 * scale * g_rad <= limit)
    return (num > 0) & within


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
