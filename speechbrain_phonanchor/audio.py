"""Reading and checking audio: any sample rate and channel count in, 16 kHz mono out.

Every problem raises :class:`AudioError` whose message names the file, so a
caller can either stop with a clear error or count a skip with its reason
(``err.reason`` is a short tag such as ``"missing_audio"``).

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
>>> t = numpy.arange(8000) / 8000
>>> soundfile.write(path, 0.5 * numpy.sin(2 * numpy.pi * 220 * t), 8000)
>>> wav, info = load_audio(path)
>>> wav.shape, info.resampled, round(info.duration, 2)
(torch.Size([16000]), True, 1.0)
"""

import os
import pathlib
import struct
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio

from speechbrain_phonanchor.errors import InputError

SAMPLE_RATE = 16000
SILENCE_DBFS = -60.0


class AudioError(InputError):
    """Audio that cannot be used; ``reason`` is a short tag, the message names the file."""


@dataclass
class AudioInfo:
    """What was read: original rate/channels, duration, and what was converted."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    resampled: bool = False
    downmixed: bool = False

    @property
    def duration(self):
        return self.frames / self.sample_rate


def wav_missing_bytes(path):
    """How many bytes of a RIFF/WAVE file's ``data`` chunk are missing from the file (0 if complete).

    libsndfile silently shortens a cut WAV to what is there, so a truncated file
    is found by comparing the size its header declares with the file's size.
    Files that are not RIFF/WAVE, and streaming headers (size 0 or 0xFFFFFFFF),
    give 0.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        position = 12
        while True:
            handle.seek(position)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return 0
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                return 0 if chunk_size in (0, 0xFFFFFFFF) else max(0, position + 8 + chunk_size - size)
            position += 8 + chunk_size + (chunk_size & 1)


def audio_info(path):
    """Return :class:`AudioInfo` from the file header; raise :class:`AudioError` if unreadable."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AudioError(path, "missing_audio")
    try:
        info = soundfile.info(str(path))
    except Exception as err:  # soundfile raises several types for bad headers
        raise AudioError(path, "unreadable_audio", str(err)) from err
    if info.frames <= 0:
        raise AudioError(path, "empty_audio")
    missing = wav_missing_bytes(path)
    if missing:
        raise AudioError(path, "truncated_audio", f"{missing} bytes of the data chunk are missing")
    return AudioInfo(str(path), info.samplerate, info.channels, info.frames)


def peak_dbfs(samples):
    """Peak level of ``samples`` (floats in [-1, 1]) in dB full scale; -inf for digital silence."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    return -np.inf if peak == 0 else 20 * np.log10(peak)


def load_audio(path, sample_rate=SAMPLE_RATE, silence_dbfs=SILENCE_DBFS, min_duration=0.0):
    """Read ``path`` as a float32 mono tensor at ``sample_rate``.

    Arguments
    ---------
    path : str or Path
        Any format libsndfile reads (WAV, FLAC, OGG, ...).
    sample_rate : int
        Output rate; other rates are resampled (``info.resampled``).
    silence_dbfs : float or None
        Files whose peak is below this level are refused as silent; None disables.
    min_duration : float
        Files shorter than this (seconds) are refused as too short.

    Returns
    -------
    (torch.Tensor, AudioInfo)
    """
    info = audio_info(path)
    try:
        data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(path, "unreadable_audio", str(err)) from err
    if data.shape[0] < info.frames:
        raise AudioError(path, "truncated_audio", f"header says {info.frames} frames, read {data.shape[0]}")
    if data.shape[0] == 0:
        raise AudioError(path, "empty_audio")
    if not np.isfinite(data).all():
        raise AudioError(path, "unreadable_audio", "non-finite samples")
    if data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)
        info.downmixed = True
    wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if silence_dbfs is not None and peak_dbfs(data[:, 0]) < silence_dbfs:
        raise AudioError(path, "silent_audio", f"peak below {silence_dbfs} dBFS")
    if info.duration < min_duration:
        raise AudioError(path, "too_short_audio", f"{info.duration:.3f} s < {min_duration} s")
    if info.sample_rate != sample_rate:
        wav = torchaudio.functional.resample(wav, info.sample_rate, sample_rate)
        info.resampled = True
    return wav, info
