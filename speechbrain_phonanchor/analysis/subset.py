"""The analysis subset: up to N labelled utterances per emotion, drawn with a seed.

The paper analyses 500 utterances per emotion from each corpus's validation
split.  :func:`draw_subset` draws that many (all of them when fewer exist) from
one manifest.  Utterances that cannot contribute are never dropped silently:
each is counted under a reason (``no_emotion``, ``unknown_emotion``,
``no_vowels``) in the returned :class:`Subset`.  The target's labels are read
only here, for this subset, and only by the analysis.

The draw is deterministic: utterance ids are sorted per emotion and sampled
with ``random.Random(seed)``, emotions in sorted order, so the same manifest
and seed always give the same subset whatever the manifest's key order.

Example
-------
>>> manifest = {f"u{i}": {"emo": "neu" if i % 2 else "ang", "vowels": [{"vowel": "a"}]} for i in range(10)}
>>> manifest["x"] = {"emo": None, "vowels": []}
>>> sub = draw_subset(manifest, per_emotion=3, seed=0)
>>> sub.counts, dict(sub.skipped)
({'ang': 3, 'neu': 3}, {'no_emotion': 1})
"""

import collections
import random
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

SKIP_REASONS = ("no_emotion", "unknown_emotion", "no_vowels")


@dataclass
class Subset:
    """A drawn analysis subset.

    Attributes
    ----------
    entries : dict
        Utterance id → manifest entry, grouped by emotion (sorted) then id.
    available : dict
        Emotion → number of usable utterances the manifest had.
    skipped : collections.Counter
        Reason → number of manifest utterances that could not be used.
    """

    entries: Dict[str, dict]
    available: Dict[str, int]
    skipped: collections.Counter = field(default_factory=collections.Counter)

    @property
    def counts(self):
        """Emotion → number of utterances drawn."""
        counts = collections.Counter(entry["emo"] for entry in self.entries.values())
        return dict(sorted(counts.items()))


def draw_subset(manifest, per_emotion=500, seed=0, emotions: Optional[Sequence[str]] = None):
    """Draw up to ``per_emotion`` utterances per emotion from ``manifest``.

    Arguments
    ---------
    manifest : dict
        Utterance id → entry with at least ``emo`` and ``vowels``.
    per_emotion : int
        Most utterances kept per emotion; all usable ones when fewer exist.
    seed : int
        Seed of the draw.
    emotions : sequence of str, optional
        Emotions to keep; others are counted as ``unknown_emotion``.  Default:
        every emotion the manifest has.

    Returns
    -------
    Subset

    Example
    -------
    >>> m = {"a": {"emo": "hap", "vowels": []}, "b": {"emo": "sad", "vowels": [{"vowel": "i"}]}}
    >>> sub = draw_subset(m, emotions=["hap", "neu"])
    >>> list(sub.entries), sorted(sub.skipped.items())
    ([], [('no_vowels', 1), ('unknown_emotion', 1)])
    """
    if per_emotion < 1:
        raise ValueError(f"per_emotion must be at least 1, got {per_emotion}")
    wanted = None if emotions is None else set(emotions)
    skipped = collections.Counter()
    pools = collections.defaultdict(list)
    for utt_id, entry in manifest.items():
        emotion = entry.get("emo")
        if emotion is None:
            skipped["no_emotion"] += 1
        elif wanted is not None and emotion not in wanted:
            skipped["unknown_emotion"] += 1
        elif not entry.get("vowels"):
            skipped["no_vowels"] += 1
        else:
            pools[emotion].append(utt_id)
    rng = random.Random(seed)
    entries = {}
    for emotion in sorted(pools):
        ids = sorted(pools[emotion])
        drawn = ids if len(ids) <= per_emotion else sorted(rng.sample(ids, per_emotion))
        entries.update((utt_id, manifest[utt_id]) for utt_id in drawn)
    available = {emotion: len(pools[emotion]) for emotion in sorted(pools)}
    return Subset(entries=entries, available=available, skipped=skipped)
