"""The extraction loop: encode every utterance of a manifest into a feature store, resumably.

:func:`build_store` plans length-sorted batches from the manifest's ``duration`` (a
deterministic plan), reads each batch's audio (decode, resample, downmix, checks) in
**loader worker processes** while the main process encodes the batch before it, and hands
each finished batch to the crash-safe writer (:mod:`~speechbrain_phonanchor.features.writer`).
Loading runs in processes, not threads, so it never competes with the encoder's Python code
for the interpreter lock: on a GPU machine the GPU does not wait for the CPU, and on a CPU
machine the encoder keeps its own core(s).  Batches come back in plan order
(``torch.utils.data.DataLoader`` keeps the order of its items), so the store is the same
bytes with 0, 1 or more loader workers, and ``kill -9`` + a rerun still gives a
byte-identical store (the writer commits whole batches only).

Example
-------
>>> import tempfile, pathlib, json, numpy, soundfile
>>> from speechbrain_phonanchor.features.encoders import make_tiny_encoder
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> for name in ("a", "b", "c"):
...     soundfile.write(tmp / f"{name}.wav", 0.1 * numpy.random.randn(16000), 16000)
>>> manifest = {name: {"wav": f"{{data_root}}/{name}.wav", "duration": 1.0} for name in "abc"}
>>> _ = (tmp / "m.json").write_text(json.dumps(manifest))
>>> summary = build_store(tmp / "m.json", make_tiny_encoder(tmp / "enc"), tmp / "store", data_root=tmp,
...                       batch_seconds=1.0, loader_workers=1, progress=False)
>>> summary["extracted"], summary["frames"]
(3, 147)
"""

import json
import logging
import pathlib

import numpy as np
import torch
from tqdm import tqdm

from speechbrain_phonanchor.audio import SAMPLE_RATE, AudioError, load_audio
from speechbrain_phonanchor.features.encoders import DEFAULT_WHISPER_WINDOW, open_encoder
from speechbrain_phonanchor.features.store import (
    BUILD_DIR,
    CONFIG_NAME,
    DEFAULT_BATCH_SECONDS,
    DTYPE,
    FORMAT,
    INDEX_NAME,
    StoreError,
    describe_mismatch,
    manifest_sha256,
)
from speechbrain_phonanchor.features.writer import _done_batches, _finalize, _Shard, _writer_lock
from speechbrain_phonanchor.fileio import atomic_write_json
from speechbrain_phonanchor.manifest import load_manifest

logger = logging.getLogger(__name__)

DEFAULT_LOADER_WORKERS = 1
PREFETCH_BATCHES = 4


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
        Seconds the encoder really processes for a duration (Whisper ``30s`` pads to 30 s).

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


def load_utterance(utt, path, min_samples):
    """Read one utterance's audio as 16 kHz mono; return ``(utt, wav, info)`` or ``(utt, None, reason)``.

    ``wav`` is a float32 tensor (:func:`pack_batch` joins a batch's tensors for the trip out of
    a loader worker).

    Example
    -------
    >>> load_utterance("x", "/no/such.wav", 400)[1:]
    (None, 'missing_audio')
    """
    try:
        wav, info = load_audio(path, min_duration=min_samples / SAMPLE_RATE)
        if len(wav) < min_samples:
            raise AudioError(path, "too_short_audio", "shorter than the encoder's receptive field")
    except AudioError as err:
        logger.warning("skipping %s: %s", utt, err)
        return utt, None, err.reason
    return utt, wav, info


class BatchAudio(torch.utils.data.Dataset):
    """Item ``i``: the loaded audio of the ``i``-th batch to encode, as :func:`pack_batch` of its
    :func:`load_utterance` results.

    Arguments
    ---------
    manifest : dict
        Utterance id → entry with a resolved ``wav`` path.
    batches : list of list of str
        The batches to load, in the order they will be encoded.
    min_samples : int
        The encoder's fewest samples that give one frame.
    """

    def __init__(self, manifest, batches, min_samples):
        self.paths = {utt: manifest[utt]["wav"] for batch in batches for utt in batch}
        self.batches = batches
        self.min_samples = int(min_samples)

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return pack_batch([load_utterance(utt, self.paths[utt], self.min_samples) for utt in self.batches[index]])


def pack_batch(loaded):
    """One batch's waveforms as a single flat tensor (one shared-memory transfer per batch, not per utterance).

    Returns ``(flat, [(utt, n_samples or None, info or reason), ...])``; :func:`unpack_batch` undoes it.

    Example
    -------
    >>> flat, items = pack_batch([("a", torch.ones(3), "i"), ("b", None, "silent_audio")])
    >>> [(utt, wav.tolist() if wav is not None else None, info) for utt, wav, info in unpack_batch((flat, items))]
    [('a', [1.0, 1.0, 1.0], 'i'), ('b', None, 'silent_audio')]
    """
    wavs = [wav for _, wav, _ in loaded if wav is not None]
    flat = torch.cat(wavs) if wavs else torch.zeros(0)
    return flat, [(utt, None if wav is None else len(wav), info) for utt, wav, info in loaded]


def unpack_batch(packed):
    """The list of ``(utt, wav or None, info or reason)`` of a :func:`pack_batch` result (``wav``: views)."""
    flat, items = packed
    pieces = iter(torch.split(flat, [n for _, n, _ in items if n is not None]))
    return [(utt, None if n is None else next(pieces), info) for utt, n, info in items]


def _as_is(item):
    """DataLoader collate function that leaves a loaded batch (a :func:`pack_batch` result) as it is."""
    return item


def loaded_batches(manifest, batches, min_samples, workers=DEFAULT_LOADER_WORKERS):
    """Yield the loaded audio of ``batches`` in order, read by ``workers`` processes ahead of the caller.

    With ``workers=0`` (or a single batch) each batch is read when it is asked for, in this
    process.  Workers read up to ``PREFETCH_BATCHES`` batches each ahead of the encoder.

    Example
    -------
    >>> [[utt for utt, _, _ in items] for _, items in loaded_batches({"a": {"wav": "/x.wav"}}, [["a"]], 1, 0)]
    [['a']]
    """
    dataset = BatchAudio(manifest, batches, min_samples)
    if workers <= 0 or len(batches) < 2:
        yield from (dataset[index] for index in range(len(dataset)))
        return
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                         collate_fn=_as_is, prefetch_factor=PREFETCH_BATCHES)
    yield from loader


def _encode_batch(encoder, manifest, loaded):
    """Encode one loaded batch (a :func:`pack_batch` of :func:`load_utterance` results).

    Returns
    -------
    (frames, lengths, skipped, flags)
        fp16 frames of all kept utterances, ``[utt, n_frames]`` of each, ``[utt, reason]``
        of each skipped one, and the counts ``resampled``, ``downmixed``, ``samples``.
    """
    kept, wavs, skipped, flags = [], [], [], {"resampled": 0, "downmixed": 0, "samples": 0}
    for utt, wav, info in unpack_batch(loaded):
        if wav is None:
            skipped.append([utt, info])
            continue
        flags["resampled"] += info.resampled
        flags["downmixed"] += info.downmixed
        flags["samples"] += len(wav)
        kept.append(utt)
        wavs.append(wav)
    if encoder.batchable:
        outputs = encoder.encode_list(wavs) if wavs else []
    else:  # one utterance per forward (group-norm models, Whisper exact)
        outputs = [encoder.encode_list([wav])[0] for wav in wavs]
    outputs = [_checked_fp16(frames, manifest, utt) for utt, frames in zip(kept, outputs)]
    frames = np.concatenate(outputs) if outputs else np.zeros((0, encoder.dim), DTYPE)
    return frames, [[utt, len(out)] for utt, out in zip(kept, outputs)], skipped, flags


def _checked_fp16(frames, manifest, utt):
    """``frames`` as a float16 array; StoreError naming ``utt`` if any value is not finite."""
    frames = frames.to(torch.float16)
    if not torch.isfinite(frames).all():
        raise StoreError(f"non-finite features (NaN/inf, or beyond the float16 range) for utterance {utt!r} "
                         f"({manifest[utt]['wav']}); the store keeps the batches before it")
    return frames.numpy()


def load_encoder(encoder_source, layer=-1, device="cpu", whisper_window=DEFAULT_WHISPER_WINDOW):
    """Return ``encoder_source`` if it is already loaded, else open it (:func:`open_encoder`: ``"fbank"`` or a model).

    Example
    -------
    >>> load_encoder("fbank").model_type
    'fbank'
    """
    if isinstance(encoder_source, torch.nn.Module):  # a FrozenEncoder, FbankEncoder or the like
        return encoder_source
    return open_encoder(encoder_source, layer=layer, device=device, whisper_window=whisper_window)


def init_store(manifest_path, encoder, out_dir, data_root=None, batch_seconds=DEFAULT_BATCH_SECONDS, create=True):
    """Check (and with ``create``, write) a build's identity in ``out_dir``; return (manifest, config, plan).

    A folder holding a store with other settings (another encoder, layer, Whisper window,
    manifest ...), or a non-empty folder that is not a store, is refused.  Under torchrun
    only rank 0 creates; the others check.
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
        "whisper_window": encoder.whisper_window,
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
                  rank=0, world_size=1, progress=True, loader_workers=DEFAULT_LOADER_WORKERS):
    """Encode this rank's share of the batches into ``out_dir/build/rank-XXXXX`` (resumable).

    Rank ``r`` takes the batches ``i`` with ``i % world_size == r`` that no shard has
    finished yet.  The store must exist (:func:`init_store`); other arguments are those
    of :func:`build_store`, with ``encoder`` a loaded :class:`FrozenEncoder`.

    Returns
    -------
    int
        Number of batches this call encoded.
    """
    return _extract_shard(manifest_path, encoder, out_dir, data_root, batch_seconds, rank, world_size, progress,
                          loader_workers)[0]


def _extract_shard(manifest_path, encoder, out_dir, data_root, batch_seconds, rank, world_size, progress,
                   loader_workers):
    """:func:`extract_shard`, also returning the shard it wrote (None if the store was finished)."""
    manifest, config, plan = init_store(manifest_path, encoder, out_dir, data_root, batch_seconds, create=False)
    out_dir = pathlib.Path(out_dir)
    if (out_dir / INDEX_NAME).is_file():
        return 0, None
    folder = out_dir / BUILD_DIR / f"rank-{rank:05d}"
    shard = _Shard(folder, config["dim"])
    with _writer_lock(folder):
        shard.recover()
        done = _done_batches(out_dir, config["dim"])
        todo = [i for i in range(len(plan)) if i % world_size == rank and i not in done]
        seconds = sum(float(manifest[utt]["duration"]) for i in todo for utt in plan[i])
        bar = tqdm(total=round(seconds, 1), unit="s", desc=f"extract[{rank}]" if world_size > 1 else "extract",
                   disable=not progress, position=rank, dynamic_ncols=True)
        batches = loaded_batches(manifest, [plan[i] for i in todo], encoder.min_samples, loader_workers)
        encoded = 0.0
        for batch_index, loaded in zip(todo, batches):
            frames, lengths, skipped, flags = _encode_batch(encoder, manifest, loaded)
            shard.append({"batch": batch_index, "utterances": lengths, "skipped": skipped, **flags}, frames)
            encoded += sum(float(manifest[utt]["duration"]) for utt in plan[batch_index])
            bar.n = min(round(encoded, 1), bar.total)  # set, not summed: rounded steps never overshoot the total
            bar.refresh()
        shard.sync()
        bar.close()
    return len(todo), shard


def build_store(manifest_path, encoder_source, out_dir, layer=-1, data_root=None,
                batch_seconds=DEFAULT_BATCH_SECONDS, device="cpu", progress=True,
                whisper_window=DEFAULT_WHISPER_WINDOW, loader_workers=DEFAULT_LOADER_WORKERS):
    """Extract frozen-encoder features of every manifest utterance into a store at ``out_dir``.

    Rerunning the same call after an interruption (even ``kill -9``) resumes it; calling it
    on a finished store with the same settings returns its summary without work.

    Arguments
    ---------
    manifest_path : str or Path
        A SpeechBrain JSON manifest (``wav`` and ``duration`` per utterance).
    encoder_source : str, Path or FrozenEncoder
        HF model id or local folder (or an already loaded encoder, whose layers and
        Whisper window are used).
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
    whisper_window : str
        Whisper encoders: ``exact`` or ``30s`` (see :mod:`~speechbrain_phonanchor.features.encoders`).
    loader_workers : int
        Processes that read audio ahead of the encoder (0: read in this process, no overlap).

    Returns
    -------
    dict
        ``utterances``, ``extracted``, ``skipped`` (reason → count), ``resampled``,
        ``downmixed``, ``frames``, ``audio_seconds``.
    """
    encoder = load_encoder(encoder_source, layer=layer, device=device, whisper_window=whisper_window)
    init_store(manifest_path, encoder, out_dir, data_root, batch_seconds)
    _, shard = _extract_shard(manifest_path, encoder, out_dir, data_root, batch_seconds, 0, 1, progress,
                              loader_workers)
    summary = _finalize(manifest_path, out_dir, live=shard)
    logger.info("feature store %s: %s", out_dir, summary)
    return summary
