"""Class-connection heads: how prototype activations become class scores (torch).

A head maps the activations ``a`` (n, n_prototypes) of the prototypes --
similarities, or detection probabilities -- to class scores (n, n_classes).
The numpy side of every head (the contributions that ``explain`` reports) is
written by the estimator from the fitted weights these modules hold.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import _chunking

__all__ = ["LinearHead", "MixtureHead", "NearestHead", "ReasoningHead", "class_logsumexp"]


class _MaskedClasses(torch.nn.Module):
    """A head with a ``possible`` buffer: the classes it can score (bool, part of
    the state; all True by default). A class without training rows yet is not
    possible and scores ``-inf`` whatever the head's parameters hold."""

    def _register_possible(self, possible: torch.Tensor | None, n_classes: int, device) -> None:
        if possible is None:
            possible = torch.ones(n_classes, dtype=torch.bool, device=device)
        self.register_buffer("possible", torch.as_tensor(possible, dtype=torch.bool))

    def _impossible_to_inf(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` with ``-inf`` for the classes that are not ``possible`` (the linear
        head scored a declared class without rows with its starting column; the
        reasoning head's unmasked weights made the shifted product NaN)."""
        if bool(self.possible.all()):
            return scores
        return scores.masked_fill(~self.possible, -float("inf"))


class LinearHead(_MaskedClasses):
    """``scores = a @ W / temperature`` (ProtoPNet's class-connection layer).

    A class that cannot be predicted (``possible`` False: one without
    training rows yet) scores ``-inf`` for every input, whatever its column of
    ``W`` holds, as the mixture and nearest heads score a class without
    prototypes; its column gets no gradient.

    Parameters
    ----------
    weight : tensor of shape (n_prototypes, n_classes)
        Initial class-connection weights ``W`` (learned).
    temperature : float, default=1.0
        Divisor of the scores (a buffer, fitted after training).
    possible : tensor of shape (n_classes,), default=None
        Which classes can be scored (bool; a buffer, part of the state). None:
        every class.

    Examples
    --------
    >>> import torch
    >>> from skproto.heads import LinearHead
    >>> W = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # prototype -> class weights
    >>> head = LinearHead(W, temperature=2.0)
    >>> head(torch.tensor([[4.0, 1.0, 1.0]])).tolist()
    [[2.0, 1.0]]
    """

    def __init__(
        self, weight: torch.Tensor, temperature: float = 1.0, possible: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.register_buffer("temperature", torch.tensor(float(temperature), dtype=weight.dtype))
        self._register_possible(possible, weight.shape[1], weight.device)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Class scores of the activations.

        Parameters
        ----------
        a : tensor of shape (n_samples, n_prototypes)
            Prototype activations.

        Returns
        -------
        scores : tensor of shape (n_samples, n_classes)
            ``a @ W / temperature`` (``-inf`` for a class that is not ``possible``).
        """
        return self._impossible_to_inf((a @ self.weight) / self.temperature)


class ReasoningHead(_MaskedClasses):
    """Classification-by-components reasoning over detections ``d`` in [0, 1].

    Class ``c`` has non-negative positive and negative reasoning weights
    ``r+_kc``, ``r-_kc`` (a softmax over the logits of each class's column, so
    that ``sum_k r+_kc + r-_kc = 1``) and the score
    ``p_c = sum_k r+_kc d_k + r-_kc (1 - d_k)``. With ``negative=False`` only
    ``r+`` exists (a normalised RBF head).

    A class that cannot be predicted (``possible`` False: one without
    training rows yet) has ``r+ = r- = 0``, so ``p_c = 0`` (``log p_c = -inf``)
    for every input, as the nearest head scores a class without prototypes.

    Parameters
    ----------
    logits : tensor of shape (n_prototypes, n_classes) or (2 * n_prototypes, n_classes)
        Initial reasoning logits (learned): the ``r+`` rows, then, with
        ``negative=True``, the ``r-`` rows.
    negative : bool, default=True
        Whether the head has negative reasoning weights ``r-``.
    possible : tensor of shape (n_classes,), default=None
        Which classes can be scored (bool; a buffer, part of the state). None:
        every class.

    Examples
    --------
    >>> import torch
    >>> from skproto.heads import ReasoningHead
    >>> head = ReasoningHead(torch.tensor([[3.0, 1.0], [1.0, 3.0]]).log(), negative=False)
    >>> p = head(torch.tensor([[1.0, 0.0]]))  # only the first component is detected
    >>> [round(v, 4) for v in p[0].tolist()]
    [0.75, 0.25]
    """

    def __init__(
        self, logits: torch.Tensor, negative: bool = True, possible: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits)
        self.negative = negative
        self._register_possible(possible, logits.shape[1], logits.device)

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The positive and negative reasoning weights.

        Returns
        -------
        r_plus, r_minus : tensor of shape (n_prototypes, n_classes)
            Softmax of the logits over each class's column (zeros in the column
            of a class that is not ``possible``); ``r_minus`` is all zeros with
            ``negative=False``.
        """
        R = torch.softmax(self.logits, dim=0)
        if not bool(self.possible.all()):  # (its logits then get no gradient)
            R = R * self.possible.to(R.dtype)
        return self._halves(R)

    def _halves(self, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``r+`` and ``r-`` rows of a per-logit quantity (zeros for ``r-``
        with ``negative=False``)."""
        if self.negative:
            K = R.shape[0] // 2
            return R[:K], R[K:]
        return R, torch.zeros_like(R)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """Class scores ``p_c = sum_k r+_kc d_k + r-_kc (1 - d_k)``.

        Parameters
        ----------
        d : tensor of shape (n_samples, n_prototypes)
            Detection probabilities in [0, 1].

        Returns
        -------
        p : tensor of shape (n_samples, n_classes)
            Class scores, in [0, 1].
        """
        rp, rn = self.weights()
        return d @ (rp - rn) + rn.sum(0)

    def log_forward(self, log_d: torch.Tensor) -> torch.Tensor:
        """``log p_c`` from ``log d`` without underflow (positive reasoning only).

        Without gradients (prediction), one matrix product of the shifted
        exponentials, ``m_i + a_c + log(exp(log d - m) @ exp(log r+ - a))``,
        and the exact logsumexp only where that product underflows; with them
        (training batches), the logsumexp over ``k`` of ``log d_k + log r+_kc``,
        a block of classes at a time. All (rows, prototypes, classes) terms at
        once took 1.5 GiB to predict 2,000 rows of 100 classes.

        Parameters
        ----------
        log_d : tensor of shape (n_samples, n_prototypes)
            Logs of the detection probabilities.

        Returns
        -------
        log_p : tensor of shape (n_samples, n_classes)
            Logs of the class scores of the positive reasoning weights
            (``-inf`` for a class that is not ``possible``).
        """
        # the log of the softmax directly: log(softmax) is -inf for a weight below
        # float32's smallest (logits 104 apart), log_softmax its exact value
        log_rp, _ = self._halves(torch.log_softmax(self.logits, dim=0))
        if torch.is_grad_enabled() and (log_d.requires_grad or log_rp.requires_grad):
            return self._impossible_to_inf(_block_logsumexp(log_d, log_rp))
        m = log_d.amax(1, keepdim=True).clamp_min(torch.finfo(log_d.dtype).min)
        a = log_rp.amax(0, keepdim=True)
        S = torch.exp(log_d - m) @ torch.exp(log_rp - a)
        out = torch.log(S) + m + a
        # a sum this small has lost digits (or is 0): those entries exactly
        low = torch.finfo(S.dtype).tiny ** 0.5 > S
        rows = torch.nonzero(low.any(1)).ravel()
        if len(rows):
            out[rows] = _block_logsumexp(log_d[rows], log_rp)
        return self._impossible_to_inf(out)


def _block_logsumexp(log_d: torch.Tensor, log_rp: torch.Tensor) -> torch.Tensor:
    """``logsumexp_k (log_d[:, k] + log_rp[k, c])``, (n, C), a block of classes at a time."""
    n, K = log_d.shape
    step = max(1, _chunking.CHUNK_ELEMENTS // max(n * K, 1))
    blocks = [
        torch.logsumexp(log_d[:, :, None] + log_rp[None, :, s : s + step], dim=1)
        for s in range(0, log_rp.shape[1], step)
    ]
    return torch.cat(blocks, dim=1) if len(blocks) != 1 else blocks[0]


class NearestHead(torch.nn.Module):
    """Winner takes all: ``p_c = max_{k in c} d_k`` over each class's own prototypes.

    Parameters
    ----------
    labels : tensor of shape (n_prototypes,)
        Class code (int64) of each prototype.
    n_classes : int
        Number of classes.

    Examples
    --------
    >>> import torch
    >>> from skproto.heads import NearestHead
    >>> head = NearestHead(torch.tensor([0, 1, 0]), n_classes=3)
    >>> head(torch.tensor([[0.5, 0.25, 0.75]])).tolist()  # class 2 has no prototype
    [[0.75, 0.25, 0.0]]
    """

    def __init__(self, labels: torch.Tensor, n_classes: int) -> None:
        super().__init__()
        # (each prototype's class only: a dense membership buffer, n_prototypes x
        # n_classes, was 2 GB at 10,000 classes of 5 prototypes; weights() builds it)
        self.register_buffer("labels", labels)
        # weights()'s dtype: float32, converted with the module (.double(), .to(dtype))
        # as the membership buffer was; not saved (its state holds the labels only)
        self.register_buffer(
            "unit", torch.ones((), dtype=torch.float32, device=labels.device), persistent=False
        )
        self.n_classes = n_classes
        self._block = 0  # > 0: prototypes are class-major blocks of this size

    def freeze(self) -> NearestHead:
        """Note whether the prototypes are equal class-major blocks (a faster max).

        Returns
        -------
        self : NearestHead
            This head.
        """
        K = len(self.labels)
        m = K // self.n_classes
        blocks = torch.arange(self.n_classes, device=self.labels.device).repeat_interleave(m)
        regular = m * self.n_classes == K and torch.equal(self.labels, blocks)
        self._block = m if regular else 0
        return self

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(membership, 0)``: the 0/1 class membership of each prototype.

        Built on each call (the head keeps each prototype's class only).

        Returns
        -------
        membership : tensor of shape (n_prototypes, n_classes)
            One-hot class of each prototype, in the head's dtype (float32 unless
            the module was converted, e.g. by ``.double()``).
        zeros : tensor of shape (n_prototypes, n_classes)
            All zeros (no negative reasoning).
        """
        membership = torch.nn.functional.one_hot(self.labels, self.n_classes).to(self.unit.dtype)
        return membership, torch.zeros_like(membership)

    def _class_max(self, a: torch.Tensor, fill: float) -> torch.Tensor:
        if self._block:
            return a.view(a.shape[0], self.n_classes, self._block).amax(-1)
        out = torch.full((a.shape[0], self.n_classes), fill, dtype=a.dtype, device=a.device)
        index = self.labels.expand(a.shape[0], -1)
        return out.scatter_reduce(1, index, a, reduce="amax", include_self=False)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """The largest detection of each class's own prototypes.

        Parameters
        ----------
        d : tensor of shape (n_samples, n_prototypes)
            Detection probabilities in [0, 1].

        Returns
        -------
        p : tensor of shape (n_samples, n_classes)
            ``max_{k in c} d_k`` (0 for a class without prototypes).
        """
        return self._class_max(d, 0.0)

    def log_forward(self, log_d: torch.Tensor) -> torch.Tensor:
        """The largest log detection of each class's own prototypes.

        Parameters
        ----------
        log_d : tensor of shape (n_samples, n_prototypes)
            Logs of the detection probabilities.

        Returns
        -------
        log_p : tensor of shape (n_samples, n_classes)
            ``max_{k in c} log d_k`` (``-inf`` for a class without prototypes).
        """
        return self._class_max(log_d, -float("inf"))


def class_logsumexp(
    u: torch.Tensor, codes: torch.Tensor, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class ``logsumexp`` of ``u`` (n, K) over each class's own columns.

    A class without columns gets ``-inf``. Works on any order of ``codes``
    (prototypes of a class need not be contiguous) in O(n K) memory.

    Parameters
    ----------
    u : tensor of shape (n_samples, n_prototypes)
        Values to combine, one column per prototype.
    codes : tensor of shape (n_prototypes,)
        Class code (int64) of each column.
    n_classes : int
        Number of classes.

    Returns
    -------
    lse : tensor of shape (n_samples, n_classes)
        ``logsumexp`` of each class's columns.
    r : tensor of shape (n_samples, n_prototypes)
        Responsibilities ``exp(u - lse[:, codes])``, which sum to one within
        each class.

    Examples
    --------
    >>> import torch
    >>> from skproto.heads import class_logsumexp
    >>> lse, r = class_logsumexp(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0, 1, 0]), 3)
    >>> [round(v, 4) for v in lse[0].tolist()], r[0].tolist()
    ([0.6931, 1.0, -inf], [0.5, 1.0, 0.5])
    """
    index = codes.expand(u.shape[0], -1)
    top = torch.full((u.shape[0], n_classes), -float("inf"), dtype=u.dtype, device=u.device)
    top = top.scatter_reduce(1, index, u.detach(), reduce="amax", include_self=True)
    # a class whose columns are all -inf: shifted by 0, its lse is -inf (not NaN)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(u - top[:, codes])
    total = torch.zeros_like(top).index_add_(1, codes, e)
    # log(0) = -inf for a class without a finite column, through a where whose
    # other branch is finite: its gradient is 0, not 0 * inf = NaN for every class
    # (a NaN total stays NaN, as in MixtureHead's block path: a diverged run shows)
    some = total != 0
    lse = torch.where(some, torch.log(torch.where(some, total, 1.0)), -float("inf")) + top
    share = total[:, codes]
    return lse, torch.where(share > 0, e / share.clamp_min(torch.finfo(e.dtype).tiny), 0.0)


def _refreeze(module, _incompatible_keys) -> None:
    module.freeze()


class MixtureHead(torch.nn.Module):
    """Own-class soft maximum: ``score_c = scale * tau * logsumexp_{k in c}(a_k / tau) + b_c``.

    Only the prototypes of class ``c`` enter its score. ``tau`` (softness
    within a class) and ``scale`` are learned through their logs, the bias
    ``b`` directly; the scores are divided by the ``temperature`` buffer
    (fitted after training). With the responsibilities ``r_k`` of the
    prototypes within their class, prototype ``k`` contributes
    ``r_k * scale * tau * logsumexp_c / temperature`` to its class's score
    and nothing to any other, so contributions add up exactly to the score.

    Parameters
    ----------
    codes : tensor of shape (n_prototypes,)
        Class code (int64) of each prototype.
    n_classes : int
        Number of classes.
    tau : float, default=0.05
        Initial softness of the maximum within a class (learned).
    scale : float, default=20.0
        Initial scale of the scores (learned).
    temperature : float, default=1.0
        Divisor of the scores (a buffer, fitted after training).

    Examples
    --------
    >>> import torch
    >>> from skproto.heads import MixtureHead
    >>> head = MixtureHead(torch.tensor([0, 0, 1]), n_classes=2, tau=0.01, scale=1.0)
    >>> a = torch.tensor([[0.5, 0.9, 0.2]])
    >>> [round(v, 4) for v in head(a)[0].tolist()]  # nearly each class's largest activation
    [0.9, 0.2]
    >>> [round(v, 4) for v in head.parts(a)[1][0].tolist()]  # responsibilities within a class
    [0.0, 1.0, 1.0]
    """

    def __init__(
        self,
        codes: torch.Tensor,
        n_classes: int,
        tau: float = 0.05,
        scale: float = 20.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.register_buffer("codes", codes)
        self.n_classes = n_classes
        # float32, not torch's default dtype (a caller's float16 rounded tau, scale
        # and the temperature, and trained the bias in float16)
        f32 = torch.float32
        self.log_tau = torch.nn.Parameter(torch.tensor(float(tau), dtype=f32).log())
        self.log_scale = torch.nn.Parameter(torch.tensor(float(scale), dtype=f32).log())
        self.bias = torch.nn.Parameter(torch.zeros(n_classes, dtype=f32))
        self.register_buffer("temperature", torch.tensor(float(temperature), dtype=f32))
        self.freeze()
        # loaded codes may differ from the constructor's: look at them again
        self.register_load_state_dict_post_hook(_refreeze)

    def freeze(self) -> MixtureHead:
        """Note whether the prototypes are equal class-major blocks (a faster logsumexp).

        Called on construction and after ``load_state_dict``, so training uses
        the block path too whenever the layout allows it.

        Returns
        -------
        self : MixtureHead
            This head.
        """
        K = len(self.codes)
        m = K // self.n_classes if self.n_classes else 0
        blocks = torch.arange(self.n_classes, device=self.codes.device).repeat_interleave(m)
        self._block = m if m and m * self.n_classes == K and torch.equal(self.codes, blocks) else 0
        return self

    def folded(self, unit: torch.Tensor) -> tuple[torch.Tensor, Callable] | None:
        """``(U, finish)`` with ``self(z @ unit.T) == finish(z @ U)``, for inference.

        ``1 / tau`` is taken into the prototypes' columns and the scale, the
        temperature and the bias into one multiply-add (the head was a third
        of a one-row ``predict``). Only for class-major blocks; None otherwise.

        Parameters
        ----------
        unit : tensor of shape (n_prototypes, dim)
            The prototypes the activations are products with.

        Returns
        -------
        U : tensor of shape (dim, n_prototypes)
            ``unit.T / tau``.
        finish : callable
            Class scores of ``z @ U``.
        """
        if not self._block:
            return None
        with torch.no_grad():
            tau = self.log_tau.exp()
            factor = self.log_scale.exp() * tau / self.temperature
            offset = self.bias / self.temperature
            U = (unit.T / tau).contiguous()
        n_classes, block = self.n_classes, self._block

        def finish(a: torch.Tensor) -> torch.Tensor:
            return torch.logsumexp(a.view(a.shape[0], n_classes, block), -1) * factor + offset

        return U, finish

    def parts(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(class_terms, r)``: ``scale * tau * logsumexp / temperature`` and responsibilities.

        Parameters
        ----------
        a : tensor of shape (n_samples, n_prototypes)
            Prototype activations.

        Returns
        -------
        class_terms : tensor of shape (n_samples, n_classes)
            The scores without the bias (``-inf`` for a class without prototypes).
        r : tensor of shape (n_samples, n_prototypes)
            Responsibility of each prototype within its class (sums to one per class).
        """
        tau = self.log_tau.exp()
        if self._block:  # class-major blocks: no scatter
            u = (a / tau).view(a.shape[0], self.n_classes, self._block)
            lse = torch.logsumexp(u, dim=-1)
            r = torch.exp(u - lse[..., None]).view(a.shape)
            return lse * (self.log_scale.exp() * tau / self.temperature), r
        lse, r = class_logsumexp(a / tau, self.codes, self.n_classes)
        empty = torch.isinf(lse)  # a class without prototypes (yet): score -inf, no NaN grad
        terms = torch.where(empty, 0.0, lse) * (self.log_scale.exp() * tau / self.temperature)
        return terms.masked_fill(empty, -float("inf")), r

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Class scores of the activations.

        Parameters
        ----------
        a : tensor of shape (n_samples, n_prototypes)
            Prototype activations.

        Returns
        -------
        scores : tensor of shape (n_samples, n_classes)
            ``(scale * tau * logsumexp_{k in c}(a_k / tau) + b_c) / temperature``.
        """
        if self._block:
            tau = self.log_tau.exp()
            lse = torch.logsumexp((a / tau).view(a.shape[0], self.n_classes, self._block), -1)
            return (lse * (self.log_scale.exp() * tau) + self.bias) / self.temperature
        terms, _ = self.parts(a)
        return terms + self.bias / self.temperature
