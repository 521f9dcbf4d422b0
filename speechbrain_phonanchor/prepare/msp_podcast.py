"""MSP-Podcast (English), and any corpus in its layout (BIIC-Podcast reuses this reader).

Layout, with the variants of the releases that this reader accepts::

    <data_folder>/Labels/labels_consensus.csv   also labels_concensus.csv (older spelling),
                                                .json (object FileName → labels, or a list),
                                                or at the top level
    <data_folder>/Audios/<FileName>             also Audio/
    <data_folder>/Transcripts/<stem>.txt        optional
    <data_folder>/ForceAligned/<stem>.TextGrid  optional; a folder passed as textgrid_folder wins
    <data_folder>/Partitions.txt                older releases without Split_Set:
                                                lines "Train; MSP-PODCAST_0023_0048.wav"

Columns: ``FileName, EmoClass, EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set``
(``Split_Set`` may be missing when ``Partitions.txt`` exists).  File names may
have two or three number groups (``MSP-PODCAST_0001_0008``,
``MSP-PODCAST_1188_0020_0003``); the utterance id is the file name without
extension.

Labels: ``EmoClass`` N/H/A/S → neu/hap/ang/sad; U, F, D, C, O, X are dropped
and counted as ``dropped_emotion_<code>``; other codes are skipped as
``unknown_emotion``.  ``EmoAct``/``EmoVal`` (1–7 means) → ``aro``/``val``
low/mid/high by :func:`common.level_of_score` (mean < 2.5 low, > 5.5 high).

Splits: Train → ``train.json``, Development/Validation → ``valid.json``, Test1 →
``test.json``, Test2 → ``test2.json``; Test3 (labels withheld) →
``test3.json`` with null labels (useful as unlabelled target data), or skipped
as ``unlabelled_split`` with ``include_unlabelled=False``.

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "Audios").mkdir(); (root / "Labels").mkdir()
>>> soundfile.write(root / "Audios" / "MSP-PODCAST_0001_0008.wav", 0.1 * numpy.ones(8000), 16000)
>>> _ = (root / "Labels" / "labels_consensus.csv").write_text(
...     "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\\n"
...     "MSP-PODCAST_0001_0008.wav,N,4.2,2.4,4,127,Female,Train\\n")
>>> report = prepare_msp_podcast(root, root / "out", progress=False)
>>> report["kept_by_split"]
{'train': 1, 'valid': 0, 'test': 0}
"""

import dataclasses
import functools
import pathlib
from typing import Optional

from speechbrain_phonanchor.prepare.common import (
    Preparation,
    PrepareError,
    Utterance,
    clean,
    map_label,
    map_level,
    normalize_gender,
    read_table,
    require_columns,
)

LABEL_NAMES = ("labels_consensus", "labels_concensus")
LABEL_DIRS = ("Labels", ".")


@dataclasses.dataclass
class PodcastLayout:
    """Where an MSP-Podcast-style corpus keeps its files and how its labels are coded.

    ``columns`` maps the roles ``file, emotion, arousal, valence, speaker,
    gender, split`` to the label file's column names; ``split_map`` maps
    lower-cased split values to manifest names.
    """

    lang: str = "en"
    label_file: Optional[str] = None  # None: look for labels_consensus/concensus .csv/.json
    columns: dict = dataclasses.field(
        default_factory=lambda: {
            "file": "FileName",
            "emotion": "EmoClass",
            "arousal": "EmoAct",
            "valence": "EmoVal",
            "speaker": "SpkrID",
            "gender": "Gender",
            "split": "Split_Set",
        }
    )
    emotion_map: dict = dataclasses.field(default_factory=lambda: {"N": "neu", "H": "hap", "A": "ang", "S": "sad"})
    dropped_codes: tuple = ("U", "F", "D", "C", "O", "X")
    split_map: dict = dataclasses.field(
        default_factory=lambda: {
            "train": "train",
            "development": "valid",
            "validation": "valid",
            "test1": "test",
            "test2": "test2",
            "test3": "test3",
        }
    )
    unlabelled_splits: tuple = ("test3",)
    audio_dirs: tuple = ("Audios", "Audio")
    transcript_dir: str = "Transcripts"
    aligned_dir: str = "ForceAligned"
    partition_files: tuple = ("Partitions.txt", "Labels/Partitions.txt", "Partitions/Partitions.txt")


def find_label_file(data_folder, layout):
    """Return the label file of ``layout`` in ``data_folder`` (first match of the known spellings)."""
    data_folder = pathlib.Path(data_folder)
    if layout.label_file is not None:
        path = data_folder / layout.label_file
        if not path.is_file():
            raise PrepareError(f"label file not found: {path}")
        return path
    for folder in LABEL_DIRS:
        for name in LABEL_NAMES:
            for ext in (".csv", ".json"):
                if (data_folder / folder / f"{name}{ext}").is_file():
                    return data_folder / folder / f"{name}{ext}"
    raise PrepareError(
        f"no label file in {data_folder}: looked for Labels/labels_consensus.csv "
        f"(also labels_concensus, .json, or at the top level); pass label_file= to name it"
    )


def find_audio_dir(data_folder, layout):
    """Return the first of ``layout.audio_dirs`` that exists in ``data_folder``."""
    for name in layout.audio_dirs:
        if (pathlib.Path(data_folder) / name).is_dir():
            return pathlib.Path(data_folder) / name
    raise PrepareError(f"no audio folder in {data_folder}: looked for {', '.join(layout.audio_dirs)}")


def read_partitions(data_folder, layout):
    """Read an older release's ``Partitions.txt`` (``Train; MSP-PODCAST_0023_0048.wav``) → stem → split value.

    Returns None when there is no such file.
    """
    for name in layout.partition_files:
        path = pathlib.Path(data_folder) / name
        if path.is_file():
            partitions = {}
            for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                split, sep, file_name = line.partition(";")
                if not sep:
                    raise PrepareError(f"{path}:{line_no}: expected 'Split; FileName', got {line!r}")
                partitions[pathlib.Path(file_name.strip()).stem] = split.strip()
            return partitions
    return None


def read_podcast_labels(data_folder, layout, include_unlabelled, report):
    """Read the label file of an MSP-Podcast-style corpus into :class:`Utterance` records."""
    data_folder = pathlib.Path(data_folder)
    label_file = find_label_file(data_folder, layout)
    audio_dir = find_audio_dir(data_folder, layout)
    cols = layout.columns
    rows = read_table(label_file)
    partitions = None
    required = ["file", "emotion", "arousal", "valence", "speaker", "gender", "split"]
    if rows and all("__key__" in row for row in rows):
        required.remove("file")  # JSON object keyed by file name
    if not any(cols["split"] in row for row in rows):
        partitions = read_partitions(data_folder, layout)
        if partitions is not None:
            required.remove("split")
    header = set().union(*(row.keys() for row in rows)) if rows else set()
    require_columns(header, [cols[role] for role in required], label_file)
    split_map = {key.lower(): value for key, value in layout.split_map.items()}
    transcripts = data_folder / layout.transcript_dir
    utterances = []
    for row in rows:
        file_name = clean(row.get(cols["file"])) or clean(row.get("__key__"))
        if file_name is None:
            report.skip(f"{label_file.name}:row", "missing_file_name", str(label_file))
            continue
        if not pathlib.Path(file_name).suffix:
            file_name += ".wav"
        utt_id = pathlib.Path(file_name).stem
        raw_split = partitions.get(utt_id) if partitions is not None else clean(row.get(cols["split"]))
        split = split_map.get((raw_split or "").strip().lower())
        if split is None:
            report.skip(utt_id, "unknown_split" if raw_split else "no_split", repr(raw_split))
            continue
        emo = aro = val = None
        if split in layout.unlabelled_splits:
            if not include_unlabelled:
                report.skip(utt_id, "unlabelled_split", raw_split)
                continue
        else:
            ok, emo = map_label(utt_id, row.get(cols["emotion"]), layout.emotion_map, layout.dropped_codes, report)
            if not ok:
                continue
            aro = map_level(utt_id, row.get(cols["arousal"]), report, "arousal")
            val = map_level(utt_id, row.get(cols["valence"]), report, "valence")
        transcript = transcripts / f"{utt_id}.txt"
        text = clean(transcript.read_text(encoding="utf-8")) if transcript.is_file() else None
        utterances.append(
            Utterance(
                utt_id=utt_id,
                wav=str(audio_dir / file_name),
                split=split,
                emo=emo,
                aro=aro,
                val=val,
                spk=clean(row.get(cols["speaker"])),
                gender=normalize_gender(str(row.get(cols["gender"], ""))),
                lang=layout.lang,
                text=text,
            )
        )
    return utterances


def prepare_podcast_corpus(
    corpus,
    layout,
    data_folder,
    save_folder,
    textgrid_folder=None,
    phone_set="arpabet",
    include_unlabelled=True,
    drop_vowelless=False,
    check_audio="full",
    min_duration=0.0,
    skip_prep=False,
    force=False,
    progress=True,
):
    """Prepare any corpus in the MSP-Podcast layout described by ``layout`` (see the module doc).

    The TextGrids are ``textgrid_folder`` if given, else ``<data_folder>/<layout.aligned_dir>``
    when it exists, else none.  The other arguments are those of :func:`prepare_msp_podcast`.
    """
    if skip_prep:
        return None
    data_folder = pathlib.Path(data_folder)
    if textgrid_folder is None and (data_folder / layout.aligned_dir).is_dir():
        textgrid_folder = data_folder / layout.aligned_dir
    options = dict(corpus=corpus, layout=dataclasses.asdict(layout), include_unlabelled=include_unlabelled)
    prep = Preparation(
        corpus,
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
    read = functools.partial(read_podcast_labels, prep.data_folder, layout, include_unlabelled)
    return prep.prepare(read, force=force)


def prepare_msp_podcast(data_folder, save_folder, textgrid_folder=None, phone_set="arpabet", **kwargs):
    """Prepare MSP-Podcast into ``train/valid/test/test2[/test3].json`` and ``prep_report.json``.

    Arguments
    ---------
    data_folder : str or Path
        The MSP-Podcast release folder (``Labels/``, ``Audios/``, ...).
    save_folder : str or Path
        Where the manifests and the report go.
    textgrid_folder : str or Path, optional
        TextGrids named ``<utt_id>.TextGrid``; default ``<data_folder>/ForceAligned`` if present.
    phone_set : str
        Phone set of the TextGrids (``arpabet``: MSP-Podcast's ForceAligned and MFA english_us_arpa).
    **kwargs
        ``include_unlabelled`` (keep Test3 with null labels, default True),
        ``drop_vowelless``, ``check_audio``, ``min_duration``, ``skip_prep``,
        ``force``, ``progress`` (see :func:`generic.prepare_generic`), and any
        field of :class:`PodcastLayout` (``label_file``, ``columns``,
        ``emotion_map``, ``dropped_codes``, ``split_map``, ...).

    Returns
    -------
    dict or None
        The report.
    """
    layout, kwargs = make_layout(PodcastLayout(), kwargs)
    return prepare_podcast_corpus(
        "msp_podcast", layout, data_folder, save_folder, textgrid_folder=textgrid_folder, phone_set=phone_set, **kwargs
    )


def make_layout(base, kwargs):
    """Split ``kwargs`` into :class:`PodcastLayout` overrides (applied to ``base``) and the rest.

    ``columns`` overrides are merged into the base columns, so naming one column is enough.

    >>> layout, rest = make_layout(PodcastLayout(), {"columns": {"split": "Partition"}, "force": True})
    >>> layout.columns["split"], layout.columns["file"], rest
    ('Partition', 'FileName', {'force': True})
    """
    fields = {f.name for f in dataclasses.fields(PodcastLayout)}
    overrides = {key: value for key, value in kwargs.items() if key in fields and value is not None}
    if "columns" in overrides:
        overrides["columns"] = {**base.columns, **overrides["columns"]}
    for key in ("dropped_codes", "unlabelled_splits", "audio_dirs", "partition_files"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    rest = {key: value for key, value in kwargs.items() if key not in fields}
    return dataclasses.replace(base, **overrides), rest
