"""The analysis subset: capped per emotion, seeded, order-independent, skips counted."""

from speechbrain_phonanchor.analysis.subset import draw_subset


def _manifest(n_per_emotion):
    manifest = {}
    for emotion, n in n_per_emotion.items():
        for i in range(n):
            manifest[f"{emotion}_{i:03d}"] = {"emo": emotion, "vowels": [{"vowel": "a", "kind": "mono"}]}
    return manifest


def test_caps_each_emotion_and_keeps_all_when_fewer():
    subset = draw_subset(_manifest({"neu": 50, "ang": 7}), per_emotion=20, seed=3)
    assert subset.counts == {"ang": 7, "neu": 20}
    assert subset.available == {"ang": 7, "neu": 50}
    assert all(entry["emo"] in ("neu", "ang") for entry in subset.entries.values())


def test_draw_is_seeded_and_independent_of_manifest_order():
    manifest = _manifest({"neu": 60, "sad": 60})
    reversed_manifest = dict(reversed(list(manifest.items())))
    first = draw_subset(manifest, per_emotion=10, seed=1)
    again = draw_subset(reversed_manifest, per_emotion=10, seed=1)
    other_seed = draw_subset(manifest, per_emotion=10, seed=2)
    assert list(first.entries) == list(again.entries)
    assert set(first.entries) != set(other_seed.entries)


def test_unusable_utterances_are_counted_by_reason():
    manifest = _manifest({"hap": 3})
    manifest["no_label"] = {"emo": None, "vowels": [{"vowel": "i"}]}
    manifest["fear"] = {"emo": "fea", "vowels": [{"vowel": "i"}]}
    manifest["silent"] = {"emo": "hap", "vowels": []}
    subset = draw_subset(manifest, per_emotion=10, emotions=["hap", "neu"])
    assert subset.counts == {"hap": 3}
    assert dict(subset.skipped) == {"no_emotion": 1, "unknown_emotion": 1, "no_vowels": 1}
