"""The shared torch training loop and the template's settings (threads, history)."""

import re

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris, make_classification

import skproto._torch.estimator as template
from skproto import ProtoClassifier, RBFPrototypeClassifier
from skproto._torch.training import TrainingConfig, new_history, resolve_n_threads, train
from skproto.losses import cbc_margin_loss, glvq_loss, separation_cost


def _train_theta(X_val: np.ndarray, **settings):
    """Train one scalar ``theta`` towards 5 (40 training rows at 5) with early
    stopping on ``X_val``; returns the history and the restored held-out loss."""
    theta = torch.nn.Parameter(torch.zeros(()))
    module = torch.nn.Module()
    module.theta = theta

    def loss(xb, tb, wb):
        return (wb * (theta - xb[:, 0]) ** 2).mean()

    X = np.full((40, 1), 5.0, dtype=np.float32)
    T = np.zeros(40, dtype=int)
    config = TrainingConfig(max_epochs=50, batch_size=8, early_stopping=True, **settings)
    history = train(
        module, [theta], loss, X, T, np.ones(40, np.float32), config,
        np.random.RandomState(0), X_val=X_val, targets_val=T[: len(X_val)],
    )  # fmt: skip
    with torch.no_grad():
        restored = float(loss(torch.as_tensor(X_val), None, torch.ones(len(X_val))))
    return history, restored


def test_early_stopping_restores_the_best_epoch():
    # The validation rows sit at 0, so every epoch makes the validation loss
    # worse and the best state is the one after the first epoch.
    X_val = np.zeros((10, 1), dtype=np.float32)
    history, restored = _train_theta(X_val, learning_rate=0.1, n_iter_no_change=3)
    assert len(history["val_loss"]) == 4  # the best epoch, then 3 without improvement
    assert np.argmin(history["val_loss"]) == 0
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-6)


def test_early_stopping_restores_the_lowest_loss_not_the_last_big_drop():
    # The validation loss keeps falling, by less than tol after the first epoch:
    # the patience runs out, and the state restored must be the last (lowest)
    # one. The loop restored the first epoch, the last that improved by tol.
    X_val = np.full((10, 1), 5.0, dtype=np.float32)
    history, restored = _train_theta(X_val, learning_rate=0.01, n_iter_no_change=3, tol=10.0)
    val = history["val_loss"]
    assert len(val) == 4 and np.all(np.diff(val) < 0)  # each epoch lower, by < tol
    assert restored == pytest.approx(val[-1], rel=1e-6)


@pytest.mark.parametrize("make", [ProtoClassifier, RBFPrototypeClassifier])
def test_one_history_schema(make):
    X, y = load_iris(return_X_y=True)
    clf = make(max_epochs=5, random_state=0, early_stopping=True, project=True).fit(X, y)
    assert set(clf.history_) == set(new_history())
    assert len(clf.history_["loss"]) == clf.n_iter_ == len(clf.loss_curve_)
    assert 0 <= clf.history_["accuracy_before_projection"] <= 1
    assert 0 <= clf.history_["val_accuracy_before_projection"] <= 1
    assert 0 <= clf.history_["accuracy_after_projection"] <= 1
    refit = clf.history_["refit"]
    if make is ProtoClassifier:  # the mixture head has no stage after projection
        assert refit is None
        assert clf.history_["temperature"] == clf.temperature_
        clf = make(
            head="linear", max_epochs=5, random_state=0, early_stopping=True, project=True
        ).fit(X, y)
        refit = clf.history_["refit"]
    else:  # the nearest head without Omega has nothing to refit (no loss reads sigma)
        assert refit is None
        clf = make(loss="cbc", max_epochs=5, random_state=0, early_stopping=True, project=True).fit(
            X, y
        )
        refit = clf.history_["refit"]
    assert set(refit) == {"method", "loss", "n_iter", "seconds", "converged", "max_gradient"}
    assert refit["method"] == ("lbfgs" if make is ProtoClassifier else "adam")


@pytest.mark.parametrize("make", [ProtoClassifier, RBFPrototypeClassifier])
def test_training_accuracies_are_scored_on_at_most_scored_rows(make, monkeypatch):
    """The accuracies around the projection, like train_score, are estimates on
    at most SCORED_ROWS evenly spaced rows: scored on every row (13,500 and
    15,000 on CLINC150) they took 0.7 s of a 12 s fit."""
    from skproto._torch import training

    rows = []
    evaluate = make._evaluate

    def recording(self, net, X, method="scores"):
        if method == "scores":
            rows.append(len(X))
        return evaluate(self, net, X, method)

    monkeypatch.setattr(make, "_evaluate", recording)
    monkeypatch.setattr(training, "SCORED_ROWS", 50)
    X, y = make_classification(600, 6, n_informative=4, n_classes=3, random_state=0)
    clf = make(max_epochs=2, random_state=0, project=True, temperature=1.0).fit(X, y)
    assert rows and max(rows) <= 60  # (the early-stopping split: 60 rows)
    assert 0 <= clf.history_["accuracy_before_projection"] <= 1
    assert 0 <= clf.history_["accuracy_after_projection"] <= 1
    kept = training.scored_sample(X, y, np.ones(len(X)))
    assert len(kept[0]) == 50 and np.array_equal(kept[0], X[np.isin(X, kept[0]).all(1)])


def test_the_scored_rows_do_not_alias_with_a_periodic_order_of_the_classes():
    """Every k-th row (the scored rows before) of y = [0, 1, 2, 3] * 2000 was
    class 0 alone: accuracy_after_projection read 1.0 where the model scored
    0.51 (found by the review of this change)."""
    from skproto._torch import training

    y = np.tile([0, 1, 2, 3], 2000)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(len(y), 5))
    X[y == 0] += 10.0  # class 0 apart, the other three one cloud
    kept = training.scored_sample(X, y, np.ones(len(y)))
    assert len(kept[0]) == training.SCORED_ROWS and set(np.unique(kept[1])) == {0, 1, 2, 3}
    clf = RBFPrototypeClassifier(project=True, max_epochs=2, random_state=0).fit(X, y)
    assert abs(clf.history_["accuracy_after_projection"] - clf.score(X, y)) < 0.05


def test_an_epoch_of_zero_loss_that_moved_nothing_ends_training(capsys):
    """Where the robust loss is exactly 0 from the first epoch (separable
    data), no parameter moves and every later epoch repeats it: early
    stopping waited out its 10 epochs of patience all the same (300 classes
    of 5-20 rows, 512 features: 8.6 s for 11 epochs against 1.8 s; a
    defaults audit). The model equals a one-epoch fit."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(300, n_features=8, centers=3, cluster_std=0.3, random_state=0)
    clf = RBFPrototypeClassifier(random_state=0, verbose=1).fit(X, y)
    assert clf.n_iter_ == 1 and clf.history_["loss"] == [0.0]
    assert "zero loss, no parameter moved: stopping" in capsys.readouterr().out
    one = RBFPrototypeClassifier(random_state=0, max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), one.predict_proba(X))
    np.testing.assert_array_equal(clf.prototypes_, one.prototypes_)
    # a loss of 0 where the parameters still move (weight decay) trains on
    decayed = RBFPrototypeClassifier(random_state=0, max_epochs=3, weight_decay=1e-2).fit(X, y)
    assert decayed.n_iter_ == 3


def test_threads_default_to_one_during_fit_and_are_restored(monkeypatch):
    seen = []
    real = template.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(template, "train", spy)
    X, y = load_iris(return_X_y=True)
    before = torch.get_num_threads()
    ProtoClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert seen == [1]
    assert torch.get_num_threads() == before
    ProtoClassifier(max_epochs=2, random_state=0, n_jobs=2).fit(X, y)
    assert seen[-1] == 2
    assert resolve_n_threads(None) == 1 and resolve_n_threads(3) == 3
    assert resolve_n_threads(-1) >= 1


def test_latent_drift_is_the_relative_squared_change():
    """Known answers: no change 0, collapse to zero or doubling 1, zero rows stay finite."""
    from skproto.losses import latent_drift

    z0 = torch.tensor([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [0.0, 0.0]])
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, 0.0]])
    torch.testing.assert_close(latent_drift(z, z0), torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_the_validation_split_never_takes_a_class_s_last_training_row():
    """Too few rows to stratify: every class keeps a training row; none left: no split."""
    from skproto import RBFPrototypeClassifier

    clf = RBFPrototypeClassifier(validation_fraction=0.5)
    for T in [np.array([0, 1, 2, 2, 2, 2]), np.array([0, 0, 1, 2, 3, 3, 3])]:
        clf.classes_ = np.unique(T)
        for seed in range(20):
            fit_rows, val_rows = clf._early_stopping_split(T, np.random.RandomState(seed))
            assert set(T[fit_rows]) == set(T)  # every class trains
            assert len(val_rows) and not set(fit_rows) & set(val_rows)
    clf.classes_ = np.array([0, 1])
    assert clf._early_stopping_split(np.array([0, 1]), np.random.RandomState(0))[1] is None
    X, y = np.array([[0.0, 0.0], [5.0, 5.0]]), np.array(["a", "b"])
    fitted = RBFPrototypeClassifier(max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(fitted.predict(X), y)  # was ["a", "a"]: "b" held out


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_steps_exactly_like_torch_adam(weight_decay, dtype):
    """Our Adam equals torch.optim.Adam bit for bit, skipped gradients included."""
    from skproto._torch.training import Adam

    gen = torch.Generator().manual_seed(0)
    start = [
        torch.randn(5, 3, generator=gen, dtype=dtype),
        torch.randn(4, generator=gen, dtype=dtype),
    ]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    ref = [torch.nn.Parameter(t.clone()) for t in start]
    opt_ours = Adam(ours, lr=3e-3, weight_decay=weight_decay)
    opt_ref = torch.optim.Adam(ref, lr=3e-3, weight_decay=weight_decay)
    for it in range(40):
        for params, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            loss = (params[0] ** 3).sum()
            if it % 3:  # every third step the second parameter has no gradient
                loss = loss + params[1].sin().sum()
            loss.backward()
            opt.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_does_not_import_dynamo():
    """A fit in a fresh process does not pay torch._dynamo's import (about 2 s)."""
    import subprocess
    import sys

    code = (
        "import sys; from sklearn.datasets import load_iris; from skproto import ProtoClassifier;"
        "X, y = load_iris(return_X_y=True);"
        "ProtoClassifier(max_epochs=2, random_state=0).fit(X, y);"
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_epoch_score_reads_the_same_scored_rows_every_epoch(monkeypatch):
    import skproto._torch.training as training

    monkeypatch.setattr(training, "SCORED_ROWS", 7)
    theta = torch.nn.Parameter(torch.zeros(()))
    module = torch.nn.Module()
    module.theta = theta
    X = np.arange(30, dtype=np.float32)[:, None]
    seen = []

    def score(Xs, Ts, Ws):
        seen.append(Xs[:, 0].copy())
        return 1.0

    config = TrainingConfig(max_epochs=2, batch_size=8, learning_rate=0.1)
    history = train(
        module, [theta], lambda xb, tb, wb: ((theta - xb[:, 0]) ** 2).mean(), X,
        np.zeros(30, dtype=int), np.ones(30, np.float32), config, np.random.RandomState(0),
        score=score,
    )  # fmt: skip
    assert history["train_score"] == [1.0, 1.0]
    assert len(seen[0]) == 7 and np.all(np.diff(seen[0]) > 0)  # 7 distinct rows, in order
    np.testing.assert_array_equal(seen[0], seen[1])


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_a_parameter_in_data_units_steps_in_its_unit(weight_decay):
    """in_units(p, u): p = u * q with the loss of q(p / u) follows u times q's path."""
    from skproto._torch.training import Adam, in_units

    unit = 2.0**-12
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(6, generator=gen, dtype=torch.float64)
    q = torch.nn.Parameter(start.clone())
    p = in_units(torch.nn.Parameter(start * unit), unit)
    opt_q = Adam([q], lr=1e-2, weight_decay=weight_decay, eps=0.0)
    opt_p = Adam([p], lr=1e-2, weight_decay=weight_decay, eps=0.0)
    for _ in range(30):
        for param, opt, scale in ((q, opt_q, 1.0), (p, opt_p, unit)):
            opt.zero_grad()
            ((param / scale) ** 3 - (param / scale)).sum().backward()
            opt.step()
    torch.testing.assert_close(p.detach(), q.detach() * unit, rtol=1e-12, atol=0)
    # a unit of 1 is no mark at all: bit for bit the plain step
    a, b = torch.nn.Parameter(start.clone()), in_units(torch.nn.Parameter(start.clone()), 1.0)
    for param in (a, b):
        opt = Adam([param], lr=1e-2, weight_decay=weight_decay)
        for _ in range(5):
            opt.zero_grad()
            (param**3).sum().backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("k", [-14, -6, 8])
def test_proto_classifier_trains_alike_in_any_units_of_X(k):
    """Regression: Adam's steps were absolute, so on features of size 1e-4 the
    prototypes were thrown far from the data and the fit fell to chance (digits:
    0.10). The map now sees X divided by a power of two near its row norm."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    unit = ProtoClassifier(max_epochs=15, random_state=0).fit(X, y)
    scaled = ProtoClassifier(max_epochs=15, random_state=0).fit(X * 2.0**k, y)
    np.testing.assert_array_equal(scaled.predict(X * 2.0**k), unit.predict(X))
    np.testing.assert_allclose(scaled.predict_proba(X * 2.0**k), unit.predict_proba(X), atol=1e-6)
    assert unit.score(X, y) > 0.9


@pytest.mark.parametrize("k", [-14, 8])
def test_rbf_components_step_in_the_units_of_X(k):
    """Regression: on features of size 1e-4 the components were thrown far from the
    data (digits: accuracy 0.10); on pixel values (0-255) they hardly moved (0.95
    against 0.97 at [0, 1], and no convergence in 100 epochs)."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    unit = RBFPrototypeClassifier(max_epochs=30, random_state=0).fit(X, y)
    scaled = RBFPrototypeClassifier(max_epochs=30, random_state=0).fit(X * 2.0**k, y)
    agree = np.mean(scaled.predict(X * 2.0**k) == unit.predict(X))
    assert agree >= 0.97
    assert scaled.score(X * 2.0**k, y) >= unit.score(X, y) - 0.03 > 0.87
    assert scaled.n_iter_ == pytest.approx(unit.n_iter_, abs=3)


@pytest.mark.parametrize("unit", [2.0**-30, 2.0**30])
def test_adam_s_eps_is_in_the_units_of_the_gradient(unit):
    """in_units(p, u) follows u times q's path with Adam's default eps too.

    Regression: eps (1e-8) was added to sqrt(v) in the gradient's units, which
    are 1/u of the unitless ones: on data of large units eps outweighed the
    gradient and the steps shrank (RBF on iris * 2**30: probabilities 0.014 off
    those at unit scale, CBC head 0.026, accuracy 0.927 against 0.933)."""
    from skproto._torch.training import Adam, in_units

    gen = torch.Generator().manual_seed(0)
    start = torch.randn(6, generator=gen, dtype=torch.float64) * 1e-7  # small gradients
    q = torch.nn.Parameter(start.clone())
    p = in_units(torch.nn.Parameter(start * unit), unit)
    opt_q, opt_p = Adam([q], lr=1e-2), Adam([p], lr=1e-2)
    for _ in range(30):
        for param, opt, scale in ((q, opt_q, 1.0), (p, opt_p, unit)):
            opt.zero_grad()
            ((param / scale) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(p.detach(), q.detach() * unit, rtol=1e-12, atol=0)


@pytest.mark.parametrize("params", [dict(), dict(loss="cbc")], ids=["robust", "cbc"])
@pytest.mark.parametrize("k", [-30, 10, 30])
def test_rbf_trains_alike_on_x_times_a_power_of_two(params, k):
    """A power of two scales exactly (data_scale), so X * 2**k trains as X.

    Regression: Adam's eps was absolute, so on large units (2**30) it outweighed
    the components' gradients: probabilities 0.014 (robust) and 0.026 (CBC) off."""
    X, y = load_iris(return_X_y=True)
    unit = RBFPrototypeClassifier(max_epochs=20, random_state=0, **params).fit(X, y)
    scaled = RBFPrototypeClassifier(max_epochs=20, random_state=0, **params).fit(X * 2.0**k, y)
    assert scaled.n_iter_ == unit.n_iter_
    np.testing.assert_array_equal(scaled.predict(X * 2.0**k), unit.predict(X))
    np.testing.assert_allclose(scaled.predict_proba(X * 2.0**k), unit.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(scaled.prototypes_ / 2.0**k, unit.prototypes_, rtol=1e-5, atol=1e-6)


def test_n_jobs_zero_is_refused():
    """Regression: n_jobs=0 trained on cpu_count + 1 threads (3 on 2 cores)."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    for clf in (ProtoClassifier(n_jobs=0), RBFPrototypeClassifier(n_jobs=0)):
        with pytest.raises(InvalidParameterError, match="'n_jobs' parameter"):
            clf.fit(X, y)
    assert ProtoClassifier(n_jobs=-1, max_epochs=1)._n_threads >= 1


@pytest.mark.parametrize("early_stopping", [True, False])
def test_a_diverging_fit_raises_instead_of_returning_a_broken_model(early_stopping):
    """Regression: at learning_rate=1e6 the loss became NaN, fit returned, and the
    model's predict_proba raised 'computed non-finite class scores' later."""
    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(
        learning_rate=1e6, max_epochs=3, early_stopping=early_stopping, random_state=0
    )
    with pytest.raises(ValueError, match=r"Training diverged in fit: .* Lower learning_rate"):
        clf.fit(X, y)


def test_verbose_says_how_training_ended_and_what_followed(capsys):
    # verbose said nothing when max_epochs was reached, when an earlier epoch was
    # restored, about the projection, or the fitted temperature
    from sklearn.datasets import load_iris

    from skproto import ProtoClassifier, RBFPrototypeClassifier

    X, y = load_iris(return_X_y=True)
    ProtoClassifier(verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "[fit] no improvement in 2 epochs: stopping" in out
    assert "[fit] restored epoch " in out and "(the lowest held-out loss)" in out
    assert "[ProtoClassifier] projected 15 of 15 prototypes onto training rows" in out
    assert "[ProtoClassifier] temperature " in out
    RBFPrototypeClassifier(verbose=1, random_state=0, max_epochs=3).fit(X, y)
    assert "[fit] reached max_epochs=3" in capsys.readouterr().out
    ProtoClassifier(random_state=0).fit(X, y)
    assert capsys.readouterr() == ("", "")


def test_overlapping_predictions_restore_torch_threads():
    # each predict saved and restored torch's (process-wide) thread count by
    # itself: overlapping calls in several threads restored each other's
    # values, and the process was left at n_jobs=2 or 3 instead of 1
    import threading

    X, y = load_iris(return_X_y=True)
    models = [
        RBFPrototypeClassifier(max_epochs=2, random_state=0, n_jobs=k).fit(X, y) for k in (2, 3)
    ]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        threads = [
            threading.Thread(target=lambda m=m: [m.predict_proba(X) for _ in range(200)])
            for m in models * 2
        ]
        [t.start() for t in threads]
        [t.join() for t in threads]
        seen = []
        fresh = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        fresh.start()
        fresh.join()
        assert torch.get_num_threads() == 1 and seen == [1]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("make", [ProtoClassifier, RBFPrototypeClassifier])
def test_a_pickled_model_predicts_whatever_torch_default_device(make):
    # the CPU inference network was built with tensors on torch's default
    # device: under set_default_device("cuda") (here "meta") unpickling failed,
    # or predict mixed devices
    import pickle

    X, y = load_iris(return_X_y=True)
    model = make(max_epochs=2, random_state=0).fit(X, y)
    blob = pickle.dumps(model)
    with torch.device("meta"):
        loaded = pickle.loads(blob)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        if make is RBFPrototypeClassifier:
            np.testing.assert_array_equal(loaded.certified_radius(X), model.certified_radius(X))


def test_a_map_that_became_nan_is_a_diverged_run_not_a_torch_error():
    # a step left the RBF map Omega NaN while the epoch's loss was finite: the next
    # forward pass's spectral norm raised torch's raw LinAlgError (an SVD error)
    # (at the default learning rate this data diverged while the components trained
    # where X lies; about the rows' mean it trains, so a rate of 1e3 makes the map NaN;
    # sigma=1.0, the components some 200 away, is refused now: every detection 0;
    # the positive-negative head is refused at 3.0 too since 6a53a63, by its median
    # check: it trained to accuracy 0.5 at the default rate, and this test failed)
    X, y = np.array([[0.0], [1.0], [1e6], [1e6 + 1]]), [0, 0, 1, 1]
    for early_stopping in (True, False):
        clf = RBFPrototypeClassifier(
            loss="robust", reasoning="positive", sigma=3.0, omega_dim=1,
            max_epochs=3, early_stopping=early_stopping, random_state=0, learning_rate=1e3,
        )  # fmt: skip
        with pytest.raises(ValueError, match=r"Training diverged in fit: (a param|the loss)"):
            clf.fit(X, y)


def test_thread_counts_are_restored_per_thread_and_when_nested():
    # torch's count is per thread (OpenMP), and a new thread starts from the last
    # count set anywhere: with one saved value for all threads, a thread that left
    # its block first kept the block's count, and a nested block restored the
    # count from before the outer one
    import threading

    from skproto._torch.training import torch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started, release = threading.Event(), threading.Event()

        def worker():
            with torch_threads(3):
                started.set()
                release.wait()

        t = threading.Thread(target=worker)
        with torch_threads(2):  # this thread enters first and leaves first
            t.start()
            started.wait()
        release.set()
        t.join()
        seen = []
        fresh = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        fresh.start()
        fresh.join()
        assert torch.get_num_threads() == 1 and seen == [1]
        with torch_threads(2):
            with torch_threads(1):
                pass
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProtoClassifier(max_epochs=3, random_state=0),
        lambda: ProtoClassifier(head="linear", max_epochs=3, random_state=0),
        lambda: RBFPrototypeClassifier(max_epochs=3, random_state=0),
        lambda: RBFPrototypeClassifier(loss="cbc", omega_dim=2, project=True, max_epochs=3),
    ],
    ids=["proto", "proto-linear", "rbf", "rbf-cbc-omega"],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # (a short refit)
def test_fits_and_explanations_ignore_torch_default_device(make):
    # under torch.set_default_device("cuda") (here "meta": no tensor made there
    # can be computed with) the start of the map, the stream's state, the
    # calibration and the mixture head's explanation made tensors on that device
    X, y = load_iris(return_X_y=True)
    ref = make().set_params(random_state=0).fit(X, y)
    linear = getattr(ref, "head", None) == "linear" or getattr(ref, "loss", None) == "cbc"
    with torch.device("meta"):
        clf = make().set_params(random_state=0).fit(X, y)
        np.testing.assert_array_equal(clf.predict_proba(X), ref.predict_proba(X))
        np.testing.assert_array_equal(clf.explain(X[:5]).scores, ref.explain(X[:5]).scores)
        stream = make().partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2] if linear else None)
        stream.partial_fit(X[y == 2], y[y == 2])
    assert stream.predict(X[:1]).shape == (1,)


# ---------------------------------------------------------------------------
# Tests for survivors of a mutation audit of the torch estimators and the
# training loop (each mutant, applied to a copy of HEAD, passed the suite before)


def test_an_infinite_loss_or_a_last_step_that_overflows_is_a_diverged_run():
    X, t, w = np.ones((4, 1), np.float32), np.zeros(4, np.int64), np.ones(4, np.float32)
    lin = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(-3.3e38)  # the only step overflows it; its loss was finite
    config = TrainingConfig(max_epochs=1, batch_size=4, learning_rate=3e37)
    with pytest.raises(ValueError, match="a parameter became non-finite"):
        train(lin, list(lin.parameters()), lambda xb, tb, wb: lin(xb).mean(), X[:1], t[:1],
              w[:1], config, np.random.RandomState(0))  # fmt: skip
    lin = torch.nn.Linear(1, 1, bias=False)
    infinite = lambda xb, tb, wb: lin(xb).mean() + torch.tensor(float("inf"))
    config = TrainingConfig(max_epochs=1, batch_size=4, learning_rate=1e-3)
    with pytest.raises(ValueError, match="the loss became inf in epoch 1"):
        train(lin, list(lin.parameters()), infinite, X, t, w, config, np.random.RandomState(0))


def test_the_weighted_mean_of_the_losses_weighs_its_rows():
    from skproto.losses import weighted_mean

    per_sample = torch.tensor([1.0, 2.0, 4.0])
    w = torch.tensor([1.0, 0.0, 3.0])
    assert float(weighted_mean(per_sample, w)) == pytest.approx((1.0 + 12.0) / 4.0)
    assert float(weighted_mean(per_sample, torch.zeros(3))) == 0.0


def test_early_stopping_and_the_temperature_use_the_held_out_rows_and_their_weights(
    monkeypatch,
):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 4)
    y = (X[:, 0] + 0.5 * rng.randn(200) > 0).astype(int)
    w = np.where(y == 1, 10.0, 0.1)
    seen = {}
    original_train, original_calibrate = template.train, ProtoClassifier._calibrate

    def spy_train(*args, **kwargs):
        seen["val"] = kwargs.get("X_val"), kwargs.get("weights_val")
        return original_train(*args, **kwargs)

    def spy_calibrate(self, net, X, T, w, *args, **kwargs):
        seen["calibrated"] = X, w
        return original_calibrate(self, net, X, T, w, *args, **kwargs)

    monkeypatch.setattr(template, "train", spy_train)
    monkeypatch.setattr(ProtoClassifier, "_calibrate", spy_calibrate)
    clf = ProtoClassifier(
        n_prototypes_per_class=2, max_epochs=3, validation_fraction=0.3, random_state=0
    ).fit(X, y, sample_weight=w)
    X_val, w_val = seen["val"]
    assert w_val is not None and len(w_val) == len(X_val) == 60
    np.testing.assert_allclose(np.unique(w_val), [0.1, 10.0], rtol=1e-6)  # (not None: ones)
    X_cal, w_cal = seen["calibrated"]
    np.testing.assert_array_equal(X_cal, X_val)  # the temperature: held-out rows only
    np.testing.assert_array_equal(w_cal, w_val)
    assert clf.n_iter_ == len(clf.history_["loss"])


def test_a_warm_fit_counts_its_epochs_on_top_of_the_first():
    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(max_epochs=3, early_stopping=False, warm_start=True, random_state=0)
    clf.fit(X, y)
    assert clf.n_iter_ == 3
    clf.fit(X, y)
    assert clf.n_iter_ == 6 == len(clf.history_["loss"])


def test_a_new_class_between_old_ones_keeps_their_biases():
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(100, 2), rng.randn(10, 2) + 4.0, rng.randn(30, 2) + [0.0, 4.0]]
    y = np.r_[np.zeros(100, int), np.full(10, 2), np.ones(30, int)]
    clf = ProtoClassifier(n_prototypes_per_class=1, max_epochs=3, random_state=0)
    clf.fit(X[:110], y[:110])
    before = clf.intercept_.copy()
    assert before[0] != before[1]
    clf.partial_fit(X[110:], y[110:])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    np.testing.assert_allclose(clf.intercept_[[0, 2]], before, rtol=1e-6)


def test_a_learning_rate_whose_step_overflows_float32_is_a_diverged_run():
    """Regression: Adam's step scalar beyond float32 (learning_rate 3e38) raised
    torch's "value cannot be converted to type float without overflow"; at 3e37
    the head's temperature overflowed to inf and the fit returned a model whose
    every score was inf."""
    X, y = load_iris(return_X_y=True)
    for lr in (3e37, 3e38):
        clf = ProtoClassifier(learning_rate=lr, max_epochs=2, random_state=0)
        with pytest.raises(ValueError, match="Training diverged"):
            clf.partial_fit(X, y, classes=[0, 1, 2])
        assert not hasattr(clf, "classes_")


def test_losses_on_known_answers():
    """Hand-computed values of each loss (a mutation audit changed a sign, a
    reduction, a mask or a constant in each, and only training-level tests ran
    them, none failing)."""
    from skproto.losses import (
        cbc_margin_loss,
        classification_loss,
        cluster_cost,
        glvq_loss,
        st_protopnet_loss,
    )

    # multi-label: the mean binary cross-entropy over the labels, not the sum
    got = classification_loss(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.0, 1.0]]))
    want = np.mean(np.log1p(np.exp(-np.array([2.0, 1.0, 0.5]))))
    assert float(got) == pytest.approx(want, rel=1e-6)  # 0.3048
    # cluster cost: the nearest own prototype; 0 for a sample with none
    d = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    own = torch.tensor([[True, False], [False, False]])
    torch.testing.assert_close(cluster_cost(d, own), torch.tensor([1.0, 0.0]))
    # GLVQ: sigmoid(2 mu), mu = (1 - 3) / (1 + 3)
    assert float(glvq_loss(torch.tensor([[1.0, 3.0]]), own[:1])) == pytest.approx(1 / (1 + np.e))
    # CBC's hinge: the runner-up 0.4 within 0.3 of the true class's 0.6
    hinge = cbc_margin_loss(torch.tensor([[0.6, 0.4]]), torch.tensor([0]), 0.3)
    assert float(hinge) == pytest.approx(0.1)
    # ST-ProtoPNet: minus the least (support) and the greatest (trivial) cosine
    # over pairs of different classes, never a class with itself
    codes = torch.tensor([0, 1])
    P = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert float(st_protopnet_loss(P, codes, 2, "support")) == pytest.approx(-np.sqrt(0.5))
    P3, codes3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([0, 1, 1])
    assert float(st_protopnet_loss(P3, codes3, 2, "support")) == pytest.approx(0.0, abs=1e-7)
    assert float(st_protopnet_loss(P3, codes3, 2, "trivial")) == pytest.approx(np.sqrt(0.5))


def test_a_diverged_partial_fit_leaves_the_history_as_it_was():
    # the history's lists are appended to in place: a failed call must not keep
    # the epochs it appended (a surviving mutant restored the same list objects)
    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(max_epochs=2, random_state=0).fit(X, y)
    before = {k: list(v) if isinstance(v, list) else v for k, v in clf.history_.items()}
    clf.set_params(learning_rate=1e6)
    with pytest.raises(ValueError, match="Training diverged"):
        clf.partial_fit(X, y)
    assert clf.history_.keys() == before.keys()
    for k, v in before.items():
        if isinstance(v, list):
            assert clf.history_[k] == v, k


# --------------------------------- pins from a mutation audit of the training loop
def _one_parameter_run(learning_rate, X_val, T_val, W_val=None, max_epochs=20, **settings):
    """Train one scalar ``theta`` toward 40 rows in [0, 10) (squared error); returns
    ``(history, theta, theta after each epoch, the rows)``."""
    theta = torch.nn.Parameter(torch.zeros(()))
    module = torch.nn.Module()
    module.theta = theta

    def loss(xb, tb, wb):  # squared error for target 0, a hinge relu(theta - x)^2 for 1
        e = torch.where(tb == 0, (theta - xb[:, 0]) ** 2, torch.relu(theta - xb[:, 0]) ** 2)
        return (wb * e).sum() / wb.sum()

    def score(X_, T_, W_=None):
        return float(np.average(np.abs(X_[:, 0] - theta.item()) < 2, weights=W_))

    rng = np.random.RandomState(0)
    X = rng.uniform(0, 10, (40, 1)).astype(np.float32)
    seen = []
    config = TrainingConfig(
        max_epochs=max_epochs, batch_size=8, learning_rate=learning_rate, early_stopping=True,
        n_iter_no_change=3, **settings,
    )  # fmt: skip
    history = train(
        module, [theta], loss, X, np.zeros(40, dtype=int), np.ones(40, np.float32), config,
        np.random.RandomState(0), score=score, X_val=X_val, targets_val=T_val,
        weights_val=W_val, on_epoch_end=lambda epoch: seen.append(theta.item()),
    )  # fmt: skip
    return history, theta.item(), seen, X


def test_held_out_loss_and_score_weigh_their_rows_and_the_epoch_loss_is_a_row_mean():
    X_val = np.r_[np.zeros((10, 1)), np.full((10, 1), 4.0)].astype(np.float32)
    W_val = np.r_[np.full(10, 9.0), np.ones(10)].astype(np.float32)  # rows at 0 weigh 9
    history, theta, _, X = _one_parameter_run(0.0, X_val, np.zeros(20, dtype=int), W_val)
    assert theta == 0.0  # (a rate of 0: every epoch scores theta = 0)
    assert history["val_loss"][0] == pytest.approx((9 * 10 * 0 + 10 * 16) / 100)  # not 8
    assert history["val_score"][0] == pytest.approx(0.9)  # not 0.5
    assert history["loss"][0] == pytest.approx(float(np.mean(X[:, 0] ** 2)), rel=1e-6)


def test_tied_held_out_losses_restore_the_earliest_epoch():
    # the held-out hinge stays at exactly 0 while theta < 10: every epoch ties
    X_val = np.full((10, 1), 10.0, np.float32)
    history, theta, seen, _ = _one_parameter_run(0.1, X_val, np.ones(10, dtype=int))
    assert len(set(history["val_loss"])) == 1 and len(seen) > 1
    assert theta == seen[0] != seen[-1]


def test_verbose_names_a_restored_epoch_only_when_one_was_restored(capsys):
    X_val = np.full((10, 1), 10.0, np.float32)
    _one_parameter_run(0.1, X_val, np.ones(10, dtype=int), verbose=1)
    assert "restored epoch 1 (the lowest held-out loss)" in capsys.readouterr().out
    toward = np.full((10, 1), 5.0, np.float32)  # its loss falls every epoch: the last is kept
    history, *_ = _one_parameter_run(0.1, toward, np.zeros(10, dtype=int), verbose=1, max_epochs=3)
    assert np.all(np.diff(history["val_loss"]) < 0)
    out = capsys.readouterr().out
    assert "reached max_epochs=3" in out and "restored epoch" not in out


def test_temperature_settings_and_warm_refits():
    X, y = load_iris(return_X_y=True)
    # a warm refit fits the temperature on scores at temperature 1, not on the
    # scores the last fit's temperature divided
    clf = ProtoClassifier(max_epochs=5, warm_start=True, random_state=0).fit(X, y)
    first = clf.temperature_
    assert clf.fit(X, y).temperature_ == pytest.approx(first, rel=0.05)
    # a number set after an "auto" fit is the temperature from the next call on
    clf.set_params(temperature=5.0).fit(X, y)
    assert clf.temperature_ == 5.0
    other = ProtoClassifier(max_epochs=3, random_state=0).fit(X, y)
    assert other.set_params(temperature=5.0).partial_fit(X, y).temperature_ == 5.0


def test_held_out_rows_that_became_prototypes_are_scored_without_them():
    # four rows per class, half held out: scored by its own prototype a held-out
    # row reads certain, and the temperature fell from 2.2 to 1.2 (over-confident)
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=120, n_features=10, n_informative=8, n_classes=30, n_clusters_per_class=1,
        random_state=0,
    )  # fmt: skip
    clf = ProtoClassifier(
        n_prototypes_per_class=3, max_epochs=5, validation_fraction=0.5, random_state=0
    ).fit(X, y)
    assert clf.temperature_ > 1.7


def test_stream_calls_count_epochs_shuffle_anew_and_train_in_float32(monkeypatch):
    X, y = load_iris(return_X_y=True)
    clf = RBFPrototypeClassifier(loss="cbc", random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X[:10], y[:10], sample_weight=np.zeros(10))  # trains nothing
    assert clf.n_iter_ == len(clf.history_["loss"]) == 1
    seeds, real = [], template.train

    def spy(net, *args, **kwargs):
        seeds.append(args[6].get_state()[1][0])  # the call's RandomState
        return real(net, *args, **kwargs)

    monkeypatch.setattr(template, "train", spy)
    stream = RBFPrototypeClassifier(loss="cbc", random_state=0)
    for _ in range(3):
        stream.partial_fit(X, y, classes=[0, 1, 2])
    assert len(seeds) == 3 and len(set(seeds)) == 3
    monkeypatch.undo()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for make in (ProtoClassifier, RBFPrototypeClassifier):
            model = make(max_epochs=2, random_state=0).fit(X, y)
            assert model.score(X, y) > 0.9
    finally:
        torch.set_default_dtype(default)


def test_weights_beyond_the_training_span_are_refused():
    X, y = load_iris(return_X_y=True)
    w = np.ones(len(X))
    w[0], w[1] = 2.0**120, 2.0**-100
    with pytest.raises(ValueError, match="span"):
        ProtoClassifier(max_epochs=2, random_state=0).fit(X, y, sample_weight=w)


def test_distances_far_from_the_origin_train_as_near_it():
    # without a map, distances are taken about the prototypes' mean: at an offset
    # of 3,000 float32 cancellation made the first losses 2.0 instead of 0.13
    X, y = load_iris(return_X_y=True)
    losses = [
        ProtoClassifier(projection=None, similarity="log", input_noise=0.0, max_epochs=3,
                        random_state=0).fit(X + offset, y).loss_curve_
        for offset in (0.0, 3e3)
    ]  # fmt: skip
    np.testing.assert_allclose(losses[1], losses[0], rtol=0.05)


def test_the_data_unit_is_a_power_of_two_and_train_scores_read_every_row_up_to_the_cap():
    from skproto._torch.training import data_scale

    X, _ = load_iris(return_X_y=True)
    for scale in (1.0, 3.0, 1e-3):
        unit = data_scale(X * scale)
        assert np.log2(unit) == np.round(np.log2(unit))
    assert data_scale(X) == 2.0
    theta = torch.nn.Parameter(torch.zeros(()))
    module = torch.nn.Module()
    module.theta = theta
    rows = []

    def score(X_, T_, W_=None):
        rows.append(len(X_))
        return 0.0

    X = np.arange(2000, dtype=np.float32)[:, None]  # the cap: every row, not every second
    config = TrainingConfig(max_epochs=1, batch_size=500, learning_rate=0.1)
    train(
        module, [theta], lambda xb, tb, wb: ((theta - xb[:, 0]) ** 2).mean(), X,
        np.zeros(2000, dtype=int), np.ones(2000, np.float32), config, np.random.RandomState(0),
        score=score,
    )  # fmt: skip
    assert rows == [2000]


def test_proto_network_similarities_and_tied_prototypes():
    from skproto.geometry.similarities import rbf_similarity
    from skproto.heads import LinearHead
    from skproto.proto._network import ProtoNetwork

    X, y = load_iris(return_X_y=True)
    clf = ProtoClassifier(similarity="rbf", max_epochs=3, random_state=0).fit(X, y)
    net = clf._inference_network()
    with torch.no_grad():
        _, d, s = net(torch.as_tensor(X[:5], dtype=net.prototypes.dtype))
    np.testing.assert_allclose(s.numpy(), rbf_similarity(d, net.width).numpy(), rtol=1e-6)
    # a token row without a real token is at distance 1 from every prototype
    P = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    tokens = ProtoNetwork(None, P.clone(), LinearHead(torch.eye(2)), "cosine", 1.0, n_tokens=2)
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], [0.0] * 6])
    _, d, s = tokens(x)
    np.testing.assert_array_equal(d.detach().numpy(), [[0.0, 1.0], [1.0, 1.0]])
    # a projected model's prototypes stay the latent vectors of their cases while
    # partial_fit trains the map
    clf = ProtoClassifier(projection="linear", max_epochs=3, random_state=0).fit(X, y)
    clf.partial_fit(X, y).partial_fit(X, y)
    net = clf._inference_network()
    with torch.no_grad():
        latent = net.latent(torch.as_tensor(clf._state["cases"])).numpy()
    np.testing.assert_allclose(clf._state["prototypes"], latent, atol=1e-5)
    # tied prototypes follow the map as it trains, not the vectors stored last
    assert net.tied.item()
    with torch.no_grad():
        for p in net.latent_map.parameters():
            p.mul_(1.5)
        np.testing.assert_allclose(
            net.prototype_vectors().numpy(), net.latent(net.cases).numpy(), rtol=1e-6
        )


# Pinned by a mutation audit of the encoders, validation, losses and
# initialisation (2026-12-06)


def test_cbc_hinge_is_zero_beyond_the_margin():
    # L08: without the relu a confident sample had a negative loss (-0.5)
    got = cbc_margin_loss(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 0]), 0.3)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.1]))


def test_separation_cost_is_zero_without_an_other_class_prototype():
    # L02: a sample whose classes own every prototype got the masked fill (max + 1)
    d = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    own = torch.tensor([[True, True], [True, False]])
    torch.testing.assert_close(separation_cost(d, own), torch.tensor([0.0, 2.0]))


def test_glvq_without_an_other_class_prototype_reads_d_minus_beyond_every_distance():
    # L01: D- of a sample with no other-class prototype is max(d) + 1, not max(d)
    got = float(glvq_loss(torch.tensor([[1.0, 3.0]]), torch.tensor([[True, True]])))
    assert got == pytest.approx(float(torch.sigmoid(torch.tensor(2 * (1.0 - 4.0) / (1.0 + 4.0)))))


@pytest.mark.parametrize("make", [ProtoClassifier, RBFPrototypeClassifier])
@pytest.mark.parametrize(
    "device, message",
    [
        ("mps", "device='mps': training runs on 'cpu', 'cuda' (or 'cuda:N'"),
        ("tpu", "device='tpu' is not a torch device"),
        ("cuda:x", "device='cuda:x' is not a torch device"),
    ],
)
def test_device_strings_beyond_the_options(make, device, message):
    # "cuda:N" names one GPU of several (the encoders took it, the estimators'
    # parameter check refused it); other strings get a ValueError naming them
    X, y = load_iris(return_X_y=True)
    clf = make(max_epochs=1, device=device)
    with pytest.raises(ValueError, match=re.escape(message)):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_numbered_gpu_passes_the_parameter_check():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="device='cuda:1' was requested but torch finds no CUDA"):
        ProtoClassifier(max_epochs=1, device="cuda:1").fit(X, y)
