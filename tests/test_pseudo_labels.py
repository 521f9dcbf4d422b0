"""Confident pseudo-labels: threshold, warm-up, analysis-subset option."""

import pytest
import torch

from speechbrain_phonanchor.model import PseudoLabeler


def logits_with_confidence(probabilities):
    """Two-class logits whose softmax maximum is each of ``probabilities`` (class 1 predicted)."""
    p = torch.tensor(probabilities)
    return torch.stack([torch.log(1 - p), torch.log(p)], dim=1)


def test_threshold_keeps_only_confident_predictions():
    labeler = PseudoLabeler(threshold=0.8, warmup_epochs=0)
    labels = labeler(logits_with_confidence([0.95, 0.8001, 0.79, 0.6]), epoch=1)
    assert labels.tolist() == [1, 1, -1, -1]
    assert (labeler.n_seen, labeler.n_labelled) == (4, 2)


def test_warmup_gives_no_labels_then_starts():
    labeler = PseudoLabeler(threshold=0.5, warmup_epochs=3)
    logits = logits_with_confidence([0.99, 0.99])
    assert [labeler.active(epoch) for epoch in (1, 3, 4)] == [False, False, True]
    assert labeler(logits, epoch=3).tolist() == [-1, -1]
    assert labeler(logits, epoch=4).tolist() == [1, 1]


def test_pseudo_labels_carry_no_gradient():
    logits = torch.tensor([[3.0, 0.0, 0.0]], requires_grad=True)
    labels = PseudoLabeler(threshold=0.5, warmup_epochs=0)(logits, epoch=1)
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
