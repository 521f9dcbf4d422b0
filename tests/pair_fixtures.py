"""A tiny generated source/target corpus pair with a tiny random wav2vec2, for train.py and the grid.

``make_pair(folder)`` writes two corpora (tones whose pitch depends on the emotion, two
vowels per utterance), their manifests, a tiny encoder and an anchors file;
``TINY`` holds the train.py overrides that point a run at them with a tiny network.
"""

import json
import pathlib
import sys

import numpy as np
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


def make_pair(folder):
    """Write the pair ``src`` → ``tgt`` (corpora, manifests, ``encoder/``, ``anchors.yaml``) into ``folder``."""
    folder = pathlib.Path(folder)
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


def tiny_settings(pair, out, **overrides):
    """train.py overrides for a 2-epoch run on the pair with a tiny network, output in ``pair / out``."""
    settings = {
        "source_name": "src", "target_name": "tgt", "skip_prep": True, "manifest_folder": pair / "manifests",
        "feature_folder": pair / "features", "anchors_file": pair / "anchors.yaml", "encoder_source": pair / "encoder",
        "output_folder": pair / out, "input_size": 16, "attention_heads": 2, "d_model": 8, "encoder_heads": 2,
        "encoder_layers": 1, "d_ffn": 16, "classifier_hidden": 8, "batch_size": 8, "number_of_epochs": 2,
        "warmup_epochs": 0, "pseudo_threshold": 0.0, "seed": 7, "variant": "AGA", "vowel_kind": "mono",
        # the gate on learning would keep a 2-epoch run of 2 steps per epoch from ever anchoring
        "adapt_min_steps": 0, "adapt_min_uar_margin": "null", "adapt_ramp_steps": 0,
    }
    settings.update(overrides)
    return settings


def as_arguments(settings):
    """``--key=value`` command-line overrides."""
    return [f"--{key}={value}" for key, value in settings.items()]


def run_train(pair, out, **overrides):
    """Run train.py's ``main`` in this process on the pair; returns the Brain."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from train import main

    return main([str(HPARAMS), "--device=cpu"] + as_arguments(tiny_settings(pair, out, **overrides)))
