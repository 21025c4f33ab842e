"""Regression tests from a review of the inference folds, the Woodbury background,
the warnings and the scikit-learn conventions (c44d4c3..a37aaf2)."""

import copy
import pickle
import warnings

import numpy as np
from sklearn.datasets import load_iris

from skproto import NearestMeanClassifier, RBFPrototypeClassifier


def test_shared_mahalanobis_pickled_before_background_map_scores_samples():
    # a model pickled before the Woodbury background held background_whiten in
    # its derived _Model and no background_map: score_samples read the field's
    # default, None, and raised AttributeError ('NoneType' ... 'astype')
    X, y = load_iris(return_X_y=True)
    clf = NearestMeanClassifier(metric="mahalanobis").fit(X, y)
    expected = clf.score_samples(X)
    old = copy.copy(clf._fitted)
    state = vars(old)
    state["background_whiten"] = state.pop("background_map")  # (the model as pickled then)
    clf.__dict__["_model"] = old
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(loaded.score_samples(X), expected, rtol=1e-12)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def _step_warnings(X, y, learning_rate=1e-3):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RBFPrototypeClassifier(max_epochs=1, random_state=0, learning_rate=learning_rate).fit(X, y)
    return [w for w in caught if "float32's spacing" in str(w.message)]


def test_rbf_step_warning_ignores_a_constant_column_far_out():
    # a column constant at 2**22 beside iris: the components start at that value
    # and never need a step there (digits beside such a column trained to the
    # same 0.980), but fit warned that training barely moves them
    # (the components now train about the rows' mean: every column out there is
    # no longer warned of either; a step too small for their spread about it is)
    X, y = load_iris(return_X_y=True)
    assert not _step_warnings(np.hstack([X, np.full((len(X), 1), 2.0**22)]), y)
    assert not _step_warnings(X + 2.0**22, y)
    far = np.hstack([X, np.full((len(X), 1), 2.0**22)])
    assert len(_step_warnings(far, y, learning_rate=1e-10)) == 1
