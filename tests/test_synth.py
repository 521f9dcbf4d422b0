"""espeak-ng synthesis: audio, prosody, phoneme events, determinism, errors, the example file."""

import numpy as np
import pytest
import soundfile

from speechbrain_phonanchor.synth import STYLES, SynthError, synthesize, synthesize_many, write_example

TEXT = "Hello world, this is a test."


def test_styles_change_duration_pitch_and_level():
    runs = dict(zip(STYLES, synthesize_many([(TEXT, "en", style) for style in STYLES.values()], jobs=2)))
    assert all(run.sample_rate == 22050 for run in runs.values())
    assert runs["sad"].duration > runs["neu"].duration > runs["ang"].duration  # rate
    rms = {name: float(np.sqrt(np.mean(run.samples ** 2))) for name, run in runs.items()}
    assert rms["ang"] > rms["neu"] > rms["sad"]  # volume


def test_phoneme_events_are_ipa_in_time_order():
    out = synthesize(TEXT, "en-us", STYLES["neu"])
    symbols = [p for p, _ in out.phonemes]
    assert symbols[:3] == ["h", "ə", "l"]
    times = [t for _, t in out.phonemes]
    assert times == sorted(times) and times[-1] < out.duration
    assert [offset for offset, _ in out.words][:3] == [0, 6, 13]  # "Hello", "world", "this"


def test_same_request_same_samples_whatever_came_before():
    runs = synthesize_many([(TEXT, "en", STYLES["neu"]), ("我很高兴", "zh", STYLES["hap"]),
                            (TEXT, "en", STYLES["neu"]), (TEXT, "en+f2", STYLES["sad"]),
                            (TEXT, "en+f2", STYLES["sad"])])
    assert np.array_equal(runs[0].samples, runs[2].samples)
    assert np.array_equal(runs[3].samples, runs[4].samples)  # voice variants add seeded noise
    assert np.array_equal(synthesize(TEXT, "en", STYLES["neu"]).samples, runs[0].samples)
    assert runs[1].phonemes and runs[1].duration > 0.5  # Mandarin from Han characters


def test_unknown_voice_is_an_error():
    with pytest.raises(SynthError, match="no voice 'xx-nope'"):
        synthesize("hello", "xx-nope")


def test_example_file_is_labelled_synthetic(tmp_path):
    path = write_example(tmp_path / "example.wav", "zh")
    with soundfile.SoundFile(path) as handle:
        assert handle.samplerate == 22050 and handle.frames > 22050
        assert handle.comment.startswith("SYNTHETIC speech (espeak-ng, zh)")
