"""The feature store: frozen-encoder frames of one manifest, fp16 on disk, read on demand by offset.

One store holds one (manifest × encoder × layers × dtype).  On disk it is a folder::

    config.json   identity: encoder, its config hash, layers, dim, frame rate, dtype, manifest hash
                  (and, for Whisper encoders, the ``whisper_window``)
    index.json    utterance id → [row offset, n_frames] in manifest order, skips with reasons,
                  the build summary and the SHA-256 of frames.f16 (written last: its presence
                  means the store is complete)
    frames.f16    all frames, float16, row-major (total_rows, dim)

This module is the **reader** (:class:`FeatureStore`) and the store's identity.  The
crash-safe **writer** (journal, shards, merge, :func:`write_store`) is
:mod:`~speechbrain_phonanchor.features.writer`; the **extraction loop** that encodes a
manifest into a store (:func:`build_store`, with audio loading overlapped with encoding) is
:mod:`~speechbrain_phonanchor.features.extraction`.  Their public names stay importable
from here (``from speechbrain_phonanchor.features.store import build_store``).

**Reading**: ``store[utt]`` reads that utterance's rows from ``frames.f16`` by offset
(``os.preadv``) into a fresh read-only array.  Nothing stays mapped into the reader, so its
resident memory does not grow with the share of the store an epoch has visited (the
kernel's page cache still caches the file, outside the process); :attr:`FeatureStore.frames`
gives a memory-mapped view of all rows for callers that want one.

**Identity**: a folder that holds a store (finished or not) built with another encoder,
layer, dtype, Whisper window or manifest is refused with a message naming what differs.  The
manifest hash covers the ordered utterance ids and their unresolved ``wav`` paths (labels and
alignments do not change features, and the corpus may move).  Stores written before the
Whisper window was recorded count as ``30s`` (the only window there was).

Example
-------
>>> import tempfile, pathlib, json, numpy, soundfile, transformers
>>> from speechbrain_phonanchor.features.store import build_store   # lives in features.extraction
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> config = transformers.Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
...     intermediate_size=32, conv_dim=(16, 16), conv_kernel=(320, 2), conv_stride=(160, 2),
...     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
>>> transformers.Wav2Vec2Model(config).save_pretrained(tmp / "enc")
>>> soundfile.write(tmp / "a.wav", 0.1 * numpy.random.randn(16000), 16000)
>>> _ = (tmp / "m.json").write_text(json.dumps({"a": {"wav": "{data_root}/a.wav", "duration": 1.0}}))
>>> summary = build_store(tmp / "m.json", tmp / "enc", tmp / "store", data_root=tmp, progress=False)
>>> summary["extracted"], summary["skipped"]
(1, {})
>>> store = FeatureStore.open(tmp / "store")
>>> store["a"].shape, store["a"].dtype, store.frame_rate
((49, 16), dtype('float16'), 50.0)
"""

import collections.abc
import contextlib
import hashlib
import importlib
import json
import os
import pathlib

import numpy as np

FORMAT = "phonanchor-feature-store/1"
DTYPE = np.float16
CONFIG_NAME = "config.json"
INDEX_NAME = "index.json"
FRAMES_NAME = "frames.f16"
BUILD_DIR = "build"
JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = ".lock"
IDENTITY_KEYS = ("format", "encoder", "encoder_config_sha256", "layers", "dim", "frame_rate", "dtype",
                 "whisper_window", "manifest_sha256")
DEFAULT_BATCH_SECONDS = 120.0
HASH_BLOCK = 1 << 24

# Public names that live in the writer and extraction modules, importable from here too.
MOVED = {name: "speechbrain_phonanchor.features.writer"
         for name in ("write_store", "finalize_store", "read_journal", "SYNC_SECONDS")}
MOVED.update({name: "speechbrain_phonanchor.features.extraction"
              for name in ("build_store", "init_store", "extract_shard", "load_encoder", "plan_batches")})


def __getattr__(name):
    if name in MOVED:
        return getattr(importlib.import_module(MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class StoreError(ValueError):
    """A store that cannot be built, resumed or opened; the message says why and what to do."""


def manifest_sha256(manifest):
    """Hash of a manifest's ordered utterance ids and unresolved ``wav`` paths."""
    items = [[utt_id, entry["wav"]] for utt_id, entry in manifest.items()]
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()


def file_sha256(path):
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def with_identity_defaults(config):
    """``config`` with identity keys that older stores lack filled in (Whisper window: ``30s``)."""
    config = dict(config)
    if "whisper_window" not in config:
        config["whisper_window"] = "30s" if config.get("encoder_type") == "whisper" else None
    return config


def describe_mismatch(found, wanted):
    """Human-readable list of identity keys whose values differ, or '' if none."""
    found = with_identity_defaults(found)
    return "; ".join(
        f"{key}: store has {found.get(key)!r}, requested {wanted.get(key)!r}"
        for key in IDENTITY_KEYS
        if key in wanted and found.get(key) != wanted.get(key)
    )


class FeatureStore(collections.abc.Mapping):
    """Read-only access to a finished store: utterance id → (n_frames, dim) float16.

    Use :meth:`open`.  ``store[utt_id]`` reads the utterance's rows on demand by offset
    into a fresh, read-only array (no memory map stays resident in the reader, so reading
    a whole epoch does not grow the process's RSS); :attr:`frames` is a memory-mapped
    ``(rows, dim)`` view of the whole file for callers that want one.  Safe to share
    across threads and forked DataLoader workers, and picklable (the file is reopened).

    Example
    -------
    See the module docstring.
    """

    def __init__(self, path, config, index):
        self.path = pathlib.Path(path)
        self.config = config
        self.index = index
        self._entries = index["utterances"]
        self.utterance_ids = list(self._entries)
        self._row_bytes = int(config["dim"]) * np.dtype(DTYPE).itemsize
        self._fd, self._fd_pid, self._memmap = None, None, None

    @classmethod
    def open(cls, path, expect=None, verify=False):
        """Open the store at ``path``, checking that it is complete and intact.

        Arguments
        ---------
        path : str or Path
            The store folder.
        expect : dict, optional
            Identity values the caller needs (e.g. ``{"encoder": ..., "layers": [-1]}``);
            a store whose config differs is refused.
        verify : bool
            Also check the SHA-256 of the frames (reads the whole file).

        Returns
        -------
        FeatureStore
        """
        path = pathlib.Path(path)
        config_path, index_path, frames_path = path / CONFIG_NAME, path / INDEX_NAME, path / FRAMES_NAME
        if not config_path.is_file():
            raise StoreError(f"{path} is not a feature store (no {CONFIG_NAME})")
        if not index_path.is_file():
            raise StoreError(f"{path}: the store is incomplete (its build was interrupted); "
                             f"rerun the same phonanchor-extract command to resume it")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise StoreError(f"{path}: damaged {CONFIG_NAME} or {INDEX_NAME}: {err}") from err
        if config.get("format") != FORMAT:
            raise StoreError(f"{path}: unknown store format {config.get('format')!r} (expected {FORMAT!r})")
        if index.get("config_sha256") != _config_sha256(config):
            raise StoreError(f"{path}: {CONFIG_NAME} does not match {INDEX_NAME} (was it edited or replaced?)")
        mismatch = describe_mismatch(config, _normalise_expect(expect or {}))
        if mismatch:
            raise StoreError(f"{path} was built with other settings ({mismatch}); use a store built for them")
        rows, dim = index["rows"], config["dim"]
        expected_bytes = rows * dim * np.dtype(DTYPE).itemsize
        size = frames_path.stat().st_size if frames_path.is_file() else -1
        if size != expected_bytes:
            raise StoreError(f"{path}: {FRAMES_NAME} has {max(size, 0)} bytes, the index needs {expected_bytes} "
                             f"(truncated or replaced file); rebuild the store")
        if verify and file_sha256(frames_path) != index["frames_sha256"]:
            raise StoreError(f"{path}: {FRAMES_NAME} does not match its checksum (corrupted); rebuild the store")
        return cls(path, config, index)

    @property
    def frames(self):
        """All rows as a read-only memory-mapped ``(rows, dim)`` float16 array (mapped on first use).

        Pages of the map that are read stay in this process's resident set until the
        kernel reclaims them; for training loops prefer ``store[utt_id]``.
        """
        if self._memmap is None:
            rows, dim = self.index["rows"], self.dim
            self._memmap = (np.memmap(self.path / FRAMES_NAME, dtype=DTYPE, mode="r", shape=(rows, dim))
                            if rows else np.zeros((0, dim), DTYPE))
        return self._memmap

    def _file(self):
        """This process's descriptor of ``frames.f16`` (reopened after a fork)."""
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path / FRAMES_NAME, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            self._fd_pid = os.getpid()
        return self._fd

    def read_rows(self, offset, n_rows):
        """Rows ``offset .. offset + n_rows`` of ``frames.f16``, read by offset into a fresh read-only array."""
        out = np.empty((n_rows, self.dim), DTYPE)
        view, position = memoryview(out).cast("B"), offset * self._row_bytes
        while len(view):
            if hasattr(os, "preadv"):
                got = os.preadv(self._file(), [view], position)
            else:  # no positional reads (Windows): a handle of our own
                with open(self.path / FRAMES_NAME, "rb") as handle:
                    handle.seek(position)
                    got = handle.readinto(view)
            if got <= 0:
                raise StoreError(f"{self.path}: {FRAMES_NAME} ends before row {offset + n_rows} "
                                 f"(truncated after opening); rebuild the store")
            view, position = view[got:], position + got
        out.flags.writeable = False
        return out

    def close(self):
        """Close the file descriptor (reads reopen it); the memory map, if any, is dropped."""
        if getattr(self, "_fd", None) is not None and self._fd_pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._fd_pid, self._memmap = None, None, None

    def __del__(self):
        self.close()

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_fd=None, _fd_pid=None, _memmap=None)
        return state

    @property
    def dim(self):
        """Feature dimension (``len(layers) * hidden_size``)."""
        return self.config["dim"]

    @property
    def frame_rate(self):
        """Frames per second (50.0)."""
        return self.config["frame_rate"]

    @property
    def skipped(self):
        """Utterance id → reason for every manifest utterance without features."""
        return dict(self.index["skipped"])

    @property
    def summary(self):
        """The build summary (counts of extracted, skipped by reason, resampled, downmixed)."""
        return dict(self.index["summary"])

    def __getitem__(self, utt_id):
        try:
            offset, n_frames = self._entries[utt_id]
        except KeyError:
            reason = self.index["skipped"].get(utt_id)
            detail = f" (skipped at extraction: {reason})" if reason else ""
            raise KeyError(f"{utt_id!r} is not in the store{detail}") from None
        return self.read_rows(offset, n_frames)

    def layer_frames(self, utt_id, layer):
        """The columns of one stored layer (a value from ``config['layers']``) for ``utt_id``."""
        layers = self.config["layers"]
        if layer not in layers:
            raise KeyError(f"layer {layer} is not in the store (it has {layers})")
        width = self.dim // len(layers)
        start = layers.index(layer) * width
        return self[utt_id][:, start : start + width]

    def __contains__(self, utt_id):
        return utt_id in self._entries

    def __iter__(self):
        return iter(self.utterance_ids)

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return f"FeatureStore({str(self.path)!r}, {len(self)} utterances, dim={self.dim}, {self.config['encoder']})"


def _config_sha256(config):
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _normalise_expect(expect):
    """Accept ``layer`` for ``layers`` and a local encoder folder in any spelling."""
    expect = dict(expect)
    if "encoder" in expect and pathlib.Path(expect["encoder"]).is_dir():
        expect["encoder"] = str(pathlib.Path(expect["encoder"]).resolve())
    for key in ("layer", "layers"):
        if key in expect:
            value = expect.pop(key)
            expect["layers"] = [value] if isinstance(value, int) else list(value)
    return expect
