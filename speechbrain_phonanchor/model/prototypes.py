"""The bank of target vowel prototypes that cross-phonetic attention attends to
when there is no paired target utterance (inference, validation, and the target
utterances themselves).

The bank holds up to ``per_vowel`` prototype vectors per vowel id (the ten
inventory vowels plus ``NONE_ID`` for the fixed chunks of unaligned
utterances), all in the *input* feature space: they are computed once, before
training, from the raw frames of the target training feature store, and never
trained.  They are registered buffers, so the checkpoint carries them and an
exported model attends to exactly the prototypes it was trained with.

- ``per_vowel=1`` (default): the prototype of vowel v is the mean of every
  target frame inside a segment of vowel v (exact, streamed, float64 sums).
- ``per_vowel=k>1``: k-means (scikit-learn, fixed ``seed``) over the frames of
  vowel v; when a vowel has more than ``max_frames`` frames a seeded uniform
  reservoir sample of ``max_frames`` frames is clustered.  A vowel with fewer
  frames than k gets one prototype per frame.

Vowels the target store never shows get no prototype (their slots stay
unfilled and are never attended to).

Example
-------
>>> import numpy as np
>>> bank = VowelPrototypeBank(input_size=2)
>>> frames = np.array([[0, 0], [2, 2], [4, 0], [9, 9]], dtype=np.float16)
>>> bank.fit([(frames, [(0, 2, 0), (2, 3, 10)])])   # frames 0-1 are vowel id 0 (i), frame 2 a chunk
>>> bank.prototypes[bank.filled].tolist()
[[1.0, 1.0], [4.0, 0.0]]
>>> bank.prototype_vowels[bank.filled].tolist()
[0, 10]
"""

import numpy as np
import torch
from torch import nn

from speechbrain_phonanchor.model.vowel_ids import N_VOWEL_IDS


class VowelPrototypeBank(nn.Module):
    """Fixed prototypes of the target's frames per vowel (see the module docstring).

    Arguments
    ---------
    input_size : int
        Dimension of the feature-store frames.
    per_vowel : int
        Prototypes per vowel id (1 = mean frame; more = k-means centroids).
    n_vowel_ids : int
        Number of vowel ids (inventory vowels + the chunk id).
    max_frames : int
        Frames per vowel kept for k-means (ignored when ``per_vowel`` is 1).
    seed : int
        Seed of the reservoir sample and of k-means.
    """

    def __init__(self, input_size, per_vowel=1, n_vowel_ids=N_VOWEL_IDS, max_frames=20000, seed=0):
        super().__init__()
        if per_vowel < 1:
            raise ValueError(f"per_vowel must be >= 1, got {per_vowel}")
        self.per_vowel = per_vowel
        self.n_vowel_ids = n_vowel_ids
        self.max_frames = max_frames
        self.seed = seed
        n_slots = n_vowel_ids * per_vowel
        self.register_buffer("prototypes", torch.zeros(n_slots, input_size))
        self.register_buffer("prototype_vowels", torch.arange(n_vowel_ids).repeat_interleave(per_vowel))
        self.register_buffer("filled", torch.zeros(n_slots, dtype=torch.bool))

    @property
    def is_fitted(self):
        """True once at least one prototype exists."""
        return bool(self.filled.any())

    def fit(self, utterances):
        """Compute the prototypes from target utterances.

        Arguments
        ---------
        utterances : iterable of (frames, segments)
            ``frames`` is a (T, D) array (float16 is fine); ``segments`` an
            iterable of ``(start, end, vowel_id)`` frame ranges, end exclusive.
        """
        dim = self.prototypes.shape[1]
        sums = np.zeros((self.n_vowel_ids, dim))
        counts = np.zeros(self.n_vowel_ids, dtype=np.int64)
        samples = [[] for _ in range(self.n_vowel_ids)]
        rng = np.random.default_rng(self.seed)
        for frames, segments in utterances:
            frames = np.asarray(frames)
            for start, end, vid in segments:
                chunk = frames[max(start, 0) : end].astype(np.float64)
                if self.per_vowel == 1:
                    sums[vid] += chunk.sum(axis=0)
                else:
                    self._reservoir_add(samples[vid], chunk, counts[vid], rng)
                counts[vid] += len(chunk)
        prototypes = torch.zeros_like(self.prototypes)
        filled = torch.zeros_like(self.filled)
        for vid in np.flatnonzero(counts):
            if self.per_vowel == 1:
                centres = sums[vid : vid + 1] / counts[vid]
            else:
                centres = self._kmeans(np.stack(samples[vid]))
            first = vid * self.per_vowel
            prototypes[first : first + len(centres)] = torch.as_tensor(centres, dtype=prototypes.dtype)
            filled[first : first + len(centres)] = True
        self.prototypes.copy_(prototypes)
        self.filled.copy_(filled)

    def _reservoir_add(self, sample, chunk, seen, rng):
        """Algorithm R: keep a uniform sample of at most ``max_frames`` of the frames seen so far."""
        for offset, frame in enumerate(chunk):
            index = seen + offset
            if len(sample) < self.max_frames:
                sample.append(frame)
            else:
                slot = rng.integers(0, index + 1)
                if slot < self.max_frames:
                    sample[slot] = frame

    def _kmeans(self, points):
        if len(points) <= self.per_vowel:
            return points
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=self.per_vowel, n_init=4, random_state=self.seed).fit(points)
        return km.cluster_centers_

    def forward(self):
        """Return the filled prototypes (P, D) and their vowel ids (P,)."""
        if not self.is_fitted:
            raise RuntimeError("the vowel prototype bank is empty: call fit() on the target training store first")
        return self.prototypes[self.filled], self.prototype_vowels[self.filled]
