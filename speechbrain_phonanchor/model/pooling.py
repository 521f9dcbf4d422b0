"""Masked pooling: frames → segments (mean over each segment's frames) and
segments → utterance (attentive or mean).

Example
-------
>>> import torch
>>> frames = torch.arange(12.0).reshape(1, 6, 2)          # frame t = [2t, 2t+1]
>>> segments = torch.tensor([[[0, 2], [3, 6], [0, 0]]])    # third segment is padding
>>> mask = torch.tensor([[True, True, False]])
>>> SegmentPooling()(frames, segments, mask).tolist()
[[[1.0, 2.0], [8.0, 9.0], [0.0, 0.0]]]
>>> UtterancePooling(2, mode="mean")(torch.tensor([[[1.0, 1.0], [3.0, 5.0], [9.0, 9.0]]]), mask).tolist()
[[2.0, 3.0]]
"""

import torch
from torch import nn


class SegmentPooling(nn.Module):
    """Mean of the frames of each segment, ignoring padded segments and padded frames.

    A segment ``[start, end)`` covers frames ``start <= t < end``; ranges are
    clipped to the utterance's valid frames when ``lengths`` is given.  A
    padded or empty segment pools to zeros.
    """

    def forward(self, frames, segments, segment_mask, lengths=None):
        """Pool ``frames`` (B, T, D) over ``segments`` (B, S, 2) where ``segment_mask`` (B, S) is True.

        Returns
        -------
        torch.Tensor
            (B, S, D) segment means.
        """
        n_frames = frames.shape[1]
        t = torch.arange(n_frames, device=frames.device)
        start, end = segments[..., :1], segments[..., 1:]
        if lengths is not None:
            valid_frames = torch.round(lengths * n_frames).long().view(-1, 1, 1)
            end = torch.minimum(end, valid_frames)
        inside = (t >= start) & (t < end) & segment_mask.unsqueeze(-1)
        weights = inside.to(frames.dtype)
        counts = weights.sum(dim=-1, keepdim=True).clamp_min(1.0)
        return torch.bmm(weights, frames) / counts


class UtterancePooling(nn.Module):
    """Masked pooling of segment embeddings into one utterance vector.

    Arguments
    ---------
    input_size : int
        Segment embedding size.
    mode : str
        ``"attentive"`` (a learned score per segment, softmax over valid
        segments) or ``"mean"``.
    """

    def __init__(self, input_size, mode="attentive"):
        super().__init__()
        if mode not in ("attentive", "mean"):
            raise ValueError(f"pooling mode must be 'attentive' or 'mean', got {mode!r}")
        self.mode = mode
        self.score = nn.Linear(input_size, 1, bias=False) if mode == "attentive" else None

    def forward(self, segments, segment_mask):
        """Pool (B, S, E) segment embeddings over valid segments to (B, E)."""
        if self.mode == "mean":
            weights = segment_mask.to(segments.dtype)
            weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
        else:
            scores = self.score(segments).squeeze(-1).masked_fill(~segment_mask, float("-inf"))
            weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # a row with no valid segment → zeros
        return torch.bmm(weights.unsqueeze(1), segments).squeeze(1)
