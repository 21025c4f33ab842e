"""Audit of multi-label ``y`` end to end: the helpers that read a label indicator
(the metrics, the explanation plots and report, the calibration functions) refuse
one that is not of 0/1 values, as ``fit`` and scikit-learn's metrics do."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from skproto import ProtoClassifier, calibration
from skproto.explain import (
    EmbeddingDisplay,
    PrototypeGalleryDisplay,
    make_report,
    prototype_rows,
)
from skproto.metrics import prototype_purity

RNG = np.random.RandomState(0)
X = RNG.normal(size=(40, 4))
Y = (X[:, :3] + 0.5 * RNG.normal(size=(40, 3)) > 0).astype(int)
MESSAGE = "multi-label indicator matrix of 0/1 values"


@pytest.fixture(scope="module")
def multilabel():
    return ProtoClassifier(n_prototypes_per_class=2, max_epochs=2, random_state=0).fit(X, Y)


def _bad_indicators():
    with_nan = np.where(Y == 1, np.nan, 0.0)  # (read as y > 0: every label absent)
    frame = pd.DataFrame(Y).astype("Int64")
    frame.iloc[3, 1] = pd.NA
    return {
        "nan": with_nan,
        "two": Y * 2,
        "minus_one": Y * 2 - 1,
        "soft": Y * 0.7,
        "strings": Y.astype(str),
        "pandas_na": frame,
    }


BAD = _bad_indicators()


@pytest.mark.parametrize("bad", list(BAD))
def test_purity_refuses_an_indicator_of_other_values(multilabel, bad):
    # a NaN read as "no label" (purity 0.0), 2 or 0.7 as a label, silently; pandas'
    # NA failed with "boolean value of NA is ambiguous", strings with numpy's ufunc error
    with pytest.raises(ValueError, match=MESSAGE):
        prototype_purity(multilabel, X, BAD[bad])


@pytest.mark.parametrize("bad", ["nan", "two", "strings", "pandas_na"])
def test_the_gallery_the_map_and_the_representatives_refuse_it(multilabel, bad):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        for draw in (
            lambda: PrototypeGalleryDisplay.from_estimator(multilabel, X, BAD[bad]),
            lambda: EmbeddingDisplay.from_estimator(multilabel, X, BAD[bad]),
            lambda: prototype_rows(multilabel, X, BAD[bad]),
        ):
            with pytest.raises(ValueError, match=MESSAGE):
                draw()
    finally:
        plt.close("all")


@pytest.mark.parametrize("bad", ["nan", "two", "strings"])
def test_the_report_refuses_it_for_the_queries_and_the_training_rows(multilabel, bad):
    # the queries' y: a NaN row was marked right or wrong as if it carried no label
    with pytest.raises(ValueError, match=MESSAGE):
        make_report(multilabel, X[:5], BAD[bad][:5])
    with pytest.raises(ValueError, match=MESSAGE):
        make_report(multilabel, X[:5], X_train=X, y_train=BAD[bad])


def test_a_frame_of_int_and_bool_columns_is_still_an_indicator(multilabel):
    frame = pd.DataFrame({"a": Y[:, 0], "b": Y[:, 1].astype(bool), "c": Y[:, 2].astype(float)})
    assert np.asarray(frame).dtype == object
    expected = prototype_purity(multilabel, X, Y, aggregate=None)
    np.testing.assert_array_equal(prototype_purity(multilabel, X, frame, aggregate=None), expected)
    np.testing.assert_array_equal(
        prototype_purity(multilabel, X, Y.astype(bool), aggregate=None), expected
    )
    page = make_report(multilabel, X[:5], frame[:5], X_train=X, y_train=frame)
    assert page == make_report(multilabel, X[:5], Y[:5], X_train=X, y_train=Y)


@pytest.mark.parametrize("bad", ["nan", "two", "minus_one", "soft", "strings"])
def test_calibration_refuses_an_indicator_target_of_other_values(bad):
    # as the codes of a softmax are checked: a NaN target was a negative one (a
    # temperature of 65.9 where the 0/1 targets give 0.55), a soft 0.7 a positive
    S = RNG.normal(scale=3.0, size=Y.shape)
    with pytest.raises(ValueError, match=MESSAGE):
        calibration.fit_temperature(S, BAD[bad])
    with pytest.raises(ValueError, match=MESSAGE):
        calibration.temperature_log_loss(S, BAD[bad], None, 1.0)


def test_calibration_takes_a_bool_or_float_indicator():
    S = RNG.normal(scale=3.0, size=Y.shape)
    t = calibration.fit_temperature(S, Y)
    assert calibration.fit_temperature(S, Y.astype(bool)) == t
    assert calibration.fit_temperature(S, Y.astype(np.float32)) == t


def test_one_label_per_row_is_refused_for_a_multi_label_model(multilabel):
    # the report refused it for its queries, but the gallery, purity and y_train read
    # the 0/1 column of label 0 as the labels 0 and 1: label 0's prototypes counted
    # the rows without label 0 as their own (purity 0.3 where it is 0.7), silently
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = Y[:, 0]
    try:
        for call in (
            lambda: prototype_purity(multilabel, X, column),
            lambda: prototype_rows(multilabel, X, column),
            lambda: PrototypeGalleryDisplay.from_estimator(multilabel, X, column),
            lambda: EmbeddingDisplay.from_estimator(multilabel, X, column),
            lambda: make_report(multilabel, X[:5], X_train=X, y_train=column),
        ):
            with pytest.raises(ValueError, match="the model is multi-label"):
                call()
    finally:
        plt.close("all")
    # a single-label model still takes one label per row
    single = ProtoClassifier(n_prototypes_per_class=2, max_epochs=2, random_state=0)
    assert 0 <= prototype_purity(single.fit(X, column), X, column) <= 1


def test_a_stream_s_wrong_label_layout_is_named_with_both_shapes():
    """partial_fit's refusal of a y whose layout is not the first fit's said only
    "does not match the label layout seen in the first fit": it now names the
    layout seen and the shape given (a multi-label audit's remark)."""
    X, y = load_iris(return_X_y=True)
    Y = np.eye(3, dtype=int)[y]
    Y[::4, (y[::4] + 1) % 3] = 1
    clf = ProtoClassifier(head="linear", max_epochs=1, random_state=0).fit(X, Y)
    seen = r"an indicator of 3 labels, shape \(n_samples, 3\)"
    with pytest.raises(ValueError, match=seen + r"; got y of shape \(150, 2\)\."):
        clf.partial_fit(X, Y[:, :2])
    with pytest.raises(ValueError, match=seen + r"; got y of shape \(150,\)\."):
        clf.partial_fit(X, y)


def test_the_dask_fit_names_the_whole_multilabel_y_it_refuses():
    """fit_nearest_mean refused a 2-D y with a block's shape, "(20, 3)", from inside
    a block's validation; it now names the whole y's, as fit does (a multi-label
    audit's remark)."""
    da = pytest.importorskip("dask.array")
    from skproto import NearestMeanClassifier
    from skproto.parallel import fit_nearest_mean

    X = np.random.RandomState(0).normal(size=(100, 4))
    Y = np.eye(3, dtype=int)[np.arange(100) % 3]
    message = r"y should be a 1d array, got an array of shape \(100, 3\) instead\."
    with pytest.raises(ValueError, match=message):
        NearestMeanClassifier().fit(X, Y)
    with pytest.raises(ValueError, match=message):
        fit_nearest_mean(NearestMeanClassifier(), da.from_array(X, chunks=20), Y)
    with pytest.raises(ValueError, match=message):
        fit_nearest_mean(
            NearestMeanClassifier(), da.from_array(X, chunks=20), da.from_array(Y, chunks=20)
        )
