"""``report.md``: the analysis in one page a person can read, with its tables and plots.

Example
-------
>>> print(markdown_table(["vowel", "Com"], [["a", "0.91"], ["i", "0.85"]]))
| vowel | Com |
|---|---|
| a | 0.91 |
| i | 0.85 |
"""

import pathlib

from speechbrain_phonanchor.fileio import atomic_write_text

NEAREY_NOTE = (
    "Formants: Praat Burg (5 formants, ceiling 5000 Hz male / 5500 Hz female, 25 ms window), mean F1/F2 over "
    "the middle half of each vowel. Normalisation: Nearey's single-parameter log-mean (\"Nearey 2\", formant "
    "extrinsic): per speaker G = mean(ln F1, ln F2) over all the speaker's tokens, F_norm = ln F − G."
)
COM_NOTE = (
    "CS and ED compare the per-emotion mean vowel-segment features of both corpora; ED_norm is ED min-max "
    "normalised over all eligible emotion × vowel cells of the table (both kinds); Com = (CS + (1 − ED_norm)) / 2."
)


def markdown_table(headers, rows):
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers)] + [line(row) for row in rows])


def format_skips(skipped):
    """``"reason: n, …"`` sorted by reason, or ``"none"``.

    >>> format_skips({"no_vowels": 2, "missing_audio": 1})
    'missing_audio: 1, no_vowels: 2'
    """
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()) if n) or "none"


def _subset_section(names, subsets):
    emotions = sorted({emotion for subset in subsets.values() for emotion in subset.available})
    headers = ["emotion"] + [f"{name} {what}" for name in names for what in ("available", "drawn")]
    rows = [[emotion] + [value for name in names
                         for value in (subsets[name].available.get(emotion, 0), subsets[name].counts.get(emotion, 0))]
            for emotion in emotions]
    skips = [f"- {name}: skipped utterances — {format_skips(subsets[name].skipped)}" for name in names]
    return [markdown_table(headers, rows), ""] + skips


def _formant_section(names, formants):
    lines = [NEAREY_NOTE, ""]
    headers = ["corpus", "F1 /i/", "F2 /i/", "F1 /a/", "F2 /a/", "F2(i) > F2(a) and F1(a) > F1(i)"]
    sanity = formants["sanity"]
    rows = [[name] + [f"{sanity[name][key]:.0f}" for key in ("F1_i", "F2_i", "F1_a", "F2_a")]
            + ["pass" if sanity[name]["ok"] else "**FAIL**"] for name in names if name in sanity]
    lines += ["Sanity check (Hz, all emotions):", "", markdown_table(headers, rows), ""]
    lines += [f"![{caption}]({figure})" for caption, figure in formants["figures"].items()]
    lines += ["", "Means per corpus × emotion × vowel: `formant_means.csv`; tokens: `formant_tokens.csv`.", ""]
    lines += [f"- {name}: skipped vowels (no_vowels: utterances) — {format_skips(formants['skipped'][name])}"
              for name in names]
    return lines


def _anchor_section(anchors, excluded):
    headers = ["emotion", "kind", "BA", "WA", "GA (= AGA)", "ranking (Com)"]
    rows = []
    for emotion, per_kind in anchors.items():
        for kind, chosen in per_kind.items():
            ranking = ", ".join(f"{v} {c:.3f}" for v, c in zip(chosen["ranking"], chosen["com"])) or "—"
            rows.append([emotion, kind] + [" ".join(chosen[v]) or "—" for v in ("BA", "WA", "GA")] + [ranking])
    lines = [markdown_table(headers, rows), "", "Excluded (too few segments):", ""]
    listed = [f"- {emotion} / {kind}: " + "; ".join(f"{v} ({why})" for v, why in reasons.items())
              for emotion, per_kind in excluded.items() for kind, reasons in per_kind.items()]
    return lines + (listed or ["- none"])


def write_report(path, *, names, settings, subsets, commonality_md, segment_skips, anchors, excluded,
                 formants=None, tsne_figure=None):
    """Write ``report.md``.

    Arguments
    ---------
    path : str or Path
        The report to write; figures are linked relative to its folder.
    names : (str, str)
        Source and target corpus names.
    settings : dict
        Shown as a list (subset size, seed, thresholds, inputs).
    subsets : dict
        Corpus name → :class:`~speechbrain_phonanchor.analysis.subset.Subset`.
    commonality_md : str
        The Table 2 layout (:func:`~speechbrain_phonanchor.analysis.commonality.commonality_markdown`).
    segment_skips : dict
        Corpus name → skip counts of the segment collection.
    anchors, excluded : dict
        From :func:`~speechbrain_phonanchor.analysis.selection.select_anchors`.
    formants : dict, optional
        ``{"sanity": …, "figures": {caption: file}, "skipped": {corpus: Counter}}``; None when not measured.
    tsne_figure : str, optional
        File name of the t-SNE figure.
    """
    source, target = names
    lines = [f"# Phonetic commonality analysis: {source} → {target}", ""]
    lines += [f"- {key}: {value}" for key, value in settings.items()] + [""]
    lines += ["## Analysis subset", ""] + _subset_section(names, subsets) + [""]
    lines += ["## Formant view", ""]
    lines += _formant_section(names, formants) if formants else ["Not measured (`--no-formants`)."]
    lines += ["", "## SSL view: CS, ED, Com", "", COM_NOTE, "", commonality_md, ""]
    lines += [f"- {name}: skipped — {format_skips(segment_skips[name])}" for name in names]
    lines += ["", "Long form: `commonality.csv`.", "", "## Selected anchors (`anchors.yaml`)", ""]
    lines += _anchor_section(anchors, excluded) + ["", "## t-SNE of vowel segment features", ""]
    lines += [f"![t-SNE per emotion]({tsne_figure})" if tsne_figure else "Not drawn (`--no-tsne`)."]
    atomic_write_text(pathlib.Path(path), "\n".join(lines) + "\n")
