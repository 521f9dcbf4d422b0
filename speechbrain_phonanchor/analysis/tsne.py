"""t-SNE of vowel segment features per emotion, both corpora in one panel (the paper's Fig. 3).

For each emotion, up to ``max_points`` segments per corpus are drawn (seeded),
reduced to at most 50 dimensions with PCA and embedded with scikit-learn's
t-SNE (PCA initialisation, fixed ``random_state``), so the figure is
reproducible.  Points are coloured by corpus; each vowel's centroid per corpus
is labelled.

Example
-------
>>> import tempfile, pathlib
>>> from speechbrain_phonanchor.analysis.commonality import SegmentSet
>>> rng = np.random.default_rng(0)
>>> a = SegmentSet(rng.normal(size=(40, 8)), ["neu"] * 40, ["i", "a"] * 20)
>>> b = SegmentSet(rng.normal(size=(40, 8)), ["neu"] * 40, ["i", "a"] * 20)
>>> plot_tsne({"pl": a, "it": b}, pathlib.Path(tempfile.mkdtemp()) / "t.png")
{'neu': 80}
"""

import itertools

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from speechbrain_phonanchor.analysis.formants import CORPUS_STYLES, save_figure
from speechbrain_phonanchor.phonetics import VOWELS


def embed(features, seed=0):
    """2-D t-SNE of ``features`` (PCA to ≤ 50 dims first), deterministic for a seed.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)``; fewer than 3 points are returned as zeros (nothing to embed).
    """
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 3:
        return np.zeros((len(features), 2))
    n_components = min(50, features.shape[1], len(features))
    reduced = PCA(n_components=n_components, random_state=seed).fit_transform(features)
    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)


def plot_tsne(segment_sets, path, emotions=None, max_points=300, seed=0):
    """Draw one t-SNE panel per emotion with every corpus in it, and save a PNG.

    Arguments
    ---------
    segment_sets : dict
        Corpus name → :class:`~speechbrain_phonanchor.analysis.commonality.SegmentSet`.
    path : str or Path
        The PNG to write (atomically).
    emotions : list of str, optional
        Panels, in order; default: emotions present in every corpus.
    max_points : int
        Most segments drawn per corpus and emotion.
    seed : int
        Seed of the subsampling, PCA and t-SNE.

    Returns
    -------
    dict
        Emotion → number of points embedded.
    """
    if emotions is None:
        emotions = sorted(set.intersection(*(set(s.emotions) for s in segment_sets.values())))
    ncols = min(4, max(1, len(emotions)))
    nrows = max(1, -(-len(emotions) // ncols))
    fig = Figure(figsize=(4.5 * ncols, 4.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    drawn = {}
    for ax, emotion in zip(axes.flat, emotions):
        rng = np.random.default_rng(seed)
        parts = []
        for name, segments in segment_sets.items():
            index = np.flatnonzero(segments.emotions == emotion)
            if len(index) > max_points:
                index = np.sort(rng.choice(index, max_points, replace=False))
            parts.append((name, segments.features[index], segments.vowels[index]))
        points = embed(np.concatenate([features for _, features, _ in parts]), seed)
        offset = 0
        for (color, marker), (name, features, vowels) in zip(itertools.cycle(CORPUS_STYLES), parts):
            xy = points[offset: offset + len(features)]
            offset += len(features)
            ax.scatter(xy[:, 0], xy[:, 1], s=8, c=color, marker=marker, alpha=0.5, label=name)
            for vowel in (v for v in VOWELS if v in set(vowels)):
                centre = xy[vowels == vowel].mean(axis=0)
                ax.annotate(vowel, centre, color=color, fontsize=11, fontweight="bold")
        drawn[emotion] = offset
        ax.set_title(emotion)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(emotions):]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="best", fontsize=9, markerscale=2)
    fig.suptitle("t-SNE of vowel segment features (labels: vowel centroids per corpus)")
    save_figure(fig, path)
    return drawn
