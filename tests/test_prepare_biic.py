"""BIIC-Podcast preparation: MSP-style defaults with Mandarin, and overridable label file, columns and codes."""

import pytest
from prepare_fixtures import write_table, write_textgrid, write_wav

from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.prepare import PrepareError, prepare_biic_podcast
from speechbrain_phonanchor.prepare.cli import main

MSP_COLUMNS = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]


def test_default_layout_is_msp_style_in_mandarin(tmp_path):
    root = tmp_path / "biic"
    for name in ("BIIC_0001", "BIIC_0002", "BIIC_0003"):
        write_wav(root / "Audios" / f"{name}.wav")
    write_table(root / "Labels" / "labels_consensus.csv", MSP_COLUMNS, [
        ["BIIC_0001.wav", "A", "6", "2", "4", "7", "Female", "Train"],
        ["BIIC_0002.wav", "S", "2", "2", "4", "8", "Male", "Development"],
        ["BIIC_0003.wav", "C", "2", "2", "4", "8", "Male", "Test1"],
    ])
    write_textgrid(root / "ForceAligned" / "BIIC_0001.TextGrid",
                   phones=[("n", 0.1, 0.15), ("aj˧˥", 0.15, 0.3), ("x", 0.3, 0.35), ("ow˨˩˦", 0.35, 0.45)],
                   words=[("你", 0.1, 0.3), ("好", 0.3, 0.45)])
    report = prepare_biic_podcast(root, tmp_path / "out", progress=False)
    assert report["corpus"] == "biic_podcast" and report["options"]["phone_set"] == "mandarin_mfa"
    assert report["kept_by_split"] == {"train": 1, "valid": 1, "test": 0}
    assert report["skipped_by_reason"] == {"dropped_emotion_C": 1}
    entry = load_manifest(tmp_path / "out" / "train.json")["BIIC_0001"]
    assert (entry["lang"], entry["emo"], entry["aro"], entry["text"]) == ("zh", "ang", "high", "你 好")
    assert [(v["vowel"], v["kind"]) for v in entry["vowels"]] == [("aɪ", "diph"), ("oʊ", "diph")]


def overridden_corpus(root):
    write_wav(root / "Audio" / "spk7_a.wav")
    write_wav(root / "Audio" / "spk7_b.wav")
    write_wav(root / "Audio" / "spk9_c.wav")
    write_table(root / "meta" / "emotion_labels.tsv", ["name", "label", "act", "val", "speaker", "sex", "part"], [
        ["spk7_a", "Happy", "5.8", "6", "7", "F", "train"],
        ["spk7_b", "Neutral", "4", "4", "7", "F", "dev"],
        ["spk9_c", "Surprise", "4", "4", "9", "M", "test"],
    ], delimiter="\t")


OVERRIDES = dict(
    label_file="meta/emotion_labels.tsv",
    columns={"file": "name", "emotion": "label", "arousal": "act", "valence": "val", "speaker": "speaker",
             "gender": "sex", "split": "part"},
    emotion_map={"Happy": "hap", "Neutral": "neu", "Angry": "ang", "Sad": "sad"},
    dropped_codes=["Surprise"],
    split_map={"train": "train", "dev": "valid", "test": "test"},
)


def test_label_file_columns_and_codes_are_overridable(tmp_path):
    overridden_corpus(tmp_path / "biic")
    report = prepare_biic_podcast(tmp_path / "biic", tmp_path / "out", progress=False, **OVERRIDES)
    assert report["kept_by_split"] == {"train": 1, "valid": 1, "test": 0}
    assert report["skipped_by_reason"] == {"dropped_emotion_Surprise": 1}
    train = load_manifest(tmp_path / "out" / "train.json")
    assert (train["spk7_a"]["emo"], train["spk7_a"]["aro"], train["spk7_a"]["gender"]) == ("hap", "high", "F")


def test_overridden_column_missing_is_named(tmp_path):
    overridden_corpus(tmp_path / "biic")
    bad = dict(OVERRIDES, columns={**OVERRIDES["columns"], "speaker": "SpeakerID"})
    with pytest.raises(PrepareError, match=r"emotion_labels\.tsv: required column 'SpeakerID' is missing"):
        prepare_biic_podcast(tmp_path / "biic", tmp_path / "out", progress=False, **bad)


def test_yaml_config_through_the_cli(tmp_path, capsys):
    overridden_corpus(tmp_path / "biic")
    lines = ["label_file: meta/emotion_labels.tsv",
             "columns: {file: name, emotion: label, arousal: act, valence: val, gender: sex, split: part, "
             "speaker: speaker}",
             "emotion_map: {Happy: hap, Neutral: neu}", "dropped_codes: [Surprise]",
             "split_map: {train: train, dev: valid, test: test}"]
    (tmp_path / "biic.yaml").write_text("\n".join(lines) + "\n")
    status = main(["BIIC-Podcast", str(tmp_path / "biic"), str(tmp_path / "out"), "--config",
                   str(tmp_path / "biic.yaml"), "--no-progress"])
    assert status == 0
    assert "biic_podcast: kept 2 (train 1, valid 1, test 0), skipped 1" in capsys.readouterr().out
