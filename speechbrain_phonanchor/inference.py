"""Inference: a SpeechBrain ``Pretrained`` interface to an exported AGA-CL emotion recogniser.

:class:`PhonAnchorClassifier` is what ``custom_interface.py`` of an exported
folder (``phonanchor-export``) exposes, so it loads with::

    from speechbrain.inference.interfaces import foreign_class
    from speechbrain.utils.fetching import FetchConfig
    clf = foreign_class(source="exported/", pymodule_file="custom_interface.py",
                        classname="PhonAnchorClassifier", fetch_config=FetchConfig(allow_network=False))
    probabilities, score, index, label = clf.classify_file("speech.wav", text="transcript, if any")

Per utterance:

1. the audio is read at any sample rate and channel count and turned into 16 kHz
   mono (:func:`speechbrain_phonanchor.audio.load_audio`);
2. the frozen encoder the model was trained with gives 20 ms frames;
3. vowels are located: from a TextGrid when one is given, else from the
   transcript with the built-in aligner's saved model for the language (shipped
   in ``aligners/<lang>/`` of the export), else not at all; the segments are then
   the ±``half_width`` windows around the vowels, or fixed ``chunk_width`` chunks
   when no vowel was found (exactly what training did for unaligned utterances);
4. the network (in eval mode, so cross-phonetic attention attends to the stored
   bank of target vowel prototypes and nothing is random) gives class probabilities.

The result unpacks like SpeechBrain's classifiers, ``(probabilities, score,
index, label)``, and also says how each utterance was segmented
(:class:`Classification`: ``segmentation`` is ``"vowels"`` or ``"chunks"``, and
``details`` gives the reason and the vowels used).

Example
-------
>>> result = Classification(torch.tensor([[0.2, 0.8]]), torch.tensor([0.8]), torch.tensor([1]), ["hap"],
...                         [{"segmentation": "chunks", "reason": "no transcript"}])
>>> probabilities, score, index, label = result
>>> label, result.segmentation
(['hap'], ['chunks'])
"""

import hashlib
import json
import logging
import pathlib

import torch
import torchaudio
from speechbrain.inference.interfaces import Pretrained

from speechbrain_phonanchor.audio import SAMPLE_RATE, load_audio
from speechbrain_phonanchor.data import collate_utterances, utterance_segments
from speechbrain_phonanchor.features.encoders import FrozenEncoder, open_encoder
from speechbrain_phonanchor.model.vowel_ids import NONE_ID
from speechbrain_phonanchor.phonetics import map_phone
from speechbrain_phonanchor.textgrids import read_alignment

logger = logging.getLogger(__name__)

VOWELS = "vowels"
CHUNKS = "chunks"
ALIGNER_PHONE_SET = "espeak"  # phone symbols of the built-in aligner


def encoder_fingerprint(encoder):
    """SHA-256 of a :class:`FrozenEncoder`'s model config, without where it was loaded from.

    Two copies of the same encoder folder give the same fingerprint; another model
    (or the same architecture with other settings) gives another one.  The built-in
    fbank front end has no model config: its fingerprint is the hash of its settings.
    """
    if getattr(encoder, "model", None) is None:  # FbankEncoder
        return encoder.config_sha256
    ignored = ("_name_or_path", "transformers_version")
    config = {k: v for k, v in encoder.model.config.to_dict().items() if k not in ignored}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


class Classification(tuple):
    """``(probabilities, score, index, label)`` plus how each utterance was segmented.

    Arguments
    ---------
    probabilities : torch.Tensor
        (B, n_classes) softmax outputs.
    score : torch.Tensor
        (B,) probability of the chosen class.
    index : torch.Tensor
        (B,) chosen class index.
    label : list of str
        Chosen class labels.
    details : list of dict
        Per utterance: ``segmentation`` (``"vowels"`` / ``"chunks"``), ``reason``
        (why chunks were used, or where the vowels came from), ``vowels``
        (the located vowels as ``(vowel, start, end)``), ``n_segments``.
    """

    def __new__(cls, probabilities, score, index, label, details):
        result = super().__new__(cls, (probabilities, score, index, label))
        result.details = details
        return result

    @property
    def segmentation(self):
        """``"vowels"`` or ``"chunks"`` per utterance."""
        return [detail["segmentation"] for detail in self.details]


def vowels_from_phones(phones, phone_set=ALIGNER_PHONE_SET):
    """Manifest-style vowel dicts from ``(phone, start, end)`` intervals.

    Example
    -------
    >>> vowels_from_phones([("n", 0.0, 0.1), ("aɪ", 0.1, 0.3), ("sil", 0.3, 0.4)])
    [{'vowel': 'aɪ', 'kind': 'diph', 'start': 0.1, 'end': 0.3}]
    """
    vowels = []
    for phone, start, end in phones:
        info = map_phone(phone, phone_set)
        if info.vowel is not None:
            vowels.append({"vowel": info.vowel, "kind": info.kind, "start": float(start), "end": float(end)})
    return vowels


class PhonAnchorClassifier(Pretrained):
    """Cross-lingual speech emotion recogniser (AGA-CL) as a SpeechBrain ``Pretrained`` interface.

    Built by ``foreign_class`` from an exported folder (see the module
    docstring); ``hparams`` come from its ``hyperparams.yaml``.

    Example
    -------
    See the module docstring; ``tests/test_inference.py`` exports and loads a tiny model.
    """

    HPARAMS_NEEDED = ["encoder_source", "encoder_layer", "label_encoder", "half_width", "chunk_width",
                      "min_duration", "language"]
    MODULES_NEEDED = ["model"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.encoder = open_encoder(self._encoder_source(), self.hparams.encoder_layer, device=self.device,
                                    whisper_window=getattr(self.hparams, "whisper_window", None) or "30s")
        expected = getattr(self.hparams, "encoder_fingerprint", None)
        if expected and expected != encoder_fingerprint(self.encoder):
            raise ValueError(f"encoder {self.hparams.encoder_source} is not the one this model was trained on "
                             "(its config differs); use the encoder named in the model card")
        self._aligners = {}

    def _encoder_source(self):
        """The encoder folder or id; a bundled encoder missing locally is fetched from the Hub repo."""
        source = str(self.hparams.encoder_source)
        if not getattr(self.hparams, "bundled_encoder", False) or pathlib.Path(source).is_dir():
            return source
        from huggingface_hub import snapshot_download  # only for models loaded from the Hub

        repo = str(self.hparams.pretrained_path)
        return str(pathlib.Path(snapshot_download(repo, allow_patterns=["encoder/*"])) / "encoder")

    @property
    def classes(self):
        """Class labels in index order."""
        encoder = self.hparams.label_encoder
        return [encoder.ind2lab[i] for i in range(len(encoder))]

    def aligner(self, lang):
        """The saved built-in aligner model and G2P for ``lang``; ``KeyError`` if the export has none."""
        if lang not in self._aligners:
            available = dict(getattr(self.hparams, "aligners", None) or {})
            if lang not in available:
                raise KeyError(f"no aligner for {lang!r} in this model (has: {', '.join(available) or 'none'})")
            from speechbrain_phonanchor.align import AcousticModel, make_g2p

            self._aligners[lang] = (AcousticModel.load(available[lang]), make_g2p(lang))
        return self._aligners[lang]

    def locate_vowels(self, wav, text=None, textgrid=None, lang=None, phone_set=None):
        """Find the vowels of one 16 kHz waveform; return ``(vowels, reason)``.

        ``vowels`` is a list of manifest-style dicts (empty when none were
        found), ``reason`` says where they came from or why there are none.
        """
        duration = len(wav) / SAMPLE_RATE
        if textgrid is not None:
            alignment = read_alignment(textgrid, phone_set or getattr(self.hparams, "textgrid_phone_set", "espeak"),
                                       audio_duration=duration)
            return alignment.vowels, f"TextGrid {textgrid}"
        if not text or not str(text).strip():
            return [], "no transcript given"
        lang = lang or self.hparams.language
        try:
            model, g2p = self.aligner(lang)
        except KeyError as err:
            return [], str(err.args[0])
        from speechbrain_phonanchor.align import AlignError
        from speechbrain_phonanchor.align.features import compute_features

        words = g2p.transcribe(text).words
        try:
            result = model.align(compute_features(wav.cpu().numpy()), words, duration=duration)
        except AlignError as err:
            return [], f"alignment failed: {err}"
        return vowels_from_phones(result.phones), f"built-in aligner ({lang})"

    @torch.no_grad()
    def classify_batch(self, wavs, wav_lens=None, texts=None, textgrids=None, lang=None, sample_rate=SAMPLE_RATE):
        """Classify a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, samples) mono waveforms, zero-padded at the end (or one (samples,) waveform).
        wav_lens : torch.Tensor, optional
            Relative lengths (SpeechBrain convention); None means all full.
        texts : list of str or None, optional
            Transcripts (None entries allowed): vowels are located with the built-in aligner.
        textgrids : list of path or None, optional
            TextGrids with a ``phones`` tier, used instead of the aligner.
        lang : str, optional
            Language of the transcripts (default: the target language the model was adapted to).
        sample_rate : int
            Rate of ``wavs``; other rates than 16 kHz are resampled.

        Returns
        -------
        Classification
            Unpacks as ``(probabilities, score, index, label)``.
        """
        wavs = torch.as_tensor(wavs, dtype=torch.float32)
        if sample_rate != SAMPLE_RATE:
            wavs = torchaudio.functional.resample(wavs, sample_rate, SAMPLE_RATE)
        waveforms = FrozenEncoder.split(wavs, wav_lens)
        texts = list(texts) if texts is not None else [None] * len(waveforms)
        textgrids = list(textgrids) if textgrids is not None else [None] * len(waveforms)
        if not len(texts) == len(textgrids) == len(waveforms):
            raise ValueError(f"{len(waveforms)} waveforms, {len(texts)} texts, {len(textgrids)} TextGrids")
        shortest = int(self.hparams.min_duration * SAMPLE_RATE)
        for index, wav in enumerate(waveforms):
            if len(wav) < max(shortest, self.encoder.min_samples):
                raise ValueError(f"utterance {index} is too short: {len(wav) / SAMPLE_RATE:.3f} s, "
                                 f"this model needs at least {self.hparams.min_duration} s")
        frames = self.encoder.encode_list(waveforms)
        items, details = [], []
        for index, (wav, utt_frames) in enumerate(zip(waveforms, frames)):
            vowels, reason = self.locate_vowels(wav, texts[index], textgrids[index], lang)
            segments = utterance_segments({"vowels": vowels}, len(utt_frames), self.encoder.frame_rate,
                                          self.hparams.half_width, self.hparams.chunk_width)
            mode = VOWELS if any(vid != NONE_ID for _, _, vid in segments) else CHUNKS
            if mode == CHUNKS and vowels:
                reason = f"{reason}: its vowels fall outside the audio"
            segments = torch.tensor(segments, dtype=torch.long)
            items.append({"id": str(index), "frames": utt_frames, "segments": segments[:, :2],
                          "vowels": segments[:, 2], "label": -1})
            details.append({"segmentation": mode, "reason": reason, "n_segments": len(segments),
                            "vowels": [(v["vowel"], v["start"], v["end"]) for v in vowels]})
        batch = collate_utterances(items).to(self.device)
        out = self.mods.model(batch.frames, batch.lengths, batch.segments, batch.segment_mask)
        probabilities = torch.softmax(out.logits, dim=-1)
        if probabilities.shape[-1] != len(self.classes):
            raise ValueError(f"model has {probabilities.shape[-1]} classes, label_encoder.txt {len(self.classes)}")
        score, index = probabilities.max(dim=-1)
        labels = [self.classes[i] for i in index.tolist()]
        for detail in details:
            if detail["segmentation"] == CHUNKS:
                logger.info("no vowels located (%s): classified on %d fixed chunks", detail["reason"],
                            detail["n_segments"])
        return Classification(probabilities, score, index, labels, details)

    def classify_file(self, path, text=None, textgrid=None, lang=None):
        """Classify one audio file (any sample rate and channel count).

        Arguments
        ---------
        path : str or Path
            Audio file (WAV, FLAC, OGG, ...).
        text : str, optional
            Its transcript; with it the vowels are located by the built-in aligner.
        textgrid : str or Path, optional
            An MFA-style TextGrid of the file (used instead of the aligner).
        lang : str, optional
            Language of ``text`` (default: the model's target language).

        Returns
        -------
        Classification
            ``(probabilities, score, index, label)``; ``.details[0]`` says how vowels were found.

        Raises
        ------
        speechbrain_phonanchor.audio.AudioError
            Missing, unreadable, silent or too-short audio (``err.reason`` says which).
        """
        wav, _ = load_audio(path, min_duration=self.hparams.min_duration)
        return self.classify_batch(wav.unsqueeze(0), texts=[text], textgrids=[textgrid], lang=lang)

    def forward(self, wavs, wav_lens=None):
        """Same as :meth:`classify_batch` without transcripts."""
        return self.classify_batch(wavs, wav_lens)
