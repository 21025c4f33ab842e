"""A self-contained HTML report of a prototype classifier's explanations.

One file: inline CSS, inline SVG waterfalls, images as ``data:`` URIs and one
small inline script (pagination) allowed by its hash in a Content Security
Policy that forbids every network request. Every case, label and name is
escaped, so a hostile training text shows as text and runs nothing.

Numbers a program may want to check are kept on the elements as ``data-``
attributes: each query's panels carry the class, its score, bias and the
contribution of the prototypes not listed; each listed prototype row its
index, training row and contribution (they add up to the score).
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import _num_samples

from .._validation import (
    check_label_kinds,
    check_non_negative_int,
    check_one_label_kind,
    check_positive_int,
    checked_indicator,
    label_array,
    time_labels,
)
from ._cases import (
    _thumbnail_size,
    case_text,
    check_training_rows,
    other_rows,
    png_data_uri,
    prototype_rows,
    rendered,
    row_labels,
)
from ._explanation import _label, _slot, plain
from ._steps import (
    Waterfall,
    drawn_range,
    explain_with_runner_up,
    fitted_classifier,
    has_rival,
    no_rival,
    runner_up_waterfall,
    unpipe,
    waterfall,
)

__all__ = ["make_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1d2733;
max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}td,th{padding:2px 6px;text-align:left;
vertical-align:top}th{border-bottom:1px solid #999}
.num{text-align:right;font-variant-numeric:tabular-nums}
summary,h4,td,li,.case-text{overflow-wrap:anywhere}
.metrics td:first-child{color:#555}
details.query{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px}
details.query[open]{background:#fafbfc}
summary{cursor:pointer}.wrong{color:#b00020}.right{color:#1b7f3b}
.panels{display:flex;flex-wrap:wrap;gap:24px;margin:6px 0}
.panel h4{margin:4px 0;font-size:.95em}
.case{max-width:28em}.case-img{image-rendering:pixelated;border:1px solid #ccc;
vertical-align:middle}.query-case{color:#444}
.pos{fill:#2a9d8f}.neg{fill:#e76f51}.bias{fill:#8d99ae}.score{fill:#264653}
.gallery details{margin:2px 0}.proto{margin:4px 0 8px 1em}
nav button{margin:0 2px}.page[hidden]{display:none}
"""

#: the only script of the page: shows one page of queries at a time
_SCRIPT = """
(function(){
var pages=document.querySelectorAll('.page');var info=document.getElementById('page-info');
var current=0;var all=document.getElementById('expand');
function mark(open){if(all){all.setAttribute('data-open',open?'1':'0');
all.textContent=open?'collapse this page':'expand this page';}}
function queries(){return pages[current].querySelectorAll('details.query');}
function show(i){current=Math.max(0,Math.min(pages.length-1,i));
for(var j=0;j<pages.length;j++){pages[j].hidden=(j!==current);}
if(info){info.textContent='page '+(current+1)+' of '+pages.length;}
var q=queries();var open=q.length>0;for(var k=0;k<q.length;k++){open=open&&q[k].open;}
mark(open);}
var prev=document.getElementById('prev');var next=document.getElementById('next');
if(prev){prev.addEventListener('click',function(){show(current-1);});}
if(next){next.addEventListener('click',function(){show(current+1);});}
if(all){all.addEventListener('click',function(){
var open=all.getAttribute('data-open')!=='1';mark(open);
var q=queries();for(var k=0;k<q.length;k++){q[k].open=open;}});}
if(pages.length){show(0);}
})();
"""


def _full_label(value) -> str:
    """A class label in the page, never shortened (the page wraps long ones)."""
    return _label(value, limit=None)


def _e(value) -> str:
    """Escaped text of ``value`` (for element content and attribute values)."""
    return html.escape(plain(value), quote=True)


def _t(value) -> str:
    """Escaped text of ``value`` isolated from the text around it, for element
    content the user wrote (a label, a case): a right-to-left mark or override
    in it then cannot reorder the numbers beside it."""
    return f"<bdi>{_e(value)}</bdi>"


def _f(x: float) -> str:
    """A float for a data attribute: exact round trip."""
    return repr(float(x))


class _Cases:
    """The raw cases and how to show them, with each image encoded once."""

    def __init__(self, cases, renderer, max_chars: int = 160):
        self.cases, self.renderer, self.max_chars = cases, renderer, max_chars
        self._images: dict = {}

    def html(self, row: int, source=None, case=None) -> str:
        """The case of training ``row`` (of ``source``, default the training cases), or ``case``."""
        source = self.cases if source is None else source
        if case is not None and source is self.cases and source is not None and row >= 0:
            # the training case of ``row`` (with_cases read it there): keyed by its row,
            # as the gallery's are (by id, each query's fresh view of an image array,
            # digits.images[r], missed: every image was encoded again, 8,010 times
            # for 797 digits queries against 50 times for a list of the same images)
            case = None
        if case is None and (source is None or row < 0):
            return "<span class='none'>-</span>" if row < 0 else f"row {row}"
        key = (id(source), row) if case is None else ("case", row, id(case))
        if key in self._images:
            return self._images[key]
        shown = rendered(source[row] if case is None else case, self.renderer)
        if isinstance(shown, np.ndarray):
            width, height = _thumbnail_size(shown.shape, 40, 4)
            out = (
                f"<img class='case-img' alt='case of row {row}' src='{png_data_uri(shown)}' "
                f"style='width:{width:.0f}px;height:{height:.0f}px'>"
            )
            self._images[key] = out
            return out
        return f"<span class='case-text'>{_t(case_text(shown, max_chars=self.max_chars))}</span>"


def _svg(w: Waterfall) -> str:
    """A horizontal waterfall: one bar per step, then the score bar from 0."""
    values = np.array([s.value for s in w.steps] + [w.score])
    ends = np.cumsum(values[:-1])
    starts = np.concatenate([[0.0], ends[:-1]])
    # (a -inf score made every coordinate NaN: "Expected length, 'nan'" in the
    # browser's console; its bars now reach the edge, as the plot's do)
    lo, hi = drawn_range(np.append(ends, w.score))
    span = hi - lo or 1.0
    width, row = 260, 14

    def x(v):
        # (plain float arithmetic: np.isnan and np.clip on numpy scalars, 17
        # coordinates a waterfall, took ~40 ms of a 200-query report's 0.22 s)
        v = float(v)
        if v != v:  # NaN
            v = 0.0
        return min(max(4 + (v - lo) / span * (width - 8), 4.0), width - 4.0)

    bars = []
    for i, step in enumerate(w.steps):
        a, b = sorted((x(starts[i]), x(ends[i])))
        kind = "bias" if step.kind == "bias" else ("pos" if step.value >= 0 else "neg")
        bars.append(
            f"<rect class='{kind}' x='{a:.1f}' y='{i * row + 2}' width='{max(b - a, 0.5):.1f}' "
            f"height='{row - 4}'><title>{_e(step.label)}: {step.value:.4g}</title></rect>"
        )
    n = len(w.steps)
    a, b = sorted((x(0.0), x(w.score)))
    bars.append(
        f"<rect class='score' x='{a:.1f}' y='{n * row + 2}' width='{max(b - a, 0.5):.1f}' "
        f"height='{row - 4}'><title>score {w.score:.4g}</title></rect>"
    )
    height = (n + 1) * row + 4
    zero = x(0.0)
    return (
        f"<svg class='waterfall' width='{width}' height='{height}' role='img' "
        f"aria-label='waterfall of the score of class {_e(w.label)}'>"
        + "".join(bars)
        + f"<line x1='{zero:.1f}' x2='{zero:.1f}' y1='0' y2='{height}' stroke='#333'/></svg>"
    )


def _panel(w: Waterfall, title: str, cases: _Cases, value_name: str) -> str:
    """One class score's waterfall and table; ``value_name`` heads the column of what
    ``transform`` gives for each listed prototype (a similarity, a squared distance...)."""
    bias, *protos, other = w.steps
    rows = []
    for step in protos:
        part = f" ({_e(step.part)})" if step.part else ""
        if step.tokens is not None:  # token prototypes: which slots matched
            part += (
                f" <small class='tokens'>query token {_slot(step.tokens[0])} ~ its token "
                f"{_slot(step.tokens[1])}</small>"
            )
        rows.append(
            f"<tr class='step' data-prototype='{step.prototype}' data-train-row='{step.row}' "
            f"data-contribution='{_f(step.value)}'><td class='num'>#{step.prototype}</td>"
            f"<td>{_t(_full_label(step.prototype_label))}{part}</td>"
            f"<td class='case'>{cases.html(step.row, case=step.case)}</td>"
            f"<td class='num'>{step.prototype_value:.3g}</td>"
            f"<td class='num'>{step.value:+.4g}</td></tr>"
        )
    return (
        f"<div class='panel' data-class='{_e(w.label)}' data-score='{_f(w.score)}' "
        f"data-bias='{_f(bias.value)}' data-other='{_f(other.value)}'>"
        f"<h4>{_e(title)} {_t(_full_label(w.label))}: score {w.score:.4g}</h4>{_svg(w)}"
        "<table><tr><th>prototype</th><th>class</th><th>case</th>"
        f"<th>{_e(value_name)}</th>"
        f"<th>contribution</th></tr>{''.join(rows)}"
        f"<tr><td></td><td colspan='3'>{_e(other.label)}</td>"
        f"<td class='num'>{other.value:+.4g}</td></tr>"
        f"<tr><td></td><td colspan='3'>{_e(bias.label)}</td>"
        f"<td class='num'>{bias.value:+.4g}</td></tr>"
        f"<tr><td></td><td colspan='3'><b>= score</b></td>"
        f"<td class='num'><b>{w.score:.4g}</b></td></tr></table></div>"
    )


def _metrics_table(items: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_e(v)}</td></tr>" for k, v in items)
    return f"<table class='metrics'>{body}</table>"


def _own_case(estimator, cases: _Cases, k: int):
    """Prototype ``k``'s case from the estimator (``prototype_cases_``) when none are passed."""
    known = getattr(estimator, "prototype_cases_", None)
    return known[k] if cases.cases is None and known is not None else None


def _gallery(estimator, y_train, cases: _Cases, n_neighbors: int, rows, neighbors):
    """``(html, mean purity)``: every class's prototypes with their nearest training cases."""
    from ..metrics import _present, _purity_of_neighbors

    y = np.asarray(y_train)
    purity = _purity_of_neighbors(estimator, y, neighbors[:, :10])
    near_rows = other_rows(neighbors, rows, n_neighbors)
    labels = np.asarray(estimator.prototype_labels_)
    present = _present(estimator)
    out = []
    for c in estimator.classes_:
        members = np.flatnonzero((labels == c) & present)
        if not len(members):  # declared to partial_fit, no rows yet
            out.append(
                f"<details><summary>{_t(_full_label(c))} (no prototypes yet)</summary></details>"
            )
            continue
        items = []
        for k in members:
            near = "".join(
                f"<li data-row='{r}'>{cases.html(int(r))}"
                f" <small>({_t(_full_label(row_labels(y, r)))})</small></li>"
                for r in near_rows[k]
            )
            items.append(
                f"<div class='proto' data-prototype='{k}' data-train-row='{rows[k]}' "
                f"data-purity='{_f(purity[k])}'><b>#{k}</b> purity {purity[k]:.2f}: "
                f"{cases.html(int(rows[k]), case=_own_case(estimator, cases, k))}"
                f"<ol>{near}</ol></div>"
            )
        out.append(
            f"<details><summary>{_t(_full_label(c))} ({len(members)} prototypes, mean purity "
            f"{purity[members].mean():.2f})</summary>" + "".join(items) + "</details>"
        )
    return "<div class='gallery'>" + "".join(out) + "</div>", float(np.mean(purity[present]))


def make_report(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    cases: Sequence | np.ndarray | None = None,
    query_cases: Sequence | np.ndarray | None = None,
    X_train: ArrayLike | None = None,
    y_train: ArrayLike | None = None,
    renderer: str | Callable | None = None,
    n_prototypes: int = 5,
    n_neighbors: int = 3,
    page_size: int = 50,
    title: str | None = None,
    path: str | Path | None = None,
) -> str:
    """A self-contained HTML report of ``estimator``'s predictions on ``X``.

    For every query: the prediction (and whether it is right, when ``y`` is
    given), the margin, the out-of-distribution score (``score_samples``),
    and for the predicted class and the runner-up (if any other class scores
    above -inf) a waterfall of the class
    score with the cases of the prototypes that build it. A global page
    gives accuracy, the interpretability metrics of :mod:`skproto.metrics`
    and, with the training data, a gallery: every class's prototypes as
    cases next to their nearest training cases, with their purity.

    The file needs no network: styles, the pagination script and images are
    inline, and a Content Security Policy forbids every request. Every case
    and label is escaped. Queries are paginated (``page_size`` per page) and
    each is collapsed until opened. Size: about 7 kB per query with text
    cases (1,000 CLINC150 queries and 750 prototypes: about 7 MB).

    Parameters
    ----------
    estimator : fitted skproto estimator, or a fitted Pipeline ending in one
        With a pipeline (e.g. ``SentenceEncoder`` then ``ProtoClassifier``),
        ``X`` and ``X_train`` are raw inputs: they go through the steps before
        the classifier and are themselves the cases (``query_cases`` and
        ``cases``) unless those are given.
    X : array-like of shape (n_queries, n_features), or raw inputs for a pipeline
        The queries.
    y : array-like of shape (n_queries,), default=None
        Their true labels: accuracy and a mark on every wrong prediction.
        Against datetime64 classes, pandas Timestamps and Python dates are
        read as dates; time-zone-aware ones are refused (a ValueError, as
        ``fit`` refuses them): make them naive first.
    cases : sequence of shape (n_training_samples,), default=None
        Raw training inputs aligned with the training rows (texts, images,
        any objects). Default: the estimator's own ``prototype_cases_`` if it
        knows them (see :func:`~skproto.explain.attach_cases`).
    query_cases : sequence of shape (n_queries,), default=None
        Raw inputs of the queries.
    X_train, y_train : array-like, default=None
        The training data (in the order of ``cases``): for the gallery,
        prototype purity, and representative cases of prototypes that are
        not training rows (class means).
    renderer : None, "text", "image" or callable, default=None
        How cases are shown: see :func:`skproto.explain.rendered`.
    n_prototypes : int, default=5
        Prototypes listed per class score.
    n_neighbors : int, default=3
        Nearest training cases shown per prototype in the gallery.
    page_size : int, default=50
        Queries per page.
    title : str, default=None
        Title of the page; None: ``"<estimator name>: explained predictions"``.
    path : str or Path, default=None
        Where to write the file (UTF-8); the HTML is returned either way.

    Returns
    -------
    html : str
        The HTML document.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import make_report
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> page = make_report(clf, X[:5], y[:5], X_train=X, y_train=y)
    >>> page.startswith("<!DOCTYPE html>")
    True
    """
    estimator, X, X_train, query_cases, cases = unpipe(estimator, X, X_train, query_cases, cases)
    fitted_classifier(estimator, "make_report")
    check_positive_int(page_size, "page_size")
    if (X_train is None) != (y_train is None):
        raise ValueError("Pass both X_train and y_train, or neither.")
    check_non_negative_int(n_neighbors, "n_neighbors")
    # (Timestamps or Python dates against datetime64 classes: numpy compared them as
    # dates or integers, and every right prediction was marked wrong)
    y, y_train = (
        None if v is None else time_labels(label_array(v), estimator.classes_, name=what)
        for v, what in ((y, "y"), (y_train, "y_train"))
    )
    if X_train is not None:
        check_training_rows(X_train, y_train, cases)
    for labels in (y, y_train):  # numbers against string classes would all read as misses
        if labels is not None and np.ndim(labels) == 1:
            check_one_label_kind(labels)  # (before np.unique, which raised numpy's
            # TypeError for strings beside Timestamps)
            check_label_kinds(estimator.classes_, np.unique(labels))
    if not _num_samples(X):  # (explain raised scikit-learn's "Found array with 0 sample(s)")
        raise ValueError("X has no rows: make_report explains at least one query.")
    start = time.perf_counter()
    first, second = explain_with_runner_up(
        estimator, X, n_prototypes=n_prototypes, cases=None, X_train=None, y_train=None
    )
    n = len(first)
    for name, seq in (("y", y), ("query_cases", query_cases)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} queries.")
    neighbors = None
    if X_train is not None:  # once, for the representatives, the gallery and purity
        from ..metrics import prototype_neighbors

        neighbors = prototype_neighbors(estimator, X_train, n_neighbors=max(10, n_neighbors + 1))
    rows = prototype_rows(estimator, X_train, y_train, neighbors=neighbors)
    if cases is not None:
        first, second = first.with_cases(cases, rows), second.with_cases(cases, rows)
    shown = _Cases(cases, renderer)
    ood = estimator.score_samples(X)
    name = type(estimator).__name__
    title = title or f"{name}: explained predictions"

    from ..metrics import _evidence_shares, global_size

    metrics = [
        ("estimator", name),
        ("classes", str(len(estimator.classes_))),
        ("prototypes", str(len(estimator.prototypes_))),
        ("queries", str(n)),
    ]
    multilabel = np.ndim(first.predicted) == 2
    if y is not None and not multilabel and np.ndim(y) != 1:  # (numpy's broadcast error)
        raise ValueError(
            f"y has shape {np.shape(y)}; the model is single-label: pass one label per query."
        )
    if y is not None and multilabel and np.shape(y) != np.shape(first.predicted):
        raise ValueError(
            f"y has shape {np.shape(y)}; the model predicts {np.shape(first.predicted)}."
        )
    if y is not None and multilabel:  # (read as y > 0: a NaN was no label, silently)
        y = checked_indicator(y)
    if y is not None and not multilabel:
        right = np.asarray(first.predicted) == np.asarray(y)
        metrics.append(("accuracy on these queries", f"{right.mean():.4f}"))
    elif y is not None:  # every label right: scikit-learn's subset accuracy
        right = np.all((np.asarray(first.predicted) > 0) == (np.asarray(y) > 0), axis=1)
        metrics.append(("subset accuracy on these queries", f"{right.mean():.4f}"))
    if n:
        own, top1 = _evidence_shares(estimator, X, 1)  # one pass for both metrics
        metrics.append(("own-class evidence (mean)", f"{np.mean(own):.3f}"))
        metrics.append(("evidence share of the top prototype (median)", f"{np.median(top1):.3f}"))
    metrics.append(
        ("prototypes with a non-negligible class connection", str(global_size(estimator)))
    )
    gallery = ""
    if X_train is not None:
        gallery, purity = _gallery(estimator, y_train, shown, n_neighbors, rows, neighbors)
        metrics.append(("prototype purity (10 nearest training rows, mean)", f"{purity:.3f}"))
        gallery = "<h2>Prototypes</h2>" + gallery

    pages = []
    for p in range(0, n, page_size):
        items = []
        for i in range(p, min(n, p + page_size)):
            pred = first.explained[i]
            shown_pred = f"<b>{_t(_full_label(pred))}</b>"
            mark = ""
            if multilabel:  # the predicted labels (maybe none), then the one explained
                labels = row_labels(np.asarray(first.predicted), np.array(i))
                shown_pred = f"<b>{_t(str(labels))}</b> (explaining {_t(_full_label(pred))})"
            if y is not None:
                ok = right[i]
                true = row_labels(np.asarray(y), np.array(i)) if multilabel else np.asarray(y)[i]
                mark = (
                    " <span class='right'>right</span>"
                    if ok
                    else f" <span class='wrong'>wrong (true {_t(_full_label(true))})</span>"
                )
            query = ""
            if query_cases is not None:
                query = f" <span class='query-case'>{shown.html(i, query_cases)}</span>"
            # titles: the panels' roles (a label explained is not always predicted,
            # multi-label, nor the next one), as the plots title them
            top = waterfall(first, i)
            panels = _panel(top, top.role, shown, first.value_name)
            if has_rival(first, i):
                runner = runner_up_waterfall(second, i)
                panels += _panel(runner, runner.role, shown, second.value_name)
            elif len(first.classes) > 1:  # (its own runner-up: drawn once, not twice)
                panels += f"<p class='no-rival'>{_e(no_rival(first, i))}</p>"
            items.append(
                f"<details class='query' data-index='{i}' data-predicted='{_e(pred)}' "
                f"data-margin='{_f(first.margin[i])}' data-ood='{_f(ood[i])}'>"
                f"<summary>#{i}{query} &rarr; {shown_pred}{mark}, margin "
                f"{first.margin[i]:.3g}, in-distribution score {ood[i]:.3g}</summary>"
                f"<div class='panels'>{panels}</div></details>"
            )
        pages.append(f"<div class='page' data-page='{p // page_size}'>{''.join(items)}</div>")
    nav = (
        "<nav><button id='prev' type='button'>previous</button><span id='page-info'></span>"
        "<button id='next' type='button'>next</button> "
        "<button id='expand' type='button'>expand this page</button></nav>"
    )
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )
    body = (
        f"<h1>{_e(title)}</h1><h2>Model</h2>{_metrics_table(metrics)}{gallery}"
        f"<h2>Queries</h2><p>Each query: the predicted class and the runner-up, each "
        "score built from the class bias, the listed prototypes (the training cases they "
        "are) and the prototypes not listed.</p>"
        f"{nav if len(pages) > 1 else ''}{''.join(pages)}"
        f"<footer><small>generated by skproto in "
        f"{time.perf_counter() - start:.1f} s</small></footer>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}"
        f"<script>{_SCRIPT}</script></body></html>"
    )
    if path is not None:
        Path(path).write_text(page, encoding="utf-8", errors="replace")  # (a lone surrogate)
    return page
