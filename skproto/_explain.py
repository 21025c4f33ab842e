"""The one explanation result type shared by every skproto classifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Explanation"]

_MAX_SAMPLES_IN_TEXT = 10


def _label(value) -> str:
    """A class label for display: strings quoted, numbers plain."""
    value = value.item() if hasattr(value, "item") else value
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True, repr=False, eq=False)
class Explanation:
    """Per-sample account of a prototype classifier's class scores.

    Returned by the ``explain`` method of every skproto classifier. For each
    explained sample it lists the prototypes that are most *active* for it (the
    most similar, or the nearest), what each one contributes to every class
    score, and what all the other prototypes and the class bias add. The
    decomposition is exact::

        scores[i, c] == contribution[i, :, c].sum()
                        + other_contribution[i, c] + bias[c]

    and ``scores`` equals the estimator's per-class decision scores to float
    precision (for a binary problem ``decision_function`` returns
    ``scores[:, 1] - scores[:, 0]``).

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        Class labels, in the column order of ``scores``.
    predicted : ndarray of shape (n_samples,)
        Predicted class of each sample (the estimator's ``predict``).
    runner_up : ndarray of shape (n_samples,)
        Class with the highest score in ``scores`` other than the predicted
        one (the predicted class itself when
        the model knows a single class so far, e.g. after a first
        ``partial_fit`` chunk with one class).
    margin : ndarray of shape (n_samples,)
        Score of the predicted class minus the score of the runner-up
        (``inf`` with a single known class).
    prototype_index : ndarray of shape (n_samples, n_top)
        Indices (rows of ``prototypes_``) of the most active prototypes, most
        active first.
    prototype_label : ndarray of shape (n_samples, n_top)
        Class of each of those prototypes.
    prototype_sample_index : ndarray of shape (n_samples, n_top)
        Row of the training ``X`` that each prototype *is* (after projection), or
        -1 where the prototype is not a training sample (e.g. a class mean).
    value : ndarray of shape (n_samples, n_top)
        What ``transform`` reports for each of those prototypes; its meaning is
        given by ``value_name``.
    value_name : str
        Name of ``value``, e.g. ``"squared distance"`` or ``"similarity"``.
    contribution : ndarray of shape (n_samples, n_top, n_classes)
        Contribution of each listed prototype to each class score.
    other_contribution : ndarray of shape (n_samples, n_classes)
        Summed contribution of all prototypes not listed.
    bias : ndarray of shape (n_classes,)
        Per-class term that does not depend on any prototype (e.g. log prior).
    bias_name : str
        What the bias is.
    estimator_name : str
        Name of the estimator that produced the explanation.
    parts : dict of str to ndarray of shape (n_samples, n_top, n_classes), or None
        Where the estimator splits a prototype's contribution into named
        terms, those terms; they add up to ``contribution``. The CBC head of
        :class:`~skproto.RBFPrototypeClassifier` reports ``"presence"``
        (``r+ d``: the component argues for a class by being detected) and
        ``"absence"`` (``r- (1 - d)``: by not being detected).
    """

    classes: np.ndarray
    predicted: np.ndarray
    runner_up: np.ndarray
    margin: np.ndarray
    prototype_index: np.ndarray
    prototype_label: np.ndarray
    prototype_sample_index: np.ndarray
    value: np.ndarray
    value_name: str
    contribution: np.ndarray
    other_contribution: np.ndarray
    bias: np.ndarray
    bias_name: str
    estimator_name: str
    parts: dict | None = None

    @property
    def scores(self) -> np.ndarray:
        """Per-class scores rebuilt from the reported terms, shape (n_samples, n_classes)."""
        return self.contribution.sum(axis=1) + self.other_contribution + self.bias

    def __len__(self) -> int:
        return len(self.predicted)

    def _class_column(self, labels: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes, labels) if len(labels) else np.empty(0, int)

    def to_records(self) -> list[dict[str, Any]]:
        """Long-format table: one record per (sample, listed prototype).

        Columns: ``sample``, ``predicted``, ``runner_up``, ``margin``, ``rank``
        (1 = most active), ``prototype``, ``prototype_label``,
        ``training_index`` (-1 if the prototype is not a training sample),
        ``value`` (see ``value_name``), ``to_predicted`` and ``to_runner_up``
        (the prototype's contribution to those two class scores), and for
        each of ``parts``, ``<part>_to_predicted`` and ``<part>_to_runner_up``.
        """
        pred_col = self._class_column(self.predicted)
        run_col = self._class_column(self.runner_up)
        records = []
        for i in range(len(self)):
            for r in range(self.prototype_index.shape[1]):
                records.append(
                    {
                        "sample": i,
                        "predicted": self.predicted[i],
                        "runner_up": self.runner_up[i],
                        "margin": float(self.margin[i]),
                        "rank": r + 1,
                        "prototype": int(self.prototype_index[i, r]),
                        "prototype_label": self.prototype_label[i, r],
                        "training_index": int(self.prototype_sample_index[i, r]),
                        "value": float(self.value[i, r]),
                        "to_predicted": float(self.contribution[i, r, pred_col[i]]),
                        "to_runner_up": float(self.contribution[i, r, run_col[i]]),
                        **{
                            f"{name}_to_{which}": float(part[i, r, col[i]])
                            for name, part in (self.parts or {}).items()
                            for which, col in (("predicted", pred_col), ("runner_up", run_col))
                        },
                    }
                )
        return records

    def to_frame(self):
        """The table of :meth:`to_records` as a ``pandas.DataFrame``.

        Requires pandas (``pip install pandas``).
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on environment
            raise ImportError(
                "Explanation.to_frame requires pandas; install it with "
                "`pip install pandas`, or use Explanation.to_records()."
            ) from exc
        columns = [
            "sample",
            "predicted",
            "runner_up",
            "margin",
            "rank",
            "prototype",
            "prototype_label",
            "training_index",
            "value",
            "to_predicted",
            "to_runner_up",
        ] + [
            f"{name}_to_{which}"
            for name in (self.parts or {})
            for which in ("predicted", "runner_up")
        ]
        return pd.DataFrame.from_records(self.to_records(), columns=columns)

    def _sample_text(self, i: int) -> list[str]:
        scores = self.scores[i]
        p = int(self._class_column(self.predicted[i : i + 1])[0])
        q = int(self._class_column(self.runner_up[i : i + 1])[0])
        lines = [
            f"sample {i}: predicted {_label(self.predicted[i])} (score {scores[p]:.4g}), "
            f"runner-up {_label(self.runner_up[i])} (score {scores[q]:.4g}), "
            f"margin {self.margin[i]:.4g}"
        ]
        head = (
            f"  {'rank':>4}  {'prototype':>9}  {'class':>12}  {'train row':>9}  "
            f"{self.value_name:>16}  {'-> ' + _label(self.predicted[i]):>14}  "
            f"{'-> ' + _label(self.runner_up[i]):>14}"
        )
        lines.append(head)
        for r in range(self.prototype_index.shape[1]):
            row = self.prototype_sample_index[i, r]
            lines.append(
                f"  {r + 1:>4}  {self.prototype_index[i, r]:>9}  "
                f"{_label(self.prototype_label[i, r]):>12}  "
                f"{(str(row) if row >= 0 else '-'):>9}  {self.value[i, r]:>16.4g}  "
                f"{self.contribution[i, r, p]:>14.4g}  {self.contribution[i, r, q]:>14.4g}"
            )
            for name, part in (self.parts or {}).items():
                lines.append(
                    f"  {'':>4}  {'':>9}  {'':>12}  {'':>9}  {'of which ' + name:>16}  "
                    f"{part[i, r, p]:>14.4g}  {part[i, r, q]:>14.4g}"
                )
        pad = " " * 63
        lines.append(
            f"  {'other prototypes':<{len(pad) - 2}}"
            f"{self.other_contribution[i, p]:>14.4g}  {self.other_contribution[i, q]:>14.4g}"
        )
        lines.append(
            f"  {self.bias_name:<{len(pad) - 2}}{self.bias[p]:>14.4g}  {self.bias[q]:>14.4g}"
        )
        lines.append(f"  {'= class score':<{len(pad) - 2}}{scores[p]:>14.4g}  {scores[q]:>14.4g}")
        return lines

    def __str__(self) -> str:
        n = len(self)
        lines = [f"{self.estimator_name} explanation of {n} sample(s)"]
        for i in range(min(n, _MAX_SAMPLES_IN_TEXT)):
            lines.extend(self._sample_text(i))
        if n > _MAX_SAMPLES_IN_TEXT:
            lines.append(f"... {n - _MAX_SAMPLES_IN_TEXT} more sample(s); see to_frame()")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<Explanation of {len(self)} sample(s) by {self.estimator_name}: "
            f"{self.prototype_index.shape[1]} prototype(s) each, {len(self.classes)} classes>"
        )
