"""``phonanchor-prepare``: prepare a corpus into SpeechBrain manifests from the command line.

Usage::

    phonanchor-prepare generic ../shared/data/emovo_it out/
    phonanchor-prepare msp_podcast /data/MSP-Podcast out/msp              # ForceAligned/ used if present
    phonanchor-prepare biic_podcast /data/BIIC out/biic --config biic_labels.yaml
    phonanchor-prepare dusha /data/dusha out/dusha --textgrids /data/dusha_tg
    phonanchor-prepare dusha /data/dusha out/dusha_plurality --aggregation plurality
    phonanchor-prepare generic corpus/ out/ --mfa --mfa-dictionary d.dict --mfa-acoustic-model m.zip

``--config`` names a yaml file of keyword arguments for the preparation
function (e.g. BIIC-Podcast's ``label_file``, ``columns``, ``emotion_map``);
command-line options win over it.  The command shows a progress bar and ends
with a summary of ``prep_report.json``; errors are one line naming the file.

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> soundfile.write(root / "u1.wav", 0.1 * numpy.ones(8000), 16000)
>>> _ = (root / "metadata.csv").write_text("utt_id,path,emotion,speaker,split\\nu1,u1.wav,neu,s1,test\\n")
>>> main(["generic", str(root), str(root / "out"), "--no-progress"])  # doctest: +ELLIPSIS
generic: kept 1 (train 0, valid 0, test 1), skipped 0
...
0
"""

import argparse
import contextlib
import dataclasses
import inspect
import logging
import pathlib
import sys

import yaml
from tqdm.contrib.logging import logging_redirect_tqdm

from speechbrain_phonanchor import mfa
from speechbrain_phonanchor.manifest import REPORT_NAME
from speechbrain_phonanchor.phonetics import PHONE_SETS
from speechbrain_phonanchor.prepare import PREPARERS
from speechbrain_phonanchor.prepare.common import PrepareError, summarize
from speechbrain_phonanchor.prepare.msp_podcast import PodcastLayout, prepare_podcast_corpus


def corpus_name(value):
    """``MSP-Podcast`` → ``msp_podcast``; argparse type that refuses unknown corpora."""
    name = value.strip().lower().replace("-", "_")
    if name not in PREPARERS:
        raise argparse.ArgumentTypeError(f"unknown corpus {value!r}; choose from {', '.join(PREPARERS)}")
    return name


def accepted_options(func):
    """Names of the keyword arguments ``func`` accepts (podcast-style functions: also the layout fields)."""
    params = inspect.signature(func).parameters
    names = {name for name, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        names |= set(inspect.signature(prepare_podcast_corpus).parameters) - {"corpus", "layout"}
        names |= set(PodcastLayout.__dataclass_fields__)
    return names - {"data_folder", "save_folder"}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="phonanchor-prepare",
        description="Prepare an emotional-speech corpus into SpeechBrain JSON manifests with vowel timestamps.",
    )
    parser.add_argument("corpus", type=corpus_name, help=f"one of {', '.join(PREPARERS)}")
    parser.add_argument("data_folder", help="the corpus folder")
    parser.add_argument("save_folder", help="where train/valid/test.json and prep_report.json go")
    parser.add_argument("--textgrids", dest="textgrid_folder", help="folder of <utt_id>.TextGrid files")
    parser.add_argument(
        "--phone-set",
        choices=sorted(PHONE_SETS),
        help="phone set of the TextGrids (default: msp_podcast arpabet, biic_podcast mandarin_mfa, "
        "dusha russian_mfa, generic espeak)",
    )
    parser.add_argument("--config", help="yaml file of keyword arguments for the preparation function")
    parser.add_argument("--seed", type=int, help="seed of the speaker-independent split (generic, dusha)")
    parser.add_argument("--drop-vowelless", action="store_true", default=None, help="skip utterances without vowels")
    parser.add_argument("--check-audio", choices=("full", "header"), help="read all samples (default) or headers")
    parser.add_argument("--min-duration", type=float, help="skip audio shorter than this many seconds")
    parser.add_argument("--force", action="store_true", default=None, help="prepare again even if outputs exist")
    parser.add_argument(
        "--aggregation",
        choices=("dawid_skene", "plurality"),
        help="dusha: how votes become labels (default dawid_skene, the authors' rule)",
    )
    parser.add_argument("--threshold", type=float, help="dusha: least Dawid-Skene posterior of a kept label (0.9)")
    parser.add_argument("--labels-folder", help="dusha: the authors' processed labels, taken as they are")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every skipped utterance")
    group = parser.add_argument_group("Montreal Forced Aligner (needs `mfa` on PATH)")
    group.add_argument("--mfa", action="store_true", help="align with MFA, then prepare with its TextGrids")
    group.add_argument("--mfa-config", help="yaml with dictionary, acoustic_model, num_jobs, beam, extra_args")
    group.add_argument("--mfa-dictionary", help="MFA dictionary name or path (default: per phone set)")
    group.add_argument("--mfa-acoustic-model", help="MFA acoustic model name or path (default: per phone set)")
    group.add_argument("--num-jobs", type=int, help="MFA parallel jobs")
    return parser


def preparation_kwargs(args, func):
    """Keyword arguments for ``func`` from ``--config`` and the options given on the command line."""
    kwargs = {}
    if args.config:
        loaded = yaml.safe_load(pathlib.Path(args.config).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise PrepareError(f"{args.config}: expected a mapping of option → value")
        kwargs.update(loaded)
    names = ("textgrid_folder", "phone_set", "seed", "drop_vowelless", "check_audio", "min_duration", "force")
    names += ("aggregation", "threshold", "labels_folder")  # dusha's label options
    for name in names:
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    unknown = sorted(set(kwargs) - accepted_options(func))
    if unknown:
        raise PrepareError(f"{args.corpus} does not take {', '.join(unknown)} (from the command line or --config)")
    return kwargs


def main(argv=None):
    """Run ``phonanchor-prepare``; return the exit status (0 ok, 2 on a clear error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    func = PREPARERS[args.corpus]
    progress = not args.no_progress
    try:
        kwargs = preparation_kwargs(args, func)
        with logging_redirect_tqdm() if progress else contextlib.nullcontext():
            if args.mfa:
                if "textgrid_folder" in kwargs:
                    raise PrepareError("--mfa makes the TextGrids; do not also pass --textgrids")
                kwargs.pop("force", None)
                phone_set = kwargs.get("phone_set") or inspect.signature(func).parameters["phone_set"].default
                overrides = dict(
                    dictionary=args.mfa_dictionary, acoustic_model=args.mfa_acoustic_model, num_jobs=args.num_jobs
                )
                config = (
                    mfa.MFAConfig.from_yaml(args.mfa_config, phone_set)
                    if args.mfa_config
                    else mfa.MFAConfig.for_phone_set(phone_set)
                )
                config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
                report = mfa.align_corpus(func, args.data_folder, args.save_folder, config, progress=progress, **kwargs)
            else:
                report = func(args.data_folder, args.save_folder, progress=progress, **kwargs)
    except (PrepareError, mfa.MFANotFoundError, mfa.MFAError, ValueError, OSError, yaml.YAMLError) as err:
        print(f"phonanchor-prepare: error: {err}", file=sys.stderr)
        return 2
    save = pathlib.Path(args.save_folder)
    print(summarize(report))
    print("manifests: " + ", ".join(str(save / name) for name in report["manifests"].values()))
    print(f"report: {save / REPORT_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
