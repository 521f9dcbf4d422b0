"""The CUDA path: extraction, training with autocast, inference on ``cuda`` (``make gpu-check``).

Every test here is marked ``cuda`` and skips, saying why, on a machine without a CUDA device.
"""

import json
import pathlib
import sys

import numpy as np
import pytest
import torch
from pair_fixtures import HPARAMS, ROOT, as_arguments, make_pair, tiny_settings
from test_feature_store import write_corpus

from speechbrain_phonanchor.features.encoders import make_tiny_encoder
from speechbrain_phonanchor.features.extraction import build_store
from speechbrain_phonanchor.features.store import FeatureStore

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("cuda_pair"))


@pytest.mark.parametrize("kind,window", [("wav2vec2", "30s"), ("whisper", "exact"), ("whisper", "30s")])
def test_extraction_on_cuda_matches_cpu(tmp_path, kind, window):
    corpus = tmp_path / "corpus"
    manifest = write_corpus(corpus)
    encoder = make_tiny_encoder(tmp_path / kind, kind)
    stores = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"store_{device}"
        build_store(manifest, encoder, out, data_root=corpus, device=device, whisper_window=window, progress=False)
        stores[device] = FeatureStore.open(out)
    assert stores["cpu"].utterance_ids == stores["cuda"].utterance_ids
    for utt in stores["cpu"]:
        np.testing.assert_allclose(stores["cuda"][utt].astype(np.float32), stores["cpu"][utt].astype(np.float32),
                                   atol=2e-2, rtol=2e-2)


def train_on_cuda(pair, out, precision):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from train import main

    settings = tiny_settings(pair, out)
    return main([str(HPARAMS), "--device=cuda", f"--precision={precision}"] + as_arguments(settings))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_with_autocast(pair, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    brain = train_on_cuda(pair, f"cuda_{precision}", precision)
    assert next(brain.modules.model.parameters()).device.type == "cuda"
    metrics = json.loads(pathlib.Path(brain.hparams.metrics_file).read_text(encoding="utf-8"))
    assert 0.0 <= metrics["target_test_uar"] <= 1.0 and metrics["adaptation"][-1]["triplets"] > 0
    assert all(np.isfinite(record["adapt_loss"]) for record in metrics["adaptation"])


def test_inference_on_cuda_matches_cpu(pair):
    from exported_fixtures import flat_aligner

    from speechbrain_phonanchor.export import export_model, load_exported

    train_on_cuda(pair, "cuda_export", "fp32")
    info = export_model(pair / "cuda_export", pair / "exported_cuda", aligner_dirs=[flat_aligner(pair / "al")])
    wav = pair / "corpora" / "tgt" / "wavs" / "tgt_test_1.wav"
    results = {device: load_exported(info["out_dir"], savedir=pair / f"collected_{device}",
                                     run_opts={"device": device}).classify_file(str(wav))
               for device in ("cpu", "cuda")}
    assert results["cuda"][3] == results["cpu"][3]
    torch.testing.assert_close(results["cuda"][0].cpu(), results["cpu"][0].cpu(), atol=1e-3, rtol=1e-3)
