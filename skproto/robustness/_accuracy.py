"""Certified accuracy of any estimator with a ``certified_radius`` method."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validation import is_real_number

__all__ = ["certified_accuracy"]


def certified_accuracy(
    estimator: Any, X: ArrayLike, y: ArrayLike, eps: float | ArrayLike
) -> np.ndarray | float:
    """Fraction of samples classified correctly with a certified radius above ``eps``.

    Parameters
    ----------
    estimator : estimator
        Fitted RBFPrototypeClassifier, or any estimator with a
        ``certified_radius(X, y)`` method. Not a Pipeline: a radius holds in
        the space the classifier sees, not in the space of the pipeline's
        input; pass ``pipe[-1]`` and ``pipe[:-1].transform(X)``.
    X : array-like of shape (n_samples, n_features)
        Samples.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float or array-like of floats
        Perturbation budget(s) in L2 norm.

    Returns
    -------
    accuracy : float or ndarray of shape (n_eps,)
        Certified accuracy at each ``eps`` (a float for a scalar ``eps``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import RBFPrototypeClassifier, certified_accuracy
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RBFPrototypeClassifier(loss="glvq", max_epochs=30, random_state=0).fit(X, y)
    >>> acc = certified_accuracy(clf, X, y, [0.0, 0.1, 10.0])
    >>> bool(acc[0] >= acc[1] >= acc[2] == 0.0)
    True
    """
    raw = np.asarray(eps)
    # each value checked (a True among floats, [0.1, True], came back as 1.0; a
    # Fraction or an int beyond int64, real numbers, were refused as object)
    values = np.asarray(eps, dtype=object).ravel() if raw.ndim <= 1 else ()
    if raw.ndim > 1 or not all(is_real_number(v) for v in values):
        # (a 2-D eps came back flattened, not (n_eps,); True read as a budget of 1.0)
        raise ValueError(f"eps must be a number or a 1-D array-like of numbers; got {eps!r}.")
    eps_arr = np.asarray(values, dtype=float).reshape(raw.shape)
    if not np.all(np.isfinite(eps_arr) & (eps_arr >= 0)):
        # (a negative eps counted misclassified samples, of radius 0, as certified)
        raise ValueError(f"eps must be finite and non-negative; got {eps!r}.")
    if not hasattr(estimator, "certified_radius"):  # (an AttributeError, for a Pipeline)
        final = getattr(estimator, "steps", None)
        hint = (
            " A radius holds in the space its classifier sees: pass pipe[-1] and "
            "pipe[:-1].transform(X)."
            if final
            else ""
        )
        raise ValueError(
            f"certified_accuracy needs an estimator with a certified_radius method, got "
            f"{type(estimator).__name__}.{hint}"
        )
    if y is None:  # (certified_radius(X, None) certifies the predictions: a
        # misclassified row counted as certified)
        raise ValueError(
            "certified_accuracy needs y, the true labels of X: only correctly "
            "classified rows can count as certified."
        )
    radius = estimator.certified_radius(X, y)
    acc = (radius[None, :] > eps_arr.reshape(-1, 1)).mean(axis=1)
    return float(acc[0]) if eps_arr.ndim == 0 else acc
