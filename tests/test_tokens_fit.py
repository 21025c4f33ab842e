"""Token-mode fits: classes without a real token, memory, missing slots (fail before fixes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skproto import ProtoClassifier
from skproto._tokens import pack_tokens

T, D = 5, 6


def _tokens(n=240, seed=0):
    rng = np.random.RandomState(seed)
    labels = np.array(["ask", "buy", "cancel"])
    codes = rng.randint(0, 3, n)
    E = rng.normal(size=(n, T, D))
    signal = rng.randint(0, T, n)
    E[np.arange(n), signal] += 4.0 * np.eye(D)[codes]
    lengths = np.maximum(rng.randint(1, T + 1, n), signal + 1)
    mask = np.arange(T)[None, :] < lengths[:, None]
    return pack_tokens(E, mask), labels[codes]


def test_class_whose_weighted_rows_have_no_real_token_is_a_clear_error():
    # the class's rows with tokens all weigh 0, its rows of positive weight are
    # empty: the fit ran with rows of a class without any prototype (score -inf)
    # and said "Training diverged ... the loss became inf"
    X, y = _tokens()
    X = X.copy()
    c = np.flatnonzero(y == "cancel")
    X[c[: len(c) // 2]] = 0.0
    w = np.ones(len(y))
    w[c[len(c) // 2 :]] = 0.0
    clf = ProtoClassifier(n_prototypes_per_class=2, n_tokens=T, random_state=0, max_epochs=3)
    with pytest.raises(ValueError, match=r"No row of class\(es\) \['cancel'\].*real token"):
        clf.fit(X, y, sample_weight=w)


def test_validation_split_keeps_a_real_token_of_every_class():
    # 'cancel' has one row with real tokens: the early-stopping split held it out
    # (random_state=5) and the fit diverged ("the loss became inf")
    X, y = _tokens()
    X = X.copy()
    c = np.flatnonzero(y == "cancel")
    X[c[1:]] = 0.0
    clf = ProtoClassifier(n_prototypes_per_class=2, n_tokens=T, random_state=5, max_epochs=3)
    clf.fit(X, y)
    rows = clf.prototype_sample_indices_[clf.prototype_labels_ == "cancel"]
    assert len(rows) and (rows == c[0]).all()
    assert np.isfinite(clf.predict_proba(X)).all()


def test_training_evaluation_chunks_count_tokens_times_prototypes(monkeypatch):
    # _evaluate (early stopping's scores, the temperature's scores) chunked token rows
    # by max(n_features, K) where each row's distances are n_tokens x K before
    # pooling: n_tokens times the chunk budget (30,000 rows of 32 tokens x 1,000
    # prototypes: fit's peak RSS 1.65 GB, 0.98 GB chunked by n_tokens x K)
    import skproto._chunking as chunking

    X, y = _tokens(90)
    clf = ProtoClassifier(n_prototypes_per_class=5, n_tokens=T, random_state=0, max_epochs=1)
    clf.fit(X, y)
    K = len(clf.prototypes_)
    assert X.shape[1] < T * K
    net = clf._network(clf._state, torch.float32)
    seen = []
    for method in ("scores", "pairwise"):
        inner = getattr(net, method)

        def spy(x, inner=inner):
            seen.append(len(x))
            return inner(x)

        setattr(net, method, spy)
    monkeypatch.setattr(chunking, "CHUNK_ELEMENTS", 1000)
    Xb = np.repeat(X.astype(np.float32), 20, axis=0)
    full = clf._evaluate(net, Xb, "scores")
    assert max(seen) * T * K <= 1000
    # the temperature's leave-own-prototype-out scores: chunked too, and the same values
    seen.clear()
    rows = np.arange(len(Xb))
    out = clf._scores_without(net, Xb, (rows[:K], np.arange(K)))
    assert max(seen) * T * K <= 1000
    monkeypatch.setattr(chunking, "CHUNK_ELEMENTS", 2**22)
    again = clf._scores_without(net, Xb, (rows[:K], np.arange(K)))
    np.testing.assert_allclose(out, again, rtol=1e-5, atol=1e-5)
    assert np.isneginf(out).sum() == np.isneginf(again).sum()
    np.testing.assert_allclose(out[K:], full[K:], rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_head_refit_chunks_count_tokens_times_prototypes(monkeypatch):
    # refit_last_layer computed the training rows' similarities in chunks of
    # max(n_features, K) rows' worth: n_tokens times the budget for token rows
    import skproto._chunking as chunking
    import skproto.proto._last_layer as last_layer

    X, y = _tokens(90)
    clf = ProtoClassifier(
        n_prototypes_per_class=5, n_tokens=T, head="linear", random_state=0, max_epochs=1
    ).fit(X, y)
    K = len(clf.prototypes_)
    net = clf._network(clf._state, torch.float32)
    seen = []
    forward = net.forward

    def spy(x):
        seen.append(len(x))
        return forward(x)

    net.forward = spy
    monkeypatch.setattr(chunking, "CHUNK_ELEMENTS", 1000)
    T_codes = np.searchsorted(clf.classes_, y)
    last_layer.refit_last_layer(
        net,
        clf._codes,
        3,
        X.astype(np.float32),
        T_codes,
        np.ones(len(y), np.float32),
        alpha=0.1,
        l1_weight=0.0,
        max_iter=2,
        kernel_penalty=True,
    )
    assert seen and max(seen) * T * K <= 1000


def test_no_token_is_shown_as_none_not_slot_minus_one():
    # a query without a real token (query_token -1) and an unprojected prototype
    # (prototype_token -1) were shown as "token -1": words[-1] is the last word
    from skproto.explain import make_report, waterfall

    X, y = _tokens()
    clf = ProtoClassifier(
        n_prototypes_per_class=2, n_tokens=T, project=False, random_state=0, max_epochs=2
    ).fit(X, y)
    empty = np.zeros((1, X.shape[1]))
    ex = clf.explain(empty, 2)
    assert (ex.query_token == -1).all() and (ex.prototype_token == -1).all()
    assert " -/- " in str(ex) and "-1/-1" not in str(ex)
    labels = [s.label for s in waterfall(ex, 0).steps if s.kind == "prototype"]
    assert all(label.endswith("(token - ~ -)") for label in labels), labels
    page = make_report(clf, empty)
    assert "query token - ~ its token -</small>" in page and "token -1" not in page


def test_multilabel_bias_start_chunks_count_tokens_times_prototypes(monkeypatch):
    # _center_label_biases scored its 2,000 rows at once: (2000 * n_tokens, K)
    import skproto._chunking as chunking
    from skproto.proto import _estimator, _network

    X, y = _tokens(90)
    Y = np.stack([y == "ask", y != "cancel", y == "cancel"], 1).astype(int)
    clf = ProtoClassifier(n_prototypes_per_class=5, n_tokens=T, random_state=0, max_epochs=1)
    clf.fit(X, Y)
    net = clf._network(clf._state, torch.float32)
    K = len(clf.prototypes_)
    seen = []
    forward = _network.ProtoNetwork.forward

    def spy(self, x):
        seen.append(len(x))
        return forward(self, x)

    monkeypatch.setattr(_network.ProtoNetwork, "forward", spy)
    monkeypatch.setattr(chunking, "CHUNK_ELEMENTS", 1000)
    _estimator._center_label_biases(net, X.astype(np.float32), Y)
    assert seen and max(seen) * T * K <= 1000
    monkeypatch.setattr(chunking, "CHUNK_ELEMENTS", 2**22)
    chunked = net.head.bias.detach().clone()
    _estimator._center_label_biases(net, X.astype(np.float32), Y)
    torch.testing.assert_close(chunked, net.head.bias.detach(), rtol=1e-5, atol=1e-5)
