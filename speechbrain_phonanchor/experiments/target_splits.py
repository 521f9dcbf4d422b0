"""Where does a transductive score come from? Target UAR per target split, from each run's predictions.

The transductive UAR pools three kinds of target utterances: the target's **train** split (the
unlabelled partners every run trained beside, which an anchored run pseudo-labels and pulls
towards its guesses), its **valid** split and its held-out **test** speaker.  Anchoring can help
on utterances it never saw while its wrong pseudo-labels pull the ones it adapted on towards the
wrong emotion; one pooled number hides that.  :func:`split_uars` scores a run's
``target_all_predictions.csv`` split by split (the splits read from the target's manifests),
plus ``unseen``: every scored target utterance outside the run's partner split (valid + test;
train + test for ``target_labels: analysis_subset`` runs, whose partners were the labelled
analysis subset of valid, which they do not score).  :func:`split_summary` compares every variant
with a baseline per direction and split (mean, bootstrap CI, paired t-test over seeds).

Example
-------
>>> import json, pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> manifests = root / "manifests" / "b"
>>> manifests.mkdir(parents=True)
>>> for split, ids in {"train": ["t1", "t2"], "valid": ["v1", "v2"], "test": ["s1", "s2"]}.items():
...     _ = (manifests / f"{split}.json").write_text(json.dumps({i: {"wav": f"{i}.wav", "duration": 1.0} for i in ids}))
>>> run = root / "grid" / "runs" / "4class" / "CL" / "1"
>>> run.mkdir(parents=True)
>>> _ = (run / "metrics.json").write_text(json.dumps(
...     {"source": "a", "target": "b", "task": "4class", "variant": "CL", "vowel_kind": "both", "seed": 1}))
>>> _ = (run / "target_all_predictions.csv").write_text(
...     "id,label,prediction\\nt1,ang,ang\\nt2,sad,ang\\nv1,ang,ang\\nv2,sad,sad\\ns1,ang,sad\\ns2,sad,sad\\n")
>>> row = split_uars(run, root / "manifests")
>>> row["variant"], row["train"], row["valid"], row["test"], row["unseen"], row["n_unseen"]
('CL', 0.5, 1.0, 0.5, 0.75, 4)
"""

import csv
import json
import pathlib

import pandas as pd

from speechbrain_phonanchor.experiments.grid import table_label
from speechbrain_phonanchor.experiments.stats import CONFIDENCE, RESAMPLES, ci_summary, uar
from speechbrain_phonanchor.manifest import load_manifest

SPLITS = ("train", "valid", "test")
SCORES = (*SPLITS, "unseen")  # unseen: the scored target utterances outside the run's partner split


def target_split_of(manifest_folder, target):
    """Utterance id → split name over the target corpus's manifests in ``manifest_folder``."""
    folder = pathlib.Path(manifest_folder) / target
    missing = [split for split in SPLITS if not (folder / f"{split}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: no {', '.join(f'{s}.json' for s in missing)} (give --manifests, the "
                                "manifest_folder the runs trained with)")
    return {utt: split for split in SPLITS for utt in load_manifest(folder / f"{split}.json", resolve=False)}


def split_uars(run_dir, manifest_folder):
    """One row of a finished run: its table label and UAR (and count) per target split and unseen.

    Returns None for a run without ``target_all_predictions.csv`` (in-domain runs, or runs from
    before the transductive score).  An utterance of the predictions missing from the manifests
    is an error naming both files: the runs and the manifests do not belong together.
    """
    run_dir = pathlib.Path(run_dir)
    predictions = run_dir / "target_all_predictions.csv"
    if not predictions.is_file():
        return None
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    split_of = target_split_of(manifest_folder, metrics["target"])
    partners = "valid" if metrics.get("target_labels") == "analysis_subset" else "train"
    by_split = {score: ([], []) for score in SCORES}
    with open(predictions, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            split = split_of.get(row["id"])
            if split is None:
                raise KeyError(f"{predictions}: utterance {row['id']!r} is in no {metrics['target']} manifest "
                               f"under {manifest_folder}")
            for score in (split, "unseen") if split != partners else (split,):
                by_split[score][0].append(row["label"])
                by_split[score][1].append(row["prediction"])
    result = {"direction": f"{metrics['source']}→{metrics['target']}", "task": metrics["task"],
              "variant": table_label(metrics), "seed": metrics["seed"]}
    for score, (labels, predicted) in by_split.items():
        result[score] = uar(labels, predicted) if labels else float("nan")
        result[f"n_{score}"] = len(labels)
    return result


def split_table(grids, manifest_folder):
    """One row per finished run with predictions under ``<grid>/runs`` of every grid in ``grids``."""
    rows = [split_uars(path.parent, manifest_folder)
            for grid in grids for path in sorted(pathlib.Path(grid).glob("runs/*/*/*/metrics.json"))]
    return pd.DataFrame([row for row in rows if row is not None])


def split_summary(per_run, baseline="CL", confidence=CONFIDENCE, resamples=RESAMPLES):
    """Per direction, task, split and variant: seeds, mean UAR, its bootstrap CI and the paired
    comparison with ``baseline`` (difference, its bootstrap CI, t, p), as :func:`ci_summary` gives them."""
    long = per_run.melt(id_vars=["direction", "task", "variant", "seed"], value_vars=list(SCORES),
                        var_name="split", value_name="uar")
    return ci_summary(long, baseline, "uar", ("direction", "task", "split"), confidence, resamples)
