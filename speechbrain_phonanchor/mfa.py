"""Run the Montreal Forced Aligner (MFA) on prepared manifests and ingest its TextGrids.

MFA installs from PyPI (``pip install speechbrain-phonanchor[mfa]``) but runs only
with Kaldi, which comes from conda-forge::

    conda install -c conda-forge montreal-forced-aligner
    mfa model download dictionary english_us_arpa
    mfa model download acoustic english_us_arpa

Without MFA, the built-in aligner ``phonanchor-align`` writes the same kind of
TextGrids.

The runner:

1. writes MFA's corpus layout from one or more manifests: one folder per
   speaker holding ``<utt_id>.wav`` (16 kHz mono PCM) and ``<utt_id>.lab`` (the
   transcript) — :func:`write_mfa_corpus`;
2. runs ``mfa align CORPUS DICTIONARY ACOUSTIC_MODEL OUTPUT`` with the
   dictionary and acoustic model of an :class:`MFAConfig` — :func:`mfa_align_command`,
   :func:`run_mfa`;
3. prepares the corpus again with MFA's output as the TextGrid folder, so the
   TextGrids are ingested by the one ingest path every preparation uses
   (duration check, phones, vowels) — :func:`align_corpus`.

Example
-------
>>> cfg = MFAConfig.for_phone_set("arpabet", num_jobs=2)
>>> mfa_align_command("corpus", "aligned", cfg)[:6]
['mfa', 'align', 'corpus', 'english_us_arpa', 'english_us_arpa', 'aligned']
"""

import dataclasses
import logging
import pathlib
import re
import shutil
import subprocess
from collections import Counter
from typing import Optional

import soundfile
import yaml

from speechbrain_phonanchor.audio import SAMPLE_RATE, AudioError, load_audio
from speechbrain_phonanchor.fileio import atomic_path, atomic_write_json, atomic_write_text
from speechbrain_phonanchor.manifest import load_manifest

logger = logging.getLogger(__name__)

# Phone set → (pretrained dictionary, pretrained acoustic model) in MFA's model registry.
MFA_MODELS = {
    "arpabet": ("english_us_arpa", "english_us_arpa"),
    "english_us_arpa": ("english_us_arpa", "english_us_arpa"),
    "english_mfa": ("english_us_mfa", "english_mfa"),
    "mandarin_mfa": ("mandarin_taiwan_mfa", "mandarin_mfa"),  # BIIC-Podcast is Taiwanese Mandarin
    "russian_mfa": ("russian_mfa", "russian_mfa"),
}
MFA_OUTPUT = "mfa_aligned"
MFA_CORPUS = "mfa_corpus"
SAFE_NAME = re.compile(r"^[\w.\-]+$")

INSTALL_HELP = (
    "the Montreal Forced Aligner ('{exe}') is not on PATH. Install it with Kaldi from conda-forge:\n"
    "    conda install -c conda-forge montreal-forced-aligner\n"
    "    mfa model download dictionary {dictionary}\n"
    "    mfa model download acoustic {acoustic_model}\n"
    "(pip install montreal-forced-aligner alone does not bring Kaldi), or use the built-in aligner:\n"
    "    phonanchor-align <corpus folder or manifest> --lang <code> --out <tg_dir>\n"
    "    phonanchor-prepare <corpus> <data_folder> <save_folder> --textgrids <tg_dir> --phone-set espeak"
)


class MFANotFoundError(RuntimeError):
    """``mfa`` is not installed; the message says how to get it or what to use instead."""


class MFAError(RuntimeError):
    """``mfa align`` failed; the message holds the command and the end of its output."""


@dataclasses.dataclass
class MFAConfig:
    """What ``mfa align`` is run with.

    ``dictionary`` and ``acoustic_model`` are names of MFA's pretrained models
    (``mfa model download ...``) or paths to local files.
    """

    dictionary: str
    acoustic_model: str
    num_jobs: int = 1
    beam: Optional[int] = None
    extra_args: tuple = ()
    executable: str = "mfa"

    @classmethod
    def for_phone_set(cls, phone_set, **overrides):
        """The default models for ``phone_set`` (see :data:`MFA_MODELS`), with ``overrides``.

        >>> MFAConfig.for_phone_set("russian_mfa").acoustic_model
        'russian_mfa'
        """
        overrides = {key: value for key, value in overrides.items() if value is not None}
        if phone_set not in MFA_MODELS and not {"dictionary", "acoustic_model"} <= set(overrides):
            raise ValueError(
                f"no default MFA models for phone set {phone_set!r} (known: {', '.join(MFA_MODELS)}); "
                "name a dictionary and an acoustic model"
            )
        dictionary, acoustic_model = MFA_MODELS.get(phone_set, (None, None))
        return cls(**{"dictionary": dictionary, "acoustic_model": acoustic_model, **overrides})

    @classmethod
    def from_yaml(cls, path, phone_set=None):
        """Read a config from a yaml file with keys ``dictionary``, ``acoustic_model``, ``num_jobs``, ...

        Missing models fall back to the defaults of ``phone_set``.
        """
        data = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8")) or {}
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown MFA config keys {sorted(unknown)}")
        if "extra_args" in data:
            data["extra_args"] = tuple(data["extra_args"])
        if phone_set is not None:
            return cls.for_phone_set(phone_set, **data)
        return cls(**data)


def find_mfa(config):
    """Return the path of the ``mfa`` executable, or raise :class:`MFANotFoundError` saying how to get it."""
    found = shutil.which(config.executable)
    if found is None:
        raise MFANotFoundError(
            INSTALL_HELP.format(
                exe=config.executable, dictionary=config.dictionary, acoustic_model=config.acoustic_model
            )
        )
    return found


def mfa_align_command(corpus_dir, output_dir, config, executable=None):
    """The ``mfa align`` command line (a list) for ``corpus_dir`` → ``output_dir``.

    >>> cfg = MFAConfig("my.dict", "/models/ru.zip", num_jobs=4, beam=100)
    >>> " ".join(mfa_align_command("c", "o", cfg))
    'mfa align c my.dict /models/ru.zip o --clean --num_jobs 4 --output_format long_textgrid --beam 100'
    """
    command = [
        executable or config.executable,
        "align",
        str(corpus_dir),
        str(config.dictionary),
        str(config.acoustic_model),
        str(output_dir),
        "--clean",
        "--num_jobs",
        str(config.num_jobs),
        "--output_format",
        "long_textgrid",
    ]
    if config.beam is not None:
        command += ["--beam", str(config.beam)]
    return command + [str(arg) for arg in config.extra_args]


def write_mfa_corpus(manifests, corpus_dir, data_root=None):
    """Write MFA's corpus layout for the utterances of ``manifests``.

    Each utterance with a transcript becomes ``<corpus_dir>/<speaker>/<utt_id>.wav``
    (16 kHz mono 16-bit PCM, whatever the source format) and ``<utt_id>.lab``
    (its transcript on one line); utterances without a speaker go to
    ``unknown_speaker/``.  Existing wavs are kept, so a rerun is cheap.

    Arguments
    ---------
    manifests : list of str or Path
        Manifest JSON files (``{data_root}`` resolved from their ``prep_report.json``
        unless ``data_root`` is given).
    corpus_dir : str or Path
    data_root : str, optional

    Returns
    -------
    dict
        ``{"written": n, "skipped": {reason: [utt_id, ...]}}``: utterances
        without a transcript (``no_transcript``), with an unusable file name or
        unreadable audio are skipped and listed.

    Example
    -------
    >>> import tempfile, pathlib, numpy, soundfile
    >>> from speechbrain_phonanchor.manifest import save_manifest
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> soundfile.write(root / "a.flac", 0.1 * numpy.ones(8000), 8000)
    >>> save_manifest({"a": {"wav": str(root / "a.flac"), "duration": 1.0, "spk": "s1", "text": "hi"}},
    ...               root / "m.json")
    >>> write_mfa_corpus([root / "m.json"], root / "corpus")["written"]
    1
    >>> sorted(p.name for p in (root / "corpus" / "s1").iterdir()), soundfile.info(root / "corpus/s1/a.wav").samplerate
    (['a.lab', 'a.wav'], 16000)
    """
    corpus_dir = pathlib.Path(corpus_dir)
    skipped, written = {}, 0
    for manifest_path in manifests:
        for utt_id, entry in load_manifest(manifest_path, data_root=data_root).items():
            text = (entry.get("text") or "").strip()
            speaker = str(entry.get("spk") or "unknown_speaker")
            reason = None
            if not text:
                reason = "no_transcript"
            elif not SAFE_NAME.match(utt_id) or not SAFE_NAME.match(speaker):
                reason = "unsafe_file_name"
            else:
                folder = corpus_dir / speaker
                wav_path = folder / f"{utt_id}.wav"
                try:
                    if not wav_path.is_file():
                        wav, _ = load_audio(entry["wav"], sample_rate=SAMPLE_RATE, silence_dbfs=None)
                        with atomic_path(wav_path) as tmp:
                            soundfile.write(tmp, wav.numpy(), SAMPLE_RATE, subtype="PCM_16", format="WAV")
                    atomic_write_text(folder / f"{utt_id}.lab", " ".join(text.split()) + "\n")
                    written += 1
                except AudioError as err:
                    reason = err.reason
            if reason is not None:
                skipped.setdefault(reason, []).append(utt_id)
    for reason, ids in skipped.items():
        logger.warning("MFA corpus: left out %d utterances (%s), e.g. %s", len(ids), reason, ", ".join(ids[:5]))
    return {"written": written, "skipped": skipped}


def run_mfa(corpus_dir, output_dir, config, runner=subprocess.run):
    """Run ``mfa align`` on a written corpus; return ``output_dir`` (TextGrids per speaker folder).

    Raises :class:`MFANotFoundError` when MFA is missing and :class:`MFAError`
    (with the command and the end of its output) when it fails.
    """
    executable = find_mfa(config)
    command = mfa_align_command(corpus_dir, output_dir, config, executable=executable)
    logger.info("running %s", " ".join(command))
    result = runner(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + "\n" + result.stderr).strip().splitlines()[-20:])
        raise MFAError(f"mfa align failed (exit {result.returncode}): {' '.join(command)}\n{tail}")
    n_textgrids = sum(1 for _ in pathlib.Path(output_dir).rglob("*.TextGrid"))
    logger.info("MFA wrote %d TextGrids to %s", n_textgrids, output_dir)
    return pathlib.Path(output_dir)


def align_corpus(prepare, data_folder, save_folder, config, work_dir=None, progress=True, **kwargs):
    """Prepare a corpus, align it with MFA and prepare it again with the TextGrids.

    Arguments
    ---------
    prepare : callable
        A ``prepare_<corpus>`` function.
    data_folder, save_folder : str or Path
    config : MFAConfig
    work_dir : str or Path, optional
        Where MFA's corpus and output go (default: ``save_folder``).
    progress : bool
    **kwargs
        Passed to ``prepare`` (not ``textgrid_folder``: MFA's output is used).

    Returns
    -------
    dict
        The report of the second preparation, with ``"mfa"`` added
        (utterances written, left out by reason, output folder; also written
        to ``mfa_report.json`` in ``save_folder``).
    """
    find_mfa(config)  # fail before any work if MFA is missing
    work_dir = pathlib.Path(work_dir or save_folder)
    first = prepare(data_folder, save_folder, progress=progress, **kwargs)
    manifests = [pathlib.Path(save_folder) / name for name in first["manifests"].values()]
    corpus = write_mfa_corpus(manifests, work_dir / MFA_CORPUS)
    if corpus["written"] == 0:
        raise MFAError(f"no utterance of {save_folder} has a transcript: nothing for MFA to align")
    output = run_mfa(work_dir / MFA_CORPUS, work_dir / MFA_OUTPUT, config)
    report = prepare(data_folder, save_folder, textgrid_folder=output, progress=progress, **kwargs)
    report["mfa"] = {
        "written": corpus["written"],
        "left_out": dict(Counter({reason: len(ids) for reason, ids in corpus["skipped"].items()})),
        "output": str(output),
        "command": mfa_align_command(work_dir / MFA_CORPUS, output, config),
    }
    atomic_write_json(pathlib.Path(save_folder) / "mfa_report.json", report["mfa"])
    return report
