"""The torch network of ProtoClassifier: latent map, prototypes, similarity, head."""

from __future__ import annotations

import numpy as np
import torch

from .._tokens import unpack_tokens
from ..geometry import (
    cosine_distances,
    cosine_similarity,
    log_similarity,
    normalize_rows,
    rbf_similarity,
    squared_distances,
)
from ..heads import LinearHead

__all__ = [
    "InputUnits",
    "LatentOffset",
    "ProtoNetwork",
    "make_latent_map",
    "with_input_units",
    "with_latent_offset",
]


def make_latent_map(
    kind: str | None,
    n_features: int,
    dim: int,
    rng: np.random.RandomState,
    bounded: bool,
    dtype=torch.float32,
    axes: np.ndarray | None = None,
) -> torch.nn.Module | None:
    """Learned map ``h`` into the prototypes' space, weights drawn from ``rng``.

    ``kind`` is None (no map), ``"linear"`` or ``"mlp"`` (linear-ReLU-linear).
    A linear map to fewer dimensions starts at ``axes`` (``(dim, n_features)``
    orthonormal rows, e.g. the rows' principal axes) where given.
    ``bounded`` ends the map in a sigmoid, as ProtoPNet's add-on layers do,
    so latent vectors lie in ``[0, 1]^dim`` and distances are at most ``dim``:
    with a distance-based similarity the separation cost is otherwise
    unbounded below, and training can blow the latent space up instead of
    separating the classes.
    """
    if kind is None:
        return None

    def linear(n_in, n_out):
        # built without torch's initialisation, which drew from its global
        # generator, in torch's default dtype (a user may have set float64)
        layer = torch.nn.Linear.__new__(torch.nn.Linear)
        torch.nn.Module.__init__(layer)
        layer.in_features, layer.out_features = n_in, n_out
        layer.weight = torch.nn.Parameter(torch.empty(n_out, n_in, dtype=dtype))
        layer.bias = torch.nn.Parameter(torch.empty(n_out, dtype=dtype))
        bound = 1.0 / np.sqrt(n_in)
        with torch.no_grad():
            weight = rng.uniform(-bound, bound, (n_out, n_in))
            layer.weight.copy_(torch.as_tensor(weight, dtype=dtype))
            layer.bias.zero_()
        return layer

    layers = [linear(n_features, dim)]
    if kind == "linear":
        # start at the identity (or the given axes, or a random
        # semi-orthogonal map to another dimension): the initial latent space
        # is the input space (or its main directions), and the prototypes'
        # initial neighbourhoods are the inputs' own
        with torch.no_grad():
            if dim == n_features:
                weight = np.eye(dim)
            elif axes is not None and axes.shape == (dim, n_features):
                weight = axes
            else:
                q, _ = np.linalg.qr(
                    rng.standard_normal((max(dim, n_features), min(dim, n_features)))
                )
                weight = q if dim > n_features else q.T
            layers[0].weight.copy_(torch.as_tensor(weight, dtype=dtype))
    if kind == "mlp":
        layers += [torch.nn.ReLU(), linear(dim, dim)]
    if bounded:
        layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


class InputUnits(torch.nn.Module):
    """Puts the inputs in the map's units: ``(x - centre) / scale``.

    ``centre`` is the mean of the training rows (rounded to float32) and
    ``scale`` a power of two, both fixed when the map is built: the map then
    trains alike whatever the offset and the units of ``X``.
    """

    def __init__(self, n_features: int, scale: float = 1.0, centre=None):
        super().__init__()
        centre = np.zeros(n_features) if centre is None else np.asarray(centre)
        self.register_buffer("centre", torch.as_tensor(centre, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = self.centre.to(dtype=x.dtype, device=x.device)
        return (x - centre) / self.scale.to(dtype=x.dtype, device=x.device)


def with_input_units(
    latent_map: torch.nn.Sequential, n_features: int, scale: float = 1.0, centre=None
) -> torch.nn.Sequential:
    """``latent_map`` preceded by an :class:`InputUnits` of ``centre`` and ``scale``."""
    return torch.nn.Sequential(InputUnits(n_features, scale, centre), *latent_map)


def has_input_units(state: dict) -> bool:
    """Whether a stored network state holds an :class:`InputUnits` at the start of its map."""
    return any(k.startswith("latent_map.") and k.endswith(".scale") for k in state)


class LatentOffset(torch.nn.Module):
    """Appends one coordinate equal to ``offset`` to every latent vector.

    The cosine of two such vectors sees their lengths as well as their
    directions: a map whose outputs are long next to ``offset`` gives back
    the plain cosine, one whose outputs are short a similarity that falls
    with the Euclidean distance.
    """

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.register_buffer("offset", torch.tensor(float(offset), dtype=torch.float32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        column = self.offset.to(dtype=z.dtype, device=z.device).expand(*z.shape[:-1], 1)
        return torch.cat([z, column], dim=-1)


def with_latent_offset(latent_map: torch.nn.Sequential, offset: float) -> torch.nn.Sequential:
    """``latent_map`` followed by a :class:`LatentOffset` of ``offset``."""
    return torch.nn.Sequential(*latent_map, LatentOffset(offset))


def has_latent_offset(state: dict) -> bool:
    """Whether a stored network state holds a :class:`LatentOffset` at the end of its map."""
    return any(k.startswith("latent_map.") and k.endswith(".offset") for k in state)


class ProtoNetwork(torch.nn.Module):
    """Latent map, prototypes, similarity and class-connection head.

    ``latent`` maps inputs of shape ``(..., n_features)`` to ``(..., dim)``;
    ``distances`` returns ``(..., n_prototypes)``. An input with a patch axis
    ``(n, n_patches, n_features)`` is pooled by the minimum distance over
    patches (ProtoPNet's part prototypes) in :meth:`pooled_distances`.
    Squared distances are taken relative to the prototypes' mean (exact in
    theory, and accurate in float32 for data far from the origin).
    """

    def __init__(
        self,
        latent_map: torch.nn.Module | None,
        prototypes: torch.Tensor,
        head: torch.nn.Module,
        similarity: str,
        width: float,
        n_features: int | None = None,
        n_tokens: int = 0,
    ):
        super().__init__()
        # > 0: inputs are rows of skproto's token layout with this many slots,
        # and a prototype is matched against every real token (part prototypes)
        self.n_tokens = int(n_tokens)
        self.latent_map = latent_map
        self.prototypes = torch.nn.Parameter(prototypes)
        self.head = head
        self.similarity = similarity
        # every value in the prototypes' dtype (float32 to train), never in torch's
        # default dtype: under the caller's torch.set_default_dtype(torch.float16)
        # the width was rounded to float16 before training cast it to float32
        dtype = prototypes.dtype
        self.register_buffer("width", torch.tensor(float(width), dtype=dtype))
        # tied mode: the prototypes are the latent vectors of these input rows
        # (the training cases they were projected onto), so a learned map moves
        # them with the data and they stay real cases
        n_features = prototypes.shape[1] if n_features is None else n_features
        self.register_buffer("cases", torch.zeros(len(prototypes), n_features, dtype=dtype))
        self.register_buffer("tied", torch.tensor(0.0, dtype=dtype))
        self._frozen: dict | None = None

    def tie(self, rows: torch.Tensor) -> None:
        """Tie the prototypes to input ``rows`` from now on (``prototypes`` follows them)."""
        with torch.no_grad():
            self.cases.copy_(rows)
            self.tied.fill_(1.0)
            self.prototypes.copy_(self.latent(self.cases))

    def prototype_vectors(self) -> torch.Tensor:
        """The prototypes in the latent space: ``latent(cases)`` when tied."""
        if self.tied.item() and self.latent_map is not None:
            return self.latent(self.cases)
        return self.prototypes

    def freeze(self) -> ProtoNetwork:
        """Precompute the prototypes' terms of the distances, for inference only."""
        if hasattr(self.head, "freeze"):
            self.head.freeze()
        with torch.no_grad():
            P = self.prototype_vectors()
            if self.similarity == "cosine":
                unit = normalize_rows(P)
                self._frozen = {"unit": unit}
                affine = self._affine_map()
                if affine is not None:
                    self._frozen["affine"] = affine
                folded = getattr(self.head, "folded", None)
                mixture = None if folded is None else folded(unit)
                if mixture is not None:
                    self._frozen["mixture"] = mixture
                if isinstance(self.head, LinearHead):
                    # cosine similarities enter a linear head linearly: scores are
                    # one product of the unit latent rows, zn @ (Pn^T W / T)
                    self._frozen["folded"] = unit.T @ self.head.weight / self.head.temperature
            else:
                center = P.mean(0)
                centered = P - center
                sqnorm = (centered * centered).sum(-1)
                self._frozen = {"center": center, "centered": centered, "sqnorm": sqnorm}
        return self

    def _affine_map(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """``(centre, A, b)`` with ``latent(x) == (x - centre) @ A + b``, for a map of an
        :class:`InputUnits`, one ``Linear`` and a :class:`LatentOffset` (the default);
        None for any other map.

        One product at inference instead of five steps (one-row ``predict`` was
        three times NearestMeanClassifier's). The centre stays a subtraction
        (folded into ``b``, rows far from the origin cancelled); the scale is
        a power of two, so ``A`` scales the weights exactly.
        """
        layers = list(self.latent_map) if isinstance(self.latent_map, torch.nn.Sequential) else []
        units = layers.pop(0) if layers and isinstance(layers[0], InputUnits) else None
        column = layers.pop() if layers and isinstance(layers[-1], LatentOffset) else None
        if len(layers) != 1 or type(layers[0]) is not torch.nn.Linear:
            return None
        W, bias = layers[0].weight, layers[0].bias
        scale = 1.0 if units is None else float(units.scale)
        if not np.log2(scale).is_integer():  # (exact only for a power of two)
            return None
        A = (W / scale).T
        b = torch.zeros(W.shape[0], dtype=W.dtype) if bias is None else bias
        centre = torch.zeros(W.shape[1], dtype=W.dtype)
        if units is not None:
            centre = units.centre.to(dtype=W.dtype).expand(W.shape[1])
        if column is not None:
            A = torch.cat([A, torch.zeros(len(A), 1, dtype=A.dtype)], dim=1)
            b = torch.cat([b, column.offset.to(dtype=b.dtype).reshape(1)])
        return centre.contiguous(), A.contiguous(), b

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        frozen = self._frozen
        if frozen is not None and "affine" in frozen:
            centre, A, b = frozen["affine"]
            shape = x.shape
            z = torch.addmm(b, (x - centre).reshape(-1, shape[-1]), A)
            return z.reshape(*shape[:-1], z.shape[-1])
        return x if self.latent_map is None else self.latent_map(x)

    @property
    def input_centre(self) -> torch.Tensor | None:
        """The centre the map takes its inputs about (:class:`InputUnits`), or None."""
        first = None if self.latent_map is None else self.latent_map[0]
        return first.centre if isinstance(first, InputUnits) else None

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        frozen = self._frozen
        if self.similarity == "cosine":
            if frozen is not None:
                return cosine_distances(z, frozen["unit"], P_normalized=True)
            return cosine_distances(z, self.prototype_vectors())
        if frozen is not None:
            centered, sqnorm = frozen["centered"], frozen["sqnorm"]
            return squared_distances(z - frozen["center"], centered, P_sqnorm=sqnorm)
        P = self.prototype_vectors()
        return squared_distances(z, P, center=P.detach().mean(0))

    def token_distances(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(d (n, n_tokens, K), mask (n, n_tokens))`` of token-layout rows ``x``."""
        tokens, mask = unpack_tokens(x, self.n_tokens)
        return self.distances(self.latent(tokens)), mask

    def pooled_distances(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_tokens:
            # only the real tokens go through the map (about a third of the
            # slots for short texts), then the minimum over each row's tokens
            tokens, mask = unpack_tokens(x, self.n_tokens)
            rows, slots = mask.nonzero(as_tuple=True)
            d = self.distances(self.latent(tokens[rows, slots]))  # (real tokens, K)
            # a row without a real token is like a zero vector: cosine distance 1
            out = torch.ones(len(x), d.shape[1], dtype=d.dtype, device=d.device)
            index = rows[:, None].expand(-1, d.shape[1])
            has = mask.any(dim=1, keepdim=True)
            pooled = out.scatter_reduce(0, index, d, reduce="amin", include_self=False)
            return torch.where(has, pooled, out)
        d = self.distances(self.latent(x))
        return d if d.dim() == 2 else d.min(dim=1).values

    def similarities(self, d: torch.Tensor) -> torch.Tensor:
        if self.similarity == "log":
            return log_similarity(d)
        if self.similarity == "rbf":
            return rbf_similarity(d, self.width)
        return cosine_similarity(d)

    def pooled_similarities(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pooled distances, similarities)``; a row without a real token has
        similarity 0 to every prototype (its distance of 1 read, under "log" and
        "rbf", as nearer than most real rows: 0.69 and 0.35)."""
        d = self.pooled_distances(x)
        s = self.similarities(d)
        if self.n_tokens:
            has = unpack_tokens(x, self.n_tokens)[1].any(dim=1, keepdim=True)
            s = torch.where(has, s, torch.zeros((), dtype=s.dtype, device=s.device))
        return d, s

    def forward(self, x: torch.Tensor):
        """``(logits, distances, similarities)``."""
        d, s = self.pooled_similarities(x)
        return self.head(s), d, s

    # ------------------------------------------------------------ inference API
    def pairwise(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled_similarities(x)[1]

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        frozen = self._frozen
        if frozen is not None and "unit" in frozen and x.dim() == 2 and not self.n_tokens:
            zn = normalize_rows(self.latent(x))
            if "folded" in frozen:
                return self.head._impossible_to_inf(zn @ frozen["folded"])
            if "mixture" in frozen:
                U, finish = frozen["mixture"]
                return finish(zn @ U)
            return self.head(zn @ frozen["unit"].T)  # the cosines, in one product
        return self.head(self.pairwise(x))
