"""Behaviour of RBFPrototypeClassifier: certificates, reasoning, faithfulness, errors."""

import pickle

import numpy as np
import pytest
import torch
from helpers import (
    CLINC150_NPZ,
    assert_explain_faithful,
    examples,
    few_shot_blobs,
    record_training,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from skproto import RBFPrototypeClassifier, certified_accuracy

FAST = dict(max_epochs=15, batch_size=32, random_state=0)

CONFIGS = [
    dict(),  # the defaults: loss="robust", the nearest head
    dict(loss="cbc"),
    dict(loss="cbc", reasoning="positive"),
    dict(loss="robust", reasoning="positive", n_components=6),
    dict(loss="glvq", n_components=6),
    dict(loss="glvq", omega_dim=2),
    dict(loss="robust", reasoning="nearest", n_components=5, omega_dim=3),
    dict(loss="cbc", omega_dim=3, n_components=2),
    dict(loss="cbc", project=True),
]


@st.composite
def blobs(draw, min_per_class=2):
    seed = draw(st.integers(0, 2**32 - 1))
    n_classes = draw(st.integers(2, 4))
    per_class = draw(st.integers(min_per_class, 12))
    n_features = draw(st.integers(2, 5))
    spread = draw(st.floats(0.5, 4.0))
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    X = rng.normal(scale=spread, size=(n_classes, n_features))[y] + rng.normal(
        size=(len(y), n_features)
    )
    return X, y, seed


def _scores(net, x):
    return net.class_scores(net.detections(x))


def _attacks(clf, x, radius, rng):
    """Perturbations of norm 0.999 * radius: random, toward wrong-class components, gradient."""
    r = 0.999 * radius
    pred = np.searchsorted(clf.classes_, clf.predict(x[None]))[0]
    deltas = [v / np.linalg.norm(v) * r for v in rng.normal(size=(20, x.size))]
    for k in np.flatnonzero(clf.prototype_labels_ != clf.classes_[pred]):
        v = clf.prototypes_[k] - x
        if np.linalg.norm(v) > 0:
            deltas.append(v / np.linalg.norm(v) * r)
    net = clf._inference_network()
    for j in range(len(clf.classes_)):  # projected gradient ascent on p_j - p_pred
        if j == pred:
            continue
        delta = torch.zeros(x.size, dtype=torch.float64, requires_grad=True)
        xt = torch.as_tensor(x)
        for _ in range(25):
            s = _scores(net, (xt + delta)[None])[0]
            gap = s[j] - s[pred]
            (g,) = torch.autograd.grad(gap, delta)
            with torch.no_grad():
                if g.norm() > 0:
                    delta += 0.25 * r * g / g.norm()
                if delta.norm() > r:
                    delta *= r / delta.norm()
        deltas.append(delta.detach().numpy())
    return np.array(deltas)


@pytest.mark.parametrize("params", CONFIGS)
@settings(max_examples=examples(8), deadline=None)
@given(data=blobs())
def test_no_perturbation_below_the_certified_radius_changes_the_prediction(params, data):
    X, y, seed = data
    clf = RBFPrototypeClassifier(**FAST, **params).fit(X, y)
    radius = clf.certified_radius(X)
    assert np.all(radius >= 0)
    rng = np.random.default_rng(seed)
    pred = clf.predict(X)
    for i in rng.permutation(len(X))[:6]:
        if radius[i] <= 0:
            continue
        deltas = _attacks(clf, X[i], radius[i], rng)
        assert np.all(np.linalg.norm(deltas, axis=1) <= radius[i] * (1 + 1e-9))
        np.testing.assert_array_equal(clf.predict(X[i] + deltas), pred[i])


@settings(max_examples=examples(20), deadline=None)
@given(data=blobs())
def test_bisector_bound_is_attained_with_one_component_per_class(data):
    X, y, _ = data
    clf = RBFPrototypeClassifier(loss="glvq", **FAST).fit(X, y)
    W, labels = clf.prototypes_, clf.prototype_labels_
    radius = clf.certified_radius(X)
    pred = clf.predict(X)
    d2 = ((X[:, None, :] - W[None]) ** 2).sum(-1)
    hm = np.sqrt(d2)
    for i in np.flatnonzero(radius > 0):
        own = np.flatnonzero(labels == pred[i])[0]
        others = np.flatnonzero(labels != pred[i])
        gap = np.linalg.norm(W[others] - W[own], axis=1)
        bound = (d2[i, others] - d2[i, own]) / (2 * gap)
        np.testing.assert_allclose(radius[i], bound.min(), rtol=1e-9)
        # never below the hypothesis margin (d- - d+) / 2
        assert radius[i] >= (hm[i, others].min() - hm[i, own]) / 2 - 1e-12
        j = others[np.argmin(bound)]
        step = (W[j] - W[own]) / np.linalg.norm(W[j] - W[own])
        assert clf.predict((X[i] + 1.001 * radius[i] * step)[None])[0] != pred[i]
        assert clf.predict((X[i] + 0.999 * radius[i] * step)[None])[0] == pred[i]


@pytest.mark.parametrize("params", CONFIGS)
@settings(max_examples=examples(8), deadline=None)
@given(data=blobs())
def test_explain_reproduces_the_class_scores(params, data):
    X, y, _ = data
    clf = RBFPrototypeClassifier(**FAST, **params).fit(X, y)
    ex = clf.explain(X, n_prototypes=2)
    assert_explain_faithful(clf, X, ex, atol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0)
    if ex.parts is not None:  # presence + absence = contribution
        np.testing.assert_allclose(ex.parts["presence"] + ex.parts["absence"], ex.contribution)


@pytest.mark.parametrize("params", CONFIGS)
def test_reasoning_weights_are_a_distribution_per_class(params):
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(**FAST, **params).fit(X, y)
    rp, rn = clf.reasoning_positive_, clf.reasoning_negative_
    assert rp.shape == rn.shape == (len(clf.prototypes_), 3)
    assert np.all(rp >= 0) and np.all(rn >= 0)
    if clf._head_kind == "nearest":  # no reasoning: r+ is the 0/1 class membership
        np.testing.assert_array_equal(rp, clf.prototype_labels_[:, None] == clf.classes_)
        assert np.all(rn == 0)
        return
    np.testing.assert_allclose((rp + rn).sum(0), 1.0)
    if params.get("reasoning") == "positive":
        assert np.all(rn == 0)


def test_iris_accuracy_and_certified_accuracy():
    X, y = load_iris(return_X_y=True)
    for loss in ["cbc", "robust", "glvq"]:
        clf = RBFPrototypeClassifier(loss=loss, n_components=6, max_epochs=60, random_state=0).fit(
            X, y
        )
        assert clf.score(X, y) > 0.9, loss
        acc = certified_accuracy(clf, X, y, [0.0, 0.1, 10.0])
        assert acc[0] <= clf.score(X, y) and acc[0] >= acc[1] >= acc[2] == 0.0
        assert certified_accuracy(clf, X, y, 0.1) == acc[1]
    # a Pipeline raised an AttributeError; its radii would not hold in X's space
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), clf)
    with pytest.raises(ValueError, match=r"got Pipeline\. A radius holds in the space its"):
        certified_accuracy(pipe, X, y, 0.1)


def test_robust_training_enlarges_the_certificate():
    X, y = load_iris(return_X_y=True)
    common = dict(n_components=6, max_epochs=80, random_state=0)
    plain = RBFPrototypeClassifier(loss="cbc", **common).fit(X, y)
    robust = RBFPrototypeClassifier(loss="robust", margin=1.0, **common).fit(X, y)
    assert certified_accuracy(robust, X, y, 0.5) > certified_accuracy(plain, X, y, 0.5) + 0.03
    assert robust.margin_ == 1.0


@given(
    radius=st.floats(-3.0, 3.0, allow_nan=False),
    margin=st.sampled_from([0.0, 0.25, 1.0, 2.5]),
)
@settings(deadline=None, max_examples=40)
def test_certified_hinge_is_the_hinge_averaged_over_radii(radius, margin):
    # the robust loss is the mean of max(0, rho - r) over rho uniform on [0, margin]
    from skproto.losses import certified_hinge

    got = float(certified_hinge(torch.tensor([radius], dtype=torch.float64), margin)[0])
    if margin == 0:
        expected = max(0.0, -radius)
    else:
        rho = (np.arange(200_000) + 0.5) / 200_000 * margin  # midpoint rule
        expected = float(np.maximum(rho - radius, 0.0).mean())
    assert got == pytest.approx(expected, abs=1e-6)


def test_certified_hinge_pulls_misclassified_samples_hardest():
    from skproto.losses import certified_hinge

    r = torch.tensor([-0.5, 0.0, 0.25, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
    certified_hinge(r, 0.5).sum().backward()
    # slope -1 below 0, -(margin - r) / margin inside, 0 beyond the margin
    np.testing.assert_allclose(r.grad.numpy(), [-1.0, -1.0, -0.5, 0.0, 0.0])


def test_projection_names_training_rows_and_determinism():
    X, y = load_iris(return_X_y=True)
    a = RBFPrototypeClassifier(loss="glvq", n_components=6, project=True, **FAST).fit(X, y)
    idx = a.prototype_sample_indices_
    np.testing.assert_array_equal(a.prototypes_, X[idx])
    np.testing.assert_array_equal(y[idx], a.prototype_labels_)
    b = RBFPrototypeClassifier(loss="glvq", n_components=6, project=True, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.certified_radius(X), a.certified_radius(X))


def test_errors():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(UserWarning, match="at least one component per class"):
        clf = RBFPrototypeClassifier(loss="glvq", n_components=2, **FAST).fit(X, y)
    assert len(clf.prototypes_) == 3
    with pytest.raises(ValueError, match="nearest-prototype head; got reasoning='positive'"):
        RBFPrototypeClassifier(loss="glvq", reasoning="positive", **FAST).fit(X, y)
    clf = RBFPrototypeClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="not in classes_"):
        clf.certified_radius(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="labels for"):
        clf.certified_radius(X[:3], [0, 1])
    with pytest.raises(ValueError, match="X has 2 features"):
        clf.certified_radius(X[:, :2])
    with pytest.raises(ValueError, match="at least 2 classes"):
        RBFPrototypeClassifier(**FAST).fit(X[y == 0], y[y == 0])


def reference_cbc_radius(clf, X):
    """Theorem 1 of stable CBC, written from the public attributes alone."""
    W, rp, rn, sigma = clf.prototypes_, clf.reasoning_positive_, clf.reasoning_negative_, clf.sigma_
    omega = np.eye(X.shape[1]) if clf.omega_ is None else clf.omega_
    L = np.linalg.norm(omega, ord=2)
    dist = np.linalg.norm((X[:, None, :] - W[None]) @ omega.T, axis=2)
    d = np.exp(-dist / sigma)
    pred = np.searchsorted(clf.classes_, clf.predict(X))
    out = np.empty(len(X))
    for n, i in enumerate(pred):
        z = []
        for j in range(len(clf.classes_)):
            if j == i:
                continue
            a_plus = d[n] @ rp[:, i] + d[n] @ rn[:, j]
            a_minus = d[n] @ rn[:, i] + d[n] @ rp[:, j]
            b = rn[:, i].sum() - rn[:, j].sum()
            z.append((b + np.sqrt(b * b + 4 * a_plus * a_minus)) / (2 * a_minus))
        out[n] = max(0.0, sigma * np.log(min(z)) / L)
    return out


@pytest.mark.parametrize(
    "params",
    [
        dict(loss="cbc"),
        dict(loss="cbc", reasoning="positive"),
        dict(loss="cbc", omega_dim=3, n_components=5),
    ],
)
def test_cbc_certificate_is_exactly_theorem_1(params):
    # soundness alone (the attack tests) passes an inflated radius too; this
    # pins the radius to the bound itself
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(**FAST, **params).fit(X, y)
    radius, reference = clf.certified_radius(X), reference_cbc_radius(clf, X)
    # equal up to the rounding slack (a distance error of ~1e-7 here), and never above
    np.testing.assert_allclose(radius, reference, rtol=1e-6, atol=1e-6)
    assert np.all(radius <= reference + 1e-12)


def test_bisector_gap_between_nearly_equal_components_is_not_underestimated():
    # The gap between components enters the bisector radius's denominator; by
    # the matrix-product expansion (torch.cdist's default above 25 rows) two
    # components 1e-7 apart got gaps off by up to 40% relative, sometimes too
    # small, which inflated the radius of samples near their bisector.
    from skproto.heads import NearestHead
    from skproto.rbf._network import RBFNetwork

    for seed in range(10):
        rng = np.random.default_rng(seed)
        W = rng.normal(size=(30, 8))
        step = rng.normal(size=8)
        step *= 1e-7 / np.linalg.norm(step)
        W[1] = W[0] + step  # two classes, nearly on top of each other
        labels = np.arange(30) % 2
        net = RBFNetwork(
            torch.as_tensor(W), None, torch.zeros((), dtype=torch.float64),
            NearestHead(torch.as_tensor(labels), 2),
        ).double().freeze()  # fmt: skip
        # samples on the pair's axis, 1e-4 from their bisector on component 0's side
        x = (W[0] + W[1]) / 2 - 1e-4 * step / np.linalg.norm(step)
        x = x[None] + np.zeros((1, 8))
        with torch.no_grad():
            radius = net.certified_radius(torch.as_tensor(x), torch.tensor([0]), exact=True)
        exact_gap = np.linalg.norm(W[0] - W[1])
        assert radius.item() <= 1e-4 * (1 + 1e-6), (seed, radius.item(), exact_gap)
        assert radius.item() > 0.9e-4


def test_float32_radii_are_rounded_down():
    X, y = load_iris(return_X_y=True)
    X32 = (X / 8).astype(np.float32)
    for params in [dict(loss="glvq"), dict(loss="cbc")]:
        clf = RBFPrototypeClassifier(**FAST, **params).fit(X32, y)
        r32 = clf.certified_radius(X32)
        assert r32.dtype == np.float32
        assert np.all(r32.astype(np.float64) <= clf.certified_radius(X32.astype(np.float64)))


def test_projection_with_nothing_left_to_refit():
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="glvq", learn_sigma=False, project=True, **FAST).fit(X, y)
    np.testing.assert_array_equal(clf.prototypes_, X[clf.prototype_sample_indices_])
    assert clf.history_["refit"] is None


@pytest.mark.parametrize("loss", ["glvq", "robust"])
def test_nearest_head_partial_fit_grows_new_classes(loss):
    X, y = load_iris(return_X_y=True)
    names = np.array(["virginica", "setosa", "versicolor"])[y]  # sorted order differs
    first = names != "setosa"
    clf = RBFPrototypeClassifier(loss=loss, max_epochs=30, random_state=0)
    clf.fit(X[first], names[first])
    old = clf.prototypes_.copy()
    assert list(clf.classes_) == ["versicolor", "virginica"]
    for _ in range(5):
        clf.partial_fit(X[~first], names[~first])  # a new class, first in sorted order
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    per_class = len(old) // 2
    assert np.sum(clf.prototype_labels_ == "setosa") == per_class
    assert len(clf.prototypes_) == len(old) + per_class
    pred = clf.predict(X)
    assert np.mean(pred[~first] == "setosa") > 0.85
    assert np.mean(pred == names) > 0.8
    assert_explain_faithful(clf, X, clf.explain(X, n_prototypes=2), atol=1e-9)
    with pytest.raises(ValueError, match="not the same as classes_"):
        clf.partial_fit(X[:3], names[:3], classes=["a", "b"])


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_a_call_that_brings_classes_leaves_the_earlier_components(weight_decay):
    """Regression: the freezing hook zeroes their gradients, but Adam's
    weight_decay was added after it, and moved them (by 0.002 on iris)."""
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(weight_decay=weight_decay, max_epochs=5, random_state=0)
    clf.fit(X[y < 2], y[y < 2])
    before = clf.prototypes_.copy()
    clf.partial_fit(X[y == 2], y[y == 2])
    np.testing.assert_array_equal(clf.prototypes_[: len(before)], before)


def test_class_moments_merge_exactly_across_batches_and_new_classes():
    """Streamed (count, mean, m2) per class equal those of all rows at once."""
    from skproto.prototypes.replay import class_moments, merge_moments, reindex_moments

    rng = np.random.RandomState(3)
    X = 100.0 + rng.normal(size=(300, 4))
    T = rng.randint(0, 5, 300)
    a = T < 3  # classes 0-2 first; then every class
    first = class_moments(X[a], T[a], 3)
    grown = reindex_moments(first, np.array([10, 20, 30]), np.array([10, 20, 30, 40, 50]))
    merged = merge_moments(grown, class_moments(X[~a], T[~a], 5))
    for got, want in zip(merged, class_moments(X, T, 5)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("classes", [None, [0, 1, 2]])
def test_a_stream_with_a_learned_metric_may_start_with_one_class(classes):
    """Regression: with omega_dim, a first batch of one class has no rival, an
    infinite radius, and its gradient through ||Omega|| was 0 * inf = NaN:
    'Training diverged in partial_fit'."""
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(omega_dim=2, random_state=0)
    clf.partial_fit(X[y == 0], y[y == 0], classes=classes)
    assert np.isfinite(clf.omega_).all()
    clf.partial_fit(X[y == 0], y[y == 0]).partial_fit(X[y == 1], y[y == 1])
    assert clf.score(X[y < 2], y[y < 2]) > 0.95


def test_partial_fit_from_scratch_keeps_the_moments_of_every_row_once():
    from skproto.prototypes.replay import class_moments

    X, y = load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(150)
    X, y = X[order], y[order]
    clf = RBFPrototypeClassifier(loss="glvq", random_state=0)
    for part in np.array_split(np.arange(150), 3):
        clf.partial_fit(X[part], y[part])
    for got, want in zip(clf._moments, class_moments(X, y, 3)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_new_classes_train_against_gaussian_stand_ins_of_the_earlier_ones(monkeypatch):
    """The class-incremental epoch sees _REPLAY_ROWS draws per earlier class, around its mean."""
    from skproto.rbf import _estimator as rbf

    X, y = load_iris(return_X_y=True)
    first = y > 0
    clf = RBFPrototypeClassifier(loss="robust", max_epochs=5, random_state=0).fit(
        X[first], y[first]
    )
    seen = record_training(monkeypatch, rbf)
    clf.partial_fit(X[~first], y[~first])
    T = seen["T"]
    np.testing.assert_array_equal(np.bincount(T), [50, rbf._REPLAY_ROWS, rbf._REPLAY_ROWS])
    for c in (1, 2):
        draws = seen["X"][seen["T"] == c]
        assert np.linalg.norm(draws.mean(0) - X[y == c].mean(0)) < 0.5
    np.testing.assert_allclose(seen["w"][T > 0], 50 / rbf._REPLAY_ROWS)  # each an average class


def test_rbf_partial_fit_streams_and_fixed_classes_reject_new_labels():
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    glvq = RBFPrototypeClassifier(loss="glvq", random_state=0)
    for s in np.array_split(np.arange(len(y)), 5):
        glvq.partial_fit(X[s], y[s], classes=[0, 1, 2] if s[0] == 0 else None)
    assert glvq.n_iter_ == 5 and glvq.score(X, y) > 0.8
    with pytest.raises(ValueError, match="not in classes_"):
        glvq.partial_fit(X[:3], np.array([5, 5, 5]))
    cbc = RBFPrototypeClassifier(loss="cbc", random_state=0)  # CBC head: classes up front
    with pytest.raises(ValueError, match="classes must be passed"):
        cbc.partial_fit(X, y)
    cbc.partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y)
    assert cbc.n_iter_ == 2


def test_defaults_on_clinc150_are_within_one_point_of_the_linear_probe():
    """Issue 10's target on real data: ``RBFPrototypeClassifier()`` within 1 point of
    LogisticRegression (its C chosen on val by ``bench_defaults.py``) on CLINC150 test.

    The defaults before learning_rate=1e-3 reached 0.9409 against 0.9547.
    """
    if not CLINC150_NPZ.is_file():
        pytest.skip(f"CLINC150 not found at {CLINC150_NPZ}")
    from sklearn.linear_model import LogisticRegression

    with np.load(CLINC150_NPZ) as z:
        X, y, X_test, y_test = (z[k] for k in ("X_train", "y_train", "X_test", "y_test"))
    probe = LogisticRegression(C=10.0, max_iter=2000).fit(X, y).score(X_test, y_test)
    clf = RBFPrototypeClassifier(random_state=0).fit(X, y)
    assert clf.score(X_test, y_test) >= probe - 0.01


def test_class_incremental_partial_fit_refits_the_temperature():
    """Regression: partial_fit kept the temperature of 1, far off for the robust loss
    (which does not train the scores' scale): digits, 5 then 5 new classes, test
    log-loss 1.74 against 0.14 now."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16, y, test_size=0.3, random_state=0, stratify=y)
    first = y_tr < 5
    clf = RBFPrototypeClassifier(random_state=0).partial_fit(X_tr[first], y_tr[first])
    clf.partial_fit(X_tr[~first], y_tr[~first])
    one = RBFPrototypeClassifier(random_state=0).fit(X_tr, y_tr)
    assert clf.temperature_ == pytest.approx(one.temperature_, rel=0.5)
    P = clf.predict_proba(X_te)
    loss = -np.mean(np.log(P[np.arange(len(y_te)), np.searchsorted(clf.classes_, y_te)]))
    assert loss < 0.3
    # a fixed temperature is left as it is
    fixed = RBFPrototypeClassifier(random_state=0, temperature=1.0).partial_fit(X_tr, y_tr)
    assert fixed.temperature_ == 1.0


def test_few_shot_classes_keep_a_width_and_a_margin():
    # Regression: with no more rows per class than components, k-means put the
    # components on the rows, the median distance to the nearest component was
    # about 0 (3e-16), and so were sigma and margin_: every detection but a
    # row's own underflowed, the robust loss was 0 from the first epoch and
    # the temperature ran to its bound (999.94). On this 50-class, 4-shot
    # problem the test log-loss was 14.1 (now 1.24, accuracy 0.61 then 0.63).
    from sklearn.metrics import log_loss

    X, y, Xt, yt = few_shot_blobs(50, 4)
    clf = RBFPrototypeClassifier(random_state=0).fit(X, y)
    typical = np.median(np.linalg.norm(X[:, None] - X[None], axis=-1))
    assert clf.sigma_ > 0.1 * typical and clf.margin_ > 0.1 * typical
    assert clf.temperature_ < 1.0
    assert log_loss(yt, clf.predict_proba(Xt)) < 2.0


def test_min_squared_distances_floor_skips_a_row_s_own_prototype():
    from skproto.geometry import min_squared_distances

    X = np.array([[0.0, 0.0], [3.0, 4.0]])
    P = np.array([[0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(min_squared_distances(X, P), [0.0, 18.0])
    np.testing.assert_allclose(min_squared_distances(X, P, floor=1e-4), [1.0, 18.0])
    assert np.isinf(min_squared_distances(X[:1], P[:1], floor=1e-4)).all()


def test_training_radius_reads_only_the_gaps_it_needs():
    # Training computed all K x K gaps between components every step, although
    # the bound reads the rows of the batch's target classes only: with 1,000
    # classes of 3 components a one-epoch fit took 23 s (cdist and its
    # backward most of it), now 7.2 s. Same radii as from the full matrix.
    import torch
    from sklearn.datasets import load_digits

    from skproto.robustness.certificates import bisector_radius

    X, y = load_digits(return_X_y=True)
    clf = RBFPrototypeClassifier(random_state=0, max_epochs=2).fit(X[:600] / 16, y[:600])
    net = clf._network(clf._state, torch.float64)
    x = torch.as_tensor(X[600:700] / 16)
    t = torch.as_tensor(np.searchsorted(clf.classes_, y[600:700]))
    z, u = net._mapped(x)
    full = bisector_radius(
        (torch.cdist(z, u) ** 2),
        torch.cdist(u, u),
        net._own_index(),
        net.head.labels,
        t,
        net.omega_norm(),
    )
    got = net.certified_radius(x, t)
    np.testing.assert_allclose(got.detach().numpy(), full.detach().numpy(), rtol=1e-9, atol=1e-9)


def test_training_never_forms_every_gap(monkeypatch):
    # (the defect above: a (K, K) cdist in every training step)
    import torch

    X, y, _, _ = few_shot_blobs(40, 6)
    shapes = []
    cdist = torch.cdist

    def recording(a, b, *args, **kwargs):
        shapes.append((a.shape[0], b.shape[0]))
        return cdist(a, b, *args, **kwargs)

    monkeypatch.setattr(torch, "cdist", recording)
    clf = RBFPrototypeClassifier(random_state=0, max_epochs=1, batch_size=4).fit(X, y)
    K = len(clf.prototypes_)
    rows = [r for r, cols in shapes if cols == K]
    assert rows and max(rows) < K  # (the held-out loss reads the rows of its classes)
    assert np.median(rows) <= 4 * 3  # a batch of 4 rows: at most 12 components


def test_certified_radius_forms_the_component_gaps_once(monkeypatch):
    """Regression: the (K, K) gaps between components, which do not depend on
    X, were recomputed for every chunk of rows (18 times for 4,000 rows of a
    6,000-component model: 21.6 s against 3.5 s)."""
    import skproto._chunking
    from skproto.rbf._network import RBFNetwork

    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(max_epochs=5, random_state=0).fit(X, y)
    whole = clf.certified_radius(X)
    calls = []
    real = RBFNetwork._gaps

    def counted(u, needed):
        calls.append(needed is None)
        return real(u, needed)

    monkeypatch.setattr(RBFNetwork, "_gaps", staticmethod(counted))
    monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 200)  # many chunks of rows
    # (to rounding: numpy 2.4's products of other row counts differ in the last bit)
    np.testing.assert_allclose(clf.certified_radius(X), whole, rtol=1e-13, atol=0)
    assert calls == [True]


def test_the_cbc_radius_is_chunked_by_its_rows_arrays_not_components_times_classes(
    monkeypatch,
):
    # regression: the CBC bound's chunks were sized by n_components x n_classes,
    # though it holds only (rows, K) and (rows, C) arrays: at 1,600 classes one row
    # a chunk, and every chunk's softmax of the (2K, C) reasoning logits made the
    # radius cost 137 ms a row (200 rows: 40 s; predict_proba 0.14 s)
    import skproto._chunking
    from skproto.rbf._network import RBFNetwork

    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(40), 2)
    X = rng.normal(size=(80, 3)) + 4 * rng.normal(size=(40, 3))[y]
    clf = RBFPrototypeClassifier(loss="cbc", max_epochs=2, random_state=0).fit(X, y)
    whole = clf.certified_radius(X)
    calls = []
    real = RBFNetwork.certified_radius

    def counted(self, x, *args, **kwargs):
        calls.append(len(x))
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(RBFNetwork, "certified_radius", counted)
    monkeypatch.setattr(skproto._chunking, "CHUNK_ELEMENTS", 40 * 20)  # 20 rows of 40 classes
    np.testing.assert_allclose(clf.certified_radius(X), whole, rtol=1e-12, atol=1e-15)
    assert calls == [20, 20, 20, 20]


def test_certified_accuracy_checks_eps_and_certified_radius_takes_a_column_y():
    # a negative eps counted misclassified samples (radius 0) as certified:
    # 1.0 against an accuracy of 0.973; a y of shape (n, 1) raised IndexError
    from sklearn.datasets import load_iris

    from skproto import certified_accuracy

    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="glvq", max_epochs=5, random_state=0).fit(X, y)
    for eps in (-1.0, np.nan, [0.1, -0.1]):
        with pytest.raises(ValueError, match="eps must be finite and non-negative"):
            certified_accuracy(clf, X, y, eps)
    np.testing.assert_array_equal(clf.certified_radius(X, y[:, None]), clf.certified_radius(X, y))
    # a 2-D eps came back flattened (4,), not the documented (n_eps,); True was a
    # budget of 1.0, "0.1" a string numpy cast
    for eps in ([[0.0, 0.1], [0.2, 0.3]], True, [True, False], "0.1"):
        with pytest.raises(ValueError, match="eps must be a number or a 1-D array-like"):
            certified_accuracy(clf, X, y, eps)
    assert certified_accuracy(clf, X, y, np.int64(0)) == certified_accuracy(clf, X, y, 0.0)


def test_glvq_has_no_margin_and_the_nearest_head_refits_no_sigma():
    # margin was ignored by glvq while margin_ reported the robust default; the
    # after-projection refit ran 10 Adam epochs on a sigma no loss depends on
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    glvq = RBFPrototypeClassifier(loss="glvq", max_epochs=3, random_state=0).fit(X, y)
    assert glvq.margin_ is None
    with pytest.warns(UserWarning, match="margin=0.5 is not used by loss='glvq'"):
        RBFPrototypeClassifier(loss="glvq", margin=0.5, max_epochs=2).fit(X, y)
    robust = RBFPrototypeClassifier(project=True, max_epochs=3, random_state=0).fit(X, y)
    assert not (robust.history_.get("refit") or {}).get("n_iter")


def test_class_incremental_partial_fit_under_a_float64_default_dtype():
    # the frozen-gradient mask took torch's default dtype: a float64 default
    # raised "hook has changed the type of value"
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        clf = RBFPrototypeClassifier(random_state=0, max_epochs=5)
        clf.partial_fit(X[y < 2], y[y < 2]).partial_fit(X[y == 2], y[y == 2])
    finally:
        torch.set_default_dtype(old)
    assert list(clf.classes_) == [0, 1, 2]


def test_cbc_radius_far_from_every_component_stays_a_valid_bound():
    # detections that underflowed to 0 read as "nothing can favour another class":
    # radius inf at x = 1000, though a move of 995 toward class 0 flips the prediction
    from sklearn.datasets import make_blobs

    X, y = make_blobs(300, centers=[[0, 0], [4, 0], [0, 4]], cluster_std=0.6, random_state=0)
    clf = RBFPrototypeClassifier(
        n_components=6, reasoning="positive_negative", loss="cbc", max_epochs=30, random_state=0
    ).fit(X, y)
    x0 = np.array([[1000.0, 0.0]])
    x1 = x0 + (X[y == 0].mean(0) - x0) * 0.995
    assert clf.predict(x1)[0] != clf.predict(x0)[0]
    radius = clf.certified_radius(x0)[0]
    assert np.isfinite(radius) and radius <= np.linalg.norm(x1 - x0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "params",
    [dict(loss="glvq"), dict(loss="cbc"), dict(loss="cbc", reasoning="positive")],
    ids=["nearest", "cbc", "cbc-positive"],
)
def test_the_radius_holds_where_the_probabilities_round_to_ties(params, dtype):
    # at a large fixed temperature predict's probabilities round to ties, and a
    # move inside the radius (iris row 52, nearest head: 0.999 of 0.179; CBC: 49
    # of 8,160 moves) made a tie that went to another class: the radius now keeps
    # the predicted class ahead by more than the probabilities can round away
    X, y = load_iris(return_X_y=True)
    X = X.astype(dtype)
    for T in (1e15, 1e9, "auto"):
        clf = RBFPrototypeClassifier(temperature=T, max_epochs=5, random_state=0, **params)
        clf.fit(X, y)
        r, pred = clf.certified_radius(X), clf.predict(X)
        if not (r > 0).any():  # (float32 at T = 1e15: every row's probabilities tie)
            continue
        moved = []
        for i in np.flatnonzero(r > 0):
            d = clf.prototypes_ - X[i]
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            for step in np.linspace(0.05, 0.999, 8):  # towards every component
                moved.append(X[i] + step * float(r[i]) * d)
        moved = np.concatenate(moved).astype(dtype)
        expected = np.repeat(pred[r > 0], 8 * len(clf.prototypes_))
        np.testing.assert_array_equal(clf.predict(moved), expected)


def test_a_declared_class_without_components_is_no_runner_up():
    # RBF's p_c of a declared class without rows is 0 (NearestMean and Proto: a
    # score of -inf): explain named it the runner-up of every row at a finite
    # margin, a near miss that cannot happen
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(max_epochs=3, random_state=0)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    ex = clf.explain(X[:3])
    assert list(ex.runner_up) == [0, 0, 0] and np.all(ex.margin == np.inf)
    np.testing.assert_array_equal(clf.predict_proba(X[:3])[:, 1:], 0.0)
    clf.partial_fit(X[50:100], y[50:100])  # class 1 arrives: now a real rival
    ex = clf.explain(X[:3])
    assert list(ex.runner_up) == [1, 1, 1] and np.all(np.isfinite(ex.margin))


def _declared_stream(reasoning, classes=(0, 1, 2, 3), labels=None):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        150, 6, n_informative=4, n_redundant=0, n_classes=3, n_clusters_per_class=1,
        random_state=1,
    )  # fmt: skip
    y = y if labels is None else labels[y]
    clf = RBFPrototypeClassifier(loss="cbc", reasoning=reasoning, random_state=0)
    for _ in range(10):
        for r in np.array_split(np.arange(150), 3):
            clf.partial_fit(X[r], y[r], classes=list(classes))
    return clf, X, y


@pytest.mark.parametrize("reasoning", [None, "positive"])
def test_cbc_never_predicts_a_declared_class_without_rows(reasoning):
    # the CBC heads mixed every component into a class declared to partial_fit whose
    # rows had not arrived: 29 of 150 rows were predicted as it (accuracy 0.673,
    # 0.773 without declaring it); the nearest head scores such a class p_c = 0
    clf, X, y = _declared_stream(reasoning)
    dec, proba = clf.decision_function(X), clf.predict_proba(X)
    assert not np.isin(3, clf.predict(X)) and clf.score(X, y) > 0.75
    np.testing.assert_array_equal(dec[:, 3], 0.0)
    np.testing.assert_array_equal(proba[:, 3], 0.0)
    assert np.isfinite(proba).all() and np.isfinite(clf.temperature_)
    log_proba = clf.predict_log_proba(X)
    assert np.isfinite(log_proba).all() and np.all(log_proba[:, 3] < log_proba[:, :3].min())
    np.testing.assert_array_equal(clf.reasoning_positive_[:, 3], 0.0)
    np.testing.assert_array_equal(clf.reasoning_negative_[:, 3], 0.0)
    assert not np.isin(3, clf.prototype_labels_)
    ex = clf.explain(X, n_prototypes=2)
    assert_explain_faithful(clf, X, ex, atol=1e-12)
    assert not np.isin(3, ex.runner_up) and np.isfinite(ex.margin).all()
    # the certificate holds (the class can never overtake the prediction)
    r, pred = clf.certified_radius(X), clf.predict(X)
    assert np.all(np.isfinite(r) & (r >= 0)) and (r > 0).any()
    rng = np.random.RandomState(0)
    rows = np.flatnonzero(r > 0)
    u = rng.normal(size=(len(rows), 20, X.shape[1]))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    moved = X[rows, None] + 0.999 * r[rows, None, None] * u
    np.testing.assert_array_equal(clf.predict(moved.reshape(-1, X.shape[1])), pred[rows].repeat(20))
    # its rows arrive: it is scored from then on (and predicted, where the head can
    # reason for rows far from every component: by their absence)
    X3 = X[y == 0][:20] + 6.0
    clf.set_params(learning_rate=0.02)
    for _ in range(20):
        clf.partial_fit(np.vstack([X, X3]), np.r_[y, np.full(len(X3), 3)])
    if reasoning is None:
        assert (clf.predict(X3) == 3).mean() > 0.8
    assert np.all(clf.decision_function(X3)[:, 3] > 0)
    assert np.all(clf.predict_proba(X)[:, 3] > 0)
    assert_explain_faithful(clf, X3, clf.explain(X3), atol=1e-12)


def test_cbc_without_rows_of_a_class_with_string_labels_and_class_weight_0():
    clf, X, y = _declared_stream(None, ["a", "b", "c", "z"], np.array(["a", "b", "c"]))
    assert not np.isin("z", clf.predict(X))
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 3], 0.0)
    # fit: a class all of whose rows weigh 0 is absent, as with the nearest head
    # (class_weight={0: 0.0} had 11 rows predicted as it, 41 with string labels)
    zero = np.where(y == "a", 0.0, 1.0)
    for params, sw in [(dict(class_weight={"a": 0.0}), None), (dict(), zero)]:
        clf = RBFPrototypeClassifier(loss="cbc", random_state=0, **params).fit(X, y, sw)
        assert not np.isin("a", clf.predict(X))
        np.testing.assert_array_equal(clf.predict_proba(X)[:, 0], 0.0)
        np.testing.assert_array_equal(clf.decision_function(X)[:, 0], 0.0)
        ex = clf.explain(X)
        assert_explain_faithful(clf, X, ex, atol=1e-12)
        assert not np.isin("a", ex.runner_up)


@pytest.mark.parametrize("reasoning", [None, "positive"])
def test_cbc_binary_with_one_class_without_rows(reasoning):
    X, y = load_iris(return_X_y=True)
    X, y = X[:100], y[:100]
    clf = RBFPrototypeClassifier(loss="cbc", reasoning=reasoning, random_state=0)
    for _ in range(3):
        clf.partial_fit(X[:50], y[:50], classes=[0, 1])
    dec, proba = clf.decision_function(X), clf.predict_proba(X)
    assert np.isfinite(dec).all() and np.all(dec <= 0)
    np.testing.assert_array_equal(proba, np.tile([1.0, 0.0], (100, 1)))
    np.testing.assert_array_equal(clf.predict(X), 0)
    assert_explain_faithful(clf, X, clf.explain(X), atol=1e-12)
    r = clf.certified_radius(X)  # (with positive reasoning p_t > 0 = p_1 everywhere: inf)
    assert np.all(r > 0) and (np.isfinite(r).all() or reasoning == "positive")
    clf.partial_fit(X, y)  # its rows arrive: it is scored
    assert np.all(clf.predict_proba(X)[:, 1] > 0) and np.isin(1, clf.predict(X))


@pytest.mark.parametrize("loss", ["cbc", "glvq"])
def test_explain_names_no_runner_up_where_every_other_class_is_without_rows(loss):
    # declared [0, 1, 2] with only class 2's rows seen: every rival is impossible,
    # and the argmax of -inf everywhere named class 0 (never predicted) the
    # runner-up of every row; as with a single known class, it is the explained one
    X, y = load_iris(return_X_y=True)
    for classes, seen in [([0, 1, 2], y == 2), ([0, 1], y == 1)]:
        clf = RBFPrototypeClassifier(loss=loss, random_state=0)
        for _ in range(2):
            clf.partial_fit(X[seen], y[seen], classes=classes)
        ex = clf.explain(X)
        np.testing.assert_array_equal(ex.runner_up, ex.explained)
        assert np.all(ex.margin == np.inf)
        assert_explain_faithful(clf, X, ex, atol=1e-12)
    # a class that can be predicted is still the runner-up
    clf, X, y = _declared_stream(None)
    ex = clf.explain(X)
    assert not np.isin(3, ex.runner_up) and np.all(ex.runner_up != ex.explained)


def test_cbc_pickle_keeps_the_classes_without_rows():
    clf, X, _ = _declared_stream(None)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.explain(X[:5]).runner_up, clf.explain(X[:5]).runner_up)
    # pickled before the head kept which classes have rows: every class is scored
    old = pickle.loads(pickle.dumps(clf))
    del old._state["head.possible"]
    old = pickle.loads(pickle.dumps(old))
    assert old._impossible_classes() is None
    assert np.all(old.predict_proba(X) > 0) and np.isfinite(old.certified_radius(X)).all()
    old.partial_fit(X[:50], clf.predict(X[:50]))
    assert np.all(old.predict_proba(X) > 0)


@pytest.mark.parametrize("negative", [False, True])
def test_a_cbc_rival_without_weights_never_tightens_the_radius(negative):
    # a class without rows has r+ = r- = 0 (p_j = 0 everywhere): the stable-CBC bound
    # against it (where p_t could reach 0) is never below the other rivals' bounds
    from skproto.robustness.certificates import cbc_radius

    gen = torch.Generator().manual_seed(0)
    K, C = 6, 4
    R = torch.softmax(torch.randn(2 * K, C, generator=gen, dtype=torch.float64) * 3, 0)
    rp, rn = (R[:K], R[K:]) if negative else (R[:K] / R[:K].sum(0), torch.zeros(K, C).double())
    d = torch.rand(50, K, generator=gen, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    target = (d @ (rp - rn) + rn.sum(0))[:, :3].argmax(1)
    zero = torch.zeros(K, 1, dtype=torch.float64)
    masked = cbc_radius(d, torch.cat([rp[:, :3], zero], 1), torch.cat([rn[:, :3], zero], 1),
                        target, one, one)  # fmt: skip
    dropped = cbc_radius(d, rp[:, :3], rn[:, :3], target, one, one)
    torch.testing.assert_close(masked, dropped, rtol=0, atol=0)
    assert torch.all(dropped > 0)


@pytest.mark.parametrize("reasoning", ["positive", "positive_negative"])
def test_robust_cbc_trains_beside_a_class_without_rows(reasoning):
    # loss="robust" with a CBC head trains on the certificate, whose square root
    # against a class without rows (r+ = r- = 0: b = a- = 0 with positive reasoning)
    # was taken at 0: an infinite gradient, times 0 NaN, though torch.where dropped
    # the entry; partial_fit with a declared class, and fit with a class whose rows
    # all weigh 0, diverged ("a parameter became non-finite")
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="robust", reasoning=reasoning, random_state=0)
    for _ in range(3):
        clf.partial_fit(X[y > 0], y[y > 0], classes=[0, 1, 2])
    losses = np.asarray(clf.history_["loss"])
    assert np.isfinite(losses).all() and (losses > 0).all()
    np.testing.assert_array_equal(clf._impossible_classes(), [True, False, False])
    assert clf.score(X[y > 0], y[y > 0]) > 0.8 and not np.isin(0, clf.predict(X))
    r, pred = clf.certified_radius(X), clf.predict(X)
    rng = np.random.default_rng(0)
    for i in np.flatnonzero((r > 0) & np.isfinite(r))[::25]:
        np.testing.assert_array_equal(clf.predict(X[i] + _attacks(clf, X[i], r[i], rng)), pred[i])
    fitted = RBFPrototypeClassifier(loss="robust", reasoning=reasoning, max_epochs=10)
    fitted.set_params(random_state=0).fit(X, y, sample_weight=(y > 0).astype(float))
    assert np.isfinite(fitted.history_["loss"]).all() and not np.isin(0, fitted.predict(X))


def test_the_cbc_radius_is_never_nan():
    # the tie margin kappa became infinite where every detection underflowed
    # (p_t = 0, far from every component) or the temperature made every float32
    # probability tie, and the radius read NaN where it is 0
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="cbc", reasoning="positive", max_epochs=20, random_state=0)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.certified_radius(X[:3] * 1e4), 0.0)
    clf = RBFPrototypeClassifier(loss="cbc", temperature=2e9, max_epochs=5, random_state=0)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.certified_radius(X[:4].astype(np.float32)), 0.0)
    assert np.all(clf.certified_radius(X[:4]) > 0)
    # just below an infinite kappa the bound's sums overflowed: inf, then NaN radii
    from sklearn.preprocessing import StandardScaler

    Xs, eps = StandardScaler().fit_transform(X), np.finfo(np.float64).eps
    for log_kappa in (709.0, 709.5):
        clf = RBFPrototypeClassifier(
            loss="cbc", reasoning="positive", sigma=20.0, learn_sigma=False,
            temperature=log_kappa / (4 * eps), max_epochs=5, random_state=0,
        ).fit(Xs, y)  # fmt: skip
        np.testing.assert_array_equal(clf.certified_radius(Xs), 0.0)


def test_the_bisector_bound_is_its_documented_formula():
    # (surviving mutants: half the rounding slack, or a margin that did not widen
    # the denominator, overstated the radius by rounding-sized amounts no attack
    # finds; the formula is pinned on hand values instead)
    import torch

    from skproto.robustness.certificates import bisector_radius

    a, b, gap, L, s, e = 1.0, 9.0, 2.5, 1.5, 0.01, 0.05
    args = dict(
        d2=torch.tensor([[a, b]], dtype=torch.float64),
        gap=torch.tensor([[0.0, gap], [gap, 0.0]], dtype=torch.float64),
        own_index=torch.tensor([[0], [1]]),
        labels=torch.tensor([0, 1]),
        target=torch.tensor([0]),
        lipschitz=torch.tensor(L, dtype=torch.float64),
    )
    plain = float(bisector_radius(**args))
    assert plain == pytest.approx((b - a) / (2 * gap * L), rel=1e-15)
    slack = float(bisector_radius(**args, slack=torch.tensor([s], dtype=torch.float64)))
    assert slack == pytest.approx((b - a - 2 * s) / (2 * gap * L), rel=1e-15)
    margin = float(bisector_radius(**args, margin=torch.tensor([e], dtype=torch.float64)))
    expected = (b - a - 2 * e * np.sqrt(a) - e**2) / (2 * (gap + e) * L)
    assert margin == pytest.approx(expected, rel=1e-15)


def test_defaults_and_heads_pinned_by_a_mutation_audit(monkeypatch):
    """Each assertion failed on none of the tests before (a mutation audit of
    the RBF estimator and network changed each with the suite green)."""
    import warnings

    from skproto.metrics import global_size
    from skproto.rbf import _estimator as rbf_estimator

    X, y = load_iris(return_X_y=True)
    robust = RBFPrototypeClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert len(robust.prototypes_) == 9  # loss="robust": 3 components per class
    # the margin is 0.7 and the width 1 / log 2 of the typical distance
    assert robust.sigma_ == pytest.approx(robust.margin_ / (0.7 * np.log(2.0)), rel=1e-6)
    # score_samples: minus the distance to the nearest component (not the farthest)
    D = np.sqrt(((X[:, None, :] - robust.prototypes_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(robust.score_samples(X), -D.min(1), rtol=1e-4, atol=1e-5)
    assert RBFPrototypeClassifier(loss="cbc", max_epochs=1, random_state=0).fit(X, y).margin_ == 0.3
    with warnings.catch_warnings():  # one component per class is enough; "nearest" is glvq's
        warnings.simplefilter("error")
        RBFPrototypeClassifier(loss="glvq", n_components=3, max_epochs=1).fit(X, y)
        RBFPrototypeClassifier(loss="glvq", reasoning="nearest", max_epochs=1).fit(X, y)
    # a positive-negative CBC head starts reasoning for each component's class
    # at logit log(2K) (its 2K rows), and at 0 elsewhere
    seen = {}
    head = rbf_estimator.ReasoningHead

    def spy(logits, **kw):
        seen.setdefault("logits", logits.detach().numpy().copy())  # the initial head
        return head(logits, **kw)

    monkeypatch.setattr(rbf_estimator, "ReasoningHead", spy)
    params = dict(loss="cbc", reasoning="positive_negative", n_components=6)
    cbc = RBFPrototypeClassifier(**params, max_epochs=1, random_state=0).fit(X, y)
    want = np.zeros((12, 3))
    want[np.arange(6), [0, 0, 1, 1, 2, 2]] = np.log(12)
    np.testing.assert_allclose(seen["logits"], want, rtol=1e-6)
    # a component that reasons for a class by absence only is connected
    cbc.reasoning_positive_ = cbc.reasoning_positive_.copy()
    cbc.reasoning_negative_ = cbc.reasoning_negative_.copy()
    cbc.reasoning_positive_[0] = 0.0
    cbc.reasoning_negative_[0] = [1.0, 0.0, 0.0]
    assert global_size(cbc, tol=0.01) == 6


def test_reported_radii_keep_their_rounding_margins():
    """Mutation audit: removing the certificate's rounding margins (Higham's factor
    for the distances, the CBC radius's distance slack, the bound's own 1e-12)
    or rounding the float32 radius up went unnoticed; each margin is small, and
    no test compared the reported radius with the raw bound."""
    from skproto.geometry import squared_distances
    from skproto.rbf._estimator import _round_down
    from skproto.robustness.certificates import distance_rounding_bound

    rng = np.random.default_rng(0)
    radius = np.abs(rng.normal(size=10_000)) * 10.0 ** rng.integers(-5, 5, 10_000)
    down = _round_down(radius, np.dtype(np.float32))
    assert down.dtype == np.float32 and np.all(down.astype(np.float64) <= radius)
    above = np.nextafter(down, np.float32(np.inf)).astype(np.float64)
    assert np.all(above > radius)  # the largest float32 not above the radius
    for dtype in (torch.float32, torch.float64):  # Higham's gamma_(n+4), doubled
        eps = torch.finfo(dtype).eps
        z2, u2 = torch.tensor([1.0, 4.0], dtype=dtype), torch.tensor(9.0, dtype=dtype)
        gamma = 2.0 * 104 * eps / (1.0 - 104 * eps)
        torch.testing.assert_close(distance_rounding_bound(z2, u2, 100), gamma * (z2 + u2))
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="cbc", max_epochs=5, random_state=0).fit(X, y)
    net = clf._inference_network()
    x = torch.from_numpy(X[::5])
    target = torch.from_numpy(clf._predicted_codes(X[::5]))
    with torch.no_grad():
        raw = net.certified_radius(x, target)
        exact = net.certified_radius(x, target, exact=True)
        z, u = net._mapped(x)
        slack = net._rounding_slack(x, z, u, squared_distances(z, u))
        lowered = raw - torch.sqrt(slack) / net.omega_norm()
    shown = torch.isfinite(raw) & (raw > 0)
    assert shown.sum() > 10
    assert torch.all(exact[shown] <= lowered[shown] - lowered[shown].abs() * 0.9e-12)


# ---------------------------------------- pins from a mutation audit of the heads
def test_positive_reasoning_logs_are_exact_where_some_classes_underflow():
    """log_forward (prediction) recomputes exactly the classes whose product is
    subnormal or 0, in rows where other classes are normal, and takes the log of
    the softmax directly: log(softmax) was -inf (float32) for a weight below
    float32's smallest, logits 104 apart."""
    from skproto.heads import ReasoningHead

    logits = torch.tensor(
        [[0.0, -1000.0, -1000.0], [-10.0, -400.0, -370.0], [-10.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    head = ReasoningHead(logits, negative=False).double()
    log_d = torch.tensor([[0.0, -400.0, -800.0], [0.0, -370.0, -740.0]], dtype=torch.float64)
    exact = torch.logsumexp(log_d[:, :, None] + torch.log_softmax(logits, 0)[None], 1)
    with torch.no_grad():
        got = head.log_forward(log_d)
    np.testing.assert_allclose(got.numpy(), exact.numpy(), rtol=1e-14)
    for negative in (False, True):
        far = torch.tensor([[0.0, -120.0], [-120.0, 0.0]] * (1 + negative))
        head = ReasoningHead(far, negative=negative)
        log_rp = torch.log_softmax(far, 0)[:2]
        log_d = torch.tensor([[-1.0, -300.0]])
        with torch.no_grad():
            got = head.log_forward(log_d)
        want = torch.logsumexp(log_d[:, :, None] + log_rp[None], 1)
        assert torch.isfinite(got).all()
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_the_nearest_head_scores_a_class_without_prototypes_zero():
    from skproto.heads import NearestHead

    head = NearestHead(torch.tensor([0, 0, 2]), 3)
    d = torch.tensor([[0.2, 0.9, 0.4], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(head(d), torch.tensor([[0.9, 0.0, 0.4], [0.0, 0.0, 0.0]]))
    log_p = head.log_forward(torch.log(d[:1]))
    assert log_p[0, 1] == -float("inf") and log_p[0, 0] == pytest.approx(np.log(0.9))


def test_replay_draws_only_earlier_classes_with_rows_and_merges_empty_batches():
    from skproto.prototypes.replay import class_moments, gaussian_replay, merge_moments

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(0, 1, (200, 10)), rng.normal(5, 2, (200, 10))])
    T = np.repeat([0, 1], 200)
    moments = class_moments(X, T, 4)  # classes 2 and 3 declared, no row yet
    _, codes = gaussian_replay(moments, np.array([2]), 7, np.random.RandomState(1))
    np.testing.assert_array_equal(codes, [0] * 7 + [1] * 7)  # not 3 (never seen)
    _, codes = gaussian_replay(moments, np.array([1]), 7, np.random.RandomState(1))
    np.testing.assert_array_equal(codes, [0] * 7)  # not the batch's own class
    merged = merge_moments(moments, class_moments(X[:0], T[:0], 4))
    for got, want in zip(merged, moments):
        np.testing.assert_array_equal(got, want)  # (0 / 0 made the unseen means NaN)


def test_network_detections_own_index_and_waterfall_columns():
    # pins from a mutation audit of rbf/_network.py and explain/_steps.py
    from sklearn.datasets import load_iris

    from skproto import NearestMeanClassifier
    from skproto.explain import waterfall
    from skproto.heads import NearestHead, ReasoningHead
    from skproto.rbf._network import RBFNetwork

    # a smooth detection at its own component is 1 at any scale (the floor is in
    # squared data units: at sigma 1e-8 a floor of sigma read 4.5e-5)
    W = torch.zeros(1, 2, dtype=torch.float64)
    net = RBFNetwork(
        W, None, torch.tensor(np.log(1e-8), dtype=torch.float64),
        ReasoningHead(torch.zeros(1, 1, dtype=torch.float64)),
    )  # fmt: skip
    assert float(net.detections(W, smooth=True).detach()[0, 0]) == pytest.approx(1.0, abs=1e-5)
    # each class's components, padded with -1 where classes have fewer
    labels = torch.tensor([0, 0, 1, 2])
    net = RBFNetwork(torch.zeros(4, 2), None, torch.zeros(()), NearestHead(labels, 3))
    np.testing.assert_array_equal(net._own_index().numpy(), [[0, 1], [2, -1], [3, -1]])
    X, y = load_iris(return_X_y=True)
    ex = NearestMeanClassifier().fit(X, y).explain(X[:1], n_prototypes=2)
    steps = waterfall(ex, 0)
    values = [s.prototype_value for s in steps.steps if s.kind == "prototype"]
    np.testing.assert_allclose(values, ex.value[0])  # the listed prototypes' distances
    other = waterfall(ex, 0, column="runner_up")
    c = list(ex.classes).index(ex.runner_up[0])
    assert other.label == ex.runner_up[0] and other.score == pytest.approx(ex.scores[0, c])


def test_the_tie_margin_of_the_nearest_radius_is_in_distance_units():
    # components at 0 and 1, x at 0.2, sigma 2, T 1e9: the probabilities'
    # rounding ties log-ratios below 4 eps T, that is distances below
    # e = 4 eps T sigma (plus a few ulps of the largest distance); the radius keeps
    # d_1 - d_0 >= e: (d_1^2 - d_0^2 - 2 e d_0 - e^2) / (2 (gap + e)). (A surviving
    # mutant divided by sigma: radii 5e-4 too large at T = 1e10 on iris x 100)
    from skproto.heads import NearestHead
    from skproto.rbf._network import _SCORE_ROUNDING, RBFNetwork

    W = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    net = RBFNetwork(
        W, None, torch.tensor(np.log(2.0), dtype=torch.float64),
        NearestHead(torch.tensor([0, 1]), 2),
    ).double().freeze()  # fmt: skip
    net.temperature.fill_(1e9)
    eps = float(np.finfo(np.float64).eps)
    with torch.no_grad():
        r = net.certified_radius(
            torch.tensor([[0.2]], dtype=torch.float64), torch.tensor([0]), tie=eps
        )
    e = 4 * eps * 1e9 * 2.0 + _SCORE_ROUNDING * 0.8
    want = (0.8**2 - 0.2**2 - 2 * e * 0.2 - e**2) / (2 * (1.0 + e))
    assert float(r[0]) == pytest.approx(want, rel=1e-12, abs=0)
    # at T = 1 the ulps term dominates: it reads the largest distance (a far
    # component at 1,000), not the smallest
    W = torch.tensor([[0.0], [1.0], [1000.0]], dtype=torch.float64)
    net = RBFNetwork(
        W, None, torch.tensor(np.log(2.0), dtype=torch.float64),
        NearestHead(torch.tensor([0, 1, 1]), 2),
    ).double().freeze()  # fmt: skip
    with torch.no_grad():
        r = net.certified_radius(
            torch.tensor([[0.2]], dtype=torch.float64), torch.tensor([0]), tie=eps
        )
    e = 4 * eps * 2.0 + _SCORE_ROUNDING * 999.8
    want = (0.8**2 - 0.2**2 - 2 * e * 0.2 - e**2) / (2 * (1.0 + e))
    assert float(r[0]) == pytest.approx(want, rel=1e-13, abs=0)


def test_class_incremental_stream_without_weight_decay_is_silent():
    # (mutation audit of rbf/_estimator.py) kills R03: the weight_decay warning is for
    # weight_decay > 0 only
    import warnings

    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(max_epochs=3, random_state=0).fit(X[y < 2], y[y < 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X[y == 2], y[y == 2])
    assert list(clf.classes_) == [0, 1, 2]


def test_a_nearest_head_batch_of_weight_zero_counts_no_epoch():
    # (mutation audit of rbf/_estimator.py) kills R07: a partial_fit batch whose rows all weigh 0
    # trains nothing, and n_iter_ counts only the epochs run (as with the CBC heads)
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(random_state=0).partial_fit(X, y)
    clf.partial_fit(X[:10], y[:10], sample_weight=np.zeros(10))
    assert clf.n_iter_ == len(clf.history_["loss"]) == 1


def test_projection_with_no_epochs_after_it_records_no_refit():
    # (mutation audit of rbf/_estimator.py) kills R18: project_epochs=0 trains nothing after
    # projection: history_["refit"] is None
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(
        loss="cbc", project=True, project_epochs=0, max_epochs=3, random_state=0
    ).fit(X, y)
    assert clf.history_["refit"] is None


def test_the_typical_distance_is_the_median_nearest_component_distance():
    # (mutation audit of rbf/_estimator.py) kills R22: sigma="auto" and the robust margin start
    # from the *median* distance of a row to its nearest component (mean would be pulled by
    # outliers)
    from skproto.rbf._estimator import _typical_distance

    rng = np.random.default_rng(0)
    U = rng.normal(size=(3, 4))
    Z = np.concatenate([U[[0, 1, 2, 0, 1]] + 0.5 * rng.normal(size=(5, 4)), [[50.0, 0, 0, 0]]])
    d = np.sqrt(((Z[:, None] - U[None]) ** 2).sum(-1)).min(1)
    assert _typical_distance(Z, U) == pytest.approx(np.median(d), rel=1e-9)


def test_auto_temperature_is_not_over_confident_on_noisy_rows():
    """RBF's temperature is smoothed by one whole uniform pseudo-row. With a
    tenth of one (tried on 2026-12-06), 60 rows of noisy labels set a
    temperature of 0.029 and a test log-loss of 3.14; with one row: 0.084 and
    1.25 (a uniform guess: 1.10, accuracy 0.61)."""
    from sklearn.datasets import make_classification
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        1000, 8, n_informative=3, n_redundant=2, n_classes=3, flip_y=0.1, random_state=100
    )
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=60, stratify=y, random_state=6)
    m = RBFPrototypeClassifier(random_state=0).fit(Xtr, ytr)
    assert log_loss(yte, m.predict_proba(Xte), labels=m.classes_) < 1.6


# --- pinned by a mutation audit of calibration, covariance, distances and certificates (2026-12-06)


def _cbc_radius_of_class_0(detections, positive, negative):
    """CBC radius of one sample of target class 0 (two components, sigma and Lipschitz 1)."""
    from skproto.robustness.certificates import cbc_radius

    one = _f64(1.0)
    return cbc_radius(_f64(detections), _f64(positive), _f64(negative), torch.tensor([0]), one, one)


def test_cbc_radius_is_finite_where_only_negative_reasoning_favours_the_rival():
    # R07: "never overtaken" needs b >= 0; with b < 0 (class 1's negative reasoning
    # on component 1, none on class 0's side) and a- = 0 the bound is a+ / -b:
    # p_0 - p_1 >= 0.8 / z - (1 - 0.5 / z) > 0 for z < 1.3. Without b >= 0 the
    # radius read inf, and at eps = 0.27 the target already loses
    r = _cbc_radius_of_class_0([[0.8, 0.5]], [[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])
    assert float(r[0]) == pytest.approx(np.log(1.3), rel=1e-12)
    z = np.exp(0.27)  # every detection divided by z: the worst case at radius 0.27
    assert 0.8 / z - (1 - 0.5 / z) < 0


def _f64(x):
    import torch

    return torch.tensor(x, dtype=torch.float64)


def test_bisector_radius_of_coincident_rival_prototypes_is_zero_with_a_slack():
    # R15: a rival prototype on the target's own (gap 0) gives ratio 0; with
    # g >= 0 the slack's -2 s was divided by the smallest float: -9e305
    import torch

    from skproto.robustness.certificates import bisector_radius

    args = dict(
        d2=_f64([[4.0, 4.0]]),
        gap=_f64([[0.0, 0.0], [0.0, 0.0]]),
        own_index=torch.tensor([[0], [1]]),
        labels=torch.tensor([0, 1]),
        target=torch.tensor([0]),
        lipschitz=_f64(1.0),
    )
    assert float(bisector_radius(**args)) == 0.0
    assert float(bisector_radius(**args, slack=_f64([0.01]))) == 0.0


def test_bisector_radius_without_a_rival_class_has_a_finite_gradient():
    # R16: the infinite radius (no rival class) divided by lipschitz gave the
    # learned Lipschitz constant a NaN gradient (0 * inf)
    import torch

    from skproto.robustness.certificates import bisector_radius

    L = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    r = bisector_radius(
        d2=_f64([[1.0, 2.0]]),
        gap=_f64([[0.0, 1.0], [1.0, 0.0]]),
        own_index=torch.tensor([[0, 1]]),
        labels=torch.tensor([0, 0]),
        target=torch.tensor([0]),
        lipschitz=L,
    )
    assert float(r.detach()[0]) == np.inf
    r.clamp(max=1.0).sum().backward()
    assert float(L.grad) == 0.0


def test_cbc_radius_stays_finite_where_the_target_has_no_evidence():
    # R17: a+ = 0 (the target's only component detects 0, class 1 has no negative
    # reasoning) makes z* = 0; without the clamp at the smallest float the radius
    # was log(0) = -inf (an infinite hinge in training)
    r = _cbc_radius_of_class_0([[0.0, 0.8]], [[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]])
    assert np.isfinite(float(r[0])) and float(r[0]) < 0


def test_certified_accuracy_refuses_an_infinite_eps():
    # A02: without the isfinite check eps = inf was taken (accuracy 0.0, even for
    # rows of infinite radius); NaN and negatives are refused by eps >= 0 alone
    from skproto import certified_accuracy

    class Radii:
        def certified_radius(self, X, y):
            return np.array([np.inf, 1.0])

    assert certified_accuracy(Radii(), None, [0, 1], [0.0, 2.0]).tolist() == [1.0, 0.5]
    for eps in (np.inf, [0.1, np.inf]):
        with pytest.raises(ValueError, match="eps must be finite and non-negative"):
            certified_accuracy(Radii(), None, [0, 1], eps)


def test_a_reported_radius_never_exceeds_the_exact_bisector_distance():
    """The components' gaps divide the radius; taken from the expansion
    ||u||^2 - 2 u.v + ||v||^2, a gap of 0.49 between components 103 from the
    origin came out 9e-12 too small, and a move of 0.999999999999999 of the
    certified radius, straight toward the rival, changed the prediction (a
    certificate audit; checked here in exact rational arithmetic)."""
    from fractions import Fraction

    def sq(a, b):
        return sum((Fraction(float(p)) - Fraction(float(q))) ** 2 for p, q in zip(a, b))

    X = np.array([[103.353, 0.314], [103.353, 0.804], [-206.0, 0.0],
                  [103.354, 0.314], [103.354, 0.804], [-205.999, 0.0]])  # fmt: skip
    y = np.array([0, 1, 2, 0, 1, 2])
    clf = RBFPrototypeClassifier(
        loss="glvq", project=True, max_epochs=1, early_stopping=False, random_state=0
    ).fit(X, y)
    W, labels = clf.prototypes_, clf.prototype_labels_
    x = np.array([103.354, -100.686])
    pred = clf.predict(x[None])[0]
    r = float(clf.certified_radius(x[None])[0])
    (i,) = np.flatnonzero(labels == pred)  # one component per class: the bound is tight
    for j in np.flatnonzero(labels != pred):
        num = sq(x, W[j]) - sq(x, W[i])  # exactly: r <= num / (2 gap)
        assert num >= 0 and 4 * Fraction(r) ** 2 * sq(W[i], W[j]) <= num * num, (r, j)
    j = np.flatnonzero(labels != pred)[0]
    step = (W[j] - W[i]) / np.linalg.norm(W[j] - W[i])
    moved = x + (1 - 1e-15) * r * step
    assert sq(moved, x) < Fraction(r) ** 2
    assert clf.predict(moved[None])[0] == pred


@pytest.mark.parametrize("margin", [1e-46, 1e-40])
def test_robust_margin_below_float32_normal_trains_as_zero(margin):
    # 1e-46 rounds to 0 in float32: the averaged hinge divided 0 by 0 and fit said
    # "Training diverged ... Lower learning_rate"; a subnormal margin (1e-40) gave
    # an infinite gradient at a radius of 0. Such a margin is the plain hinge, the
    # limit as the margin goes to 0
    from skproto.losses import certified_hinge

    r = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    loss = certified_hinge(r, margin)
    loss.sum().backward()
    assert loss.tolist() == [1.0, 0.0, 0.0]
    assert r.grad.tolist() == [-1.0, 0.0, 0.0]
    X, y = load_iris(return_X_y=True)
    tiny = RBFPrototypeClassifier(margin=margin, max_epochs=3, random_state=0).fit(X, y)
    zero = RBFPrototypeClassifier(margin=0.0, max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(tiny.prototypes_, zero.prototypes_)
    assert tiny.margin_ == margin


@pytest.mark.parametrize("learn_sigma", [True, False])
@pytest.mark.parametrize("reasoning", ["positive_negative", "positive"])
def test_sigma_whose_detections_all_underflow_is_refused_clearly(learn_sigma, reasoning):
    # every detection exp(-dist / sigma) rounded to 0 in float32: the CBC loss was
    # flat (learn_sigma=False: the initial model, accuracy 0.33, silently), and the
    # gradient of sigma 0 * inf = NaN ("Training diverged ... Lower learning_rate")
    X, y = load_iris(return_X_y=True)
    kw = dict(loss="cbc", reasoning=reasoning, learn_sigma=learn_sigma, max_epochs=3)
    for sigma in (1e-20, 1e-4):
        clf = RBFPrototypeClassifier(sigma=sigma, random_state=0, **kw)
        with pytest.raises(
            ValueError,
            match=rf"sigma={sigma!r} is too small for these rows: every detection "
            r"exp\(-dist / sigma\) of a training row rounds to 0 in float32 .* "
            r"Use sigma='auto' \(0\.\d+ here\) or a sigma of that order: the rows lie a "
            r"median 0\.\d+ from their nearest component",
        ):
            clf.fit(X, y)
        assert not hasattr(clf, "classes_")  # (unchanged)
    if reasoning == "positive":
        assert RBFPrototypeClassifier(sigma=1e-3, random_state=0, **kw).fit(X, y).n_iter_ >= 1
    else:  # (a few rows detected, and the rest scored alike: refused since)
        with pytest.raises(ValueError, match="below float32's resolution"):
            RBFPrototypeClassifier(sigma=1e-3, random_state=0, **kw).fit(X, y)
    # the nearest head's losses compare distances only: any sigma trains
    robust = RBFPrototypeClassifier(sigma=1e-20, max_epochs=3, random_state=0).fit(X, y)
    assert robust.score(X, y) > 0.9


@pytest.mark.parametrize("omega_dim", [None, 2])
def test_sigma_refusal_names_its_own_bound_and_no_unusable_sigma(omega_dim):
    # the message said "a sigma of at least nearest / -log(float32 tiny)": the check
    # accepted every sigma from nearest / 103.97 (a subnormal detection counts), so it
    # named no bound of its own (iris: refused below 0.000666, "at least 0.000793");
    # and that sigma was no usable one: the nearest row alone is detected, by about
    # 1e-38, and fit stayed silently at chance (0.333), as at 1e-4, up to some 6 times it
    import re

    X, y = load_iris(return_X_y=True)
    kw = dict(loss="cbc", omega_dim=omega_dim, max_epochs=3, random_state=0)
    with pytest.raises(ValueError, match="too small for these rows") as info:
        RBFPrototypeClassifier(sigma=1e-4, **kw).fit(X, y)
    message = str(info.value)
    assert "a sigma of at least" not in message
    least = float(re.search(r"no row is detected below sigma=([0-9.e+-]+)\)", message).group(1))
    median = float(re.search(r"the rows lie a median ([0-9.e+-]+) from", message).group(1))
    with pytest.raises(ValueError, match="too small for these rows"):
        RBFPrototypeClassifier(sigma=least / 1.02, **kw).fit(X, y)
    # that sigma, accepted, fitted at chance (0.333); half of the rows' detections
    # below float32's epsilon are refused since (the positive-negative head)
    with pytest.raises(ValueError, match="half of them have every detection"):
        RBFPrototypeClassifier(sigma=least, **kw).fit(X, y)
    assert RBFPrototypeClassifier(sigma=median, **kw).fit(X, y).score(X, y) > 0.6


@pytest.mark.parametrize("standardise", [False, True])
def test_a_small_sigma_that_detects_a_few_rows_is_refused_by_the_negative_head(standardise):
    # raw iris, sigma=1e-3 (and 0.03): a few rows detected passed the check, and the
    # positive-negative head scored every other row sum_k r-_kc: test accuracy 0.32
    # against 0.89 at "auto", no warning; the positive head keeps such rows apart
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    if standardise:
        X = StandardScaler().fit_transform(X)
    kw = dict(loss="cbc", max_epochs=3, random_state=0)
    for sigma in (1e-3, 0.03):
        with pytest.raises(
            ValueError,
            match=rf"sigma={sigma!r} is too small for these rows: (they lie a median "
            r"[0-9.]+ from their nearest component, so half of them have every detection "
            r"exp\(-dist / sigma\) below float32's resolution .*sigma must be at least "
            r"[0-9.]+ here.* Use sigma='auto'|every detection exp\(-dist / sigma\) of a "
            r"training row rounds to 0)",
        ):
            RBFPrototypeClassifier(sigma=sigma, **kw).fit(X, y)
    positive = RBFPrototypeClassifier(sigma=0.03, reasoning="positive", **kw).fit(X, y)
    assert positive.score(X, y) > 0.7
    assert RBFPrototypeClassifier(sigma=0.5, **kw).fit(X, y).n_iter_ == 3


@pytest.mark.parametrize("reasoning", ["positive_negative", "positive"])
def test_a_row_on_a_component_does_not_let_an_undetecting_sigma_through(reasoning):
    # with 10 components a class, some lie on a row, whose detection is 1 whatever
    # sigma: sigma=1e-20 passed the check, and fit said "Training diverged ... Lower
    # learning_rate" (the gradient of sigma, 0 * inf); 1e-4 fitted positive_negative
    # at chance (0.35) without a word
    X, y = load_iris(return_X_y=True)
    kw = dict(loss="cbc", reasoning=reasoning, n_components=30, max_epochs=3, random_state=0)
    for sigma in (1e-20, 1e-4):
        with pytest.raises(
            ValueError,
            match=rf"sigma={sigma!r} is too small for these rows: every detection "
            r"exp\(-dist / sigma\) of a training row rounds to 0 in float32",
        ):
            RBFPrototypeClassifier(sigma=sigma, **kw).fit(X, y)


def _one_row_a_class_and_duplicates():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(
        n_samples=300, centers=[[0, 0], [20, 0], [10, 17]], cluster_std=1.0, random_state=0
    )
    first = np.array([np.flatnonzero(y == c)[0] for c in range(3)])
    # 4 one-hot patterns, 50 rows each: every row on its class's component
    D, yd = np.repeat(np.eye(4), 50, axis=0), np.repeat(np.arange(4), 50)
    return X, y, first, D, yd


@pytest.mark.parametrize("reasoning", ["positive_negative", "positive"])
def test_rows_on_their_own_component_do_not_get_a_fitting_sigma_refused(reasoning):
    # a row on a component is detected by it (1 whatever sigma); measured from the
    # next component instead (9c55685), one row a class read the distance between
    # classes (a median 19) and refused sigma=1, the classes' own spread (test
    # accuracy 1.0 on 9c55685^), in fit and in a stream's first batch; duplicate rows
    # each on their class's component were refused at sigma=0.01 ("every detection
    # ... of a training row rounds to 0", each being detected by 1; accuracy 1.0)
    X, y, first, D, yd = _one_row_a_class_and_duplicates()
    kw = dict(loss="cbc", reasoning=reasoning, max_epochs=3, random_state=0)
    assert RBFPrototypeClassifier(sigma=1.0, **kw).fit(X[first], y[first]).score(X, y) > 0.9
    stream = RBFPrototypeClassifier(sigma=1.0, **kw)
    stream.partial_fit(X[first], y[first], classes=[0, 1, 2])
    assert stream.partial_fit(X, y).score(X, y) > 0.9
    assert RBFPrototypeClassifier(sigma=0.01, **kw).fit(D, yd).score(D, yd) == 1.0
    # a row off the components still needs to be detected: iris, 30 components, some
    # on a row (the message counts them apart)
    Xi, yi = load_iris(return_X_y=True)
    with pytest.raises(
        ValueError,
        match=r"rounds to 0 in float32, but for the [0-9]+ rows lying on a component, "
        r"detected by it alone \(the nearest component of any other row is",
    ):
        RBFPrototypeClassifier(sigma=1e-4, n_components=30, **kw).fit(Xi, yi)


def test_certified_accuracy_checks_each_value_of_eps():
    # (the dtype check let a True among numbers through, read as a budget of 1.0,
    # and refused real numbers numpy holds as objects: a Fraction, an int beyond int64)
    from fractions import Fraction

    from sklearn.datasets import load_iris

    from skproto import certified_accuracy

    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="glvq", max_epochs=5, random_state=0).fit(X, y)
    for eps in ([0.1, True], [0, np.True_], (1, False)):
        with pytest.raises(ValueError, match="eps must be a number or a 1-D array-like"):
            certified_accuracy(clf, X, y, eps)
    assert certified_accuracy(clf, X, y, Fraction(1, 10)) == certified_accuracy(clf, X, y, 0.1)
    np.testing.assert_array_equal(
        certified_accuracy(clf, X, y, [Fraction(1, 10), 2**70]),
        certified_accuracy(clf, X, y, [0.1, 2.0**70]),
    )
    assert certified_accuracy(clf, X, y, []).shape == (0,)


def test_cbc_radius_without_a_possible_rival_has_a_finite_gradient():
    # A4C01: every rival without reasoning weights (the positive head's first
    # class of a stream) gave an infinite radius whose gradient through sigma and
    # lipschitz, log(inf) / L, was 0 * inf = NaN
    import torch

    from skproto.robustness.certificates import cbc_radius

    sigma = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    L = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    r_plus = _f64([[0.6, 0.0, 0.0], [0.4, 0.0, 0.0]])
    d = _f64([[0.5, 0.2]])
    r = cbc_radius(d, r_plus, torch.zeros_like(r_plus), torch.tensor([0]), sigma, L)
    assert float(r.detach()[0]) == np.inf
    r.clamp(max=1.0).sum().backward()
    assert float(sigma.grad) == 0.0 and float(L.grad) == 0.0


def test_robust_positive_head_streams_from_a_first_batch_of_one_class():
    # A4C01: partial_fit(classes=[0, 1, 2]) on rows of class 0 only trained the
    # robust loss on infinite radii (no rival has reasoning weights yet) and
    # raised "Training diverged in partial_fit"
    X = np.array([[0.0, 0.0], [0.1, 0.2], [3.0, 0.0], [3.1, 0.2], [0.0, 3.0], [0.2, 3.1]])
    y = np.array([0, 0, 1, 1, 2, 2])
    clf = RBFPrototypeClassifier(loss="robust", reasoning="positive", **FAST)
    clf.partial_fit(X[:2], y[:2], classes=[0, 1, 2])
    assert np.isfinite(clf.prototypes_).all()
    # only class 0 can be predicted: no perturbation changes the prediction
    assert clf.certified_radius(X).tolist() == [np.inf] * 6
    clf.partial_fit(X, y)
    assert np.isfinite(clf.certified_radius(X)).all()
    # so did fit where every other class's rows weigh 0 ("the loss became nan")
    weight = (y == 0).astype(float)
    clf = RBFPrototypeClassifier(loss="robust", reasoning="positive", **FAST)
    assert clf.fit(X, y, sample_weight=weight).certified_radius(X).tolist() == [np.inf] * 6
