"""Dusha preparation: TSV and JSONL votes, Dawid–Skene and plurality aggregation, the authors' processed
labels, control rows, podcast without transcripts, splits."""

import json
import logging

import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene
from prepare_fixtures import write_table, write_textgrid, write_wav

from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.prepare import PrepareError, prepare_dusha
from speechbrain_phonanchor.prepare.cli import main
from speechbrain_phonanchor.prepare.dusha import EMOTION_MAP, PARTS

FIELDS = ["hash_id", "audio_path", "duration", "annotator_emo", "golden_emo", "speaker_text", "speaker_emo",
          "source_id", "annotator_id"]
NO_ANNOTATOR = [f for f in FIELDS if f != "annotator_id"]
LABELS = ["angry", "sad", "positive", "neutral"]


def vote(hash_id, annotator, label, source, text="", golden=""):
    """One raw Dusha row: ``annotator`` gave ``label`` to ``hash_id`` (a control row when ``golden`` is set)."""
    return dict(hash_id=hash_id, audio_path=f"wavs/{hash_id}.wav", duration="0.5", annotator_emo=label,
                golden_emo=golden, speaker_text=text, source_id=source, annotator_id=annotator)


def votes(hash_id, labels, source, text="", golden=()):
    rows = [vote(hash_id, f"a{i}", label, source, text) for i, label in enumerate(labels)]
    return rows + [vote(hash_id, "ctl", g, source, text, golden=g) for g in golden]


def write_subset(folder, rows, fmt="tsv", fields=FIELDS):
    for hash_id in {row["hash_id"] for row in rows}:
        write_wav(folder / "wavs" / f"{hash_id}.wav")
    name = f"raw_{folder.name}.{fmt}"
    if fmt == "tsv":
        write_table(folder / name, fields, rows, delimiter="\t")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("".join(json.dumps({f: row.get(f, "") for f in fields}) + "\n" for row in rows))


def make_dusha(root, fmt="tsv", nested=False, fields=FIELDS):
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
    write_subset(at("crowd_train"), crowd_train, fmt, fields)
    write_subset(at("crowd_test"), votes("cx", ["sad", "sad", "sad"], "src20", text="нет"), fmt, fields)
    write_subset(at("podcast_train"), votes("pt", ["positive", "positive"], "pod1"), fmt, fields)
    write_subset(at("podcast_test"), votes("px", ["neutral"], "pod2"), fmt, fields)
    return root


@pytest.mark.parametrize("fmt,nested", [("tsv", False), ("jsonl", False), ("tsv", True)])
def test_vote_aggregation_and_counts(tmp_path, fmt, nested):
    root = make_dusha(tmp_path / "dusha", fmt, nested)
    report = prepare_dusha(root, tmp_path / "out", aggregation="plurality", progress=False)
    assert report["options"]["label_source"] == "plurality"
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
    strict = prepare_dusha(root, tmp_path / "strict", aggregation="plurality", min_agreement=0.7, parts=("crowd",),
                           progress=False)
    assert strict["skipped_by_reason"]["low_agreement"] == 10 + 1 + 1  # ct*, oth: 2/3 < 0.7; weak: 2/5
    assert strict["flagged"].get("no_transcript", 0) == 0
    loose = prepare_dusha(root, tmp_path / "loose", aggregation="plurality", min_agreement=0.3, progress=False)
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


# ----------------------------------------------------------------------------- Dawid–Skene


def make_crowd(root):
    """Votes where Dawid–Skene and plurality disagree: two lazy annotators answer ``neutral`` to everything.

    podcast_train: 24 calibration tasks (r1, r2 right, r3 wrong on every third, l1/l2 always neutral), so
    the model learns who is reliable; crowd_train: ``dis*`` (l1, l2 neutral, r1 sad: plurality neutral,
    Dawid–Skene sad), ``unsure`` (posterior about 0.74), a golden first row, a golden later row, ``other``,
    rows without an annotator id.
    """
    calibration = []
    for i in range(24):
        true = LABELS[i % 4]
        calibration += [vote(f"cal{i}", "r1", true, f"pod{i % 6}"), vote(f"cal{i}", "r2", true, f"pod{i % 6}"),
                        vote(f"cal{i}", "r3", true if i % 3 else LABELS[(i + 1) % 4], f"pod{i % 6}")]
        calibration += [vote(f"cal{i}", lazy, "neutral", f"pod{i % 6}") for lazy in ("l1", "l2")]
    crowd = []
    for i in range(3):
        crowd += [vote(f"dis{i}", "l1", "neutral", f"src{i}"), vote(f"dis{i}", "l2", "neutral", f"src{i}"),
                  vote(f"dis{i}", "r1", "sad", f"src{i}", text="да")]
    crowd += [vote("dis0", "", "angry", "src0")]  # no annotator id: counted, not used
    crowd += [vote("unsure", "r3", "sad", "src3"), vote("unsure", "l1", "neutral", "src3")]
    crowd += [vote("gold_first", "r1", "sad", "src4", golden="sad")]
    crowd += [vote("gold_first", a, "sad", "src4") for a in ("r2", "r3")]
    crowd += [vote("gold_later", a, "angry", "src5") for a in ("r1", "r2")]
    crowd += [vote("gold_later", "r3", "angry", "src5", golden="angry")]
    crowd += [vote("oth", a, "other", "src6") for a in ("r1", "r2", "r3")]
    crowd += [vote("noid", "", "sad", "src7"), vote("noid", "", "sad", "src7")]
    write_subset(root / "podcast_train", calibration)
    write_subset(root / "crowd_train", crowd)
    write_subset(root / "crowd_test", [vote("cx", a, "sad", "src20") for a in ("r1", "r2")])
    write_subset(root / "podcast_test", [vote("px", "r1", "positive", "pod9"), vote("px", "l1", "neutral", "pod9")])
    return root


def all_entries(folder, resolve=True):
    splits = ("train", "valid", "test")
    return {k: v for s in splits for k, v in load_manifest(folder / f"{s}.json", resolve=resolve).items()}


def crowdkit_posteriors(root):
    """crowd-kit's own Dawid–Skene over every raw row with an annotator id: the oracle of the default."""
    rows = []
    for path in root.glob("*/raw_*.tsv"):
        with open(path, encoding="utf-8") as handle:
            rows += [r for r in pd.read_csv(handle, sep="\t", dtype=str).to_dict("records")
                     if isinstance(r["annotator_id"], str)]
    frame = pd.DataFrame({"task": [r["hash_id"] for r in rows], "worker": [r["annotator_id"] for r in rows],
                          "label": [r["annotator_emo"] for r in rows]})
    probas = DawidSkene(n_iter=100).fit(frame).probas_
    return probas.idxmax(axis=1).to_dict(), probas.max(axis=1).to_dict()


def test_dawid_skene_is_the_default_and_disagrees_with_plurality(tmp_path):
    root = make_crowd(tmp_path / "dusha")
    ds = prepare_dusha(root, tmp_path / "ds", progress=False)
    plurality = prepare_dusha(root, tmp_path / "pl", aggregation="plurality", progress=False)
    ds_entries, pl_entries = all_entries(tmp_path / "ds"), all_entries(tmp_path / "pl")
    for i in range(3):  # the lazy annotators outvote r1, but Dawid–Skene has learned they say nothing
        assert (ds_entries[f"dis{i}"]["emo"], pl_entries[f"dis{i}"]["emo"]) == ("sad", "neu")
    assert ds["options"]["label_source"] == "dawid_skene" and ds["options"]["threshold"] == 0.9
    assert ds["skipped_by_reason"] == {"below_threshold": 1, "golden": 1, "dropped_emotion_other": 1, "no_votes": 1}
    assert [ds["skipped_examples"][r] for r in ("below_threshold", "golden", "no_votes")] == [
        ["unsure"], ["gold_first"], ["noid"]]
    assert ds["rows_dropped"] == {"no_annotator_id": 3}
    assert ds_entries["gold_later"]["emo"] == "ang"  # only the first row decides whether a task is golden
    assert ds["kept"] == 24 + 3 + 1 + 2 and ds["kept_by_split"]["test"] == 2
    labels, posteriors = crowdkit_posteriors(root)
    assert all(EMOTION_MAP[labels[k]] == e["emo"] and posteriors[k] >= 0.9 for k, e in ds_entries.items())
    assert posteriors["unsure"] < 0.9 and labels["unsure"] == "sad"
    assert plurality["rows_dropped"] == {"control_row": 2}


def test_threshold_is_an_option_and_votes_are_pooled_over_subsets(tmp_path):
    root = make_crowd(tmp_path / "dusha")
    loose = prepare_dusha(root, tmp_path / "loose", threshold=0.7, parts=("crowd",), progress=False)
    entries = all_entries(tmp_path / "loose")
    assert entries["unsure"]["emo"] == "sad" and "below_threshold" not in loose["skipped_by_reason"]
    assert {e["subset"] for e in entries.values()} == {"crowd"}
    assert entries["dis0"]["emo"] == "sad"  # the podcast calibration tasks still taught the model
    strict = prepare_dusha(root, tmp_path / "strict", threshold=1.0, progress=False)
    assert strict["skipped_by_reason"]["below_threshold"] > 1
    with pytest.raises(PrepareError, match=r"threshold must lie in \[0, 1\]"):
        prepare_dusha(root, tmp_path / "x", threshold=90)
    with pytest.raises(PrepareError, match="unknown Dusha aggregation"):
        prepare_dusha(root, tmp_path / "x", aggregation="majority")


def test_without_annotator_ids_the_default_falls_back_to_plurality(tmp_path, caplog):
    root = make_dusha(tmp_path / "dusha", fields=NO_ANNOTATOR)
    with caplog.at_level(logging.WARNING):
        fallback = prepare_dusha(root, tmp_path / "fallback", progress=False)
    plurality = prepare_dusha(root, tmp_path / "plurality", aggregation="plurality", progress=False)
    assert any("fell back to plurality" in n and "no annotator_id" in n for n in fallback["notes"])
    assert "fell back to plurality" in caplog.text
    for key in ("kept_by_split", "skipped_by_reason", "rows_dropped"):
        assert fallback[key] == plurality[key]
    assert all_entries(tmp_path / "fallback") == all_entries(tmp_path / "plurality")


# ----------------------------------------------------------------------------- the authors' processed output


def write_processed(folder, subsets, fmt="jsonl"):
    """``aggregated_dataset/<subset>.<fmt>`` as the authors' ``processing.py`` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = ["hash_id", "audio_path", "duration", "emotion", "golden_emo", "speaker_text", "speaker_emo", "source_id"]
    for subset, rows in subsets.items():
        records = [dict(hash_id=h, audio_path=f"../../{subset}/wavs/{h}.wav", duration="0.5", emotion=emo,
                        golden_emo=golden, speaker_text="", speaker_emo="", source_id=src)
                   for h, emo, golden, src in rows]
        if fmt == "jsonl":
            (folder / f"{subset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        else:  # their TSV header names the audio column wav_path
            write_table(folder / f"{subset}.tsv", ["wav_path" if k == "audio_path" else k for k in keys],
                        [[r[k] for k in keys] for r in records], delimiter="\t")


PROCESSED = {
    "crowd_train": [("dis0", "angry", "", "src0"), ("dis1", "sad", "", "src1"), ("dis2", "sad", "", "src2"),
                    ("gold_first", "sad", "sad", "src4"), ("gold_later", "angry", "", "src5"),
                    ("oth", "other", "", "src6")],
    "crowd_test": [("cx", "sad", "", "src20")],
}


@pytest.mark.parametrize("fmt", ["jsonl", "tsv"])
def test_processed_labels_in_the_corpus_folder_are_taken_as_they_are(tmp_path, fmt):
    root = make_crowd(tmp_path / "dusha")
    write_processed(root / "processed_dataset_090" / "aggregated_dataset", PROCESSED, fmt)
    report = prepare_dusha(root, tmp_path / "out", parts=("crowd",), progress=False)
    entries = all_entries(tmp_path / "out")
    assert report["options"]["label_source"] == "processed"
    assert report["options"]["labels_folder"] == str(root.resolve() / "processed_dataset_090" / "aggregated_dataset")
    assert any("taken as they are" in n for n in report["notes"])
    assert entries["dis0"]["emo"] == "ang"  # theirs, although our Dawid–Skene says sad
    assert all_entries(tmp_path / "out", resolve=False)["dis0"]["wav"] == "{data_root}/crowd_train/wavs/dis0.wav"
    assert set(entries) == {"dis0", "dis1", "dis2", "gold_later", "cx"}
    assert report["skipped_by_reason"] == {"golden": 1, "dropped_emotion_other": 1, "not_in_processed_labels": 2}
    assert sorted(report["skipped_examples"]["not_in_processed_labels"]) == ["noid", "unsure"]


def test_processed_labels_folder_option_and_other_thresholds(tmp_path):
    root = make_crowd(tmp_path / "dusha")
    write_processed(root / "processed_dataset_080" / "aggregated_dataset", PROCESSED)
    default = prepare_dusha(root, tmp_path / "default", parts=("crowd",), progress=False)
    assert default["options"]["label_source"] == "dawid_skene"
    assert any("processed_dataset_080" in n and "not used" in n for n in default["notes"])
    at_080 = prepare_dusha(root, tmp_path / "at_080", threshold=0.8, parts=("crowd",), progress=False)
    assert at_080["options"]["label_source"] == "processed"
    write_processed(tmp_path / "elsewhere" / "aggregated_dataset", PROCESSED, "tsv")
    given = prepare_dusha(root, tmp_path / "given", labels_folder=tmp_path / "elsewhere", parts=("crowd",),
                          progress=False)
    assert given["options"]["label_source"] == "processed" and all_entries(tmp_path / "given")["dis0"]["emo"] == "ang"
    assert given["kept"] == 5 and "missing_audio" not in given["skipped_by_reason"]
    with pytest.raises(PrepareError, match="does not go with plurality"):
        prepare_dusha(root, tmp_path / "x", aggregation="plurality", labels_folder=tmp_path / "elsewhere")
    with pytest.raises(PrepareError, match="no processed label file"):
        prepare_dusha(root, tmp_path / "x", labels_folder=tmp_path / "elsewhere", parts=("podcast",))


def test_cli_passes_the_label_options(tmp_path, capsys):
    root = make_crowd(tmp_path / "dusha")
    status = main(["dusha", str(root), str(tmp_path / "out"), "--aggregation", "plurality", "--no-progress"])
    assert status == 0 and "dusha: kept" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "prep_report.json").read_text())
    assert report["options"]["label_source"] == "plurality"
    assert main(["dusha", str(root), str(tmp_path / "out2"), "--threshold", "0.7", "--no-progress"]) == 0
    assert json.loads((tmp_path / "out2" / "prep_report.json").read_text())["options"]["threshold"] == 0.7
    assert main(["generic", str(root), str(tmp_path / "out3"), "--threshold", "0.7", "--no-progress"]) == 2
    assert "does not take threshold" in capsys.readouterr().err
