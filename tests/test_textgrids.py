"""TextGrid ingest: MFA long and short formats, tier names, silences and unknowns, every TextGridError reason."""

import pytest

from speechbrain_phonanchor.textgrids import TextGridError, read_alignment, write_alignment

LONG = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.0
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.0
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.5
            text = "bite"
        intervals [3]:
            xmin = 0.5
            xmax = 1.0
            text = "<unk>"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.0
        intervals: size = 6
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.2
            text = "B"
        intervals [3]:
            xmin = 0.2
            xmax = 0.4
            text = "AY1"
        intervals [4]:
            xmin = 0.4
            xmax = 0.5
            text = "T"
        intervals [5]:
            xmin = 0.5
            xmax = 0.8
            text = "spn"
        intervals [6]:
            xmin = 0.8
            xmax = 1.0
            text = "sil"
"""

SHORT = """File type = "ooTextFile"
Object class = "TextGrid"

0
0.9
<exists>
2
"IntervalTier"
"spk1 - words"
0
0.9
2
0
0.5
"ni3hao3"
0.5
0.9
""
"IntervalTier"
"spk1 - phones"
0
0.9
4
0
0.1
"n"
0.1
0.3
"aj˧˥"
0.3
0.5
"ow˨˩˦"
0.5
0.9
""
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_long_format_with_empty_intervals_sil_spn_and_unk(tmp_path):
    ali = read_alignment(write(tmp_path, "long.TextGrid", LONG), "arpabet", audio_duration=1.0)
    assert ali.phones == [["sil", 0.0, 0.1], ["B", 0.1, 0.2], ["AY1", 0.2, 0.4], ["T", 0.4, 0.5],
                          ["spn", 0.5, 0.8], ["sil", 0.8, 1.0]]
    assert ali.vowels == [{"phone": "AY1", "ipa": "aɪ", "vowel": "aɪ", "kind": "diph", "start": 0.2, "end": 0.4}]
    assert ali.words == [("bite", 0.1, 0.5), ("<unk>", 0.5, 1.0)]
    assert ali.duration == 1.0


def test_short_format_with_speaker_tiers(tmp_path):
    ali = read_alignment(write(tmp_path, "short.TextGrid", SHORT), "mandarin_mfa", audio_duration=0.92)
    assert [v["vowel"] for v in ali.vowels] == ["aɪ", "oʊ"]
    assert [v["ipa"] for v in ali.vowels] == ["aj", "ow"]  # tone letters stripped
    assert ali.phones[-1] == ["sil", 0.5, 0.9] and ali.words == [("ni3hao3", 0.0, 0.5)]


def test_write_then_read_round_trip(tmp_path):
    path = tmp_path / "rt.TextGrid"
    write_alignment(path, words=[("oh", 0.2, 0.4)], phones=[("OW1", 0.2, 0.4), ("spn", 0.4, 0.5)], duration=0.6)
    ali = read_alignment(path, "arpabet")
    assert ali.phones == [["sil", 0.0, 0.2], ["OW1", 0.2, 0.4], ["sil", 0.4, 0.6]]
    assert ali.vowels[0]["vowel"] == "oʊ"


def reason_of(path, phone_set="arpabet", **kwargs):
    with pytest.raises(TextGridError) as err:
        read_alignment(path, phone_set, **kwargs)
    assert str(path) in str(err.value)
    return err.value.reason


def test_missing_textgrid(tmp_path):
    assert reason_of(tmp_path / "none.TextGrid") == "missing_textgrid"


def test_unreadable_textgrid(tmp_path):
    assert reason_of(write(tmp_path, "bad.TextGrid", "this is not a TextGrid\n")) == "unreadable_textgrid"


def test_no_phones_tier(tmp_path):
    text = LONG.replace('name = "phones"', 'name = "segments"')
    assert reason_of(write(tmp_path, "np.TextGrid", text)) == "no_phones_tier"


def test_several_phones_tiers(tmp_path):
    text = LONG.replace('name = "words"', 'name = "spk2 - phones"').replace('name = "phones"', 'name = "spk1 - phones"')
    assert reason_of(write(tmp_path, "two.TextGrid", text)) == "several_phones_tiers"


@pytest.mark.parametrize("audio,ok", [(1.0, True), (1.049, True), (0.951, True), (1.06, False), (0.9, False)])
def test_duration_mismatch_beyond_50_ms(tmp_path, audio, ok):
    path = write(tmp_path, "d.TextGrid", LONG)
    if ok:
        assert read_alignment(path, "arpabet", audio_duration=audio).duration == 1.0
    else:
        assert reason_of(path, audio_duration=audio) == "duration_mismatch"


def test_empty_textgrid(tmp_path):
    path = tmp_path / "e.TextGrid"
    write_alignment(path, words=[], phones=[], duration=0.5)
    assert reason_of(path) == "empty_textgrid"
    only_noise = tmp_path / "n.TextGrid"
    write_alignment(only_noise, words=[("<unk>", 0.1, 0.3)], phones=[("spn", 0.1, 0.3)], duration=0.5)
    assert reason_of(only_noise) == "empty_textgrid"
