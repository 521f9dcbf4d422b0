"""The feature store: frozen-encoder frames of one manifest, fp16 on disk, read on demand by offset.

One store holds one (manifest × encoder × layers × dtype).  On disk it is a folder::

    config.json   identity: encoder, its config hash, layers, dim, frame rate, dtype, manifest hash
    index.json    utterance id → [row offset, n_frames] in manifest order, skips with reasons,
                  the build summary and the SHA-256 of frames.f16 (written last: its presence
                  means the store is complete)
    frames.f16    all frames, float16, row-major (total_rows, dim)

**Reading** (:class:`FeatureStore`): ``store[utt]`` reads that utterance's rows from
``frames.f16`` by offset (``os.preadv``) into a fresh read-only array.  Nothing stays
mapped into the reader, so its resident memory does not grow with the share of the store
an epoch has visited (the kernel's page cache still caches the file, outside the
process); :attr:`FeatureStore.frames` gives a memory-mapped view of all rows for callers
that want one.

**Writing** a store from frames already in memory (synthetic stores, conversions, tests)
is :func:`write_store`; the builder finishes its stores through the same frames writer
and index code.

**Building** (:func:`build_store`) plans length-sorted batches from the manifest's
``duration`` (a deterministic plan), encodes them and appends each finished batch to a
shard under ``build/``: first the frames, then one line of ``journal.jsonl`` carrying the
batch's CRC-32 (both flushed per batch, fsync'd every ``SYNC_SECONDS`` and at the end;
the shard's SHA-256 is computed while writing, so the merge does not read the frames
again).  A batch counts as done only once its journal line is complete, so after
``kill -9`` a rerun of the same command truncates whatever was half written and goes on
with the next batch; the finished store is assembled in plan order, so an interrupted
and resumed build is byte-identical to an uninterrupted one.  Under ``torchrun`` each
rank takes every ``world_size``-th batch into its own shard and rank 0 merges the shards
(:func:`finalize_store`) into the same bytes a single process would write.  "The same
bytes" assumes the same arithmetic: torch's thread count changes the summation order, so
a build resumed with another ``OMP_NUM_THREADS`` matches to float16 rounding, not bit for bit.

**Identity**: a folder that holds a store (finished or not) built with another encoder,
layer, dtype or manifest is refused with a message naming what differs.  The manifest
hash covers the ordered utterance ids and their unresolved ``wav`` paths (labels and
alignments do not change features, and the corpus may move).

Example
-------
>>> import tempfile, pathlib, json, numpy, soundfile, transformers
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
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import pathlib
import shutil
import time
import zlib

import numpy as np
import torch

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one writer per store is then up to the user
    fcntl = None
from tqdm import tqdm

from speechbrain_phonanchor.audio import SAMPLE_RATE, AudioError, load_audio
from speechbrain_phonanchor.features.encoders import FrozenEncoder
from speechbrain_phonanchor.fileio import atomic_write_json
from speechbrain_phonanchor.manifest import load_manifest

logger = logging.getLogger(__name__)

FORMAT = "phonanchor-feature-store/1"
DTYPE = np.float16
CONFIG_NAME = "config.json"
INDEX_NAME = "index.json"
FRAMES_NAME = "frames.f16"
BUILD_DIR = "build"
JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = ".lock"
IDENTITY_KEYS = ("format", "encoder", "encoder_config_sha256", "layers", "dim", "frame_rate", "dtype",
                 "manifest_sha256")
DEFAULT_BATCH_SECONDS = 120.0
HASH_BLOCK = 1 << 24
SYNC_SECONDS = 30.0


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


def plan_batches(durations, batch_seconds, cost=float):
    """Group utterances into batches of similar length, longest first.

    Arguments
    ---------
    durations : dict
        Utterance id → duration in seconds (in manifest order; ties keep that order).
    batch_seconds : float
        Most padded seconds per batch (``len(batch) * cost(longest)``); a longer
        utterance gets a batch of its own.
    cost : callable
        Seconds the encoder really processes for a duration (Whisper pads to 30 s).

    Returns
    -------
    list of list of str

    Example
    -------
    >>> plan_batches({"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}, batch_seconds=4.0)
    [['b'], ['c', 'a'], ['d']]
    """
    order = sorted(durations, key=lambda utt: -float(durations[utt]))
    batches = []
    for utt in order:
        if batches and cost(float(durations[batches[-1][0]])) * (len(batches[-1]) + 1) <= batch_seconds:
            batches[-1].append(utt)
        else:
            batches.append([utt])
    return batches


def describe_mismatch(found, wanted):
    """Human-readable list of identity keys whose values differ, or '' if none."""
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


# ----------------------------------------------------------------------------------------------
# Building


class _Shard:
    """One rank's append-only part of a build: ``frames.f16`` plus ``journal.jsonl``.

    Each journal line commits one batch and carries the CRC-32 of its frames.  Both files
    are flushed after every batch (all a ``kill -9`` needs) and fsync'd every
    ``SYNC_SECONDS`` and at the end; after a power loss :meth:`recover` keeps the longest
    run of batches whose frames still match their CRC.  After :meth:`recover` (which reads
    every committed batch anyway) ``digest`` is the running SHA-256 of the shard's frames,
    updated by :meth:`append`; :meth:`sync` records the file state it describes, so the
    merge can trust it instead of reading the frames again.
    """

    def __init__(self, folder, dim):
        self.folder = pathlib.Path(folder)
        self.frames_path = self.folder / FRAMES_NAME
        self.journal_path = self.folder / JOURNAL_NAME
        self.row_bytes = dim * np.dtype(DTYPE).itemsize
        self.entries, self.line_sizes = read_journal(self.journal_path)
        self.last_sync = time.monotonic()
        self.digest = None  # SHA-256 of the frames of self.entries, once known
        self.synced_state = None  # (inode, size, mtime_ns) of frames.f16 at the last sync, for the digest

    def digest_of_file(self):
        """Hex SHA-256 of ``frames.f16`` if this object wrote or checked all of it and nobody changed it since."""
        if self.digest is None or self.synced_state is None:
            return None
        stat = self.frames_path.stat()
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self.synced_state:
            return None
        return self.digest.hexdigest()

    @property
    def rows(self):
        return self.entries[-1]["offset"] + self.entries[-1]["rows"] if self.entries else 0

    def read(self, entry):
        """The frames bytes of one committed batch, checked against its CRC (StoreError if damaged)."""
        with open(self.frames_path, "rb") as handle:
            handle.seek(entry["offset"] * self.row_bytes)
            data = handle.read(entry["rows"] * self.row_bytes)
        if len(data) != entry["rows"] * self.row_bytes or zlib.crc32(data) != entry["crc32"]:
            raise StoreError(f"{self.folder}: frames of batch {entry['batch']} are damaged; rerun the extraction")
        return data

    def recover(self):
        """Cut whatever a killed run left half written, and any batch whose frames fail their CRC."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.digest = hashlib.sha256()
        for kept, entry in enumerate(self.entries):
            try:
                self.digest.update(self.read(entry))
            except StoreError:
                logger.warning("%s: dropping batches from %d on (not fully on disk)", self.folder, entry["batch"])
                del self.entries[kept:], self.line_sizes[kept:]
                break
        for path, size in ((self.journal_path, sum(self.line_sizes)), (self.frames_path, self.rows * self.row_bytes)):
            with open(path, "ab") as handle:
                if handle.tell() != size:
                    handle.truncate(size)
                    os.fsync(handle.fileno())

    def append(self, entry, frames):
        """Append one batch: frames first, then the journal line that commits them."""
        data = np.ascontiguousarray(frames, dtype=DTYPE).data.cast("B")
        entry = dict(entry, offset=self.rows, rows=len(frames), crc32=zlib.crc32(data))
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        for path, payload in ((self.frames_path, data), (self.journal_path, line)):
            with open(path, "ab") as handle:
                handle.write(payload)
        if self.digest is not None:
            self.digest.update(data)
        self.synced_state = None
        self.entries.append(entry)
        self.line_sizes.append(len(line))
        if time.monotonic() - self.last_sync > SYNC_SECONDS:
            self.sync()

    def sync(self):
        """fsync both files (frames first)."""
        for path in (self.frames_path, self.journal_path):
            with open(path, "ab") as handle:
                os.fsync(handle.fileno())
        self.last_sync = time.monotonic()
        stat = self.frames_path.stat()
        self.synced_state = (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@contextlib.contextmanager
def _writer_lock(folder):
    """Hold an exclusive lock on a shard folder so that two processes never append to it at once."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"{folder}: another process is extracting into this store; "
                                 f"wait for it to finish or stop it, then rerun") from None
        yield


def read_journal(path):
    """Committed entries of a journal and the byte size of each line; a torn last line is ignored."""
    entries, sizes = [], []
    if not pathlib.Path(path).is_file():
        return entries, sizes
    with open(path, "rb") as handle:
        for line in handle:
            try:
                if not line.endswith(b"\n"):
                    break
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                break
            sizes.append(len(line))
    return entries, sizes


def _shard_folders(out_dir):
    build = pathlib.Path(out_dir) / BUILD_DIR
    return sorted(build.glob("rank-*")) if build.is_dir() else []


def _done_batches(out_dir, dim, live=None):
    """Batch index → (shard, journal entry) over every shard of an unfinished build.

    ``live`` is a :class:`_Shard` this process has just written (it knows its digest);
    it stands in for its folder.
    """
    done = {}
    for folder in _shard_folders(out_dir):
        same = live is not None and live.folder.resolve() == folder.resolve()
        shard = live if same else _Shard(folder, dim)
        for entry in shard.entries:
            done[entry["batch"]] = (shard, entry)
    return done


def _load_one(manifest, utt, encoder):
    """Read one utterance's audio; return (wav, info), or (None, skip reason)."""
    try:
        wav, info = load_audio(manifest[utt]["wav"], min_duration=encoder.min_samples / SAMPLE_RATE)
        if encoder.n_frames(len(wav)) < 1:
            raise AudioError(manifest[utt]["wav"], "too_short_audio", "shorter than the encoder's receptive field")
    except AudioError as err:
        logger.warning("skipping %s: %s", utt, err)
        return None, err.reason
    return wav, info


def _encode_batch(encoder, manifest, utts, loads):
    """Encode one batch whose audio arrives as ``loads`` (futures of :func:`_load_one`, one per utterance).

    A model that runs one utterance at a time (group norm) starts on each utterance as
    soon as its audio is read; a batchable one waits for the whole batch.  The frames
    are the same either way (``encode_list`` runs such models one utterance at a time).

    Returns
    -------
    (frames, lengths, skipped, flags)
        fp16 frames of all kept utterances, ``[utt, n_frames]`` of each, ``[utt, reason]``
        of each skipped one, and the counts ``resampled``, ``downmixed``, ``samples``.
    """
    kept, skipped, flags, outputs = [], [], {"resampled": 0, "downmixed": 0, "samples": 0}, []
    for utt, load in zip(utts, loads):
        wav, info = load.result()
        if wav is None:
            skipped.append([utt, info])
            continue
        flags["resampled"] += info.resampled
        flags["downmixed"] += info.downmixed
        flags["samples"] += len(wav)
        kept.append(utt)
        if not encoder.batchable:
            outputs.append(_checked_fp16(encoder.encode_list([wav])[0], manifest, utt))
        else:
            outputs.append(wav)
    if encoder.batchable and kept:
        outputs = [_checked_fp16(frames, manifest, utt) for utt, frames in zip(kept, encoder.encode_list(outputs))]
    frames = np.concatenate(outputs) if outputs else np.zeros((0, encoder.dim), DTYPE)
    return frames, [[utt, len(out)] for utt, out in zip(kept, outputs)], skipped, flags


def _checked_fp16(frames, manifest, utt):
    """``frames`` as a float16 array; StoreError naming ``utt`` if any value is not finite."""
    frames = frames.to(torch.float16)
    if not torch.isfinite(frames).all():
        raise StoreError(f"non-finite features (NaN/inf, or beyond the float16 range) for utterance {utt!r} "
                         f"({manifest[utt]['wav']}); the store keeps the batches before it")
    return frames.numpy()


def load_encoder(encoder_source, layer=-1, device="cpu"):
    """Return ``encoder_source`` if it is a :class:`FrozenEncoder`, else load one."""
    if isinstance(encoder_source, FrozenEncoder):
        return encoder_source
    return FrozenEncoder(encoder_source, layer=layer, device=device)


def init_store(manifest_path, encoder, out_dir, data_root=None, batch_seconds=DEFAULT_BATCH_SECONDS, create=True):
    """Check (and with ``create``, write) a build's identity in ``out_dir``; return (manifest, config, plan).

    A folder holding a store with other settings, or a non-empty folder that is not a
    store, is refused.  Under torchrun only rank 0 creates; the others check.
    """
    raw = load_manifest(manifest_path, resolve=False)
    manifest = load_manifest(manifest_path, data_root=data_root)
    config = {
        "format": FORMAT,
        "encoder": encoder.source,
        "encoder_type": encoder.model_type,
        "encoder_config_sha256": encoder.config_sha256,
        "layers": list(encoder.layers),
        "dim": encoder.dim,
        "frame_rate": encoder.frame_rate,
        "sample_rate": SAMPLE_RATE,
        "dtype": np.dtype(DTYPE).name,
        "manifest": pathlib.Path(manifest_path).name,
        "manifest_sha256": manifest_sha256(raw),
        "batch_seconds": float(batch_seconds),
    }
    out_dir = pathlib.Path(out_dir)
    existing_path = out_dir / CONFIG_NAME
    if existing_path.is_file():
        existing = json.loads(existing_path.read_text(encoding="utf-8"))
        mismatch = describe_mismatch(existing, config)
        if mismatch:
            raise StoreError(f"{out_dir} holds a store built with other settings ({mismatch}); "
                             f"choose another --out folder or delete this one")
        if not (out_dir / INDEX_NAME).is_file() and existing.get("batch_seconds") != config["batch_seconds"]:
            raise StoreError(f"{out_dir}: an interrupted build used --batch-seconds {existing.get('batch_seconds')}; "
                             f"resume it with the same value (or delete the folder)")
        config = existing
    elif not create:
        raise StoreError(f"{out_dir}: no {CONFIG_NAME}; the store must be created (by rank 0) before extracting")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise StoreError(f"{out_dir} exists, is not empty and holds no feature store; choose another --out folder")
    else:
        atomic_write_json(existing_path, config)
    plan = plan_batches({utt: entry["duration"] for utt, entry in manifest.items()}, config["batch_seconds"],
                        cost=encoder.cost_seconds)
    return manifest, config, plan


def extract_shard(manifest_path, encoder, out_dir, data_root=None, batch_seconds=DEFAULT_BATCH_SECONDS,
                  rank=0, world_size=1, progress=True):
    """Encode this rank's share of the batches into ``out_dir/build/rank-XXXXX`` (resumable).

    Rank ``r`` takes the batches ``i`` with ``i % world_size == r`` that no shard has
    finished yet.  The store must exist (:func:`init_store`); other arguments are those
    of :func:`build_store`, with ``encoder`` a loaded :class:`FrozenEncoder`.

    Returns
    -------
    int
        Number of batches this call encoded.
    """
    return _extract_shard(manifest_path, encoder, out_dir, data_root, batch_seconds, rank, world_size, progress)[0]


def _extract_shard(manifest_path, encoder, out_dir, data_root, batch_seconds, rank, world_size, progress):
    """:func:`extract_shard`, also returning the shard it wrote (None if the store was finished)."""
    manifest, config, plan = init_store(manifest_path, encoder, out_dir, data_root, batch_seconds, create=False)
    out_dir = pathlib.Path(out_dir)
    if (out_dir / INDEX_NAME).is_file():
        return 0, None
    folder = out_dir / BUILD_DIR / f"rank-{rank:05d}"
    shard = _Shard(folder, config["dim"])
    with _writer_lock(folder):
        return _extract(manifest, encoder, out_dir, config, plan, shard, rank, world_size, progress), shard


def _extract(manifest, encoder, out_dir, config, plan, shard, rank, world_size, progress):
    """The loop of :func:`extract_shard`, run while holding the shard's lock."""
    shard.recover()
    done = _done_batches(out_dir, config["dim"])
    todo = [i for i in range(len(plan)) if i % world_size == rank and i not in done]
    seconds = sum(float(manifest[utt]["duration"]) for i in todo for utt in plan[i])
    bar = tqdm(total=round(seconds, 1), unit="s", desc=f"extract[{rank}]" if world_size > 1 else "extract",
               disable=not progress, position=rank, dynamic_ncols=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as reader:
        def read(position):  # queue one batch's audio, utterance by utterance, on the reader thread
            return [reader.submit(_load_one, manifest, utt, encoder) for utt in plan[todo[position]]]

        pending = read(0) if todo else None
        for position, batch_index in enumerate(todo):
            loads = pending
            if position + 1 < len(todo):  # read the next batch's audio while this one is encoded
                pending = read(position + 1)
            try:
                frames, lengths, skipped, flags = _encode_batch(encoder, manifest, plan[batch_index], loads)
            except BaseException:
                for load in list(loads) + list(pending or ()):
                    load.cancel()
                raise
            shard.append({"batch": batch_index, "utterances": lengths, "skipped": skipped, **flags}, frames)
            bar.update(round(sum(float(manifest[utt]["duration"]) for utt in plan[batch_index]), 1))
    shard.sync()
    bar.close()
    return len(todo)


def finalize_store(manifest_path, out_dir):
    """Merge the shards of a finished build into ``frames.f16`` + ``index.json``; return the summary.

    Batches are laid out in plan order whatever rank encoded them, so the result does not
    depend on the number of ranks or on interruptions.  Raises :class:`StoreError` when a
    batch is missing (a rank did not finish).
    """
    return _finalize(manifest_path, out_dir)


def _finalize(manifest_path, out_dir, live=None):
    """:func:`finalize_store`; ``live`` is the shard this process just wrote, if any (see :func:`_done_batches`)."""
    out_dir = pathlib.Path(out_dir)
    if (out_dir / INDEX_NAME).is_file():
        return FeatureStore.open(out_dir).summary
    config = json.loads((out_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    manifest = load_manifest(manifest_path, resolve=False)
    if config["manifest_sha256"] != manifest_sha256(manifest):
        raise StoreError(f"{out_dir} was started for another manifest than {manifest_path}")
    with contextlib.ExitStack() as locks:
        for folder in _shard_folders(out_dir):
            locks.enter_context(_writer_lock(folder))
        return _merge(manifest, out_dir, config, live)


def _merge(manifest, out_dir, config, live=None):
    """The body of :func:`finalize_store`, run while holding every shard's lock."""
    done = _done_batches(out_dir, config["dim"], live)
    order = sorted(done)
    covered = {utt for i in order for utt, _ in done[i][1]["utterances"] + done[i][1]["skipped"]}
    if order != list(range(len(order))) or covered != set(manifest):
        raise StoreError(f"{out_dir}: the build covers {len(covered)} of {len(manifest)} utterances; "
                         f"rerun the extraction to resume it")
    frames_sha256 = _write_frames(out_dir, config["dim"], [done[i] for i in order])
    entries, skipped = {}, {}
    summary = {"utterances": len(manifest), "extracted": 0, "skipped": {}, "resampled": 0, "downmixed": 0,
               "frames": 0, "audio_seconds": 0.0}
    offset = 0
    for _, entry in (done[i] for i in order):
        for utt, n_frames in entry["utterances"]:
            entries[utt] = [offset, n_frames]
            offset += n_frames
        for utt, reason in entry["skipped"]:
            skipped[utt] = reason
            summary["skipped"][reason] = summary["skipped"].get(reason, 0) + 1
        summary["resampled"] += entry["resampled"]
        summary["downmixed"] += entry["downmixed"]
        summary["audio_seconds"] += entry["samples"] / SAMPLE_RATE
    summary.update(extracted=len(entries), frames=offset, audio_seconds=round(summary["audio_seconds"], 3))
    summary["skipped"] = dict(sorted(summary["skipped"].items()))
    _write_index(out_dir, config, offset, frames_sha256, {utt: entries[utt] for utt in manifest if utt in entries},
                 {utt: skipped[utt] for utt in manifest if utt in skipped}, summary)
    shutil.rmtree(out_dir / BUILD_DIR, ignore_errors=True)
    return summary


def _write_index(out_dir, config, rows, frames_sha256, entries, skipped, summary):
    """Write ``index.json`` last, atomically: from then on the store at ``out_dir`` is complete."""
    index = {
        "config_sha256": _config_sha256(config),
        "rows": rows,
        "frames_sha256": frames_sha256,
        "utterances": entries,
        "skipped": skipped,
        "summary": summary,
    }
    atomic_write_json(out_dir / INDEX_NAME, index)


class _FramesWriter:
    """Writes ``frames.f16`` through a temporary file, hashing while writing; :meth:`commit` puts it in place.

    Used by the merge of a build (batches copied from the shards) and by :func:`write_store`.
    """

    def __init__(self, out_dir, dim):
        self.target, self.tmp = out_dir / FRAMES_NAME, out_dir / f".{FRAMES_NAME}.tmp"
        self.row_bytes = int(dim) * np.dtype(DTYPE).itemsize
        self.tmp.unlink(missing_ok=True)
        self.handle = open(self.tmp, "wb")
        self.digest = hashlib.sha256()
        self.rows = 0

    def write(self, data):
        """Append whole rows (bytes or a C-contiguous buffer); return the row offset they start at."""
        data = memoryview(data).cast("B")
        if len(data) % self.row_bytes:
            raise StoreError(f"{len(data)} bytes are not a whole number of {self.row_bytes}-byte rows")
        start = self.rows
        self.handle.write(data)
        self.digest.update(data)
        self.rows += len(data) // self.row_bytes
        return start

    def commit(self):
        """fsync, then rename over ``frames.f16``; return the hex SHA-256 of what was written."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.target)
        return self.digest.hexdigest()

    def abort(self):
        """Drop the temporary file."""
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def _write_frames(out_dir, dim, parts):
    """Assemble ``frames.f16`` from (shard, entry) pairs in order, checking each batch's CRC; return its SHA-256.

    When one shard already holds every batch in order it is hard-linked into place
    (the shard stays until the index is written, so a crash here loses nothing); its
    SHA-256 comes from the shard when this process wrote it (no second read), otherwise
    every batch is read back and checked.
    """
    shards = {shard.folder: shard for shard, _ in parts}
    only = next(iter(shards.values()))
    in_order = len(shards) == 1 and [entry for _, entry in parts] == only.entries
    if in_order and only.frames_path.stat().st_size == only.rows * only.row_bytes:
        target, tmp = out_dir / FRAMES_NAME, out_dir / f".{FRAMES_NAME}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(only.frames_path, tmp)
        except OSError:
            pass  # no hard links on this file system: copy
        else:
            known = only.digest_of_file()
            if known is None:
                digest = hashlib.sha256()
                for shard, entry in parts:
                    digest.update(shard.read(entry))
                known = digest.hexdigest()
            os.replace(tmp, target)
            return known
    writer = _FramesWriter(out_dir, dim)
    try:
        for shard, entry in parts:
            writer.write(shard.read(entry))
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def write_store(frames_by_utt, out_dir, config, skipped=None, summary=None):
    """Write a finished store from frames in memory; return it opened.

    For stores that are not extracted from audio by :func:`build_store` (synthetic
    benchmarks, conversions, tests); the result is an ordinary store, written by the
    same frames writer and index code as a build's merge.

    Arguments
    ---------
    frames_by_utt : Mapping or iterable of (str, array)
        Utterance id → ``(n_frames, dim)`` frames, in store order (converted to float16;
        an iterable may be a generator, so a large store never has to be in memory whole).
    out_dir : str or Path
        The store folder: created; must not exist or be empty.
    config : dict
        The store's identity (see :data:`IDENTITY_KEYS`): at least ``encoder``, ``layers``,
        ``dim`` and ``frame_rate``; ``format`` and ``dtype`` are filled in, any other
        key (``encoder_type``, ``manifest``, ``manifest_sha256`` …) is kept as given.
    skipped : dict, optional
        Utterance id → reason, for utterances without frames.
    summary : dict, optional
        Replaces keys of the default summary (counts of utterances, frames, audio seconds).

    Returns
    -------
    FeatureStore

    Example
    -------
    >>> import tempfile, pathlib, numpy
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "store"
    >>> frames = {"a": numpy.ones((3, 4)), "b": numpy.zeros((2, 4))}
    >>> store = write_store(frames, out, {"encoder": "synthetic", "layers": [-1], "dim": 4, "frame_rate": 50.0})
    >>> store["a"].shape, store["b"].dtype, store.index["rows"]
    ((3, 4), dtype('float16'), 5)
    """
    out_dir = pathlib.Path(out_dir)
    config = {"format": FORMAT, **config, "dtype": np.dtype(DTYPE).name}
    missing = [key for key in ("encoder", "layers", "dim", "frame_rate") if key not in config]
    if missing:
        raise StoreError(f"write_store: the config lacks {', '.join(missing)}")
    if config["format"] != FORMAT:
        raise StoreError(f"write_store: unknown store format {config['format']!r} (expected {FORMAT!r})")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise StoreError(f"{out_dir} exists and is not empty; write a store into a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    dim, skipped = int(config["dim"]), dict(skipped or {})
    items = frames_by_utt.items() if isinstance(frames_by_utt, collections.abc.Mapping) else frames_by_utt
    entries = {}
    writer = _FramesWriter(out_dir, dim)
    try:
        for utt, frames in items:
            frames = np.ascontiguousarray(frames, dtype=DTYPE)
            if frames.ndim != 2 or frames.shape[1] != dim:
                raise StoreError(f"write_store: frames of {utt!r} have shape {frames.shape}, expected (n, {dim})")
            if utt in entries or utt in skipped:
                raise StoreError(f"write_store: utterance {utt!r} given twice")
            entries[utt] = [writer.write(frames), len(frames)]
    except BaseException:
        writer.abort()
        raise
    atomic_write_json(out_dir / CONFIG_NAME, config)
    frames_sha256 = writer.commit()
    counts = {}
    for reason in skipped.values():
        counts[reason] = counts.get(reason, 0) + 1
    default = {"utterances": len(entries) + len(skipped), "extracted": len(entries),
               "skipped": dict(sorted(counts.items())), "resampled": 0, "downmixed": 0, "frames": writer.rows,
               "audio_seconds": round(writer.rows / float(config["frame_rate"]), 3)}
    _write_index(out_dir, config, writer.rows, frames_sha256, entries, skipped, {**default, **(summary or {})})
    return FeatureStore.open(out_dir)


def build_store(manifest_path, encoder_source, out_dir, layer=-1, data_root=None,
                batch_seconds=DEFAULT_BATCH_SECONDS, device="cpu", progress=True):
    """Extract frozen-encoder features of every manifest utterance into a store at ``out_dir``.

    Rerunning the same call after an interruption (even ``kill -9``) resumes it; calling it
    on a finished store with the same settings returns its summary without work.

    Arguments
    ---------
    manifest_path : str or Path
        A SpeechBrain JSON manifest (``wav`` and ``duration`` per utterance).
    encoder_source : str, Path or FrozenEncoder
        HF model id or local folder (or an already loaded encoder, whose layers are used).
    out_dir : str or Path
        The store folder (created).
    layer : int or list of int
        Hidden-state index/indices (see :class:`FrozenEncoder`).
    data_root : str, optional
        Replaces ``{data_root}`` in the manifest (default: from ``prep_report.json``).
    batch_seconds : float
        Most padded seconds of audio per batch.
    device : str
        ``cpu`` or ``cuda``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``utterances``, ``extracted``, ``skipped`` (reason → count), ``resampled``,
        ``downmixed``, ``frames``, ``audio_seconds``.
    """
    encoder = load_encoder(encoder_source, layer=layer, device=device)
    init_store(manifest_path, encoder, out_dir, data_root, batch_seconds)
    _, shard = _extract_shard(manifest_path, encoder, out_dir, data_root, batch_seconds, 0, 1, progress)
    summary = _finalize(manifest_path, out_dir, live=shard)
    logger.info("feature store %s: %s", out_dir, summary)
    return summary
