"""Phone tables: for each phone set, what maps to which inventory vowel and what stays a phone."""

import pytest

from speechbrain_phonanchor.phonetics import (
    DIPHTHONGS,
    MONOPHTHONGS,
    PHONE_SETS,
    VOWELS,
    is_non_speech,
    map_phone,
    phone_set_table,
    vowel_table,
)

# phone set → {aligned phone: expected inventory vowel (None: stays a phone)}
TABLES = {
    "arpabet": {
        "IY1": "i", "IH0": "i", "EH2": "ɛ", "AH0": "ə", "AH1": "ə", "ER0": "ə", "AA1": "a", "AE1": "a",
        "AO1": "ɔ", "UW1": "u", "UH1": "u", "AY1": "aɪ", "EY1": "eɪ", "AW2": "aʊ", "OW0": "oʊ",
        "OY1": None, "T": None, "HH": None, "NG": None, "S": None, "R": None,
    },
    "english_mfa": {
        "i": "i", "iː": "i", "ɪ": "i", "ɛ": "ɛ", "ə": "ə", "ɚ": "ə", "æ": "a", "ɑ": "a", "ɑː": "a", "ɔ": "ɔ",
        "ʉ": "u", "ʊ": "u", "aj": "aɪ", "ej": "eɪ", "aw": "aʊ", "ow": "oʊ", "ɔj": None, "tʃ": None, "ɹ": None,
    },
    "mandarin_mfa": {
        "i˥": "i", "e˧": "ɛ", "ɤ˥˩": "ə", "a˥˩": "a", "o˧˥": "ɔ", "u˨˩˦": "u", "aj˧˥": "aɪ", "ej˥": "eɪ",
        "aw˨˩": "aʊ", "ow˧": "oʊ", "ʂ": None, "tɕʰ": None, "ŋ": None, "y˧˥": None,
    },
    "russian_mfa": {
        "i": "i", "ɨ": "i", "ɪ": "i", "e": "ɛ", "ɛ": "ɛ", "ə": "ə", "a": "a", "ɐ": "a", "o": "ɔ", "u": "u",
        "ʊ": "u", "ʉ": "u", "tʲ": None, "ʂ": None, "rʲ": None,
    },
    "espeak": {
        "ˈiː": "i", "ɪ": "i", "ᵻ": "i", "ɛ": "ɛ", "e": "ɛ", "ə": "ə", "ɜː": "ə", "ˈa": "a", "ɑː": "a",
        "ɔ": "ɔ", "uː": "u", "ˈaɪ": "aɪ", "eɪ": "eɪ", "aʊ": "aʊ", "oʊ": "oʊ", "əʊ": "oʊ", "θ": None,
        "ɾ": None, "ɔɪ": None,
    },
}
TABLES["english_us_arpa"] = TABLES["arpabet"]
TABLES["ipa"] = {"a": "a", "ɐ": "a", "ɔ": "ɔ", "p": None}


def test_every_phone_set_has_a_table_test():
    assert set(TABLES) == set(PHONE_SETS)


@pytest.mark.parametrize("phone_set", sorted(PHONE_SETS))
def test_phone_table(phone_set):
    for phone, vowel in TABLES[phone_set].items():
        info = map_phone(phone, phone_set)
        assert info.vowel == vowel, f"{phone_set} {phone!r} → {info.vowel!r}, expected {vowel!r}"
        assert info.phone == phone
        if vowel is None:
            assert info.kind is None
        else:
            assert info.kind == ("mono" if vowel in MONOPHTHONGS else "diph")


@pytest.mark.parametrize("phone_set", ["arpabet", "english_mfa", "mandarin_mfa", "espeak"])
def test_all_ten_inventory_vowels_are_reachable(phone_set):
    reached = {vowel for vowel in TABLES[phone_set].values() if vowel}
    assert reached == set(VOWELS)


def test_russian_reaches_every_monophthong():
    assert {v for v in TABLES["russian_mfa"].values() if v} == set(MONOPHTHONGS)


def test_tables_are_consistent_data():
    arpabet = phone_set_table("arpabet")
    assert arpabet["AH0"] == "ə" and arpabet["AY"] == "aɪ" and len(arpabet) >= 39
    for ipa, (vowel, kind) in vowel_table().items():
        assert vowel in (MONOPHTHONGS if kind == "mono" else DIPHTHONGS), ipa


def test_non_speech_and_unknown_phone_set():
    for label in ("", "sil", "sp", "spn", "<unk>", "SIL"):
        assert is_non_speech(label)
    assert not is_non_speech("a")
    with pytest.raises(ValueError, match="unknown phone set 'klingon'"):
        map_phone("a", "klingon")
