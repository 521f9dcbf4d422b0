"""BIIC-Podcast (Taiwanese Mandarin): the MSP-Podcast reader with Mandarin defaults.

No public format specification of BIIC-Podcast exists, so the default is the
MSP-Podcast layout (``Labels/labels_consensus.csv`` with ``FileName, EmoClass,
EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set``; ``Audios/`` or ``Audio/``;
``Transcripts/``; ``ForceAligned/``), language ``zh`` and MFA's
``mandarin_mfa`` phone set.  Everything that may differ in a release is a
keyword argument (and so a yaml key of a recipe): ``label_file`` (path inside
the data folder), ``columns`` (role → column name, merged into the defaults),
``emotion_map`` (code → neu/hap/ang/sad), ``dropped_codes``, ``split_map``,
``audio_dirs``, ``transcript_dir``, ``aligned_dir``.

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "Audio").mkdir()
>>> soundfile.write(root / "Audio" / "BIIC_0001.wav", 0.1 * numpy.ones(8000), 16000)
>>> _ = (root / "emo.csv").write_text("name,label,aro,val,spk,sex,part\\nBIIC_0001,happy,6,6,7,F,dev\\n")
>>> report = prepare_biic_podcast(root, root / "out", label_file="emo.csv", progress=False,
...     columns={"file": "name", "emotion": "label", "arousal": "aro", "valence": "val",
...              "speaker": "spk", "gender": "sex", "split": "part"},
...     emotion_map={"happy": "hap"}, split_map={"dev": "valid"})
>>> report["kept_by_split"]["valid"]
1
"""

from speechbrain_phonanchor.prepare.msp_podcast import PodcastLayout, make_layout, prepare_podcast_corpus

BIIC_LAYOUT = PodcastLayout(lang="zh")


def prepare_biic_podcast(data_folder, save_folder, textgrid_folder=None, phone_set="mandarin_mfa", **kwargs):
    """Prepare BIIC-Podcast into ``train/valid/test.json`` and ``prep_report.json``.

    Arguments
    ---------
    data_folder : str or Path
        The BIIC-Podcast folder.
    save_folder : str or Path
        Where the manifests and the report go.
    textgrid_folder : str or Path, optional
        TextGrids named ``<utt_id>.TextGrid``; default ``<data_folder>/ForceAligned`` if present.
    phone_set : str
        Phone set of the TextGrids (default ``mandarin_mfa``).
    **kwargs
        Layout overrides (``label_file``, ``columns``, ``emotion_map``,
        ``dropped_codes``, ``split_map``, ``lang``, ...; see
        :class:`msp_podcast.PodcastLayout`) and the options of
        :func:`msp_podcast.prepare_msp_podcast`.

    Returns
    -------
    dict or None
        The report.
    """
    layout, kwargs = make_layout(BIIC_LAYOUT, kwargs)
    return prepare_podcast_corpus(
        "biic_podcast", layout, data_folder, save_folder, textgrid_folder=textgrid_folder, phone_set=phone_set, **kwargs
    )
