"""Statistics and paper-style tables from a ``results.csv`` of many runs.

``results.csv`` holds one row per run.  The columns this module reads:
``direction`` (e.g. ``nemo_pl→emovo_it``), ``task`` (``4class``, ``binary_ang``,
``arousal``, ...), ``variant`` (``CL``, ``BA-CL``, ..., ``DANN``, ``in-domain``),
``seed`` and a metric column (default ``uar``, target-test UAR in [0, 1]).

Significance follows the paper: paired t-tests (``scipy.stats.ttest_rel``,
two-sided) over seeds present in both settings, marked ``*`` p < 0.1,
``**`` p < 0.05, ``***`` p < 0.01.  Beside them, 95 % percentile bootstrap confidence
intervals (:func:`bootstrap_ci`, a fixed rng seed so the numbers are reproducible) of
each mean over seeds and of each paired difference to the baseline (:func:`ci_summary`).

Example
-------
>>> import pandas as pd
>>> rows = [{"direction": "a→b", "task": "4class", "variant": v, "seed": s, "uar": u}
...         for v, base in (("CL", 0.40), ("AGA-CL", 0.45)) for s, u in enumerate([base, base + 0.01, base - 0.01])]
>>> rows[-1]["uar"] += 0.005  # paired differences 0.05, 0.05, 0.055: not constant, so a t-test applies
>>> table = paper_table(pd.DataFrame(rows), baseline="CL")
>>> table.loc["AGA-CL", "a→b"]
'45.17 ± 0.76***'
"""

import math
import re

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from sklearn.metrics import balanced_accuracy_score

from speechbrain_phonanchor.fileio import atomic_write_text

GROUP_KEYS = ("direction", "task", "variant")
STAR_LEVELS = ((0.01, "***"), (0.05, "**"), (0.1, "*"))
DIFF_TOLERANCE = 1e-9  # paired differences closer than this are equal (float noise): no t-test
RESAMPLES = 10_000
CONFIDENCE = 0.95


def uar(y_true, y_pred):
    """Unweighted average recall (scikit-learn's balanced accuracy).

    >>> uar(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    0.75
    """
    return float(balanced_accuracy_score(y_true, y_pred))


def stars(p_value):
    """The paper's significance marks for a p-value; empty when p ≥ 0.1 or undefined.

    >>> stars(0.03), stars(0.2), stars(float("nan"))
    ('**', '', '')
    """
    if p_value is None or math.isnan(p_value):
        return ""
    return next((mark for level, mark in STAR_LEVELS if p_value < level), "")


def bootstrap_ci(values, confidence=CONFIDENCE, resamples=RESAMPLES, seed=0):
    """Percentile bootstrap confidence interval of the mean of ``values``.

    ``values`` (NaN dropped) are resampled with replacement ``resamples`` times by a
    ``numpy`` generator seeded with ``seed``, so the same input always gives the same
    interval.  With fewer than two values there is no interval: ``(nan, nan)``.

    Arguments
    ---------
    values : array-like of float
        One value per seed (or one paired difference per seed).
    confidence : float
        Coverage of the interval, e.g. 0.95.
    resamples : int
        Number of bootstrap resamples.
    seed : int
        Seed of the resampling generator.

    Returns
    -------
    tuple of float
        ``(low, high)``.

    >>> low, high = bootstrap_ci([0.40, 0.42, 0.44, 0.46])
    >>> bool(0.40 <= low < 0.43 < high <= 0.46), bootstrap_ci([0.40, 0.42, 0.44, 0.46]) == (low, high)
    (True, True)
    >>> bootstrap_ci([0.5])
    (nan, nan)
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values[picks].mean(axis=1), [tail, 100 - tail])
    return float(low), float(high)


def summarise(results, metric="uar", by=GROUP_KEYS):
    """Mean, standard deviation (ddof=1) and count of ``metric`` per group."""
    grouped = results.groupby(list(by), sort=False)[metric]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def paired_ttest(results, baseline, metric="uar", by=("direction", "task"), confidence=CONFIDENCE,
                 resamples=RESAMPLES):
    """Paired t-test of every variant against ``baseline`` within each ``by`` group.

    Runs are paired by ``seed``; only seeds present in both are used.  ``diff_ci_low`` and
    ``diff_ci_high`` bound the :func:`bootstrap_ci` of the paired differences (variant − baseline).

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, variant, baseline, n_pairs, mean_diff, diff_ci_low, diff_ci_high, t, p, stars``.
    """
    rows = []
    for key, group in results.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        base = group[group.variant == baseline].set_index("seed")[metric]
        for variant, runs in group.groupby("variant", sort=False):
            if variant == baseline:
                continue
            paired = pd.concat([runs.set_index("seed")[metric], base], axis=1, keys=["v", "b"]).dropna()
            diff = paired.v - paired.b
            if len(paired) >= 2 and np.ptp(diff.to_numpy()) > DIFF_TOLERANCE:
                t_stat, p_value = scipy_stats.ttest_rel(paired.v, paired.b)
            else:  # no variance of the differences (e.g. 2 seeds one utterance apart each): t undefined, no mark
                t_stat, p_value = math.nan, math.nan
            low, high = bootstrap_ci(diff.to_numpy(), confidence, resamples)
            rows.append(
                dict(zip(by, key), variant=variant, baseline=baseline, n_pairs=len(paired),
                     mean_diff=float(diff.mean()) if len(paired) else math.nan, diff_ci_low=low, diff_ci_high=high,
                     t=float(t_stat), p=float(p_value), stars=stars(p_value))
            )
    return pd.DataFrame(rows)


def ci_summary(results, baseline=None, metric="uar", by=("direction", "task"), confidence=CONFIDENCE,
               resamples=RESAMPLES):
    """Per variant and ``by`` group: count, mean and :func:`bootstrap_ci` of ``metric`` over seeds,
    and, with a ``baseline``, the paired comparison of :func:`paired_ttest` (its difference CI included).

    Runs without a value of ``metric`` (NaN) are left out; the baseline's own rows and variants
    without a common seed have NaN comparison columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, variant, n, mean, ci_low, ci_high`` and, with a baseline,
        ``n_pairs, mean_diff, diff_ci_low, diff_ci_high, t, p, stars``.

    >>> rows = [{"direction": "a→b", "variant": v, "seed": s, "uar": u}
    ...         for v, us in (("CL", [0.40, 0.42, 0.41]), ("AGA-CL", [0.45, 0.48, 0.46])) for s, u in enumerate(us)]
    >>> row = ci_summary(pd.DataFrame(rows), "CL", by=("direction",)).set_index("variant").loc["AGA-CL"]
    >>> [round(float(row[c]), 2) for c in ("mean", "ci_low", "ci_high", "mean_diff", "diff_ci_low", "diff_ci_high")]
    [0.46, 0.45, 0.48, 0.05, 0.05, 0.06]
    """
    results = results.dropna(subset=[metric])
    keys = [*by, "variant"]
    table = summarise(results, metric, by=keys).drop(columns="std")
    intervals = [bootstrap_ci(runs[metric].to_numpy(), confidence, resamples)
                 for _, runs in results.groupby(keys, sort=False)]
    table[["ci_low", "ci_high"]] = pd.DataFrame(intervals, columns=["ci_low", "ci_high"], index=table.index)
    if baseline is None:
        return table
    tests = paired_ttest(results, baseline, metric, by=by, confidence=confidence, resamples=resamples)
    columns = ["n_pairs", "mean_diff", "diff_ci_low", "diff_ci_high", "t", "p", "stars"]
    if tests.empty:
        return table.assign(**{c: "" if c == "stars" else math.nan for c in columns})
    table = table.merge(tests[keys + columns], on=keys, how="left").fillna({"stars": ""})
    return table.astype({"n_pairs": "Int64"})


def paper_table(results, baseline="CL", metric="uar", rows="variant", columns="direction", percent=True):
    """A table shaped like the paper's: ``mean ± std`` per cell with significance marks
    from a paired t-test against ``baseline`` (the baseline row has none).  A cell over fewer
    seeds than the table's fullest cell says how many: ``(n=4)``.

    >>> rows = [{"direction": "a→b", "variant": v, "seed": s, "uar": 0.5 + s / 100}
    ...         for v, seeds in (("CL", [1, 2, 3]), ("GA-CL", [1, 2])) for s in seeds]
    >>> paper_table(pd.DataFrame(rows), baseline=None).loc["GA-CL", "a→b"]
    '51.50 ± 0.71 (n=2)'

    Extra grouping keys (e.g. ``task``) must be fixed beforehand by filtering.
    """
    scale = 100.0 if percent else 1.0
    summary = summarise(results, metric, by=(rows, columns))
    tests = paired_ttest(results, baseline, metric, by=(columns,)) if baseline else pd.DataFrame()
    marks = {(r[columns], r["variant"]): r["stars"] for _, r in tests.iterrows()} if len(tests) else {}
    cells = {}
    most_seeds = summary["n"].max() if len(summary) else 0
    for _, r in summary.iterrows():
        std = 0.0 if math.isnan(r["std"]) else r["std"]
        seeds = f" (n={r['n']})" if r["n"] < most_seeds else ""
        cells[(r[rows], r[columns])] = f"{scale * r['mean']:.2f} ± {scale * std:.2f}" + marks.get(
            (r[columns], r[rows]), ""
        ) + seeds
    row_order = list(dict.fromkeys(summary[rows]))
    col_order = list(dict.fromkeys(summary[columns]))
    table = pd.DataFrame(index=row_order, columns=col_order, dtype=object)
    for (row, col), text in cells.items():
        table.loc[row, col] = text
    return table.fillna("–")


def to_markdown(table, index_name=""):
    """Render a DataFrame as a GitHub Markdown table (no extra dependency).

    >>> print(to_markdown(pd.DataFrame({"x": [1]}, index=["CL"]), "variant"))
    | variant | x |
    |---|---|
    | CL | 1 |
    """
    header = [index_name or (table.index.name or "")] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


def file_slug(text):
    """File-name form of a table key (direction, encoder, variant...): ``"a→b [30s]"`` → ``"a_to_b_30s"``.

    >>> file_slug("nemo_pl→emovo_it"), file_slug("whisper_base [30s]"), file_slug("AGA-CL [old defaults]")
    ('nemo_pl_to_emovo_it', 'whisper_base_30s', 'AGA-CL_old_defaults')
    """
    return re.sub(r"[^\w.-]+", "_", str(text).replace("→", "_to_")).strip("_")


def write_table(table, stem, index_name=""):
    """Write ``table`` as ``<stem>.csv`` and ``<stem>.md`` (atomically)."""
    atomic_write_text(f"{stem}.csv", table.to_csv(index_label=index_name or None))
    atomic_write_text(f"{stem}.md", to_markdown(table, index_name) + "\n")
