"""VowelTripletLoss against hand-computed values, and its empty-batch behaviour."""

import math

import pytest
import torch

from speechbrain_phonanchor.model import PAD_ID, VowelTripletLoss, vowel_id

A, I = vowel_id("a"), vowel_id("i")
CLASSES = ["neu", "hap"]


def batch():
    """One target utterance (pseudo-label hap) and three source utterances (hap, neu, neu).

    Target segments: vowel a at (0, 0) [anchor vowel of hap], vowel i at (9, 9) [not an anchor], padding.
    Source segments of vowel a: hap at (3, 4) [d=5], neu at (0, 1) [d=1], neu at (6, 8) [d=10].
    A source vowel-i hap segment at (0, 0) must be ignored (different vowel).
    """
    target = torch.tensor([[[0.0, 0.0], [9.0, 9.0], [7.0, 7.0]]], requires_grad=True)
    target_vowels = torch.tensor([[A, I, PAD_ID]])
    target_mask = torch.tensor([[True, True, False]])
    source = torch.tensor([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]], [[6.0, 8.0], [0.0, 0.0]]])
    source.requires_grad_(True)
    source_vowels = torch.tensor([[A, I], [A, PAD_ID], [A, PAD_ID]])
    source_mask = torch.tensor([[True, True], [True, False], [True, False]])
    source_labels = torch.tensor([1, 0, 0])
    return target, target_vowels, target_mask, source, source_vowels, source_mask, source_labels


def call(loss, target_labels, parts=None):
    target, target_vowels, target_mask, source, source_vowels, source_mask, source_labels = parts or batch()
    return loss(target, target_vowels, target_mask, target_labels, source, source_vowels, source_mask, source_labels)


def test_all_triplets_match_hand_computation():
    loss = VowelTripletLoss(margin=2.0, mining="all", anchors={"hap": ["a"], "neu": ["i"]}, classes=CLASSES)
    value = call(loss, torch.tensor([1]))
    # triplets (anchor, pos d=5, neg d=1) → 5-1+2 = 6 ; (anchor, pos d=5, neg d=10) → max(0, 5-10+2) = 0
    assert loss.last_n_triplets == 2
    assert value.item() == pytest.approx(3.0)


def test_batch_hard_uses_nearest_negative():
    loss = VowelTripletLoss(margin=2.0, mining="hard", anchors={"hap": ["a"]}, classes=CLASSES)
    value = call(loss, torch.tensor([1]))
    assert loss.last_n_triplets == 1
    assert value.item() == pytest.approx(6.0)


def test_gradient_pulls_positive_and_pushes_negative():
    parts = batch()
    loss = VowelTripletLoss(margin=2.0, anchors={"hap": ["a"]}, classes=CLASSES)
    call(loss, torch.tensor([1]), parts).backward()
    source = parts[3]
    # loss = (||a-p|| - ||a-n1|| + 2) / 2: d/dp = (p - a)/|p - a| / 2, d/dn1 = -(n1 - a)/|n1 - a| / 2
    torch.testing.assert_close(source.grad[0, 0], torch.tensor([0.3, 0.4]))
    torch.testing.assert_close(source.grad[1, 0], torch.tensor([0.0, -0.5]))
    assert source.grad[2].abs().sum() == 0 and source.grad[0, 1].abs().sum() == 0


def test_euclidean_not_squared():
    loss = VowelTripletLoss(margin=0.0, anchors={"hap": ["a"]}, classes=CLASSES)
    target, tv, tm, source, sv, sm, sl = batch()
    source = source.detach().clone()
    source[1, 0] = torch.tensor([0.0, 0.0])  # negative at the anchor: d = 0
    value = loss(target, tv, tm, torch.tensor([1]), source, sv, sm, sl)
    assert loss.last_n_triplets == 2
    assert value.item() == pytest.approx((5.0 + 0.0) / 2)  # (5-0) and max(0, 5-10)
    assert not math.isnan(value.item())


@pytest.mark.parametrize(
    "anchors,target_labels",
    [
        ({"hap": ["i"]}, [1]),  # the target's anchor-vowel segment is i, but no source i segment has a neu negative
        ({"hap": ["a"]}, [-1]),  # target not (confidently) labelled
        ({"neu": ["a"]}, [1]),  # a is an anchor of neu only, target is hap
        ({"sad": ["a"]}, [1]),  # anchors of a class the task does not have are ignored
        ({}, [1]),  # CL: no anchors
    ],
)
def test_no_valid_triplet_gives_zero_with_graph_and_is_counted(anchors, target_labels):
    loss = VowelTripletLoss(margin=1.0, anchors=anchors, classes=CLASSES)
    parts = batch()
    value = call(loss, torch.tensor(target_labels), parts)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert parts[0].grad is not None
    assert (loss.n_batches, loss.n_empty_batches, loss.last_n_triplets) == (1, 1, 0)
    call(VowelTripletLoss(anchors={"hap": ["a"]}, classes=CLASSES), torch.tensor([1]))  # a valid one elsewhere
    assert loss.n_empty_batches == 1


def test_anchors_can_be_set_later_and_unknown_vowels_fail():
    loss = VowelTripletLoss(margin=2.0)
    assert call(loss, torch.tensor([1])).item() == 0.0
    loss.set_anchors({"hap": ["a"]}, CLASSES)
    assert call(loss, torch.tensor([1])).item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="not an inventory vowel"):
        loss.set_anchors({"hap": ["x"]}, CLASSES)
    with pytest.raises(ValueError, match="mining"):
        VowelTripletLoss(mining="semi")


def brute_force_all_triplets(distances, positive, negative, margin):
    """Every (anchor, positive, negative) triplet as an (A, S, S) tensor: the definition."""
    losses = torch.relu(distances.unsqueeze(2) - distances.unsqueeze(1) + margin)
    valid = positive.unsqueeze(2) & negative.unsqueeze(1)
    return (losses * valid).sum(), int(valid.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sorted_all_triplets_equal_brute_force_value_count_and_gradient(seed):
    from speechbrain_phonanchor.model.losses import all_triplets_sum

    generator = torch.Generator().manual_seed(seed)
    distances = (torch.rand(7, 40, generator=generator) * 3).requires_grad_(True)
    positive = torch.rand(7, 40, generator=generator) < 0.3
    negative = ~positive & (torch.rand(7, 40, generator=generator) < 0.8)  # some segments are neither
    negative[0] = False  # an anchor without negatives
    total, count = all_triplets_sum(distances, positive, negative, margin=1.0)
    (gradient,) = torch.autograd.grad(total, distances)
    expected, expected_count = brute_force_all_triplets(distances, positive, negative, 1.0)
    (expected_gradient,) = torch.autograd.grad(expected, distances)
    assert count == expected_count > 0
    assert torch.allclose(total, expected, rtol=1e-5)
    assert torch.allclose(gradient, expected_gradient, atol=1e-5)
    assert gradient.abs().sum() > 0


def test_sorted_all_triplets_without_any_triplet_is_zero():
    from speechbrain_phonanchor.model.losses import all_triplets_sum

    distances = torch.rand(3, 5, requires_grad=True)
    everything, nothing = torch.ones(3, 5, dtype=torch.bool), torch.zeros(3, 5, dtype=torch.bool)
    total, count = all_triplets_sum(distances, everything, nothing, 1.0)
    assert (float(total), count) == (0.0, 0)
    total.backward()  # the graph is kept
