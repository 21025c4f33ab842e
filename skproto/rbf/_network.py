"""The torch network of RBFPrototypeClassifier: every formula once.

One module serves training (float32), prediction and ``certified_radius``
(float64), so the certificate trained against is the one reported.
"""

from __future__ import annotations

import torch

from ..geometry import squared_distances
from ..geometry._array import row_sqnorms
from ..heads import NearestHead, ReasoningHead
from ..robustness.certificates import bisector_radius, cbc_radius, distance_rounding_bound

__all__ = ["RBFNetwork"]

_TINY = 1e-6  # the smoothing of a distance, relative to sigma
#: the rounding of a float64 score, relative to its size (a few ulps, with room)
_SCORE_ROUNDING = 8.0 * torch.finfo(torch.float64).eps


class RBFNetwork(torch.nn.Module):
    """Components, optional linear map Omega, detections, a head and its certificate.

    Distances are computed relative to the components' mean (in the input
    space, before ``Omega``): they do not change, but the expansion and the
    map then lose precision only relative to the data's spread, not to its
    distance from the origin.

    ``origin`` (the training network's; None for the float64 inference one):
    a fixed point of the input space (the training rows' mean, rounded to
    float32) that the components are held relative to, and the inputs are
    taken about (``x - origin``), so that a float32 training step is not lost
    to the spacing of float32 where the data lie (digits + 2**20: a step of
    0.03 against a spacing of 0.125). Distances do not change; ``components``
    are then ``w - origin``.
    """

    def __init__(
        self,
        components: torch.Tensor,
        omega: torch.Tensor | None,
        log_sigma: torch.Tensor,
        head: ReasoningHead | NearestHead,
        learn_sigma: bool = True,
        origin: torch.Tensor | None = None,
    ):
        super().__init__()
        self.components = torch.nn.Parameter(components)
        self.register_buffer("origin", origin)
        self.omega = None if omega is None else torch.nn.Parameter(omega)
        self.log_sigma = torch.nn.Parameter(log_sigma, requires_grad=learn_sigma)
        self.head = head
        # divides log p_c in the output link (fitted by temperature="auto")
        self.register_buffer("temperature", torch.tensor(1.0, dtype=components.dtype))
        self._frozen: dict | None = None

    def freeze(self) -> RBFNetwork:
        """Precompute the components' terms of the distances, for inference only."""
        with torch.no_grad():
            c = self.components.mean(0)
            u = self.components - c
            if self.omega is not None:
                u = u @ self.omega.T
            sigma = torch.exp(self.log_sigma)
            self._frozen = {"center": c, "mapped": u, "sqnorm": (u * u).sum(-1), "sigma": sigma}
        if isinstance(self.head, NearestHead):
            self.head.freeze()
        return self

    @property
    def n_classes(self) -> int:
        return (
            self.head.n_classes if isinstance(self.head, NearestHead) else self.head.logits.shape[1]
        )

    # ------------------------------------------------------------ geometry
    def _about_origin(self, x: torch.Tensor) -> torch.Tensor:
        """``x - origin``: rows in the components' coordinates."""
        return x if self.origin is None else x - self.origin.to(dtype=x.dtype)

    def _mapped(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Omega (x - c), Omega (w - c))`` with ``c`` the components' mean."""
        x = self._about_origin(x)
        if self._frozen is not None:
            z = x - self._frozen["center"]
            return (z if self.omega is None else z @ self.omega.T), self._frozen["mapped"]
        c = self.components.detach().mean(0)
        z, u = x - c, self.components - c
        if self.omega is not None:
            z, u = z @ self.omega.T, u @ self.omega.T
        return z, u

    def mapped_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``Omega (x - c)``: rows in the space distances are measured in."""
        return self._mapped(x)[0]

    def mapped_components(self) -> torch.Tensor:
        """``Omega (w - c)``: the components in that space."""
        return self._mapped(self.components[:0])[1]

    def squared_distances(self, x: torch.Tensor) -> torch.Tensor:
        """``||Omega (x - w_k)||^2``, (n, K)."""
        z, u = self._mapped(x)
        sqnorm = None if self._frozen is None else self._frozen["sqnorm"]
        return squared_distances(z, u, P_sqnorm=sqnorm)

    def distances(self, x: torch.Tensor, smooth: bool = False) -> torch.Tensor:
        d2 = self.squared_distances(x)
        # smooth: a finite gradient at a component (training only)
        return self._smooth_sqrt(d2) if smooth else torch.sqrt(d2)

    def _smooth_sqrt(self, d2: torch.Tensor) -> torch.Tensor:
        """``sqrt(d2 + (1e-6 sigma)^2)``: a finite gradient at a component, in the
        units of the data (a fixed 1e-12 swamped distances of 1e-8 data: every
        detection underflowed and the loss was NaN at any learning rate)."""
        floor = (_TINY * self.sigma().detach()) ** 2
        return torch.sqrt(d2 + floor)

    def sigma(self) -> torch.Tensor:
        if self._frozen is not None:
            return self._frozen["sigma"]
        return torch.exp(self.log_sigma)

    def omega_norm(self) -> torch.Tensor:
        """Spectral norm of Omega (1 without a map): the Lipschitz constant of x -> Omega x."""
        if self.omega is None:
            return torch.ones((), dtype=self.components.dtype, device=self.components.device)
        return torch.linalg.matrix_norm(self.omega, ord=2)

    def detections(self, x: torch.Tensor, smooth: bool = False) -> torch.Tensor:
        """Detection probabilities ``d_k = exp(-dist_k / sigma)``, (n, K)."""
        return torch.exp(-self.distances(x, smooth) / self.sigma())

    # ------------------------------------------------------------ head
    def reasoning_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r_plus, r_minus)``, each (K, C)."""
        return self.head.weights()

    def class_scores(self, d: torch.Tensor) -> torch.Tensor:
        """Class scores ``p_c`` from detections, (n, C)."""
        return self.head(d)

    def log_class_scores(self, x: torch.Tensor) -> torch.Tensor:
        """``log p_c``, without underflow where the head allows, (n, C)."""
        if self._frozen is not None and isinstance(self.head, NearestHead) and self.head._block:
            # inference: the nearest own component has the smallest squared distance
            d2 = self.squared_distances(x)
            nearest = d2.view(len(x), self.n_classes, self.head._block).amin(-1)
            return nearest.sqrt_().mul_(-1.0 / float(self.sigma()))
        if isinstance(self.head, ReasoningHead) and self.head.negative:
            return torch.log(self.class_scores(self.detections(x)))
        return self.head.log_forward(-self.distances(x) / self.sigma())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_scores(self.detections(x, smooth=True))

    # ------------------------------------------------------------ inference API
    def pairwise(self, x: torch.Tensor) -> torch.Tensor:
        return self.detections(x)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.class_scores(self.detections(x))

    def link_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_class_scores(x) / self.temperature

    def score_samples(self, x: torch.Tensor) -> torch.Tensor:
        return -self.distances(x).min(1).values

    # ------------------------------------------------------------ certificate
    def component_gaps(self) -> torch.Tensor:
        """The (K, K) distances between the mapped components, as a reported
        certificate reads them (``certified_radius(..., gaps=...)``)."""
        return self._gaps(self._mapped(self.components[:0])[1], None)

    def certified_radius(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        smooth: bool = False,
        exact: bool = False,
        gaps: torch.Tensor | None = None,
        tie: float = 0.0,
    ) -> torch.Tensor:
        """Signed lower bound on the L2 perturbation that can make ``target`` lose, (n,).

        Negative when ``target`` does not have the highest score. With
        ``exact`` the radius is lowered by a bound on the rounding error of
        the distances it is computed from (prediction; not training).
        ``gaps``: :meth:`component_gaps`, computed once for many row chunks.
        ``tie``: the relative rounding of the probabilities ``predict`` decides
        from (the machine epsilon of their dtype); with the nearest head the
        radius keeps the target's score ahead by more than they can round
        away (at a temperature so large that the scores nearly tie, a move
        inside the plain bound rounded the probabilities to a tie, and the tie
        went to another class).
        """
        z, u = self._mapped(x)
        d2 = squared_distances(z, u)
        L = self.omega_norm()
        slack = self._rounding_slack(x, z, u, d2) if exact else None
        if isinstance(self.head, NearestHead):
            own, labels = self._own_index(), self.head.labels
            rows = needed = None
            if not exact:  # training: only the target classes' components' rows of the gaps
                # (all K x K of them were most of a step with 1,000 classes)
                needed = torch.unique(own[target].clamp_min(0))
                rows = torch.full((len(u),), -1, dtype=torch.long, device=u.device)
                rows[needed] = torch.arange(len(needed), device=u.device)
            gap = gaps if gaps is not None and needed is None else self._gaps(u, needed)
            margin = None
            if tie:
                # predict's probabilities, exp(z_c - max z) / sum with z_c = -d_c / (sigma
                # T), keep their order where the gap of z exceeds 4 tie (their rounding)
                # plus the rounding of z itself (a few ulps of the largest |z|)
                reach = torch.sqrt(d2.amax(1))
                margin = self._tie_gap(tie) * float(self.sigma()) + _SCORE_ROUNDING * reach
            r = bisector_radius(
                d2, gap, own, labels, target, L, slack, gap_rows=rows, margin=margin
            )
        else:
            dist = self._smooth_sqrt(d2) if smooth else torch.sqrt(d2)
            d = torch.exp(-dist / self.sigma())
            rp, rn = self.reasoning_weights()
            kappa = None
            if tie:
                # predict's probabilities keep their order where log p_t - log p_j
                # exceeds 4 tie T (their rounding) plus the rounding of the scores
                # (a sum over the K components, and its log)
                p_t = self.head(d).gather(1, target[:, None])[:, 0]
                rounding = _SCORE_ROUNDING * (len(rp) + 1.0 + torch.log(p_t).abs())
                log_kappa = self._tie_gap(tie) + rounding
                # nothing is certified where p_t underflowed to 0 or T is so large
                # that every probability of X's dtype ties: kappa is infinite there,
                # or so large that the bound's sums overflow (NaN or inf radii
                # just below that); a ratio p_t / p_j above e^600 is never needed
                hopeless = ~(log_kappa <= 600.0)
                kappa = torch.exp(torch.where(hopeless, torch.zeros_like(log_kappa), log_kappa))
            r = cbc_radius(d, rp, rn, target, self.sigma(), L, kappa=kappa)
            if kappa is not None:
                r = torch.where(hopeless | torch.isnan(r), torch.zeros_like(r), r)
            if exact:  # a distance error of sqrt(slack) acts like a perturbation of it / L
                r = r - torch.sqrt(slack) / L
        if exact:  # the bound's own arithmetic (an infinite radius, no rival class, stays)
            r = torch.where(torch.isinf(r), r, r - r.abs() * 1e-12)
        return r

    def _tie_gap(self, tie: float) -> float:
        """The gap of ``log p_c`` below which predict's probabilities, rounded to
        ``tie`` (the epsilon of their dtype), can tie: ``4 tie T``."""
        return 4.0 * tie * float(self.temperature)

    @staticmethod
    def _gaps(u: torch.Tensor, needed: torch.Tensor | None) -> torch.Tensor:
        """Distances between the (mapped) components: (K, K), or the ``needed`` rows.

        For a reported certificate (all rows, computed without gradients) the
        expansion is refined where it is unreliable, so two nearly equal
        components never get too small a gap (an inflated radius); torch.cdist's
        matrix-product mode lost up to 40% of a gap of 1e-7. Each gap is then
        raised by a bound on its rounding error: the gap divides the radius,
        and one rounded 9e-12 too small (two components 0.49 apart, 103 from
        the origin) certified a radius that a move of 0.999999999999999 of it
        crossed (a certificate audit). Training uses cdist, whose gradient is
        defined at zero gaps, on the rows it needs.
        """
        if needed is not None:
            return torch.cdist(u[needed], u)
        D = squared_distances(u, u)
        n2 = row_sqnorms(u)[:, 0]
        scale = n2[:, None] + n2[None, :]
        # entries far below the refinement's threshold (eps^(1/3) of the scale)
        # were recomputed as ||u_i - u_j||^2: a sum of p squares, off by at most
        # (p + 3) eps of itself; any other by the expansion's bound
        eps = torch.finfo(u.dtype).eps
        refined = torch.le(D, 0.5 * eps ** (1.0 / 3.0) * scale)
        direct = (u.shape[-1] + 3) * eps * D
        expanded = distance_rounding_bound(n2, n2.max(), u.shape[-1])[:, None] + direct
        err = torch.where(refined, direct, torch.maximum(expanded, direct))
        return torch.sqrt(D + err)

    def _rounding_slack(self, x, z, u, d2) -> torch.Tensor:
        """Per-row bound on the rounding error of ``d2`` (squared-distance units)."""
        slack = distance_rounding_bound(row_sqnorms(z)[:, 0], row_sqnorms(u).max(), z.shape[-1])
        if self.omega is not None:  # error of the map itself, relative to ||x - c||
            eps = torch.finfo(z.dtype).eps
            p = x.shape[-1]
            x = self._about_origin(x)
            c = self.components.detach().mean(0)
            spread = (x - c).norm(dim=1) + (self.components - c).norm(dim=1).max()
            delta = (2.0 * (p + 2) * eps * torch.linalg.matrix_norm(self.omega) + eps) * spread
            top = d2.max(1).values.sqrt()
            slack = slack + delta * (2.0 * top + delta)
        return slack

    def _own_index(self) -> torch.Tensor:
        """(n_classes, m) component indices of each class, padded with -1."""
        labels = self.head.labels
        counts = torch.bincount(labels, minlength=self.n_classes)
        m = int(counts.max())
        order = torch.argsort(labels, stable=True)
        start = torch.cumsum(counts, 0) - counts
        pos = torch.arange(m, device=labels.device)
        flat = start[:, None] + pos[None, :]
        ok = pos[None, :] < counts[:, None]
        fill = torch.full_like(flat, -1)
        return torch.where(ok, order[flat.clamp_max(len(labels) - 1)], fill)
