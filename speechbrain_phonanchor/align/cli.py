"""``phonanchor-align``: train an HMM-GMM aligner on a corpus (or reuse one) and write MFA-style TextGrids.

Usage::

    phonanchor-align /data/nemo_pl --lang pl --out aligned/nemo_pl --model-dir models/pl --jobs 2
    phonanchor-align train.json --lang it --out aligned/it          # a manifest with "text" fields

The input is a corpus folder with ``metadata.csv`` (``utt_id,path,...,text``;
``path`` relative to the folder) or a manifest JSON.  If ``--model-dir`` holds
a saved model it is used as is (``--retrain`` forces training); otherwise a
monophone model is trained on the input and saved there (default
``<out>/model``).  Utterances whose TextGrid exists are skipped, so an
interrupted run resumes.  Every utterance ends up aligned, skipped or failed
with a reason; the summary is printed and written to ``<out>/align_report.json``.

Example
-------
>>> import tempfile
>>> main(["/nonexistent", "--lang", "pl", "--out", tempfile.mkdtemp()])
Traceback (most recent call last):
...
SystemExit: phonanchor-align: /nonexistent is neither a corpus folder with metadata.csv nor a manifest JSON
"""

import argparse
import csv
import logging
import multiprocessing
import pathlib
import sys
import time
from collections import Counter

from tqdm import tqdm

from speechbrain_phonanchor.align.aligner import AcousticModel, AlignError
from speechbrain_phonanchor.align.features import features_from_file
from speechbrain_phonanchor.align.g2p import G2PError, make_g2p
from speechbrain_phonanchor.align.trainer import TrainConfig, TrainingUtterance, train_monophone
from speechbrain_phonanchor.audio import AudioError
from speechbrain_phonanchor.fileio import atomic_write_json
from speechbrain_phonanchor.manifest import ManifestError, load_manifest
from speechbrain_phonanchor.textgrids import write_alignment

REPORT_NAME = "align_report.json"
logger = logging.getLogger(__name__)


def read_items(source, data_root=None):
    """``[{"utt_id", "wav", "text"}, ...]`` from a corpus folder (``metadata.csv``) or a manifest JSON.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "metadata.csv").write_text("utt_id,path,text\\nu1,wavs/u1.flac,Ciao a tutti\\n")
    >>> read_items(folder)[0]["text"]
    'Ciao a tutti'
    """
    source = pathlib.Path(source)
    if source.is_dir() and (source / "metadata.csv").is_file():
        with open(source / "metadata.csv", newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        missing = {"utt_id", "path"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{source / 'metadata.csv'} lacks columns {', '.join(sorted(missing))}")
        return [{"utt_id": r["utt_id"], "wav": str(source / r["path"]), "text": r.get("text") or ""} for r in rows]
    if source.is_file() and source.suffix.lower() == ".json":
        manifest = load_manifest(source, data_root=data_root)
        return [{"utt_id": k, "wav": e["wav"], "text": e.get("text") or ""} for k, e in manifest.items()]
    raise FileNotFoundError(f"{source} is neither a corpus folder with metadata.csv nor a manifest JSON")


def transcribe_items(items, lang):
    """Attach ``words`` (G2P) to each item; return ``(kept, skipped {utt_id: reason}, problems Counter)``."""
    g2p = make_g2p(lang)
    kept, skipped, problems = [], {}, Counter()
    for item in items:
        transcription = g2p.transcribe(item["text"])
        for token, reason in transcription.problems:
            problems[f"{reason}: {token}"] += 1
        if not transcription.words:
            skipped[item["utt_id"]] = "empty_transcript"
        elif not transcription.phones:
            skipped[item["utt_id"]] = "unpronounceable_transcript"
        else:
            kept.append({**item, "words": transcription.words})
    return kept, skipped, problems


def _features(item):
    try:
        feats, duration = features_from_file(item["wav"])
        return item["utt_id"], feats, duration, None
    except AudioError as err:
        return item["utt_id"], None, None, err.reason


def _pool(jobs, initializer=None, initargs=()):
    """Worker processes for reading audio and aligning.

    They are spawned, not forked: the workers resample with torch, and a child
    forked from a process whose OpenMP thread pool is running hangs on its first
    parallel region (seen with the full test suite).
    """
    return multiprocessing.get_context("spawn").Pool(jobs, initializer=initializer, initargs=initargs)


def train_on_items(items, lang, model_dir, jobs=1, config=None, show_progress=True):
    """Compute features, train a monophone model on ``items`` and save it in ``model_dir``.

    Returns ``(model, report)``; the report includes audio failures by utterance.
    """
    config = config or TrainConfig(jobs=jobs)
    utterances, failed = [], {}
    with _pool(jobs) as pool:
        results = pool.imap(_features, items, chunksize=8)
        for item, (utt_id, feats, _, reason) in zip(items, tqdm(results, total=len(items), desc="features",
                                                                  disable=not show_progress)):  # fmt: skip
            if reason:
                failed[utt_id] = reason
            else:
                utterances.append(TrainingUtterance(utt_id, feats, item["words"]))
    bar = tqdm(total=config.num_iters, desc="training", disable=not show_progress)
    model, report = train_monophone(utterances, lang, config, progress=lambda i, info: bar.update(1))
    bar.close()
    report["failed"].update(failed)
    model.save(model_dir, extra={"training": {k: v for k, v in report.items() if k != "failed"}})
    return model, report


_MODEL = None


def _load_model(model_dir):
    global _MODEL
    _MODEL = AcousticModel.load(model_dir)


def align_one(model, item, out_dir):
    """Align one item and write ``<out_dir>/<utt_id>.TextGrid``; return ``(utt_id, reason or None)``."""
    try:
        feats, duration = features_from_file(item["wav"])
        result = model.align(feats, item["words"], duration=duration)
    except (AudioError, AlignError) as err:
        return item["utt_id"], err.reason
    write_alignment(pathlib.Path(out_dir) / f"{item['utt_id']}.TextGrid", result.words, result.phones, duration)
    return item["utt_id"], None


def _align_task(args):
    item, out_dir = args
    return align_one(_MODEL, item, out_dir)


def align_corpus(source, lang, out_dir, model_dir=None, jobs=2, retrain=False, config=None, data_root=None,
                 show_progress=True):  # fmt: skip
    """Align every utterance of a corpus folder or manifest; the library form of the CLI.

    Arguments
    ---------
    source : str or Path
        Corpus folder with ``metadata.csv`` or a manifest JSON with ``text`` fields.
    lang : str
        G2P language (``pl``, ``it``, ``en``, ``zh``, ``de``, ``ru``, any espeak-ng code).
    out_dir : str or Path
        Where ``<utt_id>.TextGrid`` files and ``align_report.json`` go.
    model_dir : str or Path, optional
        Saved model to use, or where to save the one trained here (default ``<out_dir>/model``).
    jobs : int
        Worker processes for features, training realignment and alignment.
    retrain : bool
        Train even if ``model_dir`` holds a model.
    config : TrainConfig, optional
        Training schedule.

    Returns
    -------
    dict
        The report: counts of aligned / skipped / failed, reasons, G2P problems, timings.
    """
    start = time.time()
    out_dir = pathlib.Path(out_dir)
    model_dir = pathlib.Path(model_dir) if model_dir else out_dir / "model"
    items = read_items(source, data_root)
    kept, skipped, problems = transcribe_items(items, lang)
    report = {"source": str(source), "lang": lang, "model_dir": str(model_dir), "utterances": len(items)}
    failed, train_seconds = {}, 0.0
    if retrain or not AcousticModel.exists(model_dir):
        config = config or TrainConfig(jobs=jobs)
        train_start = time.time()
        _, train_report = train_on_items(kept, lang, model_dir, jobs, config, show_progress)
        train_seconds = time.time() - train_start
        report["training"] = {"trained_on": train_report["trained_on"], "left_out": train_report["failed_by_reason"]}
    model = AcousticModel.load(model_dir)
    if model.lang != lang:
        raise ValueError(f"model in {model_dir} is for {model.lang!r}, not {lang!r}; use --retrain or another dir")
    done = [it for it in kept if (out_dir / f"{it['utt_id']}.TextGrid").is_file()]
    pending = [it for it in kept if not (out_dir / f"{it['utt_id']}.TextGrid").is_file()]
    out_dir.mkdir(parents=True, exist_ok=True)
    align_start = time.time()
    tasks = [(item, str(out_dir)) for item in pending]
    bar = tqdm(total=len(tasks), desc="aligning", disable=not show_progress)
    if jobs > 1 and len(tasks) > 1:
        with _pool(jobs, _load_model, (str(model_dir),)) as pool:
            for utt_id, reason in pool.imap_unordered(_align_task, tasks, chunksize=4):
                bar.update(1)
                if reason:
                    failed[utt_id] = reason
    else:
        for item, _ in tasks:
            utt_id, reason = align_one(model, item, out_dir)
            bar.update(1)
            if reason:
                failed[utt_id] = reason
    bar.close()
    aligned = len(pending) - len(failed)
    report.update({
        "aligned": aligned + len(done),
        "aligned_now": aligned,
        "already_aligned": len(done),
        "skipped": len(skipped),
        "failed": len(failed),
        "skipped_by_reason": dict(Counter(skipped.values())),
        "failed_by_reason": dict(Counter(failed.values())),
        "skipped_utterances": skipped,
        "failed_utterances": failed,
        "g2p_problems": dict(problems.most_common()),
        "seconds": {"train": round(train_seconds, 1), "align": round(time.time() - align_start, 1),
                    "total": round(time.time() - start, 1)},
    })  # fmt: skip
    atomic_write_json(out_dir / REPORT_NAME, report)
    return report


def _summary(report):
    lines = [
        f"{report['utterances']} utterances: {report['aligned']} aligned "
        f"({report['already_aligned']} already), {report['skipped']} skipped, {report['failed']} failed",
    ]
    for kind in ("skipped_by_reason", "failed_by_reason"):
        for reason, n in sorted(report[kind].items()):
            lines.append(f"  {kind.split('_')[0]}: {reason}: {n}")
    if report["g2p_problems"]:
        shown = list(report["g2p_problems"].items())[:10]
        lines.append("  G2P: " + "; ".join(f"{k} ×{v}" for k, v in shown))
    secs = report["seconds"]
    lines.append(f"  time: train {secs['train']} s, align {secs['align']} s, total {secs['total']} s")
    return "\n".join(lines)


def main(argv=None):
    """Entry point of ``phonanchor-align`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="phonanchor-align", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="corpus folder with metadata.csv, or a manifest JSON with text fields")
    parser.add_argument("--lang", required=True, help="language: en, zh, pl, it, de, ru or any espeak-ng code")
    parser.add_argument("--out", required=True, help="folder for <utt_id>.TextGrid files")
    parser.add_argument("--model-dir", help="saved model to use, or where to save the trained one")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--retrain", action="store_true", help="train even if --model-dir holds a model")
    parser.add_argument("--num-iters", type=int, default=40, help="EM passes (default 40)")
    parser.add_argument("--max-gaussians", type=int, default=1000, help="total Gaussians (default 1000)")
    parser.add_argument("--data-root", help="corpus folder for {data_root} in a manifest")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    jobs = max(1, args.jobs)
    config = TrainConfig(num_iters=args.num_iters, max_gaussians=args.max_gaussians, jobs=jobs)
    try:
        report = align_corpus(args.source, args.lang, args.out, args.model_dir, jobs, args.retrain, config,
                              args.data_root, show_progress=not args.quiet)  # fmt: skip
    except (FileNotFoundError, G2PError, ManifestError, ValueError) as err:
        raise SystemExit(f"phonanchor-align: {err}") from err
    print(_summary(report), file=sys.stderr)
    return 0 if report["aligned"] else 1


if __name__ == "__main__":
    sys.exit(main())
