"""SpeechBrain JSON manifests: one entry per utterance, paths under ``{data_root}``.

Format (DESIGN.md)::

    {"utt_id": {"wav": "{data_root}/wavs/x.flac", "duration": 4.21,
                "emo": "neu", "aro": "mid", "val": "low", "spk": "30", "gender": "M",
                "lang": "en", "text": "...",
                "phones": [["sil", 0.0, 0.12], ...],
                "vowels": [{"phone": "IY1", "ipa": "i", "vowel": "i", "kind": "mono",
                            "start": 0.15, "end": 0.24}, ...]}}

Labels a corpus lacks are ``None``.  The corpus folder a manifest belongs to is
recorded as ``data_folder`` in the ``prep_report.json`` beside it, so tools can
resolve ``{data_root}`` without being told; ``--data-root`` overrides it.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> save_manifest({"u1": {"wav": "{data_root}/a.wav", "duration": 1.0}}, folder / "m.json")
>>> load_manifest(folder / "m.json", data_root="/corpus")["u1"]["wav"]
'/corpus/a.wav'
"""

import json
import pathlib

from speechbrain_phonanchor.fileio import atomic_write_json

DATA_ROOT = "{data_root}"
REPORT_NAME = "prep_report.json"
REQUIRED_KEYS = ("wav", "duration")
LABEL_KEYS = ("emo", "aro", "val")


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file."""


def save_manifest(manifest, path):
    """Write ``manifest`` (dict of utterance id → entry) atomically as JSON."""
    atomic_write_json(path, manifest)


def find_data_root(manifest_path):
    """Return the ``data_folder`` recorded in ``prep_report.json`` beside a manifest, or None."""
    report = pathlib.Path(manifest_path).parent / REPORT_NAME
    if report.is_file():
        return json.loads(report.read_text(encoding="utf-8")).get("data_folder")
    return None


def load_manifest(path, data_root=None, resolve=True):
    """Read a manifest and (by default) replace ``{data_root}`` in its ``wav`` paths.

    Arguments
    ---------
    path : str or Path
        The manifest JSON.
    data_root : str, optional
        The corpus folder; defaults to the one recorded in ``prep_report.json``.
    resolve : bool
        If False, paths are returned as stored (with ``{data_root}``).

    Returns
    -------
    dict
        Utterance id → entry, in file order.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: expected an object of utterance id → entry")
    for utt_id, entry in manifest.items():
        missing = [key for key in REQUIRED_KEYS if key not in entry]
        if missing:
            raise ManifestError(f"{path}: utterance {utt_id!r} lacks {', '.join(missing)}")
    if resolve:
        root = data_root if data_root is not None else find_data_root(path)
        for utt_id, entry in manifest.items():
            if DATA_ROOT in entry["wav"]:
                if root is None:
                    raise ManifestError(
                        f"{path}: utterance {utt_id!r} uses {DATA_ROOT} but no data root is known; "
                        f"pass data_root (CLI: --data-root) or keep {REPORT_NAME} beside the manifest"
                    )
                entry["wav"] = entry["wav"].replace(DATA_ROOT, str(root))
    return manifest
