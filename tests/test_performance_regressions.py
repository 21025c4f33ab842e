"""Performance regressions found by an audit of recent commits, held by counts that
do not depend on the machine's speed (each test fails on the code before the fix).

Measured on CLINC150 (MiniLM features, 15,000 x 384), one thread, fresh
processes: ``make_report`` of 200 queries of a Mahalanobis
NearestMeanClassifier took 0.18 s at 09e6e83 and 0.43-0.48 s after it. Two
commits: the explanation helpers imported :mod:`skproto.parallel` (and
scikit-learn's clustering with it) at a process's first report, for one check of
a dask frame (20a7ef0); and each waterfall's SVG placed its 17 coordinates with
``np.isnan`` and ``np.clip`` on numpy scalars (e57eee0).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier
from skproto.explain import _report
from skproto.explain._steps import waterfall


def test_make_report_does_not_import_the_parallel_package():
    """A first ``make_report`` that searched a class's rows for its prototype's
    representative imported skproto.parallel (about 170 ms in a process that had
    not) to ask whether the training rows are a dask frame."""
    code = textwrap.dedent(
        """
        import sys
        from sklearn.datasets import load_iris
        from skproto import NearestMeanClassifier
        import numpy as np
        from skproto.explain import make_report, prototype_rows
        X, y = load_iris(return_X_y=True)
        clf = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
        make_report(clf, X[:5], y[:5], X_train=X, y_train=y)
        # a class none of whose 10 nearest rows is its own is searched row by row
        # (CLINC150, Mahalanobis: a first report spent 170 ms importing)
        neighbors = np.array([np.flatnonzero(y != c)[:10] for c in clf.classes_])
        rows = prototype_rows(clf, X, y, neighbors=neighbors)
        assert (y[rows] == clf.classes_).all(), rows
        print(sorted(m for m in ("skproto.parallel", "sklearn.cluster") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_report_svg_places_coordinates_without_numpy_scalar_calls(monkeypatch):
    """Each coordinate went through np.isnan and np.clip on a numpy scalar (about
    6 us a call, 17 coordinates a waterfall): a fifth of make_report's time."""
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    w = waterfall(clf.explain(X[[0, 60, 120]], 3), 1)
    expected = _report._svg(w)
    calls = {"clip": 0, "isnan": 0}
    clip, isnan = np.clip, np.isnan

    def counted_clip(*args, **kwargs):
        calls["clip"] += 1
        return clip(*args, **kwargs)

    def counted_isnan(*args, **kwargs):
        calls["isnan"] += 1
        return isnan(*args, **kwargs)

    monkeypatch.setattr(np, "clip", counted_clip)
    monkeypatch.setattr(np, "isnan", counted_isnan)
    assert _report._svg(w) == expected
    assert calls == {"clip": 0, "isnan": 0}
