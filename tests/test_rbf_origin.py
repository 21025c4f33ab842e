"""RBFPrototypeClassifier trains its components about the training rows' mean.

Before, they were trained in float32 where ``X`` lies: at digits + 2**20 an
Adam step (about 0.03) was below float32's spacing there (0.125), the steps
rounded away and training stalled at its start (test accuracy 0.952 against
0.972 after 20 epochs). The public attributes stay in the input space.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from helpers import assert_explain_faithful, few_shot_blobs
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skproto import RBFPrototypeClassifier

OFFSET = 2.0**20  # digits' 0-16 pixels stay exact in float32 there


@pytest.fixture(scope="module")
def split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def _pair(split, **params):
    Xtr, _, ytr, _ = split
    params = dict(random_state=0, max_epochs=20, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the shifted fit warned that it could not train)
        plain = RBFPrototypeClassifier(**params).fit(Xtr, ytr)
        shifted = RBFPrototypeClassifier(**params).fit(Xtr + OFFSET, ytr)
    return plain, shifted


@pytest.mark.parametrize(
    "params",
    [
        dict(),  # the defaults: loss="robust", the nearest head
        dict(loss="cbc", n_components=20, project=True, project_epochs=2),
        dict(loss="glvq", omega_dim=8, project=True, project_epochs=2),
    ],
)
def test_a_common_offset_trains_the_same_model(split, params):
    # old code: 0.952 against 0.972, 2.4% of the test predictions changed, the
    # prototypes 3.4 apart and certified radii up to 5.7 apart (defaults)
    _, Xte, _, yte = split
    plain, shifted = _pair(split, **params)
    agree = plain.predict(Xte) == shifted.predict(Xte + OFFSET)
    assert agree.mean() >= 0.99
    assert abs(shifted.score(Xte + OFFSET, yte) - plain.score(Xte, yte)) <= 0.01
    # public attributes in the input space, float64
    assert shifted.prototypes_.dtype == np.float64
    np.testing.assert_allclose(shifted.prototypes_ - OFFSET, plain.prototypes_, atol=0.05)
    if params.get("project"):  # projected onto the same rows, each equal to its row
        np.testing.assert_array_equal(
            shifted.prototype_sample_indices_, plain.prototype_sample_indices_
        )
        Xtr = split[0] + OFFSET
        rows = shifted.prototype_sample_indices_
        assert np.all(rows >= 0)
        np.testing.assert_array_equal(shifted.prototypes_, Xtr[rows])
    # distances, hence certificates, do not change under the shift
    r_plain = plain.certified_radius(Xte, yte)
    r_shift = shifted.certified_radius(Xte + OFFSET, yte)
    scale = np.median(r_plain[r_plain > 0])
    np.testing.assert_allclose(r_shift[agree], r_plain[agree], rtol=0, atol=1e-2 * scale)
    ex = shifted.explain(Xte[:20] + OFFSET)
    assert_explain_faithful(shifted, Xte[:20] + OFFSET, ex, atol=1e-12)


def test_a_stream_at_an_offset_trains_alike(split):
    # partial_fit continues a stored model: one step per small batch, less than
    # float32's spacing at 2**20, kept its value (old code: 0.857 against 0.937)
    Xtr, Xte, ytr, yte = split

    def stream(offset):
        clf = RBFPrototypeClassifier(random_state=0)
        rng = np.random.RandomState(0)
        for _ in range(3):
            order = rng.permutation(len(Xtr))
            for s in range(0, len(Xtr), 64):
                rows = order[s : s + 64]
                clf.partial_fit(Xtr[rows] + offset, ytr[rows], classes=np.arange(10))
        return clf

    plain, shifted = stream(0.0), stream(OFFSET)
    assert shifted.score(Xte + OFFSET, yte) >= plain.score(Xte, yte) - 0.01
    # (rounding apart, the same steps: old code left most components near their start)
    assert np.median(np.abs(shifted.prototypes_ - OFFSET - plain.prototypes_)) < 1e-3


def test_new_classes_at_an_offset_train_and_keep_the_earlier_components(split):
    # class-incremental partial_fit on shifted rows: the new classes' components
    # train (old code: 0.956 against 0.965), the earlier ones keep their exact values
    Xtr, Xte, ytr, yte = split
    first = ytr < 5

    def incremental(offset):
        clf = RBFPrototypeClassifier(random_state=0)
        for _ in range(3):
            clf.partial_fit(Xtr[first] + offset, ytr[first])
        before = clf.prototypes_.copy()
        clf.partial_fit(Xtr[~first] + offset, ytr[~first])  # (only the new ones train)
        np.testing.assert_array_equal(clf.prototypes_[: len(before)], before)
        for _ in range(2):
            clf.partial_fit(Xtr[~first] + offset, ytr[~first])
        return clf

    plain, shifted = incremental(0.0), incremental(OFFSET)
    assert shifted.score(Xte + OFFSET, yte) >= plain.score(Xte, yte) - 0.01
    new = len(plain.prototypes_) // 2  # (the new classes' components, last)
    apart = np.abs(shifted.prototypes_[new:] - OFFSET - plain.prototypes_[new:])
    assert np.median(apart) < 1e-3


def test_the_origin_is_fixed_at_the_first_fit_and_pickled(split):
    Xtr, Xte, ytr, _ = split
    clf = RBFPrototypeClassifier(random_state=0, max_epochs=3).fit(Xtr + OFFSET, ytr)
    origin = clf._state["origin"]  # (the mean of the rows not held out for early stopping)
    np.testing.assert_array_equal(origin, origin.astype(np.float32))
    np.testing.assert_allclose(origin, np.mean(Xtr + OFFSET, axis=0), rtol=0, atol=0.5)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(
        loaded.predict_proba(Xte + OFFSET), clf.predict_proba(Xte + OFFSET)
    )
    np.testing.assert_array_equal(
        loaded.certified_radius(Xte + OFFSET), clf.certified_radius(Xte + OFFSET)
    )
    clf.partial_fit(Xtr[::2] + OFFSET + 1.0, ytr[::2])  # partial_fit keeps it
    clf.partial_fit(Xtr[:50] + OFFSET, np.where(ytr[:50] == 3, 10, ytr[:50]))  # (a new class)
    np.testing.assert_array_equal(clf._state["origin"], origin)
    # a refit starts afresh, about its own rows' mean
    clf.fit(Xtr + 2.0 * OFFSET, ytr)
    np.testing.assert_allclose(clf._state["origin"] - origin, OFFSET, rtol=0, atol=0.5)


def test_a_model_pickled_before_the_origin_loads_predicts_and_trains(split):
    # the state of a model fitted before the components trained about an origin
    # had none: it predicts as pickled, and trains on about its components' mean
    Xtr, Xte, ytr, yte = split
    clf = RBFPrototypeClassifier(random_state=0, max_epochs=3).fit(Xtr + OFFSET, ytr)
    expected = clf.predict_proba(Xte + OFFSET), clf.certified_radius(Xte + OFFSET, yte)
    del clf._state["origin"]  # (the state as pickled then)
    old = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(old.predict_proba(Xte + OFFSET), expected[0])
    np.testing.assert_array_equal(old.certified_radius(Xte + OFFSET, yte), expected[1])
    before = old.prototypes_.copy()
    old.partial_fit(Xtr + OFFSET, ytr)
    np.testing.assert_array_equal(
        old._state["origin"], np.mean(before, axis=0).astype(np.float32).astype(np.float64)
    )
    assert np.abs(old.prototypes_ - before).max() > 0.01  # it trained (steps below 0.125)
    assert old.score(Xte + OFFSET, yte) >= 0.9


def test_the_step_warning_is_for_steps_float32_cannot_hold_about_the_mean(split):
    # a common offset no longer warns (old code: "spacing (0.125) exceeds a
    # training step" at digits + 2**20); a step too small for the components'
    # own spread about the mean still does
    Xtr, _, ytr, _ = split
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RBFPrototypeClassifier(random_state=0, max_epochs=1).fit(Xtr + 2.0**23, ytr)
    with pytest.warns(UserWarning, match="about the training rows' mean") as rec:
        RBFPrototypeClassifier(random_state=0, max_epochs=1, learning_rate=1e-10).fit(
            Xtr + OFFSET, ytr
        )
    assert rec[0].filename == __file__


def test_partial_fit_keeps_moves_below_float32s_spacing_at_the_offset(split):
    # partial_fit keeps the stored value of a component that training left where
    # it was; compared where X lies, a move below half float32's spacing there
    # (0.0625 at 2**20; one step here is 1e-6 x the data's unit of 32) counted as
    # none, and every component went back to where it was
    Xtr, _, ytr, _ = split
    clf = RBFPrototypeClassifier(random_state=0, learning_rate=1e-6)
    clf.partial_fit(Xtr[:300] + OFFSET, ytr[:300], classes=np.arange(10))
    before = clf.prototypes_.copy()
    clf.partial_fit(Xtr[300:600] + OFFSET, ytr[300:600])
    moved = np.abs(clf.prototypes_ - before).max(axis=1)
    assert moved.max() < 0.0625
    assert np.mean(moved > 0) > 0.5


def test_components_on_rows_train_where_the_network_holds_their_rows(split):
    # the training network takes float32 rows about the origin, float32(x) - origin:
    # a projected component (stored as its exact float64 row) or one started on a
    # row is held at that value, not at float32(x - origin) a rounding away (a
    # component on a one-row class's row sat 1e-8 from it, and Adam turned that
    # gradient into full steps)
    Xtr, _, ytr, _ = split
    X = Xtr / 3.0 + OFFSET  # (not exact in float32)
    clf = RBFPrototypeClassifier(random_state=0, max_epochs=2, project=True).fit(X, ytr)
    net = clf._continued_network(clf._state)
    rows = clf.prototype_sample_indices_
    assert np.all(rows >= 0)
    held = torch.as_tensor(X[rows], dtype=torch.float32) - net.origin
    np.testing.assert_array_equal(net.components.detach().numpy(), held.numpy())
    # a class of one row: its component stays on it
    one = RBFPrototypeClassifier(loss="glvq", random_state=0)
    one.partial_fit(X[:1], ytr[:1], classes=np.arange(10))
    one.partial_fit(X[:1], ytr[:1])
    np.testing.assert_array_equal(one.prototypes_, X[:1].astype(np.float32))


def test_components_on_rows_are_found_without_a_scan_per_component():
    # sparse rows: the key column is 0 in most rows and in the components (means);
    # a loop over the components scanned all those rows for each (9.8 s here)
    import time

    from skproto.rbf._estimator import _rows_as_rows

    rng = np.random.RandomState(0)
    X = np.maximum(rng.randn(20000, 100), 0) * (rng.rand(20000, 100) < 0.1)
    W = rng.rand(2000, 100)
    W[:, np.argmax(np.ptp(X, axis=0))] = 0.0
    W[::10] = X[:200]
    W[1] = np.where(X[300] == 0, -0.0, X[300])  # (equal as numbers to a row, with -0.0)
    start = time.perf_counter()
    out = _rows_as_rows(W, X)
    assert time.perf_counter() - start < 2.0
    on = np.zeros(len(W), dtype=bool)
    on[::10] = on[1] = True
    np.testing.assert_array_equal(out[on], W[on].astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(out[~on], W[~on])


def test_a_stream_whose_first_batch_is_one_row_trains_alike_with_an_offset():
    """With one distinct row, the scale was read from the row's norm: at digits +
    2**20 that is the offset (sigma 1.2e7 against 92, test accuracy 0.10 against
    0.89). The row's size about its own mean value does not see a common offset."""
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    scores = []
    for off in (0.0, 2.0**20):
        clf = RBFPrototypeClassifier(random_state=0, max_epochs=5)
        clf.partial_fit(Xtr[:1] + off, ytr[:1], classes=np.arange(10))
        for s in range(1, 600, 64):
            clf.partial_fit(Xtr[s : s + 64] + off, ytr[s : s + 64])
        scores.append(clf.score(Xte + off, yte))
    assert scores[1] >= scores[0] - 0.01 and scores[0] > 0.7, scores


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_component_is_the_row_itself_only_within_rounding(dtype):
    # the rows' own components were ignored when they lay within 1 % of the data's
    # unit: two classes of spread 1 beside a third 1,000 away (the unit about 1,000)
    # had every own component of the near classes ignored (typical distance 2,000)
    from skproto._torch.training import squared_distances_to_others

    rng = np.random.default_rng(0)
    near = rng.standard_normal((40, 4))
    Z = np.vstack([near, near[:20] + 1000.0]).astype(dtype)
    P = np.vstack([near[:5] + 0.5, Z[45:47], Z[:1]]).astype(dtype)
    d = np.sqrt(squared_distances_to_others(Z, P))
    assert len(d) == len(Z)  # every row has another component
    assert np.median(d) < 5.0  # (2,000 before)
    # a copy of the row is the row itself, also far from P's mean (rounding there)
    far = (Z + OFFSET).astype(dtype)
    on_rows = np.sqrt(squared_distances_to_others(far[:3], far[:3]))
    assert (on_rows > 0.5).all()


def test_a_class_far_from_the_others_keeps_the_near_classes_apart():
    # iris, standardised, one class moved 1,000 units: sigma started at 2,900 and
    # the robust model read 0.67 on its own training rows, without a warning
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    plain = RBFPrototypeClassifier(random_state=0).fit(X, y)
    X[y == 2] += 1000.0
    shifted = RBFPrototypeClassifier(random_state=0).fit(X, y)
    assert shifted.score(X, y) == 1.0
    # (the far class's own components count as its rows' own there: 0.81, not 0.74)
    assert 0.5 * plain.sigma_ < shifted.sigma_ < 2 * plain.sigma_  # (2,900 before)


@pytest.mark.parametrize("sigma", [1e-20, 1e-3])
def test_a_class_far_from_the_others_leaves_a_too_small_sigma_refused(sigma):
    # the refusal of a sigma that detects nothing read "a row on a component" within
    # 1 % of the whole data's unit (about 10 here): every row of the two near classes
    # was on one, nothing was checked, and CBC trained at 1e-3 to 0.33, silently, and
    # at 1e-20 to "Training diverged ... Lower learning_rate"
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X[y == 2] += 1000.0
    with pytest.raises(ValueError, match=f"sigma={sigma!r} is too small for these rows"):
        RBFPrototypeClassifier(loss="cbc", sigma=sigma, random_state=0, max_epochs=2).fit(X, y)
    # a sigma of the near classes' spread still trains
    clf = RBFPrototypeClassifier(loss="cbc", sigma=1.0, random_state=0, max_epochs=20).fit(X, y)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("shots", [1, 2])
def test_jittered_copies_of_a_class_s_rows_are_the_rows_themselves(shots):
    # a class with fewer distinct rows than components starts on its rows, jittered
    # by 1e-3 of the data's spread (kmeans_prototypes): far beyond the rounding,
    # so they counted as other components, and sigma and margin_ were about the
    # jitter (2 rows a class: sigma 0.012 where 13 fits, the temperature 43)
    X, y, _, _ = few_shot_blobs(50, shots)
    typical = np.median(np.linalg.norm(X[:, None] - X[None], axis=-1))
    clf = RBFPrototypeClassifier(max_epochs=1, early_stopping=False, random_state=0).fit(X, y)
    assert clf.margin_ > 0.1 * typical and clf.sigma_ > 0.1 * typical
    # a stream whose first batch is one row (its class: 3 jittered copies of it)
    size = np.linalg.norm(X[0] - X[0].mean())
    clf = RBFPrototypeClassifier(max_epochs=1, random_state=0)
    clf.partial_fit(X[:1], y[:1], classes=np.unique(y))
    assert clf.margin_ > 0.1 * size
    # (the CBC head: the classes without rows start at the rows' mean, jittered)
    clf = RBFPrototypeClassifier(loss="cbc", max_epochs=1, random_state=0)
    clf.partial_fit(X[:1], y[:1], classes=np.unique(y))
    assert clf.sigma_ > 0.1 * size


def test_near_copies_of_rows_are_the_rows_themselves():
    # rows that differ in their 6th digit (each row twice, 3 rows a class): k-means
    # put a component on each copy, and the row's nearest other component was its
    # copy's, 1e-6 away: sigma 6e-6 where 12 fits, the temperature at its bound
    # (999.9) and a test log-loss of 14.2 against 2.0
    X, y, _, _ = few_shot_blobs(50, 3)
    rng = np.random.RandomState(5)
    near = X * (1 + 1e-6 * rng.uniform(-1, 1, size=X.shape))
    X, y = np.vstack([X, near]), np.concatenate([y, y])
    typical = np.median(np.linalg.norm(X[:, None] - X[None], axis=-1))
    clf = RBFPrototypeClassifier(max_epochs=1, early_stopping=False, random_state=0).fit(X, y)
    assert clf.margin_ > 0.1 * typical and clf.sigma_ > 0.1 * typical


@pytest.mark.parametrize("loss", ["glvq", "cbc"])
def test_one_row_classes_read_no_unit_from_a_feature_s_offset(loss):
    # a class of one distinct row has no spread: its unit was the row's size about
    # its own mean value, which a feature's offset sets (one feature + 1e4: the
    # bound 82, every component a row's own, sigma 1.4e4 where 13 fits; CBC's
    # test accuracy 0.05 against 0.50)
    X, y, _, _ = few_shot_blobs(50, 1)
    kw = dict(loss=loss, n_components=50, max_epochs=1, early_stopping=False, random_state=0)
    plain = RBFPrototypeClassifier(**kw).fit(X, y)
    X = X.copy()
    X[:, 0] += 1e4
    shifted = RBFPrototypeClassifier(**kw).fit(X, y)
    assert shifted.sigma_ == pytest.approx(plain.sigma_, rel=0.05)


def test_a_row_and_its_near_copy_are_the_row_itself():
    # one row a class, each twice with 1e-6 between the copies, one component a
    # class (between the copies): the class's spread was the copies' difference,
    # and sigma 4e-6 where 13 fits (the temperature at its bound, test log-loss 17.8)
    X, y, _, _ = few_shot_blobs(50, 1)
    rng = np.random.RandomState(5)
    near = X * (1 + 1e-6 * rng.uniform(-1, 1, size=X.shape))
    X2, y2 = np.vstack([X, near]), np.concatenate([y, y])
    kw = dict(loss="glvq", max_epochs=1, early_stopping=False, random_state=0)
    plain = RBFPrototypeClassifier(**kw).fit(X, y)
    copies = RBFPrototypeClassifier(**kw).fit(X2, y2)
    assert copies.sigma_ == pytest.approx(plain.sigma_, rel=0.05)


def test_one_row_classes_are_jittered_in_the_spread_of_each_feature():
    # the k-means start jitters copies of a class's rows by 1e-3 of the data's
    # spread, which was read about one mean of all entries: a feature at +1e4
    # counted as spread (jitter about 100 units), and the robust model read 0.356
    # where 0.52 fits (sigma 14,200 where 13.4)
    X, y, X_test, y_test = few_shot_blobs(50, 1)
    plain = RBFPrototypeClassifier(random_state=0).fit(X, y)
    offset = np.zeros(X.shape[1])
    offset[0] = 1e4
    shifted = RBFPrototypeClassifier(random_state=0).fit(X + offset, y)
    assert shifted.sigma_ == pytest.approx(plain.sigma_, rel=1e-3)
    assert shifted.score(X_test + offset, y_test) >= plain.score(X_test, y_test) - 0.02


@pytest.mark.parametrize("loss", ["robust", "cbc"])
def test_own_bound_reads_no_offset_and_scales_with_the_units(loss):
    # classes whose rows lie mostly on their mean ([a, a, a, a - d, a + d]): the
    # median of their centred norms is 0, and data_scale's fallback read the row's
    # size about its own mean value, which a feature's offset sets (+1e4: sigma
    # 6.74 where 4.79 fits); its power of two also made sigma_ not follow X * c
    rng = np.random.RandomState(0)
    X, y = [], []
    for c in range(10):
        a, d = 3 * rng.randn(4), rng.randn(4)
        X += [a, a, a, a - d, a + d]
        y += [c] * 5
    X, y = np.array(X), np.array(y)
    kw = dict(
        loss=loss,
        n_components=10,
        max_epochs=1,
        early_stopping=False,
        learn_sigma=False,
        random_state=0,
    )
    plain = RBFPrototypeClassifier(**kw).fit(X, y)
    shifted = X.copy()
    shifted[:, 0] += 1e4
    assert RBFPrototypeClassifier(**kw).fit(shifted, y).sigma_ == pytest.approx(
        plain.sigma_, rel=1e-3
    )
    assert RBFPrototypeClassifier(**kw).fit(X * 3, y).sigma_ == pytest.approx(
        3 * plain.sigma_, rel=1e-6
    )


@pytest.mark.parametrize("gap", [1e-4, 1e-3, 1e-2])
def test_a_row_and_its_copy_a_little_apart_are_the_row_itself(gap):
    # with the class's unit at least 1e-3 of its distance to another class, copies
    # 1e-4 to 1e-2 apart (relative) were each other's other component: sigma fell
    # to their gap (0.0035 where 13.4 fits at 1e-3) and CBC read 0.02 on test
    X, y, _, _ = few_shot_blobs(50, 1)
    rng = np.random.RandomState(5)
    near = X * (1 + gap * rng.uniform(-1, 1, size=X.shape))
    X2, y2 = np.vstack([X, near]), np.concatenate([y, y])
    kw = dict(loss="glvq", n_components=50, max_epochs=1, early_stopping=False, random_state=0)
    plain = RBFPrototypeClassifier(**kw).fit(X, y)
    copies = RBFPrototypeClassifier(**kw).fit(X2, y2)
    assert copies.sigma_ == pytest.approx(plain.sigma_, rel=0.05)
