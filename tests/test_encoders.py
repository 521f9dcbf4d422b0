"""FrozenEncoder on tiny random models built from configs (nothing is downloaded)."""

import math

import pytest
import torch

from speechbrain_phonanchor.features.encoders import EncoderError, FrozenEncoder, make_tiny_encoder

SR = 16000


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    made = {kind: make_tiny_encoder(root / kind, kind) for kind in ("wav2vec2", "hubert", "wavlm", "whisper")}
    made["wav2vec2-layernorm"] = make_tiny_encoder(root / "w2v2ln", "wav2vec2", feat_extract_norm="layer")
    return made


def noise(seconds, seed=0):
    return 0.1 * torch.randn(int(seconds * SR), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm", "whisper"])
def test_shapes_frame_rate_and_padding(folders, kind):
    enc = FrozenEncoder(folders[kind])
    long, short = noise(2.0), noise(1.0, seed=1)
    batch = torch.stack([long, torch.cat([short, torch.zeros(len(long) - len(short))])])
    out = enc(batch, torch.tensor([1.0, 0.5]))
    assert enc.frame_rate == 50.0
    assert enc.dim == 16
    assert out.shape == (2, enc.n_frames(len(long)), 16)
    assert enc.n_frames(len(short)) in (49, 50)  # wav2vec2 loses its receptive field, Whisper rounds up
    assert torch.count_nonzero(out[1, enc.n_frames(len(short)) :]) == 0
    assert out[1, : enc.n_frames(len(short))].abs().sum() > 0


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm", "whisper"])
def test_frozen_and_deterministic(folders, kind):
    enc = FrozenEncoder(folders[kind])
    assert not enc.model.training
    assert not any(param.requires_grad for param in enc.model.parameters())
    if kind != "whisper":
        assert enc.model.config.layerdrop == 0.0
        assert enc.model.config.apply_spec_augment is False
    wav = noise(1.5)
    first, second = enc.encode_list([wav])[0], enc.encode_list([wav])[0]
    assert torch.equal(first, second)
    assert not first.requires_grad


def test_group_norm_model_features_do_not_depend_on_batch(folders):
    enc = FrozenEncoder(folders["wav2vec2"])
    assert not enc.batchable
    short, long = noise(0.7, seed=2), noise(3.0, seed=3)
    alone = enc.encode_list([short])[0]
    batched = enc.encode_list([long, short])[1]
    assert torch.equal(alone, batched)


def test_layer_norm_model_is_batched_with_a_mask(folders):
    enc = FrozenEncoder(folders["wav2vec2-layernorm"])
    assert enc.batchable
    short, long = noise(0.7, seed=2), noise(3.0, seed=3)
    alone = enc.encode_list([short])[0]
    batched = enc.encode_list([long, short])[1]
    torch.testing.assert_close(alone, batched, atol=1e-4, rtol=1e-4)


def test_waveform_is_normalised_per_utterance(folders):
    enc = FrozenEncoder(folders["wav2vec2"])
    wav = noise(1.0)
    torch.testing.assert_close(enc.encode_list([wav])[0], enc.encode_list([3.0 * wav])[0], atol=1e-4, rtol=1e-4)


def test_several_layers_are_concatenated(folders):
    both = FrozenEncoder(folders["hubert"], layer=[0, -1])
    first, last = FrozenEncoder(folders["hubert"], layer=0), FrozenEncoder(folders["hubert"], layer=2)
    wav = noise(1.0)
    out = both.encode_list([wav])[0]
    assert both.dim == 32 and both.layers == (0, -1)
    assert torch.equal(out[:, :16], first.encode_list([wav])[0])
    assert torch.equal(out[:, 16:], last.encode_list([wav])[0])
    assert not torch.equal(out[:, :16], out[:, 16:])


def test_missing_layer_and_bad_source_are_refused(folders, tmp_path):
    with pytest.raises(EncoderError, match="layer 3 does not exist"):
        FrozenEncoder(folders["wavlm"], layer=3)
    with pytest.raises(EncoderError, match="cannot load"):
        FrozenEncoder(tmp_path)


def test_receptive_field(folders):
    enc = FrozenEncoder(folders["wav2vec2"])
    assert enc.n_frames(enc.min_samples) == 1
    assert enc.n_frames(enc.min_samples - 1) == 0
    assert enc.encode_list([noise(enc.min_samples / SR)])[0].shape == (1, 16)
    lengths = list(range(enc.min_samples - 3, enc.min_samples + 700)) + [16000, 16001, 48123]
    for length in lengths:  # the arithmetic n_frames agrees with the model's own tensor formula
        assert enc.n_frames(length) == int(enc.model._get_feat_extract_output_lengths(torch.tensor(length)))


def test_whisper_chunks_at_30_seconds_and_drops_padding_frames(folders):
    enc = FrozenEncoder(folders["whisper"])
    wav = noise(31.0)
    frames = enc.encode_list([wav])[0]
    assert frames.shape == (1550, 16)  # 1500 frames for the first 30 s, 50 for the last second
    head = enc.encode_list([wav[: 30 * SR]])[0]
    tail = enc.encode_list([wav[30 * SR :]])[0]
    assert head.shape == (1500, 16) and tail.shape == (50, 16)
    torch.testing.assert_close(frames[:1500], head, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(frames[1500:], tail, atol=1e-5, rtol=1e-5)
    # A chunk's features are not its neighbour's: the boundary is a real cut.
    assert not torch.allclose(frames[1499], frames[1500])
    # A short utterance batched with the long one keeps exactly its own frames.
    short = noise(2.01, seed=4)
    alone = enc.encode_list([short])[0]
    assert alone.shape == (101, 16)
    torch.testing.assert_close(enc.encode_list([wav, short])[1], alone, atol=1e-5, rtol=1e-5)
    assert enc.cost_seconds(31.0) == 60 and enc.cost_seconds(2.0) == 30


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("whisper") / "w", "whisper")


def test_whisper_exact_gives_one_frame_per_20_ms(tiny_whisper):
    encoder = FrozenEncoder(tiny_whisper, whisper_window="exact")
    assert not encoder.batchable and encoder.cost_seconds(3.0) == 3.0
    for samples in (320, 16000, 16100, 47999):
        assert encoder.encode_list([torch.randn(samples)])[0].shape == (math.ceil(samples / 320), 16)


def test_whisper_exact_equals_the_padded_window_on_a_full_window(tiny_whisper):
    """On exactly 30 s both windows see the same input, so every layer must agree: the hand-run layers
    follow ``output_hidden_states``'s convention (last state after the final layer norm)."""
    wav = 0.1 * torch.randn(30 * 16000)
    exact = FrozenEncoder(tiny_whisper, layer=[0, 1, 2], whisper_window="exact").encode_list([wav])[0]
    padded = FrozenEncoder(tiny_whisper, layer=[0, 1, 2], whisper_window="30s").encode_list([wav])[0]
    torch.testing.assert_close(exact, padded, rtol=0, atol=1e-5)


def test_whisper_exact_chunks_utterances_over_30_s(tiny_whisper):
    encoder = FrozenEncoder(tiny_whisper, whisper_window="exact")
    wav = 0.1 * torch.randn(30 * 16000 + 8000)
    frames = encoder.encode_list([wav])[0]
    assert frames.shape == (1500 + 25, 16)
    first, rest = encoder.encode_list([wav[: 30 * 16000], wav[30 * 16000 :]])
    torch.testing.assert_close(frames, torch.cat([first, rest]), rtol=0, atol=0)


def test_whisper_window_is_checked(tiny_whisper):
    with pytest.raises(EncoderError, match="whisper_window"):
        FrozenEncoder(tiny_whisper, whisper_window="10s")
