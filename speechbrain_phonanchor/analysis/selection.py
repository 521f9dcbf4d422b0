"""Anchor selection from the commonality table, and ``anchors.yaml``, the file training reads.

Per emotion, separately for monophthongs and diphthongs, the eligible vowels
(enough segments in both corpora) are ranked by Com, best first.  Ties are
broken deterministically by higher CS, then lower ED, then inventory order
(``phonetics.VOWELS``).  From the ranking of ``n`` vowels:

- ``BA`` (best anchor) = the top vowel;
- ``WA`` (worst anchors) = the lowest and the second-lowest vowel, lowest first,
  as in the paper (just the lowest when only one vowel is eligible);
- ``GA`` (group anchors) = the top half, ``ceil(n / 2)`` vowels, best first.

``AGA`` (the paper's attention-based group-anchored model, AGA-CL) trains on the
group-anchored set, so :func:`load_anchors` answers ``AGA`` with the ``GA`` lists.
Kind ``both`` is the monophthong list followed by the diphthong list.

``anchors.yaml`` layout (a person may edit the lists; the ranking, the Com
values and ``excluded`` are for reading only)::

    format: 1
    source: nemo_pl
    target: emovo_it
    min_segments: 10
    anchors:
      ang:
        mono:
          ranking: [a, ɛ, i, ɔ, u, ə]
          com: [0.91, 0.88, 0.85, 0.80, 0.77, 0.70]
          BA: [a]
          WA: [ə, u]
          GA: [a, ɛ, i]
        diph: {ranking: [], com: [], BA: [], WA: [], GA: []}
    excluded:
      ang:
        diph: {aɪ: 'too few segments: target 3 < 10'}

Example
-------
>>> import tempfile, pathlib, pandas as pd
>>> table = pd.DataFrame({"emotion": ["neu"] * 3, "kind": ["mono"] * 3, "vowel": ["i", "a", "u"],
...                       "CS": [0.9, 0.5, 0.7], "ED": [1.0, 3.0, 2.0], "Com": [0.9, 0.2, 0.6], "excluded": [""] * 3})
>>> anchors, excluded = select_anchors(table)
>>> anchors["neu"]["mono"]["BA"], anchors["neu"]["mono"]["WA"], anchors["neu"]["mono"]["GA"]
(['i'], ['a', 'u'], ['i', 'u'])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "anchors.yaml"
>>> write_anchors(path, anchors, excluded, source="pl", target="it", min_segments=10)
>>> load_anchors(path, "AGA", "mono")
{'neu': ['i', 'u']}
"""

import math

import yaml

from speechbrain_phonanchor.fileio import atomic_write_text
from speechbrain_phonanchor.phonetics import KINDS, VOWELS

VARIANTS = ("BA", "WA", "GA", "AGA")
VARIANT_ALIASES = {"AGA": "GA"}
FORMAT_VERSION = 1
HEADER = """\
# Anchor vowels per emotion for cross-lingual SER (AGA-CL), written by phonanchor-analyze.
# Ranking: Com = (CS + (1 - ED_norm)) / 2 on the analysis subset, best first; ties: CS, then ED, then inventory order.
# BA = best vowel, WA = lowest and second-lowest, GA = top half (AGA uses GA); per emotion, mono and diph apart.
# You may edit the BA / WA / GA lists (inventory vowels of that kind only); training reads them with
# speechbrain_phonanchor.analysis.load_anchors(path, variant, kind). ranking, com and excluded are informational.
"""


class AnchorsError(ValueError):
    """An anchors file that cannot be used; the message names the file."""


def rank_vowels(table, emotion, kind):
    """Eligible vowels of ``kind`` for ``emotion``, best first, with their Com values.

    Returns
    -------
    list of (str, float)
    """
    rows = table[(table["emotion"] == emotion) & (table["kind"] == kind) & (table["excluded"] == "")]
    ordered = sorted(rows.itertuples(), key=lambda r: (-r.Com, -r.CS, r.ED, VOWELS.index(r.vowel)))
    return [(row.vowel, float(row.Com)) for row in ordered]


def variants_from_ranking(ranking):
    """BA, WA and GA from a best-first list of vowels.

    >>> variants_from_ranking(["a", "i", "u", "ə", "ɛ"])
    {'BA': ['a'], 'WA': ['ɛ', 'ə'], 'GA': ['a', 'i', 'u']}
    >>> variants_from_ranking([])
    {'BA': [], 'WA': [], 'GA': []}
    """
    return {"BA": ranking[:1], "WA": ranking[::-1][:2], "GA": ranking[: math.ceil(len(ranking) / 2)]}


def select_anchors(table, kinds=("mono", "diph")):
    """Choose BA / WA / GA per emotion and kind from a commonality table.

    Arguments
    ---------
    table : pandas.DataFrame
        Output of :func:`~speechbrain_phonanchor.analysis.commonality.commonality_table`.
    kinds : sequence of str
        Kinds to select for, each on its own.

    Returns
    -------
    (dict, dict)
        ``anchors[emotion][kind]`` → ``{"ranking", "com", "BA", "WA", "GA"}`` and
        ``excluded[emotion][kind]`` → ``{vowel: reason}`` (only non-empty ones).
    """
    anchors, excluded = {}, {}
    for emotion in dict.fromkeys(table["emotion"]):
        anchors[emotion] = {}
        for kind in kinds:
            ranked = rank_vowels(table, emotion, kind)
            ranking = [vowel for vowel, _ in ranked]
            anchors[emotion][kind] = {"ranking": ranking, "com": [round(com, 4) for _, com in ranked],
                                      **variants_from_ranking(ranking)}
            rows = table[(table["emotion"] == emotion) & (table["kind"] == kind) & (table["excluded"] != "")]
            if len(rows):
                excluded.setdefault(emotion, {})[kind] = dict(zip(rows["vowel"], rows["excluded"]))
    return anchors, excluded


def write_anchors(path, anchors, excluded, source, target, min_segments):
    """Write ``anchors.yaml`` (atomically) with a header explaining how to edit it."""
    document = {"format": FORMAT_VERSION, "source": source, "target": target, "min_segments": min_segments,
                "anchors": anchors, "excluded": excluded}
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=None, width=120)
    atomic_write_text(path, HEADER + body)


def load_anchors(path, variant, kind):
    """Read the anchor vowels of one variant and kind per emotion from ``anchors.yaml``.

    Arguments
    ---------
    path : str or Path
        An ``anchors.yaml`` written by ``phonanchor-analyze`` (possibly edited).
    variant : str
        ``"BA"``, ``"WA"``, ``"GA"`` or ``"AGA"`` (the ``GA`` lists).
    kind : str
        ``"mono"``, ``"diph"`` or ``"both"`` (mono list, then diph list).

    Returns
    -------
    dict
        Emotion → list of inventory vowels (possibly empty), in file order.

    Raises
    ------
    AnchorsError
        Unknown variant or kind, unreadable file, or a list naming a vowel that
        is not an inventory vowel of that kind.
    """
    if variant not in VARIANTS:
        raise AnchorsError(f"unknown anchor variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if kind not in KINDS:
        raise AnchorsError(f"unknown vowel kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as err:
        raise AnchorsError(f"cannot read anchors file {path}: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("anchors"), dict):
        raise AnchorsError(f"{path}: no 'anchors' mapping of emotion → kind → variant lists")
    stored = VARIANT_ALIASES.get(variant, variant)
    parts = ("mono", "diph") if kind == "both" else (kind,)
    result = {}
    for emotion, per_kind in document["anchors"].items():
        vowels = []
        for part in parts:
            listed = ((per_kind or {}).get(part) or {}).get(stored) or []
            bad = [vowel for vowel in listed if vowel not in KINDS[part]]
            if bad:
                raise AnchorsError(f"{path}: anchors.{emotion}.{part}.{stored} lists {bad}, not {part} inventory "
                                   f"vowels ({' '.join(KINDS[part])})")
            vowels += listed
        result[str(emotion)] = vowels
    return result
