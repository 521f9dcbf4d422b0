"""Target emotions for the triplet anchors, without reading target labels.

``PseudoLabeler(threshold, warmup_epochs, source)``:

- ``source="pseudo"`` (default): the model's own prediction on each target
  utterance, kept only where the softmax maximum is ``>= threshold`` and only
  from epoch ``warmup_epochs + 1`` on (epochs count from 1, as SpeechBrain's
  epoch counter does).  During warm-up every label is ``-1`` (no triplet),
  so training is the CL baseline until the classifier is worth trusting.  The
  logits are detached: pseudo-labels receive no gradient.
- ``source="analysis_subset"``: the given labels of the small labelled target
  analysis subset (DESIGN.md step 3) are used as they are, from epoch 1;
  threshold and warm-up do not apply.

``-1`` means "no label".  Counters ``n_seen`` and ``n_labelled`` give the
fraction of target utterances that received a label.

Example
-------
>>> import torch
>>> labeler = PseudoLabeler(threshold=0.9, warmup_epochs=2)
>>> logits = torch.tensor([[5.0, 0.0], [0.1, 0.0]])
>>> labeler(logits, epoch=2).tolist()       # still warming up
[-1, -1]
>>> labeler(logits, epoch=3).tolist()       # only the confident one
[0, -1]
"""

import torch
from torch import nn

SOURCES = ("pseudo", "analysis_subset")


class PseudoLabeler(nn.Module):
    """Confident pseudo-labels after warm-up, or the labelled analysis subset.

    Arguments
    ---------
    threshold : float
        Minimum softmax probability of the predicted class.
    warmup_epochs : int
        Epochs without pseudo-labels at the start of training.
    source : str
        ``"pseudo"`` or ``"analysis_subset"``.
    """

    def __init__(self, threshold=0.9, warmup_epochs=5, source="pseudo"):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"target label source must be one of {SOURCES}, got {source!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        self.threshold = threshold
        self.warmup_epochs = warmup_epochs
        self.source = source
        self.n_seen = 0
        self.n_labelled = 0

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
        """
        if self.source == "analysis_subset":
            if labels is None:
                raise ValueError("target_labels: analysis_subset needs the labels of the analysis subset")
            result = labels.long()
        elif not self.active(epoch):
            result = torch.full(logits.shape[:1], -1, dtype=torch.long, device=logits.device)
        else:
            confidence, predicted = torch.softmax(logits.detach(), dim=-1).max(dim=-1)
            result = torch.where(confidence >= self.threshold, predicted, torch.full_like(predicted, -1))
        self.n_seen += len(result)
        self.n_labelled += int((result >= 0).sum())
        return result
