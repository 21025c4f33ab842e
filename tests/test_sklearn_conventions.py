"""scikit-learn conventions that the estimator checks do not reach at the defaults."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris, make_classification
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import MultiOutputClassifier
from sklearn.utils.estimator_checks import check_estimators_partial_fit_n_features

from skproto import NearestMeanClassifier, ProtoClassifier


@pytest.mark.parametrize(
    "params",
    [{"prototype_kind": "support"}, {"prototype_kind": "both"}, {"n_tokens": 2}],
)
def test_no_partial_fit_where_every_call_would_raise(params):
    # as MLPClassifier(solver="lbfgs"): a partial_fit that always raised was
    # offered, so wrappers offered it too and sklearn's checks called it (after
    # fit, check_fit_score_takes_y and check_estimators_partial_fit_n_features
    # failed for prototype_kind="both")
    clf = ProtoClassifier(max_epochs=2, random_state=0, **params)
    assert not hasattr(clf, "partial_fit")
    assert not hasattr(OneVsRestClassifier(clf), "partial_fit")
    assert not hasattr(MultiOutputClassifier(clf), "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit") as refused:
        clf.partial_fit(*load_iris(return_X_y=True))
    assert "partial_fit" in str(refused.value.__cause__)  # (why: the cause)
    check_estimators_partial_fit_n_features("ProtoClassifier", clf)  # (skipped: none)


@pytest.mark.parametrize(
    "params", [{}, {"head": "linear"}, {"head": "linear", "prototype_kind": "support"}]
)
def test_partial_fit_stays_where_it_streams(params):
    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(max_epochs=2, random_state=0, **params)
    assert hasattr(clf, "partial_fit")
    assert clf.partial_fit(X, y, classes=[0, 1, 2]).classes_.tolist() == [0, 1, 2]
    assert callable(clf.set_partial_fit_request)


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_html_repr_between_partial_fit_calls_changes_nothing(metric):
    # a notebook displays what a cell's last line returns: clf.partial_fit(...)
    # showed the HTML repr, which read get_feature_names_out and every fitted
    # property, and so scored the rows the stream had set aside (the temperature
    # ended 10% off fit's, Mahalanobis)
    X, y = make_classification(
        n_samples=400, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    shown, plain = NearestMeanClassifier(metric=metric), NearestMeanClassifier(metric=metric)
    for rows in np.array_split(np.arange(len(X)), 4):
        plain.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        html = shown.partial_fit(X[rows], y[rows], classes=[0, 1, 2])._repr_html_()
        if hasattr(BaseEstimator, "_get_fitted_attr_html"):  # (not in scikit-learn 1.6)
            assert "temperature_" in html  # (the fitted attributes are still listed)
        shown.get_feature_names_out()
    assert shown.temperature_ == plain.temperature_
    np.testing.assert_allclose(
        shown.temperature_, NearestMeanClassifier(metric=metric).fit(X, y).temperature_
    )
    np.testing.assert_array_equal(shown.predict_proba(X), plain.predict_proba(X))


def test_nearest_mean_small_temperature_check_failure_is_documented():
    # NearestMeanClassifier(temperature=0.01) fails check_classifiers_train on float32
    # rows: probabilities below float32's smallest subnormal are 0, whose log
    # predict_log_proba gives as its finite floor, where the check asks for -inf;
    # docs/api.md lists the settings that fail a check, and did not list this one
    from pathlib import Path

    from sklearn.utils.estimator_checks import check_classifiers_train

    clf = NearestMeanClassifier(temperature=0.01)
    check_classifiers_train("NearestMeanClassifier", clf)  # (float64 rows pass)
    with pytest.raises(AssertionError, match="inf location mismatch"):
        check_classifiers_train("NearestMeanClassifier", clf, X_dtype="float32")
    check_classifiers_train(
        "NearestMeanClassifier", NearestMeanClassifier(temperature=0.1), X_dtype="float32"
    )
    api = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text("utf-8")
    settings = api.split("## Shared classifier interface")[1].split("All prediction methods")[0]
    assert "`NearestMeanClassifier(temperature=0.01)`" in " ".join(settings.split())
    assert "check_classifiers_train` on float32" in " ".join(settings.split())
