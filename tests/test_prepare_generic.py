"""Generic preparation: metadata.csv with and without a split column, TextGrids, skip check, CLI, recipe."""

import importlib.util
import json
import os

import pytest
from prepare_fixtures import REPO, SHARED_DATA, write_table, write_textgrid, write_wav

from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.prepare import prepare_generic
from speechbrain_phonanchor.prepare.cli import main

HEADER = ["utt_id", "path", "emotion", "speaker", "gender", "language", "text", "duration"]


def make_corpus(root, n_speakers=6, per_speaker=3, split=None, emotions=("neu", "hap", "ang")):
    rows = []
    for s in range(n_speakers):
        for k in range(per_speaker):
            utt = f"s{s}_u{k}"
            write_wav(root / "wavs" / f"{utt}.flac")
            row = dict(utt_id=utt, path=f"wavs/{utt}.flac", emotion=emotions[k % len(emotions)], speaker=f"s{s}",
                       gender="F" if s % 2 else "M", language="it", text=f"frase {k}", duration="0.500")
            if split is not None:
                row["split"] = split(s, k)
            rows.append(row)
    header = HEADER + (["split"] if split is not None else [])
    write_table(root / "metadata.csv", header, rows)
    return rows


def test_split_column_gives_official_splits_and_exact_entries(tmp_path):
    names = {0: "train", 1: "dev", 2: "test", 3: "Test2"}
    make_corpus(tmp_path / "c", n_speakers=4, split=lambda s, k: names[s])
    report = prepare_generic(tmp_path / "c", tmp_path / "out", progress=False)
    assert report["kept_by_split"] == {"train": 3, "valid": 3, "test": 3, "test2": 3}
    assert report["data_folder"] == str((tmp_path / "c").resolve())
    stored = json.loads((tmp_path / "out" / "valid.json").read_text())
    assert stored["s1_u1"] == {
        "wav": "{data_root}/wavs/s1_u1.flac", "duration": 0.5, "emo": "hap", "aro": None, "val": None,
        "spk": "s1", "gender": "F", "lang": "it", "text": "frase 1", "phones": [], "vowels": [],
    }
    resolved = load_manifest(tmp_path / "out" / "test2.json")
    assert os.path.isfile(resolved["s3_u0"]["wav"])
    assert report["flagged"]["no_vowels"] == 12 and report["flagged"]["no_textgrid"] == 12


def test_no_split_column_gives_seeded_speaker_independent_split(tmp_path):
    make_corpus(tmp_path / "c", n_speakers=10)
    first = prepare_generic(tmp_path / "c", tmp_path / "a", seed=7, progress=False)
    again = prepare_generic(tmp_path / "c", tmp_path / "b", seed=7, progress=False)
    speakers = {}
    for split in ("train", "valid", "test"):
        manifest = load_manifest(tmp_path / "a" / f"{split}.json")
        assert manifest, f"{split} is empty"
        speakers[split] = {entry["spk"] for entry in manifest.values()}
        assert manifest == load_manifest(tmp_path / "b" / f"{split}.json")
    assert not (speakers["train"] & speakers["valid"] or speakers["train"] & speakers["test"]
                or speakers["valid"] & speakers["test"])
    assert (len(speakers["train"]), len(speakers["valid"]), len(speakers["test"])) == (8, 1, 1)
    assert first["kept"] == again["kept"] == 30
    other = prepare_generic(tmp_path / "c", tmp_path / "c2", seed=8, progress=False)
    assert other["options"]["seed"] == 8


def test_textgrid_folder_adds_phones_and_vowels(tmp_path):
    make_corpus(tmp_path / "c", n_speakers=3, per_speaker=1, split=lambda s, k: "train")
    write_textgrid(tmp_path / "tg" / "s0" / "s0_u0.TextGrid", phones=[("h", 0.1, 0.2), ("aj", 0.2, 0.4)])
    write_textgrid(tmp_path / "tg" / "s1_u0.TextGrid", phones=[("ˈɔ", 0.1, 0.3)], words=[("o", 0.1, 0.3)])
    report = prepare_generic(tmp_path / "c", tmp_path / "out", textgrid_folder=tmp_path / "tg", progress=False)
    train = load_manifest(tmp_path / "out" / "train.json")
    assert [v["vowel"] for v in train["s0_u0"]["vowels"]] == ["aɪ"]
    assert train["s0_u0"]["phones"][0] == ["sil", 0.0, 0.1]
    assert train["s1_u0"]["vowels"][0]["vowel"] == "ɔ"
    assert train["s2_u0"]["vowels"] == []
    assert report["flagged"] == {"missing_textgrid": 1, "no_vowels": 1}


def test_outputs_exist_skip_and_rerun_on_new_options(tmp_path):
    make_corpus(tmp_path / "c", n_speakers=3, per_speaker=1)
    prepare_generic(tmp_path / "c", tmp_path / "out", progress=False)
    mtime = (tmp_path / "out" / "train.json").stat().st_mtime_ns
    os.remove(tmp_path / "c" / "wavs" / "s0_u0.flac")  # would be skipped if the corpus were read again
    again = prepare_generic(tmp_path / "c", tmp_path / "out", progress=False)
    assert again["kept"] == 3 and (tmp_path / "out" / "train.json").stat().st_mtime_ns == mtime
    redone = prepare_generic(tmp_path / "c", tmp_path / "out", min_duration=0.1, progress=False)
    assert redone["kept"] == 2 and redone["skipped_by_reason"] == {"missing_audio": 1}
    assert prepare_generic(tmp_path / "c", tmp_path / "out", skip_prep=True) is None
    os.remove(tmp_path / "out" / "valid.json")
    assert prepare_generic(tmp_path / "c", tmp_path / "out", min_duration=0.1, progress=False)["kept"] == 2
    assert (tmp_path / "out" / "valid.json").is_file()


def test_emotion_synonyms_unlabelled_rows_and_levels(tmp_path):
    write_wav(tmp_path / "a.wav")
    write_wav(tmp_path / "b.wav")
    write_wav(tmp_path / "c.wav")
    write_table(tmp_path / "metadata.csv", ["utt_id", "path", "emotion", "speaker", "split", "arousal", "valence"], [
        ["a", "a.wav", "Anger", "s1", "train", "6.2", "1.5"],
        ["b", "b.wav", "", "s1", "train", "2.5", "high"],
        ["c", "c.wav", "joy", "s2", "train", "9", ""],
    ])
    report = prepare_generic(tmp_path, tmp_path / "out", progress=False)
    train = load_manifest(tmp_path / "out" / "train.json")
    assert (train["a"]["emo"], train["a"]["aro"], train["a"]["val"]) == ("ang", "high", "low")
    assert (train["b"]["emo"], train["b"]["aro"], train["b"]["val"]) == (None, "mid", "high")
    assert (train["c"]["emo"], train["c"]["aro"]) == ("hap", None)
    assert report["flagged"]["no_emo_label"] == 1 and report["flagged"]["invalid_arousal"] == 1


def test_cli_prints_summary(tmp_path, capsys):
    make_corpus(tmp_path / "c", n_speakers=3, per_speaker=2)
    assert main(["generic", str(tmp_path / "c"), str(tmp_path / "out"), "--no-progress", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "generic: kept 6 (train 2, valid 2, test 2), skipped 0" in out
    assert "kept but no_vowels: 6" in out and "prep_report.json" in out
    assert main(["msp-podcast", str(tmp_path / "c"), str(tmp_path / "o2"), "--seed", "3"]) == 2
    assert "msp_podcast does not take seed" in capsys.readouterr().err


def test_recipe_module_exposes_prepare_function():
    path = REPO / "recipes" / "Generic" / "generic_prepare.py"
    spec = importlib.util.spec_from_file_location("generic_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.prepare_generic is prepare_generic
    for folder, name in (("MSP-Podcast", "msp_podcast"), ("BIIC-Podcast", "biic_podcast"), ("Dusha", "dusha")):
        assert (REPO / "recipes" / folder / f"{name}_prepare.py").is_file()
        assert (REPO / "recipes" / folder / "README.md").is_file()


def test_emovo_integration(tmp_path):
    data = SHARED_DATA / "emovo_it"
    if not (data / "metadata.csv").is_file():
        pytest.skip(f"{data} not found: the shared EMOVO subset is needed for this integration test")
    report = prepare_generic(data, tmp_path / "out", progress=False)
    assert report["kept"] == 336 and report["skipped"] == 0
    assert report["flagged"]["no_vowels"] == 336
    ids = set()
    for split in ("train", "valid", "test"):
        manifest = load_manifest(tmp_path / "out" / f"{split}.json")
        assert manifest
        ids |= set(manifest)
    assert len(ids) == 336
    stored = json.loads((tmp_path / "out" / "prep_report.json").read_text())
    assert stored["data_folder"] == str(data.resolve()) and stored["kept_by_split"]["train"] == 224
