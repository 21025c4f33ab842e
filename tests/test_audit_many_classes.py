"""Audit for many classes: nothing of NearestMeanClassifier grows with the classes squared.

With 10,000 classes of 6 rows and 32 features (statistics of a few MB):

- ``metric="mahalanobis"`` (shared covariance) built the background of
  ``score_samples`` from an (n_classes, n_classes) Cholesky factor: a fit peaked
  at 2.57 GB and took 18.9 s (0.39 GB and 3.5 s now; K = 4,000: 0.59 GB, 2.6 s
  before, 0.37 GB, 1.0 s now). Its rank is at most n_features, so the factor of
  the QR of its (n_classes, rank) factor gives the same map.
- ``metrics.global_size`` and every ``explain`` read the identity head
  ``np.eye(n_classes)`` (800 MB for 10,000 classes; after a fit with a fixed
  temperature, global_size peaked at 1.75 GB, now 0.22 GB; explaining 1,000 rows at
  0.99 GB, now 0.70 GB, most of it the (rows, 3, classes) explanation itself).
- the first use after a class-incremental stream (``partial_fit`` with
  ``temperature="auto"``) scored every set-aside row, one in five of all rows
  streamed, for every class: 12,000 rows of 10,000 classes, 18.5 s (2.6-3.4 s now;
  ``fit`` 2.7 s), growing with the classes squared where each class brings its
  rows. It now scores at most about ``calibration.scored_rows`` of them, picked by
  ``fit``'s hash rule.

Each memory probe runs in a fresh process and measures its peak-RSS growth.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import MEMORY_PROBE_HEAD, count_scored_rows, peak_extra_mib

from skproto import NearestMeanClassifier, calibration
from skproto import metrics as mt

_HEAD = (
    MEMORY_PROBE_HEAD
    + """
from skproto import NearestMeanClassifier
from skproto import metrics as mt

rng = np.random.default_rng(0)
n_classes, d = 3000, 4
y = np.repeat(np.arange(n_classes), 2)
X = 3 * rng.normal(size=(n_classes, d))[y] + rng.normal(size=(len(y), d))
"""
)


def _blobs(n_classes: int, rows: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), rows)
    X = 3 * rng.normal(size=(n_classes, d))[y] + rng.normal(size=(len(y), d))
    p = rng.permutation(len(y))
    return X[p], y[p]


_MAHALANOBIS_PROBE = """
NearestMeanClassifier(metric="mahalanobis", temperature=1.0).fit(X[:100], y[:100])
reset_peak()
base = rss("VmRSS")
NearestMeanClassifier(metric="mahalanobis", temperature=1.0).fit(X, y)
print(json.dumps({"extra": rss("VmHWM") - base}))
"""


def test_shared_mahalanobis_background_is_not_classes_squared():
    """A shared-covariance Mahalanobis fit of 3,000 classes of 4 features: the
    background's (3,000, 3,000) Cholesky factor and its work arrays (69 MiB each)
    measured 206 MiB of peak growth before, under 10 MiB now."""
    result = peak_extra_mib(_HEAD + _MAHALANOBIS_PROBE, timeout=300)
    assert result["extra"] < 40, result


@pytest.mark.parametrize("n_classes, d", [(3, 8), (40, 5), (300, 6)])
def test_shared_mahalanobis_background_map_is_unchanged(n_classes, d):
    """The reduced background map spans the same form: ``background_map @ .T``
    and ``score_samples`` equal the Woodbury form of the background covariance
    built from the public attributes (more classes than features included)."""
    from helpers import relative_mahalanobis_reference

    X, y = _blobs(n_classes, 6, d, seed=n_classes)
    X[:, -1] *= 1e-3  # (one narrow feature)
    clf = NearestMeanClassifier(metric="mahalanobis", temperature=2.0).fit(X, y)
    Z = 5 * X[:50]
    np.testing.assert_allclose(
        clf.score_samples(Z), relative_mahalanobis_reference(clf, Z, 2.0), rtol=1e-7
    )


_GLOBAL_SIZE_PROBE = """
clf = NearestMeanClassifier(temperature=1.0).fit(X, y)
mt.global_size(NearestMeanClassifier(temperature=1.0).fit(X[:100], y[:100]))
reset_peak()
base = rss("VmRSS")
size = mt.global_size(clf)
print(json.dumps({"extra": rss("VmHWM") - base, "size": size}))
"""


def test_global_size_does_not_build_the_identity_head():
    """metrics.global_size of a NearestMeanClassifier of 3,000 classes: its identity
    head np.eye(3000) and the absolute values of it (69 MiB each) measured 137 MiB
    of peak growth before, under 5 MiB now; every class mean counts."""
    result = peak_extra_mib(_HEAD + _GLOBAL_SIZE_PROBE, timeout=300)
    assert result["size"] == 3000, result
    assert result["extra"] < 30, result


def test_explain_and_global_size_never_read_the_dense_head(monkeypatch):
    """NearestMeanClassifier's explain, its metrics and global_size take the bias
    and the connection strengths without the (n_classes, n_classes) head; the
    explanation adds up to the scores as before, and a class declared without rows
    does not count."""
    X, y = _blobs(30, 5, 4)
    clf = NearestMeanClassifier(temperature=1.0).fit(X, y)
    stream = NearestMeanClassifier(temperature=1.0).partial_fit(X, y, classes=np.arange(31))
    ex = clf.explain(X[:20])
    evidence = mt.own_class_evidence(clf, X[:20])

    def refuse(self):
        raise AssertionError("the dense (n_classes, n_classes) head was built")

    monkeypatch.setattr(NearestMeanClassifier, "_head", refuse)
    again = clf.explain(X[:20])
    np.testing.assert_array_equal(again.bias, ex.bias)
    np.testing.assert_array_equal(again.contribution, ex.contribution)
    np.testing.assert_allclose(
        again.contribution.sum(axis=1) + again.other_contribution + again.bias,
        clf.decision_function(X[:20]),
        rtol=1e-9,
        atol=1e-9,
    )
    np.testing.assert_array_equal(mt.own_class_evidence(clf, X[:20]), evidence)
    assert mt.global_size(clf) == 30
    assert mt.global_size(stream) == 30  # (the class declared without rows: no mean)


def test_stream_scores_a_bounded_sample_of_its_held_out_rows(monkeypatch):
    """A class-incremental stream of 2,500 classes of 10 rows (chunks of 2,500
    rows) set aside about 5,000 rows; its first use scored all of them for every
    class (the cost of fit's scoring times rows / scored_rows: the classes squared
    where classes bring their rows). Now about scored_rows (2,000) of them, picked
    as fit picks, and the temperature stays near fit's."""
    n_classes = 2500
    X, y = _blobs(n_classes, 10, 4)
    order = np.argsort(y, kind="stable")  # classes arrive chunk by chunk
    X, y = X[order], y[order]
    scored = count_scored_rows(monkeypatch)
    stream = NearestMeanClassifier()
    for s in range(0, len(y), 2500):
        stream.partial_fit(X[s : s + 2500], y[s : s + 2500])
    stream.predict(X[:1])
    most = calibration.scored_rows(n_classes)
    assert 0 < sum(scored) <= 1.25 * most, scored
    fitted = NearestMeanClassifier().fit(X, y)
    assert stream.temperature_ == pytest.approx(fitted.temperature_, rel=0.15)


def test_short_stream_still_calibrates_exactly_as_fit():
    """Below 5 x scored_rows streamed rows nothing is left out: the stream's
    temperature is fit's, exactly."""
    X, y = _blobs(200, 12, 5)
    fitted = NearestMeanClassifier().fit(X, y)
    stream = NearestMeanClassifier()
    for s in range(0, len(y), 300):
        stream.partial_fit(X[s : s + 300], y[s : s + 300], classes=np.arange(200))
    assert stream.temperature_ == fitted.temperature_


def test_the_gallery_ranks_rows_for_the_prototypes_it_shows_only(monkeypatch):
    """PrototypeGalleryDisplay ranked every training row for every prototype (and
    found every prototype's representative) to show a few classes: 17.8 s at
    10,000 classes of 6 rows for the default 5 (4.6 s now, most of it the
    distances themselves). Its neighbours, purity and rows are those of the
    shown prototypes, the same as before."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skproto.explain import PrototypeGalleryDisplay, prototype_rows

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(200), 4)
    X = 3.0 * rng.normal(size=(200, 6))[y] + rng.normal(size=(len(y), 6))
    clf = NearestMeanClassifier().fit(X, y)
    ranked = []
    best = mt._chunk_best

    def spy(A, rows, m):
        ranked.append(A.shape[0])
        return best(A, rows, m)

    monkeypatch.setattr(mt, "_chunk_best", spy)
    display = PrototypeGalleryDisplay.from_estimator(clf, X, y, classes=[7, 3], n_neighbors=2)
    plt.close("all")
    assert set(ranked) == {2}
    np.testing.assert_array_equal(display.prototype_index_, [3, 7])
    neighbors = mt.prototype_neighbors(clf, X, n_neighbors=11)
    rows = prototype_rows(clf, X, y)
    np.testing.assert_array_equal(display.rows, rows[[3, 7]])
    purity = mt.prototype_purity(clf, X, y, aggregate=None)
    np.testing.assert_array_equal(display.purity_, purity[[3, 7]])
    for i, k in enumerate([3, 7]):
        assert display.neighbors_[i].tolist() == [r for r in neighbors[k] if r != rows[k]][:2]
