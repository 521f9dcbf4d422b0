"""Frozen speech encoders: a Hugging Face id or local folder in, 20 ms frames out.

:class:`FrozenEncoder` wraps wav2vec 2.0, HuBERT, WavLM (and other models with the
same convolutional front end, e.g. data2vec-audio) and the encoder half of Whisper.
The model is put in eval mode, its parameters are frozen, layer-drop and SpecAugment
are switched off and every forward runs under ``torch.no_grad``.  All of these
models give one frame per 20 ms (``frame_rate == 50.0``).

Layers are numbered like ``output_hidden_states``: 0 is the input to the first
transformer layer, ``num_layers`` (or -1) the last layer's output.  Several layers are
concatenated along the feature axis, so ``dim == len(layers) * hidden_size``.

Why not ``speechbrain.integrations.huggingface.Wav2Vec2``?  It normalises the waveform
over the *padded* batch and passes an attention mask to group-norm models (which HF
says must not get one), so an utterance's features depend on what it was batched
with, and it only returns the last or all layers.  A feature store must give the same
bytes however utterances are batched, so this module calls ``transformers`` directly:

* waveforms are normalised per utterance over their true length (when the model's
  feature extractor asks for it);
* models whose convolutional front end uses layer norm (``feat_extract_norm="layer"``)
  run as one padded batch with an attention mask; group-norm models (wav2vec2-base,
  HuBERT-base, WavLM-base) normalise over time *including* padding, so each utterance
  runs alone at its true length;
* Whisper (``whisper_window``): an utterance is cut into 30 s chunks (Whisper's
  positional embeddings cover 30 s).  With ``"exact"`` each chunk is
  zero-padded only to a whole 20 ms frame and the encoder sees just its own log-mel
  frames, with the positional embeddings cut to that length; it runs one chunk at a
  time (Whisper takes no attention mask), so a 3 s utterance costs about a tenth of a
  30 s window.  With ``"30s"`` (the default) each chunk is padded to 30 s as Whisper
  was trained; its features learned better (CL nEMO → EMOVO: +7 pp target UAR over
  ``"exact"``, README "Whisper window"), so ``"exact"`` is for fast iteration.  Either
  way only the frames that cover real audio are kept (``ceil(chunk_samples / 320)``
  per chunk).  The two give different features: a store records which one it was
  built with.

Example
-------
>>> import tempfile, torch, transformers
>>> folder = tempfile.mkdtemp()
>>> config = transformers.Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
...     intermediate_size=32, conv_dim=(16, 16), conv_kernel=(320, 2), conv_stride=(160, 2),
...     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
>>> transformers.Wav2Vec2Model(config).save_pretrained(folder)
>>> enc = FrozenEncoder(folder, layer=-1)
>>> enc(torch.randn(2, 16000), torch.tensor([1.0, 0.5])).shape
torch.Size([2, 49, 16])
>>> enc.frame_rate, enc.n_frames(16000), enc.n_frames(8000)
(50.0, 49, 24)
"""

import hashlib
import json
import logging
import math
import pathlib

import numpy as np
import torch
import transformers

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WHISPER_CHUNK_SECONDS = 30
WHISPER_SAMPLES_PER_FRAME = 320  # hop 160 samples × conv stride 2
WHISPER_WINDOWS = ("exact", "30s")
DEFAULT_WHISPER_WINDOW = "30s"


class EncoderError(ValueError):
    """An encoder that cannot be loaded or a layer it does not have."""


def _as_layers(layer):
    """Return ``layer`` (an int or a sequence of ints) as a tuple of ints."""
    layers = (layer,) if isinstance(layer, (int, np.integer)) else tuple(layer)
    if not layers:
        raise EncoderError("at least one layer is needed")
    return tuple(int(index) for index in layers)


class FrozenEncoder(torch.nn.Module):
    """A frozen pretrained speech encoder that returns the hidden states of chosen layers.

    Arguments
    ---------
    source : str or Path
        A Hugging Face model id (``facebook/wav2vec2-base``) or a local folder written by
        ``save_pretrained``.  A local folder is loaded with ``local_files_only``.
    layer : int or sequence of int
        Hidden-state index (0 = before the first transformer layer, -1 = last layer).
        Several layers are concatenated along the feature axis.
    device : str or torch.device
        Where the model runs.
    whisper_window : str
        Whisper encoders only: ``"exact"`` (the utterance's own length) or ``"30s"``
        (padded 30 s windows); see the module docstring.  Ignored for other models
        (``self.whisper_window`` is then None).

    Example
    -------
    See the module docstring.
    """

    def __init__(self, source, layer=-1, device="cpu", whisper_window=DEFAULT_WHISPER_WINDOW):
        super().__init__()
        if whisper_window not in WHISPER_WINDOWS:
            raise EncoderError(f"whisper_window must be one of {WHISPER_WINDOWS}, got {whisper_window!r}")
        self.source = str(source)
        local = pathlib.Path(source).is_dir()
        if local:
            self.source = str(pathlib.Path(source).resolve())
        kwargs = {"local_files_only": True} if local else {}
        try:
            config = transformers.AutoConfig.from_pretrained(self.source, **kwargs)
        except (OSError, ValueError) as err:
            raise EncoderError(f"cannot load encoder config from {source!r}: {err}") from err
        self.model_type = config.model_type
        self.is_whisper = config.model_type == "whisper"
        if self.is_whisper:
            self.model = transformers.WhisperModel.from_pretrained(self.source, **kwargs).get_encoder()
            self.feature_extractor = transformers.WhisperFeatureExtractor.from_pretrained(self.source, **kwargs)
            self.feature_extractor.dither = 0.0  # features must be deterministic
            self.normalize = False
            self.whisper_window = whisper_window
            self.batchable = whisper_window == "30s"  # exact: one chunk per forward (no attention mask)
            n_hidden = config.encoder_layers
            hidden_size = config.d_model
        else:
            if not hasattr(config, "conv_stride"):
                raise EncoderError(f"{source!r} is a {config.model_type!r} model, not a speech encoder I know")
            config.layerdrop = 0.0
            config.apply_spec_augment = False
            self.model = transformers.AutoModel.from_pretrained(self.source, config=config, **kwargs)
            self.whisper_window = None
            self.normalize = self._wants_normalisation(self.source, config, kwargs)
            self.batchable = getattr(config, "feat_extract_norm", "group") == "layer"
            n_hidden = config.num_hidden_layers
            hidden_size = config.hidden_size
            stride = math.prod(config.conv_stride)
            if SAMPLE_RATE / stride != 50.0:
                logger.warning("%s: frame rate is %.1f Hz, not 50 Hz", source, SAMPLE_RATE / stride)
        self.model.eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.model.to(device)
        self.device = torch.device(device)
        self.layers = _as_layers(layer)
        for index in self.layers:
            if not -(n_hidden + 1) <= index <= n_hidden:
                raise EncoderError(f"{source!r} has hidden states 0..{n_hidden}; layer {index} does not exist")
        self.num_layers = n_hidden
        self.hidden_size = hidden_size
        self.dim = hidden_size * len(self.layers)
        self.config_sha256 = hashlib.sha256(
            json.dumps(config.to_dict(), sort_keys=True, default=str).encode()
        ).hexdigest()
        self._conv_steps = () if self.is_whisper else self._conv_layers(config)
        self.min_samples = self._min_samples()

    @staticmethod
    def _conv_layers(config):
        """(kernel, stride) of each length-changing convolution, adapter layers included."""
        steps = list(zip(config.conv_kernel, config.conv_stride))
        if getattr(config, "add_adapter", False):
            steps += [(1, config.adapter_stride)] * config.num_adapter_layers
        return tuple((int(kernel), int(stride)) for kernel, stride in steps)

    @staticmethod
    def _wants_normalisation(source, config, kwargs):
        """Whether the model's feature extractor normalises waveforms (zero mean, unit variance)."""
        try:
            extractor = transformers.AutoFeatureExtractor.from_pretrained(source, **kwargs)
            return bool(getattr(extractor, "do_normalize", True))
        except (OSError, ValueError):
            # No preprocessor_config.json: layer-norm models were trained on normalised audio.
            return getattr(config, "feat_extract_norm", "group") == "layer"

    @property
    def frame_rate(self):
        """Frames per second of the output (50.0 for every supported model)."""
        if self.is_whisper:
            return SAMPLE_RATE / WHISPER_SAMPLES_PER_FRAME
        return SAMPLE_RATE / math.prod(self.model.config.conv_stride)

    def n_frames(self, num_samples):
        """Number of output frames for an utterance of ``num_samples`` samples at 16 kHz."""
        num_samples = int(num_samples)
        if self.is_whisper:
            return math.ceil(num_samples / WHISPER_SAMPLES_PER_FRAME)
        for kernel, stride in self._conv_steps:  # HF's _get_feat_extract_output_lengths, without a tensor per call
            num_samples = (num_samples - kernel) // stride + 1
        return num_samples

    def _min_samples(self):
        """Fewest samples that give one frame (the receptive field of the front end)."""
        if self.is_whisper:
            return 1
        field = 1
        for kernel, stride in reversed(list(zip(self.model.config.conv_kernel, self.model.config.conv_stride))):
            field = (field - 1) * stride + kernel
        return field

    def cost_seconds(self, duration):
        """Seconds of audio the model really processes for ``duration`` s (Whisper ``30s`` pads to 30 s)."""
        if self.whisper_window == "30s":
            return WHISPER_CHUNK_SECONDS * max(1, math.ceil(duration / WHISPER_CHUNK_SECONDS))
        return duration

    def forward(self, wavs, wav_lens=None):
        """Encode a padded batch.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, samples) 16 kHz mono waveforms, zero-padded at the end.
        wav_lens : torch.Tensor, optional
            Relative lengths in (0, 1] (SpeechBrain convention); None means all full.

        Returns
        -------
        torch.Tensor
            (batch, frames, dim) float32; frames past an utterance's ``n_frames`` are zero.
        """
        return self.pad_frames(self.encode_list(self.split(wavs, wav_lens)))

    @staticmethod
    def split(wavs, wav_lens=None):
        """Turn a padded batch and relative lengths into a list of unpadded 1-D waveforms."""
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wav_lens is None:
            return list(wavs)
        lengths = torch.round(wav_lens.float() * wavs.shape[1]).long().tolist()
        return [wav[:length] for wav, length in zip(wavs, lengths)]

    @staticmethod
    def pad_frames(frames):
        """Stack a list of (frames_i, dim) tensors into a zero-padded (batch, max_frames, dim) tensor."""
        return torch.nn.utils.rnn.pad_sequence(frames, batch_first=True)

    @torch.no_grad()
    def encode_list(self, wavs):
        """Encode unpadded 1-D waveforms; return a list of (n_frames(len), dim) float32 CPU tensors."""
        wavs = [torch.as_tensor(wav, dtype=torch.float32).reshape(-1) for wav in wavs]
        if self.is_whisper:
            return self._encode_whisper(wavs)
        if self.normalize:
            wavs = [(wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7) for wav in wavs]
        if not self.batchable:
            return [self._encode_ssl([wav])[0] for wav in wavs]
        return self._encode_ssl(wavs)

    def _select(self, hidden_states):
        """Concatenate the chosen layers of ``output_hidden_states`` along the feature axis."""
        return torch.cat([hidden_states[index] for index in self.layers], dim=-1).float()

    def _encode_ssl(self, wavs):
        """One forward of a wav2vec2-style model on a padded batch of ``wavs``."""
        lengths = [len(wav) for wav in wavs]
        batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True).to(self.device)
        mask = None
        if len(wavs) > 1:
            mask = (torch.arange(batch.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long().to(self.device)
        out = self.model(batch, attention_mask=mask, output_hidden_states=True)
        frames = self._select(out.hidden_states).cpu()
        return [frames[i, : self.n_frames(length)] for i, length in enumerate(lengths)]

    def _encode_whisper(self, wavs):
        """Cut each waveform into 30 s chunks, encode them (padded per ``whisper_window``), keep the real frames."""
        chunk = WHISPER_CHUNK_SECONDS * SAMPLE_RATE
        pieces, owners = [], []
        for index, wav in enumerate(wavs):
            for start in range(0, max(len(wav), 1), chunk):
                pieces.append(wav[start : start + chunk].cpu().numpy())
                owners.append(index)
        if self.whisper_window == "30s":
            mel = self.feature_extractor(
                pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding="max_length"
            ).input_features
            out = self.model(mel.to(self.device), output_hidden_states=True)
            frames = list(self._select(out.hidden_states).cpu())
        else:
            frames = [self._encode_whisper_exact(piece) for piece in pieces]
        per_utterance = [[] for _ in wavs]
        for piece, owner, piece_frames in zip(pieces, owners, frames):
            per_utterance[owner].append(piece_frames[: self.n_frames(len(piece))])
        return [torch.cat(parts) for parts in per_utterance]

    def _encode_whisper_exact(self, piece):
        """Encode one chunk (at most 30 s) at its own length: ``n_frames(len(piece))`` frames.

        The chunk is zero-padded to a whole number of 320-sample frames, so its log-mel
        has an even number of 10 ms frames and the stride-2 convolution gives exactly one
        20 ms frame each; the positional embeddings are cut to that many frames.  The
        layers are those of the loaded ``WhisperEncoder``, run in its order: hidden state
        0 is the embedded input, ``i`` the output of layer ``i``, the last one after the
        final layer norm (the convention of ``output_hidden_states``).
        """
        padded = np.zeros(max(1, math.ceil(len(piece) / WHISPER_SAMPLES_PER_FRAME)) * WHISPER_SAMPLES_PER_FRAME,
                          np.float32)
        padded[: len(piece)] = piece
        mel = self.feature_extractor([padded], sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                     padding="longest").input_features.to(self.device)
        encoder = self.model
        hidden = torch.nn.functional.gelu(encoder.conv1(mel))
        hidden = torch.nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        states = [hidden]
        for layer in encoder.layers:
            output = layer(hidden, None)
            hidden = output[0] if isinstance(output, tuple) else output  # transformers 4.x returns a tuple
            states.append(hidden)
        states[-1] = encoder.layer_norm(hidden)
        return self._select(states)[0].cpu()


def make_tiny_encoder(folder, model_type="wav2vec2", feat_extract_norm="group", seed=0):
    """Save a tiny randomly initialised encoder (and its feature extractor) to ``folder``; for tests and demos.

    Same 20 ms frame rate and folder layout as the real models, 16-d hidden states,
    2 layers; nothing is downloaded.

    Arguments
    ---------
    folder : str or Path
        Where ``save_pretrained`` writes.
    model_type : str
        ``wav2vec2``, ``hubert``, ``wavlm`` or ``whisper``.
    feat_extract_norm : str
        ``group`` (like wav2vec2-base) or ``layer`` (like wav2vec2-large-lv60); SSL models only.
    seed : int
        Seed of the random weights.

    Returns
    -------
    str
        ``folder``.

    Example
    -------
    >>> import tempfile
    >>> FrozenEncoder(make_tiny_encoder(tempfile.mkdtemp(), "hubert")).dim
    16
    """
    torch.manual_seed(seed)
    small = {"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
    if model_type == "whisper":
        config = transformers.WhisperConfig(
            d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500,
            max_target_positions=16, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1)
        model = transformers.WhisperModel(config)
        extractor = transformers.WhisperFeatureExtractor(feature_size=80)
    else:
        classes = {"wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
                   "hubert": (transformers.HubertConfig, transformers.HubertModel),
                   "wavlm": (transformers.WavLMConfig, transformers.WavLMModel)}
        config_class, model_class = classes[model_type]
        config = config_class(
            hidden_size=16, conv_dim=(16, 16), conv_kernel=(320, 2), conv_stride=(160, 2), conv_bias=False,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, feat_extract_norm=feat_extract_norm,
            do_stable_layer_norm=feat_extract_norm == "layer", **small)
        model = model_class(config)
        extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return str(folder)


def open_encoder(source, layer=-1, device="cpu", whisper_window=DEFAULT_WHISPER_WINDOW):
    """Load the front end named by ``source``: the built-in ``"fbank"`` or a pretrained :class:`FrozenEncoder`.

    ``"fbank"`` is reserved for :class:`~speechbrain_phonanchor.features.fbank.FbankEncoder`
    (80 log-mel bins, its default settings; ``whisper_window`` does not apply); a local
    folder of that name is reached as ``./fbank``.  Anything else is a Hugging Face id or a
    local ``save_pretrained`` folder.

    Example
    -------
    >>> enc = open_encoder("fbank")
    >>> enc.model_type, enc.dim, enc.frame_rate
    ('fbank', 80, 50.0)
    """
    if str(source) == "fbank":
        from speechbrain_phonanchor.features.fbank import FbankEncoder  # fbank.py imports this module

        return FbankEncoder(layer=layer, device=device)
    return FrozenEncoder(source, layer=layer, device=device, whisper_window=whisper_window)
