#!/usr/bin/env python3
"""Training-epoch benchmarks: the feature store against re-encoding, and memory against corpus size.

(a) **Epoch time.**  One AGA training epoch of the model of ``hparams/generic_pair.yaml``
    (``PhonAnchorBrain``, same batches, same seed) twice: once reading frames from the
    feature store, once re-encoding every utterance's audio through the frozen encoder
    whenever a batch needs it (what training without a store costs).  Audio is generated;
    the encoder is a randomly initialised wav2vec2 with the architecture of wav2vec2-base
    (same compute, nothing downloaded) or any local encoder folder (``--encoder``, e.g.
    ``~/.cache/offline-whisper-base``).  Goal: store ≥ 20× faster.
(b) **Peak memory.**  A synthetic store of ``--rss-utterances`` × ``--scale`` utterances
    (random fp16 frames, 768-d by default) is written once; a training epoch on the first
    1× and on all 10× utterances each runs in a fresh subprocess that reports its peak RSS
    (``VmHWM``, which would count the resident pages of a memory-mapped store; the store
    reads by offset, so none stay) and its peak anonymous RSS (sampled from
    ``/proc/self/status``: memory the process itself holds).
    Goal: 10× / 1× peak RSS ≤ 1.2.

    OMP_NUM_THREADS=1 python benchmarks/train_epoch.py            # both, prints the two ratios
    python benchmarks/train_epoch.py --part time --utterances 64 --seconds 4
"""

import argparse
import collections.abc
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import soundfile
import torch
import transformers
from hyperpyyaml import load_hyperpyyaml

from speechbrain_phonanchor.analysis.selection import load_anchors, write_anchors
from speechbrain_phonanchor.audio import SAMPLE_RATE, load_audio
from speechbrain_phonanchor.brain import PhonAnchorBrain
from speechbrain_phonanchor.data import EMOTIONS, PairedDataset, UtteranceDataset, collate_pairs, get_task
from speechbrain_phonanchor.features.encoders import FrozenEncoder
from speechbrain_phonanchor.features.store import FeatureStore, build_store, write_store

ROOT = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = ROOT / "hparams" / "generic_pair.yaml"
VOWELS = ("a", "i", "u", "ɛ")


def synthetic_entry(index, seconds, rng):
    """A manifest entry: an emotion by turn and a vowel every 0.3 s."""
    starts = np.arange(0.1, seconds - 0.2, 0.3)
    vowels = [{"phone": v, "ipa": v, "vowel": v, "kind": "mono", "start": float(s), "end": float(s) + 0.1}
              for v, s in zip(rng.choice(VOWELS, len(starts)), starts)]
    return {"duration": seconds, "emo": EMOTIONS[index % len(EMOTIONS)], "aro": "mid", "val": "mid",
            "spk": str(index % 7), "vowels": vowels}


def write_audio_corpus(folder, name, count, seconds, seed):
    """``count`` wavs of ``seconds`` (tone + noise) and their manifest ``<folder>/<name>.json``; returns the path."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    manifest = {}
    for i in range(count):
        utt = f"{name}_{i:05d}"
        wav = 0.2 * np.sin(2 * np.pi * (100 + 20 * (i % 4)) * t) + 0.02 * rng.standard_normal(t.size)
        soundfile.write(folder / f"{utt}.wav", wav, SAMPLE_RATE)
        manifest[utt] = dict(synthetic_entry(i, seconds, rng), wav=str(folder / f"{utt}.wav"))
    path = folder / f"{name}.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def make_base_encoder(folder):
    """A randomly initialised wav2vec2 with wav2vec2-base's architecture (12 × 768), saved to ``folder``."""
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder)
    return folder


class EncodingStore(collections.abc.Mapping):
    """A stand-in for a feature store that runs the encoder on the audio at every lookup (no cache)."""

    def __init__(self, manifest, encoder):
        self.manifest, self.encoder = manifest, encoder
        self.n_encoded = 0

    def __getitem__(self, utt_id):
        wav, _ = load_audio(self.manifest[utt_id]["wav"])
        self.n_encoded += 1
        return self.encoder.encode_list([wav])[0].numpy()

    def __iter__(self):
        return iter(self.manifest)

    def __len__(self):
        return len(self.manifest)


def make_brain(work, input_size, batch_size, seed=0):
    """The brain and hparams of ``generic_pair.yaml`` (AGA, mono anchors a/i, adaptation from step one)."""
    anchors = work / "anchors.yaml"
    per_kind = {"mono": {"ranking": ["a", "i"], "com": [0.9, 0.5], "BA": ["a"], "WA": ["i"], "GA": ["a", "i"]},
                "diph": {"ranking": [], "com": [], "BA": [], "WA": [], "GA": []}}
    write_anchors(anchors, {e: per_kind for e in EMOTIONS}, {}, "src", "tgt", min_segments=1)
    overrides = {"output_folder": str(work / "run"), "feature_folder": str(work), "anchors_file": str(anchors),
                 "input_size": input_size, "batch_size": batch_size, "number_of_epochs": 1, "warmup_epochs": 0,
                 "pseudo_threshold": 0.0, "seed": seed, "variant": "AGA", "vowel_kind": "mono"}
    with open(HPARAMS, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    task = get_task(hparams["task"])
    hparams["classes"] = task.classes
    hparams["adapt_loss"].set_anchors(task.anchors(load_anchors(anchors, "AGA", "mono")), task.classes)
    brain = PhonAnchorBrain(modules=hparams["modules"], opt_class=hparams["opt_class"], hparams=hparams,
                            run_opts={"device": "cpu"})
    return brain, hparams, task


def train_one_epoch(work, source_manifest, source_store, target_manifest, target_store, input_size, batch_size):
    """Fit the prototype bank and train one epoch (no validation); return the epoch's seconds."""
    brain, hparams, task = make_brain(work, input_size, batch_size)
    source = UtteranceDataset(source_manifest, source_store, task)
    target = UtteranceDataset(target_manifest, target_store, task, labelled=False)
    hparams["prototypes"].fit(target.prototype_source())
    options = dict(hparams["loader_options"], collate_fn=collate_pairs, shuffle=True)
    for store in (source_store, target_store):
        if isinstance(store, EncodingStore):
            store.n_encoded = 0  # count the epoch's encodings only
    start = time.perf_counter()
    brain.fit(hparams["epoch_counter"], PairedDataset(source, target, seed=0), None, train_loader_kwargs=options,
              progressbar=False)
    return time.perf_counter() - start


def time_part(args, work):
    """(a): the same epoch on the store and with re-encoding; returns the speed-up."""
    encoder_folder = pathlib.Path(args.encoder).expanduser() if args.encoder else make_base_encoder(work / "encoder")
    manifests, stores = {}, {}
    for side, seed in (("source", 1), ("target", 2)):
        path = write_audio_corpus(work, side, args.utterances, args.seconds, seed)
        started = time.perf_counter()
        build_store(path, encoder_folder, work / f"store_{side}", progress=False)
        elapsed = time.perf_counter() - started
        print(f"{side}: {args.utterances} × {args.seconds:.1f} s extracted once in {elapsed:.1f} s")
        manifests[side] = json.loads(path.read_text(encoding="utf-8"))
        stores[side] = FeatureStore.open(work / f"store_{side}")
    dim = stores["source"].dim
    stored = train_one_epoch(work / "with_store", manifests["source"], stores["source"], manifests["target"],
                             stores["target"], dim, args.batch_size)
    encoder = FrozenEncoder(encoder_folder)
    live = {side: EncodingStore(manifests[side], encoder) for side in manifests}
    encoded = train_one_epoch(work / "re_encoding", manifests["source"], live["source"], manifests["target"],
                              live["target"], dim, args.batch_size)
    n_encoded = sum(store.n_encoded for store in live.values())
    print(f"(a) encoder {encoder_folder.name} ({dim}-d), {args.utterances} pairs of {args.seconds:.1f} s, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"    epoch on the feature store: {stored:8.2f} s")
    print(f"    epoch re-encoding audio:    {encoded:8.2f} s  ({n_encoded} encoder calls)")
    return encoded / stored


def write_synthetic_store(folder, n_utterances, frames, dim, seed=0):
    """A finished feature store of random fp16 frames (:func:`write_store`) and its manifest ``manifest.json``."""
    rng = np.random.default_rng(seed)
    seconds = frames / 50.0
    manifest = {f"u{i:07d}": synthetic_entry(i, seconds, rng) for i in range(n_utterances)}
    noise = np.random.default_rng(seed)
    config = {"encoder": "synthetic", "encoder_type": "synthetic", "encoder_config_sha256": "", "layers": [-1],
              "dim": dim, "frame_rate": 50.0, "sample_rate": SAMPLE_RATE, "manifest": "manifest.json",
              "manifest_sha256": "", "batch_seconds": 0.0}
    write_store(((utt, noise.standard_normal((frames, dim), dtype=np.float32)) for utt in manifest), folder, config)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def proc_status_kb(field):
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``: peak RSS of this process image; ``RssAnon``).

    ``VmHWM`` rather than ``ru_maxrss``: after fork + exec, ``ru_maxrss`` keeps the parent's
    resident size at the fork, which would hide the child's own peak.
    """
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_memory_child(args):
    """(b), in a fresh process: one epoch on the first ``--take`` utterances; print peak RSS as JSON."""
    peak_anon = [0]

    def sample():
        while True:
            peak_anon[0] = max(peak_anon[0], proc_status_kb("RssAnon"))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    store = FeatureStore.open(args.store)
    manifest = json.loads((pathlib.Path(args.store) / "manifest.json").read_text(encoding="utf-8"))
    manifest = dict(list(manifest.items())[: args.take])
    with tempfile.TemporaryDirectory() as tmp:
        seconds = train_one_epoch(pathlib.Path(tmp), manifest, store, manifest, store, store.dim, args.batch_size)
    time.sleep(0.1)
    print(json.dumps({"utterances": len(manifest), "seconds": round(seconds, 2),
                      "peak_rss_mb": proc_status_kb("VmHWM") / 1024,
                      "peak_anon_mb": peak_anon[0] / 1024}))


def memory_part(args, work):
    """(b): peak RSS of an epoch on 1× and 10× utterances, each in a fresh subprocess; returns the ratio."""
    store = work / "synthetic_store"
    total = args.rss_utterances * args.scale
    started = time.perf_counter()
    write_synthetic_store(store, total, args.rss_frames, args.rss_dim)
    size_mb = total * args.rss_frames * args.rss_dim * 2 / 2**20
    print(f"(b) synthetic store: {total} utterances × {args.rss_frames} frames × {args.rss_dim}-d fp16 = "
          f"{size_mb:.0f} MB, written in {time.perf_counter() - started:.1f} s")
    results = []
    for take in (args.rss_utterances, total):
        command = [sys.executable, __file__, "--part", "memory-child", "--store", str(store), "--take", str(take),
                   "--batch-size", str(args.batch_size)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"memory child failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = results[-1]
        print(f"    {row['utterances']:6d} utterances: epoch {row['seconds']:7.1f} s, "
              f"peak RSS {row['peak_rss_mb']:7.0f} MB, peak anonymous RSS {row['peak_anon_mb']:7.0f} MB")
    anon = results[1]["peak_anon_mb"] / results[0]["peak_anon_mb"]
    print(f"    anonymous-memory ratio {args.scale}× / 1×: {anon:.2f}")
    return results[1]["peak_rss_mb"] / results[0]["peak_rss_mb"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "time", "memory", "memory-child"), default="all")
    parser.add_argument("--encoder", help="local encoder folder (default: random wav2vec2-base architecture)")
    parser.add_argument("--utterances", type=int, default=48, help="(a) utterances per corpus")
    parser.add_argument("--seconds", type=float, default=3.0, help="(a) seconds per utterance")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rss-utterances", type=int, default=150, help="(b) utterances of the 1× run")
    parser.add_argument("--scale", type=int, default=10, help="(b) size of the large run, in multiples of 1×")
    parser.add_argument("--rss-frames", type=int, default=150, help="(b) frames per utterance (150 = 3 s)")
    parser.add_argument("--rss-dim", type=int, default=768, help="(b) feature dimension")
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--take", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.part == "memory-child":
        return peak_memory_child(args)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = pathlib.Path(tmp)
        ratios = {}
        if args.part in ("all", "time"):
            ratios["time"] = time_part(args, work)
        if args.part in ("all", "memory"):
            ratios["memory"] = memory_part(args, work)
    if "time" in ratios:
        print(f"epoch-time ratio, re-encoding / store: {ratios['time']:.1f}× (goal ≥ 20×)")
    if "memory" in ratios:
        print(f"peak-RSS ratio, {args.scale}× / 1× utterances: {ratios['memory']:.2f} (goal ≤ 1.2)")


if __name__ == "__main__":
    main()
