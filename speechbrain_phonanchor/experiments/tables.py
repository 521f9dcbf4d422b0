"""Every results table of the paper from ``results.csv`` files, in one call.

:func:`make_tables` reads one or more ``results.csv`` (one per grid, e.g. one per
direction) and writes, for whichever runs exist (each as ``.md`` and ``.csv``):

- ``table4_4class_vs_<B>``: 4-class target UAR, variants × directions (Table 4);
- ``table5_binary_<direction>_vs_<B>``: one-vs-rest per emotion, variants × emotions (Table 5);
- ``table7_arousal_valence_vs_<B>``: arousal / valence, variants × (direction, task) (Table 7);
- ``table8_encoders_vs_<B>``: 4-class with several encoders, variants × (direction, encoder) (Table 8);
- ``ttests``: every paired t-test (over seeds) of every variant against each baseline;
- ``tables.md``: all of the above under headings.

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
>>> written = make_tables(pd.DataFrame(rows), tempfile.mkdtemp(), plots=False)
>>> sorted(written)
['table4_4class_vs_AGA-CL', 'table4_4class_vs_CL', 'ttests']
>>> written["table4_4class_vs_CL"].loc["AGA-CL", "a→b"]
'45.00 ± 1.00***'
"""

import pathlib

import pandas as pd

from speechbrain_phonanchor.experiments.stats import paired_ttest, paper_table, to_markdown, write_table
from speechbrain_phonanchor.fileio import atomic_write_text

VARIANT_ORDER = ("CL", "BA-CL", "WA-CL", "GA-CL", "AGA-CL", "DANN", "in-domain")
BASELINES = ("CL", "AGA-CL")
EMOTION_TASKS = ("binary_neu", "binary_hap", "binary_ang", "binary_sad")
LEVEL_TASKS = ("arousal", "valence")
LEGEND = ("UAR (%) on the target test set, mean ± std over seeds; marks: paired t-test (over seeds) "
          "against the baseline named in the heading, * p < 0.1, ** p < 0.05, *** p < 0.01.")


def load_results(paths):
    """Concatenate ``results.csv`` files (rows repeated across files are kept once)."""
    frames = [pd.read_csv(path) for path in paths]
    return pd.concat(frames, ignore_index=True).drop_duplicates(subset=_run_keys(frames[0])).reset_index(drop=True)


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


def _styled(results, column, baseline):
    """``paper_table`` of ``results`` with ``column`` (a Series) as the table columns."""
    return paper_table(_ordered(results.assign(column=column)), baseline=baseline, columns="column")


def table_specs(results):
    """``(stem, rows, column Series)`` of every paper table the results hold data for."""
    specs = []
    encoders = list(dict.fromkeys(results["encoder"])) if "encoder" in results.columns else [None]
    for encoder in encoders:
        part = results if encoder is None else results[results["encoder"] == encoder]
        suffix = f"_{encoder}" if len(encoders) > 1 else ""
        four = part[part["task"] == "4class"]
        if len(four):
            specs.append((f"table4_4class{suffix}", four, four["direction"]))
        binary = part[part["task"].isin(EMOTION_TASKS)]
        for direction, rows in binary.groupby("direction", sort=False):
            specs.append((f"table5_binary_{_slug(direction)}{suffix}", rows, rows["task"].str.replace("binary_", "")))
        levels = part[part["task"].isin(LEVEL_TASKS)]
        if len(levels):
            specs.append((f"table7_arousal_valence{suffix}", levels, levels["direction"] + ": " + levels["task"]))
    if len(encoders) > 1:
        four = results[results["task"] == "4class"]
        specs.append(("table8_encoders", four, four["direction"] + ": " + four["encoder"].astype(str)))
    return specs


def _slug(text):
    return str(text).replace("→", "_to_").replace(" ", "_")


def all_ttests(results, baselines=BASELINES):
    """Paired t-tests of every variant against each baseline, per direction, task (and encoder)."""
    by = tuple(key for key in ("direction", "task", "encoder") if key in results.columns)
    tests = [paired_ttest(_ordered(results), baseline, by=by) for baseline in baselines
             if baseline in set(results["variant"])]
    tests = [t for t in tests if len(t)]
    if not tests:
        return pd.DataFrame()
    table = pd.concat(tests, ignore_index=True)
    table["mean_diff_pp"] = (100 * table.pop("mean_diff")).round(2)
    table["t"] = table["t"].round(3)
    table["p"] = table["p"].round(4)
    return table


def make_tables(results, out_dir, baselines=BASELINES, plots=True):
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

    Returns
    -------
    dict
        Table stem → DataFrame written.
    """
    if not isinstance(results, pd.DataFrame):
        results = load_results(results)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, sections = {}, [f"# Results\n\n{LEGEND}\n"]
    present = [b for b in baselines if b in set(results["variant"])]
    for stem, rows, column in table_specs(results):
        for baseline in present or [None]:  # without any baseline: the table without marks
            table = _styled(rows, column, baseline)
            name = f"{stem}_vs_{baseline}" if baseline else stem
            write_table(table, out_dir / name, "variant")
            written[name] = table
            heading = f"{name} (marks vs {baseline})" if baseline else f"{name} (no baseline among the runs)"
            sections.append(f"## {heading}\n\n{to_markdown(table, 'variant')}\n")
    tests = all_ttests(results, present)
    if len(tests):
        atomic_write_text(out_dir / "ttests.csv", tests.to_csv(index=False))
        atomic_write_text(out_dir / "ttests.md", to_markdown(tests.set_index("variant"), "variant") + "\n")
        written["ttests"] = tests
        sections.append("## Paired t-tests (differences in percentage points)\n\n"
                        + to_markdown(tests.set_index("variant"), "variant") + "\n")
    if plots and "predictions_file" in results.columns:
        from speechbrain_phonanchor.experiments.confusion import plot_confusions

        pictures = plot_confusions(results, out_dir / "confusion")
        if pictures:
            sections.append("## Confusion matrices (summed over seeds)\n\n"
                            + "\n".join(f"- `{pathlib.Path(p).relative_to(out_dir)}`" for p in pictures) + "\n")
    atomic_write_text(out_dir / "tables.md", "\n".join(sections))
    return written
