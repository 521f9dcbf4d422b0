"""MFA runner: corpus layout, command line, missing-MFA error, and a full run with a stand-in ``mfa``."""

import json
import os
import stat
import sys
import textwrap

import numpy as np
import pytest
import soundfile
from prepare_fixtures import write_table, write_wav

from speechbrain_phonanchor import mfa
from speechbrain_phonanchor.manifest import load_manifest, save_manifest
from speechbrain_phonanchor.prepare import prepare_generic
from speechbrain_phonanchor.prepare.cli import main


def test_write_mfa_corpus_layout(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([0.2 * np.sin(2 * np.pi * 200 * t)] * 2, axis=1)
    soundfile.write(tmp_path / "a.flac", stereo, 8000)
    write_wav(tmp_path / "b.wav")
    write_wav(tmp_path / "c.wav")
    save_manifest({
        "a": {"wav": "{data_root}/a.flac", "duration": 1.0, "spk": "s1", "text": "  ciao\n  mondo "},
        "b": {"wav": "{data_root}/b.wav", "duration": 0.5, "spk": None, "text": "hello"},
        "c": {"wav": "{data_root}/c.wav", "duration": 0.5, "spk": "s2", "text": None},
        "d": {"wav": "{data_root}/gone.wav", "duration": 0.5, "spk": "s2", "text": "x"},
        "e/f": {"wav": "{data_root}/c.wav", "duration": 0.5, "spk": "s2", "text": "x"},
    }, tmp_path / "m.json")
    result = mfa.write_mfa_corpus([tmp_path / "m.json"], tmp_path / "corpus", data_root=str(tmp_path))
    assert result == {"written": 2, "skipped": {"no_transcript": ["c"], "missing_audio": ["d"],
                                                "unsafe_file_name": ["e/f"]}}
    files = sorted(str(p.relative_to(tmp_path / "corpus")) for p in (tmp_path / "corpus").rglob("*") if p.is_file())
    assert files == ["s1/a.lab", "s1/a.wav", "unknown_speaker/b.lab", "unknown_speaker/b.wav"]
    assert (tmp_path / "corpus" / "s1" / "a.lab").read_text() == "ciao mondo\n"
    info = soundfile.info(tmp_path / "corpus" / "s1" / "a.wav")
    assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")


def test_align_command_and_config(tmp_path):
    cfg = mfa.MFAConfig.for_phone_set("mandarin_mfa", num_jobs=3)
    assert mfa.mfa_align_command(tmp_path / "c", tmp_path / "o", cfg) == [
        "mfa", "align", str(tmp_path / "c"), "mandarin_taiwan_mfa", "mandarin_mfa", str(tmp_path / "o"),
        "--clean", "--num_jobs", "3", "--output_format", "long_textgrid",
    ]
    (tmp_path / "mfa.yaml").write_text("acoustic_model: /m/ru.zip\nbeam: 100\nextra_args: [--use_mp]\n")
    cfg = mfa.MFAConfig.from_yaml(tmp_path / "mfa.yaml", phone_set="russian_mfa")
    command = mfa.mfa_align_command("c", "o", cfg, executable="/opt/mfa")
    assert command[:6] == ["/opt/mfa", "align", "c", "russian_mfa", "/m/ru.zip", "o"]
    assert command[-3:] == ["--beam", "100", "--use_mp"]
    (tmp_path / "bad.yaml").write_text("dictionnary: x\n")
    with pytest.raises(ValueError, match="unknown MFA config keys"):
        mfa.MFAConfig.from_yaml(tmp_path / "bad.yaml", phone_set="arpabet")
    with pytest.raises(ValueError, match="no default MFA models for phone set 'espeak'"):
        mfa.MFAConfig.for_phone_set("espeak")


def test_missing_mfa_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(mfa.MFANotFoundError) as err:
        mfa.find_mfa(mfa.MFAConfig.for_phone_set("arpabet"))
    message = str(err.value)
    assert "conda install -c conda-forge montreal-forced-aligner" in message
    assert "phonanchor-align" in message and "english_us_arpa" in message
    write_wav(tmp_path / "c" / "a.wav")
    write_table(tmp_path / "c" / "metadata.csv", ["utt_id", "path", "emotion", "speaker"], [["a", "a.wav", "neu", "s"]])
    status = main(["generic", str(tmp_path / "c"), str(tmp_path / "out"), "--mfa", "--phone-set", "english_mfa"])
    assert status == 2 and "conda-forge" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # failed before any work


FAKE_MFA = textwrap.dedent("""\
    #!{python}
    # Stand-in for `mfa align CORPUS DICT MODEL OUT ...`: one TextGrid per .lab, every word read as /a/.
    import pathlib, sys, soundfile
    from speechbrain_phonanchor.textgrids import write_alignment
    args = sys.argv[1:]
    pathlib.Path(sys.argv[0] + ".args").write_text(" ".join(args))
    assert args[0] == "align", args
    corpus, out = pathlib.Path(args[1]), pathlib.Path(args[4])
    if args[2] == "fail":
        print("ERROR: dictionary not found", file=sys.stderr)
        sys.exit(1)
    for lab in corpus.rglob("*.lab"):
        duration = soundfile.info(str(lab.with_suffix(".wav"))).duration
        words = lab.read_text().split()
        step = (duration - 0.1) / len(words)
        spans = [(w, 0.05 + i * step, 0.05 + (i + 1) * step) for i, w in enumerate(words)]
        target = out / lab.parent.name / (lab.stem + ".TextGrid")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_alignment(target, words=spans, phones=[("a", s, e) for _, s, e in spans], duration=duration)
""")


@pytest.fixture
def fake_mfa(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "mfa"
    exe.write_text(FAKE_MFA.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return exe


def test_align_corpus_runs_mfa_and_ingests_its_textgrids(tmp_path, fake_mfa):
    rows = []
    for s in range(3):
        write_wav(tmp_path / "c" / f"u{s}.wav", seconds=0.6)
        rows.append([f"u{s}", f"u{s}.wav", "neu", f"s{s}", "ciao a tutti" if s else ""])
    write_table(tmp_path / "c" / "metadata.csv", ["utt_id", "path", "emotion", "speaker", "text"], rows)
    config = mfa.MFAConfig("italian_mfa", "italian_mfa", num_jobs=2)
    report = mfa.align_corpus(prepare_generic, tmp_path / "c", tmp_path / "out", config, phone_set="ipa",
                              progress=False)
    assert report["mfa"]["written"] == 2 and report["mfa"]["left_out"] == {"no_transcript": 1}
    assert fake_mfa.with_suffix(".args").read_text().startswith(
        f"align {tmp_path / 'out' / 'mfa_corpus'} italian_mfa italian_mfa {tmp_path / 'out' / 'mfa_aligned'}")
    entries = {}
    for split in ("train", "valid", "test"):
        entries.update(load_manifest(tmp_path / "out" / f"{split}.json"))
    assert [v["vowel"] for v in entries["u1"]["vowels"]] == ["a", "a", "a"]
    assert entries["u0"]["vowels"] == []
    assert report["flagged"]["missing_textgrid"] == 1 and report["kept"] == 3
    assert json.loads((tmp_path / "out" / "mfa_report.json").read_text())["written"] == 2


def test_mfa_failure_shows_command_and_output(tmp_path, fake_mfa):
    config = mfa.MFAConfig("fail", "model")
    with pytest.raises(mfa.MFAError, match=r"(?s)mfa align failed \(exit 1\).*dictionary not found"):
        mfa.run_mfa(tmp_path / "corpus", tmp_path / "out", config)
