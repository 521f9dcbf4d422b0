"""PhonAnchorClassifier on a tiny exported model: round trip, segmentation modes, bad audio, sample rates."""

import csv

import numpy as np
import pytest
import soundfile
import torch
from exported_fixtures import ALIGNED_TEXT, build

from speechbrain_phonanchor.audio import AudioError
from speechbrain_phonanchor.export import load_exported
from speechbrain_phonanchor.textgrids import write_alignment


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return build(tmp_path_factory.mktemp("inference"))


@pytest.fixture(scope="module")
def classifier(exported):
    return load_exported(exported[2])


def wav_of(exported, name="tgt_test_1"):
    return exported[0] / "corpora" / "tgt" / "wavs" / f"{name}.wav"


def test_textgrid_vowels_reproduce_the_training_predictions(exported, classifier, tmp_path):
    """The exported model + prototype bank give what the trained model gave on the target test set."""
    pair, brain, _, _ = exported
    with open(brain.hparams.predictions_file, encoding="utf-8") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    for name in ("tgt_test_0", "tgt_test_1", "tgt_test_2"):
        textgrid = tmp_path / f"{name}.TextGrid"  # the vowels of the fixture's manifest
        write_alignment(textgrid, [("la", 0.2, 0.7)], [("a", 0.2, 0.3), ("t", 0.3, 0.6), ("i", 0.6, 0.7)], 1.0)
        result = classifier.classify_file(wav_of(exported, name), textgrid=textgrid)
        expected = [float(rows[name][f"p_{c}"]) for c in classifier.classes]
        assert result.segmentation == ["vowels"]
        assert [v[0] for v in result.details[0]["vowels"]] == ["a", "i"]
        # store frames are float16, live frames float32: equal up to that rounding
        np.testing.assert_allclose(result[0][0].numpy(), expected, atol=2e-3)
        assert result[3] == [rows[name]["prediction"]]


def test_without_transcript_chunks_and_says_so(exported, classifier):
    probabilities, score, index, label = result = classifier.classify_file(wav_of(exported))
    assert probabilities.shape == (1, 4) and abs(float(probabilities.sum()) - 1) < 1e-5
    assert float(score[0]) == float(probabilities.max()) and label == [classifier.classes[int(index[0])]]
    assert result.segmentation == ["chunks"]
    assert result.details[0]["reason"] == "no transcript given"
    assert result.details[0]["n_segments"] == 5  # 49 frames in 12-frame chunks


def test_transcript_is_aligned_with_the_shipped_aligner(exported, classifier):
    result = classifier.classify_file(wav_of(exported), text=ALIGNED_TEXT)
    assert result.segmentation == ["vowels"]
    assert result.details[0]["reason"] == "built-in aligner (it)"
    assert [v[0] for v in result.details[0]["vowels"]] == ["a", "i", "a", "ɛ", "ɛ", "a"]
    starts = [v[1] for v in result.details[0]["vowels"]]
    assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] < 1.0


def test_transcript_without_an_aligner_for_its_language_falls_back(exported, classifier):
    result = classifier.classify_file(wav_of(exported), text="hello world", lang="en")
    assert result.segmentation == ["chunks"]
    assert "no aligner for 'en'" in result.details[0]["reason"] and "it" in result.details[0]["reason"]


def test_same_input_same_output_and_batch_equals_single(exported, classifier):
    first = classifier.classify_file(wav_of(exported, "tgt_test_3"))
    again = classifier.classify_file(wav_of(exported, "tgt_test_3"))
    assert torch.equal(first[0], again[0])
    long, _ = soundfile.read(wav_of(exported, "tgt_test_3"), dtype="float32")
    short = long[:9000]
    batch = torch.zeros(2, len(long))
    batch[0], batch[1, : len(short)] = torch.from_numpy(long), torch.from_numpy(short)
    together = classifier.classify_batch(batch, torch.tensor([1.0, len(short) / len(long)]))
    alone = classifier.classify_batch(torch.from_numpy(short))
    np.testing.assert_allclose(together[0][0].numpy(), first[0][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(together[0][1].numpy(), alone[0][0].numpy(), atol=1e-5)


def test_missing_file_is_a_clear_error(classifier, tmp_path):
    with pytest.raises(AudioError, match="missing audio") as err:
        classifier.classify_file(tmp_path / "nope.wav")
    assert err.value.reason == "missing_audio"


def test_too_short_audio_is_refused(classifier, tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, 0.3 * np.sin(np.arange(800) / 5), 16000)  # 50 ms
    with pytest.raises(AudioError, match="too short") as err:
        classifier.classify_file(path)
    assert err.value.reason == "too_short_audio"
    with pytest.raises(ValueError, match="utterance 0 is too short: 0.050 s"):
        classifier.classify_batch(torch.zeros(800) + 0.1)


def test_44k1_stereo_file_matches_16k_mono(exported, classifier, tmp_path):
    mono, _ = soundfile.read(wav_of(exported), dtype="float64")
    t16 = np.arange(len(mono)) / 16000
    t44 = np.arange(int(len(mono) * 44100 / 16000)) / 44100
    upsampled = np.interp(t44, t16, mono)
    path = tmp_path / "stereo44.wav"
    soundfile.write(path, np.stack([upsampled, 0.5 * upsampled], axis=1), 44100)
    reference = classifier.classify_file(wav_of(exported))
    result = classifier.classify_file(path)
    assert result[0].shape == (1, 4)
    np.testing.assert_allclose(result[0].numpy(), reference[0].numpy(), atol=0.05)
    as_batch = classifier.classify_batch(torch.from_numpy(upsampled).float(), sample_rate=44100)
    np.testing.assert_allclose(as_batch[0].numpy(), reference[0].numpy(), atol=0.05)
