"""Pseudo-labels: top fraction per predicted class (default), threshold, class-balanced, warm-up, analysis subset."""

import pytest
import torch

from speechbrain_phonanchor.model import PseudoLabeler
from speechbrain_phonanchor.model.pseudo_labels import balanced_assignment, top_fraction_mask


def logits_with_confidence(probabilities):
    """Two-class logits whose softmax maximum is each of ``probabilities`` (class 1 predicted)."""
    p = torch.tensor(probabilities)
    return torch.stack([torch.log(1 - p), torch.log(p)], dim=1)


def test_threshold_keeps_only_confident_predictions():
    labeler = PseudoLabeler(threshold=0.8, warmup_epochs=0, selection="threshold")
    labels = labeler(logits_with_confidence([0.95, 0.8001, 0.79, 0.6]), epoch=1)
    assert labels.tolist() == [1, 1, -1, -1]
    assert (labeler.n_seen, labeler.n_labelled) == (4, 2)


def test_warmup_gives_no_labels_then_starts():
    for selection in ("threshold", "top_fraction"):
        labeler = PseudoLabeler(threshold=0.5, warmup_epochs=3, selection=selection, fraction=1.0)
        logits = logits_with_confidence([0.99, 0.99])
        assert [labeler.active(epoch) for epoch in (1, 3, 4)] == [False, False, True]
        assert labeler(logits, epoch=3).tolist() == [-1, -1]
        assert labeler(logits, epoch=4).tolist() == [1, 1]
        assert (labeler.n_seen, labeler.n_labelled) == (4, 2)


def test_pseudo_labels_carry_no_gradient():
    logits = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)
    labels = PseudoLabeler(warmup_epochs=0)(logits, epoch=1)
    assert labels.tolist() == [0] and not labels.requires_grad


def test_analysis_subset_uses_given_labels_from_the_first_epoch():
    labeler = PseudoLabeler(threshold=0.99, warmup_epochs=10, source="analysis_subset")
    assert labeler(torch.zeros(3, 4), epoch=1, labels=torch.tensor([2, -1, 0])).tolist() == [2, -1, 0]
    with pytest.raises(ValueError, match="analysis subset"):
        labeler(torch.zeros(3, 4), epoch=1)


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError):
        PseudoLabeler(source="oracle")
    with pytest.raises(ValueError):
        PseudoLabeler(threshold=1.5)
    with pytest.raises(ValueError, match="selection"):
        PseudoLabeler(selection="confident")
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            PseudoLabeler(fraction=fraction)


# A 10-utterance, 4-class batch.  Predicted classes and softmax maxima (computed below):
#   class 0: rows 0, 3, 6, 8       class 1: rows 1, 4, 7      class 2: row 2      class 3: rows 5, 9
HAND_MADE = torch.tensor([
    [3.0, 0.0, 0.0, 0.0],   # 0: class 0, very confident
    [0.0, 1.0, 0.0, 0.0],   # 1: class 1, unsure
    [0.0, 0.0, 0.5, 0.0],   # 2: class 2, unsure (the only one of its class)
    [1.0, 0.0, 0.0, 0.0],   # 3: class 0, unsure
    [0.0, 4.0, 0.0, 0.0],   # 4: class 1, very confident
    [0.0, 0.0, 0.0, 2.0],   # 5: class 3
    [2.0, 0.0, 0.0, 0.0],   # 6: class 0, confident
    [0.0, 2.0, 0.0, 0.0],   # 7: class 1, confident
    [0.5, 0.0, 0.0, 0.0],   # 8: class 0, least sure
    [0.0, 0.0, 0.0, 2.0],   # 9: class 3, tied with row 5
])


def test_top_fraction_keeps_the_most_confident_half_of_each_predicted_class():
    labeler = PseudoLabeler(warmup_epochs=0)  # the default: top_fraction, fraction 0.5
    assert (labeler.selection, labeler.fraction) == ("top_fraction", 0.5)
    labels = labeler(HAND_MADE, epoch=1)
    # class 0: floor(0.5·4) = 2 of rows 0,3,6,8 → 0, 6; class 1: max(1, floor(1.5)) = 1 → row 4;
    # class 2: at least one → row 2; class 3: 1 of the tie 5, 9 → the earlier, row 5
    assert torch.nonzero(labels >= 0).flatten().tolist() == [0, 2, 4, 5, 6]
    assert labels.tolist() == [0, -1, 2, -1, 1, 3, 0, -1, -1, -1]
    assert (labeler.n_seen, labeler.n_labelled) == (10, 5)


def test_top_fraction_is_class_balanced_where_threshold_is_not():
    """One over-confident class takes every threshold label; top_fraction keeps each class's share."""
    confident = torch.tensor([[6.0, 0.0, 0.0, 0.0]] * 8)                      # class 0, p ≈ 0.99
    unsure = torch.tensor([[0.0, 1.0, 0.0, 0.0]] * 4 + [[0.0, 0.0, 0.8, 0.0]] * 4)  # classes 1 and 2, p < 0.5
    logits = torch.cat([confident, unsure])
    threshold = PseudoLabeler(threshold=0.9, warmup_epochs=0, selection="threshold")(logits, epoch=1)
    assert torch.bincount(threshold[threshold >= 0], minlength=4).tolist() == [8, 0, 0, 0]
    top = PseudoLabeler(warmup_epochs=0, fraction=0.5)(logits, epoch=1)
    assert torch.bincount(top[top >= 0], minlength=4).tolist() == [4, 2, 2, 0]


def test_at_least_one_per_predicted_class_and_fraction_one_keeps_all():
    predicted = torch.tensor([0, 1, 1, 2, 2, 2])
    confidence = torch.tensor([0.3, 0.4, 0.6, 0.5, 0.9, 0.7])
    assert top_fraction_mask(confidence, predicted, 0.01).tolist() == [True, False, True, False, True, False]
    assert top_fraction_mask(confidence, predicted, 1.0).all()
    assert top_fraction_mask(confidence, predicted, 0.7).tolist() == [True, False, True, False, True, True]


def test_top_fraction_is_deterministic_and_independent_of_calibration():
    labeler = PseudoLabeler(warmup_epochs=0)
    first = labeler(HAND_MADE, epoch=1)
    assert torch.equal(first, labeler(HAND_MADE, epoch=1))
    # scaling the logits changes every confidence but not the ranking within a class
    assert torch.equal(first, labeler(HAND_MADE * 0.1, epoch=1))


def test_balanced_selection_labels_every_class_even_when_one_class_wins_everywhere():
    torch.manual_seed(0)
    logits = torch.randn(64, 4)
    logits[:, 2] += 5.0  # a collapsed model: class 2 is the argmax of every utterance
    labeler = PseudoLabeler(warmup_epochs=0, selection="balanced", fraction=0.5)
    labels = labeler(logits, epoch=1)
    assert torch.bincount(labels[labels >= 0], minlength=4).tolist() == [8, 8, 8, 8]
    top = PseudoLabeler(warmup_epochs=0, selection="top_fraction", fraction=0.5)(logits, epoch=1)
    assert set(top[top >= 0].tolist()) == {2}  # the argmax rule keeps only the winning class
    probabilities = torch.softmax(logits, dim=-1)
    for cls in range(4):  # each class got its most probable utterances among those still free
        chosen = probabilities[labels == cls, cls]
        free = (labels < 0)
        assert chosen.min() >= probabilities[free, cls].max()
    assert labeler.n_labelled == 32 and "class-balanced" in labeler.describe()


def test_balanced_selection_of_a_small_batch_keeps_one_per_class():
    labels = balanced_assignment(torch.tensor([[0.6, 0.4], [0.7, 0.3], [0.1, 0.9]]), fraction=0.5)
    assert labels.tolist() == [-1, 0, 1]


def test_collapse_guard_keeps_one_class_below_its_share():
    from speechbrain_phonanchor.model.pseudo_labels import collapse_guard

    probabilities = torch.softmax(torch.randn(40, 4), dim=-1)
    labels = torch.zeros(40, dtype=torch.long)
    labels[:4] = 1  # 36 of 40 labels on class 0
    guarded, dropped = collapse_guard(labels, probabilities, torch.zeros(4, dtype=torch.long), max_share=0.6)
    kept = torch.bincount(guarded[guarded >= 0], minlength=4)
    assert kept[1] == 4 and kept[0] == 6 and dropped == 30  # 6 / 10 = 0.6
    zeros = probabilities[guarded == 0, 0]  # the most probable utterances of class 0 are kept
    assert zeros.min() >= probabilities[(labels == 0) & (guarded < 0), 0].max()
    # a batch all on one class, in an epoch with nothing else yet, keeps none; the guard off keeps all
    assert collapse_guard(torch.zeros(8, dtype=torch.long), probabilities[:8], torch.zeros(4, dtype=torch.long),
                          0.6)[1] == 8
    assert collapse_guard(labels, probabilities, torch.zeros(4, dtype=torch.long), 1.0) == (labels, 0)
    # earlier labels of the epoch count: class 1 is allowed more once other classes hold many
    earlier = torch.tensor([0, 0, 30, 0])
    assert collapse_guard(torch.ones(8, dtype=torch.long), probabilities[:8], earlier, 0.6)[1] == 0
