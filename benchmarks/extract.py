"""Feature-extraction throughput, measured side by side in one run.

Two questions, one flag each:

1. ``--mode pipeline`` (default): the whole pipeline against the bare encoder.  Both passes
   see the same utterances in the same length-sorted batches of the store's plan and call
   the same ``FrozenEncoder.encode_list``, so the model does the same work in each:

   * **bare**: ``encode_list`` on waveforms already in memory (for Whisper this includes the
     log-mel front end, which is part of the encoder);
   * **pipeline**: :func:`build_store` into a fresh folder: reading and resampling the files
     (in ``--loader-workers`` processes, overlapped with encoding), encoding, the NaN check,
     fp16 conversion, the journal, the fsyncs, the merge and the checksum.

   It runs twice: with all cores given to torch (``torch.set_num_threads(os.cpu_count())``),
   then in the shape of a GPU machine, the encoder on one torch thread and the loading on
   the other core(s) (bare with the same one thread).  The GPU-shaped ratio
   ``pipeline throughput / bare throughput`` (goal ≥ 0.9) is printed last.

2. ``--mode whisper-window``: a Whisper encoder's two windows (``exact``: the utterance's own
   length; ``30s``: padded 30 s windows), each a complete :func:`build_store` of the same
   utterances (default: the first ``--limit`` files of ``../shared/data/nemo_pl/wavs``),
   alternating; prints seconds of audio per second of each and the speed-up of ``exact``.

Passes alternate ``--repeats`` times after an untimed warm-up and the best time of each is
kept (the least disturbed by other load on a shared machine).  The default synthetic corpus
(600 utterances, about 35 min of audio) keeps the per-build fixed costs small against
steady-state encoding even for the tiny model.

Usage::

    python benchmarks/extract.py                                             # tiny wav2vec2, synthetic corpus
    python benchmarks/extract.py --mode whisper-window --encoder ~/.cache/offline-whisper-base --limit 40
    python benchmarks/extract.py --encoder facebook/wav2vec2-base \\
        --manifest emovo.json --data-root ../shared/data/emovo_it --limit 40
"""

import argparse
import json
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np
import soundfile
import torch

from speechbrain_phonanchor.audio import load_audio
from speechbrain_phonanchor.features.encoders import FrozenEncoder, make_tiny_encoder
from speechbrain_phonanchor.features.extraction import build_store, plan_batches
from speechbrain_phonanchor.manifest import load_manifest, save_manifest

NEMO_WAVS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "nemo_pl" / "wavs"


def synthetic_corpus(folder, n_utterances=60, seed=0):
    """Noise utterances of 1–6 s as FLAC plus a manifest; returns (manifest path, data root)."""
    rng = np.random.default_rng(seed)
    manifest = {}
    (folder / "wavs").mkdir(parents=True)
    for i in range(n_utterances):
        seconds = float(rng.uniform(1.0, 6.0))
        soundfile.write(folder / "wavs" / f"u{i:03d}.flac", 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        manifest[f"u{i:03d}"] = {"wav": f"{{data_root}}/wavs/u{i:03d}.flac", "duration": seconds}
    save_manifest(manifest, folder / "manifest.json")
    return folder / "manifest.json", folder


def folder_manifest(audio_dir, folder):
    """A manifest of every audio file in ``audio_dir`` (sorted by name), durations from the headers."""
    manifest = {}
    for path in sorted(pathlib.Path(audio_dir).expanduser().iterdir()):
        if path.suffix.lower() in (".wav", ".flac", ".ogg"):
            info = soundfile.info(str(path))
            manifest[path.stem] = {"wav": str(path.resolve()), "duration": info.frames / info.samplerate}
    folder.mkdir(parents=True, exist_ok=True)
    save_manifest(manifest, folder / "all.json")
    return folder / "all.json"


def limited_manifest(manifest_path, limit, folder):
    """The first ``limit`` utterances of a manifest, written to ``folder``."""
    manifest = load_manifest(manifest_path, resolve=False)
    subset = dict(list(manifest.items())[:limit])
    save_manifest(subset, folder / "manifest.json")
    return folder / "manifest.json"


def bare_pass(encoder, batches):
    """(wall, CPU) seconds to encode pre-loaded batches of waveforms, as the pipeline runs them."""
    start, cpu = time.perf_counter(), time.process_time()
    for wavs in batches:
        if encoder.batchable:
            encoder.encode_list(wavs)
        else:
            for wav in wavs:
                encoder.encode_list([wav])
    return time.perf_counter() - start, time.process_time() - cpu


def pipeline_pass(encoder, manifest_path, data_root, batch_seconds, folder, loader_workers):
    """(wall, CPU) seconds for a complete :func:`build_store` into a fresh folder (removed afterwards)."""
    start, cpu = time.perf_counter(), time.process_time()
    build_store(manifest_path, encoder, folder, data_root=data_root, batch_seconds=batch_seconds, progress=False,
                loader_workers=loader_workers)
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(folder)
    return elapsed


def compare_pipeline(encoder, manifest_path, data_root, args, work, threads):
    """Bare encoder vs the whole pipeline with ``threads`` torch threads; returns the result row."""
    torch.set_num_threads(threads)
    manifest = load_manifest(manifest_path, data_root=data_root)
    plan = plan_batches({utt: entry["duration"] for utt, entry in manifest.items()}, args.batch_seconds,
                        cost=encoder.cost_seconds)
    audio = {utt: load_audio(entry["wav"])[0] for utt, entry in manifest.items()}
    batches = [[audio[utt] for utt in batch] for batch in plan]
    audio_seconds = sum(len(wav) for wav in audio.values()) / 16000
    bare_pass(encoder, batches)  # warm-up: every batch shape once
    bare, pipeline = [], []
    for repeat in range(args.repeats):
        bare.append(bare_pass(encoder, batches))
        pipeline.append(pipeline_pass(encoder, manifest_path, data_root, args.batch_seconds, work / f"store{repeat}",
                                      args.loader_workers))
        print(f"[{threads} thread(s)] repeat {repeat}: bare {bare[-1][0]:.2f} s (cpu {bare[-1][1]:.2f}), "
              f"pipeline {pipeline[-1][0]:.2f} s (cpu {pipeline[-1][1]:.2f})", flush=True)
    bare_s, pipeline_s = min(wall for wall, _ in bare), min(wall for wall, _ in pipeline)
    return {
        "torch_threads": threads, "loader_workers": args.loader_workers, "utterances": len(manifest),
        "audio_seconds": round(audio_seconds, 1), "batches": len(plan),
        "bare_seconds": round(bare_s, 2), "pipeline_seconds": round(pipeline_s, 2),
        "bare_audio_s_per_s": round(audio_seconds / bare_s, 1),
        "pipeline_audio_s_per_s": round(audio_seconds / pipeline_s, 1),
        "ratio": round(bare_s / pipeline_s, 3),
    }


def compare_whisper_windows(source, manifest_path, data_root, args, work):
    """Complete builds with ``exact`` and ``30s`` windows, alternating; returns the result row."""
    encoders = {window: FrozenEncoder(source, layer=args.layer, device=args.device, whisper_window=window)
                for window in ("exact", "30s")}
    manifest = load_manifest(manifest_path, data_root=data_root)
    audio_seconds = sum(float(entry["duration"]) for entry in manifest.values())
    times = {window: [] for window in encoders}
    for repeat in range(args.repeats):
        for window, encoder in encoders.items():
            wall, _ = pipeline_pass(encoder, manifest_path, data_root, args.batch_seconds,
                                    work / f"{window}{repeat}", args.loader_workers)
            times[window].append(wall)
            print(f"repeat {repeat}: {window:5s} {wall:.2f} s", flush=True)
    best = {window: min(values) for window, values in times.items()}
    return {
        "encoder": str(source), "utterances": len(manifest), "audio_seconds": round(audio_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        **{f"{window}_seconds": round(seconds, 2) for window, seconds in best.items()},
        **{f"{window}_audio_s_per_s": round(audio_seconds / seconds, 2) for window, seconds in best.items()},
        "exact_speedup": round(best["30s"] / best["exact"], 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("pipeline", "whisper-window"), default="pipeline")
    parser.add_argument("--encoder", default="tiny-wav2vec2",
                        help="HF id or folder, or tiny-wav2vec2 / tiny-whisper for a random tiny model")
    parser.add_argument("--manifest", default=None, help="manifest (default: a synthetic noise corpus; "
                        "whisper-window mode: the nEMO files of ../shared/data)")
    parser.add_argument("--audio-dir", default=None, help="or: every audio file of this folder, sorted by name")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N utterances")
    parser.add_argument("--synthetic-utterances", type=int, default=600, help="size of the synthetic corpus")
    parser.add_argument("--layer", type=int, default=-1)
    parser.add_argument("--batch-seconds", type=float, default=120.0)
    parser.add_argument("--loader-workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (where the encoder runs)")
    args = parser.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="phonanchor-bench-"))
    source = args.encoder
    if source.startswith("tiny-"):
        source = make_tiny_encoder(work / "encoder", source.split("-", 1)[1])
    audio_dir = args.audio_dir
    if args.mode == "whisper-window" and args.manifest is None and audio_dir is None:
        audio_dir = NEMO_WAVS
    if audio_dir:
        manifest_path, data_root = folder_manifest(audio_dir, work), None
    elif args.manifest is None:
        manifest_path, data_root = synthetic_corpus(work / "corpus", args.synthetic_utterances)
    else:
        manifest_path, data_root = pathlib.Path(args.manifest), args.data_root
    if args.limit:
        manifest_path = limited_manifest(manifest_path, args.limit, work)

    if args.mode == "whisper-window":
        result = compare_whisper_windows(source, manifest_path, data_root, args, work)
        print(json.dumps(result, indent=2))
        print(f"Whisper exact vs 30s windows: {result['exact_audio_s_per_s']} vs {result['30s_audio_s_per_s']} "
              f"s of audio per s, speed-up x{result['exact_speedup']:.2f}")
    else:
        encoder = FrozenEncoder(source, layer=args.layer, device=args.device)
        rows = [compare_pipeline(encoder, manifest_path, data_root, args, work, threads)
                for threads in (os.cpu_count(), 1)]
        result = {"encoder": encoder.source, "all_cores": rows[0], "gpu_shaped": rows[1]}
        print(json.dumps(result, indent=2))
        print(f"pipeline/bare throughput ratio, all {os.cpu_count()} cores to the encoder: {rows[0]['ratio']:.3f}")
        print(f"pipeline/bare throughput ratio, GPU-shaped (encoder on 1 thread, loading in "
              f"{args.loader_workers} process(es)): {rows[1]['ratio']:.3f} (goal >= 0.9)")
    shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
