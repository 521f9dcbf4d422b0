"""MSP-Podcast preparation: every release variant of the label file, audio folder, splits and alignments."""

import json

import pytest
from prepare_fixtures import write_table, write_textgrid, write_wav

from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.prepare import PrepareError, prepare_msp_podcast

COLUMNS = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
ROWS = [  # FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set
    ["MSP-PODCAST_0001_0008.wav", "N", "4.0", "2.4", "4", "30", "Male", "Train"],
    ["MSP-PODCAST_0001_0009.wav", "H", "6.2", "5.6", "4", "30", "Male", "Development"],
    ["MSP-PODCAST_0002_0001.wav", "A", "5.5", "2.5", "4", "31", "Female", "Validation"],
    ["MSP-PODCAST_0003_0001.wav", "S", "1.8", "1.0", "4", "32", "Female", "Test1"],
    ["MSP-PODCAST_1188_0020_0003.wav", "N", "3", "4", "4", "Unknown", "Unknown", "Test2"],
    ["MSP-PODCAST_0004_0001.wav", "", "", "", "", "33", "Male", "Test3"],
    ["MSP-PODCAST_0005_0001.wav", "C", "4", "4", "4", "34", "Male", "Train"],
    ["MSP-PODCAST_0005_0002.wav", "X", "4", "4", "4", "34", "Male", "Train"],
    ["MSP-PODCAST_0005_0003.wav", "U", "4", "4", "4", "34", "Male", "Train"],
    ["MSP-PODCAST_0005_0004.wav", "F", "4", "4", "4", "34", "Male", "Test1"],
    ["MSP-PODCAST_0005_0005.wav", "D", "4", "4", "4", "34", "Male", "Test1"],
    ["MSP-PODCAST_0005_0006.wav", "O", "4", "4", "4", "34", "Male", "Test1"],
]


def make_msp(root, label_name="labels_consensus.csv", label_dir="Labels", audio_dir="Audios", rows=ROWS,
             columns=COLUMNS, transcripts=True, aligned=True):
    for row in rows:
        write_wav(root / audio_dir / row[0])
        stem = row[0][:-4]
        if transcripts and not stem.endswith("0009"):
            (root / "Transcripts").mkdir(parents=True, exist_ok=True)
            (root / "Transcripts" / f"{stem}.txt").write_text(" hi there \n")
        if aligned and row[1] == "N":
            write_textgrid(root / "ForceAligned" / f"{stem}.TextGrid")
    label = root / label_dir / label_name
    if label_name.endswith(".json"):
        label.parent.mkdir(parents=True, exist_ok=True)
        data = {row[0]: {c: (int(v) if c == "SpkrID" and v.isdigit() else v) for c, v in zip(columns[1:], row[1:])}
                for row in rows}
        label.write_text(json.dumps(data))
    else:
        write_table(label, columns, [row[: len(columns)] for row in rows])
    return root


@pytest.mark.parametrize(
    "label_name,label_dir,audio_dir",
    [
        ("labels_consensus.csv", "Labels", "Audios"),
        ("labels_concensus.csv", "Labels", "Audio"),
        ("labels_consensus.json", "Labels", "Audios"),
        ("labels_concensus.json", ".", "Audio"),
    ],
)
def test_release_variants_give_same_manifests(tmp_path, label_name, label_dir, audio_dir):
    root = make_msp(tmp_path / "msp", label_name, label_dir, audio_dir)
    report = prepare_msp_podcast(root, tmp_path / "out", progress=False)
    assert report["kept_by_split"] == {"train": 1, "valid": 2, "test": 1, "test2": 1, "test3": 1}
    assert report["skipped_by_reason"] == {f"dropped_emotion_{c}": 1 for c in "CXUFDO"}
    train = load_manifest(tmp_path / "out" / "train.json", resolve=False)
    entry = train["MSP-PODCAST_0001_0008"]
    assert entry["wav"] == f"{{data_root}}/{audio_dir}/MSP-PODCAST_0001_0008.wav"
    assert (entry["emo"], entry["aro"], entry["val"], entry["spk"], entry["gender"], entry["lang"]) == (
        "neu", "mid", "low", "30", "M", "en")
    assert [v["vowel"] for v in entry["vowels"]] == ["aɪ"]  # ForceAligned/ read by default, ARPABET
    assert entry["text"] == "hi there"  # Transcripts/<stem>.txt


def test_splits_labels_and_three_number_groups(tmp_path):
    root = make_msp(tmp_path / "msp")
    prepare_msp_podcast(root, tmp_path / "out", progress=False)
    valid = load_manifest(tmp_path / "out" / "valid.json")
    assert valid["MSP-PODCAST_0001_0009"]["emo"] == "hap" and valid["MSP-PODCAST_0001_0009"]["aro"] == "high"
    assert valid["MSP-PODCAST_0001_0009"]["val"] == "high" and valid["MSP-PODCAST_0001_0009"]["text"] is None
    assert (valid["MSP-PODCAST_0002_0001"]["aro"], valid["MSP-PODCAST_0002_0001"]["val"]) == ("mid", "mid")
    test = load_manifest(tmp_path / "out" / "test.json")
    assert test["MSP-PODCAST_0003_0001"]["emo"] == "sad" and test["MSP-PODCAST_0003_0001"]["aro"] == "low"
    test2 = load_manifest(tmp_path / "out" / "test2.json")
    assert test2["MSP-PODCAST_1188_0020_0003"]["spk"] is None and test2["MSP-PODCAST_1188_0020_0003"]["gender"] is None
    test3 = load_manifest(tmp_path / "out" / "test3.json")
    assert test3["MSP-PODCAST_0004_0001"]["emo"] is None


def test_test3_can_be_left_out_and_is_counted(tmp_path):
    root = make_msp(tmp_path / "msp")
    report = prepare_msp_podcast(root, tmp_path / "out", include_unlabelled=False, progress=False)
    assert report["skipped_by_reason"]["unlabelled_split"] == 1
    assert "test3" not in report["manifests"]


def test_partitions_txt_of_older_releases(tmp_path):
    rows = [r for r in ROWS if r[7] != "Test3"]
    root = make_msp(tmp_path / "msp", "labels_concensus.csv", columns=COLUMNS[:-1], rows=rows)
    names = {"Development": "Validation"}
    lines = [f"{names.get(r[7], r[7])}; {r[0]}" for r in rows[:-1]]  # the last file is in no partition
    (root / "Partitions.txt").write_text("\n".join(lines) + "\n")
    report = prepare_msp_podcast(root, tmp_path / "out", progress=False)
    assert report["kept_by_split"] == {"train": 1, "valid": 2, "test": 1, "test2": 1}
    assert report["skipped_by_reason"]["no_split"] == 1


def test_without_split_set_or_partitions_names_the_column(tmp_path):
    root = make_msp(tmp_path / "msp", columns=COLUMNS[:-1])
    with pytest.raises(PrepareError, match=r"labels_consensus\.csv: required column 'Split_Set' is missing"):
        prepare_msp_podcast(root, tmp_path / "out", progress=False)


def test_user_textgrid_folder_wins_over_forcealigned(tmp_path):
    root = make_msp(tmp_path / "msp")
    write_textgrid(tmp_path / "mine" / "MSP-PODCAST_0001_0008.TextGrid", phones=[("OW1", 0.1, 0.3)])
    report = prepare_msp_podcast(root, tmp_path / "out", textgrid_folder=tmp_path / "mine", progress=False)
    train = load_manifest(tmp_path / "out" / "train.json")
    assert [v["vowel"] for v in train["MSP-PODCAST_0001_0008"]["vowels"]] == ["oʊ"]
    assert report["options"]["textgrid_folder"] == str((tmp_path / "mine").resolve())
    assert report["flagged"]["missing_textgrid"] == 5


def test_no_audio_folder_is_a_clear_error(tmp_path):
    root = make_msp(tmp_path / "msp", audio_dir="Wavs")
    with pytest.raises(PrepareError, match="no audio folder .*Audios, Audio"):
        prepare_msp_podcast(root, tmp_path / "out", progress=False)
