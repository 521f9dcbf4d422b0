"""Every bad input of issue 2: a counted skip with its reason (and the file), or a clear error naming the file."""

import csv

import numpy as np
import pytest
import soundfile
from praatio import textgrid as praat_textgrid
from prepare_fixtures import write_table, write_textgrid, write_wav

from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.prepare import PrepareError, prepare_generic, prepare_msp_podcast
from speechbrain_phonanchor.prepare.cli import main

HEADER = ["utt_id", "path", "emotion", "speaker", "split"]


def corpus_with(root, bad_row=None):
    """A generic corpus with one good utterance ``ok`` and optionally one more row."""
    write_wav(root / "ok.wav")
    write_textgrid(root / "tg" / "ok.TextGrid")
    rows = [["ok", "ok.wav", "neu", "s1", "train"]] + ([bad_row] if bad_row else [])
    write_table(root / "metadata.csv", HEADER, rows)
    return root


def skipped_rows(save_folder):
    with open(save_folder / "prep_skipped.tsv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def prepare(root, **kwargs):
    return prepare_generic(root, root / "out", textgrid_folder=root / "tg", phone_set="arpabet", progress=False,
                           **kwargs)


def assert_one_skip(root, report, utt_id, reason, detail_part):
    assert report["skipped_by_reason"] == {reason: 1}
    assert report["skipped_examples"] == {reason: [utt_id]}
    assert report["kept"] == 1 and "ok" in load_manifest(root / "out" / "train.json")
    (row,) = skipped_rows(root / "out")
    assert (row["utt_id"], row["reason"]) == (utt_id, reason) and detail_part in row["detail"]


def test_missing_wav(tmp_path):
    root = corpus_with(tmp_path, ["gone", "gone.wav", "neu", "s1", "train"])
    assert_one_skip(root, prepare(root), "gone", "missing_audio", "gone.wav")


def test_unreadable_wav(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    root = corpus_with(tmp_path, ["junk", "junk.wav", "neu", "s1", "train"])
    assert_one_skip(root, prepare(root), "junk", "unreadable_audio", "junk.wav")


def test_truncated_wav(tmp_path):
    data = write_wav(tmp_path / "full.wav", seconds=1.0).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    root = corpus_with(tmp_path, ["cut", "cut.wav", "neu", "s1", "train"])
    assert_one_skip(root, prepare(root), "cut", "truncated_audio", "cut.wav")


def test_truncated_flac(tmp_path):
    data = write_wav(tmp_path / "full.flac", seconds=1.0).read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    root = corpus_with(tmp_path, ["cut", "cut.flac", "neu", "s1", "train"])
    report = prepare(root)
    assert report["skipped_examples"] in ({"truncated_audio": ["cut"]}, {"unreadable_audio": ["cut"]})


def test_silent_wav(tmp_path):
    soundfile.write(tmp_path / "quiet.wav", np.zeros(8000), 16000)
    root = corpus_with(tmp_path, ["quiet", "quiet.wav", "neu", "s1", "train"])
    assert_one_skip(root, prepare(root), "quiet", "silent_audio", "quiet.wav")


def test_empty_textgrid(tmp_path):
    write_wav(tmp_path / "e.wav")
    write_textgrid(tmp_path / "tg" / "e.TextGrid", phones=[("sil", 0.0, 0.5)], words=[])
    root = corpus_with(tmp_path, ["e", "e.wav", "neu", "s1", "train"])
    assert_one_skip(root, prepare(root), "e", "empty_textgrid", "e.TextGrid")


def test_textgrid_without_phones_tier(tmp_path):
    write_wav(tmp_path / "w.wav")
    tg = praat_textgrid.Textgrid()
    tg.addTier(praat_textgrid.IntervalTier("words", [(0.1, 0.4, "hi")], 0.0, 0.5))
    (tmp_path / "tg").mkdir()
    tg.save(str(tmp_path / "tg" / "w.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    root = corpus_with(tmp_path, ["w", "w.wav", "neu", "s1", "train"])
    assert_one_skip(root, prepare(root), "w", "no_phones_tier", "tiers: words")


@pytest.mark.parametrize("end,kept", [(0.6, False), (0.44, False), (0.54, True), (0.46, True)])
def test_textgrid_end_against_audio_duration(tmp_path, end, kept):
    write_wav(tmp_path / "d.wav", seconds=0.5)
    write_textgrid(tmp_path / "tg" / "d.TextGrid", duration=end, phones=[("AA1", 0.1, 0.3)], words=[("a", 0.1, 0.3)])
    root = corpus_with(tmp_path, ["d", "d.wav", "neu", "s1", "train"])
    report = prepare(root)
    if kept:
        assert report["kept"] == 2 and report["skipped"] == 0
    else:
        assert_one_skip(root, report, "d", "duration_mismatch", "audio lasts 0.500 s")


def test_unknown_emotion_code(tmp_path):
    write_wav(tmp_path / "f.wav")
    root = corpus_with(tmp_path, ["f", "f.wav", "fear", "s1", "train"])
    assert_one_skip(root, prepare(root), "f", "unknown_emotion", "'fear'")


def test_unknown_msp_emotion_code(tmp_path):
    write_wav(tmp_path / "Audios" / "MSP-PODCAST_0001_0001.wav")
    write_wav(tmp_path / "Audios" / "MSP-PODCAST_0001_0002.wav")
    columns = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]
    write_table(tmp_path / "Labels" / "labels_consensus.csv", columns, [
        ["MSP-PODCAST_0001_0001.wav", "N", "4", "4", "4", "1", "Male", "Train"],
        ["MSP-PODCAST_0001_0002.wav", "Q", "4", "4", "4", "1", "Male", "Train"],
    ])
    report = prepare_msp_podcast(tmp_path, tmp_path / "out", progress=False)
    assert report["skipped_by_reason"] == {"unknown_emotion": 1} and report["kept"] == 1


def test_utterance_without_vowels_is_kept_and_counted_or_dropped(tmp_path):
    write_wav(tmp_path / "m.wav")
    write_textgrid(tmp_path / "tg" / "m.TextGrid", phones=[("M", 0.1, 0.3)], words=[("hmm", 0.1, 0.3)])
    root = corpus_with(tmp_path, ["m", "m.wav", "neu", "s1", "train"])
    report = prepare(root)
    assert report["kept"] == 2 and report["flagged"] == {"no_vowels": 1}
    assert report["flagged_examples"]["no_vowels"] == ["m"]
    train = load_manifest(root / "out" / "train.json")
    assert train["m"]["vowels"] == [] and train["m"]["phones"][1] == ["M", 0.1, 0.3]
    dropped = prepare(root, drop_vowelless=True)
    assert dropped["skipped_by_reason"] == {"no_vowels": 1} and dropped["kept"] == 1


def test_duplicate_ids(tmp_path):
    write_wav(tmp_path / "ok2.wav")
    root = corpus_with(tmp_path, ["ok", "ok2.wav", "ang", "s1", "train"])
    report = prepare(root)
    assert report["skipped_by_reason"] == {"duplicate_id": 1} and report["kept"] == 1
    assert load_manifest(root / "out" / "train.json")["ok"]["emo"] == "neu"  # the first row wins
    assert skipped_rows(root / "out")[0]["detail"] == "ok2.wav"


def test_label_file_missing_a_required_column(tmp_path, capsys):
    write_wav(tmp_path / "a.wav")
    write_table(tmp_path / "metadata.csv", ["utt_id", "path", "speaker"], [["a", "a.wav", "s1"]])
    with pytest.raises(PrepareError, match=r"metadata\.csv: required column 'emotion' is missing"):
        prepare_generic(tmp_path, tmp_path / "out", progress=False)
    assert main(["generic", str(tmp_path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "metadata.csv" in err and "'emotion'" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "prep_report.json").exists()


def test_missing_label_file_and_data_folder(tmp_path):
    with pytest.raises(PrepareError, match="label file not found: .*metadata.csv"):
        prepare_generic(tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(PrepareError, match="data folder not found"):
        prepare_generic(tmp_path / "nope", tmp_path / "out", progress=False)
    with pytest.raises(PrepareError, match="no label file in"):
        prepare_msp_podcast(tmp_path, tmp_path / "out", progress=False)
