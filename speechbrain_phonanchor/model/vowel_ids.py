"""Integer ids of the cross-lingual vowels, as the model's tensors carry them.

Segment vowel ids are positions in :data:`speechbrain_phonanchor.phonetics.VOWELS`;
``NONE_ID`` marks a segment that is not a vowel (a fixed 240 ms chunk of an
utterance without alignment) and ``PAD_ID`` marks padding in a batch.

Example
-------
>>> vowel_id("i"), vowel_id(None), N_VOWEL_IDS
(0, 10, 11)
>>> vowel_ids(["a", "oʊ"])
[3, 9]
"""

from speechbrain_phonanchor.phonetics import VOWELS

VOWEL_TO_ID = {vowel: index for index, vowel in enumerate(VOWELS)}
NONE_ID = len(VOWELS)
N_VOWEL_IDS = NONE_ID + 1
PAD_ID = -1


def vowel_id(vowel):
    """Return the id of ``vowel`` (an inventory vowel), or ``NONE_ID`` for None / ``"none"``."""
    if vowel is None or vowel == "none":
        return NONE_ID
    if vowel not in VOWEL_TO_ID:
        raise ValueError(f"{vowel!r} is not an inventory vowel; known: {' '.join(VOWELS)}")
    return VOWEL_TO_ID[vowel]


def vowel_ids(vowels):
    """Return the ids of a list of vowels."""
    return [vowel_id(vowel) for vowel in vowels]
