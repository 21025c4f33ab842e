"""One prediction's class score as a waterfall: the steps that the plots and the report draw."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from ._cases import positional, prototype_rows
from ._explanation import Explanation, _no_rival_reason, _slot


@dataclass(frozen=True)
class Step:
    """One bar of a waterfall: a term of the class score.

    ``kind`` is ``"bias"``, ``"prototype"`` (with ``part`` naming a term of
    ``Explanation.parts`` when the contribution is split) or ``"other"``
    (all prototypes not listed, summed). ``value`` is the term;
    ``prototype_value`` is what ``transform`` gives for the prototype (the
    explanation's ``value``, named by its ``value_name``: a similarity, a
    squared distance...).

    Parameters
    ----------
    kind : {"bias", "prototype", "other"}
        What the term is.
    value : float
        The term: its share of the class score.
    label : str
        Text of the bar.
    prototype : int, default=-1
        The prototype (row of ``prototypes_``); -1 for the bias and other terms.
    prototype_label : object, default=None
        Class of the prototype.
    row : int, default=-1
        Training row whose case is shown for the prototype (-1: none).
    case : object, default=None
        That case (a text, an image, any object), if known.
    part : str or None, default=None
        Name of the term of ``Explanation.parts`` this step is, if split.
    prototype_value : float, default=nan
        What ``transform`` gives for the prototype.
    tokens : tuple of (int, int) or None, default=None
        For token prototypes (``n_tokens``): the query's token slot that
        matched the prototype, and the prototype's own slot in its training row.

    Examples
    --------
    See :func:`waterfall`, whose ``Waterfall.steps`` they are.
    """

    kind: str
    value: float
    label: str
    prototype: int = -1
    prototype_label: Any = None
    row: int = -1
    case: Any = None
    part: str | None = None
    prototype_value: float = float("nan")
    tokens: tuple[int, int] | None = None


@dataclass(frozen=True)
class Waterfall:
    """The steps of one class score; ``sum(step.value) == score`` to float precision.

    Parameters
    ----------
    sample : int
        Row of the explanation.
    label : object
        The class whose score this is.
    score : float
        The class score.
    steps : list of Step
        The bias, the listed prototypes' terms, then the other prototypes' sum.
    role : str, default=""
        What the class is to the model: ``"predicted"``, ``"runner-up"``, or
        ``"explained, not predicted"`` (a ``target`` given to ``explain``);
        for a multi-label model ``"predicted"`` or ``"not predicted"``, then
        ``"(highest score)"``, ``"(next score)"`` or ``"(target)"``. The plots
        and the report put it in the panel's title.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import waterfall
    >>> X, y = load_iris(return_X_y=True)
    >>> w = waterfall(NearestMeanClassifier().fit(X, y).explain(X[:1], 1), 0)
    >>> int(w.label), len(w.steps)
    (0, 3)
    """

    sample: int
    label: Any
    score: float
    steps: list[Step]
    role: str = ""


def sample_position(sample) -> int:
    """``sample`` as a row position: an integer (Python's indexing), not a bool
    (True read as a boolean mask, failing inside numpy, or drew row 1)."""
    if isinstance(sample, (bool, np.bool_)):
        raise TypeError(f"sample must be an integer row position, got {sample!r}.")
    return operator.index(sample)


def waterfall(explanation: Explanation, sample: int, *, column: str = "explained") -> Waterfall:
    """The score of ``explanation.<column>[sample]`` (``"explained"`` or ``"runner_up"``).

    Steps: the bias, every listed prototype's contribution (split into its
    ``parts`` when the explanation has them), then the summed contribution
    of the prototypes not listed.

    Parameters
    ----------
    explanation : Explanation
        An estimator's explanation.
    sample : int
        Row of the explanation (Python's indexing: -1 is the last row).
    column : {"explained", "runner_up"}, default="explained"
        Which class's score to decompose.

    Returns
    -------
    Waterfall
        Its steps add up to the class's score.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import waterfall
    >>> X, y = load_iris(return_X_y=True)
    >>> ex = NearestMeanClassifier().fit(X, y).explain(X[:1], n_prototypes=2)
    >>> w = waterfall(ex, 0)
    >>> [step.kind for step in w.steps]
    ['bias', 'prototype', 'prototype', 'other']
    >>> bool(np.isclose(sum(step.value for step in w.steps), w.score))
    True
    """
    if column not in ("explained", "runner_up"):
        # (any other attribute was read as labels: an AttributeError or an
        # IndexError, or, for "predicted", a multi-label indicator row as a label)
        raise ValueError(f"column must be 'explained' or 'runner_up', got {column!r}.")
    n = len(explanation)
    if not -n <= sample_position(sample) < n:
        raise IndexError(f"sample {sample} is out of range for an explanation of {n} rows.")
    label = getattr(explanation, column)[sample]
    c = int(np.searchsorted(explanation.classes, label))
    names = explanation._class_names()  # (apart from one another)
    steps = [Step("bias", float(explanation.bias[c]), explanation.bias_name)]
    n_top = explanation.prototype_index.shape[1]
    for r in range(n_top):
        k = int(explanation.prototype_index[sample, r])
        common = dict(
            prototype=k,
            prototype_label=explanation.prototype_label[sample, r],
            row=int(
                explanation.case_rows[sample, r]
                if explanation.case_rows is not None
                else explanation.prototype_sample_index[sample, r]
            ),
            case=None if explanation.cases is None else explanation.cases[sample, r],
            prototype_value=float(explanation.value[sample, r]),
        )
        name = f"#{k} {names[int(np.searchsorted(explanation.classes, common['prototype_label']))]}"
        if explanation.query_token is not None:  # which words matched (token prototypes)
            common["tokens"] = (
                int(explanation.query_token[sample, r]),
                int(explanation.prototype_token[sample, r]),
            )
            name += " (token {} ~ {})".format(*map(_slot, common["tokens"]))
        if explanation.parts:
            for part, values in explanation.parts.items():
                steps.append(
                    Step(
                        "prototype",
                        float(values[sample, r, c]),
                        f"{name} {part}",
                        part=part,
                        **common,
                    )
                )
        else:
            steps.append(
                Step("prototype", float(explanation.contribution[sample, r, c]), name, **common)
            )
    total = explanation.n_prototypes
    other = "other prototypes" if total is None else f"{total - n_top} other prototypes"
    steps.append(Step("other", float(explanation.other_contribution[sample, c]), other))
    score = (
        explanation.contribution[sample, :, c].sum()
        + explanation.other_contribution[sample, c]
        + explanation.bias[c]
    )  # row ``sample`` of ``explanation.scores``, without building all of them
    return Waterfall(sample, label, float(score), steps, _role(explanation, sample, column, c))


def drawn_range(ends: ArrayLike) -> tuple[float, float]:
    """``(lo, hi)`` a waterfall's bars are drawn in: its finite bar ends and 0, with
    room (a quarter of their span, or 1) beyond them on the side of an infinite end.

    A class with no rows yet (declared to ``partial_fit``) scores -inf: the plot
    and the report draw its bars to that edge (an infinite scale made every
    coordinate NaN).
    """
    ends = np.asarray(ends, dtype=float)
    finite = np.append(ends[np.isfinite(ends)], 0.0)
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.25 * (hi - lo) or 1.0
    return lo - pad * bool((ends == -np.inf).any()), hi + pad * bool((ends == np.inf).any())


def _role(explanation: Explanation, sample: int, column: str, c: int) -> str:
    """``Waterfall.role`` of class ``c`` (the ``column`` of row ``sample``).

    Single-label: "predicted", "runner-up", or "explained, not predicted" (a
    ``target``). Multi-label, where any number of labels is predicted (none
    too): "predicted" or "not predicted", then which score it is: "(highest
    score)" or "(next score)" as the report says, or "(target)".
    """
    predicted = explanation.predicted[sample]
    if not np.ndim(predicted):
        if predicted == explanation.classes[c]:
            return "predicted"
        return "runner-up" if column == "runner_up" else "explained, not predicted"
    on = "predicted" if np.asarray(predicted)[c] > 0 else "not predicted"
    if column == "runner_up":
        return f"{on} (next score)"
    scores = explanation.contribution[sample].sum(0) + explanation.other_contribution[sample]
    scores = scores + explanation.bias
    return f"{on} (highest score)" if scores[c] >= scores.max() else f"{on} (target)"


#: What the plot and the report say where a sample has no runner-up.
NO_RIVAL = "no runner-up: every other class scores -inf"


def has_rival(explanation: Explanation, sample: int) -> bool:
    """Whether row ``sample`` has a runner-up other than its explained class.

    ``explain`` names the explained class itself the runner-up (margin inf)
    where every other class scores -inf (declared to ``partial_fit`` without
    rows yet): the plot and the report then draw its panel once, not a second
    time as the runner-up's.
    """
    if len(explanation.classes) < 2:
        return False
    return bool(explanation.runner_up[sample] != explanation.explained[sample])


def no_rival(explanation: Explanation, sample: int) -> str:
    """What the plot and the report say where row ``sample`` has no runner-up
    (:data:`NO_RIVAL` where every other class scores -inf; RBFPrototypeClassifier
    scores a class declared without rows finitely, yet names it no runner-up)."""
    p = int(explanation._class_column(explanation.explained[sample : sample + 1])[0])
    return f"no runner-up: {_no_rival_reason(explanation.scores[sample], p)}"


def runner_up_waterfall(explanation: Explanation, sample: int) -> Waterfall:
    """:func:`waterfall` of an explanation made with ``target`` = the runner-up
    (:func:`explain_with_runner_up`'s second), with the runner-up's role."""
    w = waterfall(explanation, sample)
    c = int(np.searchsorted(explanation.classes, w.label))
    return replace(w, role=_role(explanation, sample, "runner_up", c))


def fitted_classifier(estimator: Any, caller: str) -> Any:
    """``estimator`` (a Pipeline's last step, split off by :func:`unpipe`) if it
    is a fitted skproto classifier; else a ValueError naming ``caller`` (given
    a LogisticRegression the explain helpers failed deep inside, with an
    AttributeError for ``explain`` or ``prototype_labels_``)."""
    from .._base import BasePrototypeClassifier

    if not isinstance(estimator, BasePrototypeClassifier):
        raise ValueError(
            f"{caller} explains a skproto classifier (or a Pipeline that ends in one), "
            f"got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    return estimator


def explain_with_runner_up(
    estimator: Any,
    X: ArrayLike,
    *,
    n_prototypes: int = 5,
    cases: Sequence | np.ndarray | None = None,
    X_train: ArrayLike | None = None,
    y_train: ArrayLike | None = None,
) -> tuple[Explanation, Explanation]:
    """``explain`` of the predicted class and of the runner-up, with cases attached.

    ``cases`` (aligned with the training rows) override the estimator's own
    ``prototype_cases_``, which ``explain`` attaches by itself.

    Parameters
    ----------
    estimator : fitted skproto estimator, or a Pipeline ending in one
        The classifier to explain.
    X : array-like of shape (n_samples, n_features)
        Samples (a Pipeline's raw inputs).
    n_prototypes : int, default=5
        Prototypes listed per sample.
    cases : sequence, default=None
        Raw cases aligned with the training rows ``X_train``.
    X_train, y_train : array-like, default=None
        The training data (a Pipeline's raw inputs), for the representatives
        of prototypes that are no rows (:func:`prototype_rows`).

    Returns
    -------
    (Explanation, Explanation)
        Of the predicted class, and of each sample's runner-up.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import explain_with_runner_up
    >>> X, y = load_iris(return_X_y=True)
    >>> first, second = explain_with_runner_up(NearestMeanClassifier().fit(X, y), X[[0, 60]])
    >>> first.explained.tolist(), second.explained.tolist()
    ([0, 1], [1, 0])
    """
    estimator, X, X_train = unpipe(estimator, X, X_train)[:3]
    fitted_classifier(estimator, "explain_with_runner_up")
    first = estimator.explain(X, n_prototypes)
    second = estimator.explain(X, n_prototypes, target=first.runner_up)
    if cases is not None:
        rows = prototype_rows(estimator, X_train, y_train)
        first, second = first.with_cases(cases, rows), second.with_cases(cases, rows)
    return first, second


def unpipe(
    estimator: Any,
    X: Any,
    X_train: Any = None,
    query_cases: Sequence | np.ndarray | None = None,
    cases: Sequence | np.ndarray | None = None,
) -> tuple:
    """Split a fitted Pipeline into its feature steps and its final classifier.

    Parameters
    ----------
    estimator : fitted skproto estimator, or a Pipeline ending in one
        The model to split.
    X : array-like or None
        Raw inputs (a pipeline's) or features, or None.
    X_train : array-like, default=None
        The same for the training data.
    query_cases : sequence, default=None
        Raw cases of the rows of ``X``.
    cases : sequence, default=None
        Raw cases of the rows of ``X_train``.

    Returns
    -------
    (classifier, X, X_train, query_cases, cases)
        For a pipeline, ``X`` and ``X_train`` transformed by the steps before
        the classifier, and the raw ``X`` / ``X_train`` as the default
        ``query_cases`` / ``cases``; anything else unchanged (pandas cases
        read by position).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import unpipe
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NearestMeanClassifier()).fit(X, y)
    >>> clf, Z, _, raw, _ = unpipe(pipe, X[:2])
    >>> type(clf).__name__, bool((raw == X[:2]).all()), bool((Z == pipe[0].transform(X[:2])).all())
    ('NearestMeanClassifier', True, True)
    """
    if not hasattr(estimator, "steps"):
        return estimator, X, X_train, positional(query_cases), positional(cases)
    if len(estimator.steps) < 2:  # (a one-step Pipeline was returned as it is, and refused)
        return estimator[-1], X, X_train, positional(query_cases), positional(cases)
    features, classifier = estimator[:-1], estimator[-1]
    if X is not None:
        query_cases = X if query_cases is None else query_cases
        X = features.transform(X)
    if X_train is not None:
        cases = X_train if cases is None else cases
        X_train = features.transform(X_train)
    return classifier, X, X_train, positional(query_cases), positional(cases)
