"""Selection recovers the vowels built to be common; ties, exclusions and anchors.yaml round trip."""

import numpy as np
import pandas as pd
import pytest
import yaml

from speechbrain_phonanchor.analysis.commonality import SegmentSet, commonality_table
from speechbrain_phonanchor.analysis.selection import (
    AnchorsError,
    load_anchors,
    rank_vowels,
    select_anchors,
    write_anchors,
)

DIM = 64
# Per emotion and vowel: how far the target's mean moves from the source's (orthogonally).
# Smaller shift = more common.  Common vowels by construction: the 0.0 / 0.3 / 0.6 ones.
SHIFTS = {
    "neu": {"a": 0.0, "i": 0.3, "ɛ": 0.6, "ə": 3.0, "u": 4.0, "ɔ": 5.0, "aɪ": 0.2, "eɪ": 2.5, "aʊ": 3.5, "oʊ": 4.5},
    "ang": {"u": 0.0, "ə": 0.3, "ɔ": 0.6, "a": 3.0, "ɛ": 4.0, "i": 5.0, "oʊ": 0.1, "aʊ": 2.0, "eɪ": 3.0, "aɪ": 4.0},
}


def _orthogonal_unit(vector, rng):
    shift = rng.normal(size=vector.shape)
    shift -= shift @ vector / (vector @ vector) * vector
    return shift / np.linalg.norm(shift)


def _corpora(seed=0, n=30, short=None):
    """Source/target segments: same-norm vowel means per emotion, target shifted by SHIFTS, small noise."""
    rng = np.random.default_rng(seed)
    source, target = [], []
    for emotion, shifts in SHIFTS.items():
        for vowel, size in shifts.items():
            mean = rng.normal(size=DIM)
            mean *= 5.0 / np.linalg.norm(mean)
            moved = mean + size * _orthogonal_unit(mean, rng)
            n_target = 3 if (emotion, vowel) == short else n
            source += [(emotion, vowel, mean + rng.normal(0, 0.05, DIM)) for _ in range(n)]
            target += [(emotion, vowel, moved + rng.normal(0, 0.05, DIM)) for _ in range(n_target)]
    return tuple(SegmentSet(np.array([r[2] for r in rows]), [r[0] for r in rows], [r[1] for r in rows])
                 for rows in (source, target))


def test_selection_recovers_the_constructed_common_vowels():
    table = commonality_table(*_corpora(), min_segments=10)
    anchors, excluded = select_anchors(table)
    assert excluded == {}
    assert anchors["neu"]["mono"]["ranking"] == ["a", "i", "ɛ", "ə", "u", "ɔ"]
    assert anchors["neu"]["mono"]["BA"] == ["a"]
    assert anchors["neu"]["mono"]["WA"] == ["ɔ", "u"]
    assert anchors["neu"]["mono"]["GA"] == ["a", "i", "ɛ"]
    diph = anchors["neu"]["diph"]
    assert (diph["ranking"], diph["BA"], diph["WA"], diph["GA"]) == (["aɪ", "eɪ", "aʊ", "oʊ"], ["aɪ"], ["oʊ", "aʊ"],
                                                                     ["aɪ", "eɪ"])
    assert diph["com"] == sorted(diph["com"], reverse=True) and len(diph["com"]) == 4
    assert anchors["ang"]["mono"]["GA"] == ["u", "ə", "ɔ"]
    assert anchors["ang"]["diph"]["BA"] == ["oʊ"] and anchors["ang"]["diph"]["WA"] == ["aɪ", "eɪ"]


def test_too_few_segments_exclusion_is_listed_and_configurable():
    table = commonality_table(*_corpora(short=("neu", "a")), min_segments=10)
    anchors, excluded = select_anchors(table)
    assert excluded == {"neu": {"mono": {"a": "too few segments: target 3 < 10"}}}
    assert anchors["neu"]["mono"]["ranking"] == ["i", "ɛ", "ə", "u", "ɔ"]
    assert anchors["neu"]["mono"]["GA"] == ["i", "ɛ", "ə"]  # ceil(5 / 2)
    relaxed, none_excluded = select_anchors(commonality_table(*_corpora(short=("neu", "a")), min_segments=3))
    assert none_excluded == {} and relaxed["neu"]["mono"]["BA"] == ["a"]


def test_ties_break_on_cs_then_ed_then_inventory_order():
    table = pd.DataFrame({
        "emotion": "neu", "kind": "mono", "excluded": "",
        "vowel": ["u", "ɔ", "a", "i", "ɛ"],
        "Com": [0.5, 0.5, 0.5, 0.5, 0.9],
        "CS": [0.7, 0.9, 0.7, 0.7, 0.1],
        "ED": [1.0, 5.0, 1.0, 0.5, 9.0],
    })
    # ɛ best Com; then ɔ (higher CS); then i (lower ED); then a before u (inventory order i ɛ ə a ɔ u).
    assert [v for v, _ in rank_vowels(table, "neu", "mono")] == ["ɛ", "ɔ", "i", "a", "u"]
    shuffled = table.sample(frac=1.0, random_state=1)
    assert rank_vowels(shuffled, "neu", "mono") == rank_vowels(table, "neu", "mono")


@pytest.fixture()
def anchors_file(tmp_path):
    anchors, excluded = select_anchors(commonality_table(*_corpora(short=("ang", "eɪ")), min_segments=10))
    path = tmp_path / "anchors.yaml"
    write_anchors(path, anchors, excluded, source="nemo_pl", target="emovo_it", min_segments=10)
    return path, anchors


def test_anchors_yaml_round_trip(anchors_file):
    path, anchors = anchors_file
    for variant in ("BA", "WA", "GA"):
        for kind in ("mono", "diph"):
            assert load_anchors(path, variant, kind) == {e: anchors[e][kind][variant] for e in anchors}
    assert load_anchors(path, "AGA", "mono") == load_anchors(path, "GA", "mono")
    assert load_anchors(path, "BA", "both") == {"neu": ["a", "aɪ"], "ang": ["u", "oʊ"]}
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["excluded"] == {"ang": {"diph": {"eɪ": "too few segments: target 3 < 10"}}}
    assert path.read_text(encoding="utf-8").startswith("# Anchor vowels per emotion")
    assert "ɛ" in path.read_text(encoding="utf-8")  # IPA written as is, not escaped


def test_hand_edited_anchors_are_read_and_checked(anchors_file):
    path, _ = anchors_file
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["anchors"]["neu"]["mono"]["GA"] = ["u", "ə"]
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert load_anchors(path, "AGA", "mono")["neu"] == ["u", "ə"]
    document["anchors"]["neu"]["mono"]["GA"] = ["aɪ"]  # a diphthong in the monophthong list
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(AnchorsError, match="not mono inventory vowels"):
        load_anchors(path, "GA", "mono")
    with pytest.raises(AnchorsError, match="unknown anchor variant"):
        load_anchors(path, "XA", "mono")
    with pytest.raises(AnchorsError, match="unknown vowel kind"):
        load_anchors(path, "BA", "triph")
    with pytest.raises(AnchorsError, match="cannot read"):
        load_anchors(path.parent / "missing.yaml", "BA", "mono")
