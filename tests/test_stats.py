"""Statistics over runs: UAR, paired t-tests with the paper's marks, paper-style tables."""

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from speechbrain_phonanchor.experiments.stats import paired_ttest, paper_table, stars, summarise, uar, write_table


def _runs(values_by_variant, direction="pl→it", task="4class"):
    return pd.DataFrame(
        [
            {"direction": direction, "task": task, "variant": variant, "seed": seed, "uar": value}
            for variant, values in values_by_variant.items()
            for seed, value in enumerate(values)
        ]
    )


def test_uar_is_mean_of_per_class_recall():
    # class a: 2/2 recalled, class b: 1/4 → (1 + 0.25) / 2
    assert uar(["a", "a", "b", "b", "b", "b"], ["a", "a", "b", "a", "a", "a"]) == pytest.approx(0.625)


@pytest.mark.parametrize("p,mark", [(0.005, "***"), (0.01, "**"), (0.049, "**"), (0.05, "*"), (0.099, "*"), (0.1, "")])
def test_star_thresholds(p, mark):
    assert stars(p) == mark


def test_paired_ttest_matches_scipy_and_pairs_by_seed():
    cl = [0.40, 0.42, 0.38, 0.41]
    aga = [0.44, 0.43, 0.42, 0.47]
    runs = _runs({"CL": cl, "AGA-CL": aga})
    # shuffle rows: pairing must follow the seed column, not row order
    runs = runs.sample(frac=1.0, random_state=0)
    result = paired_ttest(runs, baseline="CL").set_index("variant").loc["AGA-CL"]
    expected = scipy_stats.ttest_rel(aga, cl)
    assert result.n_pairs == 4
    assert result.p == pytest.approx(expected.pvalue)
    assert result.t == pytest.approx(expected.statistic)
    assert result.mean_diff == pytest.approx(sum(a - c for a, c in zip(aga, cl)) / 4)
    assert result.stars == stars(expected.pvalue)


def test_paired_ttest_uses_only_common_seeds():
    runs = _runs({"CL": [0.4, 0.5, 0.6], "WA-CL": [0.3, 0.45]})
    result = paired_ttest(runs, baseline="CL").iloc[0]
    assert result.n_pairs == 2
    assert result.mean_diff == pytest.approx(-0.075)


def test_identical_runs_give_no_significance():
    runs = _runs({"CL": [0.4, 0.5], "GA-CL": [0.4, 0.5]})
    result = paired_ttest(runs, baseline="CL").iloc[0]
    assert math.isnan(result.p) and result.stars == ""


def test_summary_and_paper_table(tmp_path):
    runs = pd.concat(
        [_runs({"CL": [0.40, 0.50], "BA-CL": [0.60, 0.70]}), _runs({"CL": [0.30, 0.30]}, direction="it→pl")]
    )
    summary = summarise(runs).set_index(["direction", "variant"])
    assert summary.loc[("pl→it", "BA-CL"), "mean"] == pytest.approx(0.65)
    assert summary.loc[("pl→it", "BA-CL"), "std"] == pytest.approx(0.0707107, rel=1e-5)
    table = paper_table(runs, baseline="CL")
    assert table.loc["CL", "pl→it"] == "45.00 ± 7.07"
    assert table.loc["BA-CL", "pl→it"] == "65.00 ± 7.07***"  # constant +0.2 difference
    assert table.loc["BA-CL", "it→pl"] == "–"
    write_table(table, tmp_path / "table4", index_name="variant")
    markdown = (tmp_path / "table4.md").read_text()
    assert markdown.splitlines()[0] == "| variant | pl→it | it→pl |"
    assert pd.read_csv(tmp_path / "table4.csv", index_col=0).loc["CL", "it→pl"] == "30.00 ± 0.00"
