"""Cross-phonetic attention: the first layer of the model, applied to raw
feature-store frames before any other processing.

What the source frames attend to
--------------------------------
``forward(frames, lengths, paired=None, paired_lengths=None)``:

- **paired mode** (``paired`` given): every frame of utterance *b* queries all
  valid frames of ``paired[b]``, the target utterance paired with it in the
  batch.  ``PhonAnchorBrain`` uses this for labelled *source* utterances during
  training only, so target phonetic information flows into the source.
- **prototype mode** (``paired`` is None): every frame queries the fixed bank of
  target vowel prototypes (:class:`VowelPrototypeBank`: the mean target frame of
  each vowel, or k-means centroids per vowel, computed once from the target
  training store and saved as buffers in the checkpoint).  Used for target
  utterances during training (they have no partner other than themselves, and
  this is exactly what they will see at test time), for validation and for
  inference.  With dropout off (``eval()``) it is deterministic, and each
  utterance's output depends only on its own frames: nothing is shared across
  the batch.

Either way the output is ``LayerNorm(frames + Dropout(attention))`` and keeps
the input shape (B, T, D).

Example
-------
>>> import torch
>>> from speechbrain_phonanchor.model.prototypes import VowelPrototypeBank
>>> bank = VowelPrototypeBank(input_size=8)
>>> bank.fit([(torch.randn(20, 8).numpy(), [(0, 10, 0), (10, 20, 3)])])
>>> attn = CrossPhoneticAttention(input_size=8, n_heads=2, prototypes=bank)
>>> src, tgt = torch.randn(2, 30, 8), torch.randn(2, 25, 8)
>>> attn(src, torch.tensor([1.0, 0.5]), tgt, torch.tensor([1.0, 0.8])).shape
torch.Size([2, 30, 8])
>>> attn(src).shape   # no partner: attends to the prototype bank
torch.Size([2, 30, 8])
"""

import torch
from speechbrain.dataio.dataio import length_to_mask
from torch import nn


def padding_mask(lengths, max_len):
    """Return a (B, max_len) bool mask, True at padded frames, from SpeechBrain relative lengths."""
    if lengths is None:
        return None
    absolute = torch.round(lengths * max_len).long()
    return ~length_to_mask(absolute, max_len=max_len).bool()


class CrossPhoneticAttention(nn.Module):
    """Multi-head attention from source frames to target frames or target vowel prototypes.

    Arguments
    ---------
    input_size : int
        Frame dimension D (e.g. 768 for wav2vec 2.0 base).
    n_heads : int
        Attention heads (must divide ``input_size``).
    prototypes : VowelPrototypeBank
        The bank used when no paired target utterance is given.
    dropout : float
        Dropout on the attention weights and on the attention output.
    """

    def __init__(self, input_size, n_heads, prototypes, dropout=0.0):
        super().__init__()
        self.attention = nn.MultiheadAttention(input_size, n_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(input_size)
        self.prototypes = prototypes

    def forward(self, frames, lengths=None, paired=None, paired_lengths=None):
        """Attend from ``frames`` (B, T, D) to ``paired`` (B, T', D) or, if None, to the prototype bank.

        ``lengths`` (relative, SpeechBrain convention) is accepted for a uniform
        call signature; padded query frames are computed but never used downstream.
        """
        if paired is None:
            memory, _ = self.prototypes()
            memory = memory.to(frames.dtype).unsqueeze(0).expand(frames.shape[0], -1, -1)
            key_padding = None
        else:
            if paired.shape[0] != frames.shape[0]:
                raise ValueError(f"paired batch has {paired.shape[0]} utterances, source has {frames.shape[0]}")
            memory = paired
            key_padding = padding_mask(paired_lengths, paired.shape[1])
        attended, _ = self.attention(frames, memory, memory, key_padding_mask=key_padding, need_weights=False)
        return self.norm(frames + self.dropout(attended))
