"""Before/after anchoring on a tiny trained run: same segments in both views, Com tables, t-SNE."""

import json

import numpy as np
import pandas as pd
import pytest
from pair_fixtures import make_pair, run_train

from speechbrain_phonanchor.analysis.commonality import collect_segments, commonality_table
from speechbrain_phonanchor.experiments.anchoring_effect import anchoring_effect
from speechbrain_phonanchor.features.store import FeatureStore
from speechbrain_phonanchor.manifest import load_manifest


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pair = make_pair(tmp_path_factory.mktemp("pair"))
    brain = run_train(pair, "aga", number_of_epochs=1)
    return pair, brain


def test_before_after_tables_and_tsne(trained, tmp_path):
    pair, brain = trained
    summary = anchoring_effect(brain.hparams.output_folder, tmp_path, min_segments=1, tsne_points=50)
    assert summary["segments"] == {"source": 16, "target": 16}  # 8 utterances × 2 vowels each
    assert summary["cells"] == 8  # 4 emotions × vowels a, i
    table = pd.read_csv(tmp_path / "com_before_after.csv")
    cells = table.dropna(subset=["Com_before", "Com_after"])
    assert set(cells["vowel"]) == {"a", "i"} and (cells["n_source"] == 2).all()
    assert np.allclose(cells["delta"], cells["Com_after"] - cells["Com_before"], atol=1e-5)  # CSV: 6 decimals
    assert not np.allclose(cells["Com_before"], cells["Com_after"])  # the model's space is not the store's

    # "before" is the analysis step's own Com on the frozen store features of these sets
    def segments(side, split):
        store = FeatureStore.open(pair / "features" / side / split)
        return collect_segments(load_manifest(pair / "manifests" / side / f"{split}.json", resolve=False), store)[0]

    direct = commonality_table(segments("src", "valid"), segments("tgt", "test"), min_segments=1,
                               emotions=["neu", "hap", "ang", "sad"]).dropna(subset=["Com"])
    assert np.allclose(direct["Com"].to_numpy(), cells["Com_before"].to_numpy(), atol=1e-3)

    for name in ("tsne_before.png", "tsne_after.png", "com_before_after.md",
                 "commonality_before/commonality.md", "commonality_after/commonality.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "summary.json").read_text())["variant"] == "AGA"
