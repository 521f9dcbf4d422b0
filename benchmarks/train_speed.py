#!/usr/bin/env python3
"""Training-step speed of the AGA-CL model: the original set-up against the faster one.

Times the same AGA training steps (source frames attend to their target partners, target
frames attend to the prototype bank, cross-entropy + vowel triplet loss, backward, Adam)
of the model of ``hparams/generic_pair.yaml`` under five settings, side by side in one run:

- ``reference``: ``nn.MultiheadAttention`` over the padded frames, dropout 0.1 on the
  attention weights, fp32, plain shuffled batches (the code before the speed-up);
- ``+ real-frame projections``: the current ``CrossPhoneticAttention`` (only real frames
  projected), still with attention-weight dropout 0.1;
- ``+ attention_dropout 0``: the fused ``scaled_dot_product_attention`` kernel can run;
- ``+ length buckets``: batches of similar source length (``length_buckets: 8``);
- ``+ bf16``: ``--precision=bf16`` autocast (fast on CPUs with AVX-512 BF16 / AMX and on GPUs);
- ``+ sorted triplet sum``: the "all" triplet loss without the (anchors × sources × sources)
  tensor and the distances without the (anchors × sources × dim) difference tensor
  (:func:`~speechbrain_phonanchor.model.losses.all_triplets_sum`); before, the settings above
  use the brute-force versions kept here;
- ``+ fp32 attention kernel on CPU``: the fused attention kernel in fp32 under bf16 autocast
  (``attention.FP32_ON_CPU``; PyTorch's CPU kernel is slower in bf16).  On a GPU it changes
  nothing.

Frames are random fp16 with the lengths of the real stores when ``--source-store`` /
``--target-store`` are given (e.g. the Whisper-base stores of nEMO and EMOVO), otherwise
uniform 60–280 frames.  Prints seconds per step and the speed-up over ``reference``.

    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --steps 6
    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --source-store work/stores/whisper_base/nemo_pl/train \\
        --target-store work/stores/whisper_base/emovo_it/train --dim 512
"""

import argparse
import contextlib
import pathlib
import time

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_phonanchor.data import (
    EMOTIONS,
    LengthBucketBatchSampler,
    PairedDataset,
    UtteranceDataset,
    collate_pairs,
    get_task,
)
from speechbrain_phonanchor.model import attention as attention_module
from speechbrain_phonanchor.model import losses as losses_module
from speechbrain_phonanchor.model.attention import padding_mask

ROOT = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = ROOT / "hparams" / "generic_pair.yaml"
ANCHORS = {emotion: ["a", "i", "u"] for emotion in EMOTIONS}


def lengths_of(store_path, count, rng):
    """Frame counts of a real store's utterances, or ``count`` draws from 60–280."""
    if store_path:
        from speechbrain_phonanchor.features.store import FeatureStore

        store = FeatureStore.open(store_path)
        return [len(store[utt_id]) for utt_id in store]
    return rng.integers(60, 281, count).tolist()


def synthetic_dataset(lengths, dim, labelled, rng):
    """An in-memory store and manifest with a vowel every 0.25 s."""
    store, manifest = {}, {}
    for index, n_frames in enumerate(lengths):
        utt_id = f"u{index}"
        store[utt_id] = rng.standard_normal((n_frames, dim)).astype(np.float16)
        seconds = n_frames / 50.0
        vowels = [{"vowel": "aiu"[k % 3], "kind": "mono", "start": s, "end": s + 0.08}
                  for k, s in enumerate(np.arange(0.1, seconds - 0.1, 0.25))]
        manifest[utt_id] = {"emo": EMOTIONS[index % 4], "vowels": vowels}
    return UtteranceDataset(manifest, store, get_task("4class"), labelled=labelled)


def reference_forward(self, frames, lengths=None, paired=None, paired_lengths=None):
    """The attention as it was: ``nn.MultiheadAttention`` over every (padded) frame."""
    if paired is None:
        memory = self.prototypes()[0].to(frames.dtype).unsqueeze(0).expand(frames.shape[0], -1, -1)
        key_padding = None
    else:
        memory, key_padding = paired, padding_mask(paired_lengths, paired.shape[1])
    attended, _ = self.attention(frames, memory, memory, key_padding_mask=key_padding, need_weights=False)
    return self.norm(frames + self.dropout(attended))


def brute_force_euclidean(a, b, eps=1e-12):
    """The distances as they were: through an (N, M, E) difference tensor."""
    return ((a.unsqueeze(1) - b.unsqueeze(0)) ** 2).sum(dim=-1).clamp_min(eps).sqrt()


def brute_force_all_triplets(distances, positive, negative, margin):
    """The "all" triplet sum as it was: the whole (A, S, S) tensor of triplets."""
    losses = torch.relu(distances.unsqueeze(2) - distances.unsqueeze(1) + margin)
    valid = positive.unsqueeze(2) & negative.unsqueeze(1)
    return (losses * valid).sum(), int(valid.sum())


@contextlib.contextmanager
def implementations(setting):
    """Swap in the brute-force triplet sum and the bf16 CPU attention kernel for the settings before them."""
    saved = losses_module.euclidean, losses_module.all_triplets_sum, attention_module.FP32_ON_CPU
    if not setting["sorted_triplets"]:
        losses_module.euclidean, losses_module.all_triplets_sum = brute_force_euclidean, brute_force_all_triplets
    attention_module.FP32_ON_CPU = setting["fp32_cpu_attention"]
    try:
        yield
    finally:
        losses_module.euclidean, losses_module.all_triplets_sum, attention_module.FP32_ON_CPU = saved


def build(dim, seed=0):
    """Model, triplet loss and optimiser of the recipe, seeded."""
    torch.manual_seed(seed)
    with open(HPARAMS, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, {"input_size": dim, "seed": seed})
    loss = hparams["adapt_loss"]
    loss.set_anchors(ANCHORS, EMOTIONS)
    return hparams["model"], hparams["prototypes"], loss


def synchronize(device):
    """Wait for the device's queued work (CUDA runs asynchronously), so the clock measures it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(pairs, batches, dim, setting, steps, device="cpu"):
    """Seconds per training step of ``setting`` over the first ``steps`` batches (one warm-up step first)."""
    model, prototypes, triplet = build(dim)
    prototypes.fit(pairs.target.prototype_source())
    model.to(device)
    attention = model.attention
    attention.attention.dropout = 0.0 if setting["attention_dropout0"] else 0.1
    attention.forward = (reference_forward if setting["reference"] else type(attention).forward).__get__(attention)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    seconds = []
    for batch in batches[:steps + 1]:
        synchronize(device)
        started = time.perf_counter()
        batch = batch.to(device)
        source, target = batch.source, batch.target
        bf16 = (torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if setting["bf16"]
                else contextlib.nullcontext())
        with bf16:
            out = model(source.frames, source.lengths, source.segments, source.segment_mask,
                        target.frames, target.lengths)
            target_out = model(target.frames, target.lengths, target.segments, target.segment_mask)
            pseudo = target_out.logits.argmax(-1).detach()
            loss = torch.nn.functional.cross_entropy(out.logits.float(), source.labels) + 0.5 * triplet(
                target_out.segment_embeddings.float(), target.vowels, target.segment_mask, pseudo,
                out.segment_embeddings.float(), source.vowels, source.segment_mask, source.labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return float(np.mean(seconds[1:]))


def make_batches(pairs, batch_size, buckets, seed):
    """Collated batches of one epoch: length-bucketed, or a plain seeded shuffle."""
    if buckets:
        order = list(LengthBucketBatchSampler(pairs.source_lengths(), batch_size, seed=seed))
    else:
        permutation = np.random.default_rng(seed).permutation(len(pairs)).tolist()
        order = [permutation[i:i + batch_size] for i in range(0, len(pairs), batch_size)]
    return [collate_pairs([pairs[i] for i in indices]) for indices in order]


def setting_flags(**changes):
    """The flags of one setting: the current code with ``changes``."""
    flags = dict(reference=False, attention_dropout0=True, buckets=True, bf16=True, sorted_triplets=True,
                 fp32_cpu_attention=True)
    return {**flags, **changes}


OLD = dict(sorted_triplets=False, fp32_cpu_attention=False)
SETTINGS = [
    ("reference", setting_flags(reference=True, attention_dropout0=False, buckets=False, bf16=False, **OLD)),
    ("+ real-frame projections", setting_flags(attention_dropout0=False, buckets=False, bf16=False, **OLD)),
    ("+ attention_dropout 0", setting_flags(buckets=False, bf16=False, **OLD)),
    ("+ length buckets", setting_flags(bf16=False, **OLD)),
    ("+ bf16", setting_flags(**OLD)),
    ("+ sorted triplet sum", setting_flags(fp32_cpu_attention=False)),
    ("+ fp32 attention kernel on CPU", setting_flags()),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source-store", help="real store whose utterance lengths the source copies")
    parser.add_argument("--target-store", help="real store whose utterance lengths the target copies")
    parser.add_argument("--utterances", type=int, default=512, help="utterances per side without real stores")
    parser.add_argument("--dim", type=int, default=512, help="frame dimension")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting")
    parser.add_argument("--no-bf16", action="store_true", help="leave out bf16 (CPUs without fast bf16)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    source = synthetic_dataset(lengths_of(args.source_store, args.utterances, rng), args.dim, True, rng)
    target = synthetic_dataset(lengths_of(args.target_store, args.utterances, rng), args.dim, False, rng)
    pairs = PairedDataset(source, target, seed=0)
    batches = {buckets: make_batches(pairs, args.batch_size, buckets, seed=1) for buckets in (False, True)}
    print(f"{len(source)} source / {len(target)} target utterances, {args.dim}-d, batch {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s), {args.steps} timed steps per setting, on {args.device}")
    reference = None
    for name, setting in SETTINGS:
        if setting["bf16"] and args.no_bf16:
            continue
        with implementations(setting):
            seconds = time_steps(pairs, batches[setting["buckets"]], args.dim, setting, args.steps, args.device)
        reference = reference or seconds
        print(f"{name:32s} {seconds:7.3f} s/step   speed-up ×{reference / seconds:5.2f}")


if __name__ == "__main__":
    main()
