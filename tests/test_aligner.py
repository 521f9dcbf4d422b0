"""Train + align small synthetic sets in seconds; TextGrid round trip, resume, saved models, bad inputs."""

import csv
import zlib

import numpy as np
import pytest
import soundfile

from speechbrain_phonanchor.align import AcousticModel, AlignError, TrainConfig, TrainingUtterance, align_corpus
from speechbrain_phonanchor.align.aligner import words_from_phones
from speechbrain_phonanchor.align.cli import main
from speechbrain_phonanchor.align.g2p import make_g2p
from speechbrain_phonanchor.align.trainer import train_monophone
from speechbrain_phonanchor.textgrids import read_alignment

SR = 16000
SENTENCES = ["casa mare", "pane e sole", "la luna", "sole mare casa", "luna pane", "mare e luna"]


def _feature_corpus(n, rng, dim=6):
    """Feature-level utterances over phones a/b/c/d with known boundaries (frames), silence around them."""
    means = {p: rng.normal(0, 2.5, size=dim) for p in ("sil", "a", "b", "c", "d")}
    utts, truth = [], {}
    for i in range(n):
        phones = [str(p) for p in rng.permutation(["a", "b", "c", "d"])[: rng.integers(2, 5)]]
        labels = ["sil"] * int(rng.integers(8, 15))
        bounds = []
        for p in phones:
            bounds.append(len(labels))
            labels += [p] * int(rng.integers(5, 15))
        labels += ["sil"] * int(rng.integers(8, 15))
        feats = np.stack([rng.normal(means[lab], 1.0) for lab in labels]).astype("float32")
        utts.append(TrainingUtterance(f"u{i}", feats, words_from_phones([phones[:1], phones[1:]])))
        truth[f"u{i}"] = bounds
    return utts, truth


def test_train_and_align_recovers_phone_boundaries(tmp_path):
    utts, truth = _feature_corpus(40, np.random.default_rng(1))
    model, report = train_monophone(utts, "xx", TrainConfig(num_iters=12, max_gaussians=40, jobs=1))
    assert report["trained_on"] == 40 and report["failed"] == {}
    history = [h["log_like"] for h in report["history"]]
    assert history[-1] > history[0]
    errors = []
    for utt in utts:
        result = model.align(utt.feats, utt.words)
        starts = [round(s / 0.01) for p, s, _ in result.phones if p != "sil"]
        errors += [abs(a - b) for a, b in zip(starts, truth[utt.utt_id])]
        assert [w[0] for w in result.words] == ["w0", "w1"]
    assert np.mean(errors) <= 1.5  # frames; a flat-start collapse gives ~9
    model.save(tmp_path / "m")
    loaded = AcousticModel.load(tmp_path / "m")
    assert loaded.align(utts[0].feats, utts[0].words).phones == model.align(utts[0].feats, utts[0].words).phones


def test_parallel_training_matches_shapes():
    utts, _ = _feature_corpus(12, np.random.default_rng(2))
    model, report = train_monophone(utts, "xx", TrainConfig(num_iters=4, max_gaussians=30, jobs=2))
    assert report["trained_on"] == 12 and model.am.num_pdfs == 4 * 3 + 2 * 5  # 3 states per phone, 5 for sil and spn


def test_gaussians_capped_by_training_frames():
    utts, _ = _feature_corpus(12, np.random.default_rng(2))
    frames = sum(len(u.feats) for u in utts)
    capped, _ = train_monophone(utts, "xx", TrainConfig(num_iters=6, mixup_iters=4, max_gaussians=200,
                                                        frames_per_gaussian=frames // 30, jobs=1))  # fmt: skip
    free, _ = train_monophone(utts, "xx", TrainConfig(num_iters=6, mixup_iters=4, max_gaussians=200,
                                                      frames_per_gaussian=1, jobs=1))  # fmt: skip
    assert capped.am.num_pdfs <= capped.am.num_gauss <= 30 < free.am.num_gauss


def test_align_errors_have_reasons():
    utts, _ = _feature_corpus(6, np.random.default_rng(3))
    model, _ = train_monophone(utts, "xx", TrainConfig(num_iters=2, jobs=1))
    with pytest.raises(AlignError) as err:
        model.align(utts[0].feats[:5], utts[0].words)
    assert err.value.reason == "audio_too_short_for_text"
    with pytest.raises(AlignError) as err:
        model.align(utts[0].feats, words_from_phones([["a", "zz"]]))
    assert err.value.reason == "phone_not_in_model"
    with pytest.raises(AlignError) as err:
        model.align(utts[0].feats, [])
    assert err.value.reason == "empty_transcript"


def _tone(phone):
    """A phone-specific two-tone spectrum, so MFCCs tell phones apart."""
    h = zlib.crc32(phone.encode())
    return 300 + h % 2500, 400 + (h >> 12) % 3000


def _speak(text, rng):
    parts = [np.zeros(int(rng.integers(2000, 5000)))]
    for word in make_g2p("it").transcribe(text).words:
        for phone in word.phones:
            n = int(rng.integers(1100, 2200))
            t = np.arange(n) / SR
            f1, f2 = _tone(phone)
            parts.append(0.3 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t))
        parts.append(np.zeros(int(rng.integers(0, 2500))))
    parts.append(np.zeros(int(rng.integers(2000, 5000))))
    return np.concatenate(parts).astype("float32")


def _write_corpus(folder, rows, rng):
    (folder / "wavs").mkdir(parents=True)
    for row in rows:
        if row.get("audio") is not None:
            soundfile.write(folder / "wavs" / f"{row['utt_id']}.flac", row["audio"], SR)
        elif row.get("audio_text") is not None:
            soundfile.write(folder / "wavs" / f"{row['utt_id']}.flac", _speak(row["audio_text"], rng), SR)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utt_id", "path", "language", "text"])
        for row in rows:
            writer.writerow([row["utt_id"], f"wavs/{row['utt_id']}.flac", "it", row["text"]])


@pytest.fixture(scope="module")
def tone_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    rows = [{"utt_id": f"u{i:02d}", "text": s, "audio_text": s} for i, s in enumerate(SENTENCES * 3)]
    _write_corpus(folder, rows, rng)
    return folder


def test_cli_textgrids_round_trip_through_ingest(tone_corpus, tmp_path):
    out = tmp_path / "tg"
    assert main([str(tone_corpus), "--lang", "it", "--out", str(out), "--jobs", "1", "--num-iters", "10",
                 "--max-gaussians", "100", "--quiet"]) == 0  # fmt: skip
    grids = sorted(out.glob("*.TextGrid"))
    assert len(grids) == 18
    for path in grids:
        duration = soundfile.info(str(tone_corpus / "wavs" / f"{path.stem}.flac")).duration
        ali = read_alignment(path, "espeak", audio_duration=duration)
        text = SENTENCES[int(path.stem[1:]) % len(SENTENCES)]
        assert [w[0] for w in ali.words] == text.split()
        assert len(ali.vowels) == sum(map_count(text))
        assert ali.phones[0][1] == 0.0 and abs(ali.phones[-1][2] - duration) < 1e-3
    assert AcousticModel.exists(out / "model")


def map_count(text):
    from speechbrain_phonanchor.phonetics import map_phone

    return [map_phone(p, "espeak").vowel is not None for p in make_g2p("it").transcribe(text).phones]


def test_resume_after_interruption_and_reuse_of_saved_model(tone_corpus, tmp_path):
    out, model_dir = tmp_path / "tg", tmp_path / "model"
    config = TrainConfig(num_iters=6, max_gaussians=80, jobs=2)
    first = align_corpus(tone_corpus, "it", out, model_dir, jobs=2, config=config, show_progress=False)
    assert first["aligned"] == 18 and first["failed"] == 0
    kept = out / "u05.TextGrid"
    stamp = kept.stat().st_mtime_ns
    for name in ("u00", "u07", "u11"):  # as if the run had stopped before these
        (out / f"{name}.TextGrid").unlink()
    second = align_corpus(tone_corpus, "it", out, model_dir, jobs=2, config=config, show_progress=False)
    assert second["already_aligned"] == 15 and second["aligned_now"] == 3 and second["aligned"] == 18
    assert "training" not in second  # the saved model was reused, not retrained
    assert kept.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="model .* is for 'it'"):
        align_corpus(tone_corpus, "pl", tmp_path / "other", model_dir, jobs=1, show_progress=False)


def test_bad_inputs_are_skipped_or_failed_with_reasons(tone_corpus, tmp_path):
    folder = tmp_path / "bad"
    rng = np.random.default_rng(5)
    rows = [{"utt_id": f"ok{i}", "text": s, "audio_text": s} for i, s in enumerate(SENTENCES)]
    rows += [
        {"utt_id": "empty", "text": "  ...  ", "audio_text": "casa"},
        {"utt_id": "short", "text": "casa mare pane sole luna casa mare", "audio": np.full(1600, 0.1, "float32")},
        {"utt_id": "missing", "text": "casa"},
        {"utt_id": "digits", "text": "casa 1 mare %", "audio_text": "casa uno mare"},
        {"utt_id": "newphone", "text": "tutto", "audio_text": "casa"},
    ]
    _write_corpus(folder, rows, rng)
    model_dir = tmp_path / "model"
    align_corpus(tone_corpus, "it", tmp_path / "train", model_dir, jobs=1,
                 config=TrainConfig(num_iters=8, max_gaussians=80), show_progress=False)  # fmt: skip
    report = align_corpus(folder, "it", tmp_path / "out", model_dir, jobs=1, show_progress=False)
    assert report["skipped_utterances"] == {"empty": "empty_transcript"}
    assert report["failed_utterances"]["short"] == "audio_too_short_for_text"
    assert report["failed_utterances"]["missing"] == "missing_audio"
    assert report["failed_utterances"]["newphone"] == "phone_not_in_model"  # /t/ never seen in training
    assert report["aligned"] == len(SENTENCES) + 1
    assert report["g2p_problems"] == {"normalised: 1": 1, "unpronounceable: %": 1}
    ali = read_alignment(tmp_path / "out" / "digits.TextGrid", "espeak")
    assert [w[0] for w in ali.words] == ["casa", "1", "mare", "%"]


def test_unknown_language_is_a_clear_cli_error(tone_corpus, tmp_path):
    with pytest.raises(SystemExit, match="supported: .*pl"):
        main([str(tone_corpus), "--lang", "xx-nope", "--out", str(tmp_path)])
