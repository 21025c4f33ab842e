"""Nearest class mean classifier: closed form, streaming, mergeable."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Mapping, Set
from dataclasses import dataclass
from numbers import Real

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from sklearn.base import _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, StrOptions

from .. import _progress, _validation, calibration
from .._base import (
    _RUNTIME_PARAMS,
    BasePrototypeClassifier,
    as_fitted,
    partial_fit_context,
    same_param,
    unchanged_on_failure,
)
from .._chunking import Float64Rows, chunk_slices
from .._validation import warn_user
from ..calibration import (
    NO_LOSSES,
    add_grid_losses,
    grid_center,
    lattice,
    merge_grid_losses,
    table_temperature,
)
from ..geometry import (
    normalize_rows,
    shrinkage_amount,
    shrunk_covariance,
    squared_distances,
    whitener,
)
from ._stats import ClassStats

#: ``temperature="auto"`` holds out about one row in this many in ``fit``
_HELD_OUT_EVERY = 5
#: The held-out rows are chosen by a hash of each row's direction (the row over its
#: largest magnitude) rounded to this many bits: coarse enough that the rounding of
#: a float64 product ``X * c`` seldom moves it (a value within a few units in the
#: last place of a rounding boundary), fine enough to tell rows 1e-8 apart
_DIRECTION_BITS = 28
_DIRECTION_SCALE = 2.0**_DIRECTION_BITS
#: A row whose rounded direction spans at most this many steps (its values within
#: 2**-16 of one another, relative to its largest magnitude: a row far from the
#: origin along the diagonal, as ``X + c`` moves it, or a constant row) tells
#: its rows too coarsely apart by direction alone: 4,000 distinct rows of two
#: features at an offset of 1e9 shared 5 hashes, none held out. Such rows add
#: their largest magnitude's mantissa, as rows of one feature do.
_COARSE_DIRECTION_STEPS = 2.0**12
#: Rows whose largest magnitude is below ``_TINY_TOP`` are first lifted by
#: ``_TINY_LIFT`` (exact), so their factor ``2**28 / top`` stays finite
_TINY_TOP, _TINY_LIFT = 2.0**-960, 2.0**100
#: 1.5 * 2**52: added to a float64 of magnitude below 2**51, it rounds it to an
#: integer held in the low bits
_ROUNDER = 1.5 * 2.0**52
#: Held-out entries (rows x features) a stream sets aside before it scores them
#: (2**23: 64 MB of float64); rows of the next calls are scored at the next use
_PENDING_ELEMENTS = 2**23
#: Set-aside blocks kept apart before they are joined into one: each call sums
#: their rows and weights (one-row chunks would make that quadratic)
_PENDING_BLOCKS = 64
#: One flush at a time: two threads predicting right after partial_fit would
#: both add the set-aside rows to the statistics
_PENDING_LOCK = threading.RLock()

__all__ = ["NearestMeanClassifier"]

#: float32 inputs are computed in float32 while the model's numbers and the
#: input stay within this range (their products then neither overflow nor
#: underflow float32); otherwise in float64.
_FLOAT32_RANGE = (1e-15, 1e15)
#: Largest rounding error of float32 scores (in log-odds) accepted: see ``_float32_holds``.
_FLOAT32_SCORE_TOL = 1e-3


def check_total_weight(*weights) -> None:
    """Raise if ``weights`` (arrays of weights or class counts) sum beyond float64.

    The model counts a weight as that many rows: weights of 1e307 on iris
    fitted NaN means, and ``predict`` then failed.
    """
    with np.errstate(over="ignore"):
        total = float(np.sum([np.sum(w, dtype=np.float64) for w in weights]))
    if not total <= _WEIGHT_TOTAL_LIMIT:  # (weighted losses and sums stay finite below)
        raise ValueError(
            f"The sample weights sum to {total:.3g}; NearestMeanClassifier counts a weight "
            f"as that many rows and takes a total of at most {_WEIGHT_TOTAL_LIMIT:.0e}: "
            "divide the weights by a constant."
        )


#: The largest total weight (rows counted) the statistics and temperature take.
_WEIGHT_TOTAL_LIMIT = 1e200


class NearestMeanClassifier(BasePrototypeClassifier):
    """Nearest class mean classifier with streaming, mergeable statistics.

    Each class ``c`` is represented by one prototype, its (optionally shrunk)
    weighted mean ``mu_c``. A sample is scored against every class by a squared
    distance ``delta_c(x)``, and

    .. math::

        \\text{score}_c(x) = -\\frac{\\delta_c(x)}{2T} + \\log \\pi_c, \\qquad
        P(c \\mid x) = \\operatorname{softmax}_c(\\text{score}_c(x))

    with temperature ``T`` and class priors ``pi``. The squared distance is

    * ``"euclidean"``: ``||x - mu_c||^2``;
    * ``"cosine"``: ``||x/|x| - mu_c/|mu_c| ||^2 = 2 (1 - cos(x, mu_c))``, with
      the means taken over L2-normalised rows (a class whose unit rows cancel
      out, mean norm below 1e-10, gets the zero prototype, ``cos = 0``);
    * ``"mahalanobis"``: ``(x - mu_c)^T Sigma^+ (x - mu_c)`` with the shrunk
      pooled within-class covariance (``covariance="shared"``; with ``T=1``
      the probabilities are exactly the LDA posterior) or one shrunk covariance
      per class (``covariance="per_class"``, the FeCAM rule; no log-determinant
      term is added).

    All statistics (weights, means, scatter matrices) are accumulated in
    float64 with pairwise-stable updates, so :meth:`partial_fit` over any
    chunking and :meth:`merge` of models fitted on disjoint shards give the
    same model as :meth:`fit` on all the data, to float tolerance.

    Parameters
    ----------
    metric : {"euclidean", "cosine", "mahalanobis"}, default="euclidean"
        Distance from a sample to a class mean, see above.
    covariance : {"shared", "per_class"}, default="shared"
        For ``metric="mahalanobis"``: one pooled within-class covariance
        (linear decision boundaries, LDA) or one covariance per class
        (quadratic boundaries, FeCAM). Ignored by the other metrics.
    covariance_pooling : float in [0, 1], default=0.0
        For ``covariance="per_class"``: how far each class's shrunk covariance
        is pulled toward the shared one, ``(1 - r) Sigma_c + r Sigma``
        (Friedman's regularised discriminant analysis without the
        log-determinant): 0 is the FeCAM rule, 1 the shared covariance. With
        fewer rows per class than features, a value near 1 is far better than
        either end (CLINC150, 100 rows per class in 384-d: val accuracy 0.777
        at 0, 0.945 at 0.95, 0.933 at 1); choose it on held-out data, e.g.
        with ``GridSearchCV``. Ignored otherwise.
    covariance_shrinkage : "oas", "ledoit_wolf" or float in [0, 1], \
            default="oas"
        Shrinkage of the covariance toward ``tr(Sigma)/p * I``:
        ``Sigma' = (1 - a) Sigma + a tr(Sigma)/p I``, with ``a`` given or
        estimated by OAS or Ledoit-Wolf (as scikit-learn computes them,
        sample weights counting as frequencies). Only for ``"mahalanobis"``:
        ignored by the other metrics.
        ``"ledoit_wolf"`` needs fourth moments, which stay exactly mergeable
        only with one ``n_features**2`` scatter matrix per class: it costs
        ``n_classes`` times the memory of ``"oas"`` and makes each
        ``partial_fit`` call touch ``n_features**2`` numbers per class present.
    shrinkage : float in [0, 1], default=0.0
        Shrinkage of each class mean toward the weighted global mean,
        ``mu_c' = (1 - s) mu_c + s mu``; helps with few samples per class.
    priors : {"uniform", "empirical"} or array-like of shape (n_classes,), \
            default="uniform"
        Class priors ``pi`` in the scores: equal, proportional to the summed
        sample weight of each class, or given (non-negative, summing to one,
        in the order of ``classes_``).
    temperature : "auto" or float > 0, default="auto"
        Temperature ``T`` of the softmax. It does not change ``predict`` under
        uniform priors, unless it is so large next to the squared distances
        that the probabilities round to a tie (``predict`` is their argmax).
        "auto" fits ``T`` to held-out rows so that
        ``predict_proba`` is calibrated: in ``fit``, about one row in five, at
        most about ``min(5e6 / n_classes, 50,000)`` rows (chosen by a hash of
        its direction, so neither the order of the rows nor, but for the
        limits of :func:`_row_hash`, the units of ``X`` change the choice) is
        scored by the model of the other rows; in ``partial_fit``, about one
        row in five of each chunk, set aside and scored at the next use
        (prediction, a fitted attribute) by the model of every other
        row streamed so far (so a stream used only at its end has ``fit``'s
        temperature); ``merge`` adds up both models' held-out losses and
        passes the set-aside rows on to the merged model, whose first use
        scores them.
        They are kept on a grid of temperatures (sums of log-losses, exactly
        mergeable) and ``T`` is the minimum, refined by a parabola (with no
        held-out loss, e.g. a few rows none of which is held out, the middle of
        the window the class means' own scores place). The means and
        covariances stay exact whatever the temperature.
    verbose : int, default=0
        Print the steps of ``fit`` and ``partial_fit`` (statistics, per-class
        covariance factors, held-out scoring) with their times, and progress every 10
        seconds within long ones (per-class covariances of many classes).
        Changing it does not refit.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    class_count_ : ndarray of shape (n_classes,)
        Summed sample weight of each class.
    class_prior_ : ndarray of shape (n_classes,)
        Priors used in the scores.
    means_ : ndarray of shape (n_classes, n_features)
        Weighted class means (of the L2-normalised rows for ``"cosine"``),
        before shrinkage.
    prototypes_ : ndarray of shape (n_classes, n_features)
        The class prototypes used to predict: shrunk means (unit-normalised
        for ``"cosine"``). Row ``k`` stands for ``classes_[k]``. A class
        declared in ``partial_fit(classes=...)`` but not seen yet has a row of
        NaN, score ``-inf`` and probability 0.
    prototype_labels_ : ndarray of shape (n_classes,)
        Class of each prototype (equal to ``classes_``).
    prototype_cases_ : ndarray of shape (n_classes,), dtype=object, or None
        The raw case (a text, an image, ...) standing for each prototype, when
        ``fit`` received rows tagged with their raw inputs
        (:func:`skproto.explain.attach_cases`, or the output of an encoder of
        :mod:`skproto.encoders`): here the class's training row most similar
        to its mean. None when the rows were not tagged; an entry is None for
        a prototype without a case. ``explain`` names these cases.
    temperature_ : float
        The temperature ``T`` in the scores (fitted for ``"auto"``).
    covariance_ : ndarray of shape (n_features, n_features) or \
            (n_classes, n_features, n_features)
        Shrunk covariance used by ``"mahalanobis"`` (only set for it). Where
        it is zero (e.g. a class seen once) the pooled covariance, and then
        the identity, is used instead.
    covariance_shrinkage_ : float or ndarray of shape (n_classes,)
        Shrinkage intensity actually applied (only for ``"mahalanobis"``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.neighbors.NearestCentroid : Euclidean/Manhattan nearest centroid
        without probabilities that agree with ``predict``, streaming or merging.
    sklearn.discriminant_analysis.LinearDiscriminantAnalysis : same decision
        rule as ``metric="mahalanobis"``, ``priors="empirical"``.

    Notes
    -----
    ``transform`` returns the squared distances ``delta_c(x)`` (not
    similarities).

    ``score_samples`` (higher = more in-distribution) is

    * ``"euclidean"``, ``"cosine"``, and ``"mahalanobis"`` with
      ``covariance="per_class"`` (whose own covariances can be wider than any
      pooled background): ``logsumexp_c score_c(x)``, the log
      density of ``x`` under the class mixture (up to a constant, for
      ``T=1``); as ``T`` shrinks it tends to ``-min_c delta_c(x) / (2T)``;
    * ``"mahalanobis"``, ``covariance="shared"``:
      ``logsumexp_c score_c(x) + delta_0(x) / (2T)``, where
      ``delta_0`` is the Mahalanobis distance to the global mean under the
      total covariance, shrunk like the within-class one (the shared
      ``covariance_`` plus ``(1 - a)`` times the between-class covariance):
      the log-likelihood ratio of the class mixture against one background
      Gaussian of all the data, i.e. the relative Mahalanobis score of
      Ren et al. (2021), who found it to detect near out-of-distribution
      inputs better than the plain distance (CLINC150 out-of-scope AUROC
      0.972: ``benchmarks/results/nearest_mean.md``); it ignores deviations
      along directions in which the classes do not differ at all.

    Memory: ``"euclidean"`` and ``"cosine"`` keep ``O(n_classes * n_features)``
    numbers; ``"mahalanobis"`` keeps one pooled ``n_features**2`` scatter, or
    one per class with ``covariance="per_class"`` or
    ``covariance_shrinkage="ledoit_wolf"`` (which needs per-class moments to
    stay exactly mergeable).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> round(clf.score(X, y), 3)
    0.98
    >>> stream = NearestMeanClassifier(metric="mahalanobis")
    >>> for rows in np.array_split(np.arange(len(X)), 5):
    ...     stream = stream.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    >>> bool(np.allclose(stream.means_, clf.means_))  # exactly the batch statistics
    True
    >>> bool((stream.predict(X) == clf.predict(X)).all())
    True
    >>> rda = NearestMeanClassifier(  # one covariance per class, pulled toward the shared one
    ...     metric="mahalanobis", covariance="per_class", covariance_pooling=0.9
    ... ).fit(X, y)
    >>> rda.covariance_.shape
    (3, 4, 4)
    >>> round(rda.score(X, y), 3)
    0.98
    """

    _pairwise_name = "squared distance"
    _bias_name = "log prior"

    _parameter_constraints: dict = {
        "metric": [StrOptions({"euclidean", "cosine", "mahalanobis"})],
        "covariance": [StrOptions({"shared", "per_class"})],
        "covariance_pooling": [Interval(Real, 0, 1, closed="both")],
        "covariance_shrinkage": [
            StrOptions({"ledoit_wolf", "oas"}),
            Interval(Real, 0, 1, closed="both"),
        ],
        "shrinkage": [Interval(Real, 0, 1, closed="both")],
        "priors": [StrOptions({"uniform", "empirical"}), "array-like"],
        "temperature": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        metric: str = "euclidean",
        *,
        covariance: str = "shared",
        covariance_pooling: float = 0.0,
        covariance_shrinkage: str | float = "oas",
        shrinkage: float = 0.0,
        priors: str | ArrayLike = "uniform",
        temperature: str | float = "auto",
        verbose: int = 0,
    ) -> None:
        self.metric = metric
        self.covariance = covariance
        self.covariance_pooling = covariance_pooling
        self.covariance_shrinkage = covariance_shrinkage
        self.shrinkage = shrinkage
        self.priors = priors
        self.temperature = temperature
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    def _snapshot(self) -> dict:
        saved = super()._snapshot()
        stats = saved.get("_stats")
        if stats is not None and (stats.scatter is None or stats.scatter.ndim == 2):
            saved["_stats"] = copy.deepcopy(stats)  # (small, and updated in place)
        elif stats is not None:  # per-class scatter: too large to copy at every call
            saved["_counts_before"] = stats.count.copy()
        return saved

    def _restore(self, saved: dict) -> None:
        counts = saved.pop("_counts_before", None)
        super()._restore(saved)
        if counts is not None and not np.array_equal(self._stats.count, counts):
            # the per-class statistics were changed in place before the failure
            # (a retry counted the batch twice): no silently partial model
            for name in [k for k in vars(self) if k.endswith("_") or k.startswith("_")]:
                if name not in self.get_params():
                    delattr(self, name)
            warn_user(
                "The failed partial_fit had already added part of its rows to the "
                "per-class statistics, which are updated in place; the model was "
                "reset to unfitted. Fit it again.",
                RuntimeWarning,
            )

    def _check_finite(self, stats: ClassStats) -> None:
        finite = [
            np.isfinite(a).all() for a in (stats.count, stats.mean, stats.scatter) if a is not None
        ]
        if not all(finite):  # (weights of 1e300 on rows of 1e10: NaN means, then predict failed)
            raise ValueError(
                "The weighted sums of the rows overflow float64: the sample weights times "
                "the rows' values are too large. Divide sample_weight by a constant (the "
                "model counts a weight as that many rows)."
            )

    def _fit_magnitude_limit(self) -> tuple:
        """``check_magnitude``'s limit for training rows, where stricter than the default.

        Ledoit-Wolf's shrinkage needs ``sum w ||x - m||^4``: at values of 1e77
        it overflowed float64 (the shrinkage became 1, then NaN, with
        RuntimeWarnings); 1e70 leaves room for 1e4 features and 1e9 rows.
        """
        if self.metric == "mahalanobis" and self.covariance_shrinkage == "ledoit_wolf":
            return 1e70, "ledoit_wolf's fourth moments"
        return ()

    def _stats_layout(self) -> dict:
        """Which statistics the current parameters need."""
        if self.metric != "mahalanobis":
            scatter = None
        elif self.covariance == "per_class" or self.covariance_shrinkage == "ledoit_wolf":
            scatter = "per_class"
        else:
            scatter = "pooled"
        return {
            "normalize": self.metric == "cosine",
            "scatter": scatter,
            "fourth": self.metric == "mahalanobis" and self.covariance_shrinkage == "ledoit_wolf",
        }

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_failure
    @_progress.reported
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> NearestMeanClassifier:
        """Fit the class means (and covariances) on all of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 is kept as float32 at prediction time.
        y : array-like of shape (n_samples,)
            Class labels (any hashable values); at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; they act as frequencies.

        Returns
        -------
        self : NearestMeanClassifier
            Fitted estimator.
        """
        X_raw = X
        X, y = _validation.validate_fit_data(self, X, y, reset=True)
        w = _validation.validate_sample_weight(sample_weight, X)
        check_total_weight(w)
        classes, codes = np.unique(y, return_inverse=True)
        self._begin_fit(classes, len(X))
        with np.errstate(over="ignore", invalid="ignore"):  # (overflow: _finish_fit raises)
            parts = self._block_statistics(X, codes, w)
            report = _progress.current()
            if report:
                report.line(f"statistics of {len(X)} rows of {len(classes)} classes")
            self._end_fit(*parts)
        self._abs_bound = _validation.max_abs(X)  # (bounds the sums of a partial_fit after)
        # (a row of weight 0 is absent: no mean's representative)
        self._keep_cases(X_raw, X, y, kept=None if w.all() else np.flatnonzero(w > 0))
        return self

    # The steps of ``fit``, also run block by block by skproto.parallel's
    # distributed fit (one pass): the statistics of each block's rows that
    # are not held out, and its held-out rows, merged; then the held-out
    # rows scored once and their statistics added.
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it may be the instance's __dict__
        state.pop("_factor_cache", None)  # a stream's working copy of derived factors
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        # (pickled before verbose existed: get_params, repr and clone raised)
        self.__dict__.setdefault("verbose", 0)
        # (pickled before covariance_pooling existed: its models are those of 0)
        self.__dict__.setdefault("covariance_pooling", 0.0)
        params = self.__dict__.get("_fit_params")
        if params is not None and "covariance_pooling" not in params:
            # (and its fit's: else a set_params(covariance_pooling=...) before the first
            # use of a model loaded without a derived model reached its predictions)
            self._fit_params = {**params, "covariance_pooling": 0.0}
        model = self.__dict__.get("_model")
        if model is not None and "background_map" not in vars(model):
            # pickled before background_map (it held background_whiten): derived again
            # from the statistics at the first use (score_samples read None and failed)
            self._model = None

    def _begin_fit(self, classes: np.ndarray, n_rows: int) -> None:
        """Fix the classes, the statistics' layout and the held-out rows of a fit."""
        self.__dict__.pop("_factor_cache", None)
        _validation.check_two_classes(self, classes)
        self._priors_for(len(classes))
        self.classes_ = classes
        self._layout = self._stats_layout()
        self._classes_fixed = False
        self._score_stride = _score_stride(n_rows, len(classes))
        self._remember_params()

    def _block_statistics(self, X, codes, w) -> tuple:
        """``(statistics of the rows not held out, the held-out rows (X, codes, w))``.

        Rows are held out only for ``temperature="auto"`` (else the second
        is None): about one row in five (``_HELD_OUT_EVERY``), and beyond a
        few thousand of those one in ``_score_stride`` of them, chosen by a
        hash of the row's direction (so the choice depends neither on the order
        of the rows, nor on the blocks, nor on whether a row is repeated or
        weighted: copies go together, nor on the units of ``X``: see
        :func:`_row_hash`). Blocks merge exactly: the statistics
        pairwise, the held-out rows by concatenation (:func:`_merge_blocks`).
        """
        n_classes = len(self.classes_)
        if self.temperature != "auto":
            return ClassStats.of_rows(X, codes, w, n_classes, **self._layout), None
        held = self._held_mask(X)
        rest = ClassStats.of_rows(X, codes, np.where(held, 0.0, w), n_classes, **self._layout)
        return rest, (X[held], codes[held], w[held])

    def _held_mask(self, X) -> np.ndarray:
        """Which rows of ``X`` are held out (``temperature="auto"``), by their hash."""
        h = _row_hash(X)
        return (h % _HELD_OUT_EVERY == 0) & ((h // _HELD_OUT_EVERY) % self._score_stride == 0)

    def _end_fit(self, rest: ClassStats, held) -> None:
        """Fit from the merged ``_block_statistics``: the held-out rows scored, then added.

        One split, not five: a single scalar needs few rows. The losses are
        zero when nothing or everything is held out.
        """
        if held is None:
            return self._finish_fit(rest, NO_LOSSES)
        self._finish_fit(*self._fold_held_out(rest, held, NO_LOSSES))

    def _fold_held_out(self, rest: ClassStats, held: tuple, losses, *, thin=None) -> tuple:
        """``(rest plus the held-out rows, losses plus those rows scored by rest's model)``
        (for ``fit``, ``partial_fit`` and the dask fit alike). ``thin``: for a stream's
        set-aside rows, how many rows its chunks had: all are added, and scored are
        those ``fit`` would score of that many rows (:func:`_thinned`)."""
        self._check_finite(rest)  # (before the held-out rows are scored by its model)
        X, codes, w = held
        out = ClassStats.of_rows(X, codes, w, len(self.classes_), **self._layout)
        if rest.count.sum() > 0 and out.count.sum() > 0:
            if thin is not None:  # (a stream of chunks under 5 x scored_rows held out
                # one row in five of all it streamed, each scored for every class: 12,000
                # rows of 10,000 classes took 15.6 s at the first use, fit 2.6 s; quadratic)
                X, codes, w = _thinned(X, codes, w, _score_stride(thin, len(self.classes_)))
            losses = self._add_held_out(losses, self._derive(rest, 1.0), X, codes, w)
            report = _progress.current()
            if report:
                report.line(f"scored {len(X)} held-out rows for the temperature")
        return rest.merge(out), losses

    def _finish_fit(self, stats: ClassStats, losses) -> None:
        self._check_finite(stats)
        self._stats = stats
        self._calibration, self._pending = losses, ()
        self._model = self._derive()
        report = _progress.current()
        if report:
            report.line(f"fitted: temperature {self._model.temperature:.4g}")

    def _check_with_pending(self) -> None:
        """Refuse now, as ``fit`` would, statistics that overflow once the set-aside
        rows are added (weights of 9e198 on rows of 1e99 overflowed only when both
        halves met, at the first use); for streams whose sums a bound does not
        keep below float64's range."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = ClassStats.of_rows(
                *_stack_held(self._pending), len(self.classes_), **self._layout
            )
            with_held = self._stats.merge(out)
        self._check_finite(with_held)

    def _pending_weights(self) -> list:
        """The weights of the held-out rows a stream has set aside (not yet in ``_stats``)."""
        return [p[2] for p in self.__dict__.get("_pending", ())]

    def _score_pending(self) -> None:
        """Score the held-out rows ``partial_fit`` set aside by the model of every
        other row, then add them to the statistics (on the fitted estimator, with
        the parameters of its fit; a no-op without such rows)."""
        owner = self.__dict__.get("_view_of", self)
        with _PENDING_LOCK:
            pending = owner.__dict__.get("_pending", ())
            if not pending:
                return
            fitted = owner._as_fitted(isolated=True)
            with np.errstate(over="ignore", invalid="ignore"):  # (checked just below)
                stats, losses = fitted._fold_held_out(
                    owner._stats,
                    _stack_held(pending),
                    owner._calibration,
                    thin=_pending_rows(owner, pending),
                )
            fitted._check_finite(stats)
            owner._stats, owner._calibration, owner._pending = stats, losses, ()

    def _add_held_out(self, losses, model: _Model, X, codes, w) -> tuple:
        """``losses`` plus those of ``X`` scored by ``model`` (fitted at temperature 1).

        ``losses`` is a ``(sums, total, k_lo)`` table (``add_grid_losses``):
        the first rows scored whose scores have a spread place its window of
        temperatures on their scale, so that the grid follows the units of
        ``X``.
        """
        X = np.asarray(X, dtype=np.float64)  # float32 may not hold the scores (huge values)
        if len(list(chunk_slices(len(X), max(len(self.classes_), X.shape[1])))) <= 1:
            return add_grid_losses(
                losses, self._scores_without_prior(model, X), model.log_prior, codes, w
            )
        # in row chunks: the scores of every held-out row at once were a (rows,
        # classes) array, and the grid's work arrays several more (a stream's first
        # use after 600,000 rows of 8 features, 200 classes: 1.02 GB). A window not
        # yet placed is placed by every row's scores first, as in one call
        if losses[2] is None:  # (a pass of its own in the progress lines: they counted
            # the held-out rows twice over, "19 of 19" and then "5 of 19" again)
            first = "placing the temperature window by held-out rows"
            scores = (S for _, S in self._held_out_scores(model, X, first))
            losses = calibration.with_window(losses, calibration.grid_center_of_chunks(scores, w))
            if losses[2] is None:  # no row's scores spread: nothing to add
                return losses
        for s, S in self._held_out_scores(model, X):
            weights = None if w is None else w[s]
            losses = add_grid_losses(losses, S, model.log_prior, codes[s], weights)
        return losses

    def _scores_without_prior(self, model: _Model, X) -> np.ndarray:
        """float64 scores of ``X`` by ``model`` without its log-priors (``-inf``: a class
        without data); the held-out losses add the priors at each temperature: a prior
        added first would round distances that are tiny next to it away."""
        X = np.asarray(X, dtype=np.float64)  # float32 may not hold the scores (huge values)
        out = np.empty((len(X), len(self.classes_)))
        for s, S in self._held_out_scores(model, X):
            out[s] = S
        return out

    def _held_out_scores(self, model: _Model, X: np.ndarray, what: str = "scoring held-out rows"):
        """``(row slice, its scores)`` of :meth:`_scores_without_prior` of float64 rows
        ``X``, chunk by chunk (``what``: the pass, as the progress lines name it)."""
        no_prior = np.where(np.isfinite(model.log_prior), 0.0, -np.inf)
        b = model.b
        if b is not None:
            b = _score_bias(no_prior, model.proto_sqnorm, model.temperature)
        # (the model is passed, and nothing read from the fitted one: the temperature's
        # fallback runs lazily, also from a view of a model and while other threads
        # predict; a temporary model set on the estimator recursed or leaked to them)
        m = dataclasses.replace(model, log_prior=no_prior, b=b)
        report = _progress.current()
        for s in chunk_slices(len(X), max(len(self.classes_), X.shape[1])):
            yield s, self._scores_chunk(X[s], m)
            if report:
                report.tick(lambda s=s: f"{what}: {s.stop} of {len(X)}")

    def _temperature_value(self) -> float:
        """The temperature: the parameter, or the one fitted on held-out losses."""
        if self.temperature != "auto":
            return float(self.temperature)
        if self._calibration[2] is None:  # no held-out row's scores placed a window
            return self._means_temperature()
        return table_temperature(self._calibration)

    def _means_temperature(self) -> float:
        """The middle of the window the class means' own scores place (1.0 if they do
        not spread), for fits in which no held-out row placed one: with a few rows, none
        may be held out (one row per class on digits' pixels read 1.0 and a test
        log-loss of 15.2 in 13 of 100 draws, against 3.6 when a row was held out)."""
        st = self._stats
        seen = st.count > 0
        center = grid_center(self._scores_without_prior(self._derive(st, 1.0), st.mean[seen]))
        return 1.0 if center is None else float(lattice(center, 1)[0])

    @partial_fit_context
    @unchanged_on_failure
    @_progress.reported
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> NearestMeanClassifier:
        """Update the model with one more chunk of data.

        After any sequence of calls the statistics (means, covariances,
        counts) equal :meth:`fit`'s on the concatenation of all chunks, and
        so does the temperature when the held-out rows wait for one use
        (see below). Classes may be declared up front with
        ``classes`` (then an unknown label in a later chunk is an error), or
        left open: a label never seen before simply adds a class
        (class-incremental learning), and ``classes_`` grows, staying sorted.

        A call costs time proportional to the chunk (plus ``n_features**2``
        per class in the chunk when per-class scatter matrices are kept).
        Covariance factorizations and other derived quantities are refreshed
        once, on the first use after the last call, not after every call.
        With ``temperature="auto"`` a call sets about a fifth of its rows
        aside; the first use scores them by the model of every other row (as
        ``fit`` does) and then adds them (past ``5 * scored_rows`` rows streamed
        since the last use, only the ones ``fit`` would score of that many rows,
        at most about ``scored_rows``, fewer where a chunk's own stride does not
        divide ``fit``'s: scoring costs ``n_classes`` per row). Beyond ``2**23``
        set-aside entries, or past ``5 * min(5e6 / n_classes, 50,000)`` rows
        (where ``fit`` samples its held-out rows by the whole data's size, a
        stream by each chunk's), or when the model was used between calls, the
        temperature is close to ``fit``'s, not equal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Chunk of training data.
        y : array-like of shape (n_samples,)
            Labels of the chunk.
        classes : array-like of shape (n_classes,), default=None
            All classes that can ever appear (at least two), on the first call;
            later, equal to ``classes_``, and then every label of ``y`` must be
            one of them.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; they act as frequencies.

        Returns
        -------
        self : NearestMeanClassifier
            Updated estimator.
        """
        first = not hasattr(self, "_stats")
        X, y = _validation.validate_fit_data(self, X, y, reset=first)
        if first:
            self.__dict__.pop("_factor_cache", None)
        # a later chunk may weigh nothing, as rows of fit's data may (a first one
        # raises: the model would have nothing to predict from)
        w = _validation.validate_sample_weight(sample_weight, X, allow_all_zero=not first)
        check_total_weight(w, 0.0 if first else self._stats.count, *self._pending_weights())
        labels, inverse = np.unique(y, return_inverse=True)
        if first:
            self._layout = self._stats_layout()
            declared = None if classes is None else _validation.check_declared_classes(classes)
            known = labels if declared is None else declared
            _validation.check_label_kinds(known, labels)
            self._priors_for(len(_validation.union_labels(known, labels)))  # fail early
            unknown = np.setdiff1d(*_validation.joint_labels(known, labels)[::-1])
            if declared is not None and unknown.size:  # (and leave nothing half-set)
                raise ValueError(
                    f"y contains labels {_validation.shown_labels(unknown)!r} that are not in "
                    f"classes={_validation.shown_labels(known)!r}."
                )
            self.classes_ = known
            self._classes_fixed = declared is not None
            self._stats = ClassStats.empty(len(known), X.shape[1], **self._layout)
        else:
            if self._as_fitted() is not self:  # (cached factors follow the old parameters)
                self.__dict__.pop("_factor_cache", None)
            if self._layout != self._stats_layout():
                raise ValueError(
                    "metric, covariance or covariance_shrinkage changed since the first "
                    "call to partial_fit; the accumulated statistics do not fit the new "
                    "setting. Call fit, or partial_fit on a fresh estimator."
                )
            # (one message for the three estimators; this one said "from earlier
            # calls to partial_fit" of classes_ a fit had set)
            _validation.check_same_classes(self, classes)
            _validation.check_label_kinds(self.classes_, labels)
        unknown = np.setdiff1d(*_validation.joint_labels(self.classes_, labels)[::-1])
        if unknown.size and classes is not None and not first:  # (as scikit-learn)
            raise ValueError(
                f"y contains labels {_validation.shown_labels(unknown)!r} that are not in "
                f"classes={_validation.shown_labels(self.classes_)!r}."
            )
        if unknown.size and self._classes_fixed:
            raise ValueError(
                f"y contains labels {_validation.shown_labels(unknown)!r} that are not in the "
                "classes fixed by the first call to partial_fit: "
                f"{_validation.shown_labels(self.classes_)!r}."
            )
        self._priors_for(len(self.classes_) + unknown.size)  # fail before any change
        if unknown.size:
            union = _validation.union_labels(self.classes_, unknown)
            positions = _validation.label_codes(union, self.classes_)
            self._stats = self._stats.reindex(positions, len(union))
            self._pending = _recode_held(self.__dict__.get("_pending", ()), positions)
            self._move_cases(positions, len(union))
            self.classes_ = union
        codes = _validation.label_codes(self.classes_, labels)[inverse]
        if first:
            self._calibration, self._pending, self._abs_bound = NO_LOSSES, (), 0.0
        # the largest value streamed bounds the sums: below float64's range (nearly
        # always) they are updated in place, else into a copy that a failing check
        # drops (a failure after an in-place update of per-class scatter matrices
        # resets the model, see _restore; a merge copied each class's p x p matrix
        # at every call: CLINC150 Ledoit-Wolf, 100 chunks, 24.7 s against fit's 4.6 s)
        top = max(self.__dict__.get("_abs_bound", np.inf), _validation.max_abs(X))
        total = self._stats.count.sum() + sum(map(np.sum, [w, *self._pending_weights()]))
        safe = _bounded(total, top, X.shape[1])
        held = None
        if self.temperature == "auto":
            # as in fit: about one row in five of the chunk is held out; it is set
            # aside and scored at the next use by the model of every other row
            # streamed (so a stream that fits in the buffer calibrates exactly as
            # fit, and a chunk of new classes calibrates too); scoring each chunk
            # by the model of the rows before it derived that model at every call
            # (100 chunks of CLINC150, Mahalanobis: 58x fit's time) and scored the
            # first chunks by models of a few rows (test |dP| 0.27 against fit)
            self._score_stride = _score_stride(len(X), len(self.classes_))
            mask = self._held_mask(X)
            held = (X[mask], codes[mask], w[mask])
            w = np.where(mask, 0.0, w)
        else:
            self._score_pending()  # (rows set aside while the temperature was "auto")
        with np.errstate(over="ignore", invalid="ignore"):  # (checked just below)
            if safe:
                self._stats = self._stats.writable()  # (a model loaded read-only: a copy)
                self._stats.update(X, codes, w, normalize=self._layout["normalize"])
            else:
                rest = ClassStats.of_rows(X, codes, w, len(self.classes_), **self._layout)
                self._stats = self._stats.merge(rest)
        if not safe:
            self._check_finite(self._stats)  # (as fit: partial_fit accepted what fit refuses)
        if held is not None:
            # (a model pickled before the rows were set aside has none)
            before = self.__dict__.get("_pending", ())
            # the rows of the chunks whose held-out rows wait: fit's stride for that many
            # picks the ones scored (by the set-aside rows' count, which copies of a row
            # swell, a stream below 5 x scored_rows rows was thinned, unlike fit)
            self._pending_rows = (_pending_rows(self, before) if before else 0) + len(X)
            self._pending = (*before, held)
            if len(self._pending) > _PENDING_BLOCKS:  # (each call reads every block)
                self._pending = (_stack_held(self._pending),)
            if not safe:
                self._check_with_pending()
            if sum(len(p[0]) for p in self._pending) * X.shape[1] > _PENDING_ELEMENTS:
                # per-class factors of classes the chunks left alone are kept
                # (every scoring factorized every class: 502 eigh for 500 classes)
                self.__dict__.setdefault("_factor_cache", {})
                self._score_pending()
        self._abs_bound = top
        self._remember_params()
        self._model = None  # derived lazily, once, on next use
        report = _progress.current()
        if report:
            total = self._stats.count.sum() + sum(map(np.sum, self._pending_weights()))
            report.line(
                f"statistics of {len(X)} more rows ({len(self.classes_)} classes, total "
                f"weight {total:.6g} so far)"
            )
        if getattr(self, "prototype_cases_", None) is not None:  # new classes: no case yet
            self._keep_cases(None, X, y, first_row=0)
        elif first:
            self.prototype_cases_ = None
        return self

    def merge(self, *others: NearestMeanClassifier) -> NearestMeanClassifier:
        """Combine models fitted on disjoint data into one.

        The merged statistics equal :meth:`fit`'s on the union of all their
        training data (to float tolerance), and so does the model, except
        with ``temperature="auto"`` for models fitted with :meth:`fit` or used
        before the merge: they scored their held-out rows by their own models,
        and the merged temperature is close to ``fit``'s, not equal (streams
        not used since hand their held-out rows to the merge). The inputs are
        left unchanged. Useful for federated or distributed training: fit one
        model per shard, merge.

        Parameters
        ----------
        *others : NearestMeanClassifier
            Fitted models with the same parameters (``verbose`` aside: the
            result takes this model's) and features. Their class sets may
            differ; the result has the union.

        Returns
        -------
        merged : NearestMeanClassifier
            A new fitted estimator.
        """
        models = (self,) + others
        for m in models:
            if not isinstance(m, NearestMeanClassifier):
                raise TypeError(
                    f"can only merge NearestMeanClassifier models, got {type(m).__name__}."
                )
            if not hasattr(m, "_stats"):
                raise NotFittedError(
                    "all models passed to merge must be fitted; "
                    f"this {type(m).__name__} instance is not fitted yet."
                )
            if m._layout != m._stats_layout():
                raise ValueError(
                    "cannot merge: a model's statistics were gathered under other "
                    "settings of metric, covariance or covariance_shrinkage (they "
                    "were changed after fitting); refit it first."
                )
        with _PENDING_LOCK:  # (each model's statistics and set-aside rows, together)
            parts = [(m._stats, m.__dict__.get("_pending", ()), m._calibration) for m in models]
        check_total_weight(
            *(st.count for st, _, _ in parts), *(p[2] for _, q, _ in parts for p in q)
        )
        params = self.get_params()
        for m in others:
            other = m.get_params()
            for key, value in params.items():
                # (verbose says how to run, not what was learnt: a shard fitted with
                # progress lines merged with one fitted without was refused)
                if key not in _RUNTIME_PARAMS and not same_param(value, other[key]):
                    raise ValueError(
                        f"cannot merge models with different settings: {key}={value!r} "
                        f"vs {key}={other[key]!r}."
                    )
            if m.n_features_in_ != self.n_features_in_:
                raise ValueError(
                    "cannot merge models with different numbers of features: "
                    f"{self.n_features_in_} vs {m.n_features_in_}."
                )
            names_a = getattr(self, "feature_names_in_", None)
            names_b = getattr(m, "feature_names_in_", None)
            if (names_a is None) != (names_b is None) or (
                names_a is not None and not np.array_equal(names_a, names_b)
            ):
                raise ValueError("cannot merge models fitted on different feature names.")
        union = self.classes_
        for m in others:
            _validation.check_label_kinds(union, m.classes_)
            union = _validation.union_labels(union, m.classes_)
        stats, pending = None, ()
        rows = sum(_pending_rows(m, held) for m, (_, held, _) in zip(models, parts) if held)
        for m, (st, held, _) in zip(models, parts):
            positions = _validation.label_codes(union, m.classes_)
            part = st.reindex(positions, len(union))
            with np.errstate(over="ignore", invalid="ignore"):  # (checked just below)
                stats = part if stats is None else stats.merge(part)
            pending += _recode_held(held, positions)
        # as fit refuses the union (two models' sums, each finite, overflowed together:
        # the merged model predicted from a scatter of inf with numpy's warnings)
        self._check_finite(stats)
        merged = clone(self)
        merged._priors_for(len(union))
        merged.classes_ = union
        merged.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            merged.feature_names_in_ = self.feature_names_in_
        # (a class mean's case is its row most similar to it, among rows the
        # merge does not see; as after fit_nearest_mean, none)
        merged.prototype_cases_ = None
        merged._layout = dict(self._layout)
        merged._classes_fixed = False
        merged._stats, merged._pending, merged._pending_rows = stats, pending, rows
        merged._abs_bound = max(m.__dict__.get("_abs_bound", np.inf) for m in models)
        merged._calibration = merge_grid_losses([losses for _, _, losses in parts])
        merged._remember_params()
        # the streams' set-aside rows are scored by the merged model of every
        # other row, at the first use: merged streams calibrate as one fit on
        # their union, and so does a merge of merges (scored at the merge, they
        # were scored by the model of part of the union: a tree of merges read
        # another temperature than one merge of the same shards)
        merged._model = None
        if pending:
            if len(pending) > _PENDING_BLOCKS:  # (each use reads every block)
                merged._pending = (_stack_held(pending),)
            merged._check_with_pending()  # (as fit refuses the union, now)
        else:
            merged._fitted  # noqa: B018 (derived now, as after fit)
        return merged

    # ------------------------------------------------- derived quantities
    @property
    def _fitted(self) -> _Model:
        """The derived model, recomputed once after ``partial_fit`` changed the statistics."""
        owner = self.__dict__.get("_view_of", self)  # (a view's derivation is kept)
        if owner._model is None:  # (with the parameters of the fit: see _as_fitted)
            with _PENDING_LOCK:
                if owner._model is None:
                    owner._score_pending()
                    owner._model = owner._as_fitted(isolated=True)._derive()
        return owner._model

    def _get_fitted_attr_html(self, doc_link=""):
        """The fitted attributes of scikit-learn's HTML repr, read from a copy while a
        stream has rows set aside.

        The repr reads every public property (``inspect.getmembers``); here the
        first read scores the set-aside rows and fixes the temperature, a use
        that a display must not be (a notebook showing ``clf.partial_fit(...)``
        after each chunk ended the stream with a temperature 10% off ``fit``'s,
        Mahalanobis).
        """
        if not self.__dict__.get("_pending"):
            return super()._get_fitted_attr_html(doc_link)
        shown = copy.copy(self)  # (its own attributes: scoring replaces, never updates)
        return super(NearestMeanClassifier, shown)._get_fitted_attr_html(doc_link)

    @property
    def _n_features_out(self) -> int:
        # one prototype per class, known without deriving the model (counted as
        # len(prototypes_), get_feature_names_out, which the HTML repr calls too,
        # scored the rows a stream had set aside)
        return len(self.classes_)

    # Public fitted attributes are views of the derived model, so they are
    # always current, even right after partial_fit.
    @property
    def class_count_(self) -> np.ndarray:
        return self._fitted.class_count

    @property
    def class_prior_(self) -> np.ndarray:
        return self._fitted.class_prior

    @property
    def means_(self) -> np.ndarray:
        return self._fitted.means

    @property
    def prototypes_(self) -> np.ndarray:
        return self._fitted.prototypes

    @property
    def prototype_labels_(self) -> np.ndarray:
        return self.classes_

    @property
    def temperature_(self) -> float:
        return self._fitted.temperature

    @property
    def covariance_(self) -> np.ndarray:
        return self._mahalanobis_attribute("covariance")

    @property
    def covariance_shrinkage_(self) -> float | np.ndarray:
        return self._mahalanobis_attribute("covariance_shrinkage")

    def _mahalanobis_attribute(self, name):
        value = getattr(self._fitted, name)
        if value is None:
            raise AttributeError(f"{name}_ is only set for metric='mahalanobis'.")
        return value

    def _derive(self, st: ClassStats | None = None, temperature: float | None = None) -> _Model:
        """Every quantity the model uses, computed from the sufficient statistics.

        ``st`` defaults to the fitted statistics and ``temperature`` to the
        one the parameters give (fitted, for ``"auto"``).
        """
        st = self._stats if st is None else st
        p = st.mean.shape[1]
        seen = st.count > 0
        total = st.count.sum()
        global_mean = st.count @ st.mean / total
        proto = (1.0 - self.shrinkage) * st.mean + self.shrinkage * global_mean
        if self.metric == "cosine":
            # a mean of unit vectors that (nearly) cancel has no direction:
            # rounding must not pick one, so it becomes the zero vector
            proto = normalize_rows(proto, tol=1e-10)
        proto[~seen] = 0.0
        prior = self._priors(seen, st)
        with np.errstate(divide="ignore"):
            log_prior = np.where(seen, np.log(prior), -np.inf)
        # a centre float32 holds exactly: float32 rows are then taken about the
        # same origin as float64 ones (the float64 mean, rounded to float32 in
        # the subtraction, shifted rows at 1e6 by 0.03: errors of 1e-2)
        center = np.zeros(p) if self.metric == "cosine" else _float32_exact(global_mean)
        cov = {}
        if self.metric == "mahalanobis":  # (about the exact mean: the background's)
            cov = self._covariances(st, total, global_mean)
            cov["background_offset"] = global_mean - center
        T = self._temperature_value() if temperature is None else float(temperature)
        kw = {}
        if cov.get("class_whiten") is None:
            # one quadratic form for all classes: score = Xc @ W + b - ||Xc A||^2 / (2T)
            A = cov.get("whiten")
            Pm = proto - center if A is None else (proto - center) @ A
            pn = np.einsum("ij,ij->i", Pm, Pm)
            W = Pm.T / T if A is None else A @ Pm.T / T
            b = _score_bias(log_prior, pn, T)
            kw = dict(
                mapped_protos=Pm,
                proto_sqnorm=pn,
                W=np.ascontiguousarray(W),
                b=b,
                # (over the classes a row can take: an unseen class's column,
                # -center / T, moved float32 rows to float64 far from the origin)
                W_norm=float(
                    np.sqrt(np.max(np.einsum("ij,ij->j", W, W)[np.isfinite(b)], initial=0.0))
                ),
                b_top=float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0)),
            )
        float32_ok = _within_float32(
            kw.get("W"),
            kw.get("mapped_protos"),
            cov.get("whiten"),
            cov.get("background_map"),
            *(cov.get("class_whiten") or []),
        )
        return _Model(
            float32_ok=float32_ok,
            seen=seen,
            class_count=st.count.copy(),
            class_prior=prior,
            log_prior=log_prior,
            means=np.where(seen[:, None], st.mean, np.nan),
            prototypes=np.where(seen[:, None], proto, np.nan),
            center=center,
            temperature=T,
            **cov,
            **kw,
        )

    @staticmethod
    def _background(A: np.ndarray, dev: np.ndarray, weight: np.ndarray, a: float) -> dict:
        """The relative score's background Gaussian, as what it takes off the shared
        Mahalanobis distance: ``||z A||^2 - delta_0(z) = ||z @ background_map||^2``.

        The background covariance is the total one (within + between classes)
        shrunk by the same amount toward the same target as the within-class
        one, ``Sigma_0 = Sigma + U U^T`` with ``U U^T = (1 - a) * between``. Its
        inverse is taken by Woodbury's identity about ``Sigma^+ = A A^T``:
        ``Sigma^+ - Sigma^+ U (I + U^T Sigma^+ U)^-1 U^T Sigma^+`` (``Sigma_0``'s
        inverse where ``Sigma`` is invertible), so the difference is a PSD form of
        rank ``n_classes`` that vanishes, to rounding of its own size, on every
        direction the classes' means do not see. Before, ``delta_0`` came from a
        whitening of its own and was subtracted: far out along such a direction
        both distances were huge and their difference was rounding (digits'
        constant pixel at 1e15 scored 0, above every training row), and where
        ``Sigma`` was singular (``covariance_shrinkage=0``) a generalised inverse
        of ``Sigma_0`` could exceed ``Sigma^+``, so rows far along a direction
        with class structure but no within-class spread scored ever higher.
        """
        A = np.eye(len(dev.T)) if A is None else A
        G = A.T @ (dev.T * np.sqrt(max(1.0 - a, 0.0) * weight))  # (rank, n_classes)
        if G.shape[1] > G.shape[0]:  # more classes than the rank: G = R^T Q^T, and
            # G (I + G^T G)^-1 G^T = R^T (I + R R^T)^-1 R, (rank, rank) not (n_classes,)^2
            G = scipy.linalg.qr(G.T, mode="r", overwrite_a=True)[0][: G.shape[0]].T
        L = np.linalg.cholesky(np.eye(G.shape[1]) + G.T @ G)  # (SPD: >= the identity)
        H = scipy.linalg.solve_triangular(L, G.T, lower=True).T  # (rank, min(rank, n_classes))
        return dict(background_map=np.ascontiguousarray(A @ H))

    def _priors_for(self, n_classes: int) -> np.ndarray | None:
        """The user's array of priors, validated for ``n_classes`` (None if a string)."""
        if isinstance(self.priors, str):
            return None
        if isinstance(self.priors, (Mapping, Set)):
            # (a dict keyed by label, as class_weight is, raised numpy's TypeError)
            raise ValueError(
                "priors must be 'uniform', 'empirical' or an array-like of one prior per "
                f"class, in the order of classes_; got a {type(self.priors).__name__}."
            )
        pri = np.asarray(self.priors, dtype=np.float64)
        if pri.ndim != 1:  # (a (1, n) array was read as its row)
            raise ValueError(f"priors must be 1-D, of shape (n_classes,); got shape {pri.shape}.")
        if pri.shape != (n_classes,):
            raise ValueError(f"priors has {pri.size} entries but there are {n_classes} classes.")
        if np.any(pri < 0) or not np.isclose(pri.sum(), 1.0):
            raise ValueError("priors must be non-negative and sum to 1.")
        return pri

    def _priors(self, seen: np.ndarray, st: ClassStats) -> np.ndarray:
        given = self._priors_for(len(seen))
        if given is not None:
            return np.where(seen, given, 0.0)
        if self.priors == "uniform":
            return seen / seen.sum()
        return st.count / st.count.sum()

    def _covariances(self, st: ClassStats, total: float, mean: np.ndarray) -> dict:
        """Shrunk covariances and their whitening maps (``L @ L.T = pinv(cov)``);
        ``mean``: the data's (weighted) mean."""
        pooled = st.scatter.sum(axis=0) if st.scatter.ndim == 3 else st.scatter
        S = pooled / total
        dev = st.mean - mean
        between = (dev * (st.count / total)[:, None]).T @ dev
        # a scatter this small next to the spread of the means is rounding
        # noise (every class a single repeated row): zero, not a huge whitening
        floor = _ZERO_SCATTER * (max(np.trace(S), 0.0) + max(np.trace(between), 0.0))
        if np.trace(S) <= floor:
            S = np.zeros_like(S)
        S = _without_noise_features(S, np.diag(between) + mean * mean)
        q4 = st.q4.sum() if st.q4 is not None else None
        a = shrinkage_amount(self.covariance_shrinkage, S, total, q4)
        shared = shrunk_covariance(S, a)
        lowest = _shrinkage_floor(S, a)
        shared_white = whitener(shared, lowest)
        if shared_white is None:  # zero within-class scatter: fall back to Euclidean
            shared_white = np.eye(S.shape[0])
        if self.covariance == "shared":
            out = self._background(shared_white, dev, st.count / total, a)
            return dict(out, covariance=shared, covariance_shrinkage=a, whiten=shared_white)
        out = {}
        n_classes = len(st.count)
        covs = np.full_like(st.scatter, np.nan)
        amounts = np.full(n_classes, np.nan)
        whiten = [None] * n_classes
        pool = float(self.covariance_pooling)
        # label -> (count, mean, (amount, whiten)); with pooling a class's factor also
        # follows the shared covariance, which every other class's rows move: none kept
        cache = self.__dict__.get("_factor_cache") if pool == 0 else None
        report = _progress.current()
        for done, c in enumerate(np.flatnonzero(st.count > 0)):
            if report:
                report.tick(lambda done=done: f"class covariances: {done} of {n_classes}")
            Sc = st.scatter[c] / st.count[c]
            zeroed = np.trace(Sc) <= floor  # (the floor moves with all the data)
            if zeroed:
                Sc = np.zeros_like(Sc)
            Sc = _without_noise_features(Sc, st.mean[c] * st.mean[c])
            label = self.classes_[c]
            known = None if cache is None or zeroed else cache.get(label)
            if (
                known is not None
                and known[0] == st.count[c]
                and np.array_equal(known[1], st.mean[c])
            ):
                # (within a stream, rows of a class change its count: the same count
                # and mean are the same rows). The covariance is formed again, O(p^2):
                # a cached copy was a fourth C x p x p array held by the model
                amounts[c], whiten[c] = known[2]
                covs[c] = shrunk_covariance(Sc, amounts[c])
                continue
            qc = st.q4[c] if st.q4 is not None else None
            amounts[c] = shrinkage_amount(self.covariance_shrinkage, Sc, st.count[c], qc)
            covs[c] = shrunk_covariance(Sc, amounts[c])
            floor_c = _shrinkage_floor(Sc, amounts[c])
            # (the blend's eigenvalues are at least the blend of the floors). A class of
            # zero scatter (one row) is not blended: its covariance is the pooled one, as
            # at r = 0 (blended, r * Sigma: at r = 0.01 a one-row class's distances were
            # 100 times the shared model's, and 37 % of rows drawn about it went elsewhere)
            if pool > 0 and np.max(np.diag(covs[c]), initial=0.0) > 0:
                covs[c] = (1.0 - pool) * covs[c] + pool * shared
                floor_c = (1.0 - pool) * floor_c + pool * lowest
            whiten[c] = whitener(covs[c], floor_c)
            if whiten[c] is None:  # zero scatter (e.g. one sample): use the pooled covariance
                covs[c], whiten[c], amounts[c] = shared, shared_white, a
            elif cache is not None:
                # (a copy of the mean: a view would keep each call's array alive)
                cache[label] = (st.count[c], st.mean[c].copy(), (amounts[c], whiten[c]))
        if report:
            report.line(f"factored the covariances of {np.count_nonzero(st.count)} classes")
        return dict(out, covariance=covs, covariance_shrinkage=amounts, class_whiten=whiten)

    # ------------------------------------------------------ computations
    @as_fitted
    def _prototypes_are_directions(self) -> bool:
        return self.metric == "cosine"

    def _validate_X_predict(self, X) -> np.ndarray:
        """Validated ``X``; float32 stays float32 while that is safe.

        float32 input is computed in float64 (cast chunk by chunk:
        :class:`~skproto._chunking.Float64Rows`; the outputs are float64)
        when the model's numbers or the input's magnitude leave
        ``_FLOAT32_RANGE``, where products would overflow or underflow float32.
        The choice is made once for the whole of ``X``, so no row depends on
        how the rows are chunked.
        """
        X, top = _validation.validate_predict_data(self, X, return_max_abs=True)
        if X.dtype == np.float32 and not self._float32_holds(X, top):
            return Float64Rows(X)  # (cast chunk by chunk: a whole copy was twice X)
        return X

    def _float32_holds(self, X: np.ndarray, top: float) -> bool:
        """Whether float32 computes the scores of the float32 rows ``X`` (largest
        magnitude ``top``) to about ``_FLOAT32_SCORE_TOL``.

        Range: the model's numbers and the rows' magnitudes in
        ``_FLOAT32_RANGE`` (tiny rows under the cosine normalised to zero).
        Precision: the class terms ``Xc @ W + b`` of the one quadratic form,
        at most ``|Xc| |W_c| + |b|``, must not be so large that float32's
        rounding of them (unit 6e-8) reaches the tolerance: with the cosine
        on rows far from the origin (digits + 1e6: T = 1e-12, terms of 1e12)
        float32 scores were noise (accuracy 0.11 against 0.905). On CLINC150
        the terms are 50-120, far below the 1.7e4 allowed.
        """
        m = self._fitted
        lo, hi = _FLOAT32_RANGE
        if not m.float32_ok or top > hi or 0 < top < lo:
            return False
        if m.W is None:  # per-class whitening: distances from differences, no cancellation
            return True
        radius = 1.0  # the cosine's unit rows; else the largest |x - center|:
        if self.metric != "cosine":
            sq = 0.0
            for s in chunk_slices(X.shape[0], X.shape[1]):
                Xc = self._centered(X[s], m)
                sq = max(sq, float(np.einsum("ij,ij->i", Xc, Xc).max(initial=0.0)))
            radius = np.sqrt(sq)
        terms = radius * m.W_norm + m.b_top
        return terms * float(np.finfo(np.float32).eps) / 2 <= _FLOAT32_SCORE_TOL

    def _centered(self, X: np.ndarray, m: _Model) -> np.ndarray:
        """Rows relative to the model's origin (unit rows for cosine)."""
        if self.metric == "cosine":
            return normalize_rows(X)
        return X - m.center.astype(X.dtype, copy=False)

    def _row_sqnorm(self, Xc: np.ndarray, m: _Model) -> np.ndarray:
        """``||Xc A||^2`` for the model's whitening ``A`` (identity unless Mahalanobis)."""
        if m.whiten is not None:
            Xc = Xc @ m.whiten.astype(Xc.dtype, copy=False)
        return np.einsum("ij,ij->i", Xc, Xc)

    def _pairwise(self, X: np.ndarray, m: _Model | None = None) -> np.ndarray:
        """Squared distances to every class mean, (n_rows, n_classes) (``m``: the model
        to use, by default the fitted one)."""
        m, dt = self._fitted if m is None else m, X.dtype
        if m.class_whiten is not None:
            D = np.full((X.shape[0], len(self.classes_)), np.inf, dtype=dt)
            Xc = self._centered(X, m)  # then each class mean about that centre: small,
            offsets = np.nan_to_num(m.prototypes) - m.center  # so float32 holds it closely
            for c in np.flatnonzero(m.seen):
                Z = (Xc - offsets[c].astype(dt)) @ m.class_whiten[c].astype(dt, copy=False)
                D[:, c] = np.einsum("ij,ij->i", Z, Z)
            return D
        Xm = self._centered(X, m)
        if m.whiten is not None:
            Xm = Xm @ m.whiten.astype(dt, copy=False)
        D = squared_distances(Xm, m.mapped_protos.astype(dt, copy=False))
        D[:, ~m.seen] = np.inf
        return D

    def _activation(self, D: np.ndarray, m: _Model | None = None) -> np.ndarray:
        return D * D.dtype.type(-0.5 / (self._fitted if m is None else m).temperature)

    def _head(self):
        return np.eye(len(self.classes_)), self._fitted.log_prior

    def _explain_bias(self) -> np.ndarray:
        return self._fitted.log_prior  # (the head's b, without its n_classes**2 identity)

    _contributions_are_own_class = True

    def _own_class_contributions(self, A: np.ndarray):
        # mean k speaks only for class k (no -inf * 0 for classes without rows yet)
        return A, np.arange(A.shape[1])

    def _shifted_scores_chunk(self, X: np.ndarray) -> np.ndarray:
        # scores without the per-row term -||x||^2 / (2T): one matrix product
        m, dt = self._fitted, X.dtype
        if m.class_whiten is not None:
            return self._scores_chunk(X)
        S = self._centered(X, m) @ m.W.astype(dt, copy=False)
        S += m.b.astype(dt, copy=False)
        return S

    def _scores_chunk(self, X: np.ndarray, m: _Model | None = None) -> np.ndarray:
        m, dt = self._fitted if m is None else m, X.dtype
        if m.class_whiten is not None:
            return self._activation(self._pairwise(X, m), m) + m.log_prior.astype(dt)
        Xc = self._centered(X, m)
        S = Xc @ m.W.astype(dt, copy=False)
        S += m.b.astype(dt, copy=False)
        S -= (self._row_sqnorm(Xc, m) * dt.type(0.5 / m.temperature))[:, None]
        return S

    def _score_samples_chunk(self, X: np.ndarray) -> np.ndarray:
        m, dt = self._fitted, X.dtype
        # The relative (background) term only with the shared covariance, where
        # it never outgrows the class distances (see _background). A class's own
        # covariance can be wider than any pooled background in some direction:
        # with covariance="per_class" rows far out along it scored as more typical
        # than every training row (digits: a row 1e4 away scored +5e6 against the
        # training rows' -5..-1; CLINC150 out-of-scope AUROC 0.717, 0.934 without).
        if self.metric != "mahalanobis" or m.class_whiten is not None:
            return super()._score_samples_chunk(X)
        # logsumexp(scores) + delta_0 / (2T), with the row term common to the classes
        # taken out of the logsumexp and formed without subtracting two squared
        # distances: with z = x - mean, Xc = z + o and A A^T = Sigma^+,
        # ||Xc A||^2 - delta_0(z) = ||z @ background_map||^2 + 2 z.(A A^T o) + ||A^T o||^2
        score = logsumexp(self._shifted_scores_chunk(X), axis=1)  # (without ||Xc A||^2)
        Xc = self._centered(X, m)
        o = m.background_offset
        Ao = o @ m.whiten
        Z = Xc - o.astype(dt)
        V = Z @ m.background_map.astype(dt, copy=False)
        gap = np.einsum("ij,ij->i", V, V)
        gap += Z @ (2.0 * (m.whiten @ Ao)).astype(dt)
        gap += dt.type(Ao @ Ao)
        score -= gap * dt.type(0.5 / m.temperature)
        return score


def _merge_blocks(parts: list) -> tuple:
    """Merge ``_block_statistics`` results of disjoint blocks (as if one block)."""
    rest, held = parts[0]
    for r, h in parts[1:]:
        rest = rest.merge(r)
        if held is not None:
            held = tuple(np.concatenate([a, b]) for a, b in zip(held, h))
    return rest, held


def _float32_exact(v: np.ndarray) -> np.ndarray:
    """``v`` rounded to float32 values where float32 holds them (else as it is)."""
    with np.errstate(over="ignore"):
        short = v.astype(np.float32).astype(np.float64)
    return np.where(np.isfinite(short), short, v)


def _stack_held(blocks: tuple) -> tuple:
    """One ``(X, codes, w)`` block of held-out rows from several."""
    return tuple(np.concatenate([b[k] for b in blocks]) for k in range(3))


def _recode_held(blocks: tuple, positions: np.ndarray) -> tuple:
    """Held-out blocks with their class codes moved to ``positions`` (a larger class set)."""
    return tuple((X, positions[codes], w) for X, codes, w in blocks)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on uint64 ``z`` (arithmetic modulo 2**64)."""
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def _bounded(total_weight: float, top: float, n_features: int) -> bool:
    """Whether statistics of rows with values at most ``top`` in magnitude and total
    weight ``total_weight`` surely stay finite (scatter <= total (2 top)^2; the third
    and fourth moments stay below the bound too)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total, top = np.float64(total_weight), np.float64(top)
        bound = total * (1.0 + 4.0 * n_features * top * top) ** 2 * (1.0 + 2.0 * top)
        return bool(bound <= 1e300)


def _row_hash(X: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit hash of each row's direction (equal rows, equal hashes).

    The direction is the row times ``2**28`` over its largest magnitude, rounded
    to an integer (``_DIRECTION_BITS``), so the hash does not depend on the units
    of ``X``: a row and its positive multiple hash alike (exactly wherever the
    multiple is exact, as ``X * 2**k`` and float32 values cast to float64 are;
    after a rounded product such as ``X * 3`` in float64, but for about one row
    in 100,000 of 384 features). A row of one nonzero integer (every row of one
    feature) adds its largest magnitude's mantissa, which powers of two leave
    alone: such rows are not all held out together. So does a row whose values
    lie within 2**-16 of one another relative to its largest magnitude
    (``_COARSE_DIRECTION_STEPS``: constant rows, data far from the origin for
    its spread, whose directions the rounding would merge). The zero row has
    one hash, and ``-0.0`` is ``0.0``.

    Each integer, held in the low bits of a float64 (``_ROUNDER``), times a
    well-mixed odd constant of its column, is summed over the row and mixed
    (constants in arithmetic progression and the unrounded values' bits gave
    19,931 distinct rows of one to three ones among 256 columns 1,472 hashes).
    The hash of 50,000 x 384 float32
    rows takes about 48 ms (one thread; 27 ms when it read the raw bits, 105 ms
    in its first form of the direction).
    """
    n, p = X.shape
    with np.errstate(over="ignore"):
        golden = np.uint64(0x9E3779B97F4A7C15)
        mult = _mix64(np.arange(1, p + 2, dtype=np.uint64) * golden) | np.uint64(1)
    h = np.empty(n, dtype=np.uint64)
    slices = list(chunk_slices(n, (p + 1) * 16))  # cache-sized pieces
    buf = np.empty((slices[0].stop - slices[0].start if slices else 0, p))
    for s in slices:
        values = buf[: s.stop - s.start]  # (contiguous: strided passes cost 1.5x)
        np.add(X[s], 0.0, out=values)  # float64 values, in a reused buffer
        hi, lo = values.max(axis=1), values.min(axis=1)
        top = np.maximum(hi, -lo)
        coarse = hi - lo <= top * (_COARSE_DIRECTION_STEPS / _DIRECTION_SCALE)
        # each row times 2**28 / top: one rounded product (the same for a multiple
        # computed exactly); a row below 2**-960 first times 2**100 (exact), as its
        # factor would overflow
        top_used = np.where(top > 0, top, 1.0)
        tiny = top_used < _TINY_TOP
        if tiny.any():
            values[tiny] *= _TINY_LIFT
            top_used[tiny] *= _TINY_LIFT
        np.multiply(values, (_DIRECTION_SCALE / top_used)[:, None], out=values)
        # rounded to integers (to even) in the low bits: |values| <= 2**28 < 2**51, and
        # -0.0 adds to the same bits as 0.0
        values += _ROUNDER
        coarse |= np.count_nonzero(values != _ROUNDER, axis=1) == 1  # one direction
        extra = np.where(coarse, np.frexp(top)[0], 0.0).view(np.uint64)
        bits = values.view(np.uint64)
        with np.errstate(over="ignore"):
            bits *= mult[:p]
            h[s] = bits.sum(axis=1, dtype=np.uint64) + extra * mult[p]
    return _mix64(h)


def _within_float32(*arrays) -> bool:
    """Whether the largest finite magnitude of each array lies in ``_FLOAT32_RANGE`` (or is 0)."""
    lo, hi = _FLOAT32_RANGE
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        finite = np.abs(a[np.isfinite(a)])
        top = finite.max() if finite.size else 0.0
        if top > hi or 0 < top < lo:
            return False
    return True


def _score_bias(log_prior: np.ndarray, proto_sqnorm: np.ndarray, T: float) -> np.ndarray:
    """The class term of the scores: ``log_prior - ||m_c A||^2 / (2T)`` (-inf: no data)."""
    return np.where(np.isfinite(log_prior), log_prior - proto_sqnorm / (2.0 * T), -np.inf)


def _thinned(X: np.ndarray, codes: np.ndarray, w: np.ndarray, stride: int) -> tuple:
    """A stream's set-aside rows ``(X, codes, w)``, those of them that ``fit`` would
    score (:meth:`_held_mask`): one in ``stride`` (``fit``'s :func:`_score_stride` for
    the rows the stream's chunks had) by :func:`_row_hash`; all of them at stride 1
    (below ``5 * scored_rows`` rows, where the stream's temperature equals ``fit``'s),
    or if that keeps none. Of the rows that a chunk of over ``5 * scored_rows`` rows set
    aside, one in its own stride, ``gcd(its stride, stride) / stride`` are kept
    (where ``stride`` is a multiple of the chunk's, the rows ``fit`` picks). By the
    set-aside rows' count, copies of a row thinned a stream of under
    ``5 * scored_rows`` rows, and four chunks of stride 4 were not thinned at all."""
    if stride <= 1:
        return X, codes, w
    keep = (_row_hash(X) // _HELD_OUT_EVERY) % stride == 0
    return (X[keep], codes[keep], w[keep]) if keep.any() else (X, codes, w)


def _pending_rows(model, pending) -> int:
    """How many rows the chunks of ``pending`` (``model``'s set-aside rows) had: the
    count ``partial_fit`` keeps, or, for a model pickled before it did, five times
    the set-aside rows."""
    rows = model.__dict__.get("_pending_rows")
    return _HELD_OUT_EVERY * sum(len(p[0]) for p in pending) if rows is None else int(rows)


def _score_stride(n_rows: int, n_classes: int) -> int:
    """One in how many held-out rows is scored (see ``_block_statistics``).

    Scoring a held-out row costs n_classes x the grid; one scalar needs no
    more than a few thousand rows (all of them up to 5e6 / n_classes
    held-out rows: 33,000 for 150 classes; at most 50,000).
    """
    most = calibration.scored_rows(n_classes)
    return max(1, -(-int(n_rows) // (_HELD_OUT_EVERY * most)))


def _shrinkage_floor(S: np.ndarray, amount: float) -> float:
    """What :func:`shrunk_covariance` adds to every eigenvalue of the PSD ``S``,
    ``a tr(S) / p``: a lower bound of the shrunk covariance's eigenvalues, which
    lets :func:`whitener` invert it by Cholesky."""
    return amount * max(float(np.trace(S)), 0.0) / len(S)


def _without_noise_features(S: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """``S`` with the rows and columns of features whose variance is rounding noise zeroed.

    A feature's variance counts as noise where its standard deviation is at
    most 64 float64 steps of its values' magnitude (``sqrt(S_jj + spread_j)``,
    their root mean square about the origin; ``spread`` is what the mean and
    the spread of the class means add): the residuals about a class mean
    rounded to float64 are that small for a feature constant within each
    class. Left in, the whitening (on the correlation matrix) scaled such
    noise (1e-35 for a pixel constant within every digit class) up to unit
    variance: a "correlation" matrix with eigenvalue -4.2, whitening factors
    of 4e17, and scores off by 0.09. A real spread of 860 steps (values
    1e6 + 1e-7 z) is kept.
    """
    variance = np.diag(S)
    noise = variance <= _NOISE_VARIANCE * (np.maximum(variance, 0.0) + spread)
    if not noise.any():
        return S
    S = S.copy()
    S[noise, :] = 0.0
    S[:, noise] = 0.0
    return S


#: See :func:`_without_noise_features`: ``(64 eps)**2``.
_NOISE_VARIANCE = (64 * np.finfo(np.float64).eps) ** 2


#: A within-class scatter whose trace is at most this times the data's total
#: spread counts as zero (rounding noise of classes that are single repeated rows).
_ZERO_SCATTER = 1e-20


@dataclass(frozen=True)
class _Model:
    """What a NearestMeanClassifier derives from its statistics to predict."""

    seen: np.ndarray  # classes with data
    class_count: np.ndarray
    class_prior: np.ndarray
    log_prior: np.ndarray  # -inf for unseen classes
    means: np.ndarray
    prototypes: np.ndarray
    center: np.ndarray  # origin the rows are taken relative to
    temperature: float
    covariance: np.ndarray | None = None
    covariance_shrinkage: object | None = None
    whiten: np.ndarray | None = None  # shared Mahalanobis
    class_whiten: list | None = None  # per-class Mahalanobis
    background_map: np.ndarray | None = None  # shared Mahalanobis: see _background
    background_offset: np.ndarray | None = None  # the data's mean - center
    mapped_protos: np.ndarray | None = None
    proto_sqnorm: np.ndarray | None = None
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    float32_ok: bool = True  # float32 inputs can be computed in float32
    W_norm: float = 0.0  # the largest column norm of W
    b_top: float = 0.0  # the largest finite |b|
