"""The feature store: round trip, skips, identity checks, integrity, resume after a crash, sharding, CLI."""

import contextlib
import json
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_phonanchor.features import cli
from speechbrain_phonanchor.features import store as store_module
from speechbrain_phonanchor.features import writer as writer_module
from speechbrain_phonanchor.features.encoders import FrozenEncoder, make_tiny_encoder
from speechbrain_phonanchor.features.store import (
    BUILD_DIR,
    FRAMES_NAME,
    INDEX_NAME,
    JOURNAL_NAME,
    FeatureStore,
    StoreError,
    build_store,
    extract_shard,
    finalize_store,
    init_store,
    plan_batches,
    write_store,
)

SR = 16000
DURATIONS = [1.0, 2.5, 0.6, 1.7, 3.2, 0.9, 2.0, 1.2]


def write_corpus(folder, durations=DURATIONS, extra=None):
    """Noise utterances of the given lengths (the second one 44.1 kHz stereo) and a {data_root} manifest."""
    rng = np.random.default_rng(0)
    manifest = {}
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    for i, seconds in enumerate(durations):
        name = f"utt{i:02d}"
        if i == 1:
            stereo = 0.1 * rng.standard_normal((int(seconds * 44100), 2))
            soundfile.write(folder / "wavs" / f"{name}.wav", stereo, 44100)
        else:
            soundfile.write(folder / "wavs" / f"{name}.flac", 0.1 * rng.standard_normal(int(seconds * SR)), SR)
        suffix = "wav" if i == 1 else "flac"
        manifest[name] = {"wav": f"{{data_root}}/wavs/{name}.{suffix}", "duration": seconds, "emo": "neu",
                          "vowels": []}
    manifest.update(extra or {})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("enc") / "w2v2", "wav2vec2")


@pytest.fixture(scope="module")
def encoder(encoder_folder):
    return FrozenEncoder(encoder_folder)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return write_corpus(folder), folder


@pytest.fixture(scope="module")
def reference(corpus, encoder, tmp_path_factory):
    """An uninterrupted build, the reference for byte identity."""
    manifest, root = corpus
    out = tmp_path_factory.mktemp("ref") / "store"
    summary = build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False)
    return out, summary


def store_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def test_round_trip(corpus, encoder, reference):
    manifest, root = corpus
    out, summary = reference
    assert summary["extracted"] == len(DURATIONS) and summary["skipped"] == {}
    assert summary["resampled"] == 1 and summary["downmixed"] == 1
    store = FeatureStore.open(out)
    assert store.utterance_ids == [f"utt{i:02d}" for i in range(len(DURATIONS))]
    assert len(store) == len(DURATIONS) and "utt03" in store and "nope" not in store
    assert store.dim == 16 and store.frame_rate == 50.0
    assert store.config["layers"] == [-1] and store.config["dtype"] == "float16"
    for i, seconds in enumerate(DURATIONS):
        frames = store[f"utt{i:02d}"]
        assert frames.dtype == np.float16 and frames.shape == (encoder.n_frames(round(seconds * SR)), 16)
    wav, _ = soundfile.read(root / "wavs" / "utt04.flac", dtype="float32")
    expected = encoder.encode_list([torch.from_numpy(wav)])[0].to(torch.float16).numpy()
    np.testing.assert_array_equal(store["utt04"], expected)
    with pytest.raises(ValueError):
        store["utt04"][0, 0] = 1.0  # a read-only array
    assert not (out / BUILD_DIR).exists()
    assert FeatureStore.open(out, verify=True).summary == summary


def test_reads_are_fresh_arrays_not_a_resident_map(reference):
    out, _ = reference
    store = FeatureStore.open(out)
    frames = store["utt04"]
    assert not isinstance(frames, np.memmap) and not isinstance(frames.base, np.memmap)
    assert frames.flags.owndata or isinstance(frames.base, np.ndarray) and frames.base.flags.owndata
    offset, n_frames = store.index["utterances"]["utt04"]
    assert isinstance(store.frames, np.memmap) and store.frames.shape == (store.index["rows"], 16)
    np.testing.assert_array_equal(store.frames[offset : offset + n_frames], frames)
    np.testing.assert_array_equal(store.layer_frames("utt04", -1), frames)
    copy = pickle.loads(pickle.dumps(store))  # e.g. a spawned DataLoader worker
    np.testing.assert_array_equal(copy["utt04"], frames)
    store.close()
    np.testing.assert_array_equal(store["utt04"], frames)  # reopens on demand


def test_write_store_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = {f"u{i}": rng.standard_normal((3 + i, 8)).astype(np.float32) for i in range(4)}
    config = {"encoder": "synthetic", "layers": [-1], "dim": 8, "frame_rate": 50.0}
    store = write_store(iter(frames.items()), tmp_path / "s", config, skipped={"bad": "silent_audio"})
    reopened = FeatureStore.open(tmp_path / "s", verify=True, expect={"encoder": "synthetic", "layer": -1})
    assert reopened.utterance_ids == list(frames) == store.utterance_ids and reopened.dim == 8
    for utt, value in frames.items():
        np.testing.assert_array_equal(reopened[utt], value.astype(np.float16))
    assert reopened.skipped == {"bad": "silent_audio"}
    assert reopened.summary["extracted"] == 4 and reopened.summary["skipped"] == {"silent_audio": 1}
    assert reopened.summary["frames"] == reopened.index["rows"] == sum(len(v) for v in frames.values())
    with pytest.raises(StoreError, match="not empty"):
        write_store(frames, tmp_path / "s", config)
    with pytest.raises(StoreError, match="shape"):
        write_store({"x": np.zeros((2, 7))}, tmp_path / "t", config)
    assert not (tmp_path / "t" / FRAMES_NAME).exists() and not (tmp_path / "t" / INDEX_NAME).exists()
    with pytest.raises(StoreError, match="lacks dim"):
        write_store({}, tmp_path / "u", {"encoder": "e", "layers": [-1], "frame_rate": 50.0})


def test_rebuilding_a_finished_store_is_a_no_op(corpus, encoder, reference):
    manifest, root = corpus
    out, summary = reference
    before = store_bytes(out)
    assert build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False) == summary
    assert store_bytes(out) == before


def test_bad_audio_is_skipped_with_reasons(tmp_path, encoder):
    (tmp_path / "wavs").mkdir()
    soundfile.write(tmp_path / "wavs" / "silent.wav", np.zeros(SR), SR)
    soundfile.write(tmp_path / "wavs" / "short.wav", 0.1 * np.ones(200), SR)
    (tmp_path / "wavs" / "corrupt.wav").write_bytes(b"RIFF" + os.urandom(100))
    extra = {name: {"wav": f"{{data_root}}/wavs/{name}.wav", "duration": 1.0}
             for name in ("silent", "short", "corrupt", "missing")}
    manifest = write_corpus(tmp_path, [1.0, 1.2], extra)
    summary = build_store(manifest, encoder, tmp_path / "store", data_root=tmp_path, progress=False)
    assert summary["extracted"] == 2
    assert summary["skipped"] == {"missing_audio": 1, "silent_audio": 1, "too_short_audio": 1,
                                  "unreadable_audio": 1}
    store = FeatureStore.open(tmp_path / "store")
    assert store.skipped["short"] == "too_short_audio" and "silent" not in store
    with pytest.raises(KeyError, match="silent_audio"):
        store["silent"]


def test_other_settings_are_refused(corpus, encoder_folder, reference, tmp_path):
    manifest, root = corpus
    out, _ = reference
    with pytest.raises(StoreError, match="layers: store has \\[-1\\], requested \\[1\\]"):
        build_store(manifest, encoder_folder, out, layer=1, data_root=root, progress=False)
    other = make_tiny_encoder(tmp_path / "hubert", "hubert")
    with pytest.raises(StoreError, match="encoder: store has"):
        build_store(manifest, other, out, data_root=root, progress=False)
    smaller = json.loads(manifest.read_text())
    smaller.pop("utt00")
    (tmp_path / "m.json").write_text(json.dumps(smaller))
    with pytest.raises(StoreError, match="manifest_sha256"):
        build_store(tmp_path / "m.json", encoder_folder, out, data_root=root, progress=False)
    with pytest.raises(StoreError, match="layers"):
        FeatureStore.open(out, expect={"layer": 1})
    assert FeatureStore.open(out, expect={"layer": -1, "encoder": str(encoder_folder)}).dim == 16
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        build_store(manifest, encoder_folder, tmp_path / "junk", data_root=root, progress=False)


def test_damaged_stores_are_detected_on_open(reference, tmp_path):
    out, _ = reference
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, data in store_bytes(out).items():
        (copy / name).write_bytes(data)
    frames = bytearray((copy / FRAMES_NAME).read_bytes())
    frames[100] ^= 0xFF
    (copy / FRAMES_NAME).write_bytes(frames)
    FeatureStore.open(copy)  # same size: only the checksum sees it
    with pytest.raises(StoreError, match="checksum"):
        FeatureStore.open(copy, verify=True)
    (copy / FRAMES_NAME).write_bytes(frames[:-64])
    with pytest.raises(StoreError, match="truncated"):
        FeatureStore.open(copy)
    (copy / INDEX_NAME).unlink()
    with pytest.raises(StoreError, match="incomplete"):
        FeatureStore.open(copy)
    with pytest.raises(StoreError, match="not a feature store"):
        FeatureStore.open(tmp_path)


def test_torn_write_then_resume_is_byte_identical(corpus, encoder, reference, tmp_path, monkeypatch):
    manifest, root = corpus
    out = tmp_path / "store"
    real_append, calls = writer_module._Shard.append, []

    def crash_after_two(self, entry, frames):
        if len(calls) == 2:
            # Half of the third batch reaches the disk, then the process dies.
            with open(self.frames_path, "ab") as handle:
                handle.write(frames.tobytes()[: frames.nbytes // 2])
            with open(self.journal_path, "ab") as handle:
                handle.write(b'{"batch": 2, "utter')
            raise KeyboardInterrupt
        calls.append(entry["batch"])
        real_append(self, entry, frames)

    monkeypatch.setattr(writer_module._Shard, "append", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False)
    monkeypatch.setattr(writer_module._Shard, "append", real_append)
    with pytest.raises(StoreError, match="incomplete"):
        FeatureStore.open(out)
    # As after a power loss: the second committed batch's frames never reached the disk intact.
    shard = out / BUILD_DIR / "rank-00000"
    second = json.loads((shard / JOURNAL_NAME).read_bytes().splitlines()[1])
    frames = bytearray((shard / FRAMES_NAME).read_bytes())
    frames[second["offset"] * 32 + 7] ^= 0x55
    (shard / FRAMES_NAME).write_bytes(frames)
    build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False)
    assert store_bytes(out) == store_bytes(reference[0])


def kill_tree(pid):
    """SIGKILL a process and its children (torchrun starts its workers in sessions of their own); return their pids."""
    children = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    killed = [pid]
    for child in children:
        killed += kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return killed


def wait_until_dead(pids, timeout=30.0):
    """Wait until every pid has exited with all its threads (gone, or a zombie with no thread left): only then
    are its files closed and its locks released (a zombie leader may still have a thread finishing I/O)."""
    deadline = time.time() + timeout
    for pid in pids:
        while time.time() < deadline:
            try:
                state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                threads = len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                break
            if state in ("Z", "X") and threads <= 1:
                break
            time.sleep(0.01)


@pytest.fixture
def one_thread():
    """Run torch in this process on one thread, like the ranks started with OMP_NUM_THREADS=1:
    byte-identical stores need identical arithmetic, and summation order changes with the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_kill_9_under_torchrun_then_resume_is_byte_identical(encoder_folder, tmp_path, one_thread):
    """Two CPU ranks (gloo) are killed with SIGKILL mid-build; one process resumes; bytes equal a clean build."""
    root = tmp_path / "corpus"
    manifest = write_corpus(root, [0.6 + 0.05 * i for i in range(60)])
    reference = tmp_path / "reference"
    build_store(manifest, encoder_folder, reference, data_root=root, batch_seconds=0.5, progress=False)
    out = tmp_path / "store"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "speechbrain_phonanchor.features.cli", str(manifest), "--encoder", encoder_folder,
               "--out", str(out), "--data-root", str(root), "--batch-seconds", "0.5", "--no-progress"]
    proc = subprocess.Popen(command, env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        journals = list((out / BUILD_DIR).glob(f"rank-*/{JOURNAL_NAME}"))
        if len(journals) == 2 and sum(path.read_bytes().count(b"\n") for path in journals) >= 4:
            break
        time.sleep(0.002)
    killed = kill_tree(proc.pid)
    proc.wait()
    wait_until_dead(killed)  # a SIGKILLed worker may still hold its shard's lock for a moment
    assert not (out / INDEX_NAME).exists(), "the build finished before it could be killed"
    assert len(list((out / BUILD_DIR).glob("rank-*"))) == 2, proc.stderr.read()[-2000:]
    summary = build_store(manifest, encoder_folder, out, data_root=root, batch_seconds=0.5, progress=False)
    assert summary["extracted"] == 60
    assert store_bytes(out) == store_bytes(reference)


def test_a_second_writer_is_refused(corpus, encoder, tmp_path):
    manifest, root = corpus
    out = tmp_path / "store"
    init_store(manifest, encoder, out, root, batch_seconds=3.0)
    with writer_module._writer_lock(out / BUILD_DIR / "rank-00000"):
        with pytest.raises(StoreError, match="another process is extracting"):
            build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False)
    assert build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False)["extracted"] == 8


def test_shards_merge_into_the_single_process_store(corpus, encoder, reference, tmp_path):
    manifest, root = corpus
    out = tmp_path / "store"
    init_store(manifest, encoder, out, root, batch_seconds=3.0)
    for rank in (1, 0):
        extract_shard(manifest, encoder, out, data_root=root, batch_seconds=3.0, rank=rank, world_size=2,
                      progress=False)
        if rank == 1:
            with pytest.raises(StoreError, match="rerun the extraction"):
                finalize_store(manifest, out)
    finalize_store(manifest, out)
    assert store_bytes(out) == store_bytes(reference[0])


def test_non_finite_features_name_the_utterance(corpus, encoder_folder, tmp_path, monkeypatch):
    manifest, root = corpus
    encoder = FrozenEncoder(encoder_folder)
    real = encoder.encode_list

    def poisoned(wavs):
        frames = real(wavs)
        frames[0][3, 5] = float("inf") if len(wavs[0]) == int(3.2 * SR) else frames[0][3, 5]
        return frames

    monkeypatch.setattr(encoder, "encode_list", poisoned)
    with pytest.raises(StoreError, match="non-finite features .* 'utt04'"):
        build_store(manifest, encoder, tmp_path / "store", data_root=root, batch_seconds=3.0, progress=False)


def test_batches_are_planned_by_length():
    durations = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0, "e": 2.0}
    plan = plan_batches(durations, batch_seconds=4.0)
    assert plan == [["b"], ["c", "e"], ["a", "d"]]
    padded_cost = FrozenEncoder.cost_seconds.__get__(type("W", (), {"whisper_window": "30s"})())
    assert plan_batches(durations, batch_seconds=60.0, cost=padded_cost) == [["b", "c"], ["e", "a"], ["d"]]
    exact_cost = FrozenEncoder.cost_seconds.__get__(type("W", (), {"whisper_window": "exact"})())
    assert plan_batches(durations, batch_seconds=4.0, cost=exact_cost) == plan


def test_cli(corpus, encoder_folder, reference, tmp_path, capsys):
    manifest, root = corpus
    out = tmp_path / "store"
    argv = [str(manifest), "--encoder", encoder_folder, "--layer", "-1", "--out", str(out), "--data-root", str(root),
            "--batch-seconds", "3", "--no-progress"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["extracted"] == len(DURATIONS)
    assert store_bytes(out) == store_bytes(reference[0])
    assert cli.main(argv[:4] + ["2"] + argv[5:]) == 1  # another layer: refused, exit status 1
    assert cli.main([str(tmp_path / "none.json"), "--out", str(tmp_path / "x"), "--encoder", encoder_folder]) == 1


def test_loader_workers_do_not_change_the_bytes(corpus, encoder, reference, tmp_path):
    """Audio read in 0, 1 or 2 loader processes: the same store, byte for byte, batches in plan order."""
    manifest, root = corpus
    for workers in (0, 2):
        out = tmp_path / f"store{workers}"
        build_store(manifest, encoder, out, data_root=root, batch_seconds=3.0, progress=False, loader_workers=workers)
        assert store_bytes(out) == store_bytes(reference[0])


@pytest.fixture(scope="module")
def whisper_folder(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("enc") / "whisper", "whisper")


def test_whisper_window_is_part_of_the_identity(corpus, whisper_folder, tmp_path):
    manifest, root = corpus
    out = tmp_path / "store"
    build_store(manifest, whisper_folder, out, data_root=root, progress=False, whisper_window="exact")
    store = FeatureStore.open(out)
    assert store.config["whisper_window"] == "exact"
    for i, seconds in enumerate(DURATIONS):  # one frame per 20 ms of audio
        assert store[f"utt{i:02d}"].shape[0] == int(np.ceil(round(seconds * SR) / 320))
    with pytest.raises(StoreError, match="whisper_window: store has 'exact', requested '30s'"):
        build_store(manifest, whisper_folder, out, data_root=root, progress=False, whisper_window="30s")
    with pytest.raises(StoreError, match="whisper_window"):
        FeatureStore.open(out, expect={"whisper_window": "30s"})
    assert cli.main([str(manifest), "--encoder", whisper_folder, "--out", str(out), "--data-root", str(root),
                     "--whisper-window", "30s", "--no-progress"]) == 1


def test_stores_without_a_recorded_window_count_as_30s(corpus, whisper_folder, tmp_path):
    """Whisper stores written before the window was recorded are the padded kind, and are still accepted."""
    manifest, root = corpus
    out = tmp_path / "store"
    build_store(manifest, whisper_folder, out, data_root=root, progress=False, whisper_window="30s")
    config = json.loads((out / "config.json").read_text())
    del config["whisper_window"]
    (out / "config.json").write_text(json.dumps(config))
    index = json.loads((out / INDEX_NAME).read_text())
    index["config_sha256"] = store_module._config_sha256(config)
    (out / INDEX_NAME).write_text(json.dumps(index))
    assert build_store(manifest, whisper_folder, out, data_root=root, progress=False,
                       whisper_window="30s")["extracted"] == len(DURATIONS)
    with pytest.raises(StoreError, match="store has '30s', requested 'exact'"):
        build_store(manifest, whisper_folder, out, data_root=root, progress=False, whisper_window="exact")
