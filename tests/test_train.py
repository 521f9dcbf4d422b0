"""End-to-end: train.py on a tiny generated corpus pair with a tiny random encoder."""

import csv
import json
import pathlib
import re
import sys

import numpy as np
import pytest
import soundfile
import torch
import transformers

from speechbrain_phonanchor.analysis.selection import write_anchors

ROOT = pathlib.Path(__file__).resolve().parents[1]
HPARAMS = ROOT / "hparams" / "generic_pair.yaml"
EMOTIONS = ("neu", "hap", "ang", "sad")
SPLITS = {"source": {"train": 16, "valid": 8}, "target": {"train": 12, "valid": 8, "test": 8}}


def write_corpus(folder, name, splits, pitch):
    """Wavs whose tone depends on the emotion, manifests with two vowels each, and prep_report.json."""
    rng = np.random.default_rng(len(name))
    corpus, manifests = folder / "corpora" / name, folder / "manifests" / name
    (corpus / "wavs").mkdir(parents=True)
    manifests.mkdir(parents=True)
    t = np.arange(16000) / 16000
    for split, count in splits.items():
        manifest = {}
        for i in range(count):
            emotion = EMOTIONS[i % 4]
            utt = f"{name}_{split}_{i}"
            wav = 0.3 * np.sin(2 * np.pi * pitch * (1 + EMOTIONS.index(emotion)) * t) + 0.01 * rng.normal(size=t.size)
            soundfile.write(corpus / "wavs" / f"{utt}.wav", wav, 16000)
            vowels = [{"phone": "a", "ipa": "a", "vowel": "a", "kind": "mono", "start": 0.2, "end": 0.3},
                      {"phone": "i", "ipa": "i", "vowel": "i", "kind": "mono", "start": 0.6, "end": 0.7}]
            manifest[utt] = {"wav": f"{{data_root}}/wavs/{utt}.wav", "duration": 1.0, "emo": emotion,
                             "aro": "mid", "val": "mid", "spk": str(i % 2), "lang": name[:2], "vowels": vowels}
        (manifests / f"{split}.json").write_text(json.dumps(manifest))
    (manifests / "prep_report.json").write_text(json.dumps({"data_folder": str(corpus)}))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    write_corpus(folder, "src", SPLITS["source"], pitch=110)
    write_corpus(folder, "tgt", SPLITS["target"], pitch=130)
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=32, conv_dim=(16, 16), conv_kernel=(320, 2),
                                         conv_stride=(160, 2), num_conv_pos_embeddings=16,
                                         num_conv_pos_embedding_groups=2)
    transformers.Wav2Vec2Model(config).save_pretrained(folder / "encoder")
    per_kind = {"mono": {"ranking": ["a", "i"], "com": [0.9, 0.5], "BA": ["a"], "WA": ["i", "a"], "GA": ["a"]},
                "diph": {"ranking": [], "com": [], "BA": [], "WA": [], "GA": []}}
    write_anchors(folder / "anchors.yaml", {e: per_kind for e in EMOTIONS}, {}, "src", "tgt", min_segments=1)
    return folder


def run(pair, out, **overrides):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from train import main

    settings = {
        "source_name": "src", "target_name": "tgt", "skip_prep": True, "manifest_folder": pair / "manifests",
        "feature_folder": pair / "features", "anchors_file": pair / "anchors.yaml", "encoder_source": pair / "encoder",
        "output_folder": pair / out, "input_size": 16, "attention_heads": 2, "d_model": 8, "encoder_heads": 2,
        "encoder_layers": 1, "d_ffn": 16, "classifier_hidden": 8, "batch_size": 8, "number_of_epochs": 2,
        "warmup_epochs": 0, "pseudo_threshold": 0.0, "seed": 7, "variant": "AGA", "vowel_kind": "mono",
    }
    settings.update(overrides)
    return main([str(HPARAMS), "--device=cpu"] + [f"--{key}={value}" for key, value in settings.items()])


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


def test_cl_variant_trains_without_adaptation(pair):
    brain = run(pair, "cl", variant="CL", number_of_epochs=1)
    assert brain.hparams.adapt_weight == 0.0 and brain.hparams.adapt_loss.n_batches == 0
    assert len(predictions(brain)) == 8


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

    settings = {"source_name": "src", "target_name": "tgt", "skip_prep": True, "manifest_folder": pair / "manifests",
                "feature_folder": pair / "features", "anchors_file": pair / "anchors.yaml",
                "encoder_source": pair / "encoder", "output_folder": pair / "ddp", "input_size": 16,
                "attention_heads": 2, "d_model": 8, "encoder_heads": 2, "encoder_layers": 1, "d_ffn": 16,
                "classifier_hidden": 8, "batch_size": 8, "number_of_epochs": 1, "vowel_kind": "mono"}
    command = [str(pathlib.Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node=2",
               str(ROOT / "train.py"),
               str(HPARAMS), "--device=cpu", "--distributed_backend=gloo"]
    command += [f"--{key}={value}" for key, value in settings.items()]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("target test UAR (AGA, mono, 4class)") == 2  # both ranks finish
    rows = csv.DictReader((pair / "ddp" / "target_test_predictions.csv").read_text(encoding="utf-8").splitlines())
    assert len(list(rows)) == 8
