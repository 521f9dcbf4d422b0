"""phonanchor-analyze end to end on two tiny synthetic corpora with an in-memory feature store."""

import json

import numpy as np
import pytest
import soundfile
import yaml
from test_analysis_formants import RATE, synth_vowel

from speechbrain_phonanchor.analysis.cli import main
from speechbrain_phonanchor.analysis.selection import load_anchors
from speechbrain_phonanchor.features import store as store_module

FRAME_RATE = 50.0
DIM = 16
VOWEL_FORMANTS = {"i": (300, 2300), "a": (750, 1200), "u": (320, 850), "aɪ": (650, 1500)}
# Target features of these (emotion, vowel) cells are built to differ from the source's.
DIFFERENT = {("neu", "u"), ("ang", "i")}


class ArrayStore:
    """The FeatureStore read API over a dict of arrays."""

    def __init__(self, frames):
        self.frames, self.utterance_ids, self.dim, self.frame_rate = frames, list(frames), DIM, FRAME_RATE
        self.config = {"encoder": "toy", "layers": [-1]}

    def __getitem__(self, utt_id):
        return self.frames[utt_id]


def _vowel_vector(emotion, vowel, corpus):
    seed = sum(map(ord, emotion + vowel)) + (1000 if corpus == "it" and (emotion, vowel) in DIFFERENT else 0)
    return np.random.default_rng(seed).normal(size=DIM)


def _corpus(folder, corpus, n_per_emotion):
    """Manifest + in-memory frames: each utterance = silence, i, a, u, aɪ (0.3 s each, 0.1 s gaps)."""
    folder.mkdir()
    manifest, frames = {}, {}
    for emotion in ("neu", "ang"):
        for k in range(n_per_emotion):
            utt = f"{corpus}_{emotion}_{k}"
            pieces, vowels, t = [np.zeros(int(0.1 * RATE))], [], 0.1
            for vowel, (f1, f2) in VOWEL_FORMANTS.items():
                pieces += [synth_vowel(f1, f2, 120 + 10 * k), np.zeros(int(0.1 * RATE))]
                kind = "diph" if vowel == "aɪ" else "mono"
                vowels.append({"phone": vowel, "ipa": vowel, "vowel": vowel, "kind": kind, "start": t, "end": t + 0.3})
                t += 0.4
            soundfile.write(folder / f"{utt}.flac", np.concatenate(pieces), RATE)
            manifest[utt] = {"wav": str(folder / f"{utt}.flac"), "duration": t, "emo": emotion, "spk": f"{corpus}{k}",
                             "gender": "M", "lang": corpus, "vowels": vowels}
            noise = np.random.default_rng(len(frames)).normal(0, 0.05, (int(t * FRAME_RATE), DIM))
            for vowel in vowels:
                noise[int(vowel["start"] * FRAME_RATE): int(vowel["end"] * FRAME_RATE)] += _vowel_vector(
                    emotion, vowel["vowel"], corpus)
            frames[utt] = noise.astype(np.float16)
    manifest[f"{corpus}_unlabelled"] = dict(manifest[f"{corpus}_neu_0"], emo=None)
    (folder / "valid.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return ArrayStore(frames)


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    stores = {"pl": _corpus(tmp / "pl", "pl", 3), "it": _corpus(tmp / "it", "it", 2)}
    patch = pytest.MonkeyPatch()
    patch.setattr(store_module.FeatureStore, "open", classmethod(lambda cls, path, expect=None: stores[str(path)]))
    argv = ["--source", str(tmp / "pl"), "--target", str(tmp / "it" / "valid.json"), "--source-store", "pl",
            "--target-store", "it", "--out", str(tmp / "out"), "--min-segments", "2", "--tsne-points", "50"]
    code = main(argv)
    patch.undo()
    return code, tmp / "out"


def test_cli_writes_every_artefact(analysis):
    code, out = analysis
    assert code == 0
    for name in ("anchors.yaml", "commonality.csv", "commonality.md", "formant_tokens.csv", "formant_means.csv",
                 "vowel_space_mono.png", "vowel_space_diph.png", "tsne.png", "report.md", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text(encoding="utf-8")
    for link in ("(vowel_space_mono.png)", "(vowel_space_diph.png)", "(tsne.png)", "| mono | i |"):
        assert link in report
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["subset"] == {"pl": {"ang": 3, "neu": 3}, "it": {"ang": 2, "neu": 2}}
    assert summary["subset_skipped"]["pl"] == {"no_emotion": 1}
    assert summary["sanity"]["pl"]["ok"] and summary["sanity"]["it"]["ok"]


def test_cli_anchors_avoid_the_vowels_built_to_differ(analysis):
    _, out = analysis
    worst = load_anchors(out / "anchors.yaml", "WA", "mono")
    best = load_anchors(out / "anchors.yaml", "BA", "mono")
    assert worst["neu"][0] == "u" and worst["ang"][0] == "i"
    assert best["neu"] != ["u"] and best["ang"] != ["i"]
    assert load_anchors(out / "anchors.yaml", "GA", "diph") == {"ang": ["aɪ"], "neu": ["aɪ"]}
    excluded = yaml.safe_load((out / "anchors.yaml").read_text(encoding="utf-8"))["excluded"]
    assert set(excluded["neu"]["mono"]) == {"ɛ", "ə", "ɔ"}  # vowels neither synthetic corpus has are listed
    assert excluded["neu"]["diph"]["oʊ"] == "too few segments: source 0 < 2, target 0 < 2"


def test_cli_refuses_a_folder_without_a_validation_manifest(tmp_path, capsys):
    code = main(["--source", str(tmp_path), "--target", str(tmp_path), "--source-store", "a", "--target-store", "b",
                 "--out", str(tmp_path / "out"), "--no-formants"])
    assert code == 2 and "no validation manifest" in capsys.readouterr().err


def test_cli_refuses_a_missing_store_before_any_work(tmp_path, capsys):
    (tmp_path / "valid.json").write_text('{"u": {"wav": "/x.wav", "duration": 1.0, "emo": "neu"}}', encoding="utf-8")
    code = main(["--source", str(tmp_path), "--target", str(tmp_path), "--source-store", str(tmp_path / "nostore"),
                 "--target-store", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2 and "is not a feature store" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
