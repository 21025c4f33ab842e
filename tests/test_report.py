"""Raw cases, the HTML report (parsed, and opened in headless Chromium), explain(target=)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from browser import load, probe, screenshot
from helpers import CLINC150_NPZ
from sklearn.datasets import load_digits, load_iris

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier
from skproto.explain import (
    case_text,
    make_report,
    png_bytes,
    prototype_rows,
    rendered,
    waterfall,
)
from skproto.metrics import own_class_evidence, prototype_purity

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X = d.data / 16.0
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    y = names[d.target]
    texts = np.array([f"digit {n} drawn as case {i}" for i, n in enumerate(y)], dtype=object)
    texts[:60] = HOSTILE  # hostile training texts, some of them prototypes
    texts[60:120] = HOSTILE_IMG
    return X[:600], y[:600], X[600:700], y[600:700], texts[:600], d.images


ESTIMATORS = {
    "nearest_mean": lambda: NearestMeanClassifier(),
    "proto": lambda: ProtoClassifier(n_prototypes_per_class=2, max_epochs=4, random_state=0),
    "rbf_cbc": lambda: RBFPrototypeClassifier(loss="cbc", max_epochs=4, random_state=0),
    "rbf_robust": lambda: RBFPrototypeClassifier(loss="robust", max_epochs=4, random_state=0),
}


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, *_ = digits
    return {name: make().fit(X, y) for name, make in ESTIMATORS.items()}


class _Collect(HTMLParser):
    """Queries, their panels and listed prototype rows, from the report's data attributes."""

    def __init__(self):
        super().__init__()
        self.queries: list[dict] = []
        self.scripts = 0
        self._text_of = None
        self.case_texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "script":
            self.scripts += 1
        if tag == "details" and cls == "query":
            self.queries.append({"index": int(a["data-index"]), "panels": [], **a})
        elif tag == "div" and cls == "panel":
            self.queries[-1]["panels"].append({**a, "steps": []})
        elif tag == "tr" and cls == "step":
            self.queries[-1]["panels"][-1]["steps"].append(a)
        elif tag == "span" and cls == "case-text":
            self._text_of = []

    def handle_data(self, data):
        if self._text_of is not None:
            self._text_of.append(data)

    def handle_endtag(self, tag):
        if tag == "span" and self._text_of is not None:
            self.case_texts.append("".join(self._text_of))
            self._text_of = None


def _parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    return parser


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_report_names_the_cases_whose_contributions_add_up_to_the_score(name, fitted, digits):
    X, y, Xq, yq, texts, _ = digits
    clf = fitted[name]
    page = make_report(clf, Xq[:20], yq[:20], cases=texts, X_train=X, y_train=y, n_prototypes=3)
    report = _parse(page)
    assert [q["index"] for q in report.queries] == list(range(20))
    ex = clf.explain(Xq[:20], 3)
    rows = prototype_rows(clf, X, y)
    for q in report.queries:
        i = q["index"]
        assert q["data-predicted"] == str(clf.predict(Xq[i : i + 1])[0])
        assert len(q["panels"]) == 2  # the prediction and the runner-up
        for panel in q["panels"]:
            c = int(np.searchsorted(clf.classes_, panel["data-class"]))
            contributions = [float(s["data-contribution"]) for s in panel["steps"]]
            total = sum(contributions) + float(panel["data-other"]) + float(panel["data-bias"])
            np.testing.assert_allclose(total, float(panel["data-score"]), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(
                float(panel["data-score"]), ex.scores[i, c], rtol=1e-9, atol=1e-9
            )
            for s in panel["steps"]:  # every listed prototype names its training case
                assert int(s["data-train-row"]) == rows[int(s["data-prototype"])]
        assert report.queries[i]["panels"][0]["data-class"] == str(ex.explained[i])
        assert report.queries[i]["panels"][1]["data-class"] == str(ex.runner_up[i])
    if name == "nearest_mean":  # class means are shown by their representative training row
        assert (rows >= 0).all() and (clf._prototype_sample_indices() < 0).all()
    shown = set(report.case_texts)
    assert {case_text(texts[r], max_chars=160) for r in rows} <= shown | {"-"}
    # the column of what transform gives is named for what it is (for class
    # means a squared distance, where larger is *less* like the prototype)
    assert f"<th>{ex.value_name}</th>" in page and "<th>activation</th>" not in page


def test_report_escapes_hostile_cases_and_labels(fitted, digits):
    X, y, Xq, yq, texts, _ = digits
    clf = fitted["proto"]
    hostile_labels = np.where(y == "one", HOSTILE, y)
    clf2 = NearestMeanClassifier().fit(X, hostile_labels)
    for model, labels in ((clf, y), (clf2, hostile_labels)):
        page = make_report(
            model, Xq[:30], cases=texts, query_cases=texts[:30], X_train=X, y_train=labels
        )
        assert HOSTILE not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert _parse(page).scripts == 1  # only the report's own script


def test_report_checks_its_arguments(fitted, digits):
    X, y, Xq, yq, texts, _ = digits
    clf = fitted["nearest_mean"]
    with pytest.raises(ValueError, match="page_size must be a positive int, got 0"):
        make_report(clf, Xq, page_size=0)
    with pytest.raises(ValueError, match="Pass both X_train and y_train, or neither."):
        make_report(clf, Xq, X_train=X)
    with pytest.raises(ValueError, match="y has 3 entries for 100 queries."):
        make_report(clf, Xq, y[:3])
    with pytest.raises(ValueError, match="cases has 5 entries for 600 training rows"):
        make_report(clf, Xq, cases=texts[:5], X_train=X, y_train=y)


def test_report_writes_a_self_contained_file(fitted, digits, tmp_path):
    X, y, Xq, yq, _, images = digits
    path = tmp_path / "report.html"
    page = make_report(
        fitted["rbf_cbc"], Xq, yq, cases=images[:600], X_train=X, y_train=y, path=path
    )
    assert path.read_text(encoding="utf-8") == page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "default-src 'none'" in page  # and the page may fetch nothing
    assert page.count("data:image/png;base64,") > 100  # the digits, inline


# ----------------------------------------------------------------- browser
def _decode_png(path) -> np.ndarray:
    image = pytest.importorskip("matplotlib.image")
    return image.imread(path)


def test_report_in_a_real_browser(fitted, digits, tmp_path):
    X, y, Xq, yq, texts, _ = digits
    clf = fitted["proto"]
    path = tmp_path / "report.html"
    make_report(
        clf,
        Xq,
        yq,
        cases=texts,
        query_cases=texts[:100],
        X_train=X,
        y_train=y,
        page_size=40,
        path=path,
    )
    dom, console = load(path)
    assert console == []  # no script error, no CSP violation, nothing logged
    assert "page 1 of 3" in dom  # the pagination script ran
    pages = _parse_pages(dom)
    assert pages == [False, True, True]  # pages 2 and 3 hidden
    rows = prototype_rows(clf, X, y)
    ex = clf.explain(Xq[:5], 5)
    for i in range(5):  # the prototype cases of the first queries are in the DOM
        for k in ex.prototype_index[i]:
            assert f'data-prototype="{k}" data-train-row="{rows[k]}"' in dom
    assert "<title>ProtoClassifier: explained predictions</title>" in dom  # not 'pwned'
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert '<img src="x"' not in dom
    png = screenshot(path, tmp_path / "shot.png")
    pixels = _decode_png(png)
    assert pixels.shape[0] > 500 and pixels.std() > 0.05  # something is drawn
    assert (pixels[..., :3] < 0.5).mean() > 0.005  # dark text on the light page


def _parse_pages(dom: str) -> list[bool]:
    hidden = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "div" and a.get("class") == "page":
                hidden.append("hidden" in a)

    P().feed(dom)
    return hidden


def test_a_broken_page_is_caught_by_the_browser_check(tmp_path):
    """The console check can fail: an error in a page script is reported."""
    path = tmp_path / "broken.html"
    path.write_text("<!DOCTYPE html><html><body><script>undefinedFn();</script></body></html>")
    _, console = load(path)
    assert any("undefinedFn" in line for line in console)


# ----------------------------------------------------------------- cases
def test_png_bytes_round_trip():
    image_mod = pytest.importorskip("matplotlib.image")
    rng = np.random.default_rng(0)
    for shape in ((5, 7), (4, 6, 3), (3, 2, 4)):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        back = image_mod.imread(io.BytesIO(png_bytes(pixels)), format="png")
        np.testing.assert_allclose(back, pixels / 255.0, atol=1e-6)
    floats = np.linspace(0, 16, 12).reshape(3, 4)  # min-max scaled
    back = image_mod.imread(io.BytesIO(png_bytes(floats)), format="png")
    np.testing.assert_allclose(back, np.round(floats / 16 * 255) / 255, atol=1e-6)
    # a range away from 0 is stretched over the whole scale too (0 used to be
    # counted in: 100..200 came out as 128..255, uint16 1000..1010 as 251..255)
    for image in (np.linspace(100, 200, 12), np.linspace(-2, -1, 12), np.arange(1000, 1012)):
        image = image.reshape(3, 4).astype(np.uint16 if image.dtype.kind == "i" else float)
        back = image_mod.imread(io.BytesIO(png_bytes(image)), format="png")
        assert back.min() == 0.0 and back.max() == 1.0
    bad = r"An image case of shape \(1, 2\) has NaN or infinite pixels, which cannot be drawn"
    with pytest.raises(ValueError, match=bad):
        png_bytes(np.array([[np.nan, 1.0]]))


def test_a_constant_mask_or_integer_image_is_drawn_at_its_value():
    """An all-True mask came out black (a constant image has no range to scale
    to), although True is white in any other mask; so did an int64 image of 255
    everywhere, white as uint8."""
    image_mod = pytest.importorskip("matplotlib.image")

    def drawn(image):
        back = image_mod.imread(io.BytesIO(png_bytes(image)), format="png")
        return np.round(back * 255).astype(int)

    assert drawn(np.eye(4, dtype=bool))[0, 0] == 255  # True is white
    assert (drawn(np.ones((4, 4), dtype=bool)) == 255).all()
    assert (drawn(np.zeros((4, 4), dtype=bool)) == 0).all()
    assert (drawn(np.full((3, 3), 255, dtype=np.int64)) == 255).all()
    assert (drawn(np.full((3, 3), 7, dtype=np.int16)) == 7).all()
    assert (drawn(np.full((3, 3), 300, dtype=np.int64)) == 0).all()  # (no scale: black)


def test_rendered_and_case_text():
    image = np.zeros((8, 8))
    assert rendered("hello") == "hello"
    assert rendered(image) is image
    assert rendered(image, "text").startswith("[[")
    assert case_text(image) == "<image 8x8>"
    assert case_text("a  b\n c") == "a b c"
    assert case_text("x" * 100, max_chars=10) == "x" * 9 + "…"
    # a terminal escape passed into str(explanation) raw, an empty text printed as
    # a blank cell, and max_chars=0 gave the whole text cut at -1
    assert case_text("\x1b[31mred\x00") == "\\x1b[31mred\\x00"
    assert case_text("") == '""' and case_text(" \n") == '""'
    assert case_text("عربي\u200c ok") == "عربي\u200c ok"  # (format characters kept)
    with pytest.raises(ValueError, match="max_chars must be a positive int, got 0"):
        case_text("abc", max_chars=0)
    assert rendered(3, lambda case: np.ones((2, 2)) * case).shape == (2, 2)
    with pytest.raises(ValueError, match="renderer='image' needs numeric arrays"):
        rendered("text", "image")
    with pytest.raises(ValueError, match="renderer must be None, 'text', 'image'"):
        rendered("text", "html")


def test_with_cases_and_text_form(fitted, digits):
    X, y, Xq, _, texts, _ = digits
    clf = fitted["proto"]
    ex = clf.explain(Xq[:4], 2).with_cases(texts)
    rows = ex.prototype_sample_index
    assert (rows >= 0).all()
    assert all(ex.cases[i, r] == texts[rows[i, r]] for i in range(4) for r in range(2))
    assert case_text(texts[rows[0, 0]]) in str(ex)
    records = ex.to_records()
    assert records[0]["case"] == texts[rows[0, 0]] and records[0]["case_row"] == rows[0, 0]
    np.testing.assert_array_equal(ex.scores, clf.explain(Xq[:4], 2).scores)
    with pytest.raises(ValueError, match="pass the cases of every training row"):
        ex.with_cases(texts[:3])


def test_cases_in_a_pandas_series_are_read_by_position():
    # a DataFrame column after train_test_split: its index is shuffled, and
    # series[r] is the case whose *label* is r (another row's, or a KeyError)
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    from skproto.explain import PrototypeGalleryDisplay, attach_cases

    X, y = load_iris(return_X_y=True)
    text = pd.Series([f"flower {i} of class {t}" for i, t in enumerate(y)])
    X_tr, X_te, t_tr, t_te, y_tr, y_te = train_test_split(X, text, y, random_state=0)
    clf = NearestMeanClassifier().fit(X_tr, y_tr)
    rows = prototype_rows(clf, X_tr, y_tr)
    ex = clf.explain(X_te[:3], 3).with_cases(t_tr, rows)
    for i, r in np.ndindex(ex.cases.shape):
        assert ex.cases[i, r] == t_tr.iloc[ex.case_rows[i, r]]
        assert ex.cases[i, r].endswith(f"class {ex.prototype_label[i, r]}")
    page = make_report(clf, X_te[:3], y_te[:3], X_train=X_tr, y_train=y_tr, cases=t_tr,
                       query_cases=t_te[:3])  # fmt: skip
    assert all(t_tr.iloc[r] in page for r in rows) and t_te.iloc[0] in page
    gallery = PrototypeGalleryDisplay.from_estimator(clf, X_tr, y_tr, cases=t_tr)
    assert gallery.cases[rows[0]] == t_tr.iloc[rows[0]]
    tagged = NearestMeanClassifier().fit(attach_cases(X_tr.copy(), t_tr), y_tr)
    assert list(tagged.prototype_cases_) == [t_tr.iloc[r] for r in rows]


def test_prototype_rows_of_class_means_are_their_most_similar_own_class_row(fitted, digits):
    X, y, *_ = digits
    clf = fitted["nearest_mean"]
    rows = prototype_rows(clf, X, y)
    D = clf.transform(X)  # squared distances
    for k, label in enumerate(clf.prototype_labels_):
        own = np.flatnonzero(y == label)
        assert rows[k] == own[np.argmin(D[own, k])]
    assert (prototype_rows(clf) == -1).all()  # without the training data: none


# ----------------------------------------------------------------- explain(target=)
def test_explain_target_explains_the_given_class(fitted, digits):
    X, y, Xq, *_ = digits
    clf = fitted["rbf_cbc"]
    ex = clf.explain(Xq[:10], 3)
    other = clf.explain(Xq[:10], 3, target=ex.runner_up)
    np.testing.assert_array_equal(other.explained, ex.runner_up)
    np.testing.assert_array_equal(other.predicted, ex.predicted)  # still the prediction
    np.testing.assert_allclose(other.scores, ex.scores, rtol=1e-12)
    np.testing.assert_array_equal(other.runner_up, ex.explained)
    c = np.searchsorted(clf.classes_, ex.runner_up)
    own = other.contribution[np.arange(10), :, c]
    full = clf.explain(Xq[:10], len(clf.prototypes_), target=ex.runner_up)
    top = np.sort(-np.abs(full.contribution[np.arange(10), :, c]), axis=1)[:, :3]
    np.testing.assert_allclose(np.sort(-np.abs(own), axis=1), top)  # ranked for the target
    same = clf.explain(Xq[:10], 3, target="three")
    assert (same.explained == "three").all()
    with pytest.raises(ValueError, match="target has label 'eleven', which is not one of"):
        clf.explain(Xq[:3], target="eleven")
    with pytest.raises(ValueError, match=r"one label per sample \(3\), got shape \(2,\)"):
        clf.explain(Xq[:3], target=["one", "two"])


def _check_adds_up(page: str, clf, X) -> int:
    """Every panel's listed contributions + other + bias == its score == the model's score."""
    report = _parse(page)
    ex = clf.explain(X, 1)
    for q in report.queries:
        for panel in q["panels"]:
            c = int(np.searchsorted(clf.classes_, _as_label(panel["data-class"], clf.classes_)))
            contributions = [float(s["data-contribution"]) for s in panel["steps"]]
            total = sum(contributions) + float(panel["data-other"]) + float(panel["data-bias"])
            np.testing.assert_allclose(total, float(panel["data-score"]), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(
                float(panel["data-score"]), ex.scores[q["index"], c], rtol=1e-9, atol=1e-9
            )
    return len(report.queries)


def _as_label(text: str, classes: np.ndarray):
    return type(classes[0].item())(text) if classes.dtype.kind in "iuf" else text


def test_report_of_a_multilabel_model_adds_up():
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(200, 10, n_classes=4, random_state=0)
    clf = ProtoClassifier(n_prototypes_per_class=2, max_epochs=3, random_state=0).fit(X, Y)
    cases = [f"row {i}" for i in range(200)]
    page = make_report(clf, X[:10], Y[:10], cases=cases, X_train=X, y_train=Y)
    assert _check_adds_up(page, clf, X[:10]) == 10
    # a neighbour in the gallery is named by its labels (it showed its row number)
    import re

    shown = re.findall(
        r"<li data-row='(\d+)'><span class='case-text'><bdi>row \d+</bdi></span> "
        r"<small>\(<bdi>([^)<]*)</bdi>\)",
        page,
    )
    assert shown and all(lab == str(np.flatnonzero(Y[int(r)]).tolist()) for r, lab in shown)
    # each query states the labels predicted (maybe none), then the one explained,
    # right or wrong as subset accuracy counts (it stated the explained label only)
    pred = clf.predict(X[:10])
    for i in range(10):
        labels = np.flatnonzero(pred[i]).tolist()
        query = page.split(f"data-index='{i}'")[1]
        assert f"&rarr; <b><bdi>{labels}</bdi></b> (explaining " in query
    assert "subset accuracy on these queries" in page
    # each panel says whether its label is predicted: a row predicting no label
    # had a panel headed "predicted <label>"
    scores = clf.decision_function(X[:10])
    for i in range(10):
        query = page.split(f"data-index='{i}'")[1].split("</details>")[0]
        heads = re.findall(r"<h4>([^<]*) <bdi>", query)
        top2 = np.argsort(-scores[i], kind="stable")[:2]
        assert heads == [
            ("predicted" if pred[i, c] else "not predicted") + f" ({which})"
            for c, which in zip(top2, ["highest score", "next score"])
        ]
    assert "not predicted (highest score)" in page  # (these rows include one with no label)
    with pytest.raises(ValueError, match=r"y has shape \(10, 3\); the model predicts \(10, 4\)"):
        make_report(clf, X[:10], Y[:10, :3])


def test_report_on_clinc150_names_training_sentences(clinc150):
    """20 CLINC150 test queries: the named training sentences add up to each score."""
    import json

    X, y, Xq, raw = clinc150["X_train"], clinc150["y_train"], clinc150["X_test"], clinc150["raw"]
    texts = [t for t, _ in json.loads(raw.read_text())["train"]]
    for clf in (NearestMeanClassifier(), ProtoClassifier(max_epochs=2, random_state=0)):
        clf.fit(X, y)
        page = make_report(clf, Xq[:20], cases=texts, X_train=X, y_train=y)
        assert _check_adds_up(page, clf, Xq[:20]) == 20
        rows = prototype_rows(clf, X, y)
        report = _parse(page)
        for q in report.queries:  # each listed prototype's sentence is on the page
            for s in q["panels"][0]["steps"]:
                row = int(s["data-train-row"])
                assert row == rows[int(s["data-prototype"])]
                assert html_escape(texts[row]) in page


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


@pytest.fixture(scope="module")
def clinc150():
    npz, raw = CLINC150_NPZ, CLINC150_NPZ.with_name("data_full.json")
    if not (npz.is_file() and raw.is_file()):
        pytest.skip(f"CLINC150 not found under {npz.parent}")
    with np.load(npz) as z:
        data = {k: z[k] for k in ("X_train", "y_train", "X_test")}
    data["raw"] = raw
    return data


def test_report_refuses_labels_of_another_kind_than_the_classes(fitted, digits):
    # integer classes and string labels (read back from a CSV) read as all wrong
    X, y, Xq, yq, *_ = digits
    clf = NearestMeanClassifier().fit(X, np.searchsorted(np.unique(y), y))
    with pytest.raises(ValueError, match="Mix of label types"):
        make_report(clf, Xq[:5], yq[:5])
    with pytest.raises(ValueError, match="Mix of label types"):
        make_report(clf, Xq[:5], None, X_train=X, y_train=y)


def test_report_names_long_labels_in_full_and_refuses_no_queries(tmp_path):
    # labels were cut at 24 characters (two classes read the same); a report of
    # 0 queries raised scikit-learn's "Found array with 0 sample(s)"; a lone
    # surrogate in a case raised UnicodeEncodeError when written
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["customer_support_request_billing", "customer_support_request_billing2", "x"])
    clf = NearestMeanClassifier().fit(X, names[y])
    page = make_report(clf, X[50:52], X_train=X, y_train=names[y])
    assert "customer_support_request_billing2" in page
    with pytest.raises(ValueError, match="X has no rows: make_report explains at least one"):
        make_report(clf, X[:0])
    cases = np.array([f"case {i}" for i in range(len(X))], dtype=object)
    cases[0] = "bad \ud800 text"
    make_report(clf, X[:2], X_train=X, y_train=names[y], cases=cases, path=tmp_path / "r.html")


def test_a_pipeline_on_a_dataframe_names_its_rows_as_cases():
    # the default cases of a pipeline (its raw rows) were list(DataFrame): the column
    # names. make_report raised "query_cases has 13 entries for 20 queries", and with
    # 13 queries query #0 read "alcohol"; the gallery raised an IndexError
    pytest.importorskip("pandas")
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skproto.explain import PrototypeGalleryDisplay

    X, y = load_wine(return_X_y=True, as_frame=True)
    pipe = make_pipeline(StandardScaler(), NearestMeanClassifier()).fit(X, y)
    page = make_report(pipe, X.iloc[:20], y.iloc[:20], X_train=X, y_train=y)
    shown = _parse(page).case_texts
    assert any(t.startswith("{'alcohol': 14.23, 'malic_acid': 1.71") for t in shown)  # row 0
    assert "alcohol" not in shown and len(shown) > 20
    ex = pipe[-1].explain(pipe[:-1].transform(X.iloc[:2]), 2)
    ex = ex.with_cases(X, prototype_rows(pipe[-1], pipe[:-1].transform(X), y))
    assert ex.cases[0, 0] == X.iloc[ex.case_rows[0, 0]].to_dict()
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    gallery = PrototypeGalleryDisplay.from_estimator(pipe, X, y, n_neighbors=2)
    assert gallery.cases[0] == X.iloc[0].to_dict()
    matplotlib.pyplot.close("all")


def test_nanosecond_dates_are_shown_as_dates():
    # datetime64[ns] labels were shown as 1577836800000000000 (.item() is an int)
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    days = np.array(["2020-01-01", "2021-06-01", "2022-12-31"], dtype="datetime64[ns]")[y]
    clf = NearestMeanClassifier().fit(X, days)
    assert "predicted 2020-01-01 (score" in str(clf.explain(X[:1], 1))
    page = make_report(clf, X[:1], days[:1])
    assert "<bdi>2020-01-01</bdi>" in page and "1577836800" not in page


def test_user_text_is_isolated_from_the_numbers_beside_it(tmp_path):
    # a right-to-left override in a case ran on over the rest of the line: the
    # margin 5.35 was drawn "53.5" and the score -1.1 "1.1-"
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "\u202eversicolor", "virginica"])
    clf = NearestMeanClassifier().fit(X, names[y])
    query_cases = ["\u202eflower A", "flower B"]
    page = make_report(clf, X[[0, 60]], names[y[[0, 60]]], query_cases=query_cases,
                       X_train=X, y_train=names[y])  # fmt: skip
    assert "<bdi>\u202eflower A</bdi>" in page
    assert "<bdi>&#x27;\\u202eversicolor&#x27;</bdi>" in page  # (repr shows it escaped)
    # as a person sees it: the summary line's text ends with the score's digits
    summary = probe(
        page,
        "var s=document.querySelectorAll('details.query summary');"
        "var r=document.createRange();r.selectNodeContents(s[0]);"
        "var boxes=[];s[0].querySelectorAll('bdi').forEach(function(b){"
        "var q=b.getBoundingClientRect();boxes.push([q.left,q.right]);});"
        "var rest=document.createRange();rest.setStartAfter(s[0].querySelector('bdi'));"
        "rest.setEnd(s[0],s[0].childNodes.length);var t=rest.getBoundingClientRect();"
        "document.body.dataset.probe=JSON.stringify({bdi:boxes,rest:[t.left,t.right]});",
        tmp_path / "bidi.html",
    )
    import json

    found = json.loads(summary)
    assert found["bdi"][0][1] <= found["rest"][0] + 1  # the case's text ends before the rest


def test_expand_button_follows_the_page_shown_and_long_labels_wrap(tmp_path):
    # the button kept one state over pages: after expanding page 1, page 2 (all
    # closed) read "collapse this page" and its first click expanded nothing. A
    # 300-character label without spaces made the page 3139 px wide in 800
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    names = np.array(["x" * 300, "b", "c"])
    clf = NearestMeanClassifier().fit(X, names[y])
    page = make_report(clf, X[:20], names[y[:20]], X_train=X, y_train=names[y], page_size=10)
    log = probe(
        page,
        "function state(){var p=document.querySelectorAll('.page');var o=0,n=0;"
        "for(var i=0;i<p.length;i++){if(!p[i].hidden){var q=p[i].querySelectorAll("
        "'details.query');n=q.length;for(var k=0;k<n;k++){if(q[k].open)o++;}}}"
        "return o+'/'+n+' '+document.getElementById('expand').textContent;}"
        "var b=document.getElementById('expand'),nx=document.getElementById('next');"
        "var log=[state()];b.click();log.push(state());nx.click();log.push(state());"
        "b.click();log.push(state());"
        "document.querySelectorAll('details').forEach(function(d){d.open=true});"
        "var e=document.documentElement;log.push(e.scrollWidth+' in '+e.clientWidth);"
        "document.body.dataset.probe=log.join('|');",
        tmp_path / "expand.html",
    )
    steps = log.split("|")
    assert steps[:4] == [
        "0/10 expand this page",
        "10/10 collapse this page",
        "0/10 expand this page",
        "10/10 collapse this page",
    ]
    width, window = map(int, steps[4].split(" in "))
    assert width <= window


def test_strip_images_are_shown_at_a_bounded_readable_size():
    # the report drew every image 40 px wide: a 1 x 64 strip was 1 px tall (not
    # seen) and a 64 x 1 one 2,560 px tall; the plots' 1 x 64 thumbnail 0.4 pt
    import re

    from skproto.explain._plot import _zoom

    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 1, (20, 3)), rng.normal(4, 1, (20, 3))]
    y = np.repeat([0, 1], 20)
    clf = NearestMeanClassifier().fit(X, y)
    for shape, expected in [((1, 64), (40, 4)), ((64, 1), (4, 40)), ((8, 8), (40, 40))]:
        cases = [rng.rand(*shape) for _ in range(40)]
        page = make_report(clf, X[:2], cases=cases, X_train=X, y_train=y, renderer="image")
        sizes = set(re.findall(r"class='case-img'[^>]*style='width:(\d+)px;height:(\d+)px'", page))
        assert sizes == {tuple(map(str, expected))}
    assert _zoom((8, 8)) == 3.0
    assert _zoom((1, 64)) >= 1 and _zoom((1, 64)) * 64 <= 72  # (it was 0.375: 0.4 pt tall)


def test_training_rows_cases_and_neighbours_are_checked():
    """Audit: a y_train or cases of another length than X_train failed in the
    report, the gallery and prototype_rows with numpy's IndexError (or passed
    silently where every prototype is a row), n_neighbors=-1 with "negative
    dimensions are not allowed"; the rows of a mixed-type DataFrame read
    ``np.int64(3)``."""
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_iris

    from skproto.explain._cases import FrameRows

    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    short = "y has 100 entries for 150 training rows: pass one per training row, in order."
    with pytest.raises(ValueError, match=short):
        make_report(clf, X[:3], X_train=X, y_train=y[:100])
    with pytest.raises(ValueError, match="y has 150 entries for 100 training rows"):
        prototype_rows(clf, X[:100], y)
    cases = [f"flower {i}" for i in range(120)]
    with pytest.raises(ValueError, match="cases has 120 entries for 150 training rows"):
        make_report(clf, X[:3], X_train=X, y_train=y, cases=cases)
    with pytest.raises(ValueError, match="n_neighbors must be a non-negative int, got -1."):
        make_report(clf, X[:3], X_train=X, y_train=y, n_neighbors=-1)
    assert "<html" in make_report(clf, X[:3], X_train=X, y_train=y, n_neighbors=0).lower()
    frame = pd.DataFrame({"colour": ["red", "blue"], "size": [3, 4], "weight": [0.5, 1.5]})
    assert FrameRows(frame)[0] == {"colour": "red", "size": 3, "weight": 0.5}
    assert repr(FrameRows(frame)[1]) == "{'colour': 'blue', 'size': 4, 'weight': 1.5}"
    # rows by position whatever the index (a split's), booleans as Python's
    shuffled = pd.DataFrame({"a": [10, 20], "flag": [True, False]}, index=[1, 0])
    row = FrameRows(shuffled)[0]
    assert row == {"a": 10, "flag": True} and type(row["flag"]) is bool
    from skproto.explain._cases import other_rows

    # a prototype's neighbours leave out its own row while m others remain
    np.testing.assert_array_equal(other_rows(np.array([[3, 1, 2]]), np.array([3]), 2), [[1, 2]])
    np.testing.assert_array_equal(other_rows(np.array([[3, 1, 2]]), np.array([7]), 2), [[3, 1]])
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from skproto.explain import PrototypeGalleryDisplay

    with pytest.raises(ValueError, match=short):
        PrototypeGalleryDisplay.from_estimator(clf, X, y[:100])
    with pytest.raises(ValueError, match="cases has 120 entries for 150 training rows"):
        PrototypeGalleryDisplay.from_estimator(clf, X, y, cases=cases)
    with pytest.raises(ValueError, match="n_neighbors must be a non-negative int, got -1."):
        PrototypeGalleryDisplay.from_estimator(clf, X, y, n_neighbors=-1)
    bare = PrototypeGalleryDisplay.from_estimator(clf, X, y, n_neighbors=0)  # (prototypes only)
    assert bare.axes_.shape == (3, 1) and bare.neighbors_.shape == (3, 0)
    matplotlib.pyplot.close("all")


# Pinned by a mutation audit of explain/_report.py (2026-12-06)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def _queries(page):
    """{index: html of that query's <details>}."""
    parts = page.split("<details class='query' data-index='")[1:]
    return {int(p[: p.index("'")]): p[: p.index("</details>")] for p in parts}


def _panels(query):
    return query.split("<div class='panel'")[1:]


STEP = re.compile(
    r"<tr class='step' data-prototype='(\d+)' data-train-row='(-?\d+)' "
    r"data-contribution='([^']*)'><td class='num'>#\d+</td><td>(.*?)</td>"
    r"<td class='case'>.*?</td><td class='num'>([^<]*)</td><td class='num'>([^<]*)</td></tr>"
)


def test_panel_tables_show_each_prototypes_class_value_contribution_and_the_totals(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R05 (the value column
    showed the contribution), R06 (contributions shown
    with the wrong sign), R07 (the 'other prototypes' row showed the bias), R08 (the
    '= score' row showed score - bias), R20 (each listed prototype named with the
    panel's class) and R24 (the panel heading showed the bias as the score)."""
    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    queries = [0, 60, 120]
    page = make_report(clf, X[queries], n_prototypes=3)
    ex = clf.explain(X[queries], 3)
    second = clf.explain(X[queries], 3, target=ex.runner_up)  # (ranked for the runner-up)
    seen_other_class = False
    for i, query in _queries(page).items():
        for panel, column in zip(_panels(query), ["explained", "runner_up"]):
            w = waterfall(ex if column == "explained" else second, i)
            bias, *protos, other = w.steps
            found = STEP.findall(panel)
            assert len(found) == len(protos) == 3
            for (k, _, _, label, value, contribution), step in zip(found, protos):
                assert int(k) == step.prototype
                assert label == f"<bdi>{step.prototype_label}</bdi>"
                seen_other_class |= step.prototype_label != w.label
                assert value == f"{step.prototype_value:.3g}"
                assert contribution == f"{step.value:+.4g}"
            assert f"<h4>{'predicted' if column == 'explained' else 'runner-up'} " in panel
            assert f"</bdi>: score {w.score:.4g}</h4>" in panel
            totals = re.findall(r"<td colspan='3'>(.*?)</td><td class='num'>(.*?)</td>", panel)
            assert totals == [
                (other.label, f"{other.value:+.4g}"),
                (bias.label, f"{bias.value:+.4g}"),
                ("<b>= score</b>", f"<b>{w.score:.4g}</b>"),
            ]
    assert seen_other_class  # (a prototype of another class is listed)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_svg_bars_are_contiguous_signed_and_to_scale(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R03 (negative steps
    drawn with the positive class and vice versa),
    R04 (each step's bar started at the end of the next one) and R25 (the axis
    left out 0: the score bar drawn from outside the picture)."""
    X, y = iris
    models = [
        NearestMeanClassifier().fit(X, y),
        RBFPrototypeClassifier(loss="cbc", max_epochs=2, random_state=0).fit(X, y),
        # (row 0: the bias and every running total above 0)
        ProtoClassifier(max_epochs=2, random_state=0).fit(X, y),
    ]
    for clf in models:
        page = make_report(clf, X[[0, 60]], n_prototypes=2)
        ex = clf.explain(X[[0, 60]], 2)
        second = clf.explain(X[[0, 60]], 2, target=ex.runner_up)
        for i, query in _queries(page).items():
            for panel, ranked in zip(_panels(query), [ex, second]):
                w = waterfall(ranked, i)
                svg = panel[panel.index("<svg") : panel.index("</svg>")]
                rect = r"<rect class='(\w+)' x='([\d.-]+)' y='\d+' width='([\d.]+)'"
                rects = re.findall(rect, svg)
                zero = float(re.search(r"<line x1='([\d.-]+)'", svg).group(1))
                assert 4 - 0.05 <= zero <= 256 + 0.05  # 0 is inside the picture
                kinds = [
                    "bias" if s.kind == "bias" else ("pos" if s.value >= 0 else "neg")
                    for s in w.steps
                ]
                assert [r[0] for r in rects] == kinds + ["score"]
                spans = [(float(a), float(a) + float(b)) for _, a, b in rects]
                assert min(abs(spans[0][0] - zero), abs(spans[0][1] - zero)) < 0.15  # bias from 0
                assert min(abs(spans[-1][0] - zero), abs(spans[-1][1] - zero)) < 0.15  # score too
                scale = (spans[-1][1] - spans[-1][0]) / abs(w.score)
                for (a, b), s in zip(spans, w.steps):
                    assert abs((b - a) - max(abs(s.value) * scale, 0.5)) < 0.25
                # each bar starts where the one before it ends
                for (a0, b0), (a1, b1) in zip(spans[:-2], spans[1:-1]):
                    assert min(abs(p - q) for p in (a0, b0) for q in (a1, b1)) < 0.15


def test_query_lines_mark_right_and_wrong_with_the_true_label_and_the_margin(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R10 (right/wrong marks
    swapped), R11 ('wrong (true ...)' named the
    prediction), R12 (the summary gave the OOD score as the margin) and R22
    (the accuracy shown was the error rate)."""
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])
    clf = NearestMeanClassifier().fit(X, names[y])
    rows = np.arange(50, 150, 5)
    page = make_report(clf, X[rows], names[y[rows]])
    pred = clf.predict(X[rows])
    ex = clf.explain(X[rows], 1)
    assert (pred != names[y[rows]]).any() and (pred == names[y[rows]]).any()
    for i, query in _queries(page).items():
        summary = query[query.index("<summary>") : query.index("</summary>")]
        if pred[i] == names[y[rows[i]]]:
            assert "<span class='right'>right</span>" in summary and "wrong" not in summary
        else:
            assert f"wrong (true <bdi>&#x27;{names[y[rows[i]]]}&#x27;</bdi>)" in summary
        assert f", margin {ex.margin[i]:.3g}, in-distribution" in summary
    accuracy = np.mean(pred == names[y[rows]])
    assert f"accuracy on these queries</td><td class='num'>{accuracy:.4f}<" in page


def test_a_binary_model_explains_the_runner_up_too_and_pages_are_numbered(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R13 (a two-class model
    lost its runner-up panel) and R09 (data-page
    held the first query's index instead of the page number)."""
    X, y = iris
    clf = NearestMeanClassifier().fit(X[:100], y[:100])
    page = make_report(clf, X[:25], page_size=10)
    assert all(len(_panels(q)) == 2 for q in _queries(page).values())
    assert re.findall(r"<div class='page' data-page='(\d+)'>", page) == ["0", "1", "2"]


def test_model_table_counts_prototypes_and_shows_own_class_evidence(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R15 (the 'prototypes'
    line counted the classes) and R18 (own-class
    evidence showed the top prototype's share)."""
    X, y = iris
    clf = ProtoClassifier(n_prototypes_per_class=2, max_epochs=2, random_state=0).fit(X, y)
    page = make_report(clf, X[::10])
    assert "<td>prototypes</td><td class='num'>6</td>" in page
    own = own_class_evidence(clf, X[::10])
    assert f"<td>own-class evidence (mean)</td><td class='num'>{own:.3f}</td>" in page


def test_gallery_gives_each_class_the_mean_purity_of_its_prototypes(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R19 (a class's summary
    gave its best prototype's purity).
    """
    X, y = iris
    clf = ProtoClassifier(n_prototypes_per_class=3, max_epochs=2, random_state=0).fit(X, y)
    page = make_report(clf, X[:1], X_train=X, y_train=y)
    purity = prototype_purity(clf, X, y, aggregate=None)
    labels = np.asarray(clf.prototype_labels_)
    found = re.findall(r"\((\d+) prototypes, mean purity ([\d.]+)\)", page)
    expected = [
        (str((labels == c).sum()), f"{purity[labels == c].mean():.2f}") for c in clf.classes_
    ]
    assert found == expected
    assert any(purity[labels == c].max() != purity[labels == c].mean() for c in clf.classes_)


def test_gallery_names_each_neighbour_by_its_own_label(iris):
    """Mutation audit of the report (each case passed under a mutant): kills R21 (a neighbour shown
    with its prototype's label).
    """
    X, y = iris
    clf = NearestMeanClassifier().fit(X, y)
    page = make_report(clf, X[:1], X_train=X, y_train=y, n_neighbors=60)
    shown = re.findall(r"<li data-row='(\d+)'>.*?<small>\(<bdi>([^<]*)</bdi>\)</small></li>", page)
    assert len(shown) == 180
    assert all(label == str(y[int(r)]) for r, label in shown)
    assert len({label for _, label in shown}) == 3


def test_query_images_and_training_images_of_the_same_index_are_not_confused():
    """Mutation audit of the report (each case passed under a mutant): kills R17 (the image cache
    keyed by row only: query i showed training image i).
    """
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 1, (10, 4)), rng.normal(3, 1, (10, 4))]
    y = np.repeat([0, 1], 10)
    clf = NearestMeanClassifier().fit(X, y)
    train_images = [np.full((4, 4), 0.0) + np.eye(4) for _ in range(20)]  # a diagonal
    query_images = [np.full((4, 4), 0.0) + np.eye(4)[::-1] for _ in range(20)]  # the other
    page = make_report(clf, X, cases=train_images, query_cases=query_images, X_train=X, y_train=y)
    from skproto.explain._cases import png_data_uri

    q, t = png_data_uri(query_images[0]), png_data_uri(train_images[0])
    for i, query in _queries(page).items():
        head = query[query.index("<span class='query-case'>") : query.index("&rarr;")]
        assert q in head and t not in head, i


@pytest.mark.parametrize(
    "image",
    [
        np.array([[-1e308, 1e308], [0.0, 1.0]]),
        np.array([[np.finfo(float).min, np.finfo(float).max]]),
    ],
)
def test_png_of_pixels_whose_range_overflows(image):
    """max - min overflowed to inf: every pixel NaN, cast silently to garbage."""
    import warnings

    from skproto.explain._cases import _to_uint8

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = _to_uint8(image)
    assert pixels.min() == 0 and pixels.max() == 255
    assert png_bytes(image)[1:4] == b"PNG"


@pytest.mark.parametrize(
    "image",
    [np.ones((2, 2), complex), np.array([[1, 2]], "datetime64[s]"), [["a", "b"]]],
)
def test_png_refuses_pixels_that_are_not_numbers(image):
    """Complex pixels lost their imaginary part silently; strings failed inside numpy."""
    with pytest.raises(ValueError, match="numeric pixels"):
        png_bytes(image)


@pytest.mark.parametrize("field", ["y", "y_train"])
def test_make_report_refuses_scalar_labels(field):
    """y=3 (or y_train=3) failed with "TypeError: len() of unsized object"."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier().fit(X, y)
    kwargs = {"y": 3} if field == "y" else {"X_train": X, "y_train": 3}
    with pytest.raises(ValueError, match="y must be an array-like of labels"):
        make_report(clf, X[:5], **kwargs)


def _naive_day_classes():
    """A fitted NearestMeanClassifier of two datetime64[D] classes, its rows and labels."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.0, 6.0]])
    days = np.array(["2022-03-04", "2022-03-04", "2022-03-05", "2022-03-05"], "datetime64[D]")
    return NearestMeanClassifier().fit(X, days), X, days


@pytest.mark.parametrize("field", ["y", "y_train"])
def test_make_report_refuses_time_zone_aware_dates_against_naive_classes(field):
    """A y of time-zone-aware Timestamps against naive datetime64 classes marked every
    prediction wrong (accuracy 0.0000), silently: an aware date has no one naive date
    (wall time or UTC), so it is refused by name, as fit refuses such a y."""
    pd = pytest.importorskip("pandas")
    clf, X, days = _naive_day_classes()
    aware = pd.Series(pd.to_datetime(days).tz_localize("UTC"))
    with pytest.raises(ValueError, match="^y contains the time-zone-aware"):  # fit's own
        NearestMeanClassifier().fit(X, aware)
    kwargs = {"y": aware} if field == "y" else {"y": days, "X_train": X, "y_train": aware}
    with pytest.raises(
        ValueError,
        match=rf"^{field} contains the time-zone-aware timestamp Timestamp\('2022-03-04 "
        r"00:00:00\+0000', tz='UTC'\), but classes_ are naive dates \(datetime64\[D\]\)",
    ):
        make_report(clf, X, **kwargs)
    # one aware label among naive ones is refused too, and naive dates still work
    mixed = np.array([pd.Timestamp("2022-03-04")] * 3 + [aware[3]], dtype=object)
    with pytest.raises(ValueError, match="time-zone-aware timestamp"):
        make_report(clf, X, mixed)
    page = make_report(clf, X, aware.dt.tz_localize(None))
    assert "<td>accuracy on these queries</td><td class='num'>1.0000</td>" in page


def test_gallery_and_explain_target_refuse_time_zone_aware_dates():
    """The gallery's y and classes and explain's target take Timestamps against
    datetime64 classes; an aware one was "not in classes_" there, and explain read
    it as its UTC date, silently. Each is refused by its own name."""
    pd = pytest.importorskip("pandas")
    from skproto.explain import PrototypeGalleryDisplay

    clf, X, days = _naive_day_classes()
    aware = pd.Timestamp("2022-03-04", tz="UTC")
    naive = r"but classes_ are naive dates \(datetime64\[D\]\)"
    with pytest.raises(ValueError, match=rf"^y contains the time-zone-aware .* {naive}"):
        PrototypeGalleryDisplay.from_estimator(clf, X, [aware] * 4)
    with pytest.raises(ValueError, match=rf"^classes contains the time-zone-aware .* {naive}"):
        PrototypeGalleryDisplay.from_estimator(clf, X, days, classes=[aware])
    with pytest.raises(ValueError, match=rf"^target contains the time-zone-aware .* {naive}"):
        clf.explain(X[:1], 1, target=aware)
    assert clf.explain(X[:1], 1, target=aware.tz_localize(None)).explained[0] == days[0]
