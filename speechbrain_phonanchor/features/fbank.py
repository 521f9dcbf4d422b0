"""A built-in, download-free front end: 80 log-mel filterbank energies every 20 ms (``encoder_source: fbank``).

:class:`FbankEncoder` has the interface of :class:`~speechbrain_phonanchor.features.encoders.FrozenEncoder`,
so it works wherever an encoder does: ``encoder_source: fbank`` in a recipe yaml (with
``input_size: 80``), ``phonanchor-extract --encoder fbank``, ``phonanchor-export`` and the
exported ``foreign_class`` interface.  Nothing is downloaded and there are no weights; it is
the cheap baseline row of an encoder comparison (SER papers report one) and the default
front end of the offline demo.

The features are Kaldi's ``compute-fbank-feats`` as implemented by
``torchaudio.compliance.kaldi.fbank``: a Povey window of 25 ms (400 samples) every 20 ms
(320 samples), pre-emphasis 0.97, DC removal, power spectrum, 80 triangular mel bins
from 20 Hz to 8 kHz, natural log, no dither (the same audio always gives the same bytes).
The waveform is scaled to 16-bit sample units first, as Kaldi reads it.

**Frames.** Frame ``t`` covers samples ``[320 t, 320 t + 400)`` (``snip_edges``): an utterance
of ``n`` samples gives ``0`` frames if ``n < 400``, else ``1 + (n - 400) // 320``.  That is
exactly the count and the timing of wav2vec 2.0 / HuBERT / WavLM frames for the same audio
(their convolutional front end has a 400-sample receptive field and a 320-sample stride), so
vowel-centred segments select the same frame indices; Whisper gives ``ceil(n / 320)``, one or
two frames more at the end.

**Normalisation** (``normalize``):

* ``"utterance"`` (default): each of the 80 bins gets zero mean and unit variance over the
  utterance's own frames (per-utterance CMVN).  This removes the recording gain and the
  channel's average spectrum, which in real corpora vary with the recording far more than
  with the emotion, and keeps the values in the range the downstream layers expect.  What
  remains is how the spectrum moves within the utterance (pitch and its range, rate,
  relative loudness of frames).
* ``"none"``: raw log energies (about -16 for digital silence to +25 for loud speech).

**Layer.** A filterbank has no hidden layers: it has one "hidden state", index 0 (also
reachable as -1, since ``num_layers == 0``), and any other layer is an :class:`EncoderError`.

**Identity.** :attr:`FbankEncoder.config_sha256` is the SHA-256 of :attr:`FbankEncoder.settings`
(every option above), which a feature store records as ``encoder_config_sha256``: a store
built with other fbank settings is refused.

Example
-------
>>> import torch
>>> enc = FbankEncoder()
>>> frames = enc.encode_list([torch.randn(16000), torch.randn(8000)])
>>> [tuple(f.shape) for f in frames], enc.n_frames(16000), enc.n_frames(8000), enc.frame_rate
([(49, 80), (24, 80)], 49, 24, 50.0)
>>> enc(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
torch.Size([2, 49, 80])
"""

import hashlib
import json

import torch
import torchaudio

from speechbrain_phonanchor.features.encoders import SAMPLE_RATE, EncoderError, FrozenEncoder, _as_layers

FBANK = "fbank"
NORMALIZATIONS = ("utterance", "none")
INT16_SCALE = 32768.0
VARIANCE_FLOOR = 1e-5


class FbankEncoder(torch.nn.Module):
    """Log-mel filterbank front end with the :class:`FrozenEncoder` interface (see the module docstring).

    Arguments
    ---------
    layer : int or sequence of int
        0 or -1 (a filterbank has a single "hidden state"); anything else is refused.
    device : str or torch.device
        Accepted for the common interface; features are computed on the CPU (they are cheap).
    num_mel_bins : int
        Mel bins, i.e. the feature dimension.
    frame_length_ms, frame_shift_ms : float
        Window length and hop in milliseconds; the hop must stay 20 ms (50 frames per second,
        the frame rate every part of this package assumes).
    normalize : str
        ``"utterance"`` (per-utterance mean and variance per bin) or ``"none"``.

    Example
    -------
    >>> FbankEncoder().settings["num_mel_bins"], FbankEncoder(num_mel_bins=40).dim
    (80, 40)
    >>> FbankEncoder().config_sha256 == FbankEncoder(normalize="none").config_sha256
    False
    """

    source = FBANK
    model_type = FBANK
    whisper_window = None
    batchable = True
    num_layers = 0
    split = staticmethod(FrozenEncoder.split)
    pad_frames = staticmethod(FrozenEncoder.pad_frames)
    forward = FrozenEncoder.forward

    def __init__(self, layer=-1, device="cpu", num_mel_bins=80, frame_length_ms=25.0, frame_shift_ms=20.0,
                 normalize="utterance"):
        super().__init__()
        if _as_layers(layer) not in ((0,), (-1,)):
            raise EncoderError(f"the fbank front end has one feature layer (0 or -1), not {layer!r}")
        if normalize not in NORMALIZATIONS:
            raise EncoderError(f"fbank normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        if float(frame_shift_ms) != 20.0:
            raise EncoderError(f"fbank frames must be 20 ms apart (50 per second), got {frame_shift_ms} ms")
        self.layers = (0,)
        self.device = torch.device(device)
        self.hidden_size = self.dim = int(num_mel_bins)
        self.window = round(float(frame_length_ms) * SAMPLE_RATE / 1000)
        self.hop = round(float(frame_shift_ms) * SAMPLE_RATE / 1000)
        self.min_samples = self.window
        self.normalize = normalize
        self.settings = {
            "implementation": "torchaudio.compliance.kaldi.fbank", "num_mel_bins": self.dim,
            "frame_length_ms": float(frame_length_ms), "frame_shift_ms": float(frame_shift_ms),
            "window_type": "povey", "preemphasis_coefficient": 0.97, "remove_dc_offset": True, "use_power": True,
            "low_freq": 20.0, "high_freq": 0.0, "dither": 0.0, "snip_edges": True, "use_log_fbank": True,
            "sample_frequency": float(SAMPLE_RATE), "waveform_scale": INT16_SCALE, "normalize": normalize,
        }
        self.config_sha256 = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()

    @property
    def frame_rate(self):
        """Frames per second (50.0)."""
        return SAMPLE_RATE / self.hop

    def n_frames(self, num_samples):
        """Frames for ``num_samples`` samples at 16 kHz: ``1 + (n - 400) // 320``, 0 below 400 samples.

        Example
        -------
        >>> [FbankEncoder().n_frames(n) for n in (399, 400, 719, 720, 16000)]
        [0, 1, 1, 2, 49]
        """
        num_samples = int(num_samples)
        return 0 if num_samples < self.window else 1 + (num_samples - self.window) // self.hop

    @staticmethod
    def cost_seconds(duration):
        """Seconds of audio processed for ``duration`` s (no padding: ``duration``)."""
        return duration

    def _fbank(self, wav):
        """(n_frames(len(wav)), dim) float32 features of one 1-D waveform."""
        if len(wav) < self.window:
            return torch.zeros(0, self.dim)
        s = self.settings
        feats = torchaudio.compliance.kaldi.fbank(
            wav.unsqueeze(0) * s["waveform_scale"], num_mel_bins=self.dim, frame_length=s["frame_length_ms"],
            frame_shift=s["frame_shift_ms"], window_type=s["window_type"], dither=s["dither"],
            preemphasis_coefficient=s["preemphasis_coefficient"], remove_dc_offset=s["remove_dc_offset"],
            use_power=s["use_power"], low_freq=s["low_freq"], high_freq=s["high_freq"], snip_edges=s["snip_edges"],
            use_log_fbank=s["use_log_fbank"], sample_frequency=s["sample_frequency"])
        if self.normalize == "utterance":
            mean, var = feats.mean(dim=0), feats.var(dim=0, unbiased=False)
            feats = (feats - mean) / torch.sqrt(var + VARIANCE_FLOOR)
        return feats.float()

    @torch.no_grad()
    def encode_list(self, wavs):
        """Features of unpadded 1-D waveforms: a list of (n_frames(len), dim) float32 CPU tensors."""
        return [self._fbank(torch.as_tensor(wav, dtype=torch.float32).reshape(-1).cpu()) for wav in wavs]
