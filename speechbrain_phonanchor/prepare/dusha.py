"""Dusha (Russian): crowd-sourced votes aggregated into one label per utterance.

Layout::

    <data_folder>/{crowd,podcast}_{train,test}/raw_<name>.tsv   (or raw_<name>.jsonl)
    <data_folder>/{crowd,podcast}_{train,test}/wavs/<hash>.wav  (``audio_path`` is relative
                                                                 to the subset folder)
    <data_folder>/processed_dataset_090/aggregated_dataset/{crowd,podcast}_{train,test}.jsonl|tsv
                                                                (optional: the authors' labels)

The subset folders may also sit one level down (``crowd/crowd_train/...``).
When a subset has both a ``.tsv`` and a ``.jsonl`` file, the ``.tsv`` is read
and the report notes it.  Fields: ``hash_id, audio_path, duration,
annotator_emo, golden_emo, speaker_text, speaker_emo, source_id,
annotator_id``, one row per annotator vote.

Where the labels come from (``options["label_source"]`` in ``prep_report.json``):

``processed``
    The authors' processed output (``processing.py`` of the ``golos``
    repository, ``dusha/data_processing``) is taken as it is, not aggregated
    again: ``labels_folder`` when given (the ``aggregated_dataset`` folder or
    the ``processed_dataset_0XX`` folder above it), otherwise
    ``<data_folder>/processed_dataset_0XX/aggregated_dataset`` when it exists
    for the requested ``threshold`` (their folder name, ``0`` followed by
    ``int(threshold * 100)``: ``processed_dataset_090`` for 0.9).  Rows whose
    ``golden_emo`` is set are skipped as ``golden``, ``other`` as
    ``dropped_emotion_other``; utterances of a raw vote file that the processed
    file leaves out (the authors' posterior was below their threshold) are
    skipped as ``not_in_processed_labels``.
``dawid_skene`` (default, ``aggregation="dawid_skene"``)
    The authors' rule, recomputed with crowd-kit's ``DawidSkene`` (100 EM
    iterations, crowd-kit's default tolerance, as their script): the votes of
    every subset present (crowd and podcast, train and test, whatever
    ``parts`` asks for) are pooled, with task = ``hash_id``, worker =
    ``annotator_id``, label = ``annotator_emo``.  Control rows (non-empty
    ``golden_emo``) are votes like any other, as in their script.  Rows without
    a vote are counted in ``rows_dropped["empty_vote"]``, rows without an
    annotator in ``rows_dropped["no_annotator_id"]`` (their script would pass
    them to crowd-kit, which cannot use them).  Per utterance, in this order:
    no vote left → ``no_votes``; most probable label's posterior below
    ``threshold`` (default 0.9, kept when ``>=``, as theirs) →
    ``below_threshold``; the utterance's *first row* in its subset file
    carries a ``golden_emo`` → ``golden`` (the issue's and their script's
    rule, read literally: only the first row of the ``hash_id`` is looked at);
    ``other`` → ``dropped_emotion_other``.  Without any ``annotator_id`` the
    preparation falls back to ``plurality`` and the report's notes say why.
``plurality`` (``aggregation="plurality"``)
    This package's earlier rule, per ``hash_id`` and per subset:

    1. Control rows (non-empty ``golden_emo``: the honeypot tasks used to
       check annotators) are dropped and counted in
       ``rows_dropped["control_row"]``; rows without a vote in
       ``rows_dropped["empty_vote"]``.  An utterance left with no vote is
       skipped as ``control_only``.
    2. The label is the plurality vote.  It is accepted when it is the unique
       maximum (else ``tied_votes``), has at least ``min_votes`` votes in all
       (else ``too_few_votes``) and its share of the votes is at least
       ``min_agreement`` (default 0.5, i.e. at least half of the annotators
       agree; else ``low_agreement``).

In every case angry/sad/neutral/positive → ang/sad/neu/hap; ``other`` is
dropped (``dropped_emotion_other``), anything else is ``unknown_emotion``.

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
>>> report["kept_by_split"]["test"], report["options"]["label_source"]
(1, 'dawid_skene')
"""

import dataclasses
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
PROCESSED_FIELDS = ("hash_id", "emotion")
EMOTION_MAP = {"angry": "ang", "sad": "sad", "neutral": "neu", "positive": "hap"}
DROPPED = ("other",)
DUSHA_RATIOS = {"train": 0.9, "valid": 0.1}
PARTS = ("crowd", "podcast")
HALVES = ("train", "test")
AGGREGATIONS = ("dawid_skene", "plurality")
DS_ITERATIONS = 100  # the authors' n_iter
DEFAULT_THRESHOLD = 0.9  # the authors' default


@dataclasses.dataclass
class DushaTask:
    """One utterance of a raw subset file: where it comes from, its metadata row and its votes.

    ``row`` is the first row of the ``hash_id`` (or the first one with a
    transcript); ``golden_first`` says whether the very first row carries a
    ``golden_emo``; ``votes`` holds ``(annotator_id, label, is_control)`` per
    row, with None for an empty annotator id or label.
    """

    hash_id: str
    part: str
    half: str
    label_file: pathlib.Path
    row: dict
    golden_first: bool
    votes: list = dataclasses.field(default_factory=list)


def subset_folder(data_folder, part, half):
    """The folder of subset ``<part>_<half>`` (flat or under ``<part>/``), or None.

    >>> subset_folder("/nowhere", "crowd", "train") is None
    True
    """
    name = f"{part}_{half}"
    data_folder = pathlib.Path(data_folder)
    return next((f for f in (data_folder / name, data_folder / part / name) if f.is_dir()), None)


def pick_label_file(folder, stem, report):
    """``<folder>/<stem>.tsv`` or ``.jsonl`` (the ``.tsv`` when both exist, noted), or None.

    ``stem`` may be a glob (``raw_*``); several matching files are an error.
    """
    files = sorted(folder.glob(f"{stem}.tsv")) or sorted(folder.glob(f"{stem}.jsonl"))
    if len(files) > 1:
        raise PrepareError(f"{folder}: several label files ({', '.join(f.name for f in files)}); keep one")
    if files and files[0].suffix == ".tsv" and list(folder.glob(f"{stem}.jsonl")):
        report.note(f"{folder}: read {files[0].name}, ignored the .jsonl copy")
    return files[0] if files else None


def find_subsets(data_folder, parts, report):
    """Return ``(part, "train"|"test", label file)`` for every ``<part>_{train,test}`` folder found."""
    found = []
    for part in parts:
        for half in HALVES:
            folder = subset_folder(data_folder, part, half)
            if folder is None:
                continue
            label_file = pick_label_file(folder, "raw_*", report)
            if label_file is None:
                raise PrepareError(f"{folder}: no raw_*.tsv or raw_*.jsonl label file")
            found.append((part, half, label_file))
    if not found:
        expected = ", ".join(f"{p}_{h}" for p in parts for h in HALVES)
        raise PrepareError(f"no Dusha subset folders in {data_folder}: expected some of {expected}")
    return found


def read_tasks(label_file, part, half, report):
    """Group the vote rows of one raw subset file into :class:`DushaTask` records, in file order.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "raw_crowd_test.jsonl"
    >>> rows = ['{"hash_id": "h", "audio_path": "wavs/h.wav", "annotator_emo": "sad", "golden_emo": "sad",'
    ...         ' "source_id": "s", "annotator_id": "a"}',
    ...         '{"hash_id": "h", "audio_path": "wavs/h.wav", "annotator_emo": "angry", "golden_emo": null,'
    ...         ' "source_id": "s", "annotator_id": null}']
    >>> _ = path.write_text("\\n".join(rows))
    >>> task, = read_tasks(path, "crowd", "test", None)
    >>> task.golden_first, task.votes
    (True, [('a', 'sad', True), (None, 'angry', False)])
    """
    tasks = {}
    for row in read_table(label_file, required=FIELDS):
        hash_id = clean(row.get("hash_id"))
        if hash_id is None:
            report.drop_rows("no_hash_id")
            continue
        golden = clean(row.get("golden_emo")) is not None
        task = tasks.setdefault(hash_id, DushaTask(hash_id, part, half, label_file, row, golden_first=golden))
        vote = clean(row.get("annotator_emo"))
        task.votes.append((clean(row.get("annotator_id")), vote and vote.lower(), golden))
        if not clean(task.row.get("speaker_text")) and clean(row.get("speaker_text")):
            task.row = row
    return list(tasks.values())


def aggregate_votes(hash_id, votes, min_agreement, min_votes, report):
    """Return the plurality label of ``votes`` (a list of labels), or None after counting a skip.

    >>> from speechbrain_phonanchor.prepare.common import PrepReport
    >>> aggregate_votes("h", ["sad", "sad", "angry"], 0.5, 1, PrepReport("dusha", "."))
    'sad'
    """
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


def plurality_label(task, min_agreement, min_votes, report):
    """The plurality label of one task without its control rows (counted), or None after a skip."""
    labels = []
    for _, label, control in task.votes:
        if control:
            report.drop_rows("control_row")
        elif label is None:
            report.drop_rows("empty_vote")
        else:
            labels.append(label)
    return aggregate_votes(task.hash_id, labels, min_agreement, min_votes, report)


def dawid_skene_posteriors(tasks, report):
    """Fit crowd-kit's Dawid–Skene on the votes of ``tasks``; return ``hash_id → (label, posterior)``.

    Rows without a vote or without an annotator id are counted
    (``rows_dropped``) and left out; every other row, control rows included,
    is one ``(task, worker, label)`` observation.  The label is the most
    probable one of ``DawidSkene(n_iter=100).fit(...).probas_``.

    Example
    -------
    >>> from speechbrain_phonanchor.prepare.common import PrepReport
    >>> tasks = [DushaTask(f"t{i}", "crowd", "test", None, {}, False,
    ...                    [("a", t, False), ("b", t, False), ("c", "neutral", False)])
    ...          for i, t in enumerate(["sad", "angry"] * 3)]
    >>> tasks.append(DushaTask("x", "crowd", "test", None, {}, False,
    ...                        [("a", "sad", False), ("c", "neutral", False), ("d", "neutral", False)]))
    >>> label, posterior = dawid_skene_posteriors(tasks, PrepReport("dusha", "."))["x"]
    >>> label, round(posterior, 2)  # c answers neutral to everything: its vote weighs nothing
    ('sad', 0.85)
    """
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    observations = []
    for task in tasks:
        for worker, label, _ in task.votes:
            if label is None:
                report.drop_rows("empty_vote")
            elif worker is None:
                report.drop_rows("no_annotator_id")
            else:
                observations.append((task.hash_id, worker, label))
    if not observations:
        return {}
    frame = pd.DataFrame(observations, columns=["task", "worker", "label"])
    probas = DawidSkene(n_iter=DS_ITERATIONS).fit(frame).probas_
    labels, posteriors = probas.idxmax(axis=1), probas.max(axis=1)
    return {str(task): (str(labels[task]), float(posteriors[task])) for task in probas.index}


def dawid_skene_label(task, posteriors, threshold, report):
    """The Dawid–Skene label of one task if it passes ``threshold`` and is no golden task, else None (counted)."""
    if task.hash_id not in posteriors:
        report.skip(task.hash_id, "no_votes", "no row with both a vote and an annotator id")
        return None
    label, posterior = posteriors[task.hash_id]
    if posterior < threshold:
        report.skip(task.hash_id, "below_threshold", f"{label} {posterior:.3f} < {threshold}")
        return None
    if task.golden_first:
        report.skip(task.hash_id, "golden", "the first row carries a golden_emo")
        return None
    return label


def resolve_audio(*candidates):
    """The first existing path of ``candidates``, else the first one (its absence is reported later)."""
    return next((path for path in candidates if path.exists()), candidates[0])


def dusha_utterance(hash_id, label, half, part, row, wav):
    """The :class:`Utterance` of one labelled Dusha row (``label`` already mapped to ang/sad/neu/hap)."""
    return Utterance(
        utt_id=hash_id,
        wav=str(wav),
        split="test" if half == "test" else None,
        emo=label,
        spk=clean(row.get("source_id")),
        lang="ru",
        text=clean(row.get("speaker_text")),
        extra={"subset": part},
    )


def has_annotator_ids(tasks):
    """True when at least one vote row names its annotator."""
    return any(worker is not None for task in tasks for worker, _, _ in task.votes)


def read_dusha(data_folder, parts, aggregation, min_agreement, min_votes, threshold, report):
    """Read Dusha's raw vote files into one :class:`Utterance` per ``hash_id`` of ``parts``.

    With ``aggregation="dawid_skene"`` the votes of every subset present are
    pooled (the rule of the authors' script; the row counts of the report
    cover them all) but only the utterances of ``parts`` are returned.
    """
    pooled = PARTS if aggregation == "dawid_skene" else parts
    subsets = find_subsets(data_folder, pooled, report)
    tasks = [task for part, half, label_file in subsets for task in read_tasks(label_file, part, half, report)]
    if aggregation == "dawid_skene" and not has_annotator_ids(tasks):
        report.note(
            "label_source dawid_skene fell back to plurality: no annotator_id in "
            f"{', '.join(str(f) for _, _, f in subsets)}; Dawid-Skene needs to know which annotator cast each vote"
        )
        aggregation = "plurality"
    if aggregation == "dawid_skene":
        posteriors = dawid_skene_posteriors(tasks, report)
        decide = functools.partial(dawid_skene_label, posteriors=posteriors, threshold=threshold, report=report)
    else:
        decide = functools.partial(plurality_label, min_agreement=min_agreement, min_votes=min_votes, report=report)
    utterances = []
    for task in tasks:
        if task.part not in parts:  # pooled for Dawid-Skene only
            continue
        label = decide(task)
        if label is None:
            continue
        ok, emo = map_label(task.hash_id, label, EMOTION_MAP, DROPPED, report)
        if not ok:
            continue
        audio_path = task.row["audio_path"].strip()
        wav = resolve_audio(task.label_file.parent / audio_path, pathlib.Path(data_folder) / audio_path)
        utterances.append(dusha_utterance(task.hash_id, emo, task.half, task.part, task.row, wav))
    return utterances


def processed_folder_name(threshold):
    """The folder the authors' script writes for ``threshold`` (their naming, ``int`` and all).

    >>> processed_folder_name(0.9), processed_folder_name(0.8)
    ('processed_dataset_090', 'processed_dataset_080')
    """
    return f"processed_dataset_0{int(threshold * 100)}"


def find_processed_labels(data_folder, labels_folder, threshold):
    """The folder of the authors' aggregated labels to use, or None; and the other processed folders seen.

    ``labels_folder`` wins (it may be the ``aggregated_dataset`` folder or the
    ``processed_dataset_0XX`` folder above it); otherwise the corpus folder's
    ``processed_dataset_0XX/aggregated_dataset`` for ``threshold``.

    Returns
    -------
    tuple
        ``(folder or None, [processed folders for other thresholds, not used])``.

    Example
    -------
    >>> find_processed_labels("/nowhere", None, 0.9)
    (None, [])
    """
    if labels_folder is not None:
        folder = pathlib.Path(labels_folder)
        folder = folder / "aggregated_dataset" if (folder / "aggregated_dataset").is_dir() else folder
        if not folder.is_dir():
            raise PrepareError(f"labels folder not found: {folder}")
        return folder.resolve(), []
    data_folder = pathlib.Path(data_folder)
    wanted = data_folder / processed_folder_name(threshold) / "aggregated_dataset"
    others = sorted(f.parent for f in data_folder.glob("processed_dataset_0*/aggregated_dataset") if f != wanted)
    return (wanted.resolve() if wanted.is_dir() else None), others


def raw_hash_ids(data_folder, part, half, report):
    """The ``hash_id``s of a raw subset file, in order (empty when the subset has no raw file)."""
    folder = subset_folder(data_folder, part, half)
    label_file = pick_label_file(folder, "raw_*", report) if folder is not None else None
    if label_file is None:
        return []
    rows = read_table(label_file, required=("hash_id",))
    return list(dict.fromkeys(h for h in (clean(row.get("hash_id")) for row in rows) if h is not None))


def processed_utterance(row, hash_id, label_file, part, half, data_folder, report):
    """The :class:`Utterance` of one row of the authors' processed labels, or None after counting a skip.

    Their audio path (``audio_path`` in JSONL, ``wav_path`` in TSV) is
    relative to the labels file, as their script writes it
    (``../../crowd_train/wavs/<hash>.wav``), or else to the corpus folder.

    Example
    -------
    >>> from speechbrain_phonanchor.prepare.common import PrepReport
    >>> row = {"emotion": "positive", "golden_emo": "", "wav_path": "../../crowd_test/wavs/h.wav", "source_id": "s"}
    >>> utt = processed_utterance(row, "h", pathlib.Path("/d/p/agg/crowd_test.tsv"), "crowd", "test",
    ...                           pathlib.Path("/d"), PrepReport("dusha", "/d"))
    >>> utt.emo, utt.wav, utt.split
    ('hap', '/d/p/agg/../../crowd_test/wavs/h.wav', 'test')
    """
    if clean(row.get("golden_emo")) is not None:
        report.skip(hash_id, "golden", f"golden_emo {row['golden_emo']!r} in {label_file.name}")
        return None
    ok, emo = map_label(hash_id, row["emotion"], EMOTION_MAP, DROPPED, report)
    if not ok:
        return None
    audio_path = clean(row.get("audio_path")) or clean(row.get("wav_path"))
    if audio_path is None:
        report.skip(hash_id, "no_audio_path", f"no audio_path/wav_path in {label_file.name}")
        return None
    inside = pathlib.Path(*[p for p in pathlib.PurePath(audio_path).parts if p != ".."])
    wav = resolve_audio(label_file.parent / audio_path, pathlib.Path(data_folder) / inside)
    return dusha_utterance(hash_id, emo, half, part, row, wav)


def read_processed(labels_folder, data_folder, parts, report):
    """Read the authors' ``aggregated_dataset/<part>_<half>.jsonl|tsv`` labels as they are.

    Utterances of a raw vote file that the processed file leaves out are
    counted as ``not_in_processed_labels``.
    """
    utterances, read_any = [], False
    for part in parts:
        for half in HALVES:
            label_file = pick_label_file(labels_folder, f"{part}_{half}", report)
            if label_file is None:
                continue
            read_any, labelled = True, set()
            for row in read_table(label_file, required=PROCESSED_FIELDS):
                hash_id = clean(row.get("hash_id"))
                if hash_id is None:
                    report.drop_rows("no_hash_id")
                    continue
                labelled.add(hash_id)
                utt = processed_utterance(row, hash_id, label_file, part, half, data_folder, report)
                if utt is not None:
                    utterances.append(utt)
            for hash_id in raw_hash_ids(data_folder, part, half, report):
                if hash_id not in labelled:
                    report.skip(hash_id, "not_in_processed_labels", f"absent from {label_file}")
    if not read_any:
        expected = ", ".join(f"{p}_{h}.jsonl|tsv" for p in parts for h in HALVES)
        raise PrepareError(f"{labels_folder}: no processed label file; expected some of {expected}")
    return utterances


def prepare_dusha(
    data_folder,
    save_folder,
    textgrid_folder=None,
    phone_set="russian_mfa",
    parts=PARTS,
    aggregation="dawid_skene",
    threshold=DEFAULT_THRESHOLD,
    labels_folder=None,
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
        Which parts to prepare: ``crowd``, ``podcast`` or both.
    aggregation : {"dawid_skene", "plurality"}
        How the votes become labels (module docstring); ``dawid_skene`` (the
        default) uses the authors' processed labels when they are there.
    threshold : float
        Least Dawid–Skene posterior of a kept label (default 0.9, the authors').
    labels_folder : str or Path, optional
        The authors' processed labels (``aggregated_dataset`` or the
        ``processed_dataset_0XX`` above it), taken as they are.
    min_agreement : float
        ``plurality`` only: least share of votes the plurality label needs (default 0.5).
    min_votes : int
        ``plurality`` only: least number of (non-control) votes an utterance needs.
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
    if aggregation not in AGGREGATIONS:
        raise PrepareError(f"unknown Dusha aggregation {aggregation!r}; use one of {AGGREGATIONS}")
    if not 0.0 <= threshold <= 1.0:
        raise PrepareError(f"threshold must lie in [0, 1], not {threshold}")
    if aggregation == "plurality" and labels_folder is not None:
        raise PrepareError("labels_folder takes the authors' labels as they are; it does not go with plurality")
    processed, others = None, []
    if aggregation == "dawid_skene":
        processed, others = find_processed_labels(data_folder, labels_folder, threshold)
    label_source = "processed" if processed is not None else aggregation
    options = dict(corpus="dusha", parts=parts, label_source=label_source, labels_folder=processed)
    options.update(aggregation=aggregation, threshold=threshold, min_agreement=min_agreement, min_votes=min_votes)
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
    for folder in others:
        prep.report.note(f"{folder} holds labels for another threshold than {threshold}; not used")
    if processed is not None:
        prep.report.note(f"labels taken as they are from the authors' processed output {processed}")
        read = functools.partial(read_processed, processed, prep.data_folder, parts)
    else:
        read = functools.partial(read_dusha, prep.data_folder, parts, aggregation, min_agreement, min_votes, threshold)
    return prep.prepare(read, ratios=split_ratio or DUSHA_RATIOS, seed=seed, force=force)
