"""Segments of an utterance's frames: vowel-centred windows, or fixed chunks when unaligned.

Frame ``k`` covers ``[k / frame_rate, (k + 1) / frame_rate)`` seconds and its centre is
``(k + 0.5) / frame_rate``.  A vowel-centred window takes the frames whose centres lie
in ``[c - half_width, c + half_width)``, where ``c`` is the middle of the vowel's
interval; at 50 frames/s and ±120 ms that is 12 frames.

**Edges**: windows are *clipped* to ``[0, n_frames)``, not shifted, so a vowel near the
start or end of an utterance gets fewer frames (its pooled vector is the mean of the
frames that exist).  A vowel whose window falls entirely outside the utterance (an
alignment longer than the audio) gives no segment.

For utterances without an alignment, :func:`chunk_segments` cuts the frames into
consecutive windows of ``width`` seconds (240 ms = 12 frames); the last chunk keeps
whatever frames remain.  Both return :class:`Segment` lists that :func:`pool_segments`
averages.

Example
-------
>>> vowels = [{"vowel": "a", "kind": "mono", "start": 0.50, "end": 0.60},
...           {"vowel": "i", "kind": "mono", "start": 0.00, "end": 0.04}]
>>> [(s.vowel, s.start, s.end, s.center) for s in vowel_segments(vowels, n_frames=100)]
[('a', 21, 33, 27), ('i', 0, 7, 1)]
>>> [(s.start, s.end) for s in chunk_segments(30)]
[(0, 12), (12, 24), (24, 30)]
>>> import numpy
>>> pool_segments(numpy.ones((30, 4), dtype=numpy.float16), chunk_segments(30)).shape
(3, 4)
"""

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

FRAME_RATE = 50.0
HALF_WIDTH = 0.12
CHUNK_WIDTH = 0.24


@dataclass(frozen=True)
class Segment:
    """A window of frames: ``start`` inclusive, ``end`` exclusive, ``center`` the frame holding its middle.

    ``vowel`` and ``kind`` (``"mono"``/``"diph"``) are None for fixed chunks.
    """

    vowel: Optional[str]
    kind: Optional[str]
    start: int
    end: int
    center: int

    def __len__(self):
        return self.end - self.start


def _first_frame_from(seconds, frame_rate):
    """Index of the first frame whose centre is at or after ``seconds``."""
    # Rounding to the microsecond keeps 0.1 * 50 from landing a hair above or below an integer.
    return math.ceil(round(seconds * frame_rate - 0.5, 6))


def vowel_segments(vowels, n_frames, frame_rate=FRAME_RATE, half_width=HALF_WIDTH):
    """Windows of ±``half_width`` seconds around each vowel's centre, clipped at the utterance edges.

    Arguments
    ---------
    vowels : list of dict
        Manifest ``vowels`` entries (``vowel``, ``kind``, ``start``, ``end`` in seconds).
    n_frames : int
        Frames in the utterance.
    frame_rate : float
        Frames per second (50.0 for the supported encoders).
    half_width : float
        Half the window, in seconds.

    Returns
    -------
    list of Segment
        In the order of ``vowels``; vowels whose window is empty after clipping are left out.

    Example
    -------
    >>> vowel_segments([{"vowel": "u", "kind": "mono", "start": 1.9, "end": 2.1}], n_frames=100)
    [Segment(vowel='u', kind='mono', start=94, end=100, center=99)]
    """
    segments = []
    for vowel in vowels:
        middle = (float(vowel["start"]) + float(vowel["end"])) / 2
        start = max(0, _first_frame_from(middle - half_width, frame_rate))
        end = min(n_frames, _first_frame_from(middle + half_width, frame_rate))
        if end <= start:
            continue
        center = min(max(int(math.floor(middle * frame_rate)), start), end - 1)
        segments.append(Segment(vowel.get("vowel"), vowel.get("kind"), start, end, center))
    return segments


def chunk_segments(n_frames, frame_rate=FRAME_RATE, width=CHUNK_WIDTH):
    """Consecutive fixed windows of ``width`` seconds covering all frames (last one may be shorter).

    Example
    -------
    >>> chunk_segments(5)
    [Segment(vowel=None, kind=None, start=0, end=5, center=2)]
    """
    size = max(1, round(width * frame_rate))
    return [Segment(None, None, start, min(start + size, n_frames), (start + min(start + size, n_frames)) // 2)
            for start in range(0, n_frames, size)]


def pool_segments(frames, segments):
    """Mean frame of each segment.

    Arguments
    ---------
    frames : array-like
        (n_frames, dim) features of one utterance (e.g. a float16 store view).
    segments : list of Segment

    Returns
    -------
    np.ndarray
        (len(segments), dim) float32.

    Example
    -------
    >>> frames = np.arange(8, dtype=np.float16).reshape(4, 2)
    >>> pool_segments(frames, [Segment(None, None, 1, 3, 2)])
    array([[3., 4.]], dtype=float32)
    """
    frames = np.asarray(frames)
    if not segments:
        return np.zeros((0, frames.shape[1]), dtype=np.float32)
    cumulative = np.concatenate([np.zeros((1, frames.shape[1])), np.cumsum(frames, axis=0, dtype=np.float64)])
    starts = np.array([segment.start for segment in segments])
    ends = np.array([segment.end for segment in segments])
    if starts.min() < 0 or ends.max() > len(frames) or (ends <= starts).any():
        raise ValueError(f"segments must lie within the {len(frames)} frames and be non-empty")
    return ((cumulative[ends] - cumulative[starts]) / (ends - starts)[:, None]).astype(np.float32)
