"""Phonetic commonality analysis and anchor selection (issue 5, DESIGN.md step 3).

On a small labelled analysis subset of each corpus (``subset``) the package
measures two views of how alike each vowel sounds across the source and the
target language per emotion:

- the formant view (``formants``): mean F1/F2 per vowel × emotion × corpus,
  Nearey-normalised per speaker, plotted as vowel spaces;
- the SSL view (``commonality``): cosine similarity CS and Euclidean distance ED
  between the mean vowel-segment features of both corpora and
  ``Com = (CS + (1 - ED_norm)) / 2``.

``selection`` ranks the vowels by Com and writes ``anchors.yaml`` (BA / WA / GA),
which training reads with :func:`load_anchors`; ``tsne`` and ``report`` make the
figures and ``report.md``; ``cli`` is ``phonanchor-analyze``.
"""

from speechbrain_phonanchor.analysis.selection import load_anchors

__all__ = ["load_anchors"]
