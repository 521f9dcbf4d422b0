#!/usr/bin/env python3
"""Train an AGA-CL cross-lingual speech emotion recogniser on a source/target corpus pair.

    python train.py hparams/generic_pair.yaml [--variant=AGA --vowel_kind=both --task=4class ...]
    torchrun --nproc_per_node=2 train.py hparams/generic_pair.yaml   # DDP

Stages, each skipped when its artefact exists: prepare the manifests of both
corpora (``prepare_source`` / ``prepare_target``) → extract the frozen-encoder
feature stores of the splits needed → (variants other than CL) analyse the
validation subsets into ``anchors.yaml`` → train on labelled source + unlabelled
target with early stopping on source-validation UAR → evaluate the best
checkpoint on the target test set, writing per-utterance predictions.

Target labels are read only by the evaluation on the target test set and, with
``target_labels: analysis_subset``, for the small analysis subset.

Two reference variants share the same features, network and harness:

- ``variant=DANN``: no triplet loss; a domain discriminator on the utterance
  embeddings of the source and target halves of each batch, behind gradient
  reversal (``dann_weight`` · L_domain);
- ``variant=in-domain``: the upper bound, trained on the *target's* own labels
  (target train), selected on target valid and tested on target test.

The run's numbers and settings go to ``metrics_file`` (``<output_folder>/metrics.json``),
which the grid runner (``phonanchor-grid``) collects.  Keys added after the first
recipes (``dann_weight``, ``discriminator_hidden``, ``domain_discriminator``,
``metrics_file``, ``pseudo_selection``, ``pseudo_fraction``, ``length_buckets``, ``whisper_window``) are optional:
a recipe yaml without them gets :data:`OPTIONAL` (the pseudo-label keys: the values its ``pseudo_labeler``
was built with, i.e. :class:`~speechbrain_phonanchor.model.PseudoLabeler`'s defaults).

Target pseudo-labels (``target_labels: pseudo``) start after ``warmup_epochs``; by default
(``pseudo_selection: top_fraction``) each target batch keeps, per predicted class, the most
confident ``pseudo_fraction`` (at least one) of the utterances predicted as that class;
``pseudo_selection: threshold`` keeps predictions whose softmax maximum is ``>= pseudo_threshold``;
``pseudo_selection: balanced`` gives every class the same number of target utterances per batch.
Each epoch's adaptation counts (pseudo-labelled target utterances, their classes, triplets,
batches without a triplet) are logged and written to ``metrics.json`` under ``adaptation``.
"""

import collections
import csv
import logging
import pathlib
import sys
import time

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_phonanchor.analysis import load_anchors
from speechbrain_phonanchor.analysis.subset import draw_subset
from speechbrain_phonanchor.brain import PhonAnchorBrain
from speechbrain_phonanchor.data import (
    LengthBucketBatchSampler,
    PairedDataset,
    UtteranceDataset,
    collate_pairs,
    collate_utterances,
    get_task,
)
from speechbrain_phonanchor.features.encoders import DEFAULT_WHISPER_WINDOW
from speechbrain_phonanchor.features.extraction import build_store
from speechbrain_phonanchor.features.store import FeatureStore
from speechbrain_phonanchor.fileio import atomic_write_json
from speechbrain_phonanchor.manifest import load_manifest
from speechbrain_phonanchor.model.dann import DomainDiscriminator
from speechbrain_phonanchor.model.schedule import AdaptationSchedule

logger = logging.getLogger(__name__)
ANCHORED = ("BA", "WA", "GA", "AGA")
VARIANTS = ("CL",) + ANCHORED + ("DANN", "in-domain")
OPTIONAL = {"dann_weight": 1.0, "discriminator_hidden": 128, "domain_discriminator": None, "metrics_file": None,
            "pseudo_selection": None, "pseudo_fraction": None, "align_source": False, "align_target": False,
            "length_buckets": 0, "whisper_window": DEFAULT_WHISPER_WINDOW,
            # adaptation schedule and guards (absent from older yamls: the paper's schedule, nothing guarded)
            "adapt_min_steps": 0, "adapt_min_uar_margin": None, "adapt_ramp_steps": 0, "pseudo_fraction_start": None,
            "collapse_share": 1.0, "adapt_cap": 0.0, "select_adapted": False, "run_label": ""}
CHANCE_MARGIN = 0.05  # a best source-valid UAR within this of chance: the run did not learn (flagged loudly)
LABELER_KEYS = {"pseudo_selection": "selection", "pseudo_fraction": "fraction"}


def fill_optional(hparams):
    """Give keys a recipe yaml may lack their defaults (:data:`OPTIONAL`; metrics next to the outputs).

    ``pseudo_selection`` / ``pseudo_fraction`` missing from the yaml take the values of the
    ``pseudo_labeler`` the yaml built (its defaults), so metrics.json reports what was used.
    """
    for key, value in OPTIONAL.items():
        hparams.setdefault(key, value)
    if hparams["metrics_file"] is None:
        hparams["metrics_file"] = str(pathlib.Path(hparams["output_folder"]) / "metrics.json")
    for key, attribute in LABELER_KEYS.items():
        if hparams[key] is None:
            hparams[key] = getattr(hparams["pseudo_labeler"], attribute)


def manifest_path(hparams, side, split):
    """``<manifest_folder>/<corpus name>/<split>.json``."""
    return pathlib.Path(hparams["manifest_folder"]) / hparams[f"{side}_name"] / f"{split}.json"


def store_path(hparams, side, split):
    """``<feature_folder>/<corpus name>/<split>``."""
    return pathlib.Path(hparams["feature_folder"]) / hparams[f"{side}_name"] / split


def needed_splits(hparams):
    """The (side, split) pairs whose features this run reads (in-domain: the target's only)."""
    if hparams["variant"] == "in-domain":
        return [("target", "train"), ("target", "valid"), ("target", "test")]
    # target valid: anchors analysis, analysis subset, and the transductive score of every run
    return [("source", "train"), ("source", "valid"), ("target", "train"), ("target", "test"), ("target", "valid")]


def extract_features(hparams):
    """Build (or resume, or just check) the feature store of every needed split."""
    for side, split in needed_splits(hparams):
        build_store(manifest_path(hparams, side, split), hparams["encoder_source"], store_path(hparams, side, split),
                    layer=hparams["encoder_layer"], device=hparams["extract_device"],
                    whisper_window=hparams["whisper_window"])


def analyse(hparams):
    """Write ``anchors.yaml`` from the validation subsets unless it exists."""
    anchors_file = pathlib.Path(hparams["anchors_file"])
    if anchors_file.is_file() or hparams["variant"] not in ANCHORED:
        return
    from speechbrain_phonanchor.analysis.cli import main as analyse_main

    analyse_main([
        "--source", str(manifest_path(hparams, "source", "valid")),
        "--target", str(manifest_path(hparams, "target", "valid")),
        "--source-store", str(store_path(hparams, "source", "valid")),
        "--target-store", str(store_path(hparams, "target", "valid")),
        "--source-name", hparams["source_name"], "--target-name", hparams["target_name"],
        "--per-emotion", str(hparams["analysis_per_emotion"]), "--seed", str(hparams["analysis_seed"]),
        "--half-width", str(hparams["half_width"]), "--out", str(anchors_file.parent),
    ])


def open_dataset(hparams, task, side, split, labelled=True, manifest=None):
    """The :class:`UtteranceDataset` of one corpus split (``manifest``: a subset of its entries)."""
    store = FeatureStore.open(store_path(hparams, side, split))
    manifest = manifest if manifest is not None else load_manifest(manifest_path(hparams, side, split), resolve=False)
    data = UtteranceDataset(manifest, store, task, labelled=labelled, frame_rate=store.frame_rate,
                            half_width=hparams["half_width"], chunk_width=hparams["chunk_width"])
    logger.info("%s %s: %d utterances, left out %s", side, split, len(data), dict(data.skipped))
    return data


def dataio_prep(hparams, task):
    """Return the paired train set, source valid set, target test set and the target train set."""

    def dataset(side, split, labelled=True, manifest=None):
        return open_dataset(hparams, task, side, split, labelled, manifest)

    target_train = dataset("target", "train", labelled=False)
    if hparams["variant"] == "in-domain":
        train = PairedDataset(dataset("target", "train"), target_train, seed=hparams["seed"])
        return train, dataset("target", "valid"), dataset("target", "test"), target_train
    partners = target_train
    if hparams["target_labels"] == "analysis_subset":
        valid = load_manifest(manifest_path(hparams, "target", "valid"), resolve=False)
        subset = draw_subset(valid, hparams["analysis_per_emotion"], hparams["analysis_seed"])
        partners = dataset("target", "valid", labelled=True, manifest=subset.entries)
    train = PairedDataset(dataset("source", "train"), partners, seed=hparams["seed"])
    return train, dataset("source", "valid"), dataset("target", "test"), target_train


def train_loader_options(hparams, train_set):
    """DataLoader options of the paired train set: batches of similar source length drawn from
    shuffled pools of ``length_buckets`` batches (less padding), or a plain shuffle when it is 0
    or under DDP (SpeechBrain's distributed wrapper does not take batch samplers)."""
    options = dict(hparams["loader_options"], collate_fn=collate_pairs)
    if not hparams["length_buckets"] or sb.utils.distributed.is_distributed_initialized():
        return dict(options, shuffle=True)
    batch_size = options.pop("batch_size", 1)
    sampler = LengthBucketBatchSampler(train_set.source_lengths(), batch_size, seed=hparams["seed"],
                                       pool_batches=hparams["length_buckets"])
    return dict(options, batch_sampler=sampler)


def configure_adaptation(hparams, task):
    """Set the adaptation of the variant: triplet anchors (BA/WA/GA/AGA), the domain
    discriminator (DANN), or none (CL, in-domain).  Returns the extra modules."""
    variant = hparams["variant"]
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant != "DANN":
        hparams["dann_weight"] = 0.0
    if variant not in ANCHORED:
        hparams["adapt_weight"] = 0.0
    if variant == "DANN":
        discriminator = hparams["domain_discriminator"] or DomainDiscriminator(hparams["d_model"],
                                                                                 hparams["discriminator_hidden"])
        hparams["checkpointer"].add_recoverable("discriminator", discriminator)
        logger.info("DANN: domain discriminator on utterance embeddings, weight %s", hparams["dann_weight"])
        return {"discriminator": discriminator}
    if variant not in ANCHORED:
        return {}
    margin = hparams["adapt_min_uar_margin"]
    hparams["adaptation_schedule"] = AdaptationSchedule(
        warmup_epochs=hparams["warmup_epochs"], min_steps=hparams["adapt_min_steps"],
        min_uar=None if margin is None else 1.0 / len(task.classes) + margin, ramp_steps=hparams["adapt_ramp_steps"],
        fraction_start=hparams["pseudo_fraction_start"], fraction_end=hparams["pseudo_fraction"])
    hparams["pseudo_label_folder"] = str(pathlib.Path(hparams["output_folder"]) / "pseudo_labels")
    logger.info("%s", hparams["adaptation_schedule"].describe())
    emotion_anchors = load_anchors(hparams["anchors_file"], variant, hparams["vowel_kind"])
    anchors = task.anchors(emotion_anchors)
    hparams["adapt_loss"].set_anchors(anchors, task.classes)
    logger.info("anchors (%s, %s, weight %s): %s", variant, hparams["vowel_kind"], hparams["adapt_weight"], anchors)
    logger.info("target classes: %s", hparams["pseudo_labeler"].describe())
    return {}


def align_stage(hparams):
    """Built-in alignment when asked: ``align_<side>: True`` aligns that corpus (generic layout,
    ``metadata.csv`` with transcripts) into ``<side>_textgrid_folder`` with ``phonanchor-align``'s
    library form, training the aligner on the corpus itself (model in ``<folder>/model``).

    Resumable: TextGrids already written are kept and a saved model is reused, so a rerun
    costs only the check.
    """
    from speechbrain_phonanchor.align import align_corpus

    for side, asked in (("source", hparams["align_source"]), ("target", hparams["align_target"])):
        if not asked:
            continue
        folder = hparams[f"{side}_textgrid_folder"]
        if folder is None:
            raise ValueError(f"align_{side}: True needs {side}_textgrid_folder (where the TextGrids go)")
        report = align_corpus(hparams[f"{side}_data_folder"], hparams[f"{side}_language"], folder)
        logger.info("%s: %d of %d utterances aligned", hparams[f"{side}_name"], report["aligned"], report["utterances"])


def prepare_stage(hparams):
    """Every artefact a run reads: TextGrids (when asked), manifests, feature stores, and
    (anchored variants) the anchors file.

    The grid runner calls this once before starting runs in parallel, so runs only read them.
    """
    run_on_main(align_stage, args=[hparams])
    if not hparams["skip_prep"]:
        run_on_main(hparams["prepare_source"])
        run_on_main(hparams["prepare_target"])
    run_on_main(extract_features, args=[hparams])
    run_on_main(analyse, args=[hparams])


def score_transductive(hparams, brain, task, eval_options):
    """UAR of the selected model over every target utterance (train + valid + test).

    The transductive protocol of unsupervised domain adaptation: the target labels are read
    here only to score, after training.  With ``target_labels: analysis_subset`` the analysis
    subset (whose labels training used) is left out.  Per-utterance predictions go to
    ``target_all_predictions.csv``.  Returns ``(uar, n)``; ``(None, 0)`` for in-domain runs,
    which trained on the target train labels.
    """
    if hparams["variant"] == "in-domain":
        return None, 0
    valid = load_manifest(manifest_path(hparams, "target", "valid"), resolve=False)
    if hparams["target_labels"] == "analysis_subset":  # its labels were used in training: not scored
        used = set(draw_subset(valid, hparams["analysis_per_emotion"], hparams["analysis_seed"]).entries)
        valid = {utt: entry for utt, entry in valid.items() if utt not in used}
    parts = [open_dataset(hparams, task, "target", "train"), open_dataset(hparams, task, "target", "test")]
    if valid:
        parts.append(open_dataset(hparams, task, "target", "valid", manifest=valid))
    every = torch.utils.data.ConcatDataset(parts)
    test_predictions = brain.hparams.predictions_file
    brain.hparams.predictions_file = str(pathlib.Path(hparams["output_folder"]) / "target_all_predictions.csv")
    try:
        brain.evaluate(every, max_key="selection_uar", test_loader_kwargs=eval_options, progressbar=False)
    finally:
        brain.hparams.predictions_file = test_predictions
    return brain.last_stats["UAR"], len(every)


def score_pseudo_labels(hparams, task):
    """Accuracy of each epoch's saved pseudo-labels against the target train labels (read only now).

    Returns one record per epoch file in ``pseudo_label_folder``: ``epoch``, ``n`` (labelled
    utterance-batches), ``accuracy``, ``largest_share`` (share of the most frequent class).
    """
    folder = pathlib.Path(hparams.get("pseudo_label_folder") or "")
    if not hparams.get("pseudo_label_folder") or not folder.is_dir():
        return []
    truth = {}
    for split in ("train", "valid"):  # partners: target train (pseudo) or the valid analysis subset
        for utt, entry in load_manifest(manifest_path(hparams, "target", split), resolve=False).items():
            truth[utt] = task.label(entry)
    records = []
    for path in sorted(folder.glob("epoch_*.csv")):
        with open(path, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        scored = [row for row in rows if truth.get(row["id"]) is not None]
        counts = collections.Counter(row["pseudo_label"] for row in rows)
        records.append({
            "epoch": int(path.stem.split("_")[1]), "n": len(rows),
            "accuracy": (sum(truth[row["id"]] == row["pseudo_label"] for row in scored) / len(scored)
                         if scored else None),
            "largest_share": max(counts.values()) / len(rows) if rows else None,
        })
    return records


def adaptation_budget(brain):
    """How many optimiser steps anchoring acted for; warns loudly when it was fewer than its ramp.

    Returns ``{"optimizer_steps", "adapted_steps", "adaptation_short"}``.  A run whose gate never
    opened, or opened so late that the ramp did not finish, measured (almost) no anchoring: a
    budget in epochs is too short when an epoch holds few batches (a small source or partner set).
    """
    steps, schedule = int(brain.optimizer_step), brain.schedule
    adapted = 0 if schedule.opened_step is None else steps - schedule.opened_step
    short = adapted < max(schedule.ramp_steps, 1)
    if short:
        logger.warning("!" * 80 + "\nAnchoring acted for %d of %d optimiser steps (gate opened at step %s; the "
                       "ramp takes %d): this run measured (almost) no anchoring. Count the budget in steps: raise "
                       "number_of_epochs (%d steps per epoch here).\n" + "!" * 80, adapted, steps,
                       schedule.opened_step, schedule.ramp_steps,
                       steps // max(brain.hparams.epoch_counter.current, 1))
    return {"optimizer_steps": steps, "adapted_steps": adapted, "adaptation_short": short}


def write_metrics(hparams, brain, task, train_set, valid_set, test_set, epochs_run, wall_time, extra=None):
    """Write the run's numbers and settings to ``hparams["metrics_file"]`` (JSON)."""
    best = brain.checkpointer.find_checkpoint(max_key="selection_uar")
    metrics = {
        "target_test_uar": brain.last_stats["UAR"], "target_test_loss": float(brain.last_stats["loss"]),
        "valid_uar": best.meta["UAR"] if best else None, "best_epoch": best.meta.get("epoch") if best else None,
        "epochs": epochs_run, "wall_time_s": round(wall_time, 3),
        "valid_set": "target valid" if hparams["variant"] == "in-domain" else "source valid",
        "n_train": len(train_set.source), "n_valid": len(valid_set), "n_test": len(test_set),
        "source": hparams["source_name"], "target": hparams["target_name"], "task": task.name,
        "variant": hparams["variant"], "vowel_kind": hparams["vowel_kind"], "seed": hparams["seed"],
        "encoder": hparams["encoder_name"], "encoder_source": str(hparams["encoder_source"]),
        "encoder_layer": hparams["encoder_layer"], "whisper_window": hparams["whisper_window"],
        "lr": hparams["lr"], "weight_decay": hparams["weight_decay"],
        "batch_size": hparams["batch_size"], "number_of_epochs": hparams["number_of_epochs"],
        "patience": hparams["patience"], "adapt_weight": hparams["adapt_weight"],
        "dann_weight": hparams["dann_weight"], "margin": hparams["margin"], "target_labels": hparams["target_labels"],
        "pseudo_selection": hparams["pseudo_selection"], "pseudo_fraction": hparams["pseudo_fraction"],
        "pseudo_threshold": hparams["pseudo_threshold"], "warmup_epochs": hparams["warmup_epochs"],
        "adapt_min_steps": hparams["adapt_min_steps"], "adapt_min_uar_margin": hparams["adapt_min_uar_margin"],
        "adapt_ramp_steps": hparams["adapt_ramp_steps"], "pseudo_fraction_start": hparams["pseudo_fraction_start"],
        "collapse_share": hparams["collapse_share"], "adapt_cap": hparams["adapt_cap"],
        "select_adapted": hparams["select_adapted"], "run_label": hparams["run_label"],
        "adaptation_started": brain.schedule.state() if brain.anchoring else None,
        "adaptation": getattr(brain, "adaptation_history", []),
        **(extra or {}),
        "predictions_file": str(hparams["predictions_file"]), "output_folder": str(hparams["output_folder"]),
    }
    atomic_write_json(hparams["metrics_file"], metrics)
    return metrics


def main(argv):
    started = time.time()
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    fill_optional(hparams)
    task = get_task(hparams["task"])
    hparams["classes"] = task.classes
    prepare_stage(hparams)

    label_encoder = sb.dataio.encoder.CategoricalEncoder()
    label_encoder.load_or_create(pathlib.Path(hparams["save_folder"]) / "label_encoder.txt",
                                 from_iterables=[task.classes])
    if [label_encoder.ind2lab[i] for i in range(len(label_encoder))] != list(task.classes):
        raise ValueError(f"{hparams['save_folder']}/label_encoder.txt does not list {task.classes} in order")
    extra_modules = configure_adaptation(hparams, task)
    train_set, valid_set, test_set, target_train = dataio_prep(hparams, task)
    hparams["prototypes"].fit(target_train.prototype_source())

    brain = PhonAnchorBrain(
        modules=dict(hparams["modules"], **extra_modules),
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    train_options = train_loader_options(hparams, train_set)
    eval_options = dict(hparams["loader_options"], collate_fn=collate_utterances)
    brain.fit(brain.hparams.epoch_counter, train_set, valid_set,
              train_loader_kwargs=train_options, valid_loader_kwargs=eval_options)
    epochs_run = brain.hparams.epoch_counter.current  # evaluate() reloads the best checkpoint's counter
    adapted = adaptation_budget(brain) if brain.anchoring else {}  # before evaluate() reloads a checkpoint
    final_valid_uar = getattr(brain, "last_valid_uar", None)
    brain.evaluate(test_set, max_key="selection_uar", test_loader_kwargs=eval_options)
    hparams["train_logger"].log_stats(stats_meta={"Epoch loaded": brain.hparams.epoch_counter.current,
                                                  "target test predictions": hparams["predictions_file"]},
                                      test_stats=brain.last_stats)
    uar, test_loss = brain.last_stats["UAR"], brain.last_stats["loss"]
    transductive_uar, transductive_n = score_transductive(hparams, brain, task, eval_options)
    brain.last_stats = {"UAR": uar, "loss": test_loss}
    extra = {"target_transductive_uar": transductive_uar, "target_transductive_n": transductive_n,
             "source_valid_uar_final": final_valid_uar, "pseudo_label_accuracy": score_pseudo_labels(hparams, task)}
    extra.update(adapted)
    chance = 1.0 / len(task.classes)
    best = brain.checkpointer.find_checkpoint(max_key="selection_uar")
    extra["source_at_chance"] = bool(best is None or best.meta["UAR"] <= chance + CHANCE_MARGIN)
    if extra["source_at_chance"]:
        logger.warning("!" * 80 + "\nThe model did NOT learn the labelled %s data: its best %s UAR is %s "
                       "(chance %.2f). Its target numbers mean nothing; see the train log.\n" + "!" * 80,
                       hparams["source_name"], "valid", None if best is None else round(best.meta["UAR"], 4), chance)
    if sb.utils.distributed.if_main_process():
        write_metrics(hparams, brain, task, train_set, valid_set, test_set, epochs_run, time.time() - started, extra)
    print(f"target test UAR ({hparams['variant']}, {hparams['vowel_kind']}, {task.name}): {uar:.4f}"
          + ("" if transductive_uar is None else f"; transductive UAR over {transductive_n} target utterances: "
             f"{transductive_uar:.4f}"))
    return brain


if __name__ == "__main__":
    main(sys.argv[1:])
