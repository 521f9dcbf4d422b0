"""Audio reading: any rate and channel count in, 16 kHz mono out; every problem named."""

import numpy as np
import pytest
import soundfile

from speechbrain_phonanchor.audio import AudioError, audio_info, load_audio


def _tone(seconds, rate, channels=1, amplitude=0.3):
    t = np.arange(int(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * 200 * t)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    path = tmp_path / "stereo.wav"
    soundfile.write(path, _tone(0.5, 44100, channels=2), 44100)
    wav, info = load_audio(path)
    assert wav.dtype.__str__() == "torch.float32"
    assert wav.ndim == 1 and abs(len(wav) - 8000) <= 1
    assert info.resampled and info.downmixed and info.channels == 2


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: None, "missing_audio"),
        (lambda p: p.write_bytes(b"not audio at all"), "unreadable_audio"),
        (lambda p: soundfile.write(p, np.zeros(16000), 16000), "silent_audio"),
    ],
)
def test_bad_audio_names_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert err.value.reason == reason
    assert str(path) in str(err.value)


def test_truncated_wav_is_detected_from_its_header(tmp_path):
    path = tmp_path / "cut.wav"
    soundfile.write(path, _tone(1.0, 16000), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # libsndfile alone would read the half silently
    with pytest.raises(AudioError) as err:
        audio_info(path)
    assert err.value.reason == "truncated_audio"


def test_too_short_audio(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(path, _tone(0.01, 16000), 16000)
    with pytest.raises(AudioError, match="too short") as err:
        load_audio(path, min_duration=0.05)
    assert err.value.reason == "too_short_audio"
