"""Memory audit: the held-out losses of the temperature grid are summed in row chunks.

``calibration.grid_center`` and ``calibration.grid_log_loss`` held about six to
eight (n_rows, n_classes) float64 arrays at once, whatever the chunk budget:
0.96 and 1.26 GB for the float32 scores of 40,000 rows of 1,000 classes (160
MB). Through them, ``RBFPrototypeClassifier.partial_fit`` with
``temperature="auto"`` (the default) peaked at 1.73 GB more than its resident
size on a batch of 40,000 x 32 rows of 1,000 classes (0.11 GB with a fixed
temperature; 0.31 GB in chunks), and ``NearestMeanClassifier``'s first use
after a stream that set aside 120,000 held-out rows of 8 features (200
classes) at 1.02 GB (0.19 GB in chunks). Each probe runs in a fresh process
with the chunk budget shrunk, so that a computation in chunks is far below
one over all rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import MEMORY_PROBE_HEAD, peak_extra_mib

from skproto import calibration as cal

_HEAD = (
    MEMORY_PROBE_HEAD
    + """
import skproto._chunking
skproto._chunking.CHUNK_ELEMENTS = 2**18  # read at call time: 2 MB float64 chunks
"""
)


def _peak_extra_mib(code: str) -> dict:
    """Run ``code`` in a fresh process; it reports its peak-RSS growth (MiB)."""
    return peak_extra_mib(_HEAD + code, timeout=300)


_GRID_PROBE = """
from skproto import calibration as cal
rng = np.random.default_rng(0)
n, n_classes = 5000, 500
S = rng.normal(size=(n, n_classes)).astype(np.float32)  # 10 MB
T = rng.integers(0, n_classes, n)
cal.add_grid_losses(cal.NO_LOSSES, S[:10], np.zeros(n_classes), T[:10], None)
reset_peak()
base = rss("VmRSS")
cal.add_grid_losses(cal.NO_LOSSES, S, np.zeros(n_classes), T, None)
print(json.dumps({"extra": rss("VmHWM") - base}))
"""


def test_grid_losses_are_computed_in_row_chunks():
    """The grid's window and sums of 5,000 rows of 500 classes (float32 scores, 9.5
    MiB): measured 116 MiB of peak growth before, 12 MiB in chunks."""
    result = _peak_extra_mib(_GRID_PROBE)
    assert result["extra"] < 50, result


_STREAM_PROBE = """
from skproto import NearestMeanClassifier
rng = np.random.default_rng(0)
d, n_classes = 8, 200
centers = 3 * rng.normal(size=(n_classes, d))
clf = NearestMeanClassifier()
for _ in range(8):  # about 16,000 held-out rows set aside, 1 MB of them
    y = rng.integers(0, n_classes, 10000)
    clf.partial_fit(centers[y] + rng.normal(size=(10000, d)), y, classes=np.arange(n_classes))
reset_peak()
base = rss("VmRSS")
clf.predict(centers[:1])  # the first use scores the set-aside rows
print(json.dumps({"extra": rss("VmHWM") - base}))
"""


def test_stream_scores_its_held_out_rows_in_chunks():
    """NearestMeanClassifier's first use after a stream: its about 16,000 held-out
    rows scored for 200 classes were one (rows, classes) float64 array of 25 MiB and
    the grid's work arrays; measured 136 MiB of peak growth before, 12 MiB in chunks."""
    result = _peak_extra_mib(_STREAM_PROBE)
    assert result["extra"] < 50, result


def test_chunked_grid_sums_equal_one_pass(monkeypatch):
    """In several chunks, the window and the sums are those of one pass (float32
    scores read as float64, -inf classes and weights of 0 included)."""
    rng = np.random.default_rng(1)
    S = rng.normal(scale=3.0, size=(700, 6))
    S[:200, 2] = -np.inf
    T = rng.integers(0, 6, 700)
    w = rng.random(700)
    w[::5] = 0.0
    log_prior = np.log(rng.dirichlet(np.ones(6)))
    one = [
        cal.grid_center(S, w),
        cal.grid_log_loss(S, log_prior, T, w),
        cal.grid_log_loss(S.astype(np.float32), log_prior, T, None),
    ]
    monkeypatch.setattr("skproto._chunking.CHUNK_ELEMENTS", 60)  # 10 rows a chunk
    assert cal.grid_center(S, w) == one[0]
    for (sums, total), got in zip(
        one[1:],
        [
            cal.grid_log_loss(S, log_prior, T, w),
            cal.grid_log_loss(S.astype(np.float32), log_prior, T, None),
        ],
    ):
        np.testing.assert_allclose(got[0], sums, rtol=1e-12)
        assert got[1] == pytest.approx(total, rel=1e-12)


def test_held_out_rows_scored_in_chunks_give_the_same_temperature(monkeypatch):
    """NearestMeanClassifier's held-out rows scored chunk by chunk (the window placed
    by all of them first) give the temperature of one pass."""
    from sklearn.datasets import load_digits

    from skproto import NearestMeanClassifier

    X, y = load_digits(return_X_y=True)
    whole = NearestMeanClassifier().fit(X, y)
    monkeypatch.setattr("skproto._chunking.CHUNK_ELEMENTS", 640)  # 10 rows a chunk
    chunked = NearestMeanClassifier().fit(X, y)
    assert chunked.temperature_ == pytest.approx(whole.temperature_, rel=1e-9)
    np.testing.assert_allclose(chunked.predict_proba(X), whole.predict_proba(X), rtol=1e-9)
