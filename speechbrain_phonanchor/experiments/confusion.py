"""Confusion matrices of the target test predictions, per variant (summed over seeds).

A run's predictions CSV (written by ``PhonAnchorBrain``) has ``id, label,
prediction, p_<class>...``; the class order is that of the ``p_`` columns.

Example
-------
>>> frame = pd.DataFrame({"label": ["neu", "neu", "sad"], "prediction": ["neu", "sad", "sad"],
...                       "p_neu": [.6, .4, .1], "p_sad": [.4, .6, .9]})
>>> confusion_counts(frame).values.tolist()
[[1, 1], [0, 1]]
"""

import pathlib

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from speechbrain_phonanchor.analysis.formants import save_figure
from speechbrain_phonanchor.experiments.stats import file_slug
from speechbrain_phonanchor.fileio import atomic_write_text


def classes_of(predictions):
    """The class order of a predictions table (its ``p_<class>`` columns)."""
    return [column[2:] for column in predictions.columns if column.startswith("p_")]


def confusion_counts(predictions, classes=None):
    """Counts of (true label, predicted class); rows are true labels, columns predictions.

    Utterances without a label are left out.
    """
    classes = list(classes or classes_of(predictions))
    labelled = predictions[predictions["label"].notna() & (predictions["label"].astype(str) != "")]
    counts = confusion_matrix(labelled["label"].astype(str), labelled["prediction"].astype(str), labels=classes)
    return pd.DataFrame(counts, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def plot_confusion(counts, path, title=""):
    """Draw ``counts`` as a row-normalised heat map with the counts written in, and save a PNG."""
    values = counts.to_numpy()
    recall = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.1 * len(counts) + 2.2, 1.1 * len(counts) + 1.6))
    ax = fig.subplots()
    image = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(values):
        ax.text(j, i, f"{count}\n{recall[i, j]:.0%}", ha="center", va="center", fontsize=8,
                color="white" if recall[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(counts.columns)), counts.columns)
    ax.set_yticks(range(len(counts.index)), counts.index)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="recall")
    save_figure(fig, path)


def plot_confusions(results, out_dir):
    """One confusion matrix per direction × task × encoder × variant, summed over its seeds.

    Arguments
    ---------
    results : pandas.DataFrame
        ``results.csv`` rows with a ``predictions_file`` column.
    out_dir : str or Path
        Where the PNGs and their ``.csv`` counts go.

    Returns
    -------
    list of pathlib.Path
        The PNGs written (groups whose predictions files are all missing are skipped).
    """
    out_dir = pathlib.Path(out_dir)
    keys = [key for key in ("direction", "task", "encoder", "variant") if key in results.columns]
    written = []
    for key, runs in results.groupby(keys, sort=False):
        files = [pathlib.Path(p) for p in runs["predictions_file"] if isinstance(p, str) and pathlib.Path(p).is_file()]
        if not files:
            continue
        tables = [pd.read_csv(path) for path in files]
        classes = classes_of(tables[0])
        counts = sum(confusion_counts(table, classes) for table in tables)
        stem = "_".join(file_slug(part) for part in key)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / f"{stem}.csv", counts.to_csv())
        plot_confusion(counts, out_dir / f"{stem}.png", f"{' · '.join(map(str, key))} ({len(files)} seeds)")
        written.append(out_dir / f"{stem}.png")
    return written
