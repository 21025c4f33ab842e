"""The one explanation result type shared by every skproto classifier."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._cases import case_text, positional

__all__ = ["Explanation"]

_MAX_SAMPLES_IN_TEXT = 10
_MAX_LABEL_CHARS = 24


def plain(value) -> str:
    """``str`` of a label; a date to its last non-zero unit (``2020-01-01``, not
    ``2020-01-01T00:00:00.000000000``; ``.item()`` made a nanosecond one a bare
    integer, and a float32 0.1 ``0.10000000149011612``), a duration in its
    coarsest exact unit (``1 days``: pandas' one day read ``86400000000000
    nanoseconds``; weeks, months and years as they are, and picoseconds and finer:
    numpy cannot cast them to days, "Integer overflow while computing the
    conversion factor", which str(), the plots and the report raised)."""
    if isinstance(value, np.datetime64):
        return np.datetime_as_string(value, unit="auto")
    if (
        isinstance(value, np.timedelta64)
        and not np.isnat(value)
        and np.datetime_data(value.dtype)[0] in ("D", "h", "m", "s", "ms", "us", "ns")
    ):
        for unit in ("D", "h", "m", "s", "ms", "us"):
            coarse = value.astype(f"timedelta64[{unit}]")
            if coarse == value:
                return str(coarse)
    return str(value)


def _label(value, limit: int | None = _MAX_LABEL_CHARS) -> str:
    """A class label for display: strings quoted, numbers plain; beyond ``limit``
    characters shortened in the middle, so that labels differing only at their end
    ("..._billing" and "..._billing2") stay apart (cut at the end, they read the same)."""
    text = repr(str(value)) if isinstance(value, str) else plain(value)
    if limit is not None and len(text) > limit:
        head = (limit - 1) // 2
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head) :]
    return text


def label_texts(values, limit: int | None = _MAX_LABEL_CHARS) -> list[str]:
    """:func:`_label` of each of ``values``, shortened no further than keeps distinct
    labels apart: labels that differ only in their middle
    ("level_1_escalation_required" and "level_2_escalation_required") read the
    same cut to ``limit`` characters, and a reader could not tell the
    prediction from the runner-up. Those get longer (twice as long at a time,
    up to their full text); a label given twice reads the same both times."""
    values = list(values)
    limits = [limit] * len(values)
    texts = [_label(v, limit) for v in values]
    full: dict[int, str] = {}  # (only of labels whose text another one shares)

    def whole(i: int) -> str:
        if i not in full:
            full[i] = _label(values[i], None)
        return full[i]

    while True:
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            groups.setdefault(text, []).append(i)
        clash = [
            i
            for group in groups.values()
            if len(group) > 1 and len({whole(i) for i in group}) > 1
            for i in group
            if limits[i] is not None
        ]
        if not clash:
            return texts
        for i in clash:
            limits[i] = None if 2 * limits[i] >= len(whole(i)) else 2 * limits[i]
            texts[i] = _label(values[i], limits[i])


#: Characters that set the direction of the text after them: right-to-left
#: letters, Arabic digits and the explicit embeddings, overrides and isolates
_BIDI = frozenset({"R", "AL", "AN", "RLE", "RLO", "LRE", "LRO", "PDF", "RLI", "LRI", "FSI", "PDI"})


#: The explicit bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _bidi_escaped(text: str) -> str:
    """``text`` with its bidi controls shown escaped (``\\u202e``): in the text
    view a RIGHT-TO-LEFT OVERRIDE in a case reversed the numbers after it, and a
    POP DIRECTIONAL ISOLATE in it would close the isolate around it."""
    if not any(ch in _BIDI_CONTROLS for ch in text):
        return text
    return "".join(f"\\u{ord(ch):04x}" if ch in _BIDI_CONTROLS else ch for ch in text)


def _isolated(text: str) -> str:
    """``text`` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE where it holds
    right-to-left text: a bidi-aware view of ``str(explanation)`` (a notebook's
    output, a browser's ``<pre>``) then keeps it from reordering the numbers
    beside it (an Arabic case swapped the similarity and contribution columns;
    Arabic class labels showed -1.593 as 1.593-)."""
    if any(unicodedata.bidirectional(ch) in _BIDI for ch in text):
        return f"\u2068{text}\u2069"
    return text


def _width(text: str) -> int:
    """Columns ``text`` takes on a screen: wide (CJK) characters two, combining
    marks and format characters (the isolates of :func:`_isolated`) none."""
    return sum(
        0
        if unicodedata.category(ch) in ("Mn", "Me", "Cf")
        else 2
        if unicodedata.east_asian_width(ch) in "WF"
        else 1
        for ch in text
    )


def _pad(text: str, width: int, align: str) -> str:
    """``text`` padded with spaces to ``width`` screen columns, on the right ("l") or left."""
    fill = " " * max(0, width - _width(text))
    return text + fill if align == "l" else fill + text


def _slot(t) -> str:
    """A token slot as shown: its index, or "-" for none (-1: a query without a real
    token, or a prototype projected onto no token; "-1" read as Python's last token)."""
    return str(int(t)) if t >= 0 else "-"


def _num(x: float) -> str:
    return f"{x:.4g}"


def _no_rival_reason(scores: np.ndarray, explained: int) -> str:
    """Why a sample's explained class has no runner-up: the other classes' scores
    are all -inf, or (RBFPrototypeClassifier's heads, whose scores do not say so)
    none of them can be predicted, though they score finitely (a class declared
    to ``partial_fit`` whose rows have not arrived)."""
    if len(scores) < 2:
        return "one class"
    if (np.delete(np.asarray(scores, dtype=float), explained) > -np.inf).any():
        return "no other class can be predicted"
    return "every other class scores -inf"


def _table(
    header: list[str], rows: list[list[str]], totals: list[list[str]], align: str
) -> list[str]:
    """Aligned text lines: a header, prototype rows, then total rows.

    ``align`` has an "l" or "r" per column. A total row is ``[name, *numbers]``
    (every total row with as many numbers): its name spans every column but the
    numbers' last ones.
    """
    n = len(header)  # (widths on the screen: CJK text takes two columns a character)
    k = len(totals[0]) - 1 if totals else 0
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(n)]
    for name, *numbers in totals:
        for j, cell in enumerate(numbers, start=n - k):
            widths[j] = max(widths[j], _width(cell))
        span = sum(widths[: n - k]) + 2 * (n - k - 1)
        widths[n - k - 1] += max(0, _width(name) - span)

    def line(cells):
        return "  " + "  ".join(_pad(c, w, a) for c, w, a in zip(cells, widths, align))

    span = sum(widths[: n - k]) + 2 * (n - k - 1)
    out = [line(header)] + [line(r) for r in rows]
    for name, *numbers in totals:
        cells = [_pad(c, w, "r") for c, w in zip(numbers, widths[n - k :])]
        out.append("  " + "  ".join([_pad(name, span, "l"), *cells]))
    return out


@dataclass(frozen=True, repr=False, eq=False)
class Explanation:
    """Per-sample account of a prototype classifier's class scores.

    Returned by the ``explain`` method of every skproto classifier. For each
    explained sample it lists the prototypes that contribute most to the
    score of the *explained* class (the prediction), what each of them
    contributes to every class score, and what all the other prototypes and
    the class bias add. The decomposition is exact::

        scores[i, c] == contribution[i, :, c].sum()
                        + other_contribution[i, c] + bias[c]

    and ``scores`` equals the estimator's per-class decision scores to float
    precision (for a binary single-label problem ``decision_function``
    returns ``scores[:, 1] - scores[:, 0]``).

    Built by ``explain``; every parameter is also an attribute of the same name.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        Class labels, in the column order of ``scores``.
    predicted : ndarray of shape (n_samples,) or (n_samples, n_classes)
        The estimator's ``predict`` for each sample: a label, or for a
        multi-label model a row of the 0/1 indicator matrix.
    explained : ndarray of shape (n_samples,)
        The class whose score is explained: the predicted class, or for a
        multi-label model the label with the highest score (or the
        ``target`` given to ``explain``).
    runner_up : ndarray of shape (n_samples,)
        Class with the highest score other than ``explained`` (``explained``
        itself when the model knows a single class so far, e.g. after a
        first ``partial_fit`` chunk with one class, or where every other
        class is declared without rows yet).
    margin : ndarray of shape (n_samples,)
        Score of ``explained`` minus the score of ``runner_up`` (``inf`` with
        a single known class, or no other class the model can predict).
    ranked_by : {"contribution", "activation"}
        How the listed prototypes were chosen and ordered: by the magnitude
        of their contribution to the explained class's score (ties by
        activation), or by activation (the most similar, or nearest, first).
    prototype_index : ndarray of shape (n_samples, n_top)
        Indices (rows of ``prototypes_``) of the listed prototypes, in rank
        order.
    prototype_label : ndarray of shape (n_samples, n_top)
        Class of each of those prototypes (a label of ``classes``).
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
    cases : ndarray of shape (n_samples, n_top) of object, or None
        What each listed prototype *is* for a person (a training text, an
        image, any object), set by :meth:`with_cases`; None where unknown.
    case_rows : ndarray of shape (n_samples, n_top), or None
        The training row whose case is shown for each listed prototype: the
        prototype's own row, or for a prototype that is not a training row
        (a class mean) its representative row (-1: none). Set by
        :meth:`with_cases`.
    n_prototypes : int or None
        How many prototypes the model has (listed or not).
    query_token, prototype_token : ndarray of shape (n_samples, n_top), or None
        For a model of token prototypes (``ProtoClassifier(n_tokens=...)``):
        the token slot of the query that matched each listed prototype, and
        the token slot of its training row that the prototype is; None
        otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> ex = clf.explain(X[[0, 60]], n_prototypes=2)
    >>> ex.explained.tolist(), ex.prototype_index.tolist()
    ([0, 1], [[0, 1], [1, 0]])
    >>> bool(np.allclose(ex.scores, clf.decision_function(X[[0, 60]])))  # exact
    True
    """

    classes: np.ndarray
    predicted: np.ndarray
    explained: np.ndarray
    runner_up: np.ndarray
    margin: np.ndarray
    ranked_by: str
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
    cases: np.ndarray | None = None
    case_rows: np.ndarray | None = None
    n_prototypes: int | None = None
    query_token: np.ndarray | None = None
    prototype_token: np.ndarray | None = None

    @property
    def scores(self) -> np.ndarray:
        """Per-class scores rebuilt from the reported terms, shape (n_samples, n_classes)."""
        return self.contribution.sum(axis=1) + self.other_contribution + self.bias

    def __len__(self) -> int:
        return len(self.explained)

    def with_prototype_cases(
        self, prototype_cases: Sequence | np.ndarray, prototype_rows: ArrayLike | None = None
    ) -> Explanation:
        """This explanation with cases given per prototype (``prototype_cases[k]``: prototype k's).

        What ``explain`` does by itself when the estimator knows its
        prototypes' cases (``prototype_cases_``, see
        :func:`skproto.explain.attach_cases`).

        Parameters
        ----------
        prototype_cases : sequence of shape (n_prototypes,)
            The case of each prototype (row of ``prototypes_``): a text, an
            image, any object, or None.
        prototype_rows : array-like of shape (n_prototypes,), default=None
            The training row of each prototype's case (-1: none), for
            ``case_rows``. Default: the prototypes' own rows.

        Returns
        -------
        explanation : Explanation
            A copy with ``cases`` and ``case_rows`` set.
        """
        # one object per prototype, filled one by one (np.asarray made images of
        # one shape, or tuples of one length, into an n-d array of their entries)
        given = positional(prototype_cases)
        self._check_per_prototype(len(given), "prototype_cases")
        per_prototype = np.empty(len(given), dtype=object)
        for k in range(len(given)):
            per_prototype[k] = given[k]
        out = per_prototype[self.prototype_index]
        return replace(self, cases=out, case_rows=self._listed_rows(prototype_rows))

    def _check_per_prototype(self, n: int, name: str) -> None:
        """A value per prototype must cover every listed prototype (else a bare IndexError)."""
        top = int(self.prototype_index.max(initial=-1))
        if top >= n:
            raise ValueError(
                f"{name} has {n} entries, but this explanation lists prototype {top}: "
                "give one entry per prototype (row of prototypes_)."
            )

    def _listed_rows(self, prototype_rows) -> np.ndarray:
        """The training row of every listed prototype: its own, or ``prototype_rows``'."""
        if prototype_rows is None:
            return np.asarray(self.prototype_sample_index, dtype=np.intp)
        given = np.asarray(prototype_rows)
        if given.ndim != 1 or (given.size and given.dtype.kind not in "iu"):
            # (a 2-D one made a broken copy, fractions were truncated)
            raise ValueError(
                "prototype_rows must be one training row (an integer, -1: none) per "
                f"prototype, a 1-D array; got shape {given.shape} of {given.dtype}."
            )
        prototype_rows = given.astype(np.intp)
        self._check_per_prototype(len(prototype_rows), "prototype_rows")
        return prototype_rows[self.prototype_index]

    def with_cases(
        self, cases: Sequence | np.ndarray, prototype_rows: ArrayLike | None = None
    ) -> Explanation:
        """This explanation with the case of every listed prototype attached.

        Parameters
        ----------
        cases : sequence of shape (n_training_samples,)
            The raw training inputs, aligned with the rows of the ``X`` the
            estimator was fitted on: texts, images (arrays), or any objects.
        prototype_rows : array-like of shape (n_prototypes,), default=None
            The training row to show for each prototype (-1: none). Default:
            the row each prototype *is* (``prototype_sample_index``); see
            :func:`~skproto.explain.prototype_rows` for representative rows of
            prototypes that are not training rows.

        Returns
        -------
        explanation : Explanation
            A copy with ``cases`` and ``case_rows`` set; ``str`` of it prints
            each case next to the numbers.
        """
        rows = self._listed_rows(prototype_rows)
        cases = positional(cases)
        n_cases = len(cases)
        if rows.size and rows.max(initial=-1) >= n_cases:
            raise ValueError(
                f"cases has {n_cases} entries but a prototype is training row "
                f"{int(rows.max())}: pass the cases of every training row, in order."
            )
        out = np.empty(rows.shape, dtype=object)
        for index in np.ndindex(rows.shape):
            out[index] = cases[rows[index]] if rows[index] >= 0 else None
        return replace(self, cases=out, case_rows=rows)

    def _class_column(self, labels: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes, labels) if len(labels) else np.empty(0, int)

    def to_records(self) -> list[dict[str, Any]]:
        """Long-format table: one record per (sample, listed prototype).

        Columns: ``sample``, ``predicted`` (the model's prediction: a label,
        or for a multi-label model the tuple of its predicted labels),
        ``explained`` (the class explained: the prediction, or the ``target``
        given to ``explain``), ``runner_up``, ``margin``, ``rank`` (1 = listed
        first), ``prototype``, ``prototype_label``, ``training_index`` (-1 if
        the prototype is not a training sample), ``value`` (see
        ``value_name``), ``to_explained`` and ``to_runner_up`` (the
        prototype's contribution to those two class scores), for each of
        ``parts``, ``<part>_to_explained`` and ``<part>_to_runner_up``, for
        token prototypes ``query_token`` and
        ``prototype_token`` (the matched slots), and after :meth:`with_cases`,
        ``case_row`` and ``case``.

        Returns
        -------
        list of dict
            One record per (sample, listed prototype), samples first.
        """
        pred_col = self._class_column(self.explained)
        run_col = self._class_column(self.runner_up)
        records = []
        for i in range(len(self)):
            predicted = self.predicted[i]
            if np.ndim(predicted):  # (a multi-label indicator row: the labels it holds)
                predicted = tuple(self.classes[np.asarray(predicted) > 0])
            for r in range(self.prototype_index.shape[1]):
                records.append(
                    {
                        "sample": i,
                        "predicted": predicted,
                        "explained": self.explained[i],
                        "runner_up": self.runner_up[i],
                        "margin": float(self.margin[i]),
                        "rank": r + 1,
                        "prototype": int(self.prototype_index[i, r]),
                        "prototype_label": self.prototype_label[i, r],
                        "training_index": int(self.prototype_sample_index[i, r]),
                        "value": float(self.value[i, r]),
                        "to_explained": float(self.contribution[i, r, pred_col[i]]),
                        "to_runner_up": float(self.contribution[i, r, run_col[i]]),
                        **{
                            f"{name}_to_{which}": float(part[i, r, col[i]])
                            for name, part in (self.parts or {}).items()
                            for which, col in (("explained", pred_col), ("runner_up", run_col))
                        },
                        **(
                            {
                                "query_token": int(self.query_token[i, r]),
                                "prototype_token": int(self.prototype_token[i, r]),
                            }
                            if self.query_token is not None
                            else {}
                        ),
                        **(
                            {"case_row": int(self.case_rows[i, r]), "case": self.cases[i, r]}
                            if self.cases is not None
                            else {}
                        ),
                    }
                )
        return records

    def to_frame(self) -> Any:  # a pandas.DataFrame (pandas is optional)
        """The table of :meth:`to_records` as a ``pandas.DataFrame``.

        Requires pandas (``pip install pandas``).

        Returns
        -------
        pandas.DataFrame
            One row per (sample, listed prototype), with the columns of
            :meth:`to_records` in that order.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on environment
            raise ImportError(
                "Explanation.to_frame requires pandas; install it with "
                "`pip install pandas`, or use Explanation.to_records()."
            ) from exc
        columns = (
            [
                "sample",
                "predicted",
                "explained",
                "runner_up",
                "margin",
                "rank",
                "prototype",
                "prototype_label",
                "training_index",
                "value",
                "to_explained",
                "to_runner_up",
            ]
            + [
                f"{name}_to_{which}"
                for name in (self.parts or {})
                for which in ("explained", "runner_up")
            ]
            + (["query_token", "prototype_token"] if self.query_token is not None else [])
            + (["case_row", "case"] if self.cases is not None else [])
        )
        return pd.DataFrame.from_records(self.to_records(), columns=columns)

    def _class_names(self) -> list[str]:
        """:func:`label_texts` of ``classes`` (the names the text view and the plots
        give them), computed once per explanation: a report's waterfalls each
        named every class again (2,000 classes, 100 queries: 0.1 s became 12 s)."""
        names = self.__dict__.get("_names")
        if names is None:
            names = label_texts(self.classes)
            object.__setattr__(self, "_names", names)  # (a frozen dataclass's cache)
        return names

    def _label_names(self) -> dict:
        """The text view's name of each class: :meth:`_class_names`, isolated where it
        holds right-to-left text (:func:`_isolated`)."""
        return {c: _isolated(text) for c, text in enumerate(self._class_names())}

    def _sample_text(self, i: int, names: dict) -> list[str]:
        def shown(label) -> str:
            return names[int(self._class_column(np.asarray([label]))[0])]

        scores = self.scores[i]
        p = int(self._class_column(self.explained[i : i + 1])[0])
        q = int(self._class_column(self.runner_up[i : i + 1])[0])
        if np.ndim(self.predicted) == 2:
            on = [names[c] for c in np.flatnonzero(np.asarray(self.predicted[i]) > 0)]
            head = (
                f"sample {i}: predicted labels [{', '.join(on)}]; explaining "
                f"{names[p]} (score {_num(scores[p])})"
            )
        elif self.predicted[i] != self.explained[i]:  # a target= other than the prediction
            b = int(self._class_column(self.predicted[i : i + 1])[0])
            head = (
                f"sample {i}: predicted {names[b]} (score {_num(scores[b])}); "
                f"explaining {names[p]} (score {_num(scores[p])})"
            )
        else:
            head = f"sample {i}: predicted {names[p]} (score {_num(scores[p])})"
        rival = q != p  # (explain names the explained class itself where none scores)
        if rival:
            lines = [
                f"{head}, runner-up {names[q]} (score {_num(scores[q])}), "
                f"margin {_num(self.margin[i])}"
            ]
        else:  # (one column, not the explained class's twice)
            lines = [f"{head}; no runner-up ({_no_rival_reason(scores, p)})"]
        to_p, to_q = "-> " + names[p], "-> " + names[q]
        with_cases = self.cases is not None
        with_tokens = self.query_token is not None
        header = ["rank", "prototype", "class", "train row"] + ["tokens q/p"] * with_tokens
        header += ["case"] * with_cases
        header += [self.value_name, to_p] + [to_q] * rival
        rows = []
        for r in range(self.prototype_index.shape[1]):
            row = self.prototype_sample_index[i, r]
            case = self.cases[i, r] if with_cases else None
            rows.append(
                [
                    str(r + 1),
                    str(self.prototype_index[i, r]),
                    shown(self.prototype_label[i, r]),
                    str(row) if row >= 0 else "-",
                    *(
                        [f"{_slot(self.query_token[i, r])}/{_slot(self.prototype_token[i, r])}"]
                        if with_tokens
                        else []
                    ),
                    *(
                        ["-" if case is None else _isolated(_bidi_escaped(case_text(case)))]
                        * with_cases
                    ),
                    _num(self.value[i, r]),
                    _num(self.contribution[i, r, p]),
                    *[_num(self.contribution[i, r, q])] * rival,
                ]
            )
            for name, part in (self.parts or {}).items():
                rows.append(
                    ["", "", "", ""]
                    + [""] * (with_cases + with_tokens)
                    + [f"of which {name}", _num(part[i, r, p])]
                    + [_num(part[i, r, q])] * rival
                )
        totals = [
            ["other prototypes", self.other_contribution[i, p], self.other_contribution[i, q]],
            [self.bias_name, self.bias[p], self.bias[q]],
            ["= class score", scores[p], scores[q]],
        ]
        totals = [[name, _num(a)] + [_num(b)] * rival for name, a, b in totals]
        aligns = "rrlr" + "r" * with_tokens + "l" * with_cases + "rr" + "r" * rival
        table = _table(header, rows, totals, aligns)
        return lines + table

    def _legend(self) -> list[str]:
        # target= names another class (or, multi-label, a label not predicted)
        if np.ndim(self.predicted) == 1:
            targeted = np.any(self.predicted != self.explained)
        else:
            column = np.searchsorted(self.classes, self.explained)
            targeted = not np.all(np.asarray(self.predicted)[np.arange(len(column)), column])
        whose = "explained" if targeted else "predicted"
        how = (
            f"the largest contributions to the {whose} class's score first"
            if self.ranked_by == "contribution"
            else f"the most active first (by {self.value_name})"
        )
        text = (
            f"Prototypes listed: {how}. Columns: prototype = row of prototypes_; class = its "
            "class; train row = the training row it is (- if none); "
            f"{self.value_name} = what transform returns; -> c = its contribution to the "
            "score of class c."
        )
        return textwrap.wrap(text, width=88)

    def __str__(self) -> str:
        n = len(self)
        lines = [f"{self.estimator_name} explanation of {n} sample(s)", *self._legend()]
        names = self._label_names()
        for i in range(min(n, _MAX_SAMPLES_IN_TEXT)):
            lines.extend(self._sample_text(i, names))
        if n > _MAX_SAMPLES_IN_TEXT:
            lines.append(f"... {n - _MAX_SAMPLES_IN_TEXT} more sample(s); see to_frame()")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<Explanation of {len(self)} sample(s) by {self.estimator_name}: "
            f"{self.prototype_index.shape[1]} prototype(s) each, {len(self.classes)} classes>"
        )
