"""Plots of explanations in scikit-learn's Display style (needs matplotlib: ``skproto[plot]``).

Each display is built with ``from_estimator`` (or ``from_explanation``),
draws with ``plot(ax=...)`` and keeps what it drew as attributes ending in
``_`` (``figure_``, ``axes_``, the artists), so a caller or a test can read
the picture back.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validation import (
    check_non_negative_int,
    check_positive_int,
    shown_labels,
    time_labels,
)
from ._cases import (
    _to_uint8,
    case_text,
    check_training_rows,
    other_rows,
    positional,
    rendered,
    row_labels,
    training_labels,
)
from ._explanation import Explanation, label_texts
from ._steps import (
    Waterfall,
    drawn_range,
    explain_with_runner_up,
    fitted_classifier,
    has_rival,
    no_rival,
    runner_up_waterfall,
    sample_position,
    unpipe,
    waterfall,
)

__all__ = ["EmbeddingDisplay", "ExplanationDisplay", "PrototypeGalleryDisplay"]

#: Classes the embedding's legend lists; more are named on the map itself
_MAX_LEGEND_CLASSES = 12

_COLORS = {"positive": "#2a9d8f", "negative": "#e76f51", "bias": "#8d99ae", "score": "#264653"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skproto's plots need matplotlib: pip install 'skproto[plot]' "
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _rows_of(X, i: int) -> np.ndarray:
    """Row ``i`` of ``X`` as a one-row ``X`` (Python's indexing: -1 is the last row)."""
    X = X if hasattr(X, "iloc") else np.asarray(X)
    n = len(X)
    i = sample_position(i)  # (int() read sample=2.7 as row 2, where waterfall refuses it)
    if not -n <= i < n:
        raise IndexError(f"sample {i} is out of range for X with {n} rows.")
    i = int(i) % n
    return X.iloc[i : i + 1] if hasattr(X, "iloc") else X[i : i + 1]


def _zoom(shape: tuple) -> float:
    """Zoom of a case's thumbnail: its longer side 24 points, and a strip's short
    side at least 3 where that keeps the long side under 72 (a 1 x 64 strip was
    0.4 points tall)."""
    long, short = max(shape[:2]), max(1, min(shape[:2]))
    return max(24 / long, min(3 / short, 72 / long))


class ExplanationDisplay:
    """Waterfall of one prediction: how the top prototypes build the class scores.

    One panel for the predicted class and one for the runner-up (none where
    every other class scores -inf: the first panel's title says so). Each starts
    at the class bias, adds one bar per listed prototype (labelled with its
    case: a text snippet, or a thumbnail for an image) and a bar for all
    other prototypes, and ends exactly at the class score, drawn as the last
    bar from 0.

    Parameters
    ----------
    waterfalls : list of Waterfall
        The panels (see :meth:`from_explanation`).
    renderer : None, "text", "image" or callable, default=None
        How cases are shown (see :func:`skproto.explain.rendered`).
    estimator_name : str, default=""
        Name of the explained estimator (kept, not drawn).
    classes : array-like, default=None
        Every class of the model: each panel's title names its class apart from
        all of them, as its bars do (None: apart from the other panel's only).

    Attributes
    ----------
    figure_ : matplotlib Figure
    axes_ : list of matplotlib Axes
        One per panel.
    bars_ : list of matplotlib BarContainer
        One per panel: a bar per step, then the score bar. The steps' widths
        add up to the score.
    thumbnails_ : list of matplotlib AnnotationBbox
        The image thumbnails of image cases.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import ExplanationDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> display = ExplanationDisplay.from_estimator(clf, X, sample=0)
    >>> len(display.axes_)
    2
    """

    def __init__(
        self,
        waterfalls: list[Waterfall],
        *,
        renderer: str | Callable | None = None,
        estimator_name: str = "",
        classes: ArrayLike | None = None,
    ) -> None:
        self.waterfalls = waterfalls
        self.renderer = renderer
        self.estimator_name = estimator_name
        self.classes = classes

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: ArrayLike,
        *,
        sample: int = 0,
        n_prototypes: int = 5,
        cases: Sequence | np.ndarray | None = None,
        X_train: ArrayLike | None = None,
        y_train: ArrayLike | None = None,
        renderer: str | Callable | None = None,
        ax: Any = None,
    ) -> ExplanationDisplay:
        """Explain row ``sample`` of ``X`` and plot it.

        ``cases`` are the raw training inputs aligned with the training rows;
        with ``X_train, y_train`` too, prototypes that are not training rows
        (class means) are shown by their representative row.

        Parameters
        ----------
        estimator : fitted skproto estimator, or a Pipeline ending in one
            The classifier to explain.
        X : array-like of shape (n_samples, n_features)
            Samples (a pipeline's raw inputs).
        sample : int, default=0
            Row of ``X`` to explain (negative counts from the end).
        n_prototypes : int, default=5
            Prototypes listed in each panel.
        cases : sequence, default=None
            Raw cases aligned with the training rows ``X_train``.
        X_train : array-like of shape (n_train, n_features), default=None
            The training data, for the representatives of prototypes that are
            no rows; a pipeline's training inputs are also the default cases.
        y_train : array-like of shape (n_train,), default=None
            Labels of ``X_train``.
        renderer : None, "text", "image" or callable, default=None
            How cases are shown (see :func:`skproto.explain.rendered`).
        ax : matplotlib Axes or sequence of Axes, default=None
            One Axes per panel; None: a new figure.

        Returns
        -------
        display : ExplanationDisplay
            The display, drawn.
        """
        estimator, X, X_train, _, cases = unpipe(
            estimator, _rows_of(X, sample), X_train, None, cases
        )
        fitted_classifier(estimator, "ExplanationDisplay")
        first, second = explain_with_runner_up(
            estimator,
            X,
            n_prototypes=n_prototypes,
            cases=cases,
            X_train=X_train,
            y_train=y_train,
        )
        return cls.from_explanation(first, sample=0, runner_up=second, renderer=renderer, ax=ax)

    @classmethod
    def from_explanation(
        cls,
        explanation: Explanation,
        *,
        sample: int = 0,
        runner_up: Explanation | None = None,
        renderer: str | Callable | None = None,
        ax: Any = None,
    ) -> ExplanationDisplay:
        """Plot sample ``sample`` of ``explanation``.

        ``runner_up``: an explanation of the same sample with
        ``target=explanation.runner_up`` (its prototypes ranked for the
        runner-up); without it, the runner-up panel shows the prototypes
        listed for the prediction.

        Parameters
        ----------
        explanation : Explanation
            Explanation of the predicted (explained) class.
        sample : int, default=0
            Row of the explanation to plot.
        runner_up : Explanation, default=None
            Explanation of the same rows for their runner-up class.
        renderer : None, "text", "image" or callable, default=None
            How cases are shown (see :func:`skproto.explain.rendered`).
        ax : matplotlib Axes or sequence of Axes, default=None
            One Axes per panel; None: a new figure.

        Returns
        -------
        display : ExplanationDisplay
            The display, drawn.
        """
        panels = [waterfall(explanation, sample)]
        if has_rival(explanation, sample):
            if runner_up is not None:  # (its explained class is the runner-up)
                panels.append(runner_up_waterfall(runner_up, sample))
            else:
                panels.append(waterfall(explanation, sample, column="runner_up"))
        elif len(explanation.classes) > 1:
            # no other class can be predicted: explain names the explained class its
            # own runner-up, and its panel was drawn a second time as the runner-up's
            why = no_rival(explanation, sample)
            panels[0] = replace(panels[0], role=f"{panels[0].role}; {why}")
        display = cls(
            panels,
            renderer=renderer,
            estimator_name=explanation.estimator_name,
            classes=explanation.classes,
        )
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> ExplanationDisplay:
        """Draw the panels on ``ax`` (one Axes per panel; a new figure if None).

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, default=None
            At least one Axes per panel; None: a new figure.

        Returns
        -------
        display : ExplanationDisplay
            The display itself, with ``figure_``, ``axes_``, ``bars_`` and
            ``thumbnails_`` set.
        """
        plt = _pyplot()
        n = len(self.waterfalls)
        if ax is None:
            height = max(2.5, 0.45 * max(len(w.steps) + 1 for w in self.waterfalls))
            fig, axes = plt.subplots(n, 1, figsize=(10, height * n), squeeze=False)
            axes = list(axes[:, 0])
        else:
            axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
            if len(axes) < n:
                raise ValueError(f"ax must hold {n} Axes (one per panel), got {len(axes)}.")
            fig = axes[0].figure
        self.bars_, self.thumbnails_ = [], []
        # the panels told apart, and from every class: named apart from the other
        # panel only, the prediction "escalation_level_1_..." read as the shortened
        # name its bars gave "escalation_level_2_..." too
        shown = [w.label for w in self.waterfalls]
        names = label_texts([*shown, *([] if self.classes is None else self.classes)])[:n]
        for w, a, name in zip(self.waterfalls, axes, names):
            self._draw(w, a, name)
        if ax is None:  # a figure of the user's keeps its layout
            # (matplotlib < 3.7.2 measured a thumbnail where it stood before a first
            # draw: tight_layout squashed the panels and cut the thumbnails off)
            fig.draw_without_rendering()
            fig.tight_layout()
        self.figure_, self.axes_ = fig, axes[:n]
        return self

    def _draw(self, w: Waterfall, ax, name: str) -> None:
        from matplotlib.colors import Normalize
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage

        values = np.array([s.value for s in w.steps] + [w.score])
        starts = np.concatenate([[0.0], np.cumsum(values[:-1])[:-1], [0.0]])
        ends = np.concatenate([np.cumsum(values[:-1]), [w.score]])
        if not np.all(np.isfinite(ends)):
            # a class with no rows yet scores -inf: its bars were infinite (an empty
            # panel, RuntimeWarnings); drawn to the edge
            lo, hi = drawn_range(ends)
            starts, ends = (np.clip(np.nan_to_num(a, nan=0.0), lo, hi) for a in (starts, ends))
            values = ends - starts
        colors = [
            _COLORS["bias"]
            if s.kind == "bias"
            else (_COLORS["positive"] if s.value >= 0 else _COLORS["negative"])
            for s in w.steps
        ] + [_COLORS["score"]]
        hatches = ["//" if s.part == "absence" else "" for s in w.steps] + [""]
        y = np.arange(len(values))[::-1]
        bars = ax.barh(y, values, left=starts, color=colors, edgecolor="white", height=0.7)
        for bar, hatch in zip(bars, hatches):
            bar.set_hatch(hatch)
        labels = []
        for s in w.steps:
            text = s.label
            if s.case is not None:
                shown = rendered(s.case, self.renderer)
                if isinstance(shown, np.ndarray):
                    image = OffsetImage(
                        _to_uint8(shown),  # as the report shows it
                        zoom=_zoom(shown.shape),
                        cmap="gray",
                        norm=Normalize(0, 255),
                    )
                    box = AnnotationBbox(
                        image,
                        (1.0, y[len(labels)]),
                        xycoords=("axes fraction", "data"),
                        box_alignment=(-0.1, 0.5),
                        frameon=False,
                    )
                    ax.add_artist(box)
                    self.thumbnails_.append(box)
                else:
                    text = f"{text}: {case_text(shown, max_chars=40)}"
            labels.append(text)
        labels.append("= score")
        ax.set_yticks(y, labels, parse_math=False)  # (a "$" in a case is not maths)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("contribution to the class score")
        role = f" ({w.role})" if w.role else ""
        ax.set_title(f"class {name}{role}: score {w.score:.4g}", parse_math=False)
        self.bars_.append(bars)


class PrototypeGalleryDisplay:
    """Gallery of prototypes as cases: each next to its nearest training cases, with its purity.

    One row per prototype of the chosen classes: the prototype's case, then
    the cases of the ``n_neighbors`` training rows that activate it most
    (other than its own row).
    Titles give the prototype's class, its purity (share of its 10 most
    activating training rows that carry its class) and each neighbour's label.

    Parameters
    ----------
    prototype_index : array-like of shape (n_shown,)
        The prototypes to show (rows of ``prototypes_``).
    prototype_label : array-like of shape (n_shown,)
        Class of each.
    rows : array-like of shape (n_shown,)
        Training row shown as each prototype's case (-1: none).
    neighbors : array-like of shape (n_shown, n_neighbors)
        Training rows shown next to each prototype.
    neighbor_labels : array-like of shape (n_shown, n_neighbors)
        Labels of those rows.
    purity : array-like of shape (n_shown,)
        Purity of each prototype.
    cases : sequence, default=None
        Raw cases aligned with the training rows; None: row numbers are shown.
    renderer : None, "text", "image" or callable, default=None
        How cases are shown (see :func:`skproto.explain.rendered`).
    prototype_cases : sequence of shape (n_shown,), default=None
        Case of each shown prototype, used when ``cases`` is None.
    classes : array-like, default=None
        Every class of the model: the titles name each label apart from all of
        them (None: apart from the labels shown only).

    Attributes
    ----------
    figure_ : matplotlib Figure
    axes_ : ndarray of matplotlib Axes, shape (n_shown, 1 + n_neighbors)
    prototype_index_ : ndarray of shape (n_shown,)
        The prototypes shown, one per row of ``axes_``.
    neighbors_ : ndarray of shape (n_shown, n_neighbors)
        Their most activating training rows, each prototype's own row left out.
    purity_ : ndarray of shape (n_shown,)

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import PrototypeGalleryDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> PrototypeGalleryDisplay.from_estimator(clf, X, y, n_neighbors=2).axes_.shape
    (3, 3)
    """

    def __init__(
        self,
        prototype_index: ArrayLike,
        prototype_label: ArrayLike,
        rows: ArrayLike,
        neighbors: ArrayLike,
        neighbor_labels: ArrayLike,
        purity: ArrayLike,
        cases: Sequence | np.ndarray | None = None,
        renderer: str | Callable | None = None,
        prototype_cases: Sequence | np.ndarray | None = None,
        classes: ArrayLike | None = None,
    ) -> None:
        self.prototype_index = np.asarray(prototype_index)
        self.prototype_label = np.asarray(prototype_label)
        self.rows = np.asarray(rows)
        self.neighbors = np.asarray(neighbors)
        self.neighbor_labels = np.asarray(neighbor_labels)
        self.purity = np.asarray(purity, dtype=float)
        self.cases = positional(cases)
        self.renderer = renderer
        self.prototype_cases = prototype_cases
        self.classes = classes

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: ArrayLike,
        y: ArrayLike,
        *,
        cases: Sequence | np.ndarray | None = None,
        classes: Sequence | None = None,
        max_classes: int = 5,
        n_neighbors: int = 3,
        renderer: str | Callable | None = None,
    ) -> PrototypeGalleryDisplay:
        """Gallery of the prototypes of ``classes`` (default: the first ``max_classes``).

        ``X, y``: the training data, aligned with ``cases`` (the raw
        training inputs; default: the estimator's ``prototype_cases_`` for the
        prototypes and row numbers for the neighbours). With a fitted Pipeline
        ending in a skproto estimator, ``X`` holds raw inputs: they go through
        the steps before it and are themselves the cases.

        Parameters
        ----------
        estimator : fitted skproto estimator, or a Pipeline ending in one
            The classifier whose prototypes are shown.
        X : array-like of shape (n_samples, n_features)
            The training data (a pipeline's raw inputs).
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Its labels (an indicator matrix for a multi-label model).
        cases : sequence, default=None
            Raw cases aligned with the rows of ``X``.
        classes : label or sequence of labels, default=None
            Classes whose prototypes are shown; None: the first ``max_classes``.
        max_classes : int, default=5
            Classes shown when ``classes`` is None.
        n_neighbors : int, default=3
            Neighbour cases shown next to each prototype.
        renderer : None, "text", "image" or callable, default=None
            How cases are shown (see :func:`skproto.explain.rendered`).

        Returns
        -------
        display : PrototypeGalleryDisplay
            The display, drawn.
        """
        from ..metrics import _neighbors_of, _present, _purity_of_neighbors
        from ._cases import _prototype_rows_of

        estimator, _, X, _, cases = unpipe(estimator, None, X, None, cases)
        fitted_classifier(estimator, "PrototypeGalleryDisplay")
        check_non_negative_int(n_neighbors, "n_neighbors")
        check_positive_int(max_classes, "max_classes")  # (0 drew nothing, -1 one class less)
        y = training_labels(estimator, X, y)
        check_training_rows(X, y, cases)
        labels = np.asarray(estimator.prototype_labels_)
        if classes is None:
            classes = estimator.classes_[:max_classes]
        elif np.ndim(classes) == 0:  # one label (a string was read as a sequence, and
            classes = [classes]  # failed with numpy's "iteration over a 0-d array")
        # (a Timestamp or a Python date, as explain's target takes it, compared with
        # datetime64[ns] classes as an integer: "not classes of the estimator")
        classes = time_labels(np.asarray(classes), estimator.classes_, name="classes")
        # (isin: tolist() made datetime64 labels dates, which equal no label)
        is_class = np.isin(classes, estimator.classes_)
        if not is_class.all():
            unknown = shown_labels(classes[~is_class])
            raise ValueError(f"classes {unknown!r} are not classes of the estimator.")
        # a class declared to partial_fit but without rows has no prototype to show
        shown = np.flatnonzero(np.isin(labels, np.asarray(classes)) & _present(estimator))
        # (the shown prototypes' neighbours only: ranking every row for every
        # prototype grew with the classes squared, 17.8 s at 10,000 classes)
        neighbors = _neighbors_of(estimator, X, max(10, n_neighbors + 1), shown)
        purity = _purity_of_neighbors(estimator, y, neighbors[:, :10], shown)
        rows = _prototype_rows_of(estimator, X, y, neighbors, shown)
        near = other_rows(neighbors, rows, n_neighbors)
        known = getattr(estimator, "prototype_cases_", None)
        display = cls(
            shown,
            labels[shown],
            rows,
            near,
            row_labels(y, near),
            purity,
            cases=cases,
            renderer=renderer,
            prototype_cases=None if known is None else known[shown],
            classes=estimator.classes_,
        )
        return display.plot()

    def _cell(self, ax, row: int, title: str, case=None) -> None:
        ax.set_xticks([])
        ax.set_yticks([])
        # wrapped as the case text is: a CLINC150 label ('what_are_your_hobbies')
        # made one line wider than the cell, over the next cell's title
        title = "\n".join(textwrap.wrap(title, 28)) or title
        ax.set_title(title, fontsize=8, parse_math=False)
        if case is None and (self.cases is None or row < 0):
            ax.text(0.5, 0.5, f"row {row}" if row >= 0 else "-", ha="center", va="center")
            return
        shown = rendered(self.cases[row] if case is None else case, self.renderer)
        if isinstance(shown, np.ndarray):
            # as the report shows it (min-max scaled, high = light), not stretched again
            ax.imshow(_to_uint8(shown), cmap="gray", vmin=0, vmax=255)
        else:
            text = "\n".join(textwrap.wrap(case_text(shown, max_chars=120), 28)[:5])
            # (wrapped above: matplotlib's wrap=True parses "$" as maths whatever parse_math)
            ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, parse_math=False)

    def plot(self, fig: Any = None) -> PrototypeGalleryDisplay:
        """Draw the gallery (on ``fig``, or a new figure).

        Parameters
        ----------
        fig : matplotlib Figure, default=None
            Figure to draw the grid of Axes on; None: a new one.

        Returns
        -------
        display : PrototypeGalleryDisplay
            The display itself, with ``figure_``, ``axes_``, ``prototype_index_``,
            ``neighbors_`` and ``purity_`` set.
        """
        plt = _pyplot()
        n, m = len(self.prototype_index), self.neighbors.shape[1]
        own_layout = fig is not None and fig.get_layout_engine() is not None
        if fig is None:
            fig = plt.figure(figsize=(2.2 * (1 + m), 1.9 * max(n, 1)))
        axes = fig.subplots(max(n, 1), 1 + m, squeeze=False)
        # the labels' names, apart from one another and from every class (a class not
        # shown may read as a shown one, shortened): the prototypes' first
        n_near = self.neighbor_labels.size
        everyone = [] if self.classes is None else list(self.classes)
        names = label_texts([*self.prototype_label, *self.neighbor_labels.ravel(), *everyone])
        # a label's own spaces do not break (the titles are wrapped: a break dropped
        # the spaces it fell on, and 'a  b' and 'a b' read the same)
        names = [name.replace(" ", "\u00a0") for name in names[: n + n_near]]
        names, neighbor_names = (
            names[:n],
            np.reshape(names[n:], self.neighbor_labels.shape),
        )
        for i in range(n):
            k, label = self.prototype_index[i], names[i]
            own = None
            if self.cases is None and self.prototype_cases is not None:
                own = self.prototype_cases[i]
            self._cell(axes[i, 0], self.rows[i], f"#{k} {label} purity {self.purity[i]:.2f}", own)
            for j in range(m):
                self._cell(
                    axes[i, 1 + j],
                    self.neighbors[i, j],
                    f"neighbour {j + 1}: {neighbor_names[i, j]}",
                )
        if not own_layout:  # a figure of the user's with a layout engine keeps it
            fig.tight_layout()
        self.figure_, self.axes_ = fig, axes
        self.prototype_index_, self.neighbors_, self.purity_ = (
            self.prototype_index,
            self.neighbors,
            self.purity,
        )
        return self


class EmbeddingDisplay:
    """Map of the input space: training points by class and the prototypes, in 2-D (PCA).

    Prototypes are placed at their input-space position: the training row
    they are, or the vector itself when it lives in the input space (class
    means, RBF components). Prototypes of a learned latent space that were
    never tied to a row cannot be placed and are left out. With a
    multi-label ``y`` a row is drawn once in the colour of each label it
    carries (a row without a label, not at all).

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
        The projected training points.
    point_labels : array-like of shape (n_points,)
        Class of each point.
    prototype_points : ndarray of shape (n_placed, 2)
        The projected prototypes.
    prototype_labels : array-like of shape (n_placed,)
        Class of each of those prototypes.
    projector : fitted transformer
        What mapped the inputs to 2-D.

    Attributes
    ----------
    figure_, ax_ : matplotlib Figure and Axes
    points_ : PathCollection
        The training points.
    prototypes_ : PathCollection
        The prototypes (stars).
    projector_ : fitted transformer
        What mapped the inputs to 2-D.
    class_names_ : list of matplotlib Annotation
        With more than 12 classes (too many for a legend of colours): each
        class's name, written just above its centre (the median of its points),
        in the order of the sorted classes; the legend then says so. Empty
        for 12 classes or fewer, which the legend names.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import EmbeddingDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> len(EmbeddingDisplay.from_estimator(clf, X, y).prototypes_.get_offsets())
    3
    """

    def __init__(
        self,
        points: np.ndarray,
        point_labels: np.ndarray,
        prototype_points: np.ndarray,
        prototype_labels: np.ndarray,
        projector: Any,
    ) -> None:
        self.points = points
        self.point_labels = np.asarray(point_labels)
        self.prototype_points = prototype_points
        self.prototype_labels = np.asarray(prototype_labels)
        self.projector = projector

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: ArrayLike,
        y: ArrayLike,
        *,
        method: str | Any = "pca",
        max_points: int = 5000,
        random_state: int | None = 0,
        ax: Any = None,
    ) -> EmbeddingDisplay:
        """Project ``X`` (the training data) and the prototypes to 2-D and plot them.

        Parameters
        ----------
        estimator : fitted skproto estimator, or a Pipeline ending in one
            The classifier whose prototypes are drawn.
        X : array-like of shape (n_samples, n_features)
            The training data (a pipeline's raw inputs).
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Its labels (an indicator matrix for a multi-label model).
        method : "pca" or transformer, default="pca"
            PCA, or any transformer with ``fit_transform`` and ``transform``
            to 2 dimensions.
        max_points : int, default=5000
            Rows drawn at most (a seeded subsample); the projection is fitted on them.
        random_state : int or None, default=0
            Seeds the subsample and the PCA.
        ax : matplotlib Axes, default=None
            Axes to draw on; None: a new figure.

        Returns
        -------
        display : EmbeddingDisplay
            The display, drawn.
        """
        estimator, X, _, _, _ = unpipe(estimator, X)
        fitted_classifier(estimator, "EmbeddingDisplay")
        X = estimator._validate_X_predict(X)
        # (as the gallery and purity read them: labels the model does not know, NaN,
        # numbers against string classes or an indicator of the wrong width were
        # drawn silently as classes of their own)
        y = training_labels(estimator, X, y)
        if method == "pca":
            from sklearn.decomposition import PCA

            projector = PCA(n_components=2, random_state=random_state)
        elif hasattr(method, "fit_transform") and hasattr(method, "transform"):
            projector = method
        else:
            raise ValueError(
                "method must be 'pca' or a transformer with fit_transform and transform "
                f"(the prototypes are mapped by transform; TSNE has none), got {method!r}."
            )
        check_positive_int(max_points, "max_points")  # (0, -1, 2.5, None failed inside)
        shown = np.arange(len(X))
        if len(X) > max_points:
            rng = np.random.RandomState(random_state)
            shown = np.sort(rng.choice(len(X), max_points, replace=False))
        points = np.asarray(projector.fit_transform(X[shown]))  # (pandas output too)
        where = estimator._prototype_inputs()
        rows = estimator._prototype_sample_indices()
        if where is None:
            where = np.full((len(rows), X.shape[1]), np.nan)
        where = np.array(where, dtype=float)
        tied = (rows >= 0) & (rows < len(X))
        where[tied] = X[rows[tied]]
        if estimator._prototypes_are_directions() and y.ndim == 1:
            # a unit vector lies near the origin, far from its class's rows: place
            # it at the mean norm of its class's rows (of all rows, for a class without)
            norms = np.linalg.norm(X, axis=1)
            labels_of = np.asarray(estimator.prototype_labels_)
            for k in np.flatnonzero(~tied):
                own = norms[y == labels_of[k]]
                where[k] *= (own if len(own) else norms).mean()
        placed = np.all(np.isfinite(where), axis=1)
        proto_points = (
            np.asarray(projector.transform(where[placed])) if placed.any() else np.empty((0, 2))
        )
        labels = np.asarray(estimator.prototype_labels_)[placed]
        if y.ndim == 1:
            y_shown = y[shown]
        else:  # multi-label: a row once per label it carries, none for a row without
            # one (argmax drew an unlabelled row as label 0, a row of {1, 2} as 1 only)
            rows, y_shown = np.nonzero(np.asarray(y[shown]) > 0)
            points = points[rows]
        display = cls(points, y_shown, proto_points, labels, projector)
        return display.plot(ax=ax)

    def plot(self, ax: Any = None) -> EmbeddingDisplay:
        """Draw the map on ``ax`` (a new figure if None).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None: a new figure.

        Returns
        -------
        display : EmbeddingDisplay
            The display itself, with ``figure_``, ``ax_``, ``points_``,
            ``prototypes_``, ``projector_`` and ``class_names_`` set.
        """
        plt = _pyplot()
        classes = np.unique(np.concatenate([self.point_labels, self.prototype_labels]))
        named_on_map = len(classes) > _MAX_LEGEND_CLASSES
        if ax is None:  # (room for the names of many classes)
            fig, ax = plt.subplots(figsize=(11, 9) if named_on_map else (7, 6))
        # colours by position among the sorted classes (``tolist`` turned dates of
        # nanoseconds into integers, which the legend then showed); beyond 20
        # classes, hues spread over a colour map (tab20 repeated its colours: two
        # classes looked like one)
        if len(classes) <= 20:
            cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
            palette = [cmap(i) for i in range(len(classes))]
        else:
            palette = list(plt.get_cmap("turbo")(np.linspace(0.0, 1.0, len(classes))))
        point_colors = [palette[i] for i in np.searchsorted(classes, self.point_labels)]
        self.points_ = ax.scatter(
            self.points[:, 0], self.points[:, 1], c=point_colors, s=8, alpha=0.5, linewidths=0
        )
        proto_colors = [palette[i] for i in np.searchsorted(classes, self.prototype_labels)]
        self.prototypes_ = ax.scatter(
            self.prototype_points[:, 0],
            self.prototype_points[:, 1],
            c=proto_colors,
            s=140,
            marker="*",
            edgecolors="black",
            linewidths=0.8,
            label="prototypes",
        )
        # a legend of colour swatches reads up to 12 classes; beyond, it named none
        # (and neighbouring hues of 150 could not be told apart): each class is
        # named on the map instead, just above its centre (its star stays visible)
        self.class_names_ = []
        if named_on_map:
            self.class_names_ = self._name_centres(ax, classes, palette)
            ax.scatter([], [], s=0, label=f"{len(classes)} classes, each named at its centre")
        else:
            for name, colour in zip(label_texts(classes), palette):
                ax.scatter([], [], color=colour, s=20, label=name)
        for text in ax.legend(loc="best", fontsize=8).get_texts():
            text.set_parse_math(False)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
        self.figure_, self.ax_ = ax.figure, ax
        self.projector_ = self.projector
        return self

    def _name_centres(self, ax, classes: np.ndarray, palette: list) -> list:
        """Write each of ``classes`` at its centre on ``ax``: the median of its drawn
        points (the median of its prototypes where it has none), in a small box edged
        in its colour. Returns the annotations, in the order of ``classes``.

        Only finite positions count, as only they are drawn: one point at NaN (a
        transformer's, or the constructor's) made the median NaN, and the name of
        a class whose other points were drawn was not shown."""
        names = []
        points, prototypes = (
            np.asarray(p, dtype=float) for p in (self.points, self.prototype_points)
        )
        drawn, drawn_prototypes = (np.isfinite(p).all(axis=1) for p in (points, prototypes))
        for label, text, colour in zip(classes, label_texts(classes), palette):
            own = points[(self.point_labels == label) & drawn]
            if not len(own):
                own = prototypes[(self.prototype_labels == label) & drawn_prototypes]
            # (a class with no finite position is drawn nowhere: its name neither)
            centre = np.median(own, axis=0) if len(own) else np.full(2, np.nan)
            names.append(
                ax.annotate(
                    text,
                    xy=centre,
                    xytext=(0, 5),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    parse_math=False,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": colour, "alpha": 0.7},
                )
            )
        return names
