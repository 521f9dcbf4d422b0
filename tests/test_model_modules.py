"""Shapes, gradients, masking and determinism of the AGA-CL model modules."""

import numpy as np
import pytest
import torch

from speechbrain_phonanchor.model import (
    CrossPhoneticAttention,
    EmotionClassifier,
    PhonAnchorNet,
    SegmentEncoder,
    SegmentPooling,
    UtterancePooling,
    VowelPrototypeBank,
    vowel_id,
)

D = 8


def fitted_bank(per_vowel=1, seed=0):
    rng = np.random.default_rng(seed)
    utterances = [
        (rng.normal(size=(30, D)).astype(np.float16), [(0, 10, vowel_id("i")), (10, 20, vowel_id("a")), (20, 30, 10)])
        for _ in range(4)
    ]
    bank = VowelPrototypeBank(D, per_vowel=per_vowel)
    bank.fit(utterances)
    return bank, utterances


def test_bank_mean_prototypes_match_numpy_and_skip_unseen_vowels():
    bank, utterances = fitted_bank()
    expected_i = np.concatenate([frames[0:10] for frames, _ in utterances]).astype(np.float64).mean(axis=0)
    prototypes, vowels = bank()
    assert vowels.tolist() == [vowel_id("i"), vowel_id("a"), vowel_id(None)]
    np.testing.assert_allclose(prototypes[0].numpy(), expected_i, rtol=1e-5, atol=1e-6)
    assert int(bank.filled.sum()) == 3


def test_bank_kmeans_finds_two_clusters_per_vowel():
    frames = np.concatenate([np.zeros((10, D)), np.full((10, D), 5.0)]).astype(np.float16)
    bank = VowelPrototypeBank(D, per_vowel=2)
    bank.fit([(frames, [(0, 20, vowel_id("u"))])])
    prototypes, vowels = bank()
    assert vowels.tolist() == [vowel_id("u")] * 2
    assert sorted(prototypes[:, 0].tolist()) == pytest.approx([0.0, 5.0])


def test_bank_is_saved_in_state_dict_and_empty_bank_refuses():
    bank, _ = fitted_bank()
    fresh = VowelPrototypeBank(D)
    with pytest.raises(RuntimeError, match="empty"):
        fresh()
    fresh.load_state_dict(bank.state_dict())
    assert torch.equal(fresh()[0], bank()[0])


def test_paired_attention_shapes_gradients_and_target_padding():
    attention = CrossPhoneticAttention(D, n_heads=2, prototypes=fitted_bank()[0])
    src = torch.randn(2, 12, D, requires_grad=True)
    tgt = torch.randn(2, 10, D, requires_grad=True)
    tgt_lens = torch.tensor([1.0, 0.5])
    out = attention(src, None, tgt, tgt_lens)
    assert out.shape == src.shape
    out.sum().backward()
    assert src.grad.abs().sum() > 0 and tgt.grad[:, :5].abs().sum() > 0
    assert tgt.grad[1, 5:].abs().sum() == 0  # padded target frames are never attended to
    assert all(p.grad is not None for p in attention.parameters())
    assert not any(name.startswith("prototypes") for name, _ in attention.named_parameters())


def test_attention_equals_multihead_attention_on_real_frames():
    """Projecting only real frames changes no output that is used: the real query frames match
    ``nn.MultiheadAttention`` with a key padding mask, in both modes."""
    bank = fitted_bank()[0]
    attention = CrossPhoneticAttention(D, n_heads=2, prototypes=bank).eval()
    src, tgt = torch.randn(3, 12, D), torch.randn(3, 10, D)
    src_lens, tgt_lens = torch.tensor([1.0, 0.5, 0.75]), torch.tensor([0.6, 1.0, 0.3])
    mha = attention.attention
    key_padding = ~(torch.arange(10) < torch.round(tgt_lens * 10).unsqueeze(1))
    reference, _ = mha(src, tgt, tgt, key_padding_mask=key_padding, need_weights=False)
    reference = attention.norm(src + reference)
    ours = attention(src, src_lens, tgt, tgt_lens)
    for row, n_real in enumerate(torch.round(src_lens * 12).long().tolist()):
        torch.testing.assert_close(ours[row, :n_real], reference[row, :n_real], rtol=1e-5, atol=1e-5)
    memory = bank()[0].unsqueeze(0).expand(3, -1, -1)
    reference = attention.norm(src + mha(src, memory, memory, need_weights=False)[0])
    torch.testing.assert_close(attention(src), reference, rtol=1e-5, atol=1e-5)


def test_attention_dropout_can_differ_from_output_dropout():
    attention = CrossPhoneticAttention(D, n_heads=2, prototypes=fitted_bank()[0], dropout=0.3, attention_dropout=0.0)
    assert attention.attention.dropout == 0.0 and attention.dropout.p == 0.3
    assert CrossPhoneticAttention(D, 2, fitted_bank()[0], dropout=0.2).attention.dropout == 0.2


def test_prototype_attention_is_deterministic_and_independent_of_batch():
    attention = CrossPhoneticAttention(D, n_heads=2, prototypes=fitted_bank()[0], dropout=0.3).eval()
    x, y = torch.randn(1, 12, D), torch.randn(1, 12, D)
    alone = attention(x)
    assert torch.equal(attention(x), alone)
    together = attention(torch.cat([y, x, y]))
    torch.testing.assert_close(together[1:2], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0:1], alone)


def test_segment_pooling_means_and_clips_to_length():
    frames = torch.randn(2, 10, D, requires_grad=True)
    segments = torch.tensor([[[0, 3], [4, 10]], [[2, 8], [0, 0]]])
    mask = torch.tensor([[True, True], [True, False]])
    lengths = torch.tensor([1.0, 0.6])  # second utterance has 6 valid frames
    pooled = SegmentPooling()(frames, segments, mask, lengths)
    assert pooled.shape == (2, 2, D)
    torch.testing.assert_close(pooled[0, 1], frames[0, 4:10].mean(dim=0))
    torch.testing.assert_close(pooled[1, 0], frames[1, 2:6].mean(dim=0))
    assert pooled[1, 1].abs().sum() == 0
    pooled.sum().backward()
    assert frames.grad[1, 6:].abs().sum() == 0 and frames.grad[0, 3].abs().sum() == 0


@pytest.mark.parametrize("mode", ["attentive", "mean"])
def test_utterance_pooling_ignores_padded_segments(mode):
    pooling = UtterancePooling(D, mode=mode)
    segments = torch.randn(2, 4, D, requires_grad=True)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    out = pooling(segments, mask)
    assert out.shape == (2, D)
    changed = segments.detach().clone()
    changed[1, 2:] = 100.0
    torch.testing.assert_close(pooling(changed, mask), out)
    out.sum().backward()
    assert segments.grad[1, 2:].abs().sum() == 0 and segments.grad[1, :2].abs().sum() > 0


def test_segment_encoder_masks_padding_and_survives_empty_rows():
    encoder = SegmentEncoder(D, d_model=8, n_heads=2, n_layers=2, d_ffn=16, dropout=0.0).eval()
    segments = torch.randn(3, 5, D)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False], [False] * 5])
    out = encoder(segments, mask)
    assert out.shape == (3, 5, 8) and torch.isfinite(out).all()
    changed = segments.clone()
    changed[1, 3:] = 50.0
    torch.testing.assert_close(encoder(changed, mask)[1, :3], out[1, :3])


def test_classifier_and_network_train_end_to_end():
    torch.manual_seed(0)
    bank = fitted_bank()[0]
    net = PhonAnchorNet(
        attention=CrossPhoneticAttention(D, 2, bank),
        encoder=SegmentEncoder(D, d_model=8, n_heads=2, n_layers=1, d_ffn=16),
        pooling=UtterancePooling(8),
        classifier=EmotionClassifier(8, n_classes=4, hidden_size=8),
    )
    frames, lengths = torch.randn(3, 15, D), torch.tensor([1.0, 0.8, 0.4])
    segments = torch.tensor([[[0, 6], [6, 15]], [[0, 12], [0, 0]], [[0, 6], [0, 0]]])
    mask = torch.tensor([[True, True], [True, False], [True, False]])
    for paired in (None, torch.randn(3, 9, D)):
        net.zero_grad()
        out = net(frames, lengths, segments, mask, paired, None if paired is None else torch.ones(3))
        assert out.logits.shape == (3, 4) and out.segment_embeddings.shape == (3, 2, 8)
        torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1, 2])).backward()
        missing = [name for name, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert missing == []


def test_modules_build_from_hyperpyyaml():
    from hyperpyyaml import load_hyperpyyaml

    hparams = load_hyperpyyaml(
        """
dim: 8
bank: !new:speechbrain_phonanchor.model.VowelPrototypeBank
    input_size: !ref <dim>
model: !new:speechbrain_phonanchor.model.PhonAnchorNet
    attention: !new:speechbrain_phonanchor.model.CrossPhoneticAttention
        input_size: !ref <dim>
        n_heads: 2
        prototypes: !ref <bank>
    encoder: !new:speechbrain_phonanchor.model.SegmentEncoder
        input_size: !ref <dim>
        d_model: 8
        n_heads: 2
    pooling: !new:speechbrain_phonanchor.model.UtterancePooling
        input_size: 8
        mode: mean
    classifier: !new:speechbrain_phonanchor.model.EmotionClassifier
        input_size: 8
        n_classes: 3
adapt_loss: !new:speechbrain_phonanchor.model.VowelTripletLoss
    margin: 0.5
labeler: !new:speechbrain_phonanchor.model.PseudoLabeler
    threshold: 0.7
    warmup_epochs: 2
"""
    )
    assert hparams["model"].attention.prototypes is hparams["bank"]
    assert "attention.prototypes.prototypes" in hparams["model"].state_dict()
    assert hparams["adapt_loss"].margin == 0.5 and hparams["labeler"].warmup_epochs == 2
