"""Formant measurement on vowels synthesised with a source-filter model, Nearey normalisation, plots."""

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile

from speechbrain_phonanchor.analysis.formants import (
    formant_means,
    measure_formants,
    nearey_normalise,
    plot_vowel_spaces,
    sanity_check,
)

RATE = 16000
# Peterson & Barney-like targets: (vowel, F1, F2) for adult male and female voices.
TARGETS = {
    "M": [("i", 280, 2250), ("a", 730, 1100), ("u", 310, 870), ("ɛ", 530, 1840)],
    "F": [("i", 310, 2790), ("a", 850, 1220), ("u", 370, 950), ("ɛ", 610, 2330)],
}
F0 = {"M": 120, "F": 220}


def resonator(x, frequency, bandwidth):
    """Second-order digital formant resonator (Klatt 1980) with unit gain at 0 Hz."""
    r = np.exp(-np.pi * bandwidth / RATE)
    c = 2 * r * np.cos(2 * np.pi * frequency / RATE)
    return scipy.signal.lfilter([1 - c + r * r], [1, -c, r * r], x)


def synth_vowel(f1, f2, f0, duration=0.3):
    """Impulse train (−6 dB/octave source and lip radiation) through a cascade of five formant resonators."""
    source = np.zeros(int(duration * RATE))
    source[:: int(RATE / f0)] = 1.0
    x = scipy.signal.lfilter([1.0], [1.0, -0.97], source)
    for frequency, bandwidth in ((f1, 60), (f2, 90), (2950, 150), (3700, 200), (4500, 250)):
        x = resonator(x, frequency, bandwidth)
    return 0.5 * x / np.abs(x).max()


def _utterance(tmp_path, gender):
    """One file: 0.1 s silence, then each target vowel followed by 0.1 s silence; its manifest entry."""
    gap = np.zeros(int(0.1 * RATE))
    pieces, vowels, t = [gap], [], 0.1
    for vowel, f1, f2 in TARGETS[gender]:
        pieces += [synth_vowel(f1, f2, F0[gender]), gap]
        vowels.append({"phone": vowel, "ipa": vowel, "vowel": vowel, "kind": "mono", "start": t, "end": t + 0.3})
        t += 0.4
    vowels.append({"phone": "i", "ipa": "i", "vowel": "i", "kind": "mono", "start": 0.02, "end": 0.04})  # too short
    path = tmp_path / f"{gender}.flac"
    soundfile.write(path, np.concatenate(pieces), RATE)
    return {"wav": str(path), "duration": t, "emo": "neu", "spk": gender, "gender": gender, "vowels": vowels}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("formants")
    entries = {f"utt_{g}": _utterance(tmp_path, g) for g in ("M", "F")}
    entries["gone"] = dict(entries["utt_M"], wav=str(tmp_path / "missing.flac"))
    entries["empty"] = {"wav": str(tmp_path / "M.flac"), "emo": "neu", "vowels": []}
    return measure_formants(entries, "synth")


@pytest.mark.parametrize("gender", ["M", "F"])
def test_burg_means_recover_synthesised_formants_within_10_percent(measured, gender):
    tokens, _ = measured
    got = tokens[tokens["utt_id"] == f"utt_{gender}"].set_index("vowel")
    for vowel, f1, f2 in TARGETS[gender]:
        assert got.loc[vowel, "F1"] == pytest.approx(f1, rel=0.10), (gender, vowel)
        assert got.loc[vowel, "F2"] == pytest.approx(f2, rel=0.10), (gender, vowel)


def test_bad_input_is_counted_not_dropped(measured):
    tokens, skipped = measured
    assert len(tokens) == 8
    assert skipped["vowel_too_short"] == 2
    assert skipped["missing_audio"] == 5  # every vowel of the utterance whose audio is gone
    assert skipped["no_vowels"] == 1


def test_synthesised_vowel_space_passes_the_sanity_check(measured):
    result = sanity_check(measured[0])["synth"]
    assert result["ok"] and result["F2_i"] > result["F2_a"] and result["F1_a"] > result["F1_i"]
    assert not sanity_check(measured[0].assign(vowel="u"))["synth"]["ok"]  # no /i/, no /a/: cannot pass


def test_nearey_log_mean_removes_a_speaker_scale_factor():
    base = pd.DataFrame({"corpus": "c", "spk": "a", "vowel": ["i", "a", "u"],
                         "F1": [300.0, 750.0, 320.0], "F2": [2300.0, 1200.0, 800.0]})
    longer_tract = base.assign(spk="b", F1=base["F1"] * 1.2, F2=base["F2"] * 1.2)
    normalised = nearey_normalise(pd.concat([base, longer_tract], ignore_index=True))
    a, b = normalised[normalised["spk"] == "a"], normalised[normalised["spk"] == "b"]
    np.testing.assert_allclose(a[["F1_norm", "F2_norm"]].to_numpy(), b[["F1_norm", "F2_norm"]].to_numpy())
    expected_g = np.log(np.r_[base["F1"], base["F2"]]).mean()
    assert a["F1_norm"].iloc[0] == pytest.approx(np.log(300.0) - expected_g)
    # The single shared parameter keeps the F2/F1 ratio: ln F2 - ln F1 is unchanged.
    assert (a["F2_norm"] - a["F1_norm"]).iloc[1] == pytest.approx(np.log(1200.0 / 750.0))


def test_vowel_space_plot_has_both_corpora(measured, tmp_path):
    tokens = nearey_normalise(pd.concat([measured[0], measured[0].assign(corpus="other")], ignore_index=True))
    path = tmp_path / "mono.png"
    drawn = plot_vowel_spaces(formant_means(tokens), "mono", path)
    assert drawn == 8  # 4 vowels × 2 corpora × 1 emotion
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
