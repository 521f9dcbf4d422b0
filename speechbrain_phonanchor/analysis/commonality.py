"""SSL view: how alike each vowel's features are across the two corpora, per emotion.

For every emotion × inventory vowel, the vowel-centred segments of the analysis
subset (frames within ±``half_width`` of the vowel's centre, mean-pooled to one
vector per segment) are averaged per corpus into ``mu_source`` and ``mu_target``:

- ``CS = cos(mu_source, mu_target)``;
- ``ED = ||mu_source - mu_target||_2``;
- ``ED_norm`` = ED min-max normalised to [0, 1] **over all eligible cells of the
  table** (every emotion and every vowel, monophthongs and diphthongs together),
  so Com values are comparable across emotions and kinds; when all eligible EDs
  are equal, ``ED_norm`` is 0;
- ``Com = (CS + (1 - ED_norm)) / 2``.

A cell is eligible when both corpora have at least ``min_segments`` segments of
that vowel in that emotion; other cells keep their counts (and CS / ED when both
counts are positive) and get an ``excluded`` reason instead of a Com.

Example
-------
>>> src = SegmentSet(np.array([[1.0, 0.0], [0.0, 1.0]]), ["neu", "neu"], ["i", "a"])
>>> tgt = SegmentSet(np.array([[1.0, 0.0], [1.0, 1.0]]), ["neu", "neu"], ["i", "a"])
>>> table = commonality_table(src, tgt, min_segments=1)
>>> table.set_index("vowel").loc[["i", "a"], "Com"].round(3).tolist()
[1.0, 0.354]
"""

import collections
import pathlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from speechbrain_phonanchor.analysis.report import markdown_table
from speechbrain_phonanchor.features.segments import pool_segments, vowel_segments
from speechbrain_phonanchor.fileio import atomic_write_text
from speechbrain_phonanchor.phonetics import MONOPHTHONGS, VOWELS

TABLE_COLUMNS = ["emotion", "kind", "vowel", "n_source", "n_target", "CS", "ED", "ED_norm", "Com", "excluded"]


@dataclass
class SegmentSet:
    """Pooled vowel segments of one corpus: one row per segment.

    Attributes
    ----------
    features : numpy.ndarray
        ``(N, D)`` pooled segment features.
    emotions, vowels : sequence of str
        The utterance's emotion and the segment's inventory vowel, per row.
    """

    features: np.ndarray
    emotions: Sequence[str]
    vowels: Sequence[str]

    def __post_init__(self):
        self.features = np.asarray(self.features, dtype=np.float32).reshape(len(self.emotions), -1)
        self.emotions = np.asarray(self.emotions, dtype=object)
        self.vowels = np.asarray(self.vowels, dtype=object)
        if not len(self.features) == len(self.emotions) == len(self.vowels):
            raise ValueError("features, emotions and vowels must have one row per segment")

    def select(self, emotion, vowel=None):
        """Features of the segments of ``emotion`` (and ``vowel`` when given)."""
        mask = self.emotions == emotion
        if vowel is not None:
            mask &= self.vowels == vowel
        return self.features[mask]


def collect_segments(entries, store, half_width=0.12, progress=False):
    """Pool every inventory vowel segment of ``entries`` from a feature store.

    Arguments
    ---------
    entries : dict
        Utterance id → manifest entry (the analysis subset).
    store : FeatureStore
        ``store[utt_id]`` → ``(T, D)`` frames; ``store.frame_rate``; ``store.utterance_ids``.
    half_width : float
        Segment half-width around each vowel's centre, in seconds.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    (SegmentSet, collections.Counter)
        The segments and skip counts (``not_in_store`` per utterance,
        ``no_vowel_segments`` per utterance, ``vowel_outside_features`` per vowel).
    """
    known = set(store.utterance_ids)
    features, emotions, vowels = [], [], []
    skipped = collections.Counter()
    for utt_id, entry in tqdm(entries.items(), desc="segments", disable=not progress):
        if utt_id not in known:
            skipped["not_in_store"] += 1
            continue
        frames = store[utt_id]
        inventory_vowels = [vowel for vowel in entry.get("vowels") or [] if vowel.get("vowel") in VOWELS]
        segments = vowel_segments(inventory_vowels, len(frames), frame_rate=store.frame_rate, half_width=half_width)
        if len(segments) < len(inventory_vowels):
            skipped["vowel_outside_features"] += len(inventory_vowels) - len(segments)
        if not segments:
            skipped["no_vowel_segments"] += 1
            continue
        features.append(pool_segments(frames, segments))
        emotions += [entry["emo"]] * len(segments)
        vowels += [segment.vowel for segment in segments]
    stacked = np.concatenate(features) if features else np.zeros((0, store.dim), dtype=np.float32)
    return SegmentSet(stacked, emotions, vowels), skipped


def cosine_similarity(a, b):
    """Cosine of the angle between two vectors (0 when either is zero).

    >>> round(cosine_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 4)
    0.7071
    """
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def min_max(values):
    """Min-max normalise to [0, 1]; all zeros when the values are all equal (NaN stays NaN).

    >>> min_max(np.array([2.0, 4.0, 3.0])).tolist()
    [0.0, 1.0, 0.5]
    """
    values = np.asarray(values, dtype=float)
    low, high = np.nanmin(values), np.nanmax(values)
    if high == low:
        return np.where(np.isnan(values), np.nan, 0.0)
    return (values - low) / (high - low)


def com_score(cs, ed_norm):
    """``Com = (CS + (1 - ED_norm)) / 2``.

    >>> com_score(0.8, 0.2)
    0.8
    """
    return (cs + (1.0 - ed_norm)) / 2.0


def vowel_kind(vowel):
    """``"mono"`` or ``"diph"`` for an inventory vowel."""
    return "mono" if vowel in MONOPHTHONGS else "diph"


def commonality_table(source, target, min_segments=10, emotions=None):
    """CS, ED, ED_norm and Com for every emotion × inventory vowel.

    Arguments
    ---------
    source, target : SegmentSet
        Pooled segments of the two corpora's analysis subsets.
    min_segments : int
        Cells with fewer segments than this in either corpus are excluded.
    emotions : sequence of str, optional
        Emotions (rows, in this order); default: sorted union of both sets.

    Returns
    -------
    pandas.DataFrame
        Columns ``TABLE_COLUMNS``; one row per emotion × vowel in inventory order.
    """
    if emotions is None:
        emotions = sorted(set(source.emotions) | set(target.emotions))
    rows = []
    for emotion in emotions:
        for vowel in VOWELS:
            src, tgt = source.select(emotion, vowel), target.select(emotion, vowel)
            row = {"emotion": emotion, "kind": vowel_kind(vowel), "vowel": vowel,
                   "n_source": len(src), "n_target": len(tgt), "CS": np.nan, "ED": np.nan, "excluded": ""}
            if len(src) and len(tgt):
                mu_src, mu_tgt = src.mean(axis=0, dtype=np.float64), tgt.mean(axis=0, dtype=np.float64)
                row["CS"] = cosine_similarity(mu_src, mu_tgt)
                row["ED"] = float(np.linalg.norm(mu_src - mu_tgt))
            short = [f"{name} {n} < {min_segments}" for name, n in (("source", len(src)), ("target", len(tgt)))
                     if n < min_segments]
            if short:
                row["excluded"] = "too few segments: " + ", ".join(short)
            rows.append(row)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)  # ED_norm and Com start as NaN
    eligible = table["excluded"] == ""
    if eligible.any():
        table.loc[eligible, "ED_norm"] = min_max(table.loc[eligible, "ED"])
        table.loc[eligible, "Com"] = com_score(table.loc[eligible, "CS"], table.loc[eligible, "ED_norm"])
    return table


def _cell(row):
    if row.excluded:
        return f"— (n {row.n_source}/{row.n_target})"
    return f"**{row.Com:.3f}** ({row.CS:.3f}, {row.ED:.2f})"


def commonality_markdown(table):
    """The table like the paper's Table 2: vowels as rows, emotions as columns.

    Each cell is ``Com (CS, ED)``; excluded cells show their segment counts
    (source/target).

    Example
    -------
    >>> src = SegmentSet(np.ones((2, 3)), ["neu", "neu"], ["i", "aɪ"])
    >>> print(commonality_markdown(commonality_table(src, src, min_segments=1)).splitlines()[2])
    | mono | i | **1.000** (1.000, 0.00) |
    """
    cells = table.assign(cell=[_cell(row) for row in table.itertuples()])
    wide = cells.pivot(index=["kind", "vowel"], columns="emotion", values="cell")
    wide = wide.reindex(index=[(vowel_kind(v), v) for v in VOWELS if (vowel_kind(v), v) in wide.index],
                        columns=list(dict.fromkeys(table["emotion"])))
    headers = ["kind", "vowel"] + list(wide.columns)
    rows = [[kind, vowel] + list(values) for (kind, vowel), values in zip(wide.index, wide.to_numpy())]
    return markdown_table(headers, rows)


def write_commonality(table, out_dir):
    """Write ``commonality.csv`` (long form) and ``commonality.md`` (Table 2 layout) into ``out_dir``."""
    out_dir = pathlib.Path(out_dir)
    atomic_write_text(out_dir / "commonality.csv", table.to_csv(index=False, float_format="%.6f"))
    legend = (
        "Cells: **Com** (CS, ED). ED_norm is min-max over all eligible emotion × vowel cells; "
        "Com = (CS + (1 − ED_norm)) / 2. Excluded cells show segment counts source/target.\n\n"
    )
    atomic_write_text(out_dir / "commonality.md", legend + commonality_markdown(table) + "\n")
