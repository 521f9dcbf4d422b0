"""Feature-extraction throughput: the whole pipeline against the bare encoder, side by side.

Both passes see the same utterances in the same length-sorted batches of the store's
plan, and both call the same ``FrozenEncoder.encode_list`` per batch, so the model does
the same work in each: group-norm models (wav2vec2-base, HuBERT-base, the tiny random
wav2vec2) run one utterance at a time in *both* arms, batchable ones (layer-norm models,
Whisper) run each batch as one padded forward in both.

* **bare**: ``encode_list`` on waveforms already in memory (for Whisper this includes
  the log-mel front end, which is part of the encoder);
* **pipeline**: :func:`build_store` into a fresh folder: reading and resampling the
  files (on a background thread, overlapped with encoding), encoding, the NaN check,
  fp16 conversion, the journal, the fsyncs, the merge and the checksum.

After one untimed bare pass (warm-up), the passes alternate ``--repeats`` times and the
best time of each is reported (the least disturbed by other load on a shared machine),
with the ratio ``pipeline throughput / bare throughput`` (goal ≥ 0.9), seconds of audio
per second of each, and the same ratio in process CPU time (less sensitive to other
load; the pipeline's CPU time includes its reader thread).  The default synthetic corpus
(600 utterances, about 35 min of audio) keeps the per-build fixed costs small against
steady-state encoding even for the tiny model; ``--min-audio-seconds`` warns when a
corpus is too small for that.

Usage::

    python benchmarks/extract.py --encoder tiny-wav2vec2                       # synthetic corpus
    python benchmarks/extract.py --encoder ~/.cache/offline-whisper-base \\
        --audio-dir ../shared/data/emovo_it/wavs --limit 8                    # first 8 files
    python benchmarks/extract.py --encoder facebook/wav2vec2-base \\
        --manifest emovo.json --data-root ../shared/data/emovo_it --limit 40
"""

import argparse
import json
import pathlib
import shutil
import tempfile
import time

import numpy as np
import soundfile
import torch

from speechbrain_phonanchor.audio import load_audio
from speechbrain_phonanchor.features.encoders import FrozenEncoder, make_tiny_encoder
from speechbrain_phonanchor.features.store import build_store, plan_batches
from speechbrain_phonanchor.manifest import load_manifest, save_manifest


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
    """(wall, CPU) seconds to encode pre-loaded batches of waveforms."""
    start, cpu = time.perf_counter(), time.process_time()
    for wavs in batches:
        encoder.encode_list(wavs)
    return time.perf_counter() - start, time.process_time() - cpu


def pipeline_pass(encoder, manifest_path, data_root, batch_seconds, folder):
    """(wall, CPU) seconds for a complete :func:`build_store` into a fresh folder (removed afterwards)."""
    start, cpu = time.perf_counter(), time.process_time()
    build_store(manifest_path, encoder, folder, data_root=data_root, batch_seconds=batch_seconds, progress=False)
    elapsed = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(folder)
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="tiny-wav2vec2",
                        help="HF id or folder, or tiny-wav2vec2 / tiny-whisper for a random tiny model")
    parser.add_argument("--manifest", default=None, help="manifest (default: a synthetic noise corpus)")
    parser.add_argument("--audio-dir", default=None, help="or: every audio file of this folder, sorted by name")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N utterances")
    parser.add_argument("--synthetic-utterances", type=int, default=600, help="size of the synthetic corpus")
    parser.add_argument("--layer", type=int, default=-1)
    parser.add_argument("--batch-seconds", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-audio-seconds", type=float, default=600.0,
                        help="warn when the corpus is shorter (fixed costs would weigh more than in real use)")
    args = parser.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="phonanchor-bench-"))
    source = args.encoder
    if source.startswith("tiny-"):
        source = make_tiny_encoder(work / "encoder", source.split("-", 1)[1])
    encoder = FrozenEncoder(source, layer=args.layer)
    if args.audio_dir:
        manifest_path, data_root = folder_manifest(args.audio_dir, work), None
    elif args.manifest is None:
        manifest_path, data_root = synthetic_corpus(work / "corpus", args.synthetic_utterances)
    else:
        manifest_path, data_root = pathlib.Path(args.manifest), args.data_root
    if args.limit:
        manifest_path = limited_manifest(manifest_path, args.limit, work)

    manifest = load_manifest(manifest_path, data_root=data_root)
    plan = plan_batches({utt: entry["duration"] for utt, entry in manifest.items()}, args.batch_seconds,
                        cost=encoder.cost_seconds)
    audio = {utt: load_audio(entry["wav"])[0] for utt, entry in manifest.items()}
    batches = [[audio[utt] for utt in batch] for batch in plan]
    audio_seconds = sum(len(wav) for wav in audio.values()) / 16000
    if audio_seconds < args.min_audio_seconds:
        print(f"warning: only {audio_seconds:.0f} s of audio (< {args.min_audio_seconds:.0f} s): per-build fixed "
              f"costs weigh more than at steady state", flush=True)
    bare_pass(encoder, batches)  # warm-up: every batch shape once

    bare, pipeline = [], []
    for repeat in range(args.repeats):
        bare.append(bare_pass(encoder, batches))
        pipeline.append(pipeline_pass(encoder, manifest_path, data_root, args.batch_seconds, work / f"store{repeat}"))
        print(f"repeat {repeat}: bare {bare[-1][0]:.2f} s (cpu {bare[-1][1]:.2f}), "
              f"pipeline {pipeline[-1][0]:.2f} s (cpu {pipeline[-1][1]:.2f})", flush=True)
    bare_s, pipeline_s = min(wall for wall, _ in bare), min(wall for wall, _ in pipeline)
    bare_cpu, pipeline_cpu = min(cpu for _, cpu in bare), min(cpu for _, cpu in pipeline)
    result = {
        "encoder": encoder.source,
        "utterances": len(manifest),
        "audio_seconds": round(audio_seconds, 1),
        "batches": len(plan),
        "torch_threads": torch.get_num_threads(),
        "bare_seconds": round(bare_s, 2),
        "pipeline_seconds": round(pipeline_s, 2),
        "bare_audio_s_per_s": round(audio_seconds / bare_s, 1),
        "pipeline_audio_s_per_s": round(audio_seconds / pipeline_s, 1),
        "ratio": round(bare_s / pipeline_s, 3),
        "cpu_ratio": round(bare_cpu / pipeline_cpu, 3),
    }
    print(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    print(f"pipeline/bare throughput ratio: {result['ratio']:.3f} (goal >= 0.9); "
          f"{result['pipeline_audio_s_per_s']} s of audio per s")
    return result


if __name__ == "__main__":
    main()
