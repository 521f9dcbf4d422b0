"""Dusha preparation: TSV and JSONL votes, aggregation, control rows, podcast without transcripts, splits."""

import json

import pytest
from prepare_fixtures import write_table, write_textgrid, write_wav

from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.prepare import PrepareError, prepare_dusha
from speechbrain_phonanchor.prepare.dusha import PARTS

FIELDS = ["hash_id", "audio_path", "duration", "annotator_emo", "golden_emo", "speaker_text", "speaker_emo",
          "source_id", "annotator_id"]


def votes(hash_id, labels, source, text="", golden=()):
    rows = [dict(hash_id=hash_id, audio_path=f"wavs/{hash_id}.wav", duration="0.5", annotator_emo=label,
                 speaker_text=text, source_id=source, annotator_id=f"a{i}") for i, label in enumerate(labels)]
    rows += [dict(hash_id=hash_id, audio_path=f"wavs/{hash_id}.wav", duration="0.5", annotator_emo=g,
                  golden_emo=g, speaker_text=text, source_id=source, annotator_id="ctl") for g in golden]
    return rows


def write_subset(folder, rows, fmt="tsv"):
    for hash_id in {row["hash_id"] for row in rows}:
        write_wav(folder / "wavs" / f"{hash_id}.wav")
    name = f"raw_{folder.name}.{fmt}"
    if fmt == "tsv":
        write_table(folder / name, FIELDS, rows, delimiter="\t")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("".join(json.dumps({f: row.get(f, "") for f in FIELDS}) + "\n" for row in rows))


def make_dusha(root, fmt="tsv", nested=False):
    def at(name):
        return root / name.split("_")[0] / name if nested else root / name

    crowd_train = []
    for s in range(10):  # 10 speakers, one clear utterance each
        crowd_train += votes(f"ct{s}", ["angry", "angry", "neutral"], f"src{s}", text="привет")
    crowd_train += votes("tie", ["sad", "neutral"], "src0", text="да")
    crowd_train += votes("weak", ["sad", "neutral", "angry", "positive", "sad"], "src1", text="да")
    crowd_train += votes("oth", ["other", "other", "sad"], "src2", text="да")
    crowd_train += votes("ctl", [], "src3", text="да", golden=["sad", "sad"])
    crowd_train += votes("mixed", ["positive"], "src4", text="ура", golden=["angry"])
    write_subset(at("crowd_train"), crowd_train, fmt)
    write_subset(at("crowd_test"), votes("cx", ["sad", "sad", "sad"], "src20", text="нет"), fmt)
    write_subset(at("podcast_train"), votes("pt", ["positive", "positive"], "pod1"), fmt)
    write_subset(at("podcast_test"), votes("px", ["neutral"], "pod2"), fmt)
    return root


@pytest.mark.parametrize("fmt,nested", [("tsv", False), ("jsonl", False), ("tsv", True)])
def test_vote_aggregation_and_counts(tmp_path, fmt, nested):
    root = make_dusha(tmp_path / "dusha", fmt, nested)
    report = prepare_dusha(root, tmp_path / "out", progress=False)
    assert report["skipped_by_reason"] == {
        "tied_votes": 1, "low_agreement": 1, "dropped_emotion_other": 1, "control_only": 1,
    }
    assert report["rows_dropped"] == {"control_row": 3}
    assert report["kept"] == 10 + 1 + 1 + 1 + 1
    assert report["kept_by_split"]["test"] == 2
    assert report["flagged"]["no_transcript"] == 2  # the two podcast utterances
    manifests = {s: load_manifest(tmp_path / "out" / f"{s}.json") for s in ("train", "valid", "test")}
    everything = {k: v for m in manifests.values() for k, v in m.items()}
    assert everything["ct3"]["emo"] == "ang" and everything["ct3"]["text"] == "привет"
    assert everything["mixed"]["emo"] == "hap"  # the control vote 'angry' is not counted
    assert everything["pt"]["emo"] == "hap" and everything["pt"]["text"] is None
    assert (everything["pt"]["subset"], everything["cx"]["subset"]) == ("podcast", "crowd")
    assert set(manifests["test"]) == {"cx", "px"}
    assert everything["cx"]["lang"] == "ru" and everything["cx"]["spk"] == "src20"
    train_spk = {e["spk"] for e in manifests["train"].values()}
    valid_spk = {e["spk"] for e in manifests["valid"].values()}
    assert valid_spk and not train_spk & valid_spk


def test_agreement_threshold_and_parts_are_options(tmp_path):
    root = make_dusha(tmp_path / "dusha")
    strict = prepare_dusha(root, tmp_path / "strict", min_agreement=0.7, parts=("crowd",), progress=False)
    assert strict["skipped_by_reason"]["low_agreement"] == 10 + 1 + 1  # ct*, oth: 2/3 < 0.7; weak: 2/5
    assert strict["flagged"].get("no_transcript", 0) == 0
    loose = prepare_dusha(root, tmp_path / "loose", min_agreement=0.3, progress=False)
    assert "low_agreement" not in loose["skipped_by_reason"]
    with pytest.raises(PrepareError, match="unknown Dusha part"):
        prepare_dusha(root, tmp_path / "x", parts=("radio",))
    assert PARTS == ("crowd", "podcast")


def test_podcast_textgrids_give_vowels_and_text(tmp_path):
    root = make_dusha(tmp_path / "dusha")
    write_textgrid(tmp_path / "tg" / "pt.TextGrid", phones=[("d", 0.1, 0.2), ("ɐ", 0.2, 0.3)], words=[("да", 0.1, 0.3)])
    prepare_dusha(root, tmp_path / "out", textgrid_folder=tmp_path / "tg", progress=False)
    everything = {}
    for split in ("train", "valid"):
        everything.update(load_manifest(tmp_path / "out" / f"{split}.json"))
    assert [v["vowel"] for v in everything["pt"]["vowels"]] == ["a"] and everything["pt"]["text"] == "да"


def test_missing_field_and_missing_folders_are_errors(tmp_path):
    write_wav(tmp_path / "d" / "crowd_test" / "wavs" / "x.wav")
    write_table(tmp_path / "d" / "crowd_test" / "raw_crowd_test.tsv", [f for f in FIELDS if f != "golden_emo"],
                [], delimiter="\t")
    with pytest.raises(PrepareError, match=r"raw_crowd_test\.tsv: required column 'golden_emo' is missing"):
        prepare_dusha(tmp_path / "d", tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match="no Dusha subset folders .*crowd_train"):
        prepare_dusha(tmp_path / "empty", tmp_path / "out", progress=False)
