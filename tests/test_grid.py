"""phonanchor-grid: planning, resumability, results.csv, the real train.py under two workers."""

import json
import pathlib
import sys
import textwrap

import pandas as pd
import pytest
from pair_fixtures import HPARAMS, make_pair, tiny_settings

from speechbrain_phonanchor.experiments import cli, grid

FAKE_TRAIN = textwrap.dedent('''
    """A stand-in train.py: records each call and writes metrics.json from its overrides."""
    import json, pathlib, sys

    def fill_optional(hparams):
        pass

    def prepare_stage(hparams):
        with open(hparams["log"], "a") as log:
            log.write("prepare\\n")

    if __name__ == "__main__":
        settings = dict(a[2:].split("=", 1) for a in sys.argv[2:])
        with open(settings["log"], "a") as log:
            log.write(f"run {settings['variant']} {settings['seed']}\\n")
        if settings["variant"] == "WA":
            sys.exit(3)
        out = pathlib.Path(settings["output_folder"])
        metrics = {"target_test_uar": 0.25 + int(settings["seed"]) / 100, "valid_uar": 0.5, "epochs": 2,
                   "source": "src", "target": "tgt", "task": settings["task"], "variant": settings["variant"],
                   "vowel_kind": settings["vowel_kind"], "seed": int(settings["seed"]), "encoder": "tiny",
                   "lr": 0.001, "predictions_file": str(out / "p.csv")}
        (out / "metrics.json").write_text(json.dumps(metrics))
''')


@pytest.fixture()
def fake(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(FAKE_TRAIN)
    (tmp_path / "h.yaml").write_text("log: none\nvariant: CL\nvowel_kind: both\n")
    return script, tmp_path / "h.yaml", {"log": str(tmp_path / "calls.log")}


def calls(tmp_path):
    return (tmp_path / "calls.log").read_text().split("\n")[:-1]


def test_variant_specs():
    assert grid.parse_variant("AGA-CL:mono") == grid.Variant("AGA", "mono")
    assert grid.parse_variant("GA") == grid.Variant("GA", "both")
    assert grid.parse_variant("in-domain").label == "in-domain"
    assert grid.parse_variant("BA-CL:diph").folder == "BA-CL_diph"
    for bad in ("XX", "AGA-CL:tri", "DANN:mono"):
        with pytest.raises(ValueError):
            grid.parse_variant(bad)


def test_grid_runs_once_then_resumes_with_nothing_to_do(fake, tmp_path):
    script, hparams, overrides = fake
    out = tmp_path / "grid"
    summary = grid.run_grid(hparams, out, ["CL", "AGA-CL:mono"], [1, 2], ["4class"], overrides, workers=2,
                            train_script=script)
    assert (summary["planned"], summary["skipped"], summary["ran"], summary["failed"]) == (4, 0, 4, [])
    assert calls(tmp_path)[0] == "prepare" and sorted(calls(tmp_path)[1:]) == [
        "run AGA 1", "run AGA 2", "run CL 1", "run CL 2"]
    again = grid.run_grid(hparams, out, ["CL", "AGA-CL:mono"], [1, 2], ["4class"], overrides, train_script=script)
    assert (again["skipped"], again["ran"]) == (4, 0)
    assert len(calls(tmp_path)) == 5  # no prepare and no run the second time

    (out / "runs/4class/CL/2/metrics.json").unlink()  # a lost run is the only one redone
    grid.run_grid(hparams, out, ["CL", "AGA-CL:mono"], [1, 2], ["4class"], overrides, train_script=script)
    assert calls(tmp_path)[5:] == ["prepare", "run CL 2"]

    results = pd.read_csv(out / "results.csv")
    assert len(results) == 4
    assert list(results.columns[:6]) == ["direction", "task", "variant", "vowel_kind", "seed", "uar"]
    assert set(results["variant"]) == {"CL", "AGA-CL (mono)"} and set(results["direction"]) == {"src→tgt"}
    assert results.set_index(["variant", "seed"]).loc[("CL", 2), "uar"] == pytest.approx(0.27)


def test_failed_runs_are_reported_and_retried(fake, tmp_path):
    script, hparams, overrides = fake
    summary = grid.run_grid(hparams, tmp_path / "g", ["CL", "WA-CL"], [1], ["4class"], overrides, workers=1,
                            train_script=script)
    assert summary["ran"] == 2 and summary["failed"] == [str(tmp_path / "g/runs/4class/WA-CL/1")]
    again = grid.run_grid(hparams, tmp_path / "g", ["CL", "WA-CL"], [1], ["4class"], overrides, workers=1,
                          train_script=script)
    assert again["skipped"] == 1 and again["ran"] == 1


def test_cli_collect_writes_results_of_a_grid_stopped_part_way(fake, tmp_path, capsys):
    script, hparams, overrides = fake
    out = tmp_path / "grid"
    grid.run_grid(hparams, out, ["CL"], [1, 2], ["4class"], overrides, workers=1, train_script=script)
    (out / "results.csv").unlink()
    (out / "runs/4class/CL/2/metrics.json").unlink()  # as if the grid had been stopped during seed 2
    assert cli.main(["collect", str(out)]) == 0
    assert "results.csv" in capsys.readouterr().out
    results = pd.read_csv(out / "results.csv")
    assert results["seed"].tolist() == [1] and results["uar"].tolist() == [pytest.approx(0.26)]


def test_cli_dry_run_prints_only_unfinished_commands(tmp_path, capsys):
    done = tmp_path / "runs/4class/CL/1"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text("{}")
    assert cli.main(["run", "h.yaml", "--out", str(tmp_path), "--variants", "CL", "DANN", "--seeds", "1",
                     "--dry-run", "--lr=0.5", "--device=cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "--variant=DANN" in lines[0] and "--lr=0.5" in lines[0] and "--device=cpu" in lines[0]


def test_real_train_py_grid_on_tiny_pair(tmp_path):
    pair = make_pair(tmp_path / "pair")
    settings = tiny_settings(pair, "unused", number_of_epochs=1)
    for key in ("output_folder", "variant", "vowel_kind", "seed"):
        settings.pop(key)
    settings["device"] = "cpu"
    out = tmp_path / "grid"
    summary = grid.run_grid(HPARAMS, out, ["AGA-CL:mono"], [3], ["4class"], settings, workers=2,
                            python=sys.executable)
    assert summary["failed"] == [] and summary["ran"] == 1
    assert (pair / "features/tgt/test/index.json").is_file()  # stores built once, by the grid itself
    results = pd.read_csv(out / "results.csv")
    assert list(results["variant"]) == ["AGA-CL (mono)"]
    for row in results.itertuples():
        metrics = json.loads((pathlib.Path(row.output_folder) / "metrics.json").read_text())
        assert row.uar == metrics["target_test_uar"] and 0 <= row.uar <= 1
        assert row.epochs == 1 and row.seed == 3 and row.direction == "src→tgt" and row.wall_time_s > 0
        assert len(pd.read_csv(row.predictions_file)) == 8
    assert grid.run_grid(HPARAMS, out, ["AGA-CL:mono"], [3], ["4class"], settings)["ran"] == 0


def test_results_label_runs_with_another_target_label_rule(tmp_path):
    settings = {"top": {"pseudo_selection": "top_fraction"}, "bal": {"pseudo_selection": "balanced"},
                "sub": {"pseudo_selection": "top_fraction", "target_labels": "analysis_subset"},
                "cl": {"pseudo_selection": "balanced"}}
    for folder, extra in settings.items():
        run = tmp_path / "runs/4class" / folder / "1"
        run.mkdir(parents=True)
        metrics = {"target_test_uar": 0.3, "source": "a", "target": "b", "task": "4class", "seed": 1,
                   "variant": "CL" if folder == "cl" else "AGA", "vowel_kind": "both", "target_labels": "pseudo"}
        (run / "metrics.json").write_text(json.dumps(dict(metrics, **extra)))
    labels = sorted(grid.collect_results(tmp_path)["variant"])
    assert labels == ["AGA-CL", "AGA-CL [analysis subset]", "AGA-CL [balanced]", "CL"]


def test_results_carry_the_transductive_uar_and_leave_it_empty_for_older_runs(tmp_path):
    base = {"target_test_uar": 0.4, "valid_uar": 0.5, "source": "a", "target": "b", "task": "4class",
            "variant": "CL", "vowel_kind": "both"}
    new = {"target_transductive_uar": 0.47, "target_transductive_n": 120, "source_valid_uar_final": 0.61,
           "source_at_chance": False}
    for seed, extra in ((1, {}), (2, new)):  # seed 1: a metrics.json written before the new keys
        run = tmp_path / "runs/4class/CL" / str(seed)
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps(dict(base, seed=seed, **extra)))
    results = pd.read_csv(grid.write_results(tmp_path))
    assert list(results.columns[:9]) == ["direction", "task", "variant", "vowel_kind", "seed", "uar",
                                         "transductive_uar", "transductive_n", "valid_uar"]
    old, fresh = results.set_index("seed").loc[1], results.set_index("seed").loc[2]
    assert fresh.uar == pytest.approx(0.4) and fresh.transductive_uar == pytest.approx(0.47)
    assert fresh.transductive_n == 120 and fresh.source_valid_uar_final == pytest.approx(0.61)
    assert not fresh.source_at_chance
    assert pd.isna(old.transductive_uar) and pd.isna(old.transductive_n) and pd.isna(old.source_at_chance)
    assert ",0.4,,,0.5," in (tmp_path / "results.csv").read_text()  # empty cells, not "nan"
    assert ",0.4,0.47,120,0.5," in (tmp_path / "results.csv").read_text()  # a whole number, not 120.0

    only_old = tmp_path / "old"
    (only_old / "runs/4class/CL/1").mkdir(parents=True)
    (only_old / "runs/4class/CL/1/metrics.json").write_text(json.dumps(dict(base, seed=1)))
    frame = grid.collect_results(only_old)
    assert list(frame.columns[5:8]) == ["uar", "transductive_uar", "transductive_n"]
    assert frame["transductive_uar"].isna().all()


def test_pseudo_label_report_per_run_and_variant(tmp_path):
    """``phonanchor-grid pseudo`` scores anchored runs only and averages them per variant."""
    from speechbrain_phonanchor.experiments import cli

    grid_folder = tmp_path / "grid"
    for variant, seed, accuracy in (("AGA", 1, 0.4), ("AGA", 2, 0.6), ("CL", 1, None)):
        run = grid_folder / "runs" / "4class" / variant / str(seed)
        run.mkdir(parents=True)
        scored = [] if accuracy is None else [{"epoch": 4, "n": 8, "accuracy": accuracy, "largest_share": 0.5}]
        (run / "metrics.json").write_text(json.dumps({
            "source": "a", "target": "b", "variant": variant, "vowel_kind": "both", "seed": seed,
            "target_test_uar": 0.5, "run_label": "", "pseudo_label_accuracy": scored,
            "adaptation_started": {"opened_epoch": 4, "opened_step": 60}, "adaptation": []}))
    assert cli.main(["pseudo", str(grid_folder), "--out", str(tmp_path / "out")]) == 0
    per_run = pd.read_csv(tmp_path / "out" / "pseudo_labels_per_run.csv")
    assert list(per_run["seed"]) == [1, 2] and set(per_run["variant"]) == {"AGA-CL"}
    by_variant = pd.read_csv(tmp_path / "out" / "pseudo_labels_by_variant.csv")
    assert by_variant.loc[0, "runs"] == 2 and abs(by_variant.loc[0, "mean_accuracy"] - 0.5) < 1e-9
