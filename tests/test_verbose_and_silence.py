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
    rate-limited, one per ``PROGRESS_SECONDS`` while it runs."""
    from skproto import _progress

    X, y = iris
    monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 0.0)  # a line at every evaluation
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
    # a refit of well under PROGRESS_SECONDS: the start and the summary, no line per step
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


# ------------------------------------------------------ NearestMeanClassifier
def _lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.startswith("[NearestMeanClassifier]")]


@pytest.mark.parametrize(
    "params, steps",
    [
        ({}, ["statistics of 150 rows of 3 classes", "held-out rows", "fitted: temperature"]),
        ({"temperature": 2.0}, ["statistics of 150 rows of 3 classes", "fitted: temperature 2"]),
        (
            {"metric": "mahalanobis", "covariance": "per_class"},
            ["statistics", "factored the covariances of 3 classes", "held-out rows", "fitted"],
        ),
    ],
)
def test_nearest_mean_fit_prints_its_steps_with_verbose_only(iris, capsys, params, steps):
    """NearestMeanClassifier had no verbose: a per-class Mahalanobis fit of CLINC150
    ran 6-20 s (minutes for thousands of classes) without a word."""
    X, y = iris
    quiet = NearestMeanClassifier(**params).fit(X, y)
    assert capsys.readouterr() == ("", "")
    loud = NearestMeanClassifier(verbose=1, **params).fit(X, y)
    lines = _lines(capsys.readouterr().out)
    for step in steps:  # in this order, each with its time
        at = next(i for i, ln in enumerate(lines) if step in ln)
        assert lines[at].endswith("s)")
        lines = lines[at + 1 :]
    np.testing.assert_array_equal(quiet.predict_proba(X), loud.predict_proba(X))


def test_nearest_mean_per_class_covariances_show_progress(iris, capsys, monkeypatch):
    from skproto import _progress

    X, y = iris
    monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 0.0)  # a line at every class
    NearestMeanClassifier("mahalanobis", covariance="per_class", verbose=1).fit(X, y)
    lines = _lines(capsys.readouterr().out)
    assert any("class covariances: 2 of 3" in ln for ln in lines)
    assert any("scoring held-out rows" in ln for ln in lines)


def test_nearest_mean_partial_fit_prints_a_line_per_call_and_predict_none(iris, capsys):
    X, y = iris
    clf = NearestMeanClassifier("mahalanobis", verbose=1)
    for rows in np.array_split(np.random.default_rng(0).permutation(len(X)), 3):
        clf.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == 3 and "statistics of 50 more rows (3 classes" in lines[0]
    clf.predict_proba(X)  # (the model is derived here, lazily: silent)
    assert capsys.readouterr() == ("", "")


def test_nearest_mean_verbose_is_a_runtime_parameter(iris, capsys):
    """Setting verbose on a fitted model changes nothing it learnt, and an old pickle
    (before the parameter existed) reads verbose=0 instead of failing get_params."""
    import pickle

    X, y = iris
    clf = NearestMeanClassifier("mahalanobis").fit(X, y)
    before = clf.predict_proba(X)
    clf.set_params(verbose=1)
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    assert capsys.readouterr() == ("", "")
    state = clf.__getstate__()
    del state["verbose"]
    old = NearestMeanClassifier.__new__(NearestMeanClassifier)
    old.__setstate__(state)
    assert old.get_params()["verbose"] == 0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(old)).predict_proba(X), before)


def test_progress_belongs_to_its_thread():
    """A fit printing in one thread does not make another thread's work print."""
    import threading

    from skproto import _progress

    seen = []
    with _progress.reporting("A", 1) as report:
        assert _progress.current() is report
        other = threading.Thread(target=lambda: seen.append(_progress.current()))
        other.start()
        other.join()
    assert seen == [None] and _progress.current() is None


def test_fit_nearest_mean_on_dask_prints_with_verbose(iris, capsys):
    da = pytest.importorskip("dask.array")
    import dask

    from skproto.parallel import fit_nearest_mean

    X, y = iris
    with dask.config.set(scheduler="synchronous"):
        fit_nearest_mean(NearestMeanClassifier(), da.from_array(X, chunks=50), y)
        assert capsys.readouterr() == ("", "")
        fit_nearest_mean(NearestMeanClassifier(verbose=1), da.from_array(X, chunks=50), y)
    lines = _lines(capsys.readouterr().out)
    assert "statistics of 3 blocks, merged" in lines[0] and "fitted" in lines[-1]


def test_fit_streaming_shows_progress_within_an_epoch(iris, capsys, monkeypatch):
    """A streamed epoch printed one line when it had ended (hours over a large
    array); now a rate-limited line per window, and one per nearest-row search."""
    da = pytest.importorskip("dask.array")
    import dask

    from skproto import _progress
    from skproto.parallel import fit_streaming

    X, y = iris
    Xd, yd = da.from_array(X, chunks=25), da.from_array(y, chunks=25)
    kw = dict(max_epochs=1, random_state=0)
    with dask.config.set(scheduler="synchronous"):
        quiet = fit_streaming(ProtoClassifier(**kw), Xd, yd, window_blocks=1)
        assert capsys.readouterr() == ("", "")
        monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 0.0)  # a line at every window
        loud = fit_streaming(ProtoClassifier(verbose=1, **kw), Xd, yd, window_blocks=1)
    out = capsys.readouterr().out.splitlines()
    streamed = [ln for ln in out if "rows streamed, loss" in ln]
    assert streamed[0].startswith("[fit] epoch 1: ") and len(streamed) >= 3
    assert any(ln.startswith("[ProtoClassifier] nearest rows of 15 prototypes") for ln in out)
    np.testing.assert_array_equal(quiet.predict_proba(X), loud.predict_proba(X))


def test_nearest_mean_merge_ignores_verbose(iris):
    """verbose only says how to run: models fitted with and without it merged with
    "cannot merge models with different settings: verbose=1 vs verbose=0"."""
    X, y = iris
    loud = NearestMeanClassifier(verbose=1).fit(X[::2], y[::2])
    quiet = NearestMeanClassifier().fit(X[1::2], y[1::2])
    merged = loud.merge(quiet)
    assert merged.verbose == 1
    np.testing.assert_array_equal(
        merged.predict_proba(X),
        NearestMeanClassifier().fit(X[::2], y[::2]).merge(quiet).predict_proba(X),
    )
    with pytest.raises(ValueError, match="different settings: temperature"):
        loud.merge(NearestMeanClassifier(temperature=2.0).fit(X[1::2], y[1::2]))
