"""Paper tables and t-tests from a hand-made results.csv, through the CLI."""

import pandas as pd
import pytest
from scipy import stats

from speechbrain_phonanchor.experiments import cli
from speechbrain_phonanchor.experiments.tables import make_tables

SEEDS = range(1, 6)
NOISE = [0.0, 0.01, -0.01, 0.005, -0.005]


def rows(direction, task, variant, base, encoder="whisper_base", noise=NOISE):
    return [{"direction": direction, "task": task, "variant": variant, "vowel_kind": "both", "seed": s,
             "uar": base + n, "encoder": encoder} for s, n in zip(SEEDS, noise)]


@pytest.fixture()
def results_csv(tmp_path):
    data = []
    for direction in ("pl→it", "it→pl"):
        data += rows(direction, "4class", "CL", 0.40)
        data += rows(direction, "4class", "AGA-CL", 0.46, noise=[0.0, 0.012, -0.008, 0.006, -0.004])
        data += rows(direction, "4class", "AGA-CL (mono)", 0.44)
        data += rows(direction, "4class", "DANN", 0.41, noise=[0.03, -0.02, 0.01, -0.03, 0.02])
        data += rows(direction, "4class", "in-domain", 0.70)
    for emotion in ("neu", "ang"):
        data += rows("pl→it", f"binary_{emotion}", "CL", 0.55) + rows("pl→it", f"binary_{emotion}", "AGA-CL", 0.60)
    data += rows("pl→it", "arousal", "CL", 0.45) + rows("pl→it", "arousal", "AGA-CL", 0.47)
    data += rows("pl→it", "4class", "CL", 0.38, encoder="wav2vec2") + rows("pl→it", "4class", "AGA-CL", 0.39,
                                                                           encoder="wav2vec2")
    path = tmp_path / "results.csv"
    pd.DataFrame(data).to_csv(path, index=False)
    return path


def test_all_tables_from_one_command(results_csv, tmp_path):
    out = tmp_path / "tables"
    assert cli.main(["tables", str(results_csv), "--out", str(out), "--no-plots"]) == 0
    for stem in ("table4_4class_whisper_base_vs_CL", "table4_4class_wav2vec2_vs_AGA-CL",
                 "table5_binary_pl_to_it_whisper_base_vs_CL", "table7_arousal_valence_whisper_base_vs_CL",
                 "table8_encoders_vs_CL", "ttests"):
        assert (out / f"{stem}.csv").is_file() and (out / f"{stem}.md").is_file(), stem
    assert "## table8_encoders_vs_CL" in (out / "tables.md").read_text()

    four = pd.read_csv(out / "table4_4class_whisper_base_vs_CL.csv", index_col=0)
    assert list(four.index) == ["CL", "AGA-CL", "AGA-CL (mono)", "DANN", "in-domain"]
    assert list(four.columns) == ["pl→it", "it→pl"]
    assert four.loc["CL", "pl→it"] == "40.00 ± 0.79"  # the baseline carries no marks
    assert four.loc["AGA-CL", "pl→it"].endswith("***") and four.loc["AGA-CL", "pl→it"].startswith("46.12 ± ")
    assert not four.loc["DANN", "pl→it"].endswith("*")  # +1 pp with ±2.5 pp noise: not significant

    versus_aga = pd.read_csv(out / "table4_4class_whisper_base_vs_AGA-CL.csv", index_col=0)
    assert versus_aga.loc["CL", "it→pl"].endswith("***") and not versus_aga.loc["AGA-CL", "it→pl"].endswith("*")

    binary = pd.read_csv(out / "table5_binary_pl_to_it_whisper_base_vs_CL.csv", index_col=0)
    assert list(binary.columns) == ["neu", "ang"] and binary.loc["AGA-CL", "neu"].startswith("60.00")
    encoders = pd.read_csv(out / "table8_encoders_vs_CL.csv", index_col=0)
    assert list(encoders.columns) == ["pl→it: whisper_base", "it→pl: whisper_base", "pl→it: wav2vec2"]
    assert encoders.loc["AGA-CL", "pl→it: wav2vec2"].startswith("39.00")


def test_ttests_match_scipy(results_csv, tmp_path):
    tests = make_tables([results_csv], tmp_path, plots=False)["ttests"]
    row = tests[(tests.direction == "it→pl") & (tests.task == "4class") & (tests.encoder == "whisper_base")
                & (tests.variant == "DANN") & (tests.baseline == "CL")].iloc[0]
    data = pd.read_csv(results_csv)
    pick = data[(data.direction == "it→pl") & (data.task == "4class") & (data.encoder == "whisper_base")]
    expected = stats.ttest_rel(pick[pick.variant == "DANN"].uar.to_numpy(), pick[pick.variant == "CL"].uar.to_numpy())
    assert row.p == pytest.approx(expected.pvalue, abs=1e-4) and row.n_pairs == 5
    assert row.mean_diff_pp == pytest.approx(1.2)  # 1 pp + the mean of its noise
    assert set(tests.baseline) == {"CL", "AGA-CL"}


def test_without_any_baseline_tables_have_no_marks(tmp_path):
    results = pd.DataFrame(rows("pl→it", "4class", "in-domain", 0.7) + rows("pl→it", "4class", "DANN", 0.4))
    written = make_tables(results, tmp_path, plots=False)
    assert sorted(written) == ["table4_4class"]
    assert written["table4_4class"].loc["in-domain", "pl→it"] == "70.00 ± 0.79"
