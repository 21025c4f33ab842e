"""RBFPrototypeClassifier: an RBF / classification-by-components network with certified radii."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _validation
from .._base import (
    _identity,
    as_fitted,
    partial_fit_context,
    unchanged_on_failure,
    underflow_order,
)
from .._chunking import chunk_slices
from .._torch.estimator import TorchPrototypeClassifier, counted_rows, state_tensors
from .._torch.training import (
    _about_own_mean,
    cpu_default,
    data_scale,
    in_units,
    nearest_others,
    new_history,
    squared_distances_to_others,
    torch_threads,
    train,
    training_centre,
    training_context,
)
from .._validation import FLOAT32_MAX, FLOAT32_RESOLUTION, FLOAT32_TINY, warn_user
from ..geometry import min_squared_distances, principal_axes
from ..heads import NearestHead, ReasoningHead
from ..losses import cbc_margin_loss, certified_hinge, glvq_loss, weighted_mean
from ..prototypes import class_members, classwise_kmeans, kmeans_prototypes
from ..prototypes.init import jitter_scale, starts_on_copies
from ..prototypes.replay import (
    average_class_weight,
    class_moments,
    gaussian_replay,
    merge_moments,
    reindex_moments,
)
from ._network import RBFNetwork

#: GLVQ's least loss per row, ``sigmoid(2 mu)`` at ``mu = -1`` (every row on a
#: component of its class), as float32 computes it
_GLVQ_FLOOR = float(torch.sigmoid(torch.tensor(-2.0, dtype=torch.float32)))

__all__ = ["RBFPrototypeClassifier"]

#: ``loss="robust"`` defaults: components per class, and the margin as a
#: fraction of the median distance to the nearest initial component (0.7
#: chosen on CLINC150's validation split, seeds 0-2: accuracy 0.941-0.945
#: against 0.931-0.937 for 0.5 with the plain hinge, while certifying more
#: than loss="glvq" at every radius of the benchmark)
_ROBUST_PER_CLASS = 3
#: rows drawn per earlier class when ``partial_fit`` brings new classes: a
#: Gaussian of the class's mean and spread stands for the rows it no longer
#: sees (chosen on CLINC150's validation split: 75 classes, then 75 more,
#: 0.886 without, 0.929 with)
_REPLAY_ROWS = 20
_ROBUST_MARGIN = 0.7


def _one_minus(D: np.ndarray) -> np.ndarray:
    return 1 - D


def _typical_distance(Z: np.ndarray, U: np.ndarray, own: np.ndarray | None = None) -> float:
    """Median distance from a row of ``Z`` to its nearest initial component ``U``.

    A component on the row itself does not count
    (:func:`squared_distances_to_others`). Counted, it made the typical distance about
    0: on 200 classes of 4 rows each, ``sigma`` and ``margin_`` then
    collapsed, every detection but a row's own underflowed, the robust loss
    was 0 from the first epoch, and the temperature ran to its bound (test
    log-loss 6.6 at 0.82 accuracy). ``own``: the squared distance within which
    each component is still a row's own (see :func:`_own_tolerance`).
    """
    near = np.sqrt(squared_distances_to_others(Z, U, own))
    return (float(np.median(near)) if near.size else 0.0) or _row_size(Z)


#: a component started on a jittered copy of a row lies within this many times
#: the jitter's root-mean-square length of it (a normal draw beyond 5 standard
#: deviations: about 6e-7 in one dimension, less in more)
_COPY_JITTER_SPAN = 5.0
#: a component closer to a row than this fraction of its class's unit
#: (:func:`data_scale` of the class's rows) lies on that row or on a near copy of it
_OWN_FRACTION = 1e-2


def _own_tolerance(
    X, Z, T, counts, U: np.ndarray, codes: np.ndarray, own_rows_only: bool
) -> np.ndarray:
    """Per initial component (as ``_build`` places them: ``counts`` per class, class
    codes ``T``; None: one k-means over all rows), the squared distance in ``Z``'s
    space within which it is a row's own component, not another one
    (:func:`squared_distances_to_others`).

    * components k-means starts on jittered copies of a class's rows (fewer
      distinct rows than components, :func:`~skproto.prototypes.kmeans_prototypes`):
      5 times the jitter's length, ``(5 * scale)**2 * dim``; counted, the typical
      distance, ``sigma`` and the margin were about the jitter (1e-3 of the data's
      spread): 50 classes of 2 rows, ``sigma`` 0.012 where 13 fits, the
      temperature 43 where 0.04;
    * a class's components: 1 % of the class's unit, so that a near copy of a row
      (a duplicate that differs in the 6th digit), on which k-means put a
      component of its own, is the row: counted, 50 classes of 3 rows, each
      twice with 1e-6 between the copies, had ``sigma`` 6e-6 where 12 fits, the
      temperature at its bound (999.9) and a test log-loss of 14.2 against 2.0.
      Relative to the class, not to all the data: a class far from the others
      does not make the near classes' own components the rows themselves. The
      class's unit is its rows' root mean square distance to their mean, at least
      the median distance from its components ``U`` to the nearest of another
      class (``codes``): a class of one distinct row has no spread (its size about its
      own mean value read a feature's offset: 50 classes of one row, a feature
      shifted by 1e4, ``sigma`` 1.4e4 where 13 fits, CBC's accuracy 0.05 against
      0.50), and a row with a near copy of it, one component between the two, has
      only the copies' difference (``sigma`` 4e-6, the temperature at its bound,
      a test log-loss of 17.8 against 2.6).
    """
    jitter = (_COPY_JITTER_SPAN * jitter_scale(X)) ** 2 * Z.shape[1]
    if counts is None:  # one k-means over all rows: no class
        return np.full(len(U), jitter if starts_on_copies(X, len(U)) else 0.0)
    members = class_members(T, len(counts))
    if own_rows_only:  # (as classwise_kmeans: a class without rows has none)
        counts = np.where([len(m) > 0 for m in members], counts, 0)
    bound = []
    for c, (m, k) in enumerate(zip(members, counts)):
        if not k:
            continue
        if not len(m):  # at the mean of all rows, jittered: the row of a one-row batch
            bound.append(jitter)
            continue
        # (unrounded, about the class's mean: data_scale's power of two broke X * c,
        # and its fallback where the median is 0 read a feature's offset)
        unit = float(np.sqrt(np.mean(np.sum((Z[m] - np.mean(Z[m], axis=0)) ** 2, axis=1))))
        others = codes != c
        if others.any():  # (at least the distance to another class: near copies of
            # rows 1e-3 apart, a class's only spread, were each other's other component
            # under 1e-3 of it, and sigma fell to their gap, CBC's accuracy to 0.02)
            apart = np.median(np.sqrt(min_squared_distances(U[codes == c], U[others])))
            unit = max(unit, float(apart))
        near = (_OWN_FRACTION * unit) ** 2
        bound.append(max(near, jitter) if starts_on_copies(X[m], int(k)) else near)
    return np.repeat(np.asarray(bound, dtype=float), counts[counts > 0])


def _row_size(Z: np.ndarray) -> float:
    """The median norm of the rows ``Z``, each about its own mean value (1.0 for
    none, or rows at the origin): the scale a stream whose first batch has one
    distinct row can read in ``Z``'s units, whatever common offset they have
    (:func:`~skproto._torch.training._about_own_mean`).

    With no distance between its rows, the typical distance, ``sigma`` and the
    margin were 1.0 and the components stepped in units of 1, whatever the
    units of ``X``: wine (standardised) streamed from a first batch of one row
    read 0.966 in its units and 0.612 at ``X * 1e-3`` (margin 700 of its units).
    """
    Z = _about_own_mean(np.asarray(Z, dtype=np.float64)) if len(Z) else Z
    size = float(np.median(np.linalg.norm(Z, axis=1))) if len(Z) else 0.0
    return size if np.isfinite(size) and size > 0 else 1.0


def _largest_detected_ratio() -> float:
    """The largest ``dist / sigma`` whose detection ``exp(-dist / sigma)`` float32
    holds as more than 0 (a subnormal number: about ``150 ln 2``, 103.97)."""
    lo, hi = 80.0, 120.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.exp(-np.float32(mid)) > 0 else (lo, mid)
    return lo


#: ``dist / sigma`` beyond which a detection rounds to 0 in float32
_DETECTED_RATIO = _largest_detected_ratio()
#: ``dist / sigma`` beyond which a detection is below float32's epsilon (about 15.9)
_RESOLVED_RATIO = -float(np.log(FLOAT32_RESOLUTION))


def _ceil_3g(value: float) -> float:
    """``value`` rounded up to three significant digits (a bound shown in a message
    that must not fall below the bound it names)."""
    step = 10.0 ** (np.floor(np.log10(value)) - 2)
    return float(np.ceil(value * (1 + 1e-9) / step) * step)


def _check_detections(
    Z: np.ndarray,
    U: np.ndarray,
    sigma: float,
    auto: float,
    typical: float,
    negative: bool,
    own: np.ndarray | None = None,
) -> None:
    """Raise where every detection ``exp(-dist / sigma)`` of the rows ``Z`` by the
    initial components ``U`` rounds to 0 in float32, or (``negative``: the
    positive-negative head) where half of the rows have every detection below
    float32's resolution (``auto``: ``sigma="auto"``, ``typical``: the rows'
    median distance to their nearest component).

    Every row then gets the same scores and nothing of ``X`` is learnt
    (``sigma=1e-4`` on iris kept the initial model, accuracy 0.33); below about
    ``1e-19`` the gradient of ``sigma``, ``0 * dist / sigma**2``, was NaN:
    "Training diverged ... Lower learning_rate", whatever the rate. The message
    names the sigma below which no row is detected, and not as a usable one: just
    above it only the nearest row is, by a subnormal number, and the head learnt
    nothing there either (iris: accuracy 0.33 from it up to some 6 times it, the
    message had called it the least usable sigma).

    A row lying on a component (as :func:`_typical_distance` decides: within the
    rounding of the distance, or ``own``, see :func:`_own_tolerance`) does not
    count for the first check (it was 1 % of the whole data's unit: with one
    class of standardised iris moved 1,000 units away, every row of the two near
    classes lay "on" a component, nothing was checked, and ``sigma=1e-3`` trained
    to accuracy 0.33, silently, ``1e-20`` to "Training diverged"). Its component
    detects it by 1 whatever ``sigma``: counted, it let through a sigma of 1e-20
    (iris, 30 components: "Training diverged ... Lower learning_rate"); with no
    other row (one row a class, or duplicate rows each
    on its class's component) there is nothing else to check: the rows are then
    checked against their own components (a row "on" one by the tolerance may lie
    far from it at ``sigma``: every class far from the others), but for those
    exactly on it (a one-row class among far ones let ``sigma=1e-20`` through to
    "Training diverged"); all exactly on one, nothing. For the second, such a
    row is detected (its distance is its own component's): measured from the
    next component instead, the median of one-row classes or duplicate rows was
    the distance between classes, and a sigma fitted to the classes' spread was
    refused (blobs 20 apart of spread 1, one row a class: test accuracy 1.0 at
    ``sigma=1``; 4 one-hot patterns of 50 rows each: 1.0 at ``sigma=0.01``).

    The positive-negative head scores a row ``sum_k r-_kc + d_k (r+_kc - r-_kc)``:
    where every ``d_k`` is below float32's epsilon the sum is ``sum_k r-_kc``, the
    same for every such row. With half of the rows so, it learnt nothing
    (raw iris, ``sigma=1e-3``: a few rows detected, test accuracy 0.32 against
    0.89 at "auto", no warning). The positive head, ``sum_k r+_kc d_k``, keeps
    the rows apart at any detection above 0 (its predictions are those of the
    nearest component).
    """
    if not len(Z) or not len(U):
        return
    dist = np.sqrt(min_squared_distances(Z, U))  # (a row's own component included)
    near, on_component = nearest_others(Z, U, own)
    off = np.sqrt(near[~on_component])  # the rows not lying on a component
    if not off.size:
        # every row on a component (within its tolerance): each is detected by it
        # alone, unless even that detection rounds to 0 (every class far from the
        # others, as two classes of standardised iris 1,000 apart: each class's unit,
        # and so its tolerance, is that distance, every row lay "on" its component,
        # nothing was checked, and sigma=1e-20 went to "Training diverged", 1e-3
        # with the positive-negative head to accuracy 0.5, silently)
        # (but a row exactly on its component, a one-row class or duplicate rows, is
        # detected by 1 whatever sigma: counted, a one-row class among far ones let
        # sigma=1e-20 through to "Training diverged"; all rows so: nothing to check)
        exact = nearest_others(Z, U)[1]
        off, on_component = dist[~exact], exact
        if not off.size:
            return
    nearest = float(np.min(off))
    # (capped: float32 cannot hold the ratio of a sigma of 1e-300)
    if np.exp(-np.float32(min(nearest / sigma, 1e4))) > 0:
        median = float(np.median(dist))  # (a row on a component: detected by about 1)
        if negative and median > sigma * _RESOLVED_RATIO:
            raise ValueError(
                f"sigma={sigma!r} is too small for these rows: they lie a median "
                f"{median:.3g} from their nearest component, so half of them have every "
                f"detection exp(-dist / sigma) below float32's resolution (its epsilon, "
                f"{FLOAT32_RESOLUTION:.2g}; sigma must be at least "
                f"{_ceil_3g(median / _RESOLVED_RATIO):.3g} here), and the "
                "positive-negative CBC head scores every such row alike (sum_k r-_kc): "
                f"it cannot learn from X. Use sigma='auto' ({auto:.3g} here) or a sigma "
                "of that order (a few times that bound still learns little), or "
                "reasoning='positive', which keeps such rows apart."
            )
        return
    on = int(on_component.sum())
    other = "other " if on else ""
    raise ValueError(
        f"sigma={sigma!r} is too small for these rows: every detection "
        f"exp(-dist / sigma) of a training row rounds to 0 in float32"
        + (f", but for the {on} rows lying on a component, detected by it alone" if on else "")
        + f" (the nearest component of any {other}row is {nearest:.3g} away; no "
        f"{other}row is detected below sigma={_ceil_3g(nearest / _DETECTED_RATIO):.3g}), "
        f"so every {other}row gets the same class scores and the CBC head cannot learn "
        f"from X. Use sigma='auto' ({auto:.3g} here) or a sigma of that order: the rows "
        f"lie a median {typical:.3g} from their nearest component, and a sigma far below "
        "it detects almost no row (just above that bound, only the nearest row, and "
        "nothing is learnt)."
    )


def _as_rows(W: np.ndarray) -> np.ndarray:
    """``W`` rounded to float32, as the training rows are before they are taken about
    the origin: a component on a row is then exactly where the network holds that
    row (rounded after the shift instead, a component on a wine row sat 1e-8 from it,
    and Adam turned that gradient into full steps away from it)."""
    return np.asarray(W, dtype=np.float32).astype(np.float64)


def _rows_as_rows(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``W`` with the components equal to a row of ``X`` (k-means++ on a class of one
    row) rounded to float32 as that row is (:func:`_as_rows`); the others, means of
    rows, keep their float64 value, which the network holds about its origin."""
    W = np.array(W, dtype=np.float64)
    if not len(W) or not len(X) or not W.shape[1]:
        return W
    key = int(np.argmax(np.ptp(X, axis=0)))  # (a row equal to w is so in every column)
    near = X[np.isin(X[:, key], W[:, key])]
    candidates = np.flatnonzero(np.isin(W[:, key], near[:, key]))
    on = np.zeros(len(W), dtype=bool)
    if candidates.size:
        # whole rows compared at once, sorted (a loop over the components scanned every
        # row sharing the key's value: sparse rows, whose means are 0 there, took
        # 117 s for 3,000 components and 50,000 rows of 300 columns; now about 1 s)
        on[candidates] = np.isin(_row_keys(W[candidates]), _row_keys(near))
    W[on] = _as_rows(W[on])
    return W


def _row_keys(A: np.ndarray) -> np.ndarray:
    """The rows of ``A`` (a copy the caller gives up: changed in place) as single
    bytes values, equal where the rows are equal as numbers (the rows are finite;
    -0.0 becomes 0.0)."""
    A = np.require(A, dtype=np.float64, requirements=("C", "W"))
    np.add(A, 0.0, out=A)
    return A.view(np.dtype((np.void, A.itemsize * A.shape[1])))[:, 0]


def _about(X: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """``X - origin``: rows in the coordinates the components train in."""
    return X - origin


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _round_down(radius: np.ndarray, dtype) -> np.ndarray:
    """``radius`` in ``dtype``, rounded toward zero: a certificate must not grow."""
    out = radius.astype(dtype)
    up = out.astype(np.float64) > radius
    out[up] = np.nextafter(out[up], dtype.type(0))
    return out


class RBFPrototypeClassifier(TorchPrototypeClassifier):
    """RBF / classification-by-components network with a certified robustness radius.

    Components ``w_k`` (``prototypes_``) live in the input space. A sample is
    compared with them by the Euclidean distance after an optional learned
    linear map ``Omega``, ``dist_k(x) = ||Omega (x - w_k)||``, and each
    component is *detected* with probability ``d_k = exp(-dist_k / sigma)``.
    A head turns detections into class scores ``p_c``: the stable CBC
    (``"positive_negative"``: a component argues for a class by its presence
    or by its absence), positive reasoning only (``"positive"``, a normalised
    RBF network) or the nearest-prototype head (``"nearest"``, GLVQ:
    ``p_c = max_{k in c} d_k``). ``decision_function`` returns ``p_c`` and
    ``predict_proba`` ``p_c^(1/T) / sum p^(1/T)`` (``T = temperature_``; the
    plain normalisation ``p_c / sum p`` at ``T = 1``). By default
    (``loss="robust"``) the nearest head is trained to enlarge its certified
    radius, with three components per class.

    :meth:`certified_radius` returns, per sample, a radius no L2 perturbation
    below which changes the prediction: Theorem 1 of stable CBC for the CBC
    heads, the bisector bound for the nearest head, computed in float64 and
    lowered by a bound on its rounding error. ``loss="robust"`` trains the
    head to enlarge that very certificate. The formulas are in the
    :doc:`user guide <rbf>`.

    Parameters
    ----------
    n_components : int or None, default=None
        Number of components. None: one per class, three for
        ``loss="robust"``. Initialised by class-wise
        k-means++, shared out over the classes as evenly as possible (earlier
        classes first); with fewer components than classes, by k-means on all
        the data (CBC heads; the nearest head needs one per class, and warns
        and uses ``n_classes`` components instead).
    reasoning : {"positive_negative", "positive", "nearest"}, default=None
        The head. None: ``"positive_negative"`` for ``loss="cbc"``, and
        ``"nearest"`` for ``loss="robust"`` (its bisector certificate is
        tighter than the CBC bound: more test points certified at every
        radius, ``benchmarks/results/defaults.md``) and ``loss="glvq"``
        (which accepts no other head).
    loss : {"robust", "cbc", "glvq"}, default="robust"
        ``"robust"``: the hinge ``max(0, rho - radius)`` of the signed
        certified radius, averaged over radii ``rho`` from 0 to ``margin``
        (the default: on CLINC150 and digits it is the most
        accurate, best calibrated and most certified of the three,
        ``benchmarks/results/defaults.md``); ``"cbc"``: the CBC margin loss
        ``max(0, max_{j != y} p_j - p_y + margin)``; ``"glvq"``: GLVQ
        (nearest head).
    margin : float or None, default=None
        For ``"cbc"``, the score margin (default 0.3); for ``"robust"``, the
        largest radius aimed for, in input units (default: 0.7 times the
        median distance from a training sample to its nearest initial
        component). ``"glvq"`` has no margin: one given is ignored, with a warning.
        Stored in ``margin_``. A ``"robust"`` margin below float32's smallest
        normal number (1.2e-38) trains as 0, the plain hinge (its limit).
    sigma : float > 0 or "auto", default="auto"
        Initial ``sigma``; "auto": the median distance from a training sample
        to its nearest initial component divided by ``ln 2``. With the CBC
        heads, a ``sigma`` so small that every detection of the training rows
        rounds to 0 in float32 (nothing of X could be learnt; a row lying on a
        component, which detects it whatever ``sigma``, does not count) raises a
        ``ValueError``; with ``"positive_negative"`` also one that leaves half
        of the rows every detection below float32's epsilon (it scores them
        all alike): ``sigma`` below their median distance to the nearest
        component (0 for a row on one) divided by about 15.9.
    learn_sigma : bool, default=True
        Train ``sigma`` (one value shared by all components) where the loss
        depends on it: the CBC losses. The nearest head's losses (``"robust"``,
        ``"glvq"``) compare distances only, so ``sigma`` keeps its start
        there and the fitted temperature carries the scale of the scores:
        ``learn_sigma`` is ignored by the nearest head.
    temperature : "auto" or float >= 1.2e-38, default="auto"
        ``predict_proba`` is ``p_c^(1/T) / sum_j p_j^(1/T)`` (``p_c`` the class
        scores of ``decision_function``, unchanged). "auto": ``T`` is fitted
        after training to minimise the log-loss on the early-stopping split
        (the training rows without early stopping). At least float32's
        smallest normal number: torch keeps it as float32, where less rounds
        to 0.
    omega_dim : int or None, default=None
        Learn a linear map ``Omega`` of shape ``(omega_dim, n_features)``
        (initialised to the first principal axes). None: no map.
    project : bool, default=False
        After training, move every component onto its nearest training row
        (of its own class for the nearest head, of any class for the CBC
        heads; distinct rows, closest pairs first; every row passed to
        ``fit``), then train the other parameters (the CBC heads' reasoning
        and ``sigma``, ``Omega``) for ``project_epochs`` epochs on all rows.
        The nearest head (``loss="robust"`` or ``"glvq"``) without ``Omega``
        has nothing left to train: its components are the model.
    project_epochs : int, default=10
        Epochs of training after projection, where something is left to
        train (a CBC head or ``Omega``). Ignored when ``project=False``, and
        by the nearest head without ``Omega``.
    max_epochs : int, default=100
        Maximum number of epochs (passes over the training data).
    batch_size : int, default=128
        Mini-batch size.
    learning_rate : float, default=1e-3
        Adam learning rate.
    weight_decay : float >= 0, default=0.0
        Adam weight decay. Use 0 for class-incremental ``partial_fit`` (it
        draws the earlier components toward the point they train about, the
        first fit's mean).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data, stop when its loss has
        not dropped by ``tol`` for ``n_iter_no_change`` epochs and keep the
        epoch with the lowest held-out loss.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training rows held out for early stopping and for the
        fitted temperature, in (0, 1). Ignored when ``early_stopping=False``.
    n_iter_no_change : int, default=10
        Epochs without improvement before early stopping.
    tol : float, default=1e-4
        The drop of the held-out loss (the training loss without early
        stopping) that counts as an improvement.
    class_weight : dict, "balanced" or None, default=None
        Weights of classes in the loss, as in scikit-learn.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where training runs (``"cuda:1"`` names one GPU of several, ``"auto"``
        takes CUDA where torch finds it); fitted parameters are float64 numpy
        arrays and prediction runs on the CPU.
    n_jobs : int or None, default=None
        CPU threads (torch, and BLAS/OpenMP during fit). None: 1; -1: every
        usable core.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling (bit-for-bit repeatable on the
        CPU for a fixed seed and ``n_jobs``).
    verbose : int, default=0
        Print per-epoch loss and accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    prototypes_ : ndarray of shape (n_components, n_features)
        The components ``w_k``, in the input space.
    prototype_labels_ : ndarray of shape (n_components,)
        Class label of each component: its own class for the nearest head;
        for the CBC heads the class it reasons most positively for.
    prototype_sample_indices_ : ndarray of shape (n_components,)
        Training row each component was projected onto (-1 if not).
    prototype_cases_ : ndarray of shape (n_components,), dtype=object, or None
        The raw case (a text, an image, ...) of the training row each
        component is, when ``fit`` received rows tagged with their raw inputs
        (:func:`skproto.explain.attach_cases`, or the output of an encoder of
        :mod:`skproto.encoders`). None when the rows were not tagged; an entry
        is None for a component without a case (one not projected onto a row).
        ``explain`` names these cases.
    reasoning_positive_, reasoning_negative_ : ndarray of shape (n_components, n_classes)
        ``r+`` and ``r-`` (zero where absent). For the CBC heads, per class,
        the sum of both over components is 1 (0 for a class without training
        rows: see ``partial_fit``); for the nearest head, ``r+`` is
        the 0/1 membership of each component in its class (summing to the
        class's number of components) and ``r-`` is 0, both built when read
        (the model keeps each component's class, ``prototype_labels_``).
    temperature_ : float
        The temperature of ``predict_proba``.
    sigma_ : float
        Detection scale ``sigma``.
    omega_ : ndarray of shape (omega_dim, n_features) or None
        The learned map ``Omega``.
    margin_ : float or None
        Margin used by the loss (see ``margin``); None for ``"glvq"``.
    history_ : dict
        Per-epoch ``loss``, ``train_score``, ``val_loss``, ``val_score`` and
        ``seconds``; ``accuracy_before_projection``,
        ``val_accuracy_before_projection``, ``accuracy_after_projection``;
        ``refit``: the epochs after projection (``method``, ``loss`` per
        epoch, ``n_iter``, ``seconds``), or None where none ran;
        ``temperature``: how ``temperature_`` was fitted.
    loss_curve_ : list of float
        Training loss per epoch.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    Notes
    -----
    ``score_samples`` (higher = more in-distribution) is minus the distance
    to the nearest component (through ``Omega`` when there is one), not the
    ``logsumexp`` of the class scores that the other estimators use.

    See Also
    --------
    certified_accuracy : Fraction of samples classified correctly with a radius above ``eps``.
    ProtoClassifier : Learned prototypes that are training cases, no certificate.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skproto import RBFPrototypeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RBFPrototypeClassifier(max_epochs=50, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> r = clf.certified_radius(X, y)   # 0 where misclassified
    >>> bool((r >= 0).all())
    True
    >>> ex = clf.explain(X[:1])
    >>> bool(np.allclose(ex.scores, clf.decision_function(X[:1])))
    True
    """

    _pairwise_name = "detection probability"
    _bias_name = "bias"
    _prototype_parameter = "components"

    _structure_params = ("n_components", "reasoning", "loss", "omega_dim", "sigma", "learn_sigma")

    _parameter_constraints: dict = {
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "reasoning": [None, StrOptions({"positive_negative", "positive", "nearest"})],
        "loss": [StrOptions({"cbc", "robust", "glvq"})],
        "margin": [None, Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "sigma": [StrOptions({"auto"}), Interval(Real, 0, FLOAT32_MAX, closed="neither")],
        "learn_sigma": ["boolean"],
        "temperature": [
            StrOptions({"auto"}),
            Interval(Real, FLOAT32_TINY, FLOAT32_MAX, closed="left"),
        ],
        "omega_dim": [None, Interval(Integral, 1, None, closed="left")],
        "project": ["boolean"],
        "project_epochs": [Interval(Integral, 0, None, closed="left")],
        **TorchPrototypeClassifier._training_constraints,
    }

    def __init__(
        self,
        n_components: int | None = None,
        *,
        reasoning: str | None = None,
        loss: str = "robust",
        margin: float | None = None,
        sigma: str | float = "auto",
        learn_sigma: bool = True,
        temperature: str | float = "auto",
        omega_dim: int | None = None,
        project: bool = False,
        project_epochs: int = 10,
        max_epochs: int = 100,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        class_weight: dict | str | None = None,
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_components = n_components
        self.reasoning = reasoning
        self.loss = loss
        self.margin = margin
        self.sigma = sigma
        self.learn_sigma = learn_sigma
        self.temperature = temperature
        self.omega_dim = omega_dim
        self.project = project
        self.project_epochs = project_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_failure
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RBFPrototypeClassifier:
        """Train components, reasoning, ``sigma`` (and ``Omega``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,)
            Target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in the loss; rows of weight 0 are absent.

        Returns
        -------
        self : RBFPrototypeClassifier
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, warm=False)

    @partial_fit_context
    @unchanged_on_failure
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> RBFPrototypeClassifier:
        """One epoch of training on a batch; with the nearest head, new classes may arrive.

        With the nearest-prototype head (``loss="glvq"``, and ``"robust"`` by
        default) a class seen for the first time gets its components from its
        own rows of this batch (class-wise k-means++, as many per class as the
        model has on average), and the call's epoch trains only those new
        components: the other classes' components, ``sigma`` and ``Omega``
        stay where they were. The earlier classes, whose rows the call does
        not see, are stood for by Gaussian draws of their mean and spread. A
        call without new classes trains every parameter for one epoch. Without
        ``classes`` on the first call, ``classes_`` grows (sorted) as labels
        arrive, and the first call may hold a single class; with it, the
        classes are fixed, and a declared class gets its components from its
        first rows, in whichever call they arrive (until then its ``p_c`` is 0,
        its probability 0, and ``explain`` names it as no row's runner-up).
        The CBC heads mix every component into every class, so they need
        ``classes`` on the first call and keep them; a declared class has no
        reasoning weights (its ``p_c`` is 0, its probability 0) until its first
        rows arrive. ``partial_fit`` does
        not project; it refits ``temperature_`` (with ``temperature="auto"``)
        on every batch seen so far, each scored right after it was learnt.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,)
            Target labels.
        classes : array-like of shape (n_classes,), default=None
            All classes (at least two), on the first call; later, equal to
            ``classes_``, and then every label of ``y`` must be one of them.
        sample_weight : array-like of shape (n_samples,), default=None
            Rows of weight 0 are absent, as in ``fit``.

        Returns
        -------
        self : RBFPrototypeClassifier
            The fitted estimator.
        """
        if hasattr(self, "_state"):
            self._check_structure("partial_fit", "call fit, or partial_fit on a fresh estimator")
            if self.loss != "glvq":
                # the margin the parameters give now, as for the temperature and the
                # learning rate: a margin set since the fit was ignored (margin_ and the
                # loss kept the fitted one) while the model recorded following it
                auto = self._default_margin()
                self.margin_ = auto if self.margin is None else float(self.margin)
        if self._head_kind != "nearest":
            return self._partial_fit(X, y, classes, sample_weight)
        first = not hasattr(self, "_state")
        X, y, sample_weight = self._validate_batch(X, y, sample_weight, reset=first)
        y = np.asarray(y).ravel()
        if first:
            declared = None if classes is None else _validation.check_declared_classes(classes)
            classes_, _, multilabel = _validation.encode_fit_targets(
                self, y, classes=declared, allow_one_class=True
            )
        else:
            _validation.check_same_classes(self, classes)
            fixed = getattr(self, "_classes_fixed", False)
            new = _validation.new_labels(self, y, fixed=fixed, classes=classes)
            # (a union with no new label took y's dtype: int classes_ became float)
            classes_ = _validation.union_labels(self.classes_, new) if new.size else self.classes_
        w = self._training_weights(_validation.label_codes(classes_, y), sample_weight, classes_)
        kept = counted_rows(w, context="the first call to partial_fit" if first else "")
        if kept is not None:  # rows of weight 0 are absent
            X, y, w = X[kept], y[kept], w[kept]
        rng = check_random_state(self.random_state)
        rng = np.random.RandomState(rng.randint(2**31 - 1) + getattr(self, "n_iter_", 0))
        keep_exact = {} if first else self._kept_prototypes()
        with training_context(self._n_threads):
            if first:
                self.classes_, self._multilabel = classes_, multilabel
                self._classes_fixed = declared is not None
                self.n_iter_ = 0
                net = self._build(X, _validation.label_codes(classes_, y), rng)
                net = net.to(dtype=torch.float32)
                history = new_history()
            else:
                n_old, earlier = len(self._state["components"]), self.classes_
                state = self._grown_state(classes_, X, y, rng)
                net = self._continued_network(state)
                history = self.history_
                # (none in a model pickled before they were kept: its earlier classes
                # are not replayed, as then, and partial_fit raised an AttributeError)
                self._moments = getattr(self, "_moments", None)
                if self._moments is not None:
                    self._moments = reindex_moments(self._moments, earlier, self.classes_)
            net = net.to(self._device)
            params = self._trainable(net)
            T = _validation.label_codes(self.classes_, y)
            Xb, Tb, wb = X.astype(np.float32, copy=False), T, w
            kept = None
            if not first and len(net.components) > n_old and self.weight_decay > 0:
                warn_user(
                    "partial_fit brings new classes to a model trained with weight_decay > 0: "
                    "its components were drawn toward the first fit's mean, the new ones start "
                    "at their own rows, and the earlier classes' queries can fall to them (see the "
                    "user guide). Use weight_decay=0 for class-incremental learning.",
                    UserWarning,
                )
            if not first and len(net.components) > n_old:
                # new classes: only their components learn in this call, so the
                # earlier classes' regions stay exactly where they were; the
                # earlier classes' rows are stood for by Gaussian draws
                frozen = torch.ones(
                    len(net.components), 1, device=self._device, dtype=net.components.dtype
                )
                frozen[:n_old] = 0.0
                net.components.register_hook(lambda g: g * frozen)
                # (weight_decay still moved them: Adam adds it after the hook)
                kept = net.components[:n_old].detach().clone()
                params = [net.components]
                if self._moments is not None:
                    present = np.unique(T)
                    Xr, Tr = gaussian_replay(self._moments, present, _REPLAY_ROWS, rng)
                    per_row = average_class_weight(w, T, _REPLAY_ROWS)  # an average class each
                    Xb, Tb = np.concatenate([Xb, Xr]), np.concatenate([T, Tr])
                    wb = np.concatenate([w, np.full(len(Tr), per_row, dtype=np.float32)])
            if not first and self._moments is not None:  # (the first call's: _build's)
                self._moments = merge_moments(
                    self._moments, class_moments(X, T, len(self.classes_))
                )
            config = self._training_config(1, "partial_fit")
            if kept is not None:
                # (only the new components train, started on their classes' rows: where
                # those rows sit on them and lie far from the rest, no gradient reaches
                # them, and the loss is the frozen classes'. Nothing is wrong: the
                # untrained-model warning fired at default parameters, a batch of 2 iris
                # rows bringing a declared class)
                config = replace(config, warn_unmoved=False)
            if len(T):  # the batch has rows of positive weight
                train(
                    net,
                    params,
                    self._batch_loss(net),
                    Xb,
                    Tb,
                    wb,
                    config,
                    rng,
                    history=history,
                )
                if kept is not None:
                    with torch.no_grad():
                        net.components[: len(kept)] = kept
                self._calibrate_batch(net, X, T, w, history)
        self.n_iter_ += int(len(T) > 0)  # (an epoch ran; none for a batch of weight 0)
        self._store(net, np.full(len(net.components), -1), history, **keep_exact)
        self._keep_cases(None, X, y, first_row=0)  # earlier components keep their cases
        return self

    def _grown_state(self, union, X, y, rng) -> dict:
        """The fitted state for the classes ``union`` (``classes_`` and new labels), with
        components for the labels of ``y`` (rows ``X``) that have none yet."""
        state = {k: np.array(v) for k, v in self._state.items()}
        codes_of = _validation.label_codes
        labels = codes_of(union, self.classes_)[state["head.labels"].astype(np.intp)]
        # new labels, and declared classes whose first rows arrive now
        arriving = np.setdiff1d(*_validation.joint_labels(union[labels], np.unique(y))[::-1])
        if arriving.size:
            counts = np.zeros(len(union), dtype=np.intp)
            counts[codes_of(union, arriving)] = max(1, len(labels) // len(np.unique(labels)))
            Xf = np.asarray(X, dtype=np.float64)
            W, codes = classwise_kmeans(Xf, codes_of(union, y), counts, rng)
            W = _rows_as_rows(W, Xf)  # (as _build's)
            labels = np.concatenate([labels, codes])
            state["components"] = np.concatenate([state["components"], W])
        state["head.labels"] = labels.astype(np.float64)
        state.pop("head.membership", None)  # (kept by models fitted before the head dropped it)
        self.classes_ = union
        self._codes = labels
        return state

    def _default_margin(self) -> float:
        """The margin ``margin=None`` gives this fitted model (``_auto_margin``).

        A model fitted (and pickled) before ``_auto_margin`` was kept: its
        ``margin_`` where it was fitted at ``margin=None``, 0.3 for ``"cbc"``;
        otherwise (``"robust"`` fitted at a given margin) the default is not
        known any more, and ``margin_`` is kept.
        """
        auto = self.__dict__.get("_auto_margin")
        if auto is not None:
            return auto
        # ("robust": fitted at margin=None, margin_ is its default; fitted at a given
        # margin, the typical distance it came from is gone, and margin_ is kept)
        return 0.3 if self.loss == "cbc" else self.margin_

    # ------------------------------------------------------------ template
    @property
    def _head_kind(self) -> str:
        if self.loss == "glvq":
            return "nearest"
        if self.reasoning is None:  # the head whose certificate is tighter for "robust"
            return "nearest" if self.loss == "robust" else "positive_negative"
        return self.reasoning

    _calibrates_batches = True  # its losses do not train the scale of log p_c

    def _set_scales(self) -> tuple[str, ...]:
        # (the nearest head's losses compare distances: no scale; temperature is fitted
        # after training)
        return ("sigma",) if self._head_kind != "nearest" and self.sigma != "auto" else ()

    def _build(self, X, T, rng):
        """Initial network: k-means components, Omega, sigma, reasoning logits."""
        if self.loss == "glvq" and self.margin is not None:
            warn_user(
                f"margin={self.margin!r} is not used by loss='glvq', which has no margin.",
                UserWarning,
            )
        X = np.asarray(X, dtype=np.float64)
        n_classes, p = len(self.classes_), X.shape[1]
        if np.ndim(T) == 1:  # single-label: what class-incremental replay needs
            self._moments = class_moments(X, T, n_classes)
        K = self.n_components
        if K is None:  # several per class where the certificate gains from them
            K = n_classes * (_ROBUST_PER_CLASS if self.loss == "robust" else 1)
        if self.loss == "glvq" and self.reasoning not in (None, "nearest"):
            raise ValueError(
                f"loss='glvq' trains the nearest-prototype head; got reasoning={self.reasoning!r}."
            )
        if n_classes > K and self._head_kind == "nearest":
            warn_user(
                f"The nearest-prototype head needs at least one component per class: "
                f"n_components={K} < {n_classes} classes; using {n_classes} components.",
                UserWarning,
            )
            K = n_classes
        if n_classes <= K:
            counts = np.full(n_classes, K // n_classes) + (np.arange(n_classes) < K % n_classes)
            # (a class without rows gets its components when they arrive: _grown_state)
            own = self._head_kind == "nearest" and np.ndim(T) == 1
            W, codes = classwise_kmeans(X, T, counts, rng, own_rows_only=own)
        else:
            W = kmeans_prototypes(X, X, K, rng)
            codes = np.zeros(K, dtype=int)  # CBC: reasoning decides; updated after training
            counts = own = None
        omega = None
        if self.omega_dim is not None:
            axes = principal_axes(X, self.omega_dim)
            omega = np.zeros((self.omega_dim, p))
            omega[: len(axes)] = axes
            full = min(self.omega_dim, p)
            if len(axes) < full:
                # fewer rows than omega_dim (a stream's first batch): a row of zeros
                # never learns (the gradient of ||Omega z||^2 in it is 0), and the map
                # stayed of rank len(axes) for good (a first batch of one row and
                # omega_dim=3: two rows of Omega exactly 0 after 10 epochs on all of
                # wine); the rows go on with directions the axes do not span
                # (QR of the axes and as many coordinate axes as rows are missing: its
                # leading columns are those of [axes, I], at O(p * omega_dim) memory;
                # QR of all p coordinate axes took 12 s and 600 MiB at p = 4096)
                need = np.eye(p, full - len(axes)).T
                Q, _ = np.linalg.qr(np.vstack([axes, need]).T)
                omega[len(axes) : full] = Q[:, len(axes) : full].T
        Z = X if omega is None else X @ omega.T
        U = W if omega is None else W @ omega.T
        own = _own_tolerance(X, Z, T, counts, U, codes, own_rows_only=bool(own))
        typical = _typical_distance(Z, U, own)
        sigma = typical / np.log(2.0) if self.sigma == "auto" else float(self.sigma)
        if self.sigma != "auto" and self._head_kind != "nearest":
            negative = self._head_kind == "positive_negative"
            _check_detections(Z, U, sigma, typical / np.log(2.0), typical, negative, own)
        # the default margin, kept for a later partial_fit at margin=None
        self._auto_margin = 0.3 if self.loss == "cbc" else _ROBUST_MARGIN * typical
        if self.loss == "glvq":  # (it was reported, unused)
            self.margin_ = None
        elif self.margin is not None:
            self.margin_ = float(self.margin)
        else:
            self.margin_ = self._auto_margin
        self._codes = codes
        if self._head_kind == "nearest":
            head = NearestHead(torch.as_tensor(codes, dtype=torch.long), n_classes)
        else:
            rows = 2 * K if self._head_kind == "positive_negative" else K
            logits = np.zeros((rows, n_classes))
            if n_classes <= K:  # start reasoning positively on a class's own components
                logits[np.arange(K), codes] = np.log(rows)
            # a class without rows (of positive weight) is scored p_c = 0 until they
            # arrive (_rows_arrive), as the nearest head scores a class without
            # components: it mixed every component in, and was predicted
            possible = np.bincount(np.asarray(T, dtype=np.intp), minlength=n_classes) > 0
            head = ReasoningHead(
                torch.as_tensor(logits, dtype=torch.float32),
                negative=self._head_kind == "positive_negative",
                possible=torch.from_numpy(possible),
            )
        # the components step in the data's units (sigma, through its log, and
        # the margin, a multiple of the typical distance, follow them already)
        self._data_scale = data_scale(X)
        # the components train about the rows' mean (fixed from here on: kept in the
        # state for partial_fit and pickled): where X lies far from the origin for
        # its spread, float32 there could not hold a step (digits + 2**20: test
        # accuracy 0.952 against 0.980, training stalled at its start)
        origin = training_centre(X)
        self._check_step_precision(W - origin, X)
        net = RBFNetwork(
            torch.as_tensor(_rows_as_rows(W, X) - origin, dtype=torch.float32),
            None if omega is None else torch.as_tensor(omega, dtype=torch.float32),
            torch.tensor(np.log(sigma), dtype=torch.float32),
            head,
            learn_sigma=self.learn_sigma,
            origin=torch.as_tensor(origin, dtype=torch.float32),
        )
        if self.temperature != "auto":  # a given temperature, as given
            net.temperature.fill_(float(self.temperature))
        in_units(net.components, self._data_scale)
        return net

    def _check_step_precision(self, W: np.ndarray, X: np.ndarray) -> None:
        """Warn where float32 cannot hold a training step of the components.

        ``W``: the initial components relative to the training origin (the
        rows' mean), as they are trained in float32. An Adam step moves them
        about ``learning_rate`` times the data's unit; where float32's spacing
        at their values exceeds it, the steps round away and the fit stays
        near its start. About the rows' mean, a common offset no longer does
        this (digits + 2**20 stalled at 0.952 against 0.980 where they were
        trained where ``X`` lies); a learning rate below about 1e-7, or a
        component some 1e4 data units from the mean, still does. Columns
        constant in ``X`` do not count: the components start at that value and
        need no step there.
        """
        varying = np.ptp(X, axis=0) > 0 if len(X) else np.zeros(W.shape[1], dtype=bool)
        W = W[:, varying]
        top = float(np.max(np.abs(W))) if W.size else 0.0
        spacing = float(np.spacing(np.float32(top)))
        step = self._learning_rate * self._data_scale
        if spacing > step:
            warn_user(
                f"{type(self).__name__} trains its components in float32 about the "
                f"training rows' mean: at values up to {top:.4g} from it float32's spacing "
                f"({spacing:.3g}) exceeds a training step (learning_rate x the data's "
                f"spread, {step:.3g}), so the steps round away and training barely moves "
                "them. Raise learning_rate, or scale X's far-out values down."
            )

    def _loss_floor(self) -> float:
        # (GLVQ's least loss is sigmoid(-2) = 0.1192, every row on a component of its
        # class: a stream's first row, on its component, warned that every gradient
        # was 0 "at a loss of 0.1192", blaming sigma, which GLVQ does not read)
        return _GLVQ_FLOOR if self.loss == "glvq" else 0.0

    def _batch_loss(self, net):
        margin, kind = self.margin_, self.loss
        unit = getattr(self, "_data_scale", 1.0)

        def loss(xb, tb, wb):
            if kind == "glvq":
                own = net.head.labels[None, :] == tb[:, None]
                per = glvq_loss(net.squared_distances(xb), own)
            elif kind == "robust":  # radii in the data's unit: the same loss in any units
                per = certified_hinge(net.certified_radius(xb, tb, smooth=True), margin) / unit
            else:
                per = cbc_margin_loss(net(xb), tb, margin)
            return weighted_mean(per, wb)

        return loss

    def _network(self, state, dtype):
        """The network of ``state``: in float32 (to train) about the state's origin, and
        in float64 (inference) about none, its components as stored (bit for bit)."""
        W = state["components"]
        n_classes = len(self.classes_)
        if self._head_kind == "nearest":
            labels = torch.from_numpy(np.array(state["head.labels"], dtype=np.int64))
            head = NearestHead(labels, n_classes)
        else:
            head = ReasoningHead(
                torch.zeros(state["head.logits"].shape, dtype=torch.float32),
                negative=self._head_kind == "positive_negative",
            )
        omega = state.get("omega")
        origin = None
        tensors = state_tensors(state)
        stored = tensors.pop("origin", None)
        if dtype != torch.float64:  # training: about the origin (a model pickled before
            # the origin was kept: its components' mean, rounded as one would be)
            if stored is None:
                stored = torch.from_numpy(training_centre(np.asarray(W, dtype=np.float64)))
            origin = torch.zeros(W.shape[1], dtype=torch.float32)
            tensors["origin"] = stored
            # components on a training row (projected) where the network holds that
            # row, float32(x) - origin; the others as trained, exact (w - origin)
            rows = self.__dict__.get("prototype_sample_indices_")
            tied = np.zeros(len(W), dtype=bool)
            if rows is not None:
                n = min(len(rows), len(W))
                tied[:n] = np.asarray(rows[:n]) >= 0
            if tied.any():
                tied_t = torch.from_numpy(tied)
                rounded = torch.from_numpy(_as_rows(np.asarray(W, dtype=np.float64)))
                tensors["components"] = torch.where(tied_t[:, None], rounded, tensors["components"])
            tensors["components"] = tensors["components"] - stored
        net = RBFNetwork(
            torch.zeros(W.shape, dtype=torch.float32),
            None if omega is None else torch.zeros(omega.shape, dtype=torch.float32),
            torch.zeros((), dtype=torch.float32),
            head,
            learn_sigma=self.learn_sigma,
            origin=origin,
        )
        if "head.labels" in tensors:
            tensors["head.labels"] = tensors["head.labels"].long()
        tensors.pop("head.membership", None)  # (a model fitted when the head kept it)
        if "head.logits" in tensors and "head.possible" not in tensors:
            # pickled before the head kept which classes have rows: every class
            tensors["head.possible"] = torch.ones(n_classes, dtype=torch.bool)
        net = net.to(dtype=dtype)  # before loading: float64 values stay exact
        net.load_state_dict(tensors)
        in_units(net.components, getattr(self, "_data_scale", 1.0))
        return net

    def _refit(self, net, X, T, w, history, rng, *, projected):
        """After projection: train everything but the components for ``project_epochs``."""
        if not (projected and self.project_epochs):
            return
        # (the nearest head's losses compare distances only: sigma gets no gradient)
        frozen = {"components"} | ({"log_sigma"} if self._head_kind == "nearest" else set())
        params = [p for name, p in net.named_parameters() if name not in frozen and p.requires_grad]
        if not params:  # e.g. the nearest head without Omega: nothing to refit
            return
        start = time.perf_counter()
        epochs = train(
            net,
            params,
            self._batch_loss(net),
            X,
            T,
            w,
            self._training_config(self.project_epochs, "after projection"),
            rng,
            score=self._score_fn(net),
        )
        history["refit"] = {
            "method": "adam",
            "loss": epochs["loss"],
            "n_iter": len(epochs["loss"]),
            "seconds": time.perf_counter() - start,
            "converged": None,
            "max_gradient": None,
        }

    def _prototype_groups(self, net):
        return self._codes if self._head_kind == "nearest" else None

    def _projection_space(self, net):
        if net.omega is None:  # (rows about the network's origin, as its components)
            embed = None if net.origin is None else partial(_about, origin=_numpy(net.origin))
            return embed, net.components.detach().cpu().numpy(), "sqeuclidean"

        def embed(X):
            return self._evaluate(net, X, "mapped_rows")

        with torch.no_grad():
            U = net.mapped_components().cpu().numpy()
        return embed, U, "sqeuclidean"

    def _snapped_values(self, net, rows):
        """A component projected onto float32 ``rows``: the rows about the origin."""
        return rows if net.origin is None else _about(rows, _numpy(net.origin).astype(np.float64))

    def _state_arrays(self, net) -> dict:
        """The state with the components in the input space (``w = origin + (w - origin)``,
        exact in float64), and the origin the training network takes them about."""
        state = super()._state_arrays(net)
        if "origin" in state:
            state["components"] = state["components"] + state["origin"]
        return state

    def _unchanged_prototypes(self, now, before, state) -> np.ndarray:
        """Compared as the training network holds them, about the origin (compared where
        they lie, a component that moved less than float32's spacing there, 0.125 at
        2**20, counted as unchanged and went back)."""
        origin = state.get("origin")
        if origin is None:
            return super()._unchanged_prototypes(now, before, state)
        held = (now - origin).astype(np.float32)
        # (held as trained, or, on a row, where the network holds that row: _network)
        trained = np.all(held == (before - origin).astype(np.float32), axis=1)
        on_row = np.all(held == (_as_rows(before) - origin).astype(np.float32), axis=1)
        return trained | on_row

    def _set_fitted_attributes(self, net):
        self.prototypes_ = self._state["components"]
        # (an earlier fit's, with another head)
        self._drop_membership_attributes(self._contributions_are_own_class)
        if self._head_kind != "nearest":
            net64 = self._inference_network()
            with torch.no_grad():
                rp, rn = (r.numpy() for r in net64.reasoning_weights())
            self.reasoning_positive_, self.reasoning_negative_ = rp, rn
        self.sigma_ = float(np.exp(self._state["log_sigma"]))
        self.temperature_ = float(self._state["temperature"])
        self.omega_ = self._state.get("omega")
        if self._head_kind != "nearest":
            self._codes = np.argmax(rp, axis=1)
        self.prototype_labels_ = self.classes_[self._codes]

    def _membership_attribute(self, name: str) -> np.ndarray:
        # the nearest head: r+ is each component's class, r- is 0
        if name == "reasoning_negative_":
            return np.zeros((len(self._codes), len(self.classes_)))
        return super()._membership_attribute(name)

    def __setstate__(self, state):
        if isinstance(state.get("_state"), dict):  # (kept until the head dropped it)
            state["_state"].pop("head.membership", None)
        super().__setstate__(state)

    # ------------------------------------------------------- computations
    def _activation(self, D: np.ndarray) -> np.ndarray:
        return D

    def _activation_order(self, X: np.ndarray, D: np.ndarray) -> np.ndarray:
        # the detections exp(-dist / sigma) underflow to 0 beyond about 745 sigma
        # from every component (a query 500 away from iris, or sigma=0.01 on digits'
        # pixels): tied at 0, explain listed component 0, of class 0, for a row that
        # the nearest component, of class 2, predicts. Minus the distance orders alike
        # (computed for the rows with an underflowed detection only).
        return underflow_order(D, lambda rows: -self._run("distances", X[rows]))

    def _head(self):
        rp, rn = self.reasoning_positive_, self.reasoning_negative_
        return rp - rn, rn.sum(0)

    _link_method = "link_scores"
    _membership_attributes = ("reasoning_positive_", "reasoning_negative_")

    def _temperature_buffer(self, net):
        return net.temperature

    def _link_scores_chunk(self, X: np.ndarray) -> np.ndarray:
        """``log p_c / T``: ``predict_proba`` is its softmax, ``p_c^(1/T) / sum p^(1/T)``."""
        return self._run("link_scores", X)

    def _score_samples_chunk(self, X: np.ndarray) -> np.ndarray:
        """Minus the distance to the nearest component."""
        return self._run("score_samples", X)

    @property
    def _contributions_are_own_class(self) -> bool:
        return self._head_kind == "nearest"

    def _own_class_contributions(self, D: np.ndarray):
        if self._head_kind != "nearest":
            return None
        # the best-detected component of each class carries its score
        own = np.zeros_like(D)
        rows = np.arange(D.shape[0])
        order = np.argsort(self._codes, kind="stable")
        bounds = np.flatnonzero(np.diff(self._codes[order])) + 1
        for comps in np.split(order, bounds):  # (a class declared without rows has none)
            if comps.size:
                best = comps[np.argmax(D[:, comps], axis=1)]
                own[rows, best] = D[rows, best]
        return own, self._codes

    def _contribution_terms(self) -> dict:
        if self._head_kind == "nearest":  # (own-class: never read)
            return super()._contribution_terms()
        # a component reasons for a class by presence (D r+) and absence ((1 - D) r-)
        return {
            "presence": (_identity, self.reasoning_positive_),
            "absence": (_one_minus, self.reasoning_negative_),
        }

    def _connection_strength(self) -> np.ndarray:
        if self._head_kind == "nearest":
            return super()._connection_strength()
        # a component reasons for a class by presence (r+) or absence (r-)
        return (self.reasoning_positive_ + self.reasoning_negative_).max(axis=1)

    def _impossible_classes(self) -> np.ndarray | None:
        # with the nearest head, a class declared to partial_fit has no component
        # until its rows arrive: its p_c is 0 (its log p_c is -inf), yet explain
        # named it the runner-up of every row, at a finite margin; the CBC heads
        # give such a class (or one whose rows all weigh 0) no reasoning weight
        if self._head_kind != "nearest":
            possible = self._state.get("head.possible")  # (None: pickled before it)
            return None if possible is None else ~np.asarray(possible, dtype=bool)
        return np.bincount(self._codes, minlength=len(self.classes_)) == 0

    def _explain_bias(self) -> np.ndarray:
        return np.zeros(len(self.classes_))

    # ------------------------------------------------------- robustness
    @as_fitted
    def certified_radius(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """Certified L2 radius of each prediction.

        Computed in float64 (whatever the dtype of ``X``) and lowered by a
        bound on its rounding error, so it never claims more than the exact
        bound of the head (see the user guide).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.
        y : array-like of shape (n_samples,), default=None
            True labels. Where given, the radius is 0 for samples whose
            prediction is not ``y``.

        Returns
        -------
        radius : ndarray of shape (n_samples,)
            No perturbation ``delta`` with ``||delta||_2 < radius`` changes the
            prediction. Always >= 0 (0 on ties and misclassifications).
        """
        X = self._validate_X_predict(X)
        pred = self._predicted_codes(X)  # (predict(X) of the validated array warned
        # about feature names on a DataFrame)
        if y is not None:
            y = column_or_1d(y)  # (as score: a column vector raised an IndexError)
            if len(y) != len(X):
                raise ValueError(f"y has {len(y)} labels for {len(X)} samples.")
            _validation.check_known_labels(self.classes_, y)
        K = len(self.prototypes_)
        n_own = np.bincount(self._codes, minlength=len(self.classes_)).max()
        # the nearest head's bisector bound holds (rows, K, largest class) arrays; the
        # CBC bound only (rows, K) and (rows, n_classes) ones (matrix products with
        # the reasoning weights): sized by K x n_classes, a chunk held one row at
        # 1,600 classes, and each chunk's softmax of the (2K, n_classes) reasoning
        # logits took 137 ms a row, against 0.7 ms a row for predict_proba
        work = K * n_own if self._head_kind == "nearest" else max(K, len(self.classes_))
        out = np.empty(len(X))
        gaps = None  # the K x K gaps once, not for every chunk of rows
        tie = float(np.finfo(X.dtype).eps)  # (predict decides from probabilities in X's dtype)
        if self._head_kind == "nearest" and len(X):
            with torch_threads(self._n_threads), cpu_default():
                gaps = self._inference_network().component_gaps()
        for s in chunk_slices(len(X), max(work, X.shape[1])):
            target = torch.from_numpy(np.ascontiguousarray(pred[s]))  # (CPU, as the network)
            out[s] = self._run("certified_radius", X[s], target, False, True, gaps, tie)
        out = np.maximum(out, 0)
        if y is not None:
            out[self.classes_[pred] != y] = 0
        return _round_down(out, X.dtype)
