"""The cross-lingual vowel inventory and the maps into it from each phone set.

The mapping is data: ``phone_tables/phone_sets.tsv`` maps non-IPA phone sets (ARPABET)
to IPA and ``phone_tables/vowel_inventory.tsv`` maps IPA symbols to the ten anchor vowels
of DESIGN.md (monophthongs ``i ɛ ə a ɔ u``, diphthongs ``aɪ eɪ aʊ oʊ``).  Both are
plain tab-separated tables a linguist can read and extend.  A phone that is not
in the inventory keeps its IPA and is never a vowel.

Example
-------
>>> map_phone("IY1", "arpabet")
PhoneInfo(phone='IY1', ipa='i', vowel='i', kind='mono')
>>> map_phone("aj˧˥", "mandarin_mfa").vowel
'aɪ'
>>> map_phone("tʲ", "russian_mfa").vowel is None
True
"""

import functools
import pathlib
import unicodedata
from dataclasses import dataclass
from typing import Optional

TABLES_DIR = pathlib.Path(__file__).parent / "phone_tables"
MONOPHTHONGS = ("i", "ɛ", "ə", "a", "ɔ", "u")
DIPHTHONGS = ("aɪ", "eɪ", "aʊ", "oʊ")
VOWELS = MONOPHTHONGS + DIPHTHONGS
KINDS = {"mono": MONOPHTHONGS, "diph": DIPHTHONGS, "both": VOWELS}

# Labels aligners use for silence, noise and unknown words: never phones of speech.
NON_SPEECH = frozenset({"", "sil", "sp", "spn", "<sil>", "<unk>", "<eps>", "unk", "nsn"})

# Characters removed before lookup: stress and length marks, tone letters, digits
# (ARPABET stress, espeak-ng Mandarin tone numbers), tie bars.
_STRIP = "ˈˌːˑ˥˦˧˨˩0123456789\u0361\u035c"

# Phone set name → the table it is looked up in ("ipa" means: already IPA).
PHONE_SETS = {
    "arpabet": "arpabet",
    "english_us_arpa": "arpabet",
    "english_mfa": "ipa",
    "mandarin_mfa": "ipa",
    "russian_mfa": "ipa",
    "espeak": "ipa",
    "ipa": "ipa",
}


@dataclass(frozen=True)
class PhoneInfo:
    """One phone as aligned (``phone``), its IPA, and its inventory vowel (or None)."""

    phone: str
    ipa: str
    vowel: Optional[str] = None
    kind: Optional[str] = None


def _read_table(path, n_columns):
    rows = []
    for line_no, line in enumerate(pathlib.Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < n_columns:
            raise ValueError(f"{path}:{line_no}: expected {n_columns} tab-separated columns, got {line!r}")
        rows.append(tuple(f.strip() for f in fields[:n_columns]))
    return rows


@functools.cache
def vowel_table(path=TABLES_DIR / "vowel_inventory.tsv"):
    """Return ``{ipa: (vowel, kind)}`` read from the inventory table."""
    table = {}
    for ipa, vowel, kind in _read_table(path, 3):
        if vowel not in VOWELS or KINDS[kind] is None or vowel not in KINDS[kind]:
            raise ValueError(f"{path}: row {ipa!r} maps to {vowel!r}/{kind!r}, not an inventory vowel")
        table[ipa] = (vowel, kind)
    return table


@functools.cache
def phone_set_table(phone_set, path=TABLES_DIR / "phone_sets.tsv"):
    """Return ``{phone: ipa}`` for a non-IPA phone set (e.g. ``arpabet``)."""
    return {phone: ipa for name, phone, ipa in _read_table(path, 3) if name == phone_set}


def strip_suprasegmentals(symbol):
    """Remove stress, length, tone letters/digits and tie bars from ``symbol``.

    >>> strip_suprasegmentals("ˈaː˥˩")
    'a'
    """
    return "".join(ch for ch in symbol if ch not in _STRIP)


def _strip_diacritics(symbol):
    return "".join(ch for ch in unicodedata.normalize("NFD", symbol) if unicodedata.category(ch) != "Mn")


def is_non_speech(phone):
    """True for silence/noise/unknown labels (``sil``, ``sp``, ``spn``, ``<unk>``, empty)."""
    return phone.strip().lower() in NON_SPEECH


@functools.lru_cache(maxsize=65536)
def map_phone(phone, phone_set):
    """Map one aligned phone of ``phone_set`` to IPA and to the vowel inventory.

    Arguments
    ---------
    phone : str
        The phone label as the aligner wrote it (``"AH0"``, ``"aj˧˥"``, ``"ɛ"``).
    phone_set : str
        One of ``PHONE_SETS`` (``arpabet``, ``english_us_arpa``, ``english_mfa``,
        ``mandarin_mfa``, ``russian_mfa``, ``espeak``, ``ipa``).

    Returns
    -------
    PhoneInfo

    Example
    -------
    >>> map_phone("AH0", "arpabet").vowel
    'ə'
    >>> map_phone("OY1", "arpabet").vowel is None
    True
    """
    if phone_set not in PHONE_SETS:
        raise ValueError(f"unknown phone set {phone_set!r}; known: {', '.join(sorted(PHONE_SETS))}")
    label = phone.strip()
    if PHONE_SETS[phone_set] == "arpabet":
        table = phone_set_table("arpabet")
        upper = label.upper()
        ipa = table.get(upper) or table.get(upper.rstrip("012")) or label
    else:
        ipa = label
    ipa = strip_suprasegmentals(unicodedata.normalize("NFC", ipa))
    vowels = vowel_table()
    hit = vowels.get(ipa) or vowels.get(_strip_diacritics(ipa))
    if hit is None:
        return PhoneInfo(phone=phone, ipa=ipa)
    return PhoneInfo(phone=phone, ipa=ipa, vowel=hit[0], kind=hit[1])


def vowels_of_kind(kind):
    """Return the inventory vowels for ``kind`` in ``{"mono", "diph", "both"}``."""
    if kind not in KINDS:
        raise ValueError(f"unknown vowel kind {kind!r}; use one of {sorted(KINDS)}")
    return KINDS[kind]
