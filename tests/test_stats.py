"""Statistics over runs: UAR, paired t-tests with the paper's marks, paper-style tables."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from speechbrain_phonanchor.experiments.stats import (
    bootstrap_ci,
    ci_summary,
    paired_ttest,
    paper_table,
    stars,
    summarise,
    uar,
    write_table,
)


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


def test_differences_equal_but_for_float_noise_get_no_t_test():
    runs = _runs({"CL": [0.375, 0.3392857142857143], "AGA-CL": [0.35714285714285715, 0.32142857142857145]})
    result = paired_ttest(runs, baseline="CL").iloc[0]
    assert math.isnan(result.t) and math.isnan(result.p) and result.stars == ""


def test_summary_and_paper_table(tmp_path):
    runs = pd.concat(
        [_runs({"CL": [0.40, 0.50], "BA-CL": [0.60, 0.70]}), _runs({"CL": [0.30, 0.30]}, direction="it→pl")]
    )
    summary = summarise(runs).set_index(["direction", "variant"])
    assert summary.loc[("pl→it", "BA-CL"), "mean"] == pytest.approx(0.65)
    assert summary.loc[("pl→it", "BA-CL"), "std"] == pytest.approx(0.0707107, rel=1e-5)
    table = paper_table(runs, baseline="CL")
    assert table.loc["CL", "pl→it"] == "45.00 ± 7.07"
    assert table.loc["BA-CL", "pl→it"] == "65.00 ± 7.07"  # constant +0.2 difference: no variance, no t-test
    assert table.loc["BA-CL", "it→pl"] == "–"
    write_table(table, tmp_path / "table4", index_name="variant")
    markdown = (tmp_path / "table4.md").read_text()
    assert markdown.splitlines()[0] == "| variant | pl→it | it→pl |"
    assert pd.read_csv(tmp_path / "table4.csv", index_col=0).loc["CL", "it→pl"] == "30.00 ± 0.00"


def test_bootstrap_ci_contains_the_mean_is_deterministic_and_narrows_with_more_data():
    draws = np.random.default_rng(123).normal(0.45, 0.03, size=400)
    few, many = draws[:5], draws
    low, high = bootstrap_ci(few)
    assert low < few.mean() < high and few.min() <= low and high <= few.max()
    assert bootstrap_ci(few) == (low, high)  # fixed rng seed: same interval every call
    many_low, many_high = bootstrap_ci(many)
    assert many_low < many.mean() < many_high and many_low < 0.45 < many_high
    assert many_high - many_low < (high - low) / 4  # ~ 1/sqrt(n): 5 → 400 values
    # a lower level gives a nested, narrower interval; the percentile interval matches the resampled means
    narrow = bootstrap_ci(few, confidence=0.5)
    assert low < narrow[0] < narrow[1] < high
    picks = np.random.default_rng(0).integers(0, 5, size=(10_000, 5))
    assert (low, high) == pytest.approx(tuple(np.percentile(few[picks].mean(axis=1), [2.5, 97.5])))


def test_bootstrap_ci_needs_two_values_and_ignores_nan():
    assert all(math.isnan(v) for v in bootstrap_ci([0.4]))
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in bootstrap_ci([0.4, float("nan")]))
    assert bootstrap_ci([0.4, float("nan"), 0.5]) == bootstrap_ci([0.4, 0.5])
    low, high = bootstrap_ci([0.4, 0.5])  # n = 2: means of resamples are 0.4, 0.45, 0.5
    assert low == pytest.approx(0.4) and high == pytest.approx(0.5)


def test_difference_ci_excludes_zero_for_a_clear_gain_and_includes_it_for_noise():
    cl = [0.40, 0.41, 0.39, 0.405, 0.395, 0.40]
    better = [c + 0.05 + n for c, n in zip(cl, [0.0, 0.01, -0.01, 0.005, -0.005, 0.002])]
    noisy = [c + n for c, n in zip(cl, [0.04, -0.03, 0.02, -0.04, 0.03, -0.01])]
    tests = paired_ttest(_runs({"CL": cl, "AGA-CL": better, "DANN": noisy}), baseline="CL").set_index("variant")
    gain, noise = tests.loc["AGA-CL"], tests.loc["DANN"]
    assert 0 < gain.diff_ci_low < gain.mean_diff < gain.diff_ci_high
    assert noise.diff_ci_low < 0 < noise.diff_ci_high
    assert noise.diff_ci_low <= noise.mean_diff <= noise.diff_ci_high


def test_ci_summary_with_a_single_seed_cell_has_no_interval():
    runs = pd.concat([_runs({"CL": [0.40, 0.42, 0.41], "AGA-CL": [0.45, 0.48, 0.46]}),
                      _runs({"CL": [0.30], "AGA-CL": [0.35]}, direction="it→pl")])
    summary = ci_summary(runs, baseline="CL").set_index(["direction", "variant"])
    full, single = summary.loc[("pl→it", "AGA-CL")], summary.loc[("it→pl", "AGA-CL")]
    assert full.n == 3 and full.ci_low < full["mean"] < full.ci_high
    assert 0 < full.diff_ci_low <= full.mean_diff <= full.diff_ci_high
    assert single.n == 1 and single["mean"] == pytest.approx(0.35) and math.isnan(single.ci_low)
    assert single.n_pairs == 1 and math.isnan(single.diff_ci_low) and math.isnan(single.p)
    assert math.isnan(summary.loc[("pl→it", "CL"), "mean_diff"]) and summary.loc[("pl→it", "CL"), "stars"] == ""
    without = ci_summary(runs)
    assert "mean_diff" not in without.columns and len(without) == 4
