"""Progress with ``verbose``, silence without it, and warnings raised once at the user's call."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def _user_file(record) -> bool:
    return os.path.samefile(record.filename, __file__)


# ------------------------------------------------------------ last-layer refit
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_refit_shows_progress_while_it_runs(iris, capsys, monkeypatch):
    """The refit of the linear head (78 s on 15,000 x 384 rows and 150 classes on
    one thread) printed nothing until it ended: now a line when it starts and,
    rate-limited, one per ``_PROGRESS_SECONDS`` while it runs."""
    from skproto.proto import _last_layer

    X, y = iris
    monkeypatch.setattr(_last_layer, "_PROGRESS_SECONDS", 0.0)  # a line at every evaluation
    kw = dict(head="linear", max_epochs=2, last_layer_max_iter=20, random_state=0)
    ProtoClassifier(verbose=1, **kw).fit(X, y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[last layer]")]
    assert "refitting the weights of" in lines[0]
    progress = [ln for ln in lines if "evaluation" in ln]
    assert len(progress) >= 2 and all("loss" in ln for ln in progress)
    assert "L-BFGS iterations" in lines[-1]  # the summary still ends it


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_refit_progress_is_rate_limited_and_silent_without_verbose(iris, capsys):
    X, y = iris
    kw = dict(head="linear", max_epochs=2, last_layer_max_iter=50, random_state=0)
    quiet = ProtoClassifier(**kw).fit(X, y)
    assert capsys.readouterr() == ("", "")
    loud = ProtoClassifier(verbose=1, **kw).fit(X, y)
    out = capsys.readouterr().out
    # a refit of well under _PROGRESS_SECONDS: the start and the summary, no line per step
    assert sum(ln.startswith("[last layer]") for ln in out.splitlines()) == 2
    np.testing.assert_array_equal(quiet.predict_proba(X), loud.predict_proba(X))


# --------------------------------------------------------- "reached ..." lines
@pytest.mark.parametrize("Est", [ProtoClassifier, RBFPrototypeClassifier])
def test_partial_fit_does_not_claim_max_epochs(Est, iris, capsys):
    """Each partial_fit printed "reached max_epochs=1" for a model of max_epochs=30."""
    X, y = iris
    clf = Est(max_epochs=30, verbose=1, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))
    clf.partial_fit(X, y)
    out = capsys.readouterr().out
    assert "max_epochs=1" not in out
    assert out.count("[partial_fit] epoch") == 2  # one line per call's epoch


def test_refit_after_projection_names_project_epochs(iris, capsys):
    """RBFPrototypeClassifier's training after projection said "reached max_epochs=2"
    for max_epochs=5: its limit is project_epochs."""
    X, y = iris
    RBFPrototypeClassifier(
        project=True,
        omega_dim=2,
        max_epochs=5,
        project_epochs=2,
        n_iter_no_change=50,
        verbose=1,
        random_state=0,
    ).fit(X, y)
    out = capsys.readouterr().out
    assert "[after projection] reached project_epochs=2" in out
    assert "max_epochs=2" not in out


# ----------------------------------------------------- skproto.parallel: once
def test_fit_nearest_mean_column_vector_y_warns_once_at_the_user(iris):
    """Validated per block, a column-vector y raised scikit-learn's
    DataConversionWarning once per block, attributed to scikit-learn's file."""
    da = pytest.importorskip("dask.array")
    from sklearn.exceptions import DataConversionWarning

    from skproto.parallel import fit_nearest_mean

    X, y = iris
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = fit_nearest_mean(
            NearestMeanClassifier(), da.from_array(X, chunks=30), da.from_array(y[:, None], 30)
        )
    conversions = [w for w in caught if issubclass(w.category, DataConversionWarning)]
    assert len(conversions) == 1 and _user_file(conversions[0])
    assert len(caught) == 1
    np.testing.assert_allclose(clf.prototypes_, NearestMeanClassifier().fit(X, y).prototypes_)


def test_parallel_post_fit_feature_name_mismatch_warns_once_at_the_user(iris):
    """Predicting blocks raised scikit-learn's feature-name warning once per block."""
    pd = pytest.importorskip("pandas")
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    from skproto.parallel import ParallelPostFit

    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    expected = NearestMeanClassifier().fit(X, y).predict_proba(X)
    cases = [
        (frame, da.from_array(X, chunks=30), "does not have valid feature names"),
        (X, dd.from_pandas(frame, npartitions=5), "X has feature names"),
    ]
    for fit_X, lazy_X, message in cases:
        model = ParallelPostFit(NearestMeanClassifier()).fit(fit_X, y)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            proba = model.predict_proba(lazy_X).compute()
        assert len(caught) == 1, [str(w.message) for w in caught]
        assert message in str(caught[0].message) and _user_file(caught[0])
        np.testing.assert_allclose(proba, expected)
    # matching names (or none on both sides): no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ParallelPostFit(NearestMeanClassifier()).fit(frame, y).predict(
            dd.from_pandas(frame, npartitions=5)
        ).compute()
        ParallelPostFit(NearestMeanClassifier()).fit(X, y).predict(
            da.from_array(X, chunks=30)
        ).compute()
