"""End-to-end: train.py on a tiny generated corpus pair with a tiny random encoder."""

import csv
import json
import pathlib
import re
import sys

import pytest
from pair_fixtures import EMOTIONS, HPARAMS, ROOT, as_arguments, make_pair, run_train, tiny_settings


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("pair"))


def run(pair, out, **overrides):
    return run_train(pair, out, **overrides)


def predictions(brain):
    with open(brain.hparams.predictions_file, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def valid_uars(brain):
    log = pathlib.Path(brain.hparams.train_log).read_text(encoding="utf-8")
    return re.findall(r"valid loss: [^,]+, valid UAR: ([0-9.e-]+)", log)


def test_two_epochs_train_adapt_and_write_predictions(pair):
    brain = run(pair, "aga")
    rows = predictions(brain)
    assert sorted(row["id"] for row in rows) == sorted(f"tgt_test_{i}" for i in range(8))
    assert {row["prediction"] for row in rows} <= set(EMOTIONS)
    assert all(abs(sum(float(row[f"p_{e}"]) for e in EMOTIONS) - 1) < 1e-4 for row in rows)
    assert len(valid_uars(brain)) == 2
    loss = brain.hparams.adapt_loss
    assert loss.n_batches == 4 and loss.n_empty_batches < loss.n_batches  # triplets were formed
    assert brain.modules.model.attention.prototypes.is_fitted
    labels = (pathlib.Path(brain.hparams.save_folder) / "label_encoder.txt").read_text(encoding="utf-8")
    assert all(f"'{e}' =>" in labels for e in EMOTIONS)


def test_same_seed_same_uar_and_resume_matches(pair):
    first = run(pair, "aga")  # finished run: resumes at its end and only re-evaluates
    again = run(pair, "aga_again")
    assert valid_uars(again) == valid_uars(first)
    assert predictions(again) == predictions(first)

    run(pair, "aga_resumed", number_of_epochs=1)
    resumed = run(pair, "aga_resumed", number_of_epochs=2)
    assert valid_uars(resumed) == valid_uars(first)
    assert predictions(resumed) == predictions(first)
    assert resumed.adaptation_history == first.adaptation_history  # epoch 1's counts came from the checkpoint


def test_top_fraction_adapts_after_warmup_and_reports_it(pair):
    """With the paper's selection, a model far from confident still forms triplets once warm-up ends;
    the per-epoch counts reach train_log and metrics.json."""
    brain = run(pair, "top_fraction", warmup_epochs=1, pseudo_threshold=0.99, pseudo_selection="top_fraction",
                collapse_share=1.0)  # threshold unused by top_fraction
    hparams = brain.hparams
    assert (hparams.pseudo_selection, hparams.pseudo_fraction) == ("top_fraction", 0.5)
    warmup, adapting = brain.adaptation_history
    assert warmup["epoch"] == 1 and not warmup["active"]
    assert warmup["target_pseudo_labelled"] == warmup["triplets"] == 0
    assert warmup["empty_triplet_batches"] == warmup["adapt_batches"] == 2 and warmup["adapt_loss"] == 0.0
    assert adapting["epoch"] == 2 and adapting["active"] and adapting["target_seen"] == 16
    # two batches of 8 target utterances: at least one and at most half (+1 per class) of each predicted class
    assert 2 <= adapting["target_pseudo_labelled"] <= 8 + 2 * 4
    assert sum(adapting["target_pseudo_classes"].values()) == adapting["target_pseudo_labelled"]
    assert adapting["triplets"] > 0 and adapting["empty_triplet_batches"] < 2 and adapting["adapt_loss"] > 0
    log = pathlib.Path(hparams.train_log).read_text(encoding="utf-8")
    assert "target_pseudo_classes: neu=" in log and "triplets: " in log and "empty_triplet_batches: 2" in log
    metrics = json.loads(pathlib.Path(hparams.metrics_file).read_text(encoding="utf-8"))
    assert metrics["pseudo_selection"] == "top_fraction" and metrics["adaptation"] == brain.adaptation_history


def test_recipe_without_the_pseudo_selection_keys_reports_the_labelers_defaults():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from speechbrain_phonanchor.model import PseudoLabeler
    from train import fill_optional

    hparams = {"output_folder": "out", "pseudo_labeler": PseudoLabeler(threshold=0.9)}  # an older recipe
    fill_optional(hparams)
    assert (hparams["pseudo_selection"], hparams["pseudo_fraction"]) == ("top_fraction", 0.5)


def test_threshold_selection_stays_available(pair):
    brain = run(pair, "threshold", pseudo_selection="threshold", pseudo_threshold=1.0, number_of_epochs=1)
    (epoch,) = brain.adaptation_history
    assert brain.hparams.pseudo_labeler.selection == "threshold"
    assert epoch["target_pseudo_labelled"] == epoch["triplets"] == 0 and epoch["empty_triplet_batches"] == 2


def test_cl_variant_trains_without_adaptation(pair):
    brain = run(pair, "cl", variant="CL", number_of_epochs=1)
    assert brain.hparams.adapt_weight == 0.0 and brain.hparams.adapt_loss.n_batches == 0
    assert len(predictions(brain)) == 8


def test_length_buckets_train_on_bucketed_batches_and_resume_the_same(pair):
    first = run(pair, "buckets", length_buckets=2)
    assert type(first.batch_sampler).__name__ == "LengthBucketBatchSampler"
    assert first.steps_per_epoch == len(first.batch_sampler)
    run(pair, "buckets_resumed", length_buckets=2, number_of_epochs=1)
    resumed = run(pair, "buckets_resumed", length_buckets=2, number_of_epochs=2)
    assert valid_uars(resumed) == valid_uars(first) and predictions(resumed) == predictions(first)


def test_every_yaml_key_is_used_by_train_py():
    """The rule of SpeechBrain's check_yaml_vs_script: a top-level key not !ref'd in the yaml appears in train.py."""
    script = (ROOT / "train.py").read_text(encoding="utf-8")
    text = HPARAMS.read_text(encoding="utf-8")
    keys = [line.split(":")[0] for line in text.splitlines() if re.match(r"^[A-Za-z_]\w*:", line)]
    referenced = set(re.findall(r"<(\w+)[>\[]", text))
    unused = [key for key in keys if key not in referenced and "!apply" not in text.split(f"\n{key}:")[1].split("\n")[0]
              and f'["{key}"]' not in script and f"hparams.{key}" not in script]
    assert unused == []
    assert re.search(r"^\s*\w+: (true|false|yes|no|on|off)\s*(#.*)?$", text, re.M) is None  # booleans are True/False


def test_torchrun_two_processes_on_cpu(pair):
    import os
    import subprocess

    settings = tiny_settings(pair, "ddp", number_of_epochs=1, warmup_epochs=5, pseudo_threshold=0.9, seed=1986)
    command = [str(pathlib.Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2",
               str(ROOT / "train.py"),
               str(HPARAMS), "--device=cpu", "--distributed_backend=gloo"]
    command += as_arguments(settings)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("target test UAR (AGA, mono, 4class)") == 2  # both ranks finish
    rows = csv.DictReader((pair / "ddp" / "target_test_predictions.csv").read_text(encoding="utf-8").splitlines())
    assert len(list(rows)) == 8


def test_align_stage_aligns_only_the_sides_asked_for(monkeypatch, tmp_path):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import speechbrain_phonanchor.align as align
    from train import align_stage

    calls = []
    monkeypatch.setattr(align, "align_corpus", lambda *args: calls.append(args) or {"aligned": 3, "utterances": 4})
    hparams = {
        "align_source": False, "align_target": True, "target_name": "it",
        "target_data_folder": "corpus_it", "target_language": "it", "target_textgrid_folder": str(tmp_path / "tg"),
    }  # fmt: skip
    align_stage(hparams)
    assert calls == [("corpus_it", "it", str(tmp_path / "tg"))]
    hparams["target_textgrid_folder"] = None
    with pytest.raises(ValueError, match="target_textgrid_folder"):
        align_stage(hparams)


def test_the_gate_waits_for_learning_and_the_run_reports_it(pair):
    """With a gate the source model cannot pass (a UAR above 1), no triplet is formed, nothing is selected
    as anchored, and metrics.json says so; every target utterance is scored transductively."""
    brain = run(pair, "gated", adapt_min_uar_margin=0.9, number_of_epochs=2)
    assert not brain.schedule.is_open
    assert all(not epoch["active"] and epoch["triplets"] == 0 for epoch in brain.adaptation_history)
    metrics = json.loads(pathlib.Path(brain.hparams.metrics_file).read_text(encoding="utf-8"))
    assert metrics["adaptation_started"] == {"opened_epoch": None, "opened_step": None}
    assert metrics["pseudo_label_accuracy"] == []
    n_target = sum(len(json.loads((pair / "manifests" / "tgt" / f"{split}.json").read_text()))
                   for split in ("train", "valid", "test"))
    assert metrics["target_transductive_n"] == n_target and 0.0 <= metrics["target_transductive_uar"] <= 1.0
    rows = list(csv.DictReader(open(pathlib.Path(brain.hparams.output_folder) / "target_all_predictions.csv")))
    assert len(rows) == n_target and len(predictions(brain)) == 8  # the held-out predictions are kept apart
    assert isinstance(metrics["source_at_chance"], bool) and metrics["source_valid_uar_final"] is not None
    assert metrics["optimizer_steps"] > 0 and metrics["adapted_steps"] == 0 and metrics["adaptation_short"] is True


def test_gate_ramp_cap_and_saved_pseudo_labels(pair):
    """The gate opens once its steps are done; the ramp weight grows; the cap scales the adaptation term down;
    each adapting epoch's pseudo-labels are saved and scored after training."""
    brain = run(pair, "ramped", adapt_min_steps=2, adapt_ramp_steps=3, adapt_cap=0.001, pseudo_selection="balanced",
                pseudo_fraction_start=0.25, number_of_epochs=3)
    assert brain.schedule.state() == {"opened_epoch": 2, "opened_step": 2}
    first, second, third = brain.adaptation_history
    assert not first["active"] and second["active"] and third["active"]
    assert 0 < second["adapt_weight_factor"] < third["adapt_weight_factor"] <= 1.0
    assert second["pseudo_fraction"] < third["pseudo_fraction"] == 0.5
    assert third["capped_batches"] == 2 and 0 < third["adapt_to_emo"] <= 0.001 + 1e-6
    metrics = json.loads(pathlib.Path(brain.hparams.metrics_file).read_text(encoding="utf-8"))
    scored = metrics["pseudo_label_accuracy"]
    assert [record["epoch"] for record in scored] == [2, 3]
    assert metrics["adapted_steps"] == metrics["optimizer_steps"] - 2 >= 3 and metrics["adaptation_short"] is False
    assert all(record["n"] > 0 and 0.0 <= record["accuracy"] <= 1.0 for record in scored)
    folder = pathlib.Path(brain.hparams.output_folder) / "pseudo_labels"
    assert sorted(path.name for path in folder.iterdir()) == ["epoch_002.csv", "epoch_003.csv"]


def test_analysis_subset_runs_are_not_scored_on_the_labels_they_used(pair):
    brain = run(pair, "subset", target_labels="analysis_subset", number_of_epochs=1)
    metrics = json.loads(pathlib.Path(brain.hparams.metrics_file).read_text(encoding="utf-8"))
    sizes = {split: len(json.loads((pair / "manifests" / "tgt" / f"{split}.json").read_text()))
             for split in ("train", "valid", "test")}
    used = sum(record["target_seen"] > 0 for record in metrics["adaptation"])  # the subset was used
    assert used and metrics["target_transductive_n"] < sum(sizes.values())
    assert metrics["target_transductive_n"] >= sizes["train"] + sizes["test"]
    assert all(record["accuracy"] == 1.0 for record in metrics["pseudo_label_accuracy"])  # true labels
