"""G2P tables per language, normalisation, problems reported, and the mapping into the vowel inventory."""

import pytest

from speechbrain_phonanchor.align.g2p import NORMALISED, UNPRONOUNCEABLE, G2PError, make_g2p, pinyin_to_ipa
from speechbrain_phonanchor.phonetics import map_phone

TABLES = {
    "pl": {"dzień": "dʑ ɛ ɲ", "dobry": "d ɔ b r ɨ", "szybko": "ʃ ɨ p k ɔ", "miesiąc": "mʲ ɛ ɕ ɔ n ts"},
    "it": {"ciao": "tʃ a o", "gli": "ʎ ɪ", "presto": "p r ɛ s t o", "più": "p j u"},
    "de": {"zeit": "ts aɪ t", "schön": "ʃ ø n"},
    "ru": {"мир": "mʲ i r", "привет": "p rʲ i vʲ e t"},
    "en": {"hello": "h ə l oʊ", "father": "f ɑ ð ɚ", "phonanchor": "f ɑ n æ ŋ k ɚ"},  # the last: espeak fallback
    "zh": {"你": "n i", "好": "x ɑʊ", "中": "ʈʂ ʊ ŋ", "去": "tɕʰ y", "是": "ʂ ɻ̩", "ni3": "n i"},
}


@pytest.mark.parametrize("lang", sorted(TABLES))
def test_pronunciation_tables(lang):
    g2p = make_g2p(lang)
    for word, phones in TABLES[lang].items():
        assert " ".join(g2p.pronounce(word)) == phones, word


@pytest.mark.parametrize(
    "lang, text, vowels",
    [
        ("pl", "Ten miesiąc minął bardzo szybko.", ["ɛ", "ɛ", "ɔ", "i", "ɔ", "a", "ɔ", "i", "ɔ"]),
        ("it", "La cascata fa molto rumore.", ["a", "a", "a", "a", "a", "ɔ", "ɔ", "u", "ɔ", "ɛ"]),
        ("en", "my house", ["aɪ", "aʊ"]),
        ("zh", "我爱你", ["ɔ", "aɪ", "i"]),
    ],
)
def test_phones_map_into_the_vowel_inventory(lang, text, vowels):
    phones = make_g2p(lang).transcribe(text).phones
    assert [map_phone(p, "espeak").vowel for p in phones if map_phone(p, "espeak").vowel] == vowels


def test_normalisation_case_punctuation_hyphens():
    tr = make_g2p("pl").transcribe("„Dzień” DOBRY, e-mail!!")
    assert [w.text for w in tr.words] == ["dzień", "dobry", "e", "mail"]
    assert tr.problems == []


def test_digits_expanded_by_espeak_and_reported():
    tr = make_g2p("pl").transcribe("Mam 23 lata")
    assert tr.words[1].text == "23" and len(tr.words[1].phones) > 5
    assert tr.problems == [("23", NORMALISED)]


def test_symbols_and_mandarin_digits_are_unpronounceable_not_guessed():
    tr = make_g2p("it").transcribe("sconto 50 % oggi")
    assert ("%", UNPRONOUNCEABLE) in tr.problems
    assert [w.phones for w in tr.words if w.text == "%"] == [()]
    zh = make_g2p("zh").transcribe("我有 3 个 qwrtz")
    assert ("3", UNPRONOUNCEABLE) in zh.problems and ("qwrtz", UNPRONOUNCEABLE) in zh.problems
    assert [w.text for w in zh.words] == ["我", "有", "3", "个", "qwrtz"]


def test_mandarin_reads_polyphones_in_context():
    words = make_g2p("zh").transcribe("银行 行走").words
    assert [w.phones for w in words if w.text == "行"] == [("x", "ɑ", "ŋ"), ("ɕ", "i", "ŋ")]


def test_pinyin_spelling_rules():
    assert pinyin_to_ipa("yu") == ("y",)
    assert pinyin_to_ipa("liu2") == ("l", "j", "ou")
    assert pinyin_to_ipa("gui4") == ("k", "w", "eɪ")
    assert pinyin_to_ipa("zi") == ("ts", "ɹ̩")
    assert pinyin_to_ipa("hello") == ()


def test_empty_and_punctuation_only_text():
    assert make_g2p("it").transcribe("").words == []
    assert make_g2p("it").transcribe(" ... !? ").words == []


def test_unknown_language_lists_supported():
    with pytest.raises(G2PError) as err:
        make_g2p("klingon")
    message = str(err.value)
    for code in ("en", "zh", "pl", "it", "de", "ru"):
        assert f" {code}," in message or message.endswith(f" {code}")
