"""Confusion matrices: counts, class order, sums over seeds, PNGs."""

import pandas as pd

from speechbrain_phonanchor.experiments.confusion import confusion_counts, plot_confusions

CLASSES = ["neu", "hap", "ang", "sad"]


def predictions(pairs):
    rows = [{"id": f"u{i}", "label": t, "prediction": p, **{f"p_{c}": 0.25 for c in CLASSES}}
            for i, (t, p) in enumerate(pairs)]
    return pd.DataFrame(rows)


def test_counts_follow_the_class_order_of_the_probabilities():
    frame = predictions([("neu", "neu"), ("neu", "sad"), ("ang", "hap"), ("ang", "hap"), ("sad", "sad")])
    counts = confusion_counts(frame)
    assert list(counts.index) == CLASSES and list(counts.columns) == CLASSES
    assert counts.loc["neu", "neu"] == 1 and counts.loc["neu", "sad"] == 1
    assert counts.loc["ang", "hap"] == 2 and counts.loc["ang", "ang"] == 0
    assert counts.loc["hap"].sum() == 0 and counts.values.sum() == 5


def test_unlabelled_rows_are_left_out():
    frame = predictions([("neu", "neu"), ("", "sad")])
    assert confusion_counts(frame).values.sum() == 1


def test_one_png_per_variant_summing_seeds(tmp_path):
    files = {}
    for variant, seed, pairs in (("CL", 1, [("neu", "hap")]), ("CL", 2, [("neu", "hap"), ("sad", "sad")]),
                                 ("AGA-CL", 1, [("hap", "hap")])):
        files[(variant, seed)] = tmp_path / f"{variant}_{seed}.csv"
        predictions(pairs).to_csv(files[(variant, seed)], index=False)
    results = pd.DataFrame([{"direction": "a→b", "task": "4class", "variant": v, "seed": s, "predictions_file": str(f)}
                            for (v, s), f in files.items()] +
                           [{"direction": "a→b", "task": "4class", "variant": "DANN", "seed": 1,
                             "predictions_file": str(tmp_path / "missing.csv")}])
    written = plot_confusions(results, tmp_path / "confusion")
    assert sorted(p.name for p in written) == ["a_to_b_4class_AGA-CL.png", "a_to_b_4class_CL.png"]
    counts = pd.read_csv(tmp_path / "confusion" / "a_to_b_4class_CL.csv", index_col=0)
    assert counts.loc["neu", "hap"] == 2 and counts.loc["sad", "sad"] == 1 and counts.values.sum() == 3
    assert all(p.stat().st_size > 1000 for p in written)
