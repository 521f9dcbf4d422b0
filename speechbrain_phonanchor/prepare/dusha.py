"""Dusha (Russian): crowd-sourced votes aggregated into one label per utterance.

Layout::

    <data_folder>/{crowd,podcast}_{train,test}/raw_<name>.tsv   (or raw_<name>.jsonl)
    <data_folder>/{crowd,podcast}_{train,test}/wavs/<hash>.wav  (``audio_path`` is relative
                                                                 to the subset folder)

The subset folders may also sit one level down (``crowd/crowd_train/...``).
When a subset has both a ``.tsv`` and a ``.jsonl`` file, the ``.tsv`` is read
and the report notes it.  Fields: ``hash_id, audio_path, duration,
annotator_emo, golden_emo, speaker_text, speaker_emo, source_id,
annotator_id``, one row per annotator vote.

Vote aggregation (per ``hash_id``):

1. Control rows (non-empty ``golden_emo``: the honeypot tasks used to check
   annotators) are dropped and counted in ``rows_dropped["control_row"]``;
   rows without a vote in ``rows_dropped["empty_vote"]``.  An utterance left
   with no vote is skipped as ``control_only``.
2. The label is the plurality vote.  It is accepted when it is the unique
   maximum (else ``tied_votes``), has at least ``min_votes`` votes in all
   (else ``too_few_votes``) and its share of the votes is at least
   ``min_agreement`` (default 0.5, i.e. at least half of the annotators
   agree; else ``low_agreement``).
3. angry/sad/neutral/positive → ang/sad/neu/hap; ``other`` is dropped
   (``dropped_emotion_other``), anything else is ``unknown_emotion``.

Splits: ``*_test`` → ``test.json``; ``*_train`` is cut into ``train.json`` and
``valid.json`` by a seeded speaker-independent split over ``source_id``
(90/10 by speakers, :func:`common.speaker_split`).  ``speaker_text`` exists only
in the crowd part: podcast utterances have no transcript (counted as
``no_transcript``) and no vowels unless TextGrids are given.  Each entry also
carries ``subset`` (``crowd`` or ``podcast``).

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "crowd_test" / "wavs").mkdir(parents=True)
>>> soundfile.write(root / "crowd_test" / "wavs" / "h1.wav", 0.1 * numpy.ones(8000), 16000)
>>> head = "\\t".join(["hash_id", "audio_path", "duration", "annotator_emo", "golden_emo",
...                    "speaker_text", "speaker_emo", "source_id", "annotator_id"])
>>> rows = ["h1\\twavs/h1.wav\\t0.5\\tsad\\t\\tда\\tsad\\ts1\\ta%d" % i for i in range(3)]
>>> _ = (root / "crowd_test" / "raw_crowd_test.tsv").write_text("\\n".join([head] + rows) + "\\n")
>>> report = prepare_dusha(root, root / "out", progress=False)
>>> report["kept_by_split"]["test"]
1
"""

import functools
import pathlib
from collections import Counter

from speechbrain_phonanchor.prepare.common import (
    DEFAULT_SEED,
    Preparation,
    PrepareError,
    Utterance,
    clean,
    map_label,
    read_table,
)

FIELDS = ("hash_id", "audio_path", "annotator_emo", "golden_emo", "source_id")
EMOTION_MAP = {"angry": "ang", "sad": "sad", "neutral": "neu", "positive": "hap"}
DROPPED = ("other",)
DUSHA_RATIOS = {"train": 0.9, "valid": 0.1}
PARTS = ("crowd", "podcast")


def find_subsets(data_folder, parts, report):
    """Return ``(part, "train"|"test", label file)`` for every ``<part>_{train,test}`` folder found."""
    data_folder = pathlib.Path(data_folder)
    found = []
    for part in parts:
        for half in ("train", "test"):
            name = f"{part}_{half}"
            folder = next((f for f in (data_folder / name, data_folder / part / name) if f.is_dir()), None)
            if folder is None:
                continue
            files = sorted(folder.glob("raw_*.tsv")) or sorted(folder.glob("raw_*.jsonl"))
            if not files:
                raise PrepareError(f"{folder}: no raw_*.tsv or raw_*.jsonl label file")
            if len(files) > 1:
                raise PrepareError(f"{folder}: several label files ({', '.join(f.name for f in files)}); keep one")
            if list(folder.glob("raw_*.jsonl")) and files[0].suffix == ".tsv":
                report.note(f"{folder}: read {files[0].name}, ignored the .jsonl copy")
            found.append((part, half, files[0]))
    if not found:
        expected = ", ".join(f"{p}_{h}" for p in parts for h in ("train", "test"))
        raise PrepareError(f"no Dusha subset folders in {data_folder}: expected some of {expected}")
    return found


def aggregate_votes(hash_id, votes, min_agreement, min_votes, report):
    """Return the plurality label of ``votes`` (a list of labels), or None after counting a skip."""
    if not votes:
        report.skip(hash_id, "control_only")
        return None
    counts = Counter(votes).most_common()
    label, top = counts[0]
    if len(counts) > 1 and counts[1][1] == top:
        report.skip(hash_id, "tied_votes", dict(counts))
        return None
    if len(votes) < min_votes:
        report.skip(hash_id, "too_few_votes", f"{len(votes)} < {min_votes}")
        return None
    if top / len(votes) < min_agreement:
        report.skip(hash_id, "low_agreement", f"{label} {top}/{len(votes)} < {min_agreement}")
        return None
    return label


def read_dusha(data_folder, parts, min_agreement, min_votes, report):
    """Read Dusha's vote files into one :class:`Utterance` per ``hash_id``."""
    utterances = []
    for part, half, label_file in find_subsets(data_folder, parts, report):
        rows = read_table(label_file, required=FIELDS)
        votes, first = {}, {}
        for row in rows:
            hash_id = clean(row.get("hash_id"))
            if hash_id is None:
                report.drop_rows("no_hash_id")
                continue
            first.setdefault(hash_id, row)
            votes.setdefault(hash_id, [])
            if clean(row.get("golden_emo")) is not None:
                report.drop_rows("control_row")
            elif clean(row.get("annotator_emo")) is None:
                report.drop_rows("empty_vote")
            else:
                votes[hash_id].append(row["annotator_emo"].strip().lower())
            if not clean(first[hash_id].get("speaker_text")) and clean(row.get("speaker_text")):
                first[hash_id] = row
        for hash_id, row in first.items():
            label = aggregate_votes(hash_id, votes[hash_id], min_agreement, min_votes, report)
            if label is None:
                continue
            ok, emo = map_label(hash_id, label, EMOTION_MAP, DROPPED, report)
            if not ok:
                continue
            audio = label_file.parent / row["audio_path"].strip()
            if not audio.exists() and (pathlib.Path(data_folder) / row["audio_path"].strip()).exists():
                audio = pathlib.Path(data_folder) / row["audio_path"].strip()
            utterances.append(
                Utterance(
                    utt_id=hash_id,
                    wav=str(audio),
                    split="test" if half == "test" else None,
                    emo=emo,
                    spk=clean(row.get("source_id")),
                    lang="ru",
                    text=clean(row.get("speaker_text")),
                    extra={"subset": part},
                )
            )
    return utterances


def prepare_dusha(
    data_folder,
    save_folder,
    textgrid_folder=None,
    phone_set="russian_mfa",
    parts=PARTS,
    min_agreement=0.5,
    min_votes=1,
    split_ratio=None,
    seed=DEFAULT_SEED,
    drop_vowelless=False,
    check_audio="full",
    min_duration=0.0,
    skip_prep=False,
    force=False,
    progress=True,
):
    """Prepare Dusha into ``train/valid/test.json`` and ``prep_report.json``.

    Arguments
    ---------
    data_folder : str or Path
        The folder holding ``crowd_train/``, ``crowd_test/``, ``podcast_train/``, ``podcast_test/``.
    save_folder : str or Path
        Where the manifests and the report go.
    textgrid_folder : str or Path, optional
        TextGrids named ``<hash_id>.TextGrid``.
    phone_set : str
        Phone set of the TextGrids (default ``russian_mfa``).
    parts : tuple
        Which parts to read: ``crowd``, ``podcast`` or both.
    min_agreement : float
        Least share of votes the plurality label needs (default 0.5).
    min_votes : int
        Least number of (non-control) votes an utterance needs.
    split_ratio : dict, optional
        Speaker shares of the train/valid cut of ``*_train`` (default 0.9/0.1).
    seed : int
        Seed of that cut.
    drop_vowelless, check_audio, min_duration, skip_prep, force, progress
        As in :func:`generic.prepare_generic`.

    Returns
    -------
    dict or None
        The report.
    """
    if skip_prep:
        return None
    parts = tuple(parts)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise PrepareError(f"unknown Dusha part(s) {sorted(unknown)}; use {PARTS}")
    options = dict(corpus="dusha", parts=parts, min_agreement=min_agreement, min_votes=min_votes)
    options.update(split_ratio=split_ratio, seed=seed)
    prep = Preparation(
        "dusha",
        data_folder,
        save_folder,
        options,
        textgrid_folder=textgrid_folder,
        phone_set=phone_set,
        drop_vowelless=drop_vowelless,
        check_audio=check_audio,
        min_duration=min_duration,
        progress=progress,
    )
    read = functools.partial(read_dusha, prep.data_folder, parts, min_agreement, min_votes)
    return prep.prepare(read, ratios=split_ratio or DUSHA_RATIOS, seed=seed, force=force)
