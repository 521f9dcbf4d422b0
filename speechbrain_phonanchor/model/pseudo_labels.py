"""Target emotions for the triplet anchors, without reading target labels.

``PseudoLabeler(threshold, warmup_epochs, source, selection, fraction)``:

- ``source="pseudo"`` (default): the model's own prediction (softmax argmax) on
  each target utterance, from epoch ``warmup_epochs + 1`` on (epochs count from
  1, as SpeechBrain's epoch counter does).  During warm-up every label is ``-1``
  (no triplet), so training is the CL baseline until the classifier is worth
  trusting.  The logits are detached: pseudo-labels receive no gradient.
  Which predictions are kept depends on ``selection``:

  - ``"top_fraction"`` (default, calibration-free): within each target batch,
    the utterances are grouped by predicted class; in a group of ``n``
    utterances the ``k = max(1, floor(fraction · n))`` with the highest
    softmax maximum keep their prediction, the others get ``-1``.  Every
    predicted class therefore keeps at least one utterance and about the same
    share of its utterances, whatever the absolute confidence of the model
    (a cross-lingual SER model is rarely confident enough for a fixed
    threshold).  Ties in confidence go to the earlier utterance in the batch,
    so the selection is deterministic.
  - ``"threshold"``: a prediction is kept where its softmax maximum is
    ``>= threshold`` (depends on the model's calibration; may keep nothing).
  - ``"balanced"`` (class-balanced self-training): every class gets the same
    number ``k = max(1, floor(fraction · B / C))`` of target utterances per batch,
    those with the highest softmax probability *of that class*, greedily from
    the most probable (utterance, class) pair down, one class per utterance.
    The label may differ from the argmax.  It keeps the pseudo-labels from
    collapsing onto the one class a drifting model predicts for everything
    (seen with ``top_fraction`` on EMOVO → nEMO), at the price of labelling
    some utterances with a class the model does not prefer.

- ``source="analysis_subset"``: the given labels of the small labelled target
  analysis subset (DESIGN.md step 3) are used as they are, from epoch 1;
  selection, threshold and warm-up do not apply.

``-1`` means "no label".  Counters ``n_seen`` and ``n_labelled`` give the
fraction of target utterances that received a label.

Example
-------
>>> import torch
>>> labeler = PseudoLabeler(warmup_epochs=2, selection="top_fraction", fraction=0.5)
>>> logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 0.5], [3.0, 0.0], [0.0, 0.2]])
>>> labeler(logits, epoch=2).tolist()       # still warming up
[-1, -1, -1, -1, -1]
>>> labeler(logits, epoch=3).tolist()       # class 0: best 1 of 3; class 1: best 1 of 2
[-1, -1, 1, 0, -1]
>>> PseudoLabeler(threshold=0.8, warmup_epochs=0, selection="threshold")(logits, epoch=1).tolist()
[0, -1, -1, 0, -1]
"""

import math

import torch
from torch import nn

SOURCES = ("pseudo", "analysis_subset")
SELECTIONS = ("top_fraction", "threshold", "balanced")


def top_fraction_mask(confidence, predicted, fraction):
    """True at the most confident ``max(1, floor(fraction · n_c))`` utterances of each predicted class c.

    Arguments
    ---------
    confidence : torch.Tensor
        (B,) softmax maximum of each utterance.
    predicted : torch.Tensor
        (B,) predicted class of each utterance.
    fraction : float
        Share of each predicted class to keep, in (0, 1].

    Returns
    -------
    torch.Tensor
        (B,) boolean mask; ties in confidence keep the earlier utterance.

    Example
    -------
    >>> top_fraction_mask(torch.tensor([0.9, 0.6, 0.7, 0.5]), torch.tensor([0, 0, 0, 1]), 0.5).tolist()
    [True, False, False, True]
    """
    keep = torch.zeros_like(predicted, dtype=torch.bool)
    for cls in torch.unique(predicted).tolist():
        members = torch.nonzero(predicted == cls).flatten()
        k = max(1, math.floor(fraction * len(members) + 1e-9))
        order = torch.sort(confidence[members], descending=True, stable=True).indices
        keep[members[order[:k]]] = True
    return keep


def balanced_assignment(probabilities, fraction):
    """Class-balanced pseudo-labels: ``k = max(1, floor(fraction · B / C))`` utterances per class.

    (utterance, class) pairs are taken from the most probable down; an utterance gets at most
    one class and a class at most ``k`` utterances.  Ties keep the earlier pair (row-major).

    Arguments
    ---------
    probabilities : torch.Tensor
        (B, C) softmax outputs.
    fraction : float
        Share of the batch to label, in (0, 1].

    Returns
    -------
    torch.Tensor
        (B,) class indices, ``-1`` where none.

    Example
    -------
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])   # all predicted class 0
    >>> balanced_assignment(p, fraction=1.0).tolist()
    [0, 0, 1, 1]
    >>> balanced_assignment(p, fraction=0.5).tolist()
    [0, -1, -1, 1]
    """
    n_items, n_classes = probabilities.shape
    k = max(1, math.floor(fraction * n_items / n_classes + 1e-9))
    labels, taken = [-1] * n_items, [0] * n_classes
    wanted = min(n_items, k * n_classes)
    order = torch.sort(probabilities.flatten(), descending=True, stable=True).indices.tolist()
    for flat in order:
        item, cls = divmod(flat, n_classes)
        if labels[item] < 0 and taken[cls] < k:
            labels[item] = cls
            taken[cls] += 1
            wanted -= 1
            if not wanted:
                break
    return torch.tensor(labels, dtype=torch.long, device=probabilities.device)


class PseudoLabeler(nn.Module):
    """Pseudo-labels after warm-up (top fraction per class, or a threshold), or the labelled analysis subset.

    Arguments
    ---------
    threshold : float
        Minimum softmax probability of the predicted class (``selection="threshold"`` only).
    warmup_epochs : int
        Epochs without pseudo-labels at the start of training.
    source : str
        ``"pseudo"`` or ``"analysis_subset"``.
    selection : str
        ``"top_fraction"`` (default), ``"threshold"`` or ``"balanced"``; see the module docstring.
    fraction : float
        Share of the utterances predicted as each class that keep their
        pseudo-label (``top_fraction``), or share of the batch labelled (``balanced``), in (0, 1].
    """

    def __init__(self, threshold=0.9, warmup_epochs=5, source="pseudo", selection="top_fraction", fraction=0.5):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"target label source must be one of {SOURCES}, got {source!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"pseudo-label selection must be one of {SELECTIONS}, got {selection!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.threshold = threshold
        self.warmup_epochs = warmup_epochs
        self.source = source
        self.selection = selection
        self.fraction = fraction
        self.n_seen = 0
        self.n_labelled = 0

    def describe(self):
        """One line saying how target classes are chosen (for logs)."""
        if self.source == "analysis_subset":
            return "analysis subset labels"
        rule = {"top_fraction": f"top {self.fraction:g} of each predicted class per batch",
                "threshold": f"softmax maximum >= {self.threshold:g}",
                "balanced": f"class-balanced, {self.fraction:g} of each batch"}[self.selection]
        return f"pseudo-labels ({rule}) after {self.warmup_epochs} warm-up epochs"

    def active(self, epoch):
        """True when target labels are produced at ``epoch`` (1-based)."""
        return self.source == "analysis_subset" or epoch > self.warmup_epochs

    def forward(self, logits, epoch, labels=None):
        """Return (B,) class indices for the target batch, ``-1`` where there is none.

        Arguments
        ---------
        logits : torch.Tensor
            (B, n_classes) model outputs on the target utterances.
        epoch : int
            Current epoch, counting from 1.
        labels : torch.Tensor, optional
            (B,) labels of the analysis subset; required when ``source="analysis_subset"``.

        Returns
        -------
        torch.Tensor
            (B,) long class indices, ``-1`` for "no label".
        """
        if self.source == "analysis_subset":
            if labels is None:
                raise ValueError("target_labels: analysis_subset needs the labels of the analysis subset")
            result = labels.long()
        elif not self.active(epoch):
            result = torch.full(logits.shape[:1], -1, dtype=torch.long, device=logits.device)
        else:
            probabilities = torch.softmax(logits.detach(), dim=-1)
            if self.selection == "balanced":
                result = balanced_assignment(probabilities, self.fraction)
            else:
                confidence, predicted = probabilities.max(dim=-1)
                if self.selection == "top_fraction":
                    keep = top_fraction_mask(confidence, predicted, self.fraction)
                else:
                    keep = confidence >= self.threshold
                result = torch.where(keep, predicted, torch.full_like(predicted, -1))
        self.n_seen += len(result)
        self.n_labelled += int((result >= 0).sum())
        return result


def collapse_guard(labels, probabilities, epoch_counts, max_share):
    """Drop the pseudo-labels that would let one class hold more than ``max_share`` of an epoch's labels.

    With ``n_c`` the labels class ``c`` already holds this epoch (``epoch_counts``) plus this
    batch's, and ``n_o`` the other classes' labels, class ``c`` may hold at most
    ``floor(max_share / (1 - max_share) · n_o)`` in all: the excess labels of this batch (its
    least probable utterances for ``c``) become ``-1``, so they form no triplet.  A batch in
    which every label falls on one class, in an epoch with no other class yet, keeps none.
    ``max_share >= 1`` switches the guard off.

    Arguments
    ---------
    labels : torch.Tensor
        (B,) pseudo-labels, ``-1`` for none.
    probabilities : torch.Tensor
        (B, C) softmax outputs the labels came from.
    epoch_counts : torch.Tensor
        (C,) labels each class received earlier in the epoch (after the guard).
    max_share : float
        The largest share one class may hold.

    Returns
    -------
    (torch.Tensor, int)
        The guarded labels and how many were dropped.

    Example
    -------
    >>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]])
    >>> labels, dropped = collapse_guard(torch.tensor([0, 0, 0, 1]), p, torch.tensor([0, 0]), max_share=0.6)
    >>> labels.tolist(), dropped     # class 0 may hold 1.5 × 1 label: keeps its most probable one
    ([0, -1, -1, 1], 2)
    """
    if max_share >= 1.0:
        return labels, 0
    labels = labels.clone()
    counts = epoch_counts.to(labels.device) + torch.bincount(labels[labels >= 0], minlength=len(epoch_counts))
    dropped = 0
    for cls in torch.nonzero(counts).flatten().tolist():
        others = int(counts.sum() - counts[cls])
        allowed_total = math.floor(max_share / (1.0 - max_share) * others + 1e-9)
        excess = int(counts[cls]) - max(allowed_total, int(epoch_counts[cls]))
        if excess <= 0:
            continue
        members = torch.nonzero(labels == cls).flatten()
        order = torch.sort(probabilities[members, cls], stable=True).indices  # least probable first
        labels[members[order[:excess]]] = -1
        dropped += excess
    return labels, dropped
