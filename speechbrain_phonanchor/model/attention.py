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
the input shape (B, T, D).  Only real (unpadded) frames are projected: the
projections are most of the work, and padding is often half of a batch.

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

import contextlib

import torch
import torch.nn.functional as F
from speechbrain.dataio.dataio import length_to_mask
from torch import nn

# On the CPU the fused attention kernel runs in fp32 even under bf16 autocast: PyTorch's CPU kernel is
# slower in bf16 (benchmarks/train_speed.py measures it).  On a GPU the autocast dtype is kept.
FP32_ON_CPU = True


def padding_mask(lengths, max_len):
    """Return a (B, max_len) bool mask, True at padded frames, from SpeechBrain relative lengths."""
    if lengths is None:
        return None
    absolute = torch.round(lengths * max_len).long()
    return ~length_to_mask(absolute, max_len=max_len).bool()


def project_real_frames(frames, real, weight, bias):
    """``F.linear`` on the real frames only (``real`` (B, T) True); padded positions come out as zeros.

    The projections are most of the attention's work, and padding is often half of a batch.

    >>> x = torch.ones(2, 3, 4)
    >>> real = torch.tensor([[True, True, False], [True, False, False]])
    >>> project_real_frames(x, real, torch.eye(4), None)[:, :, 0].tolist()
    [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if real is None:
        return F.linear(frames, weight, bias)
    projected = F.linear(frames[real], weight, bias)
    out = projected.new_zeros(frames.shape[:-1] + (weight.shape[0],))
    out[real] = projected
    return out


class CrossPhoneticAttention(nn.Module):
    """Multi-head attention from source frames to target frames or target vowel prototypes.

    The parameters are those of an ``nn.MultiheadAttention`` (``attention``, so checkpoints keep
    its layout); the forward pass projects only real (unpadded) frames and runs
    ``scaled_dot_product_attention``.  On real frames it equals ``nn.MultiheadAttention``.

    Arguments
    ---------
    input_size : int
        Frame dimension D (e.g. 768 for wav2vec 2.0 base).
    n_heads : int
        Attention heads (must divide ``input_size``).
    prototypes : VowelPrototypeBank
        The bank used when no paired target utterance is given.
    dropout : float
        Dropout on the attention output (the residual branch).
    attention_dropout : float or None
        Dropout on the attention weights; None: the same as ``dropout``.
    """

    def __init__(self, input_size, n_heads, prototypes, dropout=0.0, attention_dropout=None):
        super().__init__()
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.attention = nn.MultiheadAttention(input_size, n_heads, dropout=attention_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(input_size)
        self.prototypes = prototypes

    def forward(self, frames, lengths=None, paired=None, paired_lengths=None):
        """Attend from ``frames`` (B, T, D) to ``paired`` (B, T', D) or, if None, to the prototype bank.

        ``lengths`` / ``paired_lengths`` are relative (SpeechBrain convention).  Padded query
        frames are not projected (their attention output is zero) and are never used downstream.
        """
        mha = self.attention
        batch, n_frames, dim = frames.shape
        heads = mha.num_heads
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        padded = padding_mask(lengths, n_frames)
        real = None if padded is None else ~padded
        query = project_real_frames(frames, real, w_q, b_q)
        if paired is None:
            memory, _ = self.prototypes()
            memory = memory.to(frames.dtype)
            key = F.linear(memory, w_k, b_k).unsqueeze(0).expand(batch, -1, -1)
            value = F.linear(memory, w_v, b_v).unsqueeze(0).expand(batch, -1, -1)
            attend = None
        else:
            if paired.shape[0] != batch:
                raise ValueError(f"paired batch has {paired.shape[0]} utterances, source has {batch}")
            paired_padded = padding_mask(paired_lengths, paired.shape[1])
            memory_real = None if paired_padded is None else ~paired_padded
            key = project_real_frames(paired, memory_real, w_k, b_k)
            value = project_real_frames(paired, memory_real, w_v, b_v)
            attend = None if memory_real is None else memory_real[:, None, None, :]

        def split_heads(x):
            return x.reshape(batch, x.shape[1], heads, dim // heads).transpose(1, 2)

        query, key, value = split_heads(query), split_heads(key), split_heads(value)
        fp32_kernel = frames.device.type == "cpu" and FP32_ON_CPU
        if fp32_kernel:
            query, key, value = query.float(), key.float(), value.float()
        with torch.autocast("cpu", enabled=False) if fp32_kernel else contextlib.nullcontext():
            attended = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attend, dropout_p=mha.dropout if self.training else 0.0)
        attended = attended.transpose(1, 2).reshape(batch, n_frames, dim)
        attended = project_real_frames(attended, real, mha.out_proj.weight, mha.out_proj.bias)
        return self.norm(frames + self.dropout(attended).to(frames.dtype))
