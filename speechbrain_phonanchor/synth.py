"""Speech synthesis with espeak-ng (through ``ctypes`` on espeakng-loader's library), with prosody control.

espeak-ng is a formant synthesiser: robotic, but offline, deterministic, in
100+ languages, and its rate, pitch, pitch range and volume can be set per
utterance.  This module uses it to make *synthetic* stand-ins for emotional
speech (the demo's "emotions" are prosodic styles, see :data:`STYLES`); nothing
it produces is real emotional speech.

:func:`synthesize` returns the 22 050 Hz samples and espeak-ng's own phoneme
events (IPA symbol and start time of each phoneme, word starts), which can
serve as a reference alignment.

Example
-------
>>> out = synthesize("Hello world", voice="en-us", prosody=STYLES["hap"])
>>> out.sample_rate, out.samples.dtype, 0.5 < out.duration < 2.5
(22050, dtype('float32'), True)
>>> [p for p, _ in out.phonemes][:3]
['h', 'ə', 'l']
"""

import ctypes
import multiprocessing
import pathlib
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 22050
# espeak-ng's speak_lib.h
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_CHARS_UTF8 = 1
_PHONEME_EVENTS, _PHONEME_IPA, _DONT_EXIT = 0x0001, 0x0002, 0x8000
_POS_CHARACTER = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_EVENT_END_OF_LIST, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
# espeak-ng voice names of language codes used in this project
VOICES = {"en": "en-us", "zh": "cmn", "cmn": "cmn", "pl": "pl", "it": "it", "ru": "ru", "de": "de"}
EXAMPLE_SENTENCES = {"en": "I really did not expect to see you here today.", "zh": "我今天真的没想到会在这里见到你。",
                     "it": "Non mi aspettavo davvero di vederti qui oggi.", "pl": "Naprawdę nie spodziewałem się "
                     "ciebie tu dzisiaj.", "ru": "Я правда не ожидал увидеть тебя здесь сегодня."}


class SynthError(RuntimeError):
    """espeak-ng could not be loaded, or refused a voice or a text."""


@dataclass(frozen=True)
class Prosody:
    """espeak-ng prosodic parameters.

    Arguments
    ---------
    rate : int
        Words per minute (80-450; espeak-ng's default is 175).
    pitch : int
        Base pitch, 0-100 (default 50).
    range : int
        Pitch range, 0-100 (0 = monotone; default 50).
    volume : int
        Amplitude, 0-200 (default 100).
    """

    rate: int = 175
    pitch: int = 50
    range: int = 50
    volume: int = 100


# Four prosodic styles standing in for four emotions in the synthetic demo corpus
# (after the usual acoustic profiles: anger loud, fast and wide; sadness slow, low and flat).
STYLES = {
    "neu": Prosody(rate=165, pitch=45, range=35, volume=100),
    "hap": Prosody(rate=195, pitch=75, range=95, volume=120),
    "ang": Prosody(rate=215, pitch=55, range=70, volume=185),
    "sad": Prosody(rate=115, pitch=20, range=8, volume=70),
}


@dataclass
class Synthesis:
    """What :func:`synthesize` returns: float32 samples in [-1, 1] and espeak-ng's timing events."""

    samples: np.ndarray
    sample_rate: int
    phonemes: list = field(default_factory=list)  # (IPA symbol, start in s)
    words: list = field(default_factory=list)  # (character offset in the text, start in s)

    @property
    def duration(self):
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """An espeak-ng instance; made only in a fresh child process (see :func:`synthesize_many`)."""

    def __init__(self):
        try:
            import espeakng_loader

            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = pathlib.Path(espeakng_loader.get_data_path())
        except (ImportError, OSError) as err:
            raise SynthError(f"cannot load espeak-ng through espeakng-loader: {err}") from err
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                          ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        options = _PHONEME_EVENTS | _PHONEME_IPA | _DONT_EXIT
        rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, str(data.parent).encode(), options)
        if rate <= 0:
            raise SynthError(f"espeak_Initialize failed ({rate}) with data in {data}")
        self.sample_rate = rate
        self.lib.espeak_ng_SetRandSeed(0)  # otherwise seeded from the clock (noise in voice variants)
        self.chunks, self.phonemes, self.words = [], [], []
        self.callback = _CALLBACK(self._collect)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, n_samples, events):
        if n_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        index = 0
        while events[index].type != _EVENT_END_OF_LIST:
            event = events[index]
            seconds = event.audio_position / 1000.0
            if event.type == _EVENT_PHONEME:
                symbol = bytes(event.id.string).split(b"\0")[0].decode("utf-8", "replace")
                if symbol.strip():
                    self.phonemes.append((symbol, seconds))
            elif event.type == _EVENT_WORD:
                self.words.append((event.text_position - 1, seconds))
            index += 1
        return 0

    def synthesize(self, text, voice, prosody):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SynthError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in ((_RATE, prosody.rate), (_PITCH, prosody.pitch), (_RANGE, prosody.range),
                                 (_VOLUME, prosody.volume)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self.chunks, self.phonemes, self.words = [], [], []
        encoded = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise SynthError(f"espeak_Synth failed with status {status} on {text!r}")
        samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return Synthesis((samples / 32768.0).astype(np.float32), self.sample_rate, self.phonemes, self.words)


def synthesize(text, voice="en-us", prosody=Prosody()):
    """Synthesise ``text`` with espeak-ng.

    Arguments
    ---------
    text : str
        UTF-8 text in the voice's language (Han characters for ``cmn``).
    voice : str
        espeak-ng voice name, optionally with a variant (``en-us``, ``cmn``, ``it+f3``);
        project language codes (``en``, ``zh``) are accepted too.
    prosody : Prosody
        Rate, pitch, pitch range and volume.

    Returns
    -------
    Synthesis
        Deterministic: the same arguments give the same samples.
    """
    return synthesize_many([(text, voice, prosody)])[0]


def _synthesize_fresh(request):
    text, voice, prosody = request
    base, _, variant = voice.partition("+")
    voice = VOICES.get(base, base) + (f"+{variant}" if variant else "")
    result = _Engine().synthesize(text, voice, prosody)
    if not len(result.samples):
        raise SynthError(f"espeak-ng produced no audio for {text!r} ({voice})")
    return result


def synthesize_many(requests, jobs=1):
    """Synthesise ``(text, voice, prosody)`` requests; return their :class:`Synthesis` in order.

    espeak-ng keeps state from one utterance to the next (the same text comes out a
    few samples longer or shorter the second time), so every request runs in a
    process forked for it alone, where the library starts from its initial state:
    the output depends only on the request.  ``jobs`` processes run at once.
    """
    with multiprocessing.get_context("fork").Pool(max(1, jobs), maxtasksperchild=1) as pool:
        return pool.map(_synthesize_fresh, list(requests), chunksize=1)


def write_example(path, language, text=None, prosody=Prosody()):
    """Write one synthetic sentence in ``language`` to ``path`` (WAV, 22 050 Hz); return the path.

    The file is labelled synthetic in its WAV comment.
    """
    import soundfile

    text = text or EXAMPLE_SENTENCES.get(language) or EXAMPLE_SENTENCES["en"]
    out = synthesize(text, language, prosody)
    with soundfile.SoundFile(path, "w", samplerate=out.sample_rate, channels=1, subtype="PCM_16") as handle:
        handle.comment = f"SYNTHETIC speech (espeak-ng, {language}): {text}"
        handle.write(out.samples)
    return pathlib.Path(path)
