"""CS, ED, ED_norm (min-max over the whole table) and Com against hand-computed numbers."""

import math

import numpy as np
import pytest

from speechbrain_phonanchor.analysis.commonality import (
    SegmentSet,
    com_score,
    commonality_markdown,
    commonality_table,
    write_commonality,
)


def _segments(cells):
    """cells: (emotion, vowel, [segment vectors]) → SegmentSet."""
    rows = [(emotion, vowel, vector) for emotion, vowel, vectors in cells for vector in vectors]
    return SegmentSet(np.array([r[2] for r in rows], dtype=float), [r[0] for r in rows], [r[1] for r in rows])


@pytest.fixture()
def table():
    # Segment means (hand-chosen): neu i (1,0)/(1,0); neu a (0,1)/(0,3); neu u (1,0)/(0,1); ang i (2,0)/(0,2).
    source = _segments([("neu", "i", [[1, 0], [1, 0]]), ("neu", "a", [[0, 0], [0, 2]]),
                        ("neu", "u", [[1, 0], [1, 0]]), ("ang", "i", [[2, 0], [2, 0]])])
    target = _segments([("neu", "i", [[0.5, 0], [1.5, 0]]), ("neu", "a", [[0, 3], [0, 3]]),
                        ("neu", "u", [[0, 1], [0, 1]]), ("ang", "i", [[0, 2], [0, 2]])])
    return commonality_table(source, target, min_segments=2)


def test_cs_ed_and_com_match_hand_computation(table):
    table = table.set_index(["emotion", "vowel"])
    # ED: 0, 2, sqrt 2, 2 sqrt 2 → min-max over every eligible cell of the table: 0, 1/sqrt 2, 1/2, 1.
    expected = {  # (CS, ED, ED_norm, Com)
        ("neu", "i"): (1.0, 0.0, 0.0, 1.0),
        ("neu", "a"): (1.0, 2.0, 1 / math.sqrt(2), (1 + 1 - 1 / math.sqrt(2)) / 2),
        ("neu", "u"): (0.0, math.sqrt(2), 0.5, 0.25),
        ("ang", "i"): (0.0, 2 * math.sqrt(2), 1.0, 0.0),
    }
    for cell, values in expected.items():
        got = table.loc[cell, ["CS", "ED", "ED_norm", "Com"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, values, atol=1e-9, err_msg=str(cell))
    assert table.loc[("neu", "a"), "Com"] == pytest.approx(0.646447, abs=1e-6)


def test_cells_without_enough_segments_are_excluded_with_a_reason(table):
    table = table.set_index(["emotion", "vowel"])
    row = table.loc[("neu", "ɔ")]
    assert (row["n_source"], row["n_target"]) == (0, 0)
    assert math.isnan(row["Com"]) and "source 0 < 2" in row["excluded"] and "target 0 < 2" in row["excluded"]
    assert len(table) == 2 * 10  # every emotion × inventory vowel is listed
    assert (table["excluded"] == "").sum() == 4


def test_com_formula():
    assert com_score(0.6, 0.4) == pytest.approx(0.6)
    assert com_score(1.0, 0.0) == 1.0 and com_score(-1.0, 1.0) == -0.5


def test_tables_written_as_csv_and_markdown(table, tmp_path):
    write_commonality(table, tmp_path)
    csv = (tmp_path / "commonality.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0] == "emotion,kind,vowel,n_source,n_target,CS,ED,ED_norm,Com,excluded"
    markdown = commonality_markdown(table)
    assert "| mono | u | — (n 0/0) | **0.250** (0.000, 1.41) |" in markdown
    assert markdown.splitlines()[0] == "| kind | vowel | ang | neu |"  # emotions sorted by default
