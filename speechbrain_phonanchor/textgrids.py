"""Reading and writing Montreal-Forced-Aligner-style TextGrids with praatio.

MFA writes one TextGrid per utterance with a ``words`` and a ``phones`` interval
tier, or ``<speaker> - words`` / ``<speaker> - phones`` when it aligned several
speakers, in Praat's long or short text format.  Silence is an empty interval
(older releases: ``sil``/``sp``); unknown words are ``spn``/``<unk>``.
:func:`read_alignment` turns such a file into phones and vowels with times;
:func:`write_alignment` writes exactly that layout (the built-in aligner uses it).

Example
-------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "u.TextGrid"
>>> write_alignment(path, words=[("hi", 0.1, 0.4)],
...                 phones=[("HH", 0.1, 0.2), ("AY1", 0.2, 0.4)], duration=0.5)
>>> ali = read_alignment(path, "arpabet", audio_duration=0.5)
>>> [v["vowel"] for v in ali.vowels], ali.phones[0]
(['aɪ'], ['sil', 0.0, 0.1])
"""

import pathlib
from dataclasses import dataclass, field

from praatio import textgrid as praat_textgrid

from speechbrain_phonanchor.errors import InputError
from speechbrain_phonanchor.fileio import atomic_path
from speechbrain_phonanchor.phonetics import is_non_speech, map_phone

DURATION_TOLERANCE = 0.05  # seconds between the TextGrid's end and the audio's
SILENCE = "sil"


class TextGridError(InputError):
    """A TextGrid that cannot be used; ``reason`` is a short tag, the message names the file."""


@dataclass
class Alignment:
    """Words, phones (``[label, start, end]``, silence as ``sil``) and vowel dicts of one utterance."""

    words: list = field(default_factory=list)
    phones: list = field(default_factory=list)
    vowels: list = field(default_factory=list)
    duration: float = 0.0


def _find_tier(tg, kind, path):
    """Return the ``words``/``phones`` tier, accepting ``<speaker> - phones`` names."""
    names = list(tg.tierNames)
    exact = [n for n in names if n.strip().lower() == kind]
    speaker = [n for n in names if n.strip().lower().endswith(f"- {kind}")]
    candidates = exact or speaker
    if not candidates:
        return None
    if len(candidates) > 1:
        raise TextGridError(path, f"several_{kind}_tiers", ", ".join(candidates))
    return tg.getTier(candidates[0])


def read_alignment(path, phone_set, audio_duration=None, tolerance=DURATION_TOLERANCE):
    """Read one MFA TextGrid into an :class:`Alignment`.

    Arguments
    ---------
    path : str or Path
        The TextGrid (long or short format).
    phone_set : str
        Phone set of the ``phones`` tier (see :data:`phonetics.PHONE_SETS`).
    audio_duration : float, optional
        If given, a TextGrid whose end differs from it by more than ``tolerance``
        seconds is refused (it belongs to another recording or was cut).
    tolerance : float
        Allowed end mismatch in seconds (default 50 ms).

    Returns
    -------
    Alignment
        ``phones`` covers the whole file (gaps and silences as ``sil``); ``vowels``
        holds only the phones that map into the vowel inventory.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise TextGridError(path, "missing_textgrid")
    try:
        tg = praat_textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as err:  # praatio raises several types for malformed files
        raise TextGridError(path, "unreadable_textgrid", str(err)) from err
    phone_tier = _find_tier(tg, "phones", path)
    if phone_tier is None:
        raise TextGridError(path, "no_phones_tier", f"tiers: {', '.join(tg.tierNames) or 'none'}")
    if audio_duration is not None and abs(tg.maxTimestamp - audio_duration) > tolerance:
        raise TextGridError(
            path,
            "duration_mismatch",
            f"TextGrid ends at {tg.maxTimestamp:.3f} s, audio lasts {audio_duration:.3f} s",
        )
    word_tier = _find_tier(tg, "words", path)
    words = [] if word_tier is None else [
        (e.label.strip(), round(e.start, 4), round(e.end, 4)) for e in word_tier.entries if e.label.strip()
    ]
    phones, vowels, cursor = [], [], tg.minTimestamp
    for entry in phone_tier.entries:
        label, start, end = entry.label.strip(), round(entry.start, 4), round(entry.end, 4)
        if start > cursor + 1e-4:
            phones.append([SILENCE, round(cursor, 4), start])
        cursor = end
        if is_non_speech(label):
            phones.append([label.lower() or SILENCE, start, end])
            continue
        phones.append([label, start, end])
        info = map_phone(label, phone_set)
        if info.vowel is not None:
            vowels.append(
                {"phone": label, "ipa": info.ipa, "vowel": info.vowel, "kind": info.kind, "start": start, "end": end}
            )
    if not any(not is_non_speech(p[0]) for p in phones):
        raise TextGridError(path, "empty_textgrid", "no speech phones in the phones tier")
    if tg.maxTimestamp > cursor + 1e-4:
        phones.append([SILENCE, round(cursor, 4), round(tg.maxTimestamp, 4)])
    return Alignment(words=words, phones=phones, vowels=vowels, duration=float(tg.maxTimestamp))


def write_alignment(path, words, phones, duration):
    """Write ``words`` and ``phones`` (``(label, start, end)`` triples) as an MFA-layout TextGrid.

    Silence is left as empty intervals, like MFA; the file is Praat's long text
    format and is written atomically.
    """
    tg = praat_textgrid.Textgrid()
    for name, entries in (("words", words), ("phones", phones)):
        kept = [(float(s), float(e), label) for label, s, e in entries if label and not is_non_speech(label)]
        tg.addTier(praat_textgrid.IntervalTier(name, kept, 0.0, float(duration)))
    with atomic_path(path) as tmp:
        tg.save(tmp, format="long_textgrid", includeBlankSpaces=True)
