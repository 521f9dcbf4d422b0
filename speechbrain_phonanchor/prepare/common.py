"""What every corpus preparation shares: labels, splits, entries, the report.

A corpus module (``msp_podcast``, ``biic_podcast``, ``dusha``, ``generic``)
only reads its own label files into :class:`Utterance` records, counting what
it refuses in a :class:`PrepReport`.  :class:`Preparation` does the rest, the
same way for every corpus:

1. **Skip check** (SpeechBrain's ``skip`` convention): if ``prep_report.json``
   and every manifest it lists exist and were made with the same options, the
   preparation is not redone.  The report is written last, so an interrupted
   run is never mistaken for a finished one.
2. **Duplicate ids**: the first record of an utterance id is kept, every later
   one is skipped as ``duplicate_id``.
3. **Split**: records without an official split get a seeded,
   speaker-independent split (:func:`speaker_split`).
4. **Entries** (:func:`build_entry`): audio checked (missing, unreadable,
   truncated, empty, silent, too short → skipped with that reason; a WAV whose
   header promises more data than the file holds is ``truncated_audio``), duration
   taken from the audio, TextGrid ingested (``phones``, ``vowels``).
5. **Outputs**: one SpeechBrain JSON manifest per split (``train.json``,
   ``valid.json``, ``test.json``, ...), ``prep_report.json`` and
   ``prep_skipped.tsv`` (one line per skipped utterance), all written atomically.

Nothing is dropped silently: every skipped utterance is logged, listed in
``prep_skipped.tsv`` and counted by reason in ``prep_report.json``; kept
utterances that lack something (``no_textgrid``, ``no_vowels``,
``no_transcript``, ...) are counted under ``flagged``.

Vowel-less utterances are **kept** by default (cross-lingual training still
uses them for the emotion loss) and counted as ``no_vowels``;
``drop_vowelless=True`` skips them instead.

Example
-------
>>> level_of_score(2.4), level_of_score(2.5), level_of_score(5.5), level_of_score(5.6)
('low', 'mid', 'mid', 'high')
>>> split = speaker_split({"a": 10, "b": 10, "c": 10, "d": 10}, seed=1)
>>> sorted(split.values())
['test', 'train', 'train', 'valid']
"""

import csv
import dataclasses
import json
import logging
import math
import pathlib
import random
import re
from collections import Counter, defaultdict
from typing import Optional

from tqdm import tqdm

from speechbrain_phonanchor.audio import SILENCE_DBFS, AudioError, audio_info, load_audio
from speechbrain_phonanchor.fileio import atomic_open, atomic_write_json
from speechbrain_phonanchor.manifest import DATA_ROOT, REPORT_NAME, save_manifest
from speechbrain_phonanchor.phonetics import PHONE_SETS
from speechbrain_phonanchor.textgrids import TextGridError, read_alignment

logger = logging.getLogger(__name__)

SKIPPED_NAME = "prep_skipped.tsv"
SPLITS = ("train", "valid", "test")
DEFAULT_RATIOS = {"train": 0.8, "valid": 0.1, "test": 0.1}
DEFAULT_SEED = 1234
EXAMPLES_PER_REASON = 10
EMOTIONS = ("neu", "hap", "ang", "sad")
LEVELS = ("low", "mid", "high")
# Boundaries of the 3 levels on a 1-7 scale (DESIGN.md: 1-2 low, 3-5 mid, 6-7 high).
# A fractional mean is read as the nearest scale point, ties going to the middle:
# mean < 2.5 → low, 2.5 ≤ mean ≤ 5.5 → mid, mean > 5.5 → high.
LOW_BELOW = 2.5
HIGH_ABOVE = 5.5
SCALE = (1.0, 7.0)

# Common spellings of the four task emotions (used by the generic preparation).
EMOTION_SYNONYMS = {
    "neu": "neu", "neutral": "neu", "n": "neu",
    "hap": "hap", "happy": "hap", "happiness": "hap", "joy": "hap", "positive": "hap", "h": "hap",
    "ang": "ang", "angry": "ang", "anger": "ang", "a": "ang",
    "sad": "sad", "sadness": "sad", "s": "sad",
}  # fmt: skip
SPLIT_SYNONYMS = {
    "train": "train", "training": "train",
    "valid": "valid", "validation": "valid", "dev": "valid", "development": "valid", "val": "valid",
    "test": "test", "testing": "test", "eval": "test", "evaluation": "test",
}  # fmt: skip


class PrepareError(ValueError):
    """A corpus that cannot be prepared as asked; the message names the file and what is wrong."""


@dataclasses.dataclass
class Utterance:
    """One utterance as read from a corpus's label files, before its audio is checked.

    ``wav`` is the audio path (absolute or relative to the data folder);
    ``split`` is None where the corpus has no official split; labels a corpus
    lacks are None.  ``extra`` holds corpus-specific manifest keys.
    """

    utt_id: str
    wav: str
    split: Optional[str] = None
    emo: Optional[str] = None
    aro: Optional[str] = None
    val: Optional[str] = None
    spk: Optional[str] = None
    gender: Optional[str] = None
    lang: Optional[str] = None
    text: Optional[str] = None
    extra: dict = dataclasses.field(default_factory=dict)


class PrepReport:
    """Counts of kept, skipped and flagged utterances, with example ids per reason.

    Every :meth:`skip` is logged and remembered, so the report and
    ``prep_skipped.tsv`` account for every input utterance.

    Example
    -------
    >>> report = PrepReport("demo", "/corpus")
    >>> report.skip("u1", "missing_audio", "/corpus/u1.wav")
    >>> report.flag("u2", "no_vowels")
    >>> d = report.to_dict()
    >>> d["skipped"], d["skipped_by_reason"], d["flagged"]
    (1, {'missing_audio': 1}, {'no_vowels': 1})
    """

    def __init__(self, corpus, data_folder, options=None):
        self.corpus = corpus
        self.data_folder = str(data_folder)
        self.options = dict(options or {})
        self.skipped = []  # (utt_id, reason, detail)
        self.flags = defaultdict(list)
        self.rows_dropped = Counter()
        self.kept_by_split = Counter()
        self.notes = []

    def skip(self, utt_id, reason, detail=""):
        """Skip ``utt_id`` for ``reason`` (a short tag); ``detail`` says which file or value."""
        self.skipped.append((str(utt_id), reason, str(detail)))
        logger.info("skip %s: %s%s", utt_id, reason, f" ({detail})" if detail else "")

    def flag(self, utt_id, reason):
        """Count a kept utterance that lacks something (``no_vowels``, ``no_transcript``, ...)."""
        self.flags[reason].append(str(utt_id))

    def drop_rows(self, reason, n=1):
        """Count label-file rows (not utterances) left out, e.g. Dusha's control votes."""
        self.rows_dropped[reason] += n

    def note(self, text):
        """Record a sentence about how the preparation went (split fallback, ...)."""
        logger.warning("%s: %s", self.corpus, text)
        self.notes.append(text)

    def to_dict(self):
        """The report as written to ``prep_report.json``."""
        by_reason = Counter(reason for _, reason, _ in self.skipped)
        examples = defaultdict(list)
        for utt_id, reason, _ in self.skipped:
            if len(examples[reason]) < EXAMPLES_PER_REASON:
                examples[reason].append(utt_id)
        return {
            "corpus": self.corpus,
            "data_folder": self.data_folder,
            "options": self.options,
            "kept": sum(self.kept_by_split.values()),
            "kept_by_split": {s: self.kept_by_split[s] for s in sorted(self.kept_by_split, key=split_order)},
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(by_reason.most_common()),
            "skipped_examples": dict(examples),
            "flagged": {reason: len(ids) for reason, ids in sorted(self.flags.items())},
            "flagged_examples": {reason: ids[:EXAMPLES_PER_REASON] for reason, ids in sorted(self.flags.items())},
            "rows_dropped": dict(self.rows_dropped),
            "notes": list(self.notes),
        }


def summarize(report):
    """A few human-readable lines about a report dict (what the CLI prints).

    Example
    -------
    >>> print(summarize({"corpus": "x", "kept": 3, "kept_by_split": {"train": 3}, "skipped": 1,
    ...                  "skipped_by_reason": {"silent_audio": 1}, "flagged": {}, "rows_dropped": {}}))
    x: kept 3 (train 3), skipped 1
      skipped silent_audio: 1
    """
    splits = ", ".join(f"{name} {n}" for name, n in report["kept_by_split"].items())
    lines = [f"{report['corpus']}: kept {report['kept']} ({splits}), skipped {report['skipped']}"]
    lines += [f"  skipped {reason}: {n}" for reason, n in report["skipped_by_reason"].items()]
    lines += [f"  kept but {reason}: {n}" for reason, n in report["flagged"].items()]
    lines += [f"  rows dropped ({reason}): {n}" for reason, n in report["rows_dropped"].items()]
    lines += [f"  note: {text}" for text in report.get("notes", [])]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- labels


def level_of_score(score, low_below=LOW_BELOW, high_above=HIGH_ABOVE):
    """Map an arousal/valence mean on the 1–7 scale to ``low``/``mid``/``high``.

    Rule: 1–2 low, 3–5 mid, 6–7 high (DESIGN.md).  A fractional mean is read as
    the nearest scale point with ties going to the middle, i.e. ``mean < 2.5`` is
    low, ``mean > 5.5`` is high and everything in ``[2.5, 5.5]`` is mid.  Empty
    values give None; values that are already ``low``/``mid``/``high`` pass
    through.

    Raises
    ------
    ValueError
        For a value that is not a number or lies outside ``[1, 7]``.

    Example
    -------
    >>> level_of_score("6"), level_of_score(None), level_of_score("MID")
    ('high', None, 'mid')
    """
    if score is None or (isinstance(score, str) and not score.strip()):
        return None
    if isinstance(score, str) and score.strip().lower() in LEVELS:
        return score.strip().lower()
    value = float(score)
    if math.isnan(value):
        return None
    if not SCALE[0] <= value <= SCALE[1]:
        raise ValueError(f"{score!r} is outside the {SCALE[0]:g}-{SCALE[1]:g} scale")
    if value < low_below:
        return "low"
    return "high" if value > high_above else "mid"


def normalize_gender(value):
    """``Male``/``m`` → ``M``, ``Female``/``f`` → ``F``, anything else → None.

    >>> normalize_gender("Female"), normalize_gender("Unknown")
    ('F', None)
    """
    value = (value or "").strip().lower()
    if value in ("m", "male", "man"):
        return "M"
    if value in ("f", "female", "woman"):
        return "F"
    return None


def clean(value):
    """Strip a label-file value; empty, ``nan``, ``none``, ``unknown`` → None.

    >>> clean(" 127 "), clean("Unknown"), clean(None)
    ('127', None, None)
    """
    if value is None:
        return None
    value = str(value).strip()
    return None if value.lower() in ("", "nan", "none", "null", "unknown", "n/a") else value


def map_label(utt_id, code, emotion_map, dropped, report):
    """Map an emotion ``code`` through ``emotion_map``; skip dropped and unknown codes.

    Returns ``(ok, emo)``: ``ok`` is False when the utterance was skipped (as
    ``dropped_emotion_<code>`` or ``unknown_emotion``); an empty code gives
    ``(True, None)`` (unlabelled).
    """
    code = clean(code)
    if code is None:
        return True, None
    key = code if code in emotion_map or code in dropped else code.lower()
    if key in emotion_map:
        return True, emotion_map[key]
    if key in dropped:
        report.skip(utt_id, f"dropped_emotion_{key}")
        return False, None
    report.skip(utt_id, "unknown_emotion", repr(code))
    return False, None


def map_level(utt_id, score, report, name):
    """:func:`level_of_score`, flagging (``invalid_<name>``) a bad value as None instead of failing."""
    try:
        return level_of_score(score)
    except ValueError as err:
        report.flag(utt_id, f"invalid_{name}")
        logger.info("%s: %s %s; set to null", utt_id, name, err)
        return None


def split_order(split):
    """Sort key: train, valid, test, then other splits by name."""
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


def normalize_split(value):
    """``Development``/``dev`` → ``valid``, ``Test1`` → ``test1`` ...; a name safe for a file.

    >>> normalize_split("Development"), normalize_split(" Test2 ")
    ('valid', 'test2')
    """
    value = (value or "").strip().lower()
    value = SPLIT_SYNONYMS.get(value, value)
    return value if re.fullmatch(r"[a-z0-9_]+", value) else None


# ----------------------------------------------------------------------------- files


def read_table(path, required=(), delimiter=None):
    """Read a CSV/TSV (by extension, or ``delimiter``) or JSON/JSONL label file into a list of dicts.

    JSON may be a list of objects or an object of key → object (the key is
    stored under ``"__key__"``).  ``required`` columns must all be present,
    otherwise :class:`PrepareError` names the column and the file.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise PrepareError(f"label file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with open(path, encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = [dict(v, __key__=k) for k, v in data.items()] if isinstance(data, dict) else list(data)
        else:
            sep = delimiter or ("\t" if suffix in (".tsv", ".tab") else ",")
            with open(path, encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle, delimiter=sep)
                rows = list(reader)
                header = list(reader.fieldnames or [])
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError, AttributeError, TypeError) as err:
        raise PrepareError(f"{path}: cannot read label file ({err})") from err
    if suffix in (".json", ".jsonl"):
        if not all(isinstance(row, dict) for row in rows):
            raise PrepareError(f"{path}: expected JSON objects, one per utterance")
        header = set().union(*(row.keys() for row in rows)) if rows else set()
    require_columns(header, required, path)
    return rows


def require_columns(columns, required, path):
    """Raise :class:`PrepareError` naming the first of ``required`` missing from ``columns`` of ``path``.

    >>> require_columns(["a"], ["a", "b"], "labels.csv")
    Traceback (most recent call last):
    ...
    speechbrain_phonanchor.prepare.common.PrepareError: labels.csv: required column 'b' is missing (columns: a)
    """
    columns = set(columns) - {"__key__"}
    for column in required:
        if column not in columns:
            raise PrepareError(
                f"{path}: required column {column!r} is missing (columns: {', '.join(sorted(columns)) or 'none'})"
            )


def textgrid_index(folder):
    """Map utterance stem → TextGrid path for every ``*.TextGrid`` under ``folder`` (flat or per speaker).

    Returns an empty dict for ``folder=None``; raises :class:`PrepareError` for a
    folder that does not exist.
    """
    if folder is None:
        return {}
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise PrepareError(f"TextGrid folder not found: {folder}")
    index = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() == ".textgrid" and path.is_file():
            if path.stem in index:
                logger.warning("TextGrid %s also at %s; using the first", path.stem, index[path.stem])
                continue
            index[path.stem] = path
    return index


# ----------------------------------------------------------------------------- splits


def speaker_split(speaker_counts, ratios=None, seed=DEFAULT_SEED):
    """Assign whole speakers to splits: a seeded, speaker-independent split.

    Rule: the speakers are sorted, shuffled with ``random.Random(seed)`` and
    cut by speaker count: every split after the first gets
    ``max(1, round(ratio * n_speakers))`` speakers (when its ratio is > 0), the
    first split (train) gets the rest.  The same speakers and seed always give
    the same split.  Needs at least as many speakers as splits with a ratio > 0.

    Arguments
    ---------
    speaker_counts : iterable
        The speaker ids (a dict speaker → number of utterances works too; the
        cut is by speakers, not by utterances).
    ratios : dict, optional
        Split name → share of speakers, default ``{"train": .8, "valid": .1, "test": .1}``.
    seed : int

    Returns
    -------
    dict
        Speaker → split name.
    """
    ratios = dict(ratios or DEFAULT_RATIOS)
    names = [name for name, ratio in ratios.items() if ratio > 0]
    speakers = sorted(speaker_counts)
    if len(speakers) < len(names):
        raise PrepareError(f"{len(speakers)} speakers cannot fill the {len(names)} splits {names}")
    random.Random(seed).shuffle(speakers)
    assignment, cursor = {}, len(speakers)
    for name in reversed(names[1:]):
        n = max(1, round(ratios[name] * len(speakers)))
        n = min(n, cursor - 1)  # leave at least one speaker for the first split
        for spk in speakers[cursor - n : cursor]:
            assignment[spk] = name
        cursor -= n
    for spk in speakers[:cursor]:
        assignment[spk] = names[0]
    return assignment


def assign_splits(utterances, report, ratios=None, seed=DEFAULT_SEED):
    """Give every utterance without a split one from :func:`speaker_split`.

    An utterance without a speaker counts as its own speaker.  With fewer
    speakers than splits the split falls back to a seeded utterance-level
    split (with fewer utterances than splits, all go to the first split), and
    the report says so.
    """
    todo = [u for u in utterances if u.split is None]
    if not todo:
        return
    speaker_of = {u.utt_id: u.spk if u.spk is not None else f"utt:{u.utt_id}" for u in todo}
    counts = Counter(speaker_of.values())
    ratios = dict(ratios or DEFAULT_RATIOS)
    first = next(name for name, ratio in ratios.items() if ratio > 0)
    try:
        assignment = speaker_split(counts, ratios, seed)
    except PrepareError as err:
        speaker_of = {u.utt_id: u.utt_id for u in todo}
        try:
            assignment = speaker_split({u.utt_id: 1 for u in todo}, ratios, seed)
            report.note(f"{err}; used a seeded utterance-level split instead (not speaker-independent)")
        except PrepareError:
            assignment = {u.utt_id: first for u in todo}
            report.note(f"{err}; all {len(todo)} unsplit utterances went to {first}")
    for u in todo:
        u.split = assignment[speaker_of[u.utt_id]]
    if any(u.spk is None for u in todo):
        report.note("utterances without a speaker id were split as their own speakers")


# ----------------------------------------------------------------------------- entries


def wav_field(path, data_folder):
    """``{data_root}/rel/path`` for audio inside ``data_folder``, the absolute path otherwise."""
    path = pathlib.Path(path).resolve()
    try:
        return f"{DATA_ROOT}/{path.relative_to(pathlib.Path(data_folder).resolve()).as_posix()}"
    except ValueError:
        return str(path)


def build_entry(utt, data_folder, phone_set, textgrid=None, check_audio="full", min_duration=0.0):
    """Build the manifest entry of one :class:`Utterance`.

    Arguments
    ---------
    utt : Utterance
    data_folder : str or Path
        The corpus folder; ``utt.wav`` is relative to it unless absolute.
    phone_set : str
        Phone set of the TextGrid's phones tier.
    textgrid : Path, optional
        The utterance's TextGrid; None gives empty ``phones``/``vowels``.
    check_audio : {"full", "header"}
        ``full`` reads every sample (finds truncated and silent files),
        ``header`` only reads the file header (fast, finds missing/unreadable).
    min_duration : float
        Shorter audio is refused as ``too_short_audio``.

    Returns
    -------
    dict
        The manifest entry.

    Raises
    ------
    AudioError, TextGridError
        With ``.reason`` set; callers count them as skips.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> soundfile.write(root / "a.wav", 0.1 * numpy.ones(1600), 16000)
    >>> entry = build_entry(Utterance("a", "a.wav", emo="neu", lang="en"), root, "arpabet")
    >>> entry["wav"], entry["duration"], entry["vowels"]
    ('{data_root}/a.wav', 0.1, [])
    """
    path = pathlib.Path(utt.wav)
    if not path.is_absolute():
        path = pathlib.Path(data_folder) / path
    if check_audio not in ("full", "header"):
        raise ValueError(f"check_audio must be 'full' or 'header', not {check_audio!r}")
    info = audio_info(path)
    if check_audio == "full":  # reads every sample at the file's own rate (no resampling)
        load_audio(path, sample_rate=info.sample_rate, silence_dbfs=SILENCE_DBFS, min_duration=min_duration)
    elif info.duration < min_duration:
        raise AudioError(path, "too_short_audio", f"{info.duration:.3f} s < {min_duration} s")
    phones, vowels, text = [], [], utt.text
    if textgrid is not None:
        alignment = read_alignment(textgrid, phone_set, audio_duration=info.duration)
        phones, vowels = alignment.phones, alignment.vowels
        if not text and alignment.words:
            text = " ".join(word for word, _, _ in alignment.words)
    entry = {
        "wav": wav_field(path, data_folder),
        "duration": round(info.duration, 3),
        "emo": utt.emo,
        "aro": utt.aro,
        "val": utt.val,
        "spk": utt.spk,
        "gender": utt.gender,
        "lang": utt.lang,
        "text": text,
        "phones": phones,
        "vowels": vowels,
    }
    entry.update(utt.extra)
    return entry


# ----------------------------------------------------------------------------- the driver


def _jsonable(value):
    if isinstance(value, pathlib.Path):
        return str(value.resolve())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


class Preparation:
    """One run of a corpus preparation: skip check, entries, manifests and report.

    Arguments
    ---------
    corpus : str
        Name written to the report.
    data_folder, save_folder : str or Path
    options : dict
        Every option that changes the output (recorded in the report; a run
        with other options is not skipped).
    textgrid_folder : Path, optional
        Where ``<utt_id>.TextGrid`` files are looked up (recursively).
    phone_set : str
        Phone set of those TextGrids.
    drop_vowelless : bool
        Skip kept-able utterances without vowels instead of keeping and counting them.
    check_audio : {"full", "header"}
    min_duration : float
    progress : bool
        Show a tqdm progress bar.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> soundfile.write(root / "a.wav", 0.1 * numpy.ones(1600), 16000)
    >>> prep = Preparation("demo", root, root / "out", {}, progress=False)
    >>> report = prep.run([Utterance("a", "a.wav", split="train")])
    >>> report["kept_by_split"], prep.outputs_exist()
    ({'train': 1, 'valid': 0, 'test': 0}, True)
    """

    def __init__(
        self,
        corpus,
        data_folder,
        save_folder,
        options,
        textgrid_folder=None,
        phone_set="espeak",
        drop_vowelless=False,
        check_audio="full",
        min_duration=0.0,
        progress=True,
    ):
        self.data_folder = pathlib.Path(data_folder).resolve()
        self.save_folder = pathlib.Path(save_folder)
        if not self.data_folder.is_dir():
            raise PrepareError(f"data folder not found: {self.data_folder}")
        if phone_set not in PHONE_SETS:
            raise PrepareError(f"unknown phone set {phone_set!r}; known: {', '.join(sorted(PHONE_SETS))}")
        if check_audio not in ("full", "header"):
            raise PrepareError(f"check_audio must be 'full' or 'header', not {check_audio!r}")
        self.options = _jsonable(
            dict(
                options,
                textgrid_folder=textgrid_folder,
                phone_set=phone_set,
                drop_vowelless=drop_vowelless,
                check_audio=check_audio,
                min_duration=min_duration,
            )
        )
        self.report = PrepReport(corpus, self.data_folder, self.options)
        self.textgrid_folder = textgrid_folder
        self.phone_set = phone_set
        self.drop_vowelless = drop_vowelless
        self.check_audio = check_audio
        self.min_duration = min_duration
        self.progress = progress

    @property
    def report_path(self):
        return self.save_folder / REPORT_NAME

    def existing_report(self):
        """The report of an earlier run with the same options whose outputs all exist, or None."""
        if not self.report_path.is_file():
            return None
        try:
            old = json.loads(self.report_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        if old.get("options") != self.options or old.get("data_folder") != str(self.data_folder):
            logger.info("%s was made with other options; preparing again", self.report_path)
            return None
        if not all((self.save_folder / name).is_file() for name in old.get("manifests", {}).values()):
            return None
        return old

    def outputs_exist(self):
        """SpeechBrain's ``skip``: True when this preparation has already been done."""
        return self.existing_report() is not None

    def prepare(self, read, ratios=None, seed=DEFAULT_SEED, force=False):
        """Return the earlier report if the outputs exist, else ``run(read(self.report), ...)``.

        ``read`` is the corpus module's reader: it gets the report (to count
        what it refuses) and returns :class:`Utterance` records.
        """
        existing = None if force else self.existing_report()
        if existing is not None:
            logger.info("%s already prepared in %s; skipping", self.report.corpus, self.save_folder)
            return existing
        return self.run(read(self.report), ratios=ratios, seed=seed)

    def run(self, utterances, ratios=None, seed=DEFAULT_SEED):
        """Check and write ``utterances``; return the report dict (also in ``prep_report.json``)."""
        unique, seen = [], set()
        for utt in utterances:
            if utt.utt_id in seen:
                self.report.skip(utt.utt_id, "duplicate_id", utt.wav)
                continue
            seen.add(utt.utt_id)
            unique.append(utt)
        assign_splits(unique, self.report, ratios, seed)
        textgrids = textgrid_index(self.textgrid_folder)
        manifests = defaultdict(dict)
        for utt in tqdm(unique, desc=f"prepare {self.report.corpus}", unit="utt", disable=not self.progress):
            entry = self._entry(utt, textgrids)
            if entry is not None:
                manifests[utt.split][utt.utt_id] = entry
                self.report.kept_by_split[utt.split] += 1
        return self._write(manifests)

    def _entry(self, utt, textgrids):
        textgrid = textgrids.get(utt.utt_id)
        try:
            entry = build_entry(utt, self.data_folder, self.phone_set, textgrid, self.check_audio, self.min_duration)
        except AudioError as err:
            self.report.skip(utt.utt_id, err.reason, err.path)
            return None
        except TextGridError as err:
            self.report.skip(utt.utt_id, err.reason, str(err))
            return None
        if textgrid is None:
            self.report.flag(utt.utt_id, "no_textgrid" if self.textgrid_folder is None else "missing_textgrid")
        if not entry["vowels"]:
            if self.drop_vowelless:
                self.report.skip(utt.utt_id, "no_vowels", "drop_vowelless=True")
                return None
            self.report.flag(utt.utt_id, "no_vowels")
        if not entry["text"]:
            self.report.flag(utt.utt_id, "no_transcript")
        if entry["emo"] is None:
            self.report.flag(utt.utt_id, "no_emo_label")
        return entry

    def _write(self, manifests):
        names = {}
        # the standard splits always exist (possibly empty), then the corpus's extra ones
        for split in sorted(set(SPLITS) | set(manifests), key=split_order):
            names[split] = f"{split}.json"
            save_manifest(manifests.get(split, {}), self.save_folder / names[split])
            self.report.kept_by_split[split] += 0
        with atomic_open(self.save_folder / SKIPPED_NAME) as handle:
            handle.write("utt_id\treason\tdetail\n")
            for row in self.report.skipped:
                handle.write("\t".join(field.replace("\t", " ").replace("\n", " ") for field in row) + "\n")
        report = self.report.to_dict()
        report["manifests"] = names
        report["skipped_list"] = SKIPPED_NAME
        atomic_write_json(self.report_path, report)  # last: marks the preparation as done
        if report["skipped"]:
            logger.warning(
                "%s: skipped %d utterances (%s); see %s",
                self.report.corpus,
                report["skipped"],
                ", ".join(f"{r} {n}" for r, n in report["skipped_by_reason"].items()),
                self.save_folder / SKIPPED_NAME,
            )
        return report


def load_report(save_folder):
    """Read ``prep_report.json`` from ``save_folder``."""
    return json.loads((pathlib.Path(save_folder) / REPORT_NAME).read_text(encoding="utf-8"))
