"""The segment-level transformer encoder and the emotion classifier.

Example
-------
>>> import torch
>>> encoder = SegmentEncoder(input_size=16, d_model=8, n_heads=2, n_layers=1, d_ffn=16)
>>> segments, mask = torch.randn(3, 5, 16), torch.ones(3, 5, dtype=torch.bool)
>>> encoder(segments, mask).shape
torch.Size([3, 5, 8])
>>> EmotionClassifier(input_size=8, n_classes=4)(torch.randn(3, 8)).shape
torch.Size([3, 4])
"""

from speechbrain.lobes.models.transformer.Transformer import PositionalEncoding
from torch import nn


class SegmentEncoder(nn.Module):
    """A transformer encoder over the sequence of vowel (or chunk) segments of an utterance.

    Linear projection to ``d_model`` → sinusoidal positions over the segment
    index (segments are in time order) → ``n_layers`` pre-norm transformer
    layers with a key padding mask → LayerNorm.  Its outputs are the segment
    embeddings the vowel triplet loss works on.

    Arguments
    ---------
    input_size : int
        Size of the pooled segment features.
    d_model, n_heads, n_layers, d_ffn : int
        Transformer sizes.
    dropout : float
        Dropout inside the transformer layers.
    positional : bool
        Add sinusoidal positional encodings over segment positions.
    """

    def __init__(self, input_size, d_model=256, n_heads=4, n_layers=2, d_ffn=1024, dropout=0.1, positional=True):
        super().__init__()
        self.project = nn.Linear(input_size, d_model)
        self.positions = PositionalEncoding(d_model) if positional else None
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=d_ffn, dropout=dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, segments, segment_mask):
        """Encode (B, S, input_size) segments where ``segment_mask`` (B, S) is True; return (B, S, d_model)."""
        x = self.project(segments)
        if self.positions is not None:
            x = x + self.positions(x)
        # A row without any valid segment would make attention NaN: let it see its (zero) first slot.
        padding = ~segment_mask
        padding[:, 0] &= segment_mask.any(dim=1)
        return self.norm(self.layers(x, src_key_padding_mask=padding))


class EmotionClassifier(nn.Sequential):
    """Dropout → Linear → ReLU → Dropout → Linear, returning logits (B, n_classes).

    Arguments
    ---------
    input_size : int
        Utterance embedding size.
    n_classes : int
        Number of classes of the task.
    hidden_size : int
        Hidden layer size.
    dropout : float
        Dropout before each linear layer.
    """

    def __init__(self, input_size, n_classes, hidden_size=128, dropout=0.1):
        super().__init__(
            nn.Dropout(dropout),
            nn.Linear(input_size, hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, n_classes),
        )
