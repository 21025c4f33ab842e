"""ProtoClassifier's last-layer refit: a convex problem solved with full-batch L-BFGS."""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._chunking import chunk_slices, prototype_row_elements
from .._progress import Progress
from .._torch.training import to_tensor
from .._validation import warn_user
from ..losses import classification_loss

__all__ = ["GRADIENT_TOL", "refit_last_layer"]

#: The refit has converged when no gradient entry exceeds this (scikit-learn's
#: LogisticRegression uses tol=1e-4 the same way with L-BFGS); with the L1
#: penalty, no entry of its minimum-norm subgradient (:func:`_optimality`).
GRADIENT_TOL = 1e-4

#: The L1 penalty is smoothed as ``sqrt(w**2 + _L1_SMOOTHING**2)``.
_L1_SMOOTHING = 1e-4

#: L-BFGS iterations between two checks of the convergence criterion.
_CHECK_EVERY = 10

#: The kernel penalty's null space (eigenvalues within float32 rounding of 0,
#: see :func:`_kernel_penalty`) is raised to this share of the eigenvalues'
#: mean (a nugget, as kernel methods add to a Gram matrix): more prototypes
#: than latent dimensions left the cosine's ``G`` singular, and the
#: wrong-class L1 drew the optimum toward own-class weights of +-100 that
#: cancel (iris: 15 prototypes in 5 dimensions, rank 5), a flat valley
#: L-BFGS walked until its iteration limit. Every other direction is
#: penalised as before: raising small but real eigenvalues (all of them
#: below a tenth of the mean, as first done) penalised directions the scores
#: do see, and the refit was no longer logistic regression (a feature at 5 %
#: of the others' scale: probabilities 0.44 apart).
_GRAM_FLOOR = 0.1


def _kernel_penalty(G: torch.Tensor) -> torch.Tensor:
    """``G`` (float64, symmetric) made positive definite: eigenvalues at most
    ``K`` float32 roundings of the largest above 0 (the numerical null space,
    directions of ``W`` no score sees) raised to :data:`_GRAM_FLOOR` times the
    eigenvalues' mean, the others kept (negative rounding clipped to 0)."""
    vals, vecs = torch.linalg.eigh(0.5 * (G + G.T))
    vals = vals.clamp_min(0.0)
    top = float(vals.max()) if len(vals) else 0.0
    null = vals <= len(vals) * torch.finfo(torch.float32).eps * top
    floor = _GRAM_FLOOR * float(vals.mean()) if len(vals) else 0.0
    return (vecs * torch.where(null, torch.full_like(vals, floor), vals)) @ vecs.T


def _smoothed_l1(V: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """The refit's smoothed L1 of the wrong-class entries ``V * off`` (in the logits'
    units, ``W / T``)."""
    return torch.sqrt((V * off) ** 2 + _L1_SMOOTHING**2).sum()


def _optimality(grad: torch.Tensor, W: torch.Tensor, off: torch.Tensor, l1_weight: float) -> float:
    """Largest entry of the minimum-norm subgradient of the L1-penalised objective.

    ``grad`` is the gradient of its smooth part (cross-entropy and ridge) at
    ``W``, both in the units the problem is solved in (``refit_last_layer``
    solves for ``V = W / T``, where its L1 is), and ``l1_weight`` the L1
    term's slope there.
    An entry without the L1 term (own-class connections) counts as it is; a
    penalised entry away from 0 (farther than ten times the smoothing)
    counts ``|grad + l1 sign(w)|``; one at 0 only what exceeds ``l1``, the
    subgradient's reach there. (The gradient of the smoothed problem stayed
    about ``l1_weight`` near 0, whatever the iterations: with the default
    l1_weight of 1e-4 every linear-head fit warned, and a larger
    last_layer_max_iter did not stop it.)
    """
    if not l1_weight:
        return float(grad.abs().max())
    penalised = off > 0
    at_zero = W.abs() <= 10 * _L1_SMOOTHING
    moved = (grad + l1_weight * torch.sign(W)).abs()
    residual = torch.where(at_zero, (grad.abs() - l1_weight).clamp_min(0.0), moved)
    return float(torch.where(penalised, residual, grad.abs()).max())


def _scored_classes(head, targets: torch.Tensor, wt: torch.Tensor) -> torch.Tensor | None:
    """The classes the refit scores, once those of its rows of positive weight have
    arrived (``head.possible`` set for them: ``project_prototypes`` on rows of a
    class declared to ``partial_fit``); None: every class."""
    possible = getattr(head, "possible", None)
    if possible is None or targets.dim() != 1:
        return None
    possible[torch.unique(targets[wt > 0])] = True
    return None if bool(possible.all()) else torch.nonzero(possible).ravel()


def refit_last_layer(
    net,
    codes: np.ndarray,
    n_classes: int,
    X: np.ndarray,
    T: np.ndarray,
    w: np.ndarray,
    *,
    alpha: float,
    l1_weight: float,
    max_iter: int,
    kernel_penalty: bool,
    verbose: int = 0,
) -> dict | None:
    """Refit ``W`` alone (prototypes and latent map fixed); returns the ``refit`` record.

    Minimises the convex objective of the user guide: weighted cross-entropy
    of ``s W / T`` plus ``alpha / 2 sum_c W_c' G W_c / T^2`` plus a smoothed L1
    on wrong-class connections ``W / T``, all in the logits' units (solved for
    ``V = W / T``: any float ``T`` refits the scores ``T = 1`` refits, and
    ``W`` is ``T`` times as large), on the precomputed similarities ``s`` (an
    ``(n_samples, n_prototypes)`` float32 matrix) from ``W = 0`` (the problem
    has one optimum; the trained ``W`` is scaled for no penalty and starts far
    from it). ``G`` is the prototypes' similarity matrix with ``kernel_penalty``
    (made positive definite: its null space raised to :data:`_GRAM_FLOOR`
    times the eigenvalues' mean, :func:`_kernel_penalty`), else the identity
    (ridge).
    L-BFGS runs until no entry of the minimum-norm subgradient
    (:func:`_optimality`) exceeds :data:`GRADIENT_TOL` (checked every
    :data:`_CHECK_EVERY` iterations), the loss stops changing, ``max_iter``
    iterations or ``1.25 max_iter`` evaluations; when L-BFGS stops on its own
    first (the loss or the step stopped changing), it restarts from the
    steepest descent, until a restart gains nothing: a stall. It counts as
    converged when the criterion holds; otherwise a ConvergenceWarning says
    which limit stopped it, or that it stalled.

    Only the columns of the classes ``head.possible`` lets score are solved
    for (the classes of the rows of positive weight become possible first:
    their rows have arrived); the others stay 0.
    """
    if not max_iter or not len(X):
        return None
    head = net.head
    dev = head.weight.device
    # (with verbose, rate-limited progress: the refit of a CLINC150-sized fit ran
    # over a minute on one thread, silent until it ended)
    report = Progress("last layer") if verbose else None
    if report:
        report.line(
            f"refitting the weights of {len(codes)} prototypes on {len(X)} rows "
            f"(L-BFGS, at most {max_iter} iterations)"
        )
    with torch.no_grad():
        K = len(codes)
        width = prototype_row_elements(X.shape[1], K, getattr(net, "n_tokens", None))
        S = torch.cat([net(to_tensor(X[s], dev))[2] for s in chunk_slices(len(X), width)])
        if kernel_penalty:
            G = net.similarities(net.distances(net.prototypes)).double()
            G = _kernel_penalty(G).to(S.dtype)
        else:  # not a bounded kernel: ridge on W
            G = torch.eye(K, dtype=S.dtype, device=dev)
        head.weight.zero_()
    targets = to_tensor(T, dev) if T.ndim == 2 else torch.as_tensor(T, dtype=torch.long, device=dev)
    wt = to_tensor(w, dev)
    wsum = wt.sum().clamp_min(1e-12)
    codes_t = torch.as_tensor(np.asarray(codes), device=dev)
    off = 1.0 - torch.nn.functional.one_hot(codes_t, n_classes).to(S.dtype)
    cols = _scored_classes(head, targets, wt)
    if cols is not None:  # the columns of the classes with rows only (those without
        # score -inf whatever their weights: theirs stay 0)
        lookup = torch.zeros(n_classes, dtype=torch.long, device=dev)
        lookup[cols] = torch.arange(len(cols), device=dev)
        targets, off = lookup[targets], off[:, cols]  # (a row of weight 0 may read 0)
    temperature = float(head.temperature)
    W = head.weight
    # solved for V = W / T, the problem's own scale (in W, a temperature of 1e-10
    # scaled the gradients by 1e10: L-BFGS stepped to NaN, silently; at 1e-20 it
    # stayed at W = 0, every class 1/3), its L1 too: on W, it weighed T times as much
    # against the cross-entropy and curved T^2 times as sharply at 0 (at T = 1e5
    # L-BFGS stalled at W = 0 after one iteration: digits 0.082 against 0.958 at 1)
    V = torch.zeros_like(W if cols is None else W[:, cols], requires_grad=True)
    max_eval = max_iter * 5 // 4

    def lbfgs() -> torch.optim.LBFGS:
        return torch.optim.LBFGS(
            [V],
            lr=1.0,
            max_iter=max_iter,
            max_eval=max_eval,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

    optimizer = lbfgs()
    evaluations: list[float] = []
    # the objective at the V of the last evaluation: each step() call of the stepped
    # loop below starts by evaluating where the last one stopped, which recomputed it
    # and counted it against max_eval (digits: 224 evaluations for 200 iterations,
    # against 205 in one call; at last_layer_max_iter=15 the evaluation limit
    # stopped it after 14 iterations)
    last: dict = {}

    def closure(l1: bool = True):
        if l1 and last and torch.equal(last["V"], V.detach()):
            V.grad = last["grad"].clone()
            return last["loss"]
        optimizer.zero_grad()
        data = classification_loss(S @ V, targets)
        loss = ((data * wt).sum() + 0.5 * alpha * (V * (G @ V)).sum()) / wsum
        if l1 and l1_weight:
            loss = loss + l1_weight * _smoothed_l1(V, off)
        loss.backward()
        if l1:
            last.update(V=V.detach().clone(), grad=V.grad.clone(), loss=loss.detach())
            evaluations.append(float(loss.detach()))
            if report:
                report.tick(lambda: f"evaluation {len(evaluations)}  loss {evaluations[-1]:.5f}")
        return loss

    start = time.perf_counter()
    n_iter = n_eval = 0
    begun = 0  # the iterations before this L-BFGS run (a restart's)
    restarted_at = None  # the loss at the last restart
    group = optimizer.param_groups[0]
    while True:
        group["max_iter"] = min(_CHECK_EVERY, max_iter - n_iter)
        # (step() counts its first evaluation, the cached one after the first call)
        group["max_eval"] = max_eval - n_eval + (1 if n_eval else 0)
        optimizer.step(closure)
        ran = begun + int(optimizer.state[V]["n_iter"]) - n_iter
        n_iter, n_eval = n_iter + ran, len(evaluations)
        smooth = float(closure(l1=False).detach())  # the smooth part and its gradient at V
        # judged in V's units, the logits' scale (in W's units the tolerance was T times
        # looser: at T = 20 twenty iterations counted as converged, 3.5e-2 above the optimum)
        grad_max = _optimality(V.grad, V.detach(), off, l1_weight)
        # stopped at the tolerance, as scikit-learn's L-BFGS does: run on to L-BFGS's
        # own limits, the refit met it and left it again (iris: below 1e-4 after 143
        # to 186 iterations, above it at 200, and a ConvergenceWarning)
        if grad_max <= GRADIENT_TOL or n_iter >= max_iter or n_eval >= max_eval:
            break
        if ran < group["max_iter"]:  # L-BFGS stopped on its own: the loss or the step
            # stopped changing. Its curvature pairs can be stale: restarted from the
            # steepest descent, it may go on (ProtoPNet's log similarity on
            # standardised digits stopped after 91 iterations at 1.9e-4, counted as
            # converged; restarted, it meets 1e-4 after 99); a restart that gains
            # nothing is a stall
            with torch.no_grad():  # (the objective at V: the last evaluation may be a
                # point the line search tried and left)
                l1_term = _smoothed_l1(V, off)
            objective = smooth + l1_weight * float(l1_term)
            if restarted_at is not None and objective >= restarted_at:
                break
            restarted_at, begun = objective, n_iter
            optimizer = lbfgs()
            group = optimizer.param_groups[0]
    if not bool(torch.isfinite(V).all()):
        raise ValueError(
            "The last-layer refit diverged (non-finite weights): alpha or l1_weight may be "
            "too large, or the similarities too large for float32. Lower them, rescale X, "
            "or use head='mixture'."
        )
    with torch.no_grad():
        if cols is None:
            W.copy_(V * temperature)
        else:
            W[:, cols] = V * temperature
    hit_iter, hit_eval = n_iter >= max_iter, n_eval >= max_eval
    # a stall is no convergence while the criterion fails (counted as converged, the
    # stall at W = 0 above read 0.082 with no warning; digits at l1_weight=10 stalls
    # after 55 iterations, largest entry 7.8e-3, a restart gaining nothing)
    converged = grad_max <= GRADIENT_TOL
    record = {
        "method": "lbfgs",
        "loss": evaluations,
        "n_iter": n_iter,
        "seconds": time.perf_counter() - start,
        "converged": bool(converged),
        "max_gradient": grad_max,
    }
    if not converged and (hit_iter or hit_eval):
        limit = (
            f"the iteration limit (last_layer_max_iter={max_iter})"
            if hit_iter
            else f"the evaluation limit ({max_eval} loss evaluations, 1.25 x "
            f"last_layer_max_iter={max_iter})"
        )
        warn_user(
            f"The last-layer refit stopped at {limit} after {n_iter} L-BFGS iterations "
            f"and {n_eval} evaluations, before converging: largest gradient entry "
            f"{grad_max:.2g} > {GRADIENT_TOL:g}. Increase last_layer_max_iter for the "
            "exact optimum.",
            ConvergenceWarning,
        )
    elif not converged:
        warn_user(
            f"The last-layer refit stalled after {n_iter} L-BFGS iterations and {n_eval} "
            "evaluations, before converging: its float32 loss stopped changing (a "
            f"restart gained nothing) at a largest gradient entry of {grad_max:.2g} > "
            f"{GRADIENT_TOL:g}. Near the tolerance that is float32's precision; far "
            "above it, an ill-conditioned problem (a large l1_weight curves the "
            "smoothed L1 sharply at 0): a smaller l1_weight, or rescaled X, may converge.",
            ConvergenceWarning,
        )
    if report:
        report.line(
            f"{n_iter} L-BFGS iterations, loss {evaluations[0]:.5f} -> {evaluations[-1]:.5f}, "
            f"max |grad| {grad_max:.2g}"
        )
    return record
