"""The error raised for unusable input files: it names the file and carries a short reason tag.

Callers either stop with the message or count a skip under ``err.reason``.

Example
-------
>>> err = InputError("/corpus/a.wav", "silent_audio", "peak below -60 dBFS")
>>> str(err), err.reason
('/corpus/a.wav: silent audio (peak below -60 dBFS)', 'silent_audio')
"""


class InputError(ValueError):
    """An input file that cannot be used; ``reason`` is a short tag, the message names the file."""

    def __init__(self, path, reason, detail=""):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason.replace('_', ' ')}" + (f" ({detail})" if detail else ""))
