"""Training losses of the torch estimators: per-sample terms and their weighted mean."""

from __future__ import annotations

import torch

__all__ = [
    "certified_hinge",
    "cbc_margin_loss",
    "classification_loss",
    "cluster_cost",
    "glvq_loss",
    "latent_drift",
    "separation_cost",
    "st_protopnet_loss",
    "weighted_mean",
]

_TINY = 1e-12


def weighted_mean(per_sample: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i l_i / sum_i w_i`` (0 for all-zero weights).

    Parameters
    ----------
    per_sample : tensor of shape (n_samples,)
        Per-sample losses ``l_i``.
    w : tensor of shape (n_samples,)
        Non-negative sample weights ``w_i``.

    Returns
    -------
    loss : tensor of shape ()
        The weighted mean.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import weighted_mean
    >>> weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 3.0])).item()
    2.5
    >>> weighted_mean(torch.tensor([1.0, 3.0]), torch.zeros(2)).item()  # no weight: 0
    0.0
    """
    total = w.sum()
    # (clamped at 1e-12, weights of 1e-14 divided by 1e-12: the mean of ones was 0.1)
    return torch.where(total > 0, (per_sample * w).sum() / torch.where(total > 0, total, 1.0), 0.0)


def classification_loss(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy (codes ``t``) or mean binary cross-entropy (indicator ``t``).

    Parameters
    ----------
    logits : tensor of shape (n_samples, n_classes)
        Class scores.
    t : tensor of shape (n_samples,) or (n_samples, n_classes)
        Class codes (int64), or 0/1 indicators of the classes (multi-label).

    Returns
    -------
    loss : tensor of shape (n_samples,)
        Cross-entropy, or binary cross-entropy averaged over the classes.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import classification_loss
    >>> logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    >>> [round(v, 4) for v in classification_loss(logits, torch.tensor([0, 0])).tolist()]
    [0.6931, 0.1269]
    >>> [round(v, 4) for v in classification_loss(logits, torch.tensor([1, 1])).tolist()]
    [0.6931, 2.1269]
    """
    if t.dim() == 2:
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        return bce(logits, t, reduction="none").mean(1)
    return torch.nn.functional.cross_entropy(logits, t, reduction="none")


def _masked_min(d: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    big = d.detach().max() + 1.0
    return torch.where(mask, d, big).min(1).values


def cluster_cost(d: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """ProtoPNet's cluster cost: distance to the nearest own-class prototype, per sample.

    ``own[i, k]`` says whether prototype ``k`` belongs to a class of sample ``i``;
    0 for a sample with no own prototype.

    Parameters
    ----------
    d : tensor of shape (n_samples, n_prototypes)
        Distances of the samples to the prototypes.
    own : bool tensor of shape (n_samples, n_prototypes)
        Whether each prototype belongs to a class of each sample.

    Returns
    -------
    cost : tensor of shape (n_samples,)
        Distance to the nearest own-class prototype.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import cluster_cost
    >>> d = torch.tensor([[1.0, 4.0, 2.0], [1.0, 4.0, 2.0]])
    >>> own = torch.tensor([[False, True, True], [False, False, False]])
    >>> cluster_cost(d, own).tolist()  # the second sample has no own prototype
    [2.0, 0.0]
    """
    return _masked_min(d, own) * own.any(1)


def separation_cost(d: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """ProtoPNet's separation cost: distance to the nearest other-class prototype.

    Parameters
    ----------
    d : tensor of shape (n_samples, n_prototypes)
        Distances of the samples to the prototypes.
    own : bool tensor of shape (n_samples, n_prototypes)
        Whether each prototype belongs to a class of each sample.

    Returns
    -------
    cost : tensor of shape (n_samples,)
        Distance to the nearest other-class prototype (0 for a sample with none).

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import separation_cost
    >>> d = torch.tensor([[1.0, 4.0, 2.0], [1.0, 4.0, 2.0]])
    >>> own = torch.tensor([[True, False, True], [True, True, True]])
    >>> separation_cost(d, own).tolist()  # the second sample has no other-class prototype
    [4.0, 0.0]
    """
    return _masked_min(d, ~own) * (~own).any(1)


def latent_drift(z: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """Relative squared change of latent rows, per sample: ``||z - z0||^2 / ||z0||^2``.

    Keeps a learned map near an earlier copy (``z0`` its output) while new
    classes are learnt, so the earlier classes' rows stay where their
    prototypes expect them (feature distillation).

    Parameters
    ----------
    z : tensor of shape (n_samples, n_latent)
        Latent rows of the current map.
    z0 : tensor of shape (n_samples, n_latent)
        Latent rows of the earlier copy.

    Returns
    -------
    drift : tensor of shape (n_samples,)
        ``||z - z0||^2 / ||z0||^2``.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import latent_drift
    >>> z0 = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    >>> latent_drift(z0, z0).tolist(), latent_drift(2 * z0, z0).tolist()
    ([0.0, 0.0], [1.0, 1.0])
    """
    return ((z - z0) ** 2).sum(-1) / (z0 * z0).sum(-1).clamp_min(_TINY)


def st_protopnet_loss(
    P: torch.Tensor, codes: torch.Tensor, n_classes: int, kind: str
) -> torch.Tensor:
    """ST-ProtoPNet closeness (support) or discrimination (trivial) loss.

    ``P`` holds the prototypes, ``codes`` their classes (any number per class:
    a class whose rows all weigh 0 has none, and a streamed class as many as
    it had rows); similarities are inner products of unit-normalised
    prototypes. For each pair of distinct classes that both have prototypes,
    the least (support) or most (trivial) similar cross-class pair counts.

    Parameters
    ----------
    P : tensor of shape (n_prototypes, n_latent)
        Prototypes.
    codes : tensor of shape (n_prototypes,)
        Class code (int64) of each prototype.
    n_classes : int
        Number of classes.
    kind : {"support", "trivial"}
        Closeness loss (support prototypes) or discrimination loss (trivial ones).

    Returns
    -------
    loss : tensor of shape ()
        Minus the mean least similarity (support) or the mean greatest
        similarity (trivial) over the pairs of classes; 0 without any pair.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import st_protopnet_loss
    >>> P = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])  # cosines to row 2: 0.6, 0.8
    >>> codes = torch.tensor([0, 0, 1])
    >>> round(st_protopnet_loss(P, codes, 2, "support").item(), 4)
    -0.6
    >>> round(st_protopnet_loss(P, codes, 2, "trivial").item(), 4)
    0.8
    """
    Pn = torch.nn.functional.normalize(P, dim=-1)
    G = Pn @ Pn.T
    if kind not in ("support", "trivial"):
        raise ValueError(f"kind must be 'support' or 'trivial', got {kind!r}.")
    reduce, fill = ("amin", float("inf")) if kind == "support" else ("amax", -float("inf"))
    rows = torch.full((len(P), n_classes), fill, dtype=G.dtype, device=G.device)
    rows = rows.scatter_reduce(1, codes.expand(len(P), -1), G, reduce=reduce, include_self=True)
    pairs = torch.full((n_classes, n_classes), fill, dtype=G.dtype, device=G.device)
    index = codes[:, None].expand(-1, n_classes)
    pairs = pairs.scatter_reduce(0, index, rows, reduce=reduce, include_self=True)
    has = torch.bincount(codes, minlength=n_classes) > 0
    valid = has[:, None] & has[None, :] & ~torch.eye(n_classes, dtype=torch.bool, device=P.device)
    if not valid.any():
        return G.sum() * 0.0
    if kind == "support":  # pull the least similar cross-class pair together
        return -pairs[valid].mean()
    return pairs[valid].mean()  # push the most similar pair apart


def glvq_loss(d2: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """GLVQ's ``sigmoid(2 mu)``, ``mu = (D+ - D-) / (D+ + D-)``, per sample.

    Parameters
    ----------
    d2 : tensor of shape (n_samples, n_prototypes)
        Squared distances of the samples to the prototypes.
    own : bool tensor of shape (n_samples, n_prototypes)
        Whether each prototype belongs to the class of each sample.

    Returns
    -------
    loss : tensor of shape (n_samples,)
        ``sigmoid(2 mu)``, in (0, 1).

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import glvq_loss
    >>> d2 = torch.tensor([[1.0, 3.0], [3.0, 1.0]])
    >>> own = torch.tensor([[True, False], [True, False]])
    >>> [round(v, 4) for v in glvq_loss(d2, own).tolist()]  # below 0.5: classified correctly
    [0.2689, 0.7311]
    """
    d_plus = _masked_min(d2, own)
    d_minus = _masked_min(d2, ~own)
    # (a floor of 1e-12 moved the prototypes of data at scale 1e-8: no floor in units)
    mu = (d_plus - d_minus) / (d_plus + d_minus).clamp_min(torch.finfo(d2.dtype).tiny)
    return torch.sigmoid(2.0 * mu)


def cbc_margin_loss(p: torch.Tensor, t: torch.Tensor, margin: float) -> torch.Tensor:
    """CBC's ``max(0, max_{j != y} p_j - p_y + margin)``, per sample.

    Parameters
    ----------
    p : tensor of shape (n_samples, n_classes)
        Class scores.
    t : tensor of shape (n_samples,)
        Class codes (int64) ``y``.
    margin : float
        Margin by which the true class's score should lead.

    Returns
    -------
    loss : tensor of shape (n_samples,)
        The hinge loss.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import cbc_margin_loss
    >>> p = torch.tensor([[0.75, 0.25], [0.25, 0.75]])
    >>> cbc_margin_loss(p, torch.tensor([0, 0]), margin=0.25).tolist()
    [0.0, 0.75]
    """
    rows = torch.arange(len(p), device=p.device)
    true = torch.nn.functional.one_hot(t, p.shape[1]) > 0
    p_other = p.masked_fill(true, -float("inf")).max(1).values
    return torch.relu(p_other - p[rows, t] + margin)


def certified_hinge(radius: torch.Tensor, margin: float) -> torch.Tensor:
    """Hinge of a signed certified radius, averaged over the radii aimed for, per sample.

    The mean of ``max(0, rho - radius)`` over ``rho`` uniform on
    ``[0, margin]``: ``margin / 2 - radius`` for a misclassified sample
    (``radius < 0``), ``(margin - radius)**2 / (2 * margin)`` between 0 and
    ``margin``, and 0 beyond. A misclassified sample pulls with the full
    slope, a correct one the less the closer it is to ``margin``; with
    ``margin=0``, ``max(0, -radius)``, which is also the loss for a margin
    below the smallest normal number of ``radius``'s dtype (1.2e-38 in
    float32): the limit as the margin goes to 0, whose part between 0 and
    ``margin`` (at most ``margin / 2``) that dtype cannot hold.

    Parameters
    ----------
    radius : tensor of shape (n_samples,)
        Signed certified radii (negative for a misclassified sample).
    margin : float
        Largest radius aimed for.

    Returns
    -------
    loss : tensor of shape (n_samples,)
        The averaged hinge.

    Examples
    --------
    >>> import torch
    >>> from skproto.losses import certified_hinge
    >>> certified_hinge(torch.tensor([-1.0, 0.0, 1.0, 3.0]), margin=2.0).tolist()
    [2.0, 1.0, 0.25, 0.0]
    >>> certified_hinge(torch.tensor([-1.0, 1.0]), margin=0.0).tolist()
    [1.0, 0.0]
    """
    # (a margin float32 rounds to 0, 1e-46, divided 0 by 0: "Training diverged";
    # a subnormal one, 1e-40, gave an infinite gradient at a radius of 0)
    if margin < torch.finfo(radius.dtype).tiny:
        return torch.relu(-radius)
    inside = torch.relu(margin - radius.clamp(min=0.0))
    return torch.relu(-radius) + inside * inside / (2.0 * margin)
