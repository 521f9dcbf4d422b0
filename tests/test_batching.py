"""Length-bucketed batches of the paired train set."""

import random

import pytest

from speechbrain_phonanchor.data import LengthBucketBatchSampler


def padded_frames(batches, lengths):
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def test_every_item_once_per_epoch_and_batches_sorted_within_pools():
    lengths = [random.Random(i).randint(20, 300) for i in range(931)]
    sampler = LengthBucketBatchSampler(lengths, batch_size=64, seed=3, pool_batches=8)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 15
    assert sorted(i for batch in batches for i in batch) == list(range(931))
    assert all(len(batch) == 64 for batch in batches[:-1] if len(batch) != 931 % 64)
    shuffled = list(range(931))
    random.Random(0).shuffle(shuffled)
    plain = [shuffled[i:i + 64] for i in range(0, 931, 64)]
    assert padded_frames(batches, lengths) < 0.8 * padded_frames(plain, lengths)


def test_epochs_differ_and_repeat_for_the_same_seed():
    lengths = list(range(200))
    sampler = LengthBucketBatchSampler(lengths, batch_size=16, seed=1)
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(2)
    second = list(sampler)
    assert first != second
    sampler.set_epoch(1)
    assert list(sampler) == first
    other_seed = LengthBucketBatchSampler(lengths, batch_size=16, seed=2)
    other_seed.set_epoch(1)
    assert list(other_seed) != first


def test_one_batch_pools_are_a_plain_shuffle_and_bad_sizes_refused():
    sampler = LengthBucketBatchSampler([5, 4, 3, 2, 1], batch_size=1, seed=0, pool_batches=1)
    assert sorted(b[0] for b in sampler) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketBatchSampler([1], batch_size=0)
