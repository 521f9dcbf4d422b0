"""Store-backed datasets and batches for training: tasks, utterances, source/target pairs.

- :class:`Task` / :func:`get_task`: the label of an utterance for a task
  (``4class``; ``binary_<emotion>`` one-vs-rest; ``arousal`` / ``valence`` in
  three levels read from the manifest's ``aro`` / ``val``) and the task's anchor
  vowels per class.
- :class:`UtteranceDataset`: one utterance = its feature-store frames (float32),
  its vowel-centred segments (fixed 240 ms chunks when it has no vowels), their
  vowel ids and the class index (``-1`` when unlabelled).  Frames are read from
  the store (read by offset) when an item is taken, so memory does not grow with
  the corpus.
- :class:`PairedDataset`: labelled source utterance *i* with unlabelled target
  utterance ``(i + offset) % n_target``; ``set_epoch`` draws a new offset (seeded)
  so partners change every epoch; its length is the larger of the two sets.
- :func:`collate_utterances` / :func:`collate_pairs`: padded :class:`SegmentBatch`
  / :class:`PairedBatch` (frames (B, T, D), relative lengths, segments (B, S, 2),
  vowel ids (B, S) padded with ``PAD_ID``, mask (B, S), labels (B,)).

Example
-------
>>> import numpy as np
>>> store = {"u1": np.ones((30, 4), np.float16), "u2": np.ones((20, 4), np.float16)}
>>> manifest = {"u1": {"emo": "hap", "vowels": [{"vowel": "a", "kind": "mono", "start": 0.2, "end": 0.3}]},
...             "u2": {"emo": "sad", "vowels": []}}
>>> data = UtteranceDataset(manifest, store, get_task("4class"))
>>> batch = collate_utterances([data[0], data[1]])
>>> batch.frames.shape, batch.segments.shape, batch.vowels.tolist(), batch.labels.tolist()
(torch.Size([2, 30, 4]), torch.Size([2, 2, 2]), [[3, -1], [10, 10]], [1, 3])
"""

import collections
import random
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from speechbrain_phonanchor.features.segments import CHUNK_WIDTH, HALF_WIDTH, chunk_segments, vowel_segments
from speechbrain_phonanchor.model.vowel_ids import PAD_ID, vowel_id

EMOTIONS = ("neu", "hap", "ang", "sad")
LEVELS = ("low", "mid", "high")
REST = "other"


@dataclass(frozen=True)
class Task:
    """A classification task: which manifest key it reads and its classes in index order.

    ``positive`` is set for one-vs-rest tasks: the emotion that is class 1,
    every other of the four emotions being class 0 (``"other"``).
    """

    name: str
    key: str
    classes: tuple
    positive: Optional[str] = None

    def label(self, entry):
        """The class label of a manifest entry for this task, or None when it has none."""
        value = entry.get(self.key)
        if self.positive is not None:
            return None if value not in EMOTIONS else (value if value == self.positive else REST)
        return value if value in self.classes else None

    def anchors(self, emotion_anchors):
        """Anchor vowels per class of this task, from the per-emotion anchors of ``anchors.yaml``.

        - ``4class``: the emotions' own lists;
        - ``binary_<e>``: ``e`` keeps its list, ``"other"`` gets the union of the other emotions' vowels;
        - ``arousal`` / ``valence``: the file's lists for ``low``/``mid``/``high`` if it has them,
          otherwise every level gets the union of all emotions' anchor vowels.

        Example
        -------
        >>> get_task("binary_hap").anchors({"hap": ["a"], "sad": ["u", "i"], "neu": ["i"]})
        {'other': ['i', 'u'], 'hap': ['a']}
        """
        def union(labels):
            return list(dict.fromkeys(v for label in labels for v in emotion_anchors.get(label, ())))

        if self.positive is not None:
            return {REST: union(e for e in EMOTIONS if e != self.positive),
                    self.positive: list(emotion_anchors.get(self.positive, ()))}
        if self.key == "emo" or all(c in emotion_anchors for c in self.classes):
            return {c: list(emotion_anchors.get(c, ())) for c in self.classes}
        every = union(emotion_anchors)
        return {c: list(every) for c in self.classes}


TASKS = {
    "4class": Task("4class", "emo", EMOTIONS),
    "arousal": Task("arousal", "aro", LEVELS),
    "valence": Task("valence", "val", LEVELS),
    **{f"binary_{e}": Task(f"binary_{e}", "emo", (REST, e), positive=e) for e in EMOTIONS},
}


def get_task(name):
    """Return the :class:`Task` called ``name`` (``4class``, ``binary_<neu|hap|ang|sad>``, ``arousal``, ``valence``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; use one of {', '.join(TASKS)}")
    return TASKS[name]


def n_task_classes(name):
    """Number of classes of task ``name`` (for the classifier size in yaml).

    >>> n_task_classes("binary_ang"), n_task_classes("arousal")
    (2, 3)
    """
    return len(get_task(name).classes)


def utterance_segments(entry, n_frames, frame_rate=50.0, half_width=HALF_WIDTH, chunk_width=CHUNK_WIDTH):
    """``(start, end, vowel_id)`` frame ranges of one utterance: its vowels, or fixed chunks without any."""
    segments = vowel_segments(entry.get("vowels") or [], n_frames, frame_rate, half_width)
    if not segments:
        segments = chunk_segments(n_frames, frame_rate, chunk_width)
    return [(s.start, s.end, vowel_id(s.vowel)) for s in segments]


class UtteranceDataset(torch.utils.data.Dataset):
    """Utterances of a manifest that the feature store holds, with segments and labels.

    Arguments
    ---------
    manifest : dict
        Utterance id → manifest entry.
    store : FeatureStore or Mapping
        Utterance id → (T, D) frames.
    task : Task
        The task whose labels are read.
    labelled : bool
        Read labels and keep only utterances that have one.  With False no
        label is read (``-1`` for all): the unlabelled target training set.
    frame_rate, half_width, chunk_width : float
        Segmentation settings (see :mod:`speechbrain_phonanchor.features.segments`).

    Attributes
    ----------
    skipped : collections.Counter
        ``not_in_store`` / ``no_label`` counts of manifest utterances left out.
    """

    def __init__(self, manifest, store, task, labelled=True, frame_rate=50.0, half_width=HALF_WIDTH,
                 chunk_width=CHUNK_WIDTH):
        self.store = store
        self.task = task
        self.skipped = collections.Counter()
        self.ids, self.labels, self.segments, self.n_frames = [], [], [], []
        for utt_id, entry in manifest.items():
            if utt_id not in store:
                self.skipped["not_in_store"] += 1
                continue
            label = task.label(entry) if labelled else None
            if labelled and label is None:
                self.skipped["no_label"] += 1
                continue
            self.ids.append(utt_id)
            self.labels.append(-1 if label is None else task.classes.index(label))
            n_frames = len(store[utt_id])
            self.n_frames.append(n_frames)
            self.segments.append(utterance_segments(entry, n_frames, frame_rate, half_width, chunk_width))

    def __len__(self):
        return len(self.ids)

    def frames(self, index):
        """The stored frames of utterance ``index`` as a float32 array."""
        return np.asarray(self.store[self.ids[index]], dtype=np.float32)

    def __getitem__(self, index):
        segments = torch.tensor(self.segments[index], dtype=torch.long)
        return {
            "id": self.ids[index],
            "frames": torch.from_numpy(self.frames(index)),
            "segments": segments[:, :2],
            "vowels": segments[:, 2],
            "label": self.labels[index],
        }

    def prototype_source(self):
        """Yield ``(frames, segments)`` per utterance, as :meth:`VowelPrototypeBank.fit` reads them."""
        for index in range(len(self)):
            yield self.frames(index), self.segments[index]


@dataclass
class SegmentBatch:
    """A padded batch of utterances (see the module docstring for shapes)."""

    ids: list
    frames: torch.Tensor
    lengths: torch.Tensor
    segments: torch.Tensor
    vowels: torch.Tensor
    segment_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device):
        """Move every tensor to ``device``."""
        moved = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return SegmentBatch(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in moved.items()})


def collate_utterances(items):
    """Pad a list of :class:`UtteranceDataset` items into a :class:`SegmentBatch`."""
    n_frames = torch.tensor([len(item["frames"]) for item in items], dtype=torch.float)
    segment_counts = torch.tensor([len(item["vowels"]) for item in items])
    max_segments = int(segment_counts.max())
    return SegmentBatch(
        ids=[item["id"] for item in items],
        frames=pad_sequence([item["frames"] for item in items], batch_first=True),
        lengths=n_frames / n_frames.max(),
        segments=pad_sequence([item["segments"] for item in items], batch_first=True),
        vowels=pad_sequence([item["vowels"] for item in items], batch_first=True, padding_value=PAD_ID),
        segment_mask=torch.arange(max_segments).unsqueeze(0) < segment_counts.unsqueeze(1),
        labels=torch.tensor([item["label"] for item in items], dtype=torch.long),
    )


class PairedDataset(torch.utils.data.Dataset):
    """Each labelled source utterance with an unlabelled target partner (see the module docstring).

    Arguments
    ---------
    source, target : UtteranceDataset
    seed : int
        Seed of the per-epoch partner offset.
    """

    def __init__(self, source, target, seed=0):
        if not len(source) or not len(target):
            raise ValueError(f"cannot pair {len(source)} source with {len(target)} target utterances")
        self.source, self.target, self.seed = source, target, seed
        self.offset = 0

    def set_epoch(self, epoch):
        """Choose this epoch's partners (deterministic in ``seed`` and ``epoch``)."""
        self.offset = random.Random(f"{self.seed}-{epoch}").randrange(len(self.target))

    def __len__(self):
        return max(len(self.source), len(self.target))

    def __getitem__(self, index):
        return self.source[index % len(self.source)], self.target[(index + self.offset) % len(self.target)]

    def source_lengths(self):
        """Frame count of the source utterance of every item (what :class:`LengthBucketBatchSampler` sorts on)."""
        return [self.source.n_frames[index % len(self.source)] for index in range(len(self))]


class LengthBucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar length: less padding, the same randomness between pools.

    Every epoch the items are shuffled (seeded by ``seed`` and the epoch), cut into pools of
    ``pool_batches`` batches, each pool is sorted by length and cut into batches, and the batch
    order is shuffled.  With ``pool_batches=1`` this is a plain shuffle.

    Arguments
    ---------
    lengths : list of int
        Length of every item (e.g. :meth:`PairedDataset.source_lengths`).
    batch_size : int
        Items per batch (the last batch may be smaller).
    seed : int
        Seed of the shuffles; :meth:`set_epoch` varies them per epoch.
    pool_batches : int
        Batches per sorted pool.

    Example
    -------
    >>> sampler = LengthBucketBatchSampler([5, 1, 4, 2, 3, 6], batch_size=2, seed=0, pool_batches=3)
    >>> batches = list(sampler)
    >>> sorted(sorted(b) for b in batches)
    [[0, 5], [1, 3], [2, 4]]
    >>> len(sampler)
    3
    """

    def __init__(self, lengths, batch_size, seed=0, pool_batches=8):
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(f"batch_size and pool_batches must be >= 1, got {batch_size} and {pool_batches}")
        self.lengths, self.batch_size, self.seed, self.pool_batches = list(lengths), batch_size, seed, pool_batches
        self.epoch = 0

    def set_epoch(self, epoch):
        """Use the shuffles of ``epoch``."""
        self.epoch = epoch

    def __iter__(self):
        rng = random.Random(f"{self.seed}-{self.epoch}")
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        pool_size = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool_size):
            pool = sorted(order[start:start + pool_size], key=self.lengths.__getitem__)
            batches.extend(pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        rng.shuffle(batches)
        return iter(batches)

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)


@dataclass
class PairedBatch:
    """A batch of source utterances and their target partners, row by row."""

    source: SegmentBatch
    target: SegmentBatch

    def to(self, device):
        """Move both halves to ``device``."""
        return PairedBatch(self.source.to(device), self.target.to(device))


def collate_pairs(items):
    """Pad a list of :class:`PairedDataset` items into a :class:`PairedBatch`."""
    return PairedBatch(collate_utterances([s for s, _ in items]), collate_utterances([t for _, t in items]))
