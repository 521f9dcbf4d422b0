"""The crash-safe writer of feature stores: shards with a journal, the merge, and :func:`write_store`.

A build appends each finished batch to a shard under ``<store>/build/rank-XXXXX/``: first
the frames, then one line of ``journal.jsonl`` carrying the batch's CRC-32 (both flushed per
batch, fsync'd every ``SYNC_SECONDS`` and at the end; the shard's SHA-256 is computed while
writing, so the merge does not read the frames again).  A batch counts as done only once its
journal line is complete, so after ``kill -9`` a rerun truncates whatever was half written
and goes on with the next batch.  :func:`finalize_store` assembles the finished store in
plan order, so an interrupted and resumed build is byte-identical to an uninterrupted one,
and under ``torchrun`` rank 0 merges every rank's shard into the same bytes a single process
would write.  "The same bytes" assumes the same arithmetic: torch's thread count changes the
summation order, so a build resumed with another ``OMP_NUM_THREADS`` matches to float16
rounding, not bit for bit.

:func:`write_store` writes a finished store from frames already in memory (synthetic
stores, conversions, tests) through the same frames writer and index code.

Example
-------
>>> import tempfile, pathlib, numpy
>>> out = pathlib.Path(tempfile.mkdtemp()) / "store"
>>> write_store({"a": numpy.ones((3, 4))}, out, {"encoder": "synthetic", "layers": [-1], "dim": 4,
...                                              "frame_rate": 50.0})["a"].shape
(3, 4)
"""

import collections.abc
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

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one writer per store is then up to the user
    fcntl = None

from speechbrain_phonanchor.audio import SAMPLE_RATE
from speechbrain_phonanchor.features.store import (
    BUILD_DIR,
    CONFIG_NAME,
    DTYPE,
    FORMAT,
    FRAMES_NAME,
    INDEX_NAME,
    JOURNAL_NAME,
    LOCK_NAME,
    FeatureStore,
    StoreError,
    _config_sha256,
    manifest_sha256,
)
from speechbrain_phonanchor.fileio import atomic_write_json
from speechbrain_phonanchor.manifest import load_manifest

logger = logging.getLogger(__name__)

SYNC_SECONDS = 30.0


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
