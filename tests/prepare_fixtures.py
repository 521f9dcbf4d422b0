"""Helpers that build tiny corpora for the preparation tests (wavs, label files, TextGrids)."""

import csv
import pathlib

import numpy as np
import soundfile

from speechbrain_phonanchor.textgrids import write_alignment

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_wav(path, seconds=0.5, sample_rate=16000, amplitude=0.1, channels=1):
    """A sine tone (format from the suffix: .wav, .flac)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = amplitude * np.sin(2 * np.pi * 220 * t)
    soundfile.write(path, np.stack([tone] * channels, axis=1) if channels > 1 else tone, sample_rate)
    return path


def write_table(path, header, rows, delimiter=","):
    """A CSV/TSV with ``header`` and ``rows`` (lists or dicts)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(h, "") for h in header] if isinstance(row, dict) else row)
    return path


def write_textgrid(path, duration=0.5, phones=None, words=None):
    """An MFA-layout TextGrid; default: one word ``hi`` = HH AY1 (one ARPABET vowel)."""
    phones = phones if phones is not None else [("HH", 0.1, 0.2), ("AY1", 0.2, 0.4)]
    words = words if words is not None else [("hi", 0.1, 0.4)]
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_alignment(path, words=words, phones=phones, duration=duration)
    return path
