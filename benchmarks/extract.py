"""Feature-extraction throughput: the whole pipeline against the bare encoder, side by side.

Both passes see the same utterances in the same length-sorted batches:

* **bare**: ``FrozenEncoder.encode_list`` on waveforms already in memory (for Whisper
  this includes the log-mel front end, which is part of the encoder);
* **pipeline**: :func:`build_store` into a fresh folder: reading and resampling the
  files (in a background thread), encoding, the NaN check, fp16 conversion, the
  fsync'd journal, the merge and the checksum.

After one untimed bare pass (warm-up), the passes alternate ``--repeats`` times and the
best time of each is reported (the least disturbed by other load on a shared machine),
with the ratio ``pipeline throughput / bare throughput`` (goal ≥ 0.9) and seconds of
audio per second.

Usage::

    python benchmarks/extract.py --encoder tiny-wav2vec2                       # synthetic corpus
    python benchmarks/extract.py --encoder ~/.cache/offline-whisper-base \\
        --manifest emovo.json --data-root ../shared/data/emovo_it --limit 40
"""

import argparse
import json
import pathlib
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


def limited_manifest(manifest_path, limit, folder):
    """The first ``limit`` utterances of a manifest, written to ``folder``."""
    manifest = load_manifest(manifest_path, resolve=False)
    subset = dict(list(manifest.items())[:limit])
    save_manifest(subset, folder / "manifest.json")
    return folder / "manifest.json"


def bare_pass(encoder, batches):
    """Seconds to encode pre-loaded batches of waveforms."""
    start = time.perf_counter()
    for wavs in batches:
        encoder.encode_list(wavs)
    return time.perf_counter() - start


def pipeline_pass(encoder, manifest_path, data_root, batch_seconds, folder):
    """Seconds for a complete :func:`build_store` into a fresh folder."""
    start = time.perf_counter()
    build_store(manifest_path, encoder, folder, data_root=data_root, batch_seconds=batch_seconds, progress=False)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="tiny-wav2vec2",
                        help="HF id or folder, or tiny-wav2vec2 / tiny-whisper for a random tiny model")
    parser.add_argument("--manifest", default=None, help="manifest (default: a synthetic noise corpus)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N utterances")
    parser.add_argument("--synthetic-utterances", type=int, default=200, help="size of the synthetic corpus")
    parser.add_argument("--layer", type=int, default=-1)
    parser.add_argument("--batch-seconds", type=float, default=120.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="phonanchor-bench-"))
    source = args.encoder
    if source.startswith("tiny-"):
        source = make_tiny_encoder(work / "encoder", source.split("-", 1)[1])
    encoder = FrozenEncoder(source, layer=args.layer)
    if args.manifest is None:
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
    bare_pass(encoder, batches)  # warm-up: every batch shape once

    bare, pipeline = [], []
    for repeat in range(args.repeats):
        bare.append(bare_pass(encoder, batches))
        pipeline.append(pipeline_pass(encoder, manifest_path, data_root, args.batch_seconds, work / f"store{repeat}"))
        print(f"repeat {repeat}: bare {bare[-1]:.2f} s, pipeline {pipeline[-1]:.2f} s", flush=True)
    bare_s, pipeline_s = min(bare), min(pipeline)
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
    }
    print(json.dumps(result, indent=2))
    print(f"pipeline/bare throughput ratio: {result['ratio']:.3f} (goal >= 0.9); "
          f"{result['pipeline_audio_s_per_s']} s of audio per s")
    return result


if __name__ == "__main__":
    main()
