"""How good were the pseudo-labels? Per-run and per-epoch diagnostics from the runs' ``metrics.json``.

``train.py`` saves each adapting epoch's pseudo-labels and, after training, scores them
against the target labels (read only then, for this report) into ``metrics.json`` under
``pseudo_label_accuracy`` (``epoch``, ``n``, ``accuracy``, ``largest_share``), beside the
adaptation counts of each epoch (``adaptation``).  :func:`pseudo_label_summary` turns every
finished run of one or more grids into one row per run: when adaptation started, the mean,
first and last epoch's pseudo-label accuracy, the largest class share, labels the collapse
guard dropped, the triplets per batch and the weighted adaptation-to-emotion loss ratio, next
to the run's UAR.  :func:`summarise_by_variant` averages those rows per direction and variant.

Example
-------
>>> import json, pathlib, tempfile
>>> run = pathlib.Path(tempfile.mkdtemp()) / "runs" / "4class" / "AGA-CL" / "1"
>>> run.mkdir(parents=True)
>>> _ = (run / "metrics.json").write_text(json.dumps({
...     "source": "a", "target": "b", "variant": "AGA", "vowel_kind": "both", "seed": 1, "target_test_uar": 0.5,
...     "target_transductive_uar": 0.45, "valid_uar": 0.8, "run_label": "",
...     "adaptation_started": {"opened_epoch": 4, "opened_step": 60},
...     "pseudo_label_accuracy": [{"epoch": 4, "n": 10, "accuracy": 0.4, "largest_share": 0.3},
...                               {"epoch": 5, "n": 20, "accuracy": 0.6, "largest_share": 0.5}],
...     "adaptation": [{"epoch": 5, "active": True, "collapse_dropped": 2, "triplets_per_batch": 100.0,
...                     "adapt_to_emo": 0.2}]}))
>>> row = pseudo_label_summary([run.parents[3]]).iloc[0].to_dict()
>>> row["variant"], float(row["mean_accuracy"]), float(row["last_accuracy"]), int(row["collapse_dropped"])
('AGA-CL', 0.5, 0.6, 2)
"""

import json
import pathlib

import numpy as np
import pandas as pd

from speechbrain_phonanchor.experiments.grid import ANCHORED, table_label


def run_row(metrics):
    """One summary row of a run's ``metrics.json`` (None for runs without adaptation)."""
    scored = [record for record in metrics.get("pseudo_label_accuracy") or [] if record.get("accuracy") is not None]
    adapting = [record for record in metrics.get("adaptation") or [] if record.get("active")]
    started = metrics.get("adaptation_started") or {}
    if metrics["variant"] not in ANCHORED:
        return None
    label = table_label(metrics)
    accuracies = [record["accuracy"] for record in scored]
    return {
        "direction": f"{metrics['source']}→{metrics['target']}", "variant": label, "seed": metrics["seed"],
        "uar": metrics["target_test_uar"], "transductive_uar": metrics.get("target_transductive_uar"),
        "source_valid_uar": metrics.get("valid_uar"), "adaptation_epoch": started.get("opened_epoch"),
        "adaptation_step": started.get("opened_step"), "adapting_epochs": len(adapting),
        "mean_accuracy": float(np.mean(accuracies)) if accuracies else None,
        "first_accuracy": accuracies[0] if accuracies else None,
        "last_accuracy": accuracies[-1] if accuracies else None,
        "max_largest_share": max((record["largest_share"] for record in scored), default=None),
        "collapse_dropped": sum(record.get("collapse_dropped", 0) for record in adapting),
        "triplets_per_batch": (float(np.mean([record.get("triplets_per_batch", 0) for record in adapting]))
                               if adapting else None),
        "adapt_to_emo": float(np.mean([record.get("adapt_to_emo", 0) for record in adapting])) if adapting else None,
    }


def pseudo_label_summary(grids):
    """One row per finished anchored run under ``<grid>/runs`` of every grid folder in ``grids``."""
    rows = []
    for grid in grids:
        for path in sorted(pathlib.Path(grid).glob("runs/*/*/*/metrics.json")):
            row = run_row(json.loads(path.read_text(encoding="utf-8")))
            if row is not None:
                rows.append(row)
    return pd.DataFrame(rows)


def summarise_by_variant(summary):
    """Mean of every numeric column per direction and variant, with the number of runs."""
    if summary.empty:
        return summary
    numeric = [column for column in summary.columns if column not in ("direction", "variant", "seed")]
    grouped = summary.groupby(["direction", "variant"], sort=True)
    table = grouped[numeric].agg(lambda values: pd.to_numeric(values, errors="coerce").mean())
    table.insert(0, "runs", grouped.size())
    return table.reset_index()
