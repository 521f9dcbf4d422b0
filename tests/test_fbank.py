"""The built-in fbank front end: frames and timing, normalisation, store identity, CLI, train → export → classify."""

import json

import numpy as np
import pytest
import soundfile
import torch
import transformers
from pair_fixtures import EMOTIONS, make_pair, run_train

from speechbrain_phonanchor.export import export_model, load_exported
from speechbrain_phonanchor.features import cli
from speechbrain_phonanchor.features.encoders import EncoderError, FrozenEncoder, open_encoder
from speechbrain_phonanchor.features.extraction import load_encoder
from speechbrain_phonanchor.features.fbank import FbankEncoder
from speechbrain_phonanchor.features.store import FeatureStore, StoreError, build_store
from speechbrain_phonanchor.inference import encoder_fingerprint

SR = 16000
DURATIONS = {"a": 1.0, "b": 2.37, "c": 0.5}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three speech-like utterances (a tone with a moving pitch, some noise) and their manifest."""
    folder = tmp_path_factory.mktemp("fbank_corpus")
    rng = np.random.default_rng(0)
    manifest = {}
    for utt, seconds in DURATIONS.items():
        t = np.arange(round(seconds * SR)) / SR
        wav = 0.3 * np.sin(2 * np.pi * (150 + 50 * t) * t) + 0.01 * rng.standard_normal(t.size)
        soundfile.write(folder / f"{utt}.wav", wav, SR)
        manifest[utt] = {"wav": f"{{data_root}}/{utt}.wav", "duration": seconds}
    (folder / "m.json").write_text(json.dumps(manifest))
    return folder / "m.json", folder


def test_one_frame_per_20_ms_like_wav2vec2_base(tmp_path):
    enc = FbankEncoder()
    assert (enc.frame_rate, enc.dim, enc.min_samples, enc.layers) == (50.0, 80, 400, (0,))
    # wav2vec2-base's convolutional front end (default kernels and strides), tiny transformer
    config = transformers.Wav2Vec2Config(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=8, conv_dim=(8,) * 7, num_conv_pos_embeddings=8,
                                         num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(config).save_pretrained(tmp_path / "w2v2")
    ssl = FrozenEncoder(tmp_path / "w2v2")
    lengths = [0, 1, 399, 400, 719, 720, 1039, 1040, 8000, 16000, 16001, 37920]
    frames = enc.encode_list([torch.randn(n) for n in lengths])
    assert [len(f) for f in frames] == [enc.n_frames(n) for n in lengths]
    assert [enc.n_frames(n) for n in lengths[3:]] == [ssl.n_frames(n) for n in lengths[3:]]  # from 400 samples on
    assert [enc.n_frames(n) for n in lengths] == [0, 0, 0, 1, 1, 2, 2, 3, 24, 49, 49, 118]
    assert all(f.dtype == torch.float32 and f.shape[1] == 80 for f in frames)
    burst = torch.zeros(2 * SR)
    burst[SR : SR + 160] = torch.randn(160)  # 10 ms of noise at 1.00 s: frames 49 ([0.98, 1.005) s) and 50
    energy = FbankEncoder(normalize="none").encode_list([burst])[0].exp().sum(1)
    assert int(energy.argmax()) in (49, 50) and energy[48] < energy[49] / 100 and energy[51] < energy[50] / 100


def test_utterance_normalisation_removes_gain_and_is_deterministic():
    t = torch.arange(SR) / SR
    wav = 0.1 * torch.sin(2 * torch.pi * 220 * t) * (1 + torch.sin(2 * torch.pi * 3 * t)) + 0.001 * torch.randn(SR)
    norm, raw = FbankEncoder(), FbankEncoder(normalize="none")
    quiet, loud = norm.encode_list([wav, 4 * wav])
    torch.testing.assert_close(quiet, loud, atol=1e-3, rtol=0)  # the gain is gone
    torch.testing.assert_close(quiet.mean(0), torch.zeros(80), atol=1e-4, rtol=0)
    torch.testing.assert_close(quiet.std(0, unbiased=False), torch.ones(80), atol=1e-3, rtol=0)
    raw_quiet, raw_loud = raw.encode_list([wav, 4 * wav])
    torch.testing.assert_close(raw_loud - raw_quiet, torch.full_like(raw_quiet, float(np.log(16))), atol=1e-3,
                               rtol=0)  # log power: 4x amplitude adds log 16 to every bin
    assert torch.equal(norm.encode_list([wav])[0], quiet)
    padded = norm(torch.stack([wav, torch.cat([wav[: SR // 2], torch.zeros(SR // 2)])]), torch.tensor([1.0, 0.5]))
    assert padded.shape == (2, 49, 80) and torch.equal(padded[0], quiet) and not padded[1, 24:].any()


def test_layers_and_options_are_checked():
    assert FbankEncoder(layer=0).layers == FbankEncoder(layer=[-1]).layers == (0,)
    for layer in (1, -2, [0, -1]):
        with pytest.raises(EncoderError, match="one feature layer"):
            FbankEncoder(layer=layer)
    with pytest.raises(EncoderError, match="20 ms"):
        FbankEncoder(frame_shift_ms=10)
    with pytest.raises(EncoderError, match="normalize"):
        FbankEncoder(normalize="global")
    settings = {FbankEncoder().config_sha256, FbankEncoder(num_mel_bins=40).config_sha256,
                FbankEncoder(frame_length_ms=30).config_sha256, FbankEncoder(normalize="none").config_sha256}
    assert len(settings) == 4


def test_open_encoder_and_fingerprint():
    enc = open_encoder("fbank", layer=-1, whisper_window="exact")
    assert isinstance(enc, FbankEncoder) and enc.whisper_window is None and enc.source == "fbank"
    assert load_encoder(enc) is enc and isinstance(load_encoder("fbank"), FbankEncoder)
    assert encoder_fingerprint(enc) == FbankEncoder().config_sha256 != FbankEncoder(normalize="none").config_sha256


def test_store_has_one_frame_per_20_ms(corpus, tmp_path):
    manifest, root = corpus
    summary = build_store(manifest, "fbank", tmp_path / "store", data_root=root, progress=False)
    assert summary["extracted"] == 3
    store = FeatureStore.open(tmp_path / "store", verify=True)
    assert store.frame_rate == 50.0 and store.dim == 80
    assert (store.config["encoder"], store.config["encoder_type"], store.config["layers"]) == ("fbank", "fbank", [0])
    assert store.config["encoder_config_sha256"] == FbankEncoder().config_sha256
    for utt, seconds in DURATIONS.items():
        assert store[utt].shape == (1 + (round(seconds * SR) - 400) // 320, 80)
    assert [len(store[utt]) for utt in DURATIONS] == [49, 118, 24]  # 1.0 s, 2.37 s, 0.5 s
    wav, _ = soundfile.read(root / "b.wav", dtype="float32")
    expected = FbankEncoder().encode_list([torch.from_numpy(wav)])[0].to(torch.float16).numpy()
    np.testing.assert_array_equal(store["b"], expected)


def test_store_with_other_fbank_settings_is_refused(corpus, tmp_path):
    manifest, root = corpus
    build_store(manifest, FbankEncoder(normalize="none"), tmp_path / "raw", data_root=root, progress=False)
    with pytest.raises(StoreError, match="other settings .*encoder_config_sha256: store has '[0-9a-f]{64}'"):
        build_store(manifest, "fbank", tmp_path / "raw", data_root=root, progress=False)
    build_store(manifest, FbankEncoder(num_mel_bins=40), tmp_path / "small", data_root=root, progress=False)
    with pytest.raises(StoreError, match="dim: store has 40, requested 80"):
        build_store(manifest, "fbank", tmp_path / "small", data_root=root, progress=False)
    again = build_store(manifest, FbankEncoder(normalize="none"), tmp_path / "raw", data_root=root, progress=False)
    assert again["extracted"] == 3  # the same settings reopen the finished store


def test_extract_cli_accepts_fbank(corpus, tmp_path, capsys):
    manifest, root = corpus
    argv = [str(manifest), "--encoder", "fbank", "--out", str(tmp_path / "cli"), "--data-root", str(root),
            "--no-progress", "--device", "cpu"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 49 + 118 + 24
    assert cli.main(argv[:-5] + ["--layer", "3"] + argv[-5:]) == 1  # no such layer: exit status 1


def test_train_export_and_classify_with_fbank(tmp_path):
    pair = make_pair(tmp_path / "pair")
    brain = run_train(pair, "fbank_run", encoder_source="fbank", encoder_name="fbank", input_size=80,
                      feature_folder=pair / "fbank_features")
    store = FeatureStore.open(pair / "fbank_features" / "src" / "train")
    assert (store.config["encoder"], store.dim, store.frame_rate) == ("fbank", 80, 50.0)
    info = export_model(pair / "fbank_run", tmp_path / "exported", example=pair / "corpora/tgt/wavs/tgt_test_0.wav")
    assert not info["bundled_encoder"] and not (tmp_path / "exported" / "encoder").exists()
    hyperparams = (tmp_path / "exported" / "hyperparams.yaml").read_text(encoding="utf-8")
    assert 'encoder_source: "fbank"' in hyperparams and FbankEncoder().config_sha256 in hyperparams
    classifier = load_exported(tmp_path / "exported")
    assert isinstance(classifier.encoder, FbankEncoder)
    probabilities, score, index, label = classifier.classify_file(pair / "corpora/tgt/wavs/tgt_test_0.wav")
    assert label[0] in EMOTIONS and probabilities.shape == (1, 4) and float(score) == float(probabilities.max())
    assert brain.hparams.input_size == 80
