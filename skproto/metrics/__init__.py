"""Interpretability metrics of prototype classifiers, computed from ``explain``.

Every metric works with any fitted skproto estimator, or a Pipeline that ends
in one. Each evaluates the *evidence* for a prediction: the contributions
``c_k`` of the prototypes to the score of the explained (predicted) class,
which ``explain`` reports exactly. Positive contributions are evidence *for* the class; the metrics
ask whose they are, how concentrated they are, how stable the strongest one
is, and how clean the prototypes' neighbourhoods are.

All sample-level metrics take ``aggregate``: ``"mean"`` (the default) or
``"median"`` over samples, or None for the per-sample values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples, check_is_fitted

from .. import _chunking, _validation
from .._base import BasePrototypeClassifier, contribution_order

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.pipeline import Pipeline

__all__ = [
    "explanation_stability",
    "global_size",
    "own_class_evidence",
    "prototype_neighbors",
    "prototype_purity",
    "top_k_evidence_share",
]


def _aggregate(values: np.ndarray, aggregate: str | None):
    if aggregate is None:
        return values
    if aggregate == "mean":
        return float(np.mean(values))
    if aggregate == "median":
        return float(np.median(values))
    raise ValueError(f"aggregate must be 'mean', 'median' or None, got {aggregate!r}.")


def _model(estimator, X=None):
    """``(the skproto estimator, X)``: the last step of a Pipeline, with ``X``
    transformed by the steps before it; with the parameters of its fit.

    (A Pipeline failed with "'Pipeline' object has no attribute
    '_validate_X_predict'".)
    """
    from ..explain._steps import unpipe

    estimator, X = unpipe(estimator, X)[:2]
    if not isinstance(estimator, BasePrototypeClassifier):
        raise ValueError(
            "skproto.metrics measure a skproto estimator (or a Pipeline that ends in one), "
            f"got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    return estimator._as_fitted(isolated=True), X


def _evidence(estimator, X):
    """Per row chunk: (contributions to the explained class (rows, K), own-class mask (rows, K)).

    Columns are prototypes in the order of ``prototypes_``: what ``explain``
    lists with every prototype, read from the explained class's column only
    (``_explained_contributions``), in row chunks of bounded size.
    """
    estimator, X = _model(estimator, X)
    X = estimator._validate_X_predict(X)
    labels = np.asarray(estimator.prototype_labels_)
    for _, _, explained, contrib, _ in _explained_columns(estimator, X):
        own = labels[None, :] == estimator.classes_[explained][:, None]
        yield contrib.astype(np.float64, copy=False), own


def _explained_columns(estimator, X: np.ndarray):
    """Per row chunk of validated rows ``X``: ``(slice, activations (rows, K),
    explained class codes, contributions to them (rows, K), the class of each
    prototype where each speaks for its own class only, else None)``.

    What ``explain`` computes for the explained (predicted) class, read from
    that class's column only: explain's (rows, K, C) array made the metrics
    O(rows x K x C) for heads that connect every prototype to every class.
    """
    for s in _chunking.chunk_slices(len(X), estimator._row_elements(X.shape[1])):
        A = estimator._activation(estimator._pairwise(X[s]))
        explained = estimator._explained_codes(X[s], estimator._decision_proba_chunk(X[s]))
        # (own-class heads: one pass of the head gives both; _top_prototype asked
        # for the codes again, a second pass of the mixture head per chunk)
        sparse = estimator._own_class_contributions(A)
        own = estimator._explained_contributions(A, explained, sparse)
        yield s, A, explained, own, None if sparse is None else sparse[1]


def own_class_evidence(
    estimator: BasePrototypeClassifier | Pipeline, X: ArrayLike, *, aggregate: str | None = "mean"
) -> float | np.ndarray:
    """Share of the positive evidence for the predicted class that its own prototypes give.

    For a sample with contributions ``c_k`` to the score of its predicted
    class ``y^`` and prototype classes ``l_k``,

        own(x) = sum_{k: l_k = y^} max(c_k, 0) / sum_k max(c_k, 0)

    (1 where no contribution is positive: no evidence comes from another
    class). 1 means "this looks like *that*, a case of the predicted class"
    is the whole story; 0.5 means half of the evidence comes from other
    classes' cases. For a multi-label model, ``y^`` is the label with the
    highest score, as ``explain`` explains by default.

    Parameters
    ----------
    estimator : BasePrototypeClassifier or Pipeline
        Fitted skproto classifier, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_features)
        Samples to explain.
    aggregate : {"mean", "median"} or None, default="mean"
        Over samples; None returns one value per sample.

    Returns
    -------
    float or ndarray of shape (n_samples,)
        The aggregate over samples, or the per-sample values with ``aggregate=None``.

    Examples
    --------
    A nearest-mean model scores each class by its own mean only, so all the
    evidence for a prediction is its own class's:

    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.metrics import own_class_evidence
    >>> X, y = load_iris(return_X_y=True)
    >>> own_class_evidence(NearestMeanClassifier().fit(X, y), X)
    1.0
    """
    return _aggregate(_evidence_shares(estimator, X)[0], aggregate)


def top_k_evidence_share(
    estimator: BasePrototypeClassifier | Pipeline,
    X: ArrayLike,
    k: int = 1,
    *,
    aggregate: str | None = "mean",
) -> float | np.ndarray:
    """Share of the positive evidence for the prediction carried by the ``k`` strongest prototypes.

    With the positive contributions ``p_(1) >= p_(2) >= ...`` to the score of
    the predicted class, sorted,

        share_k(x) = sum_{i <= k} p_(i) / sum_i p_(i)

    (1 where no contribution is positive). The local size of an explanation:
    with ``share_1`` near 1, a reader needs to look at one case. For a
    multi-label model, the label with the highest score is the prediction
    here, as ``explain`` explains by default.

    Parameters
    ----------
    estimator : BasePrototypeClassifier or Pipeline
        Fitted skproto classifier, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_features)
        Samples to explain.
    k : int, default=1
        Number of strongest prototypes whose share is measured.
    aggregate : {"mean", "median"} or None, default="mean"
        Over samples; None returns one value per sample.

    Returns
    -------
    float or ndarray of shape (n_samples,)
        The aggregate over samples, or the per-sample values with ``aggregate=None``.

    Examples
    --------
    One prototype per class: one case carries all the evidence.

    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.metrics import top_k_evidence_share
    >>> X, y = load_iris(return_X_y=True)
    >>> top_k_evidence_share(NearestMeanClassifier().fit(X, y), X, k=1)
    1.0
    """
    return _aggregate(_evidence_shares(estimator, X, k)[1], aggregate)


def _evidence_shares(estimator, X, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, in one pass over ``explain``: (own-class evidence, top-``k`` share)."""
    _validation.check_positive_int(k, "k")
    own_share, top_share = [], []
    for contrib, own in _evidence(estimator, X):
        pos = np.maximum(contrib, 0.0)
        total = pos.sum(1)
        safe = np.where(total > 0, total, 1.0)
        own_share.append(np.where(total > 0, (pos * own).sum(1) / safe, 1.0))
        top = -np.partition(-pos, min(k, pos.shape[1]) - 1, axis=1)[:, :k].sum(1)
        top_share.append(np.where(total > 0, top / safe, 1.0))
    if not own_share:
        return np.empty(0), np.empty(0)
    return np.concatenate(own_share), np.concatenate(top_share)


def prototype_neighbors(
    estimator: BasePrototypeClassifier | Pipeline, X: ArrayLike, *, n_neighbors: int = 10
) -> np.ndarray:
    """The rows of ``X`` that activate each prototype most, most active first.

    The activation is what enters the class scores: the largest similarity,
    or the smallest distance; a detection ``exp(-dist / sigma)`` that
    underflows to 0 is ranked by its distance, below every detection that
    does not. Ties go to the lower row. Computed in row
    chunks: memory is bounded by ``n_prototypes x n_neighbors`` plus one chunk.

    Parameters
    ----------
    estimator : BasePrototypeClassifier or Pipeline
        Fitted skproto classifier, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_features)
        Usually the training data.
    n_neighbors : int, default=10
        At most ``n_samples``.

    Returns
    -------
    rows : ndarray of shape (n_prototypes, min(n_neighbors, n_samples))
        Row indices of ``X``; -1 for a prototype that does not exist yet
        (``NearestMeanClassifier``'s NaN mean of a class declared to
        ``partial_fit`` without rows): no row is near it.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.metrics import prototype_neighbors
    >>> X = np.array([[0.0], [1.0], [9.0], [10.0]])
    >>> clf = NearestMeanClassifier().fit(X, [0, 0, 1, 1])
    >>> prototype_neighbors(clf, X, n_neighbors=2)
    array([[0, 1],
           [2, 3]])
    """
    _validation.check_positive_int(n_neighbors, "n_neighbors")
    return _neighbors_of(estimator, X, n_neighbors)


def _neighbors_of(estimator, X, n_neighbors: int, prototypes: np.ndarray | None = None):
    """:func:`prototype_neighbors`, for the prototypes ``prototypes`` only (default
    all), one row each (a gallery of a few classes ranked every row for every
    prototype: 17.8 s at 10,000 classes for 5 shown)."""
    estimator, X = _model(estimator, X)
    X = estimator._validate_X_predict(X)
    every = prototypes is None
    K = len(estimator.prototypes_) if every else len(prototypes)
    m = min(n_neighbors, len(X))
    best_rows = np.full((K, m), -1)
    best_act = np.full((K, m), -np.inf)
    for s in _chunking.chunk_slices(len(X), estimator._row_elements(X.shape[1])):
        A = _neighbor_activation(estimator, X[s])
        A = (A if every else A[:, prototypes]).T  # (K, rows)
        A, rows = _chunk_best(A, np.arange(s.start, s.stop), m)
        all_act = np.concatenate([best_act, A], axis=1)
        all_rows = np.concatenate([best_rows, rows], axis=1)
        order = np.lexsort((all_rows, -all_act), axis=1)[:, :m]
        best_act = np.take_along_axis(all_act, order, axis=1)
        best_rows = np.take_along_axis(all_rows, order, axis=1)
    return best_rows


def _neighbor_activation(estimator, X: np.ndarray) -> np.ndarray:
    """The activations of validated rows ``X`` (rows, K), comparable across rows,
    where a detection ``exp(-dist / sigma)`` that underflowed to 0 is minus its
    distance (``_activation_order``'s key; below every detection that did not).

    (Tied at 0, a prototype's rows beyond about 745 sigma went to the lowest row
    numbers: RBFPrototypeClassifier(sigma=0.02) on digits gave rows 0, 1, 2, ...
    as the neighbours of most components, and a purity of 0.28 where their
    nearest rows all carry their class.)
    """
    A = estimator._activation(estimator._pairwise(X))
    if not (A == 0).any():
        return A
    return np.where(A == 0, estimator._activation_order(X, A), A)


def _chunk_best(A: np.ndarray, rows: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each prototype's ``m`` most active rows of a chunk ``A`` (K, n_rows), ``rows``
    ascending, in row order: all that can enter its best ``m`` (a lexsort of
    every row of every chunk dominated prototype_neighbors). Exact: where ties
    or NaN at the ``m``-th activation leave the choice open, all rows are kept."""
    if A.shape[1] <= m:
        return A, np.broadcast_to(rows, A.shape)
    neg = -A
    kth = np.partition(neg, m - 1, axis=1)[:, m - 1 : m]
    keep = neg <= kth
    if not (keep.sum(axis=1) == m).all():  # ties at the m-th (or NaN): keep every row
        return A, np.broadcast_to(rows, A.shape)
    cols = np.nonzero(keep)[1].reshape(len(A), m)  # row order within each prototype
    return np.take_along_axis(A, cols, axis=1), rows[cols]


def prototype_purity(
    estimator: BasePrototypeClassifier | Pipeline,
    X: ArrayLike,
    y: ArrayLike,
    *,
    n_neighbors: int = 10,
    aggregate: str | None = "mean",
) -> float | np.ndarray:
    """Share of a prototype's nearest training rows that carry its class.

    For prototype ``k`` of class ``l_k`` and the ``n_neighbors`` rows of ``X``
    most activated by it (the most similar, or nearest: the largest
    activation that enters the class scores),

        purity(k) = |{i in N_k : y_i = l_k}| / |N_k|

    (for a multi-label ``y``, rows that carry label ``l_k``). 1 means the
    prototype sits inside its class; low purity flags a prototype that looks
    like another class's cases.

    Parameters
    ----------
    estimator : BasePrototypeClassifier or Pipeline
        Fitted skproto classifier, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_features)
        Usually the training data.
    y : array-like of shape (n_samples,) or (n_samples, n_classes)
        Labels of ``X`` (an indicator matrix for a multi-label model).
    n_neighbors : int, default=10
        Rows most activated by each prototype that are compared to its class.
    aggregate : {"mean", "median"} or None, default="mean"
        Over prototypes; None returns one value per prototype.

    Returns
    -------
    float, or ndarray of shape (n_prototypes,) with ``aggregate=None``
        The prototype of a class declared to ``partial_fit`` without rows yet
        (``NearestMeanClassifier``'s NaN mean) has no purity: NaN, and it is
        left out of the aggregate.

    Examples
    --------
    Iris's setosa mean sits inside its class; the other two means have
    some rows of the other class among their 50 nearest:

    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.metrics import prototype_purity
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> prototype_purity(clf, X, y, n_neighbors=50, aggregate=None)
    array([1.  , 0.84, 0.82])
    """
    from ..explain._cases import training_labels

    estimator, X = _model(estimator, X)
    y = _validation.label_array(y)
    if len(y) != _num_samples(X):
        raise ValueError(f"y has {len(y)} rows for {_num_samples(X)} samples.")
    # (unknown labels, or numbers against string classes, read as misses; an
    # indicator of the wrong width failed with an IndexError or was read silently)
    y = training_labels(estimator, X, y)
    best_rows = prototype_neighbors(estimator, X, n_neighbors=n_neighbors)
    purity = _purity_of_neighbors(estimator, y, best_rows)
    present = _present(estimator)
    if aggregate is None:
        return np.where(present, purity, np.nan)
    return _aggregate(purity[present], aggregate)


def _present(estimator) -> np.ndarray:
    """Which prototypes exist: not the NaN mean of a class declared without rows yet."""
    return np.isfinite(np.asarray(estimator.prototypes_, dtype=np.float64)).all(axis=1)


def _purity_of_neighbors(
    estimator, y: np.ndarray, rows: np.ndarray, prototypes: np.ndarray | None = None
) -> np.ndarray:
    """Per prototype (of ``prototypes``, default all), the share of its neighbour
    ``rows`` (one row each) whose label ``y`` is its class."""
    labels = np.asarray(estimator.prototype_labels_)
    if prototypes is not None:
        labels = labels[prototypes]
    if y.ndim == 2:
        codes = np.searchsorted(estimator.classes_, labels)
        hit = y[rows, codes[:, None]] > 0
    else:
        hit = y[rows] == labels[:, None]
    return hit.mean(axis=1)


def explanation_stability(
    estimator: BasePrototypeClassifier | Pipeline,
    X: ArrayLike,
    *,
    noise: float | str = "auto",
    n_draws: int = 5,
    random_state: int | np.random.RandomState | None = None,
    aggregate: str | None = "mean",
) -> float | np.ndarray:
    """Probability that the strongest prototype of an explanation survives input noise.

    For each sample, ``explain`` names its top prototype (by contribution);
    the sample is then perturbed ``n_draws`` times by ``delta = noise * g /
    ||g||`` with ``g`` standard Gaussian (noise of norm exactly ``noise``;
    for token rows, ``n_tokens``, on the real tokens' entries only), and

        stability(x) = (1 / n_draws) sum_r [top(x + delta_r) = top(x)]

    An explanation that changes its main case under imperceptible noise is
    not one a reader can rely on.

    Parameters
    ----------
    estimator : BasePrototypeClassifier or Pipeline
        Fitted skproto classifier, or a Pipeline ending in one.
    X : array-like of shape (n_samples, n_features)
        Samples to explain.
    noise : float > 0 or "auto", default="auto"
        L2 norm of the perturbation, in the units of the rows the prototype
        model sees: for a Pipeline, the output of its earlier steps (which
        may take texts or images, where no Gaussian noise applies), not the
        raw ``X``. "auto": 5 % of the median L2 norm of those rows, so that
        the measure reads the same in any units (a fixed default, 0.1
        before, was imperceptible on pixel values and larger than the rows
        themselves on features of size 1e-3). The perturbed rows must stay
        within the magnitude the model accepts (1e100): ``max |X| + noise``
        larger than that is refused.
    n_draws : int, default=5
        Perturbations per sample.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise.
    aggregate : {"mean", "median"} or None, default="mean"
        Over samples; None returns one value per sample.

    Returns
    -------
    float or ndarray of shape (n_samples,)
        The aggregate over samples, or the per-sample values with ``aggregate=None``.

    Examples
    --------
    Rows near the boundary between two classes change their nearest mean
    under noise of norm 1 (the rows' norms are 5 to 11):

    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.metrics import explanation_stability
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> explanation_stability(clf, X[45:55], noise=1.0, random_state=0, aggregate=None)
    array([1. , 1. , 1. , 1. , 1. , 0.2, 1. , 0.8, 1. , 0.6])
    """
    auto = isinstance(noise, str) and noise == "auto"
    number = _validation.is_real_number(noise)
    if not auto and not (number and 0 < noise < np.inf):
        raise ValueError(f'noise must be a positive finite float or "auto", got {noise!r}.')
    _validation.check_positive_int(n_draws, "n_draws")
    estimator, X = _model(estimator, X)
    X = estimator._validate_X_predict(X)
    # token rows: the noise moves the real tokens only (noise in the mask
    # columns broke the layout: every call on a token model raised)
    # in row chunks (all rows at once held several float64 copies of X: 7x it);
    # the noise is drawn chunk after chunk, the same stream as one draw
    chunks = list(_chunking.chunk_slices(len(X), X.shape[1]))
    if auto:
        norms = [np.linalg.norm(X[s] * _perturbed_entries(estimator, X[s]), axis=1) for s in chunks]
        noise = 0.05 * float(np.median(np.concatenate(norms))) if len(X) else 0.0
        if not noise > 0:
            raise ValueError(
                'noise="auto" is 5 % of the median row norm of X, which is 0 here; '
                "give noise as a float."
            )
    # the perturbed rows must stay within the magnitude the model accepts: their
    # squared distances overflowed (noise=1e200 on iris: every distance inf, a
    # "stability" read from ties, silently; noise=1e40 on float32 rows: inf rows
    # and "computed non-finite class scores")
    top_abs = max((_validation.max_abs(np.asarray(X[s])) for s in chunks), default=0.0)
    if top_abs + noise > _validation.MAX_ABS_VALUE:
        raise ValueError(
            f"noise={noise:g} moves rows of X (values up to {top_abs:.3g} in magnitude) "
            f"beyond {_validation.MAX_ABS_VALUE:g}, the largest magnitude "
            f"{type(estimator).__name__} accepts, where squared distances overflow; "
            "pass a smaller noise."
        )
    # float32 rows perturbed beyond float32's safe range are computed in float64
    dtype = X.dtype if top_abs + noise <= _validation.FLOAT32_MAX_ABS else np.float64
    rng = check_random_state(random_state)
    top = np.concatenate(
        [_top_prototype(estimator, X[s]) for s in chunks] or [np.empty(0, dtype=np.intp)]
    )
    same = np.zeros(len(X))
    for _ in range(n_draws):
        for s in chunks:
            g = rng.standard_normal(X[s].shape) * _perturbed_entries(estimator, X[s])
            g *= noise / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300)
            same[s] += _top_prototype(estimator, (X[s] + g).astype(dtype)) == top[s]
    return _aggregate(same / n_draws, aggregate)


def _top_prototype(estimator, X: np.ndarray) -> np.ndarray:
    """``explain(X, n_prototypes=1).prototype_index[:, 0]``, from the explained
    class's column of contributions only (:func:`_explained_columns`)."""
    top = np.empty(len(X), dtype=np.intp)
    for s, A, explained, own, codes in _explained_columns(estimator, X):
        # explain's ranking: most active first, then by |contribution|
        order = np.argsort(-estimator._activation_order(X[s], A), axis=1, kind="stable")
        top[s] = contribution_order(order, own, codes, explained)[:, 0]
    return top


def _perturbed_entries(estimator, X: np.ndarray) -> np.ndarray:
    """1 where :func:`explanation_stability` adds noise: every entry, or for token
    rows (``n_tokens``) the entries of the real tokens (not the mask, not empty slots)."""
    n_tokens = getattr(estimator, "n_tokens", None)
    if not n_tokens:
        return np.ones((1, X.shape[1]))
    mask = X[:, X.shape[1] - n_tokens :]
    dim = (X.shape[1] - n_tokens) // n_tokens
    return np.concatenate([np.repeat(mask, dim, axis=1), np.zeros_like(mask)], axis=1)


def global_size(estimator: BasePrototypeClassifier | Pipeline, *, tol: float = 1e-3) -> int:
    """Number of prototypes with a non-negligible connection to some class.

    A prototype counts when its strongest class connection (``|W[k, c]|``
    of the head, or the reasoning weight for the CBC head) exceeds ``tol``
    times the strongest connection of any prototype. The global size of the
    model: how many cases a reader must know to know the model.

    Parameters
    ----------
    estimator : BasePrototypeClassifier or Pipeline
        Fitted skproto classifier, or a Pipeline ending in one.
    tol : float in [0, 1), default=1e-3
        Relative strength below which a connection is negligible.

    Returns
    -------
    int
        The number of connected prototypes.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.metrics import global_size
    >>> X, y = load_iris(return_X_y=True)
    >>> global_size(NearestMeanClassifier().fit(X, y))
    3
    """
    if not (_validation.is_real_number(tol) and 0 <= tol < 1):
        raise ValueError(f"tol must be a float in [0, 1), got {tol!r}.")
    estimator, _ = _model(estimator)
    strength = np.asarray(estimator._connection_strength(), dtype=np.float64)
    strength = np.where(_present(estimator), strength, 0.0)
    top = strength.max(initial=0.0)
    return int(np.sum(strength > tol * top)) if top > 0 else 0
