"""Review of the temperature calibration in row chunks (commit b684b1f).

The chunked grid functions were compared with the parent commit on random
inputs (float64, float32, float16, int and list scores; -inf columns and rows;
NaN; weights of 0; flat, uneven and -inf priors; scores of 1e30 and 1e-30;
empty inputs; one row; windows far from the unit scale; many chunks): one chunk
gave identical results and errors, several agreed to rounding. The one
regression found is in NearestMeanClassifier's progress lines.
"""

from __future__ import annotations

import re

import numpy as np

from skproto import NearestMeanClassifier


def test_held_out_progress_counts_each_pass_once(capsys, monkeypatch):
    """Held-out rows scored in several chunks with no temperature window yet are
    scored twice (the window is placed by every row's scores first): the progress
    lines named both passes "scoring held-out rows", so the count ran to the end
    and started again ("19 of 19", then "5 of 19")."""
    from skproto import _progress

    monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 0.0)  # a line at every chunk
    monkeypatch.setattr("skproto._chunking.CHUNK_ELEMENTS", 50)  # 5 rows of 10 classes
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 60)
    X = rng.normal(size=(60, 3)) + 0.1 * y[:, None]
    NearestMeanClassifier(verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    counts = [
        (int(m.group(1)), int(m.group(2)))
        for ln in lines
        if (m := re.search(r"scoring held-out rows: (\d+) of (\d+)", ln))
    ]
    assert len(counts) > 1, lines
    done = [c[0] for c in counts]
    assert done == sorted(set(done)), lines  # counted up once, not twice over
    assert done[-1] == counts[-1][1], lines
    # the pass that places the window still shows its progress, under its own name
    assert any("placing the temperature window" in ln for ln in lines), lines


def test_grid_log_loss_without_rows_to_score_casts_no_prior(recwarn):
    """With no row to score (none, or all of weight 0) the sums are 0 without a
    warning: the chunked grid_log_loss cast an uneven log prior to float32 before
    it knew whether any row was left, which overflowed (RuntimeWarning, or an error
    under np.seterr(over="raise")) for a finite log prior beyond float32's range,
    where the parent commit returned zeros."""
    from skproto import calibration as cal

    log_prior = np.array([0.0, -1e39])
    cases = [
        (np.zeros((0, 2)), np.array([], dtype=int), None),
        (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]), np.zeros(2)),
    ]
    with np.errstate(over="raise"):
        for D, T, w in cases:
            sums, total = cal.grid_log_loss(D, log_prior, T, w)
            assert total == 0.0
            np.testing.assert_array_equal(sums, np.zeros((2, len(cal.TEMPERATURE_GRID))))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
