"""One prediction's class score as a waterfall: the steps that the plots and the report draw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._cases import positional, prototype_rows
from ._explanation import Explanation, _label


@dataclass(frozen=True)
class Step:
    """One bar of a waterfall: a term of the class score.

    ``kind`` is ``"bias"``, ``"prototype"`` (with ``part`` naming a term of
    ``Explanation.parts`` when the contribution is split) or ``"other"``
    (all prototypes not listed, summed). ``value`` is the term;
    ``prototype_value`` is what ``transform`` gives for the prototype (the
    explanation's ``value``, named by its ``value_name``: a similarity, a
    squared distance...).
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


@dataclass(frozen=True)
class Waterfall:
    """The steps of one class score; ``sum(step.value) == score`` to float precision."""

    sample: int
    label: Any
    score: float
    steps: list[Step]


def waterfall(explanation: Explanation, sample: int, *, column: str = "explained") -> Waterfall:
    """The score of ``explanation.<column>[sample]`` (``"explained"`` or ``"runner_up"``).

    Steps: the bias, every listed prototype's contribution (split into its
    ``parts`` when the explanation has them), then the summed contribution
    of the prototypes not listed.
    """
    label = getattr(explanation, column)[sample]
    c = int(np.searchsorted(explanation.classes, label))
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
        name = f"#{k} {_label(common['prototype_label'])}"
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
    return Waterfall(sample, label, float(score), steps)


def explain_with_runner_up(
    estimator,
    X: ArrayLike,
    *,
    n_prototypes: int = 5,
    cases: Sequence | None = None,
    X_train: ArrayLike | None = None,
    y_train: ArrayLike | None = None,
) -> tuple[Explanation, Explanation]:
    """``explain`` of the predicted class and of the runner-up, with cases attached.

    ``cases`` (aligned with the training rows) override the estimator's own
    ``prototype_cases_``, which ``explain`` attaches by itself.
    """
    first = estimator.explain(X, n_prototypes)
    second = estimator.explain(X, n_prototypes, target=first.runner_up)
    if cases is not None:
        rows = prototype_rows(estimator, X_train, y_train)
        first, second = first.with_cases(cases, rows), second.with_cases(cases, rows)
    return first, second


def unpipe(estimator, X, X_train=None, query_cases=None, cases=None):
    """Split a fitted Pipeline into its feature steps and its final classifier.

    Returns ``(classifier, X, X_train, query_cases, cases)``: for a pipeline,
    ``X`` and ``X_train`` transformed by the steps before the classifier,
    and the raw ``X`` / ``X_train`` as the default ``query_cases`` / ``cases``;
    anything else is returned unchanged.
    """
    if not hasattr(estimator, "steps") or len(estimator.steps) < 2:
        return estimator, X, X_train, positional(query_cases), positional(cases)
    features, classifier = estimator[:-1], estimator[-1]
    if X is not None:
        query_cases = X if query_cases is None else query_cases
        X = features.transform(X)
    if X_train is not None:
        cases = X_train if cases is None else cases
        X_train = features.transform(X_train)
    return classifier, X, X_train, positional(query_cases), positional(cases)
