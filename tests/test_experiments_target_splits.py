"""Target UAR per target split (adapted-on train, valid, test) from hand-made runs, through the CLI."""

import json

import pandas as pd
import pytest

from speechbrain_phonanchor.experiments import cli
from speechbrain_phonanchor.experiments.target_splits import split_table

SPLITS = {"train": [f"t{i}" for i in range(8)], "valid": [f"v{i}" for i in range(4)],
          "test": [f"s{i}" for i in range(4)]}
LABELS = ["ang", "sad"]


def write_run(grid, variant, seed, wrong, target_labels="pseudo"):
    """A finished run whose predictions are wrong exactly for the utterance ids in ``wrong``."""
    run = grid / "runs" / "4class" / variant / str(seed)
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({
        "source": "a", "target": "b", "task": "4class", "variant": variant, "vowel_kind": "both", "seed": seed,
        "run_label": "", "target_labels": target_labels}))
    lines = ["id,label,prediction"]
    for split, split_ids in SPLITS.items():
        if split == "valid" and target_labels == "analysis_subset":
            continue  # the labelled partners: not scored
        for i, utt in enumerate(split_ids):
            label = LABELS[i % 2]
            lines.append(f"{utt},{label},{LABELS[(i + 1) % 2] if utt in wrong else label}")
    (run / "target_all_predictions.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def manifests(tmp_path):
    folder = tmp_path / "manifests" / "b"
    folder.mkdir(parents=True)
    for split, ids in SPLITS.items():
        (folder / f"{split}.json").write_text(json.dumps({i: {"wav": f"{i}.wav", "duration": 1.0} for i in ids}))
    return tmp_path / "manifests"


def test_adapted_and_unseen_utterances_are_scored_apart(tmp_path, manifests):
    grid = tmp_path / "grid"
    for seed, extra in ((1, ["v1"]), (2, []), (3, ["s3"])):
        write_run(grid, "CL", seed, wrong={"t0", "v0", "s0", *extra})
        # the anchored run: two more adapted-on utterances wrong, the unseen ones all right
        write_run(grid, "AGA", seed, wrong={"t0", "t1", "t2", *extra})
    (grid / "runs" / "4class" / "in-domain" / "1").mkdir(parents=True)  # no predictions: not a row

    per_run = split_table([grid], manifests).set_index(["variant", "seed"])
    assert len(per_run) == 6
    assert per_run.loc[("CL", 2), ["train", "valid", "test", "unseen"]].tolist() == [0.875, 0.75, 0.75, 0.75]
    assert per_run.loc[("AGA-CL", 2), ["train", "valid", "test", "unseen"]].tolist() == [0.625, 1.0, 1.0, 1.0]
    assert per_run.loc[("AGA-CL", 2), ["n_train", "n_valid", "n_test", "n_unseen"]].tolist() == [8, 4, 4, 8]

    out = tmp_path / "out"
    assert cli.main(["splits", str(grid), "--manifests", str(manifests), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "target_splits_vs_CL.csv").set_index(["split", "variant"])
    assert summary.loc[("train", "AGA-CL"), "mean_diff"] == -25.0  # 2 of 8 more wrong in every seed
    assert summary.loc[("unseen", "AGA-CL"), "mean_diff"] == 25.0  # v0 and s0 right: 2 of 8 more
    assert summary.loc[("unseen", "AGA-CL"), "n_pairs"] == 3
    assert (out / "target_splits_per_run.md").read_text().startswith("| direction |")


def test_predictions_from_other_manifests_are_an_error_naming_both(tmp_path, manifests):
    grid = tmp_path / "grid"
    write_run(grid, "CL", 1, wrong=set())
    with open(grid / "runs/4class/CL/1/target_all_predictions.csv", "a") as handle:
        handle.write("stranger,ang,ang\n")
    with pytest.raises(KeyError, match="stranger.*manifests"):
        split_table([grid], manifests)
    with pytest.raises(FileNotFoundError, match="give --manifests"):
        split_table([grid], tmp_path / "nowhere")


def test_analysis_subset_runs_count_the_train_split_as_unseen(tmp_path, manifests):
    grid = tmp_path / "grid"
    write_run(grid, "AGA", 1, wrong={"t0", "s0"}, target_labels="analysis_subset")
    row = split_table([grid], manifests).iloc[0]
    assert row["variant"] == "AGA-CL [analysis subset]"
    assert row["n_valid"] == 0 and row["n_unseen"] == 12  # train 8 + test 4
    assert row["unseen"] == pytest.approx((4 / 6 + 6 / 6) / 2)  # ang 4 of 6 right, sad 6 of 6
