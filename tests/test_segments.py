"""Vowel-centred windows, fixed chunks and pooling: the frame arithmetic, edges included."""

import numpy as np
import pytest

from speechbrain_phonanchor.features.segments import Segment, chunk_segments, pool_segments, vowel_segments


def vowel(start, end, symbol="a", kind="mono"):
    return {"phone": "AA1", "ipa": symbol, "vowel": symbol, "kind": kind, "start": start, "end": end}


@pytest.mark.parametrize("centre", [0.5, 0.51, 0.537, 1.0, 1.2345, 2.99])
def test_interior_window_has_12_frames_around_the_centre(centre):
    (segment,) = vowel_segments([vowel(centre - 0.03, centre + 0.03)], n_frames=500)
    assert len(segment) == 12
    # frame centres lie in [centre - 120 ms, centre + 120 ms); the neighbours on both sides do not
    centres = (np.arange(segment.start - 1, segment.end + 1) + 0.5) / 50
    inside = (centres >= centre - 0.12 - 1e-9) & (centres < centre + 0.12 - 1e-9)
    assert inside.tolist() == [False] + [True] * 12 + [False]
    assert segment.start <= segment.center < segment.end
    assert segment.center == int(centre * 50)


def test_windows_are_clipped_at_both_edges():
    first, last = vowel_segments([vowel(0.0, 0.06), vowel(1.94, 2.0)], n_frames=100)
    assert (first.start, first.end, first.center) == (0, 7, 1)  # centre 30 ms: frames up to 150 ms
    assert (last.start, last.end, last.center) == (92, 100, 98)  # centre 1.97 s: frames from 1.85 s
    assert (len(first), len(last)) == (7, 8)


def test_window_beyond_the_audio_is_dropped_and_order_is_kept():
    vowels = [vowel(0.4, 0.5, "i"), vowel(5.0, 5.1, "u"), vowel(0.9, 1.1, "aɪ", "diph")]
    segments = vowel_segments(vowels, n_frames=60)  # 1.2 s of frames; the "u" lies after the end
    assert [(s.vowel, s.kind) for s in segments] == [("i", "mono"), ("aɪ", "diph")]
    # a vowel just past the end still reaches back into the audio: clipped, not dropped
    (tail,) = vowel_segments([vowel(1.22, 1.26)], n_frames=60)
    assert (tail.start, tail.end, tail.center) == (56, 60, 59)


def test_half_width_and_frame_rate_are_configurable():
    (wide,) = vowel_segments([vowel(1.0, 1.0)], n_frames=500, half_width=0.2)
    assert len(wide) == 20
    (fast,) = vowel_segments([vowel(1.0, 1.0)], n_frames=500, frame_rate=100.0)
    assert len(fast) == 24 and fast.center == 100


def test_chunks_cover_every_frame_once():
    chunks = chunk_segments(50)
    assert [(c.start, c.end) for c in chunks] == [(0, 12), (12, 24), (24, 36), (36, 48), (48, 50)]
    assert all(c.vowel is None and c.kind is None for c in chunks)
    assert chunk_segments(0) == []
    assert [(c.start, c.end) for c in chunk_segments(10, width=0.1)] == [(0, 5), (5, 10)]


def test_pooling_is_the_mean_of_each_window():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((40, 6)).astype(np.float16)
    segments = vowel_segments([vowel(0.0, 0.02), vowel(0.4, 0.42)], n_frames=40) + chunk_segments(40)
    pooled = pool_segments(frames, segments)
    assert pooled.dtype == np.float32 and pooled.shape == (len(segments), 6)
    for row, segment in zip(pooled, segments):
        np.testing.assert_allclose(row, frames[segment.start : segment.end].astype(np.float64).mean(0), rtol=1e-5,
                                   atol=1e-6)
    assert pool_segments(frames, []).shape == (0, 6)


def test_pooling_refuses_windows_outside_the_frames():
    frames = np.zeros((10, 2), dtype=np.float16)
    with pytest.raises(ValueError, match="within the 10 frames"):
        pool_segments(frames, [Segment("a", "mono", 5, 11, 8)])
    with pytest.raises(ValueError):
        pool_segments(frames, [Segment("a", "mono", 5, 5, 5)])
