"""Second review of the no-movement warning (5796e99, 6183281): a first epoch whose
every gradient was 0 blamed a scale "too small for the data's distances" also where
every scale was at its "auto" value, fitted to the data: there the loss is flat at
the start because of the data (copies of a row with different labels, a constant
X), at default parameters too. Each test failed on 6e9cc01."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skproto import ProtoClassifier, RBFPrototypeClassifier

_COPIES = np.array([[1.0, 2.0], [1.0, 2.0]]), np.array([0, 1])


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProtoClassifier(random_state=0),
        lambda: RBFPrototypeClassifier(loss="glvq", random_state=0),
        lambda: RBFPrototypeClassifier(loss="cbc", random_state=0),
    ],
    ids=["proto-defaults", "rbf-glvq", "rbf-cbc"],
)
def test_a_first_batch_of_copies_with_different_labels_trains_silently(make):
    """Two copies of one row, labelled 0 and 1: the batch's loss is at its least
    where the model starts (ProtoClassifier's ln 2, GLVQ's 0.5: sigmoid(2 mu) +
    sigmoid(-2 mu) is 1 everywhere), every gradient is 0 and nothing is wrong.
    ProtoClassifier at its defaults warned that "a scale that is too small for the
    data's distances (sigma, rbf_width, temperature)" underflowed every gradient,
    each of them at "auto". Defaults are silent."""
    X, y = _COPIES
    clf = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X, y, classes=[0, 1])
    assert clf.n_iter_ == 1


def test_glvq_on_a_constant_X_does_not_blame_a_scale():
    """A constant X leaves GLVQ's loss at 0.5 for any parameter: it warned that a
    scale (sigma, which GLVQ does not read, rbf_width, temperature) underflowed."""
    X, y = np.ones((20, 3)), np.arange(20) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        RBFPrototypeClassifier(loss="glvq", random_state=0).fit(X, y)


def test_the_warning_names_the_scale_that_was_given():
    """At sigma=1e-3 on far iris (test_review_session46_round2) the CBC head's every
    gradient underflows: the warning named "sigma, rbf_width, temperature", two
    parameters RBFPrototypeClassifier does not train with (rbf_width is
    ProtoClassifier's; its temperature is fitted after training). It names sigma."""
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    keep = y < 3
    X, y = X[keep] + 1000.0 * y[keep][:, None], y[keep]
    clf = RBFPrototypeClassifier(
        loss="cbc", reasoning="positive", sigma=1e-3, max_epochs=3, random_state=0
    )
    with pytest.warns(ConvergenceWarning, match="every gradient was 0") as caught:
        clf.fit(X, y)
    message = str(caught[0].message)
    assert "too small for the data's distances (sigma) makes" in message
