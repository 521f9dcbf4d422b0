"""The vowel triplet loss ``L_adapt`` of AGA-CL.

For a target segment of vowel v in a target utterance whose (pseudo-)emotion
is e, where v is an *anchor vowel* of e (from the anchors file):

- anchor   = that target segment embedding,
- positive = a source segment of the same vowel v from an utterance labelled e,
- negative = a source segment of the same vowel v from an utterance labelled with another class,

``loss = max(0, ||a - p|| - ||a - n|| + margin)`` with Euclidean distances.

Mining (``mining``):

- ``"all"`` (default): every valid (anchor, positive, negative) triplet in
  the batch, averaged over the number of valid triplets.  The sum is computed without
  forming the triplets (:func:`all_triplets_sum`: sorted negatives and a cumulative sum),
  in ``n_anchors × n_source_segments`` memory per vowel.
- ``"hard"``: batch-hard; per anchor, the farthest positive and the nearest
  negative, averaged over anchors that have both.

A batch without any valid triplet returns a zero that keeps the graph (so
``backward`` works under DDP) and increments ``n_empty_batches``; every call
increments ``n_batches`` and sets ``last_n_triplets``.

Example
-------
>>> import torch
>>> loss = VowelTripletLoss(margin=1.0, anchors={"hap": ["a"]}, classes=["neu", "hap"])
>>> a = torch.tensor([[[0.0, 0.0]]])                        # one target segment, vowel a (id 3)
>>> s = torch.tensor([[[3.0, 0.0]], [[0.0, 1.0]]])          # source: a hap segment, a neu segment
>>> value = loss(a, torch.tensor([[3]]), torch.tensor([[True]]), torch.tensor([1]),
...              s, torch.tensor([[3], [3]]), torch.ones(2, 1, dtype=torch.bool), torch.tensor([1, 0]))
>>> round(value.item(), 4), loss.last_n_triplets               # max(0, 3 - 1 + 1)
(3.0, 1)
"""

import torch
from torch import nn

from speechbrain_phonanchor.model.vowel_ids import N_VOWEL_IDS, vowel_id


def euclidean(a, b, eps=1e-12):
    """Pairwise Euclidean distances (N, M) between rows of ``a`` (N, E) and ``b`` (M, E), safe to differentiate at 0.

    Computed as ``|a|² + |b|² - 2 a·b`` in float32 with autocast off (no (N, M, E) difference
    tensor: that tensor and its gradient were most of a training step's time).

    >>> euclidean(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 0.0]])).round(decimals=4).tolist()
    [[5.0, 0.0]]
    """
    with torch.autocast(a.device.type, enabled=False):
        a, b = a.float(), b.float()
        squared = (a * a).sum(dim=1, keepdim=True) + (b * b).sum(dim=1) - 2.0 * (a @ b.T)
        return squared.clamp_min(eps).sqrt()


class VowelTripletLoss(nn.Module):
    """Triplet loss over same-vowel target/source segments (see the module docstring).

    Arguments
    ---------
    margin : float
        Triplet margin.
    mining : str
        ``"all"`` or ``"hard"``.
    anchors : dict, optional
        ``{class_label: [vowel, ...]}``: the anchor vowels of each class.  Can
        be set later with :meth:`set_anchors`.
    classes : list of str, optional
        Class labels in index order (the label encoder's order); needed with ``anchors``.
    """

    def __init__(self, margin=1.0, mining="all", anchors=None, classes=None):
        super().__init__()
        if mining not in ("all", "hard"):
            raise ValueError(f"mining must be 'all' or 'hard', got {mining!r}")
        self.margin = margin
        self.mining = mining
        self.anchor_table = torch.zeros(0, N_VOWEL_IDS, dtype=torch.bool)
        self.n_batches = 0
        self.n_empty_batches = 0
        self.last_n_triplets = 0
        if anchors is not None:
            self.set_anchors(anchors, classes)

    def set_anchors(self, anchors, classes):
        """Use ``anchors`` (``{class_label: [vowel, ...]}``) for classes in index order ``classes``.

        Labels of ``anchors`` that are not in ``classes`` are ignored; a class
        without anchor vowels never forms a triplet.
        """
        if classes is None:
            raise ValueError("set_anchors needs the class labels in index order")
        table = torch.zeros(len(classes), N_VOWEL_IDS, dtype=torch.bool)
        for index, label in enumerate(classes):
            for vowel in anchors.get(label, ()):
                table[index, vowel_id(vowel)] = True
        self.anchor_table = table

    def forward(
        self,
        target_embeddings,
        target_vowels,
        target_mask,
        target_labels,
        source_embeddings,
        source_vowels,
        source_mask,
        source_labels,
    ):
        """Compute the loss for one batch.

        Arguments
        ---------
        target_embeddings, source_embeddings : torch.Tensor
            (B, S, E) segment embeddings.
        target_vowels, source_vowels : torch.Tensor
            (B, S) vowel ids.
        target_mask, source_mask : torch.Tensor
            (B, S) True at real segments.
        target_labels, source_labels : torch.Tensor
            (B,) class indices; negative means "no label" (e.g. not confident).

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        self.n_batches += 1
        a_emb, a_vow, a_lab = _flatten(target_embeddings, target_vowels, target_mask, target_labels)
        s_emb, s_vow, s_lab = _flatten(source_embeddings, source_vowels, source_mask, source_labels)
        table = self.anchor_table.to(a_vow.device)
        if len(table):
            is_anchor = table[a_lab, a_vow]
        else:  # no anchors set (e.g. the CL variant): no triplet
            is_anchor = torch.zeros_like(a_lab, dtype=torch.bool)
        a_emb, a_vow, a_lab = a_emb[is_anchor], a_vow[is_anchor], a_lab[is_anchor]

        total = target_embeddings.new_zeros(())
        count = 0
        for vowel in torch.unique(a_vow).tolist():
            anchors, labels = a_emb[a_vow == vowel], a_lab[a_vow == vowel]
            same_vowel = s_vow == vowel
            distances = euclidean(anchors, s_emb[same_vowel])
            positive = labels.unsqueeze(1) == s_lab[same_vowel].unsqueeze(0)
            negative = ~positive
            vowel_total, vowel_count = self._mine(distances, positive, negative)
            total = total + vowel_total
            count += vowel_count
        self.last_n_triplets = count
        if count == 0:
            self.n_empty_batches += 1
            return (target_embeddings.sum() + source_embeddings.sum()) * 0.0
        return total / count

    def _mine(self, distances, positive, negative):
        """Return (sum of triplet losses, number of triplets) for one vowel's (anchors × source) distances."""
        if self.mining == "all":
            return all_triplets_sum(distances, positive, negative, self.margin)
        has_both = positive.any(dim=1) & negative.any(dim=1)
        hardest_positive = distances.masked_fill(~positive, float("-inf")).max(dim=1).values
        hardest_negative = distances.masked_fill(~negative, float("inf")).min(dim=1).values
        losses = torch.relu(hardest_positive - hardest_negative + self.margin)
        return losses[has_both].sum(), int(has_both.sum())


def all_triplets_sum(distances, positive, negative, margin):
    """Sum of ``max(0, d(a, p) - d(a, n) + margin)`` over every (anchor, positive, negative), and their count.

    Equal to summing the (A, S, S) tensor of all triplets, in O(A · S log S) time and O(A · S)
    memory: per anchor, the negatives' distances are sorted once; for a positive at distance
    ``d``, the negatives that violate the margin are those closer than ``d + margin`` (found by
    binary search), and their losses sum to ``k · (d + margin) - (sum of those k distances)``, read
    from a cumulative sum.  Gradients are those of the brute-force sum.

    Arguments
    ---------
    distances : torch.Tensor
        (A, S) anchor-to-source distances.
    positive, negative : torch.Tensor
        (A, S) bool: which source segments are positives / negatives of each anchor.
    margin : float
        Triplet margin.

    Returns
    -------
    tuple
        (scalar tensor: the sum of the triplet losses, int: the number of triplets).

    Example
    -------
    >>> d = torch.tensor([[1.0, 0.5, 3.0]])
    >>> total, count = all_triplets_sum(d, torch.tensor([[True, False, False]]),
    ...                                 torch.tensor([[False, True, True]]), margin=1.0)
    >>> float(total), count    # max(0, 1 - 0.5 + 1) + max(0, 1 - 3 + 1)
    (1.5, 2)
    """
    count = int((positive.sum(dim=1) * negative.sum(dim=1)).sum())
    if count == 0:
        return distances.sum() * 0.0, 0
    negative_distances = distances.masked_fill(~negative, float("inf"))
    ordered, _ = negative_distances.sort(dim=1)  # the anchor's negatives first, nearest first
    summed = ordered.masked_fill(ordered.isinf(), 0.0).cumsum(dim=1)  # the non-negatives (inf) add nothing
    cumulative = torch.cat([ordered.new_zeros(len(ordered), 1), summed], dim=1)
    thresholds = distances + margin
    violating = torch.searchsorted(ordered.detach().contiguous(), thresholds.detach().contiguous())
    losses = violating * thresholds - cumulative.gather(1, violating)
    return losses[positive].sum(), count


def _flatten(embeddings, vowels, mask, labels):
    """Real segments of a batch as (N, E) embeddings, (N,) vowel ids, (N,) labels of their utterance."""
    labels = labels.unsqueeze(1).expand_as(vowels)
    keep = mask & (labels >= 0)
    return embeddings[keep], vowels[keep], labels[keep]
