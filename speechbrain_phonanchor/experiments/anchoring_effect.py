"""Before / after anchoring: how alike the corpora's vowels are in the frozen features
versus in the trained model's segment embeddings (the paper's Table 6 and Figs. 5–6).

For one finished run, every inventory-vowel segment of the source validation set
and the target test set is read twice:

- **before**: the mean frozen-encoder frame of the segment (the feature store),
- **after**: the trained network's segment embedding (best checkpoint, evaluation
  mode, so the target attends to the prototype bank as at inference).

Both views use exactly the same segments; CS / ED / Com per emotion × vowel come
from :func:`~speechbrain_phonanchor.analysis.commonality.commonality_table`, so a
higher ``Com_after`` than ``Com_before`` means the training pulled the two
corpora's vowels together.  The emotions are the evaluation labels of those sets
(read here for analysis only, never in training).

Outputs in ``out_dir``: ``com_before_after.csv`` / ``.md``, ``commonality_before/``,
``commonality_after/`` (each ``commonality.csv`` / ``.md`` in the Table 2 layout),
``tsne_before.png``, ``tsne_after.png``, ``summary.json``.

Example
-------
>>> import pandas as pd
>>> before = pd.DataFrame({"emotion": ["neu"], "kind": ["mono"], "vowel": ["a"], "n_source": [3],
...                        "n_target": [4], "Com": [0.5], "excluded": [""]})
>>> compare_com(before, before.assign(Com=0.75))[["vowel", "Com_before", "Com_after", "delta"]].values.tolist()
[['a', 0.5, 0.75, 0.25]]
"""

import pathlib

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_phonanchor.analysis.commonality import SegmentSet, commonality_table, write_commonality
from speechbrain_phonanchor.analysis.report import markdown_table
from speechbrain_phonanchor.analysis.tsne import plot_tsne
from speechbrain_phonanchor.data import UtteranceDataset, collate_utterances, get_task
from speechbrain_phonanchor.experiments.grid import load_train_module
from speechbrain_phonanchor.features.store import FeatureStore
from speechbrain_phonanchor.fileio import atomic_write_json, atomic_write_text
from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.model.vowel_ids import NONE_ID
from speechbrain_phonanchor.phonetics import VOWELS


@torch.no_grad()
def segment_views(model, dataset, batch_size=16):
    """Frozen and trained features of every inventory-vowel segment of ``dataset``.

    Returns
    -------
    (SegmentSet, SegmentSet)
        ``before`` (mean store frame per segment) and ``after`` (the model's segment
        embeddings), row for row the same segments, labelled with the class names.
    """
    model.eval()
    frozen, trained, labels, vowels = [], [], [], []
    for start in range(0, len(dataset), batch_size):
        batch = collate_utterances([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        out = model(batch.frames, batch.lengths, batch.segments, batch.segment_mask)
        for b, s in (batch.segment_mask & (batch.vowels >= 0) & (batch.vowels < NONE_ID)).nonzero().tolist():
            first, last = batch.segments[b, s].tolist()
            frozen.append(batch.frames[b, first:last].mean(0).numpy())
            trained.append(out.segment_embeddings[b, s].numpy())
            labels.append(dataset.task.classes[int(batch.labels[b])])
            vowels.append(VOWELS[int(batch.vowels[b, s])])

    def stack(rows):
        return np.stack(rows) if rows else np.zeros((0, 1), np.float32)

    return SegmentSet(stack(frozen), labels, vowels), SegmentSet(stack(trained), labels, vowels)


def compare_com(before, after):
    """Join two commonality tables: ``Com_before``, ``Com_after`` and ``delta`` per emotion × vowel."""
    keys = ["emotion", "kind", "vowel", "n_source", "n_target"]
    joined = before[keys + ["Com", "excluded"]].merge(after[keys[:3] + ["Com"]], on=keys[:3],
                                                      suffixes=("_before", "_after"))
    joined["delta"] = joined["Com_after"] - joined["Com_before"]
    return joined


def load_run(run_dir):
    """The resolved hparams of a finished run (its ``hyperparams.yaml``) with the best checkpoint loaded."""
    run_dir = pathlib.Path(run_dir)
    with open(run_dir / "hyperparams.yaml", encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle)
    if hparams["checkpointer"].recover_if_possible(max_key="UAR") is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint to load")
    return hparams


def anchoring_effect(run_dir, out_dir, min_segments=10, tsne_points=300, seed=0):
    """Write the before/after Com tables and t-SNE plots of one run (see the module docstring).

    Returns
    -------
    dict
        Segment counts, mean Com before / after over the cells eligible in both, and the files written.
    """
    hparams = load_run(run_dir)
    train = load_train_module()
    task = get_task(hparams["task"])
    views = {}
    for side, split in (("source", "valid"), ("target", "test")):
        store = FeatureStore.open(train.store_path(hparams, side, split))
        manifest = load_manifest(train.manifest_path(hparams, side, split), resolve=False)
        data = UtteranceDataset(manifest, store, task, frame_rate=store.frame_rate, half_width=hparams["half_width"],
                                chunk_width=hparams["chunk_width"])
        views[side] = segment_views(hparams["model"], data)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"source": f"{hparams['source_name']} valid", "target": f"{hparams['target_name']} test"}
    tables = {}
    for index, moment in enumerate(("before", "after")):
        source, target = views["source"][index], views["target"][index]
        tables[moment] = commonality_table(source, target, min_segments=min_segments, emotions=list(task.classes))
        moment_dir = out_dir / f"commonality_{moment}"
        write_commonality(tables[moment], moment_dir)
        if len(source.features) and len(target.features):
            plot_tsne({names["source"]: source, names["target"]: target}, out_dir / f"tsne_{moment}.png",
                      max_points=tsne_points, seed=seed)
    joined = compare_com(tables["before"], tables["after"])
    atomic_write_text(out_dir / "com_before_after.csv", joined.to_csv(index=False, float_format="%.6f"))
    both = joined.dropna(subset=["Com_before", "Com_after"])
    rows = [[r.emotion, r.kind, r.vowel, f"{r.Com_before:.3f}", f"{r.Com_after:.3f}", f"{r.delta:+.3f}"]
            for r in both.itertuples()]
    atomic_write_text(out_dir / "com_before_after.md",
                      markdown_table(["emotion", "kind", "vowel", "Com before", "Com after", "Δ"], rows) + "\n")
    summary = {
        "run": str(run_dir), "variant": hparams["variant"], "vowel_kind": hparams["vowel_kind"],
        "segments": {side: len(views[side][0].vowels) for side in views}, "cells": len(both),
        "mean_com_before": float(both["Com_before"].mean()) if len(both) else None,
        "mean_com_after": float(both["Com_after"].mean()) if len(both) else None,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
