"""Every results table of the paper from ``results.csv`` files, in one call.

:func:`make_tables` reads one or more ``results.csv`` (one per grid, e.g. one per
direction) and writes, for whichever runs exist (each as ``.md`` and ``.csv``):

- ``table4_4class_vs_<B>``: 4-class target UAR, variants × directions (Table 4);
- ``table5_binary_<direction>_vs_<B>``: one-vs-rest per emotion, variants × emotions (Table 5);
- ``table7_arousal_valence_vs_<B>``: arousal / valence, variants × (direction, task) (Table 7);
- ``table8_encoders_vs_<B>``: 4-class with several encoders, variants × (direction, encoder) (Table 8);
- ``summary_vs_<B>``: per variant × direction × task (× encoder): seeds, mean, its 95 % bootstrap
  CI, the paired difference to ``<B>`` with its 95 % bootstrap CI, t and p;
- ``ttests``: every paired t-test (over seeds) of every variant against each baseline, with
  the bootstrap CI of the difference (``diff_ci_low_pp``, ``diff_ci_high_pp``);
- ``tables.md``: all of the above under headings.

These are for ``uar``, the held-out target-test UAR.  When the runs also have
``transductive_uar`` (UAR over every target utterance, train + valid + test), the same
tables are written for it with the suffix ``_transductive`` (e.g.
``table4_4class_vs_CL_transductive``, ``summary_vs_CL_transductive``, ``ttests_transductive``)
in a second section of ``tables.md``; runs without a value are left out of those.

``<B>`` is each baseline (default ``CL`` and ``AGA-CL``) present in the runs; with
none present the tables are written once, without marks and without the suffix.  Cells are
``mean ± std`` of UAR in percent over seeds with the paper's marks from a paired
t-test against ``<B>`` (``*`` p < 0.1, ``**`` p < 0.05, ``***`` p < 0.01).  When
the results hold several encoders, Tables 4, 5 and 7 are written per encoder
(suffix ``_<encoder>``).

Example
-------
>>> import tempfile
>>> rows = [{"direction": "a→b", "task": "4class", "variant": v, "seed": s, "uar": u, "encoder": "w"}
...         for v, base in (("CL", 0.40), ("AGA-CL", 0.45)) for s, u in enumerate([base, base + 0.01, base - 0.01])]
>>> rows[-1]["uar"] += 0.005  # paired differences 0.05, 0.05, 0.055: not constant, so a t-test applies
>>> written = make_tables(pd.DataFrame(rows), tempfile.mkdtemp(), plots=False)
>>> sorted(written)
['summary_vs_AGA-CL', 'summary_vs_CL', 'table4_4class_vs_AGA-CL', 'table4_4class_vs_CL', 'ttests']
>>> written["table4_4class_vs_CL"].loc["AGA-CL", "a→b"]
'45.17 ± 0.76***'
>>> summary = written["summary_vs_CL"].set_index("variant")
>>> summary.loc["AGA-CL", ["mean", "95% CI", "diff vs CL", "95% CI of diff"]].tolist()
['45.17', '[44.50, 46.00]', '+5.17***', '[5.00, 5.50]']
"""

import pathlib

import pandas as pd

from speechbrain_phonanchor.experiments.stats import (
    CONFIDENCE,
    RESAMPLES,
    ci_summary,
    file_slug,
    paired_ttest,
    paper_table,
    to_markdown,
    write_table,
)
from speechbrain_phonanchor.fileio import atomic_write_text

VARIANT_ORDER = ("CL", "BA-CL", "WA-CL", "GA-CL", "AGA-CL", "DANN", "in-domain")
BASELINES = ("CL", "AGA-CL")
EMOTION_TASKS = ("binary_neu", "binary_hap", "binary_ang", "binary_sad")
LEVEL_TASKS = ("arousal", "valence")
MARKS = ("marks: paired t-test (over seeds) against the baseline named in the heading, "
         "* p < 0.1, ** p < 0.05, *** p < 0.01.")
LEGEND = "UAR (%) on the target test set, mean ± std over seeds; " + MARKS
METRICS = {  # metric column → (file suffix, section heading, legend)
    "uar": ("", "Results", LEGEND),
    "transductive_uar": ("_transductive", "Transductive target UAR",
                         "UAR (%) over every target utterance (train + valid + test of the target corpus; labels "
                         "used only for scoring), mean ± std over seeds; " + MARKS),
}
CI_LEGEND = ("Summary tables: mean and paired difference (variant − baseline) in percentage points with "
             "{confidence:.0%} percentile bootstrap confidence intervals ({resamples} resamples of the seeds, "
             "resp. of the paired seed differences, rng seed 0; none under 2 seeds), t and p of the paired t-test.")


def load_results(paths):
    """Concatenate ``results.csv`` files (rows repeated across files are kept once).

    Encoders run with several Whisper windows are told apart first (:func:`label_windows`), so a
    run with ``30s`` features is not taken for a repeat of the same seed with ``exact`` ones.
    """
    frames = [pd.read_csv(path) for path in paths]
    results = label_windows(pd.concat(frames, ignore_index=True))
    return results.drop_duplicates(subset=_run_keys(results)).reset_index(drop=True)


def label_windows(results):
    """Append the Whisper window to the ``encoder`` of every encoder that ran with more than one.

    The tables group runs by encoder, so ``whisper_base`` with ``exact`` and with ``30s``
    features become two encoders (Table 8 compares them); an encoder run with one window keeps
    its name.  Applying it twice changes nothing.

    >>> runs = pd.DataFrame({"encoder": ["whisper_base", "whisper_base", "wav2vec2"],
    ...                      "whisper_window": ["exact", "30s", "30s"]})
    >>> label_windows(runs)["encoder"].tolist()
    ['whisper_base [exact]', 'whisper_base [30s]', 'wav2vec2']
    """
    if not {"encoder", "whisper_window"} <= set(results.columns):
        return results
    windows = results.dropna(subset=["whisper_window"]).groupby("encoder")["whisper_window"].nunique()
    several = results["encoder"].isin(windows[windows > 1].index) & results["whisper_window"].notna()
    with_window = results["encoder"] + " [" + results["whisper_window"].astype(str) + "]"
    return results.assign(encoder=results["encoder"].where(~several, with_window))


def _run_keys(results):
    return [key for key in ("direction", "task", "variant", "seed", "encoder") if key in results.columns]


def variant_rank(label):
    """Sort key of a row label: the paper's order, each variant's vowel kinds after its ``both`` row.

    >>> sorted(["DANN", "AGA-CL (mono)", "CL", "AGA-CL [analysis subset]", "AGA-CL"], key=variant_rank)
    ['CL', 'AGA-CL', 'AGA-CL [analysis subset]', 'AGA-CL (mono)', 'DANN']
    """
    name, _, kind = str(label).split(" [")[0].partition(" (")
    position = VARIANT_ORDER.index(name) if name in VARIANT_ORDER else len(VARIANT_ORDER)
    return position, ("", "mono)", "diph)").index(kind) if kind in ("", "mono)", "diph)") else 3, str(label)


def _ordered(results):
    ranks = results["variant"].map(variant_rank)
    return results.assign(_rank=ranks).sort_values(["_rank", "seed"], kind="stable").drop(columns="_rank")


def _styled(results, column, baseline, metric="uar"):
    """``paper_table`` of ``metric`` in ``results`` with ``column`` (a Series) as the table columns."""
    return paper_table(_ordered(results.assign(column=column)), baseline=baseline, metric=metric, columns="column")


def _group_keys(results):
    return tuple(key for key in ("direction", "task", "encoder") if key in results.columns)


def metrics_present(results):
    """The metric columns of :data:`METRICS` that hold at least one value, ``uar`` first.

    >>> metrics_present(pd.DataFrame({"uar": [0.4], "transductive_uar": [float("nan")]}))
    ['uar']
    """
    return [m for m in METRICS if m in results.columns and results[m].notna().any()]


def table_specs(results):
    """``(stem, rows, column Series)`` of every paper table the results hold data for."""
    specs = []
    encoders = list(dict.fromkeys(results["encoder"])) if "encoder" in results.columns else [None]
    for encoder in encoders:
        part = results if encoder is None else results[results["encoder"] == encoder]
        suffix = f"_{file_slug(encoder)}" if len(encoders) > 1 else ""
        four = part[part["task"] == "4class"]
        if len(four):
            specs.append((f"table4_4class{suffix}", four, four["direction"]))
        binary = part[part["task"].isin(EMOTION_TASKS)]
        for direction, rows in binary.groupby("direction", sort=False):
            emotions = rows["task"].str.replace("binary_", "")
            specs.append((f"table5_binary_{file_slug(direction)}{suffix}", rows, emotions))
        levels = part[part["task"].isin(LEVEL_TASKS)]
        if len(levels):
            specs.append((f"table7_arousal_valence{suffix}", levels, levels["direction"] + ": " + levels["task"]))
    if len(encoders) > 1:
        four = results[results["task"] == "4class"]
        specs.append(("table8_encoders", four, four["direction"] + ": " + four["encoder"].astype(str)))
    return specs


def all_ttests(results, baselines=BASELINES, metric="uar", confidence=CONFIDENCE, resamples=RESAMPLES):
    """Paired t-tests of every variant against each baseline, per direction, task (and encoder),
    with the bootstrap CI of the mean difference; differences in percentage points."""
    results = results.dropna(subset=[metric])
    tests = [paired_ttest(_ordered(results), baseline, metric, by=_group_keys(results), confidence=confidence,
                          resamples=resamples)
             for baseline in baselines if baseline in set(results["variant"])]
    tests = [t for t in tests if len(t)]
    if not tests:
        return pd.DataFrame()
    table = pd.concat(tests, ignore_index=True)
    for column in ("mean_diff", "diff_ci_low", "diff_ci_high"):
        table[f"{column}_pp"] = (100 * table.pop(column)).round(2)
    table["t"] = table["t"].round(3)
    table["p"] = table["p"].round(4)
    return table[[c for c in table.columns if c != "stars"] + ["stars"]]


def _interval(low, high):
    return "" if pd.isna(low) else f"[{100 * low:.2f}, {100 * high:.2f}]"


def summary_table(results, baseline=None, metric="uar", confidence=CONFIDENCE, resamples=RESAMPLES):
    """Mean and difference to ``baseline`` with their bootstrap CIs beside the paired t-test, formatted.

    One row per variant × direction × task (× encoder), in the paper's variant order within each
    group; numbers in percent (differences in percentage points), empty cells where undefined.

    Returns
    -------
    pandas.DataFrame
        Columns ``variant, direction, task, [encoder], n, mean, 95% CI`` and, with a baseline,
        ``diff vs <baseline>, 95% CI of diff, t, p`` (the CI's level follows ``confidence``).

    >>> rows = [{"direction": "a→b", "task": "4class", "variant": v, "seed": s, "uar": u}
    ...         for v, us in (("AGA-CL", [0.45, 0.48, 0.46]), ("CL", [0.40, 0.42, 0.41])) for s, u in enumerate(us)]
    >>> summary_table(pd.DataFrame(rows), "CL").loc[1, "mean":].tolist()
    ['46.33', '[45.00, 48.00]', '+5.33***', '[5.00, 6.00]', '16.000', '0.0039']
    """
    results = results.dropna(subset=[metric])
    by = _group_keys(results)
    raw = ci_summary(_ordered(results), baseline, metric, by, confidence, resamples)
    for key in by:  # groups in the order the results give them, variants in the paper's order within each
        order = {value: i for i, value in enumerate(dict.fromkeys(results[key]))}
        raw = raw.sort_values(key, key=lambda column, order=order: column.map(order), kind="stable")
    level = f"{confidence:.0%} CI"
    table = raw[["variant", *by]].assign(**{
        "n": [int(n) for n in raw["n"]],
        "mean": raw["mean"].map(lambda v: f"{100 * v:.2f}"),
        level: [_interval(lo, hi) for lo, hi in zip(raw["ci_low"], raw["ci_high"])],
    })
    if baseline is not None:
        table[f"diff vs {baseline}"] = [
            "" if pd.isna(d) else f"{100 * d:+.2f}{mark}" for d, mark in zip(raw["mean_diff"], raw["stars"])]
        table[f"{level} of diff"] = [_interval(lo, hi) for lo, hi in zip(raw["diff_ci_low"], raw["diff_ci_high"])]
        table["t"] = raw["t"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        table["p"] = raw["p"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    return table.reset_index(drop=True)


def make_tables(results, out_dir, baselines=BASELINES, plots=True, confidence=CONFIDENCE, resamples=RESAMPLES):
    """Write every table (and, with ``plots``, the confusion matrices) into ``out_dir``.

    Arguments
    ---------
    results : pandas.DataFrame or sequence of paths
        Runs (``results.csv`` rows) or the ``results.csv`` files to read.
    out_dir : str or Path
        Output folder.
    baselines : sequence of str
        Variants to test against (each present one gets its own tables).
    plots : bool
        Also draw ``confusion/`` PNGs from the runs' predictions files.
    confidence, resamples : float, int
        Level and number of resamples of the bootstrap confidence intervals.

    Returns
    -------
    dict
        Table stem → DataFrame written.
    """
    results = label_windows(results) if isinstance(results, pd.DataFrame) else load_results(results)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, sections = {}, []
    for metric in metrics_present(results):
        sections += _metric_tables(results.dropna(subset=[metric]), metric, out_dir, baselines, confidence,
                                   resamples, written)
    if plots and "predictions_file" in results.columns:
        from speechbrain_phonanchor.experiments.confusion import plot_confusions

        pictures = plot_confusions(results, out_dir / "confusion")
        if pictures:
            sections.append("## Confusion matrices (summed over seeds)\n\n"
                            + "\n".join(f"- `{pathlib.Path(p).relative_to(out_dir)}`" for p in pictures) + "\n")
    atomic_write_text(out_dir / "tables.md", "\n".join(sections))
    return written


def _metric_tables(results, metric, out_dir, baselines, confidence, resamples, written):
    """Write the paper tables, summaries and t-tests of one metric; add them to ``written``;
    return the Markdown sections of ``tables.md``."""
    suffix, title, legend = METRICS[metric]
    sections = [f"# {title}\n\n{legend}\n\n" + CI_LEGEND.format(confidence=confidence, resamples=resamples) + "\n"]
    present = [b for b in baselines if b in set(results["variant"])]
    for stem, rows, column in table_specs(results):
        for baseline in present or [None]:  # without any baseline: the table without marks
            table = _styled(rows, column, baseline, metric)
            name = (f"{stem}_vs_{baseline}" if baseline else stem) + suffix
            write_table(table, out_dir / name, "variant")
            written[name] = table
            heading = f"{name} (marks vs {baseline})" if baseline else f"{name} (no baseline among the runs)"
            sections.append(f"## {heading}\n\n{to_markdown(table, 'variant')}\n")
    for baseline in present or [None]:
        table = summary_table(results, baseline, metric, confidence, resamples).set_index("variant")
        name = (f"summary_vs_{baseline}" if baseline else "summary") + suffix
        write_table(table, out_dir / name, "variant")
        written[name] = table.reset_index()
        sections.append(f"## {name} (bootstrap CIs and paired t-tests)\n\n{to_markdown(table, 'variant')}\n")
    tests = all_ttests(results, present, metric, confidence, resamples)
    if len(tests):
        name = "ttests" + suffix
        atomic_write_text(out_dir / f"{name}.csv", tests.to_csv(index=False))
        atomic_write_text(out_dir / f"{name}.md", to_markdown(tests.set_index("variant"), "variant") + "\n")
        written[name] = tests
        sections.append(f"## {name}: paired t-tests (differences in percentage points)\n\n"
                        + to_markdown(tests.set_index("variant"), "variant") + "\n")
    return sections
