"""Any corpus in the generic layout: ``metadata.csv`` plus audio, optionally TextGrids.

Layout (the one of ``../shared/data/*``)::

    <data_folder>/metadata.csv     utt_id,path,emotion,speaker,gender,language,text,duration[,split]
    <data_folder>/wavs/<utt_id>.flac   (any path relative to data_folder, or absolute)
    <textgrid_folder>/<utt_id>.TextGrid (optional, flat or in speaker folders)

Required columns: ``utt_id``, ``path``, ``emotion``, ``speaker``.  Optional:
``gender``, ``language``, ``text``, ``duration`` (ignored: the duration is read
from the audio), ``split`` (``train``/``valid``/``test``; ``dev``,
``development``, ``validation`` mean ``valid``; other names such as ``test2``
become their own manifest), ``arousal``/``valence`` (1–7 means or
``low``/``mid``/``high``).  Without a ``split`` column the corpus gets the
seeded speaker-independent split of :func:`common.speaker_split`.

Emotions are mapped with :data:`common.EMOTION_SYNONYMS` (``neutral``→``neu``,
``anger``→``ang``, ``joy``→``hap``, ...); an empty emotion is kept as null
(unlabelled target data), any other value is skipped as ``unknown_emotion``.
Pass ``emotion_map`` to change that.

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> soundfile.write(root / "u1.wav", 0.1 * numpy.ones(8000), 16000)
>>> _ = (root / "metadata.csv").write_text("utt_id,path,emotion,speaker,split\\nu1,u1.wav,anger,s1,train\\n")
>>> report = prepare_generic(root, root / "out", progress=False)
>>> report["kept_by_split"]["train"], report["flagged"]["no_vowels"]
(1, 1)
"""

import functools

from speechbrain_phonanchor.prepare.common import (
    DEFAULT_RATIOS,
    DEFAULT_SEED,
    EMOTION_SYNONYMS,
    Preparation,
    Utterance,
    clean,
    map_label,
    map_level,
    normalize_gender,
    normalize_split,
    read_table,
)

REQUIRED_COLUMNS = ("utt_id", "path", "emotion", "speaker")


def prepare_generic(
    data_folder,
    save_folder,
    textgrid_folder=None,
    phone_set="espeak",
    metadata="metadata.csv",
    emotion_map=None,
    language=None,
    split_ratio=None,
    seed=DEFAULT_SEED,
    drop_vowelless=False,
    check_audio="full",
    min_duration=0.0,
    skip_prep=False,
    force=False,
    progress=True,
):
    """Prepare a generic-layout corpus into ``train/valid/test.json`` and ``prep_report.json``.

    Arguments
    ---------
    data_folder : str or Path
        The corpus folder holding ``metadata``.
    save_folder : str or Path
        Where the manifests and the report go.
    textgrid_folder : str or Path, optional
        TextGrids named ``<utt_id>.TextGrid`` (e.g. from ``phonanchor-align`` or MFA).
    phone_set : str
        Phone set of the TextGrids (default ``espeak``, the built-in aligner's).
    metadata : str
        Label file name inside ``data_folder`` (CSV, TSV or JSONL).
    emotion_map : dict, optional
        Emotion value → manifest code; default :data:`common.EMOTION_SYNONYMS`.
    language : str, optional
        Language code for rows without a ``language`` value.
    split_ratio : dict, optional
        Split → share of speakers when there is no ``split`` column.
    seed : int
        Seed of that split.
    drop_vowelless : bool
        Skip utterances without vowels (default: keep and count them).
    check_audio : {"full", "header"}
        ``full`` reads all audio (finds truncated and silent files).
    min_duration : float
        Audio shorter than this (s) is skipped.
    skip_prep : bool
        Do nothing (SpeechBrain recipes' ``skip_prep``); returns None.
    force : bool
        Prepare again even when the outputs exist.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict or None
        The report (see :class:`common.PrepReport`).
    """
    if skip_prep:
        return None
    options = dict(
        corpus="generic",
        metadata=metadata,
        emotion_map=emotion_map,
        language=language,
        split_ratio=split_ratio,
        seed=seed,
    )
    prep = Preparation(
        "generic",
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
    read = functools.partial(read_metadata, prep.data_folder / metadata, emotion_map or EMOTION_SYNONYMS, language)
    return prep.prepare(read, ratios=split_ratio or DEFAULT_RATIOS, seed=seed, force=force)


def read_metadata(label_file, emotion_map, language, report):
    """Read a generic ``metadata.csv`` into :class:`Utterance` records, counting refused rows in ``report``."""
    rows = read_table(label_file, required=REQUIRED_COLUMNS)
    has_split = any("split" in row for row in rows)
    utterances = []
    for line_no, row in enumerate(rows, 2):
        utt_id = clean(row.get("utt_id"))
        if utt_id is None or clean(row.get("path")) is None:
            report.skip(f"{label_file.name}:{line_no}", "missing_id_or_path", f"{label_file} line {line_no}")
            continue
        ok, emo = map_label(utt_id, row.get("emotion"), emotion_map, (), report)
        if not ok:
            continue
        split = None
        if has_split:
            split = normalize_split(row.get("split"))
            if split is None:
                report.skip(utt_id, "missing_split", repr(row.get("split")))
                continue
        utterances.append(
            Utterance(
                utt_id=utt_id,
                wav=row["path"].strip(),
                split=split,
                emo=emo,
                aro=map_level(utt_id, row.get("arousal"), report, "arousal"),
                val=map_level(utt_id, row.get("valence"), report, "valence"),
                spk=clean(row.get("speaker")),
                gender=normalize_gender(row.get("gender")),
                lang=clean(row.get("language")) or language,
                text=clean(row.get("text")),
            )
        )
    return utterances
