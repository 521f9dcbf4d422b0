"""Acoustic features for the aligner: 13 MFCCs + deltas + delta-deltas, per-utterance CMVN.

The recipe is Kaldi's monophone setup (``compute-mfcc-feats``, ``add-deltas``,
``apply-cmvn``) computed with kaldi-native-fbank: 25 ms windows every 10 ms,
so frame ``t`` covers ``[t * 0.01, t * 0.01 + 0.025]`` seconds.  A fixed,
seeded dither keeps digital silence finite and the features reproducible.

Example
-------
>>> import numpy as np
>>> wav = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype("float32")
>>> feats = compute_features(wav)
>>> feats.shape
(98, 39)
>>> bool(np.allclose(feats[:, 1:].mean(axis=0), 0, atol=1e-3))
True
"""

import numpy as np

from speechbrain_phonanchor.audio import SAMPLE_RATE, load_audio

FRAME_SHIFT = 0.01  # seconds
NUM_CEPS = 13
FEATURE_DIM = 3 * NUM_CEPS


def mfcc(wav, sample_rate=SAMPLE_RATE, dither=1.0, seed=0):
    """Kaldi MFCCs (13 per frame, C0 replaced by log energy) of a float waveform in [-1, 1].

    Arguments
    ---------
    wav : numpy.ndarray
        1-D float samples.
    sample_rate : int
        Rate of ``wav`` (16 kHz in this package).
    dither : float
        Standard deviation of the Gaussian noise added, in 16-bit sample units.
    seed : int
        Seed of that noise, so the features are reproducible.

    Returns
    -------
    numpy.ndarray
        ``(num_frames, 13)`` float32; zero frames for audio shorter than 25 ms.
    """
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.dither = 0.0
    opts.num_ceps = NUM_CEPS
    samples = np.asarray(wav, dtype=np.float64) * 32768.0
    samples += np.random.default_rng(seed).standard_normal(len(samples)) * dither
    computer = knf.OnlineMfcc(opts)
    computer.accept_waveform(sample_rate, samples.astype(np.float32).tolist())
    computer.input_finished()
    n = computer.num_frames_ready
    if n == 0:
        return np.zeros((0, NUM_CEPS), dtype=np.float32)
    return np.stack([computer.get_frame(i) for i in range(n)]).astype(np.float32)


def add_deltas_and_cmvn(feats):
    """Append deltas and delta-deltas (window 2), then normalise mean and variance per utterance.

    >>> add_deltas_and_cmvn(np.random.default_rng(0).normal(size=(50, 13)).astype("float32")).shape
    (50, 39)
    """
    import kaldi_native_fbank as knf

    if len(feats) == 0:
        return np.zeros((0, 3 * feats.shape[1]), dtype=np.float32)
    full = knf.compute_deltas(knf.DeltaOptions(order=2, window=2), np.ascontiguousarray(feats, dtype=np.float32))
    mean = full.mean(axis=0)
    std = np.maximum(full.std(axis=0), 1e-3)
    return ((full - mean) / std).astype(np.float32)


def compute_features(wav, sample_rate=SAMPLE_RATE):
    """Aligner features ``(num_frames, 39)`` of a float waveform (see the module docstring)."""
    return add_deltas_and_cmvn(mfcc(wav, sample_rate))


def features_from_file(path):
    """Load ``path`` with :func:`speechbrain_phonanchor.audio.load_audio` and compute features.

    Returns
    -------
    (numpy.ndarray, float)
        The features and the audio duration in seconds.  Raises ``AudioError``.
    """
    wav, info = load_audio(path)
    samples = wav.numpy()
    return compute_features(samples), len(samples) / SAMPLE_RATE
