"""Tests pinning mutants that survived a mutation run (session 45) over the
interpretability metrics (``skproto.metrics``), the torch heads
(``skproto.heads``), the training losses (``skproto.losses``) and the
``Explanation`` type (``skproto.explain._explanation``). Each test failed under
its mutant, named in its docstring, and passes on the code as it is; the
answers are computed by hand or with plain numpy/torch, not by the code under
test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import HandBuilt
from sklearn.datasets import load_iris

from skproto.metrics import explanation_stability


# ------------------------------------------------------------------ metrics
def test_auto_noise_is_five_percent_of_the_median_row_norm_on_rows_near_a_tie():
    """noise="auto" is 0.05 times the median L2 norm of the rows: on rows whose top
    prototype is a hair from a tie, the stability depends on the noise's size, and
    "auto" must match the explicit 0.05 * median (mutant: 0.055; the digits test
    of the units passed, every digit row being stable at either size)."""
    hand = HandBuilt(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), ["a", "a", "b"]).fit(None)
    gaps = np.linspace(0.0, 0.1, 400)
    X = np.column_stack([1.0 + gaps, np.ones_like(gaps), np.zeros_like(gaps)])
    explicit = 0.05 * np.median(np.sqrt((X**2).sum(axis=1)))
    got = explanation_stability(hand, X, random_state=0, aggregate=None)
    want = explanation_stability(hand, X, noise=explicit, random_state=0, aggregate=None)
    np.testing.assert_array_equal(got, want)
    # (the case is sensitive: 10 % more noise changes some rows' stability)
    more = explanation_stability(hand, X, noise=1.1 * explicit, random_state=0, aggregate=None)
    assert (more != want).any()


def test_auto_noise_of_token_rows_is_read_from_the_real_tokens_entries(monkeypatch):
    """For token rows "auto" is 5 % of the median norm of the real tokens' entries,
    the mask left out (mutant: the norms of the whole rows, mask included)."""
    import skproto.metrics as metrics
    from skproto import ProtoClassifier
    from skproto.encoders import pack_tokens

    X, y = load_iris(return_X_y=True)
    E = np.stack([X[:, :2], X[:, 2:]], axis=1) / 10  # (small entries: the mask weighs)
    mask = np.ones((len(X), 2), dtype=int)
    T = pack_tokens(E, mask)
    clf = ProtoClassifier(n_tokens=2, n_prototypes_per_class=1, max_epochs=2, random_state=0)
    clf.fit(T, y)
    seen = []
    real = metrics._top_prototype

    def spy(estimator, rows):
        seen.append(np.array(rows, dtype=np.float64))
        return real(estimator, rows)

    monkeypatch.setattr(metrics, "_top_prototype", spy)
    explanation_stability(clf, T, n_draws=1, random_state=0)
    expected = 0.05 * np.median(np.linalg.norm(X / 10, axis=1))
    delta = seen[1] - T
    np.testing.assert_allclose(np.linalg.norm(delta, axis=1), expected, rtol=1e-6)


def test_stability_ranks_prototypes_of_equal_contribution_by_activation():
    """Where contributions to the explained class tie (here all 0), the top prototype
    is the most active one, as ``explain`` ranks: prototype 0, far ahead, whatever
    small noise does (mutant: the least active first, prototypes 1 and 2, a hair
    apart, which the noise swaps about half the time)."""
    # scores: "a" = 0, "b" = -(s0 + s1 + s2) < 0: "a" is predicted, every
    # prototype contributes 0 to it
    hand = HandBuilt(np.array([[0.0, -1.0], [0.0, -1.0], [0.0, -1.0]]), ["a", "a", "b"]).fit(None)
    X = np.array([[3.0, 1.0, 1.0001]] * 100)
    np.testing.assert_array_equal(hand.explain(X[:1], n_prototypes=1).prototype_index, [[0]])
    assert explanation_stability(hand, X, noise=0.01, n_draws=2, random_state=0) == 1.0


# -------------------------------------------------------------------- heads
def test_class_logsumexp_of_a_class_whose_columns_are_all_minus_inf():
    """A class whose columns are all -inf has lse -inf and responsibilities 0, and
    the other classes are untouched (mutant: no shift to 0 for such a class: its
    exp(-inf - -inf) is NaN)."""
    from skproto.heads import class_logsumexp

    u = torch.tensor([[-float("inf"), -float("inf"), 1.0, 1.0]])
    lse, r = class_logsumexp(u, torch.tensor([0, 0, 1, 1]), 2)
    assert lse[0, 0].item() == -float("inf")
    assert lse[0, 1].item() == pytest.approx(1.0 + np.log(2.0))
    assert r[0].tolist() == [0.0, 0.0, 0.5, 0.5]


# ------------------------------------------------------------------- losses
def test_multilabel_classification_loss_is_the_mean_over_the_labels():
    """(mutant: the sum over the labels.) BCE of logit 0 is log 2 whatever the
    target; of logit 2 with target 1, log(1 + e^-2)."""
    from skproto.losses import classification_loss

    logits = torch.tensor([[0.0, 0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0, 1.0]])
    expected = (2 * np.log(2.0) + np.log1p(np.exp(-2.0))) / 3
    assert classification_loss(logits, t).item() == pytest.approx(expected, rel=1e-6)


def test_st_protopnet_loss_leaves_out_classes_without_prototypes():
    """Only pairs of classes that both have prototypes count: a third class without
    any changes nothing (mutant: every class counted, its pairs +-inf)."""
    from skproto.losses import st_protopnet_loss

    P = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])  # cosines to row 2: 0.6, 0.8
    codes = torch.tensor([0, 0, 1])
    assert st_protopnet_loss(P, codes, 3, "support").item() == pytest.approx(-0.6)
    assert st_protopnet_loss(P, codes, 3, "trivial").item() == pytest.approx(0.8)


def test_glvq_loss_is_scale_free_at_tiny_distances():
    """mu = (D+ - D-) / (D+ + D-) does not depend on the units: at squared distances
    of 1e-14 it is what it is at 1 (mutant: the denominator floored at 1e-12)."""
    from skproto.losses import glvq_loss

    own = torch.tensor([[True, False]])
    for scale in (1.0, 1e-14, 1e-30):
        d2 = torch.tensor([[1.0, 3.0]], dtype=torch.float64) * scale
        assert glvq_loss(d2, own).item() == pytest.approx(1 / (1 + np.exp(1.0)), rel=1e-9)


def test_cbc_margin_loss_of_a_sample_without_another_class_is_0():
    """With a single class there is no rival score to lead: the hinge is 0 (mutant:
    the true class's slot filled with 0, not -inf, which made 0 a rival score:
    ``max(0, 0 - 0.3 + 0.5) = 0.2``)."""
    from skproto.losses import cbc_margin_loss

    assert cbc_margin_loss(torch.tensor([[0.3]]), torch.tensor([0]), margin=0.5).tolist() == [0.0]


# -------------------------------------------------------------- Explanation
def _explanation(**changes):
    """An explanation built by hand: 2 samples, classes 0, 1, 2, 2 prototypes listed each."""
    from skproto.explain import Explanation

    fields = dict(
        classes=np.array([0, 1, 2]),
        predicted=np.array([1, 2]),
        explained=np.array([1, 2]),
        runner_up=np.array([0, 1]),
        margin=np.array([0.5, 1.0]),
        ranked_by="contribution",
        prototype_index=np.array([[3, 0], [5, 4]]),
        prototype_label=np.array([[1, 0], [2, 2]]),
        prototype_sample_index=np.array([[7, -1], [0, 2]]),
        value=np.array([[0.9, 0.1], [0.8, 0.7]]),
        value_name="similarity",
        contribution=np.zeros((2, 2, 3)),
        other_contribution=np.zeros((2, 3)),
        bias=np.zeros(3),
        bias_name="bias",
        estimator_name="Hand",
    )
    fields.update(changes)
    return Explanation(**fields)


def test_a_long_label_keeps_one_more_character_of_its_end_than_of_its_start():
    """Cut to 24 characters in the middle, a label keeps 11 of its start and 12 of its
    end (labels that differ at their end stay apart; mutant: 12 and 11)."""
    from skproto.explain._explanation import label_texts

    text = "'abcdefghijklmnopqrstuvwxyz0123'"  # repr of the 30-letter label: 32 characters
    expected = text[:11] + "…" + text[-12:]
    assert expected == "'abcdefghij…tuvwxyz0123'" and len(expected) == 24
    assert label_texts(["abcdefghijklmnopqrstuvwxyz0123"]) == [expected]


def test_multilabel_records_predict_the_labels_the_indicator_row_holds():
    """(mutant: every label counted as predicted, the zeros of the row too.)"""
    ex = _explanation(predicted=np.array([[0, 1, 0], [1, 0, 1]]))
    predicted = [r["predicted"] for r in ex.to_records()]
    assert predicted == [(1,), (1,), (0, 2), (0, 2)]


def test_token_slot_0_is_shown_as_slot_0():
    """Slot 0 is a token; only -1 is none (mutant: slot 0 shown as "-")."""
    ex = _explanation(
        query_token=np.array([[0, -1], [2, 0]]), prototype_token=np.array([[1, 0], [-1, 3]])
    )
    text = str(ex)
    rows = [line.split() for line in text.splitlines()]
    slots = [r[4] for r in rows if len(r) > 4 and r[0] in ("1", "2") and r[1].isdigit()]
    assert slots == ["0/1", "-/0", "2/-", "0/3"]


def test_the_legend_says_explained_when_any_sample_is_explained_for_a_target():
    """One sample explained for another class than its prediction is enough for the
    legend to rank by "the explained class's score" (mutant: only when every sample is)."""
    assert "predicted class's score" in str(_explanation())
    ex = _explanation(explained=np.array([1, 1]), runner_up=np.array([0, 2]))
    assert "explained class's score" in str(ex)


def test_the_runner_up_column_of_other_prototypes_is_its_own():
    """The "other prototypes" total gives each class's own sum (mutant: the explained
    class's sum under the runner-up too)."""
    other = np.array([[0.25, 0.5, 0.75], [1.5, 2.5, 3.5]])
    lines = str(_explanation(other_contribution=other)).splitlines()
    totals = [line.split()[-2:] for line in lines if line.strip().startswith("other prototypes")]
    assert totals == [["0.5", "0.25"], ["3.5", "2.5"]]  # (explained, runner-up)


def test_repr_counts_the_prototypes_listed_per_sample():
    """(mutant: the number of samples given as the prototypes each.)"""
    ex = _explanation(
        prototype_index=np.array([[3], [5]]),
        prototype_label=np.array([[1], [2]]),
        prototype_sample_index=np.array([[7], [0]]),
        value=np.array([[0.9], [0.8]]),
        contribution=np.zeros((2, 1, 3)),
    )
    assert repr(ex) == "<Explanation of 2 sample(s) by Hand: 1 prototype(s) each, 3 classes>"


def test_the_multilabel_legend_says_explained_when_a_target_is_not_predicted():
    """A multi-label sample explained for a label it does not predict makes the legend
    rank by "the explained class's score" (mutant: only when no sample's explained
    label is predicted)."""
    indicator = np.array([[0, 1, 0], [1, 0, 1]])
    assert "predicted class's score" in str(_explanation(predicted=indicator))
    ex = _explanation(predicted=indicator, explained=np.array([1, 1]), runner_up=np.array([0, 0]))
    assert "explained class's score" in str(ex)


def test_the_parts_rows_give_each_class_s_own_part():
    """The "of which" rows of a split contribution give the part to the explained
    class, then to the runner-up (mutants: either column read from the other class)."""
    presence = np.zeros((2, 2, 3))
    presence[0, 0] = [0.125, 0.25, 0.375]  # sample 0: explained 1, runner-up 0
    ex = _explanation(parts={"presence": presence}, contribution=presence.copy())
    lines = [line.split() for line in str(ex).splitlines() if "of which presence" in line]
    assert lines[0][-2:] == ["0.25", "0.125"]
