"""Review of the stream's thinned first use (``_thinned``, commit eb97a57).

The first use after a ``partial_fit`` stream with ``temperature="auto"`` scores
only some of its set-aside rows. The stride was taken from how many rows were set
aside, not from how many rows the stream had, as ``fit``'s stride is:

- copies of a row go together, so a stream below ``5 * scored_rows`` rows could set
  aside over twice ``scored_rows`` of them and was thinned, where ``fit`` scores
  every held-out row: one ``partial_fit`` call on 240,000 rows of 18 distinct rows
  (3 classes) read a temperature of 1.90, ``fit`` 4.79;
- chunks of over ``5 * scored_rows`` rows set aside one row in their own stride,
  by the same hash bits: four chunks of stride 4 (2,500 classes) set aside 7,845
  rows, a thinning stride of 4 kept all of them (``fit`` scores 1,926; its first
  use took 4.7 s against ``fit``'s 1.3 s).

Each test failed on the code before the fix.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import count_scored_rows

from skproto import NearestMeanClassifier, calibration
from skproto.nearest_mean._estimator import _row_hash


@pytest.fixture
def scored(monkeypatch):
    """The number of held-out rows each scoring pass gets."""
    return count_scored_rows(monkeypatch)


def _repeated_rows():
    """240,000 rows (under 5 x scored_rows(3) = 250,000) of 18 distinct rows, six of
    them held out by the hash (20,000 copies each): half of the rows are held out."""
    rng = np.random.default_rng(0)
    pool = np.unique(rng.integers(-3, 4, size=(400, 3)).astype(float), axis=0)
    h = _row_hash(pool)
    rows = np.concatenate([np.flatnonzero(h % 5 == 0)[:6], np.flatnonzero(h % 5 != 0)[:12]])
    X, y = [], []
    for j, r in enumerate(rows):
        n = 20_000 if j < 6 else 10_000
        X.append(np.repeat(pool[r][None], n, axis=0))
        y.append(rng.choice(3, size=n, p=np.roll([0.6, 0.25, 0.15], j % 3)))  # (overlap)
    X, y = np.vstack(X), np.concatenate(y)
    order = rng.permutation(len(y))
    return X[order], y[order]


def test_short_stream_of_repeated_rows_calibrates_as_fit():
    """Below 5 x scored_rows rows nothing is left out, however many copies are held
    out: one call and a stream of chunks read fit's temperature exactly (1.90 on
    the old code, fit 4.79)."""
    X, y = _repeated_rows()
    assert len(y) <= 5 * calibration.scored_rows(3)
    assert np.sum(_row_hash(X) % 5 == 0) > 2 * calibration.scored_rows(3)
    fitted = NearestMeanClassifier().fit(X, y)
    assert NearestMeanClassifier().partial_fit(X, y).temperature_ == fitted.temperature_
    stream = NearestMeanClassifier()
    for s in range(0, len(y), 60_000):
        stream.partial_fit(X[s : s + 60_000], y[s : s + 60_000])
    assert stream.temperature_ == fitted.temperature_


def _large_chunks():
    rng = np.random.default_rng(0)
    n_classes = 2500
    y = rng.permutation(np.repeat(np.arange(n_classes), 64))
    X = 1.2 * rng.normal(size=(n_classes, 4))[y] + rng.normal(size=(len(y), 4))
    return X, y, n_classes


def test_stream_of_large_chunks_scores_what_fit_scores(scored):
    """Four chunks of 40,000 rows of 2,500 declared classes (each chunk's stride 4,
    fit's 16): the first use scores the rows fit scores (1,926; all 7,845 set-aside
    rows on the old code), and the temperature is near fit's. A merge of two streams
    scores the same rows as one stream; a model pickled before the row count was
    kept counts five times its set-aside rows."""
    X, y, n_classes = _large_chunks()
    fitted = NearestMeanClassifier().fit(X, y)
    from_fit = sum(scored)
    assert from_fit <= 1.25 * calibration.scored_rows(n_classes)

    def stream(lo, hi):
        model = NearestMeanClassifier()
        for s in range(lo, hi, 40_000):
            model.partial_fit(X[s : s + 40_000], y[s : s + 40_000], classes=np.arange(n_classes))
        return model

    scored.clear()
    one = stream(0, len(y))
    old_pickle = stream(0, len(y))
    stream_temperature = one.temperature_
    assert sum(scored) == from_fit, scored
    assert stream_temperature == pytest.approx(fitted.temperature_, rel=0.01)

    scored.clear()
    merged = stream(0, 80_000).merge(stream(80_000, len(y)))
    assert merged.temperature_ == pytest.approx(stream_temperature, rel=1e-12)
    assert sum(scored) == from_fit, scored

    del old_pickle.__dict__["_pending_rows"]  # (as pickled before the count existed)
    assert old_pickle.temperature_ == pytest.approx(fitted.temperature_, rel=0.05)
