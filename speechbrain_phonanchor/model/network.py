"""The whole AGA-CL network: cross-phonetic attention → segment pooling →
segment transformer → utterance pooling → classifier.

Example
-------
>>> import torch
>>> from speechbrain_phonanchor.model import (CrossPhoneticAttention, EmotionClassifier, SegmentEncoder,
...     UtterancePooling, VowelPrototypeBank)
>>> bank = VowelPrototypeBank(input_size=8)
>>> bank.fit([(torch.randn(10, 8).numpy(), [(0, 10, 2)])])
>>> net = PhonAnchorNet(
...     attention=CrossPhoneticAttention(8, 2, bank),
...     encoder=SegmentEncoder(8, d_model=4, n_heads=1, n_layers=1, d_ffn=8),
...     pooling=UtterancePooling(4),
...     classifier=EmotionClassifier(4, n_classes=3, hidden_size=4))
>>> frames, lengths = torch.randn(2, 12, 8), torch.tensor([1.0, 0.5])
>>> segments = torch.tensor([[[0, 6], [6, 12]], [[0, 6], [0, 0]]])
>>> out = net(frames, lengths, segments, torch.tensor([[True, True], [True, False]]))
>>> out.logits.shape, out.segment_embeddings.shape, out.utterance_embeddings.shape
(torch.Size([2, 3]), torch.Size([2, 2, 4]), torch.Size([2, 4]))
"""

from typing import NamedTuple

import torch
from torch import nn

from speechbrain_phonanchor.model.pooling import SegmentPooling


class NetOutput(NamedTuple):
    """What :class:`PhonAnchorNet` returns."""

    logits: torch.Tensor  # (B, n_classes)
    segment_embeddings: torch.Tensor  # (B, S, E), the triplet loss works on these
    utterance_embeddings: torch.Tensor  # (B, E)


class PhonAnchorNet(nn.Module):
    """Composes the modules in the order of DESIGN.md (each one is also usable alone).

    Arguments
    ---------
    attention : CrossPhoneticAttention
    encoder : SegmentEncoder
    pooling : UtterancePooling
    classifier : EmotionClassifier
    """

    def __init__(self, attention, encoder, pooling, classifier):
        super().__init__()
        self.attention = attention
        self.segment_pooling = SegmentPooling()
        self.encoder = encoder
        self.pooling = pooling
        self.classifier = classifier

    def forward(self, frames, lengths, segments, segment_mask, paired=None, paired_lengths=None):
        """Run the network on a padded batch.

        Arguments
        ---------
        frames : torch.Tensor
            (B, T, D) feature-store frames.
        lengths : torch.Tensor
            (B,) relative lengths.
        segments : torch.Tensor
            (B, S, 2) frame ranges ``[start, end)``.
        segment_mask : torch.Tensor
            (B, S) True at real segments.
        paired, paired_lengths : torch.Tensor, optional
            Target frames (B, T', D) to attend to; None attends to the prototype bank.

        Returns
        -------
        NetOutput
        """
        attended = self.attention(frames, lengths, paired, paired_lengths)
        pooled = self.segment_pooling(attended, segments, segment_mask, lengths)
        segment_embeddings = self.encoder(pooled, segment_mask)
        utterance = self.pooling(segment_embeddings, segment_mask)
        return NetOutput(self.classifier(utterance), segment_embeddings, utterance)
