"""Monophone HMM-GMM training on a corpus's own utterances (Kaldi's ``train_mono.sh`` in Python).

Flat start (every state one Gaussian with the global mean and variance),
equally spaced first alignments, then EM passes: accumulate statistics from
the current alignment, re-estimate GMMs and transitions, split Gaussians
towards ``max_gaussians`` during the first passes, and realign with Viterbi
on a schedule.  Realignment, the costly part, runs in ``jobs`` worker
processes that each keep their share of utterances and compiled graphs.

Example
-------
>>> import numpy as np
>>> from speechbrain_phonanchor.align.g2p import Word
>>> rng = np.random.default_rng(0)
>>> utts = [TrainingUtterance(f"u{i}", np.concatenate([rng.normal(-2, 1, (20, 2)), rng.normal(2, 1, (20, 2))])
...                           .astype("float32"), [Word("ab", ("a", "b"))]) for i in range(4)]
>>> model, report = train_monophone(utts, "xx", TrainConfig(num_iters=4, jobs=1))
>>> report["trained_on"], model.phones
(4, ['sil', 'spn', 'a', 'b'])
"""

import copy
import logging
import multiprocessing
from dataclasses import dataclass, field

import numpy as np

from speechbrain_phonanchor.align.aligner import SIL, AcousticModel, AlignError

SILENCE_MIN_FRAMES = 3

logger = logging.getLogger(__name__)

# Kaldi train_mono.sh: realign after these passes.
KALDI_REALIGN = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


@dataclass
class TrainingUtterance:
    """Features ``(frames, dim)`` and words (:class:`~.g2p.Word`) of one training utterance."""

    utt_id: str
    feats: np.ndarray
    words: list


@dataclass
class TrainConfig:
    """Training schedule (defaults follow Kaldi's monophone recipe).

    ``num_iters`` EM passes; realignment after the passes in ``realign_iters``;
    Gaussians grow linearly to ``max_gaussians`` over ``mixup_iters`` passes,
    but to no more than one per ``frames_per_gaussian`` training frames (Kaldi's
    1000 is meant for hours of speech; on a few minutes, 1000 Gaussians let
    consonant states model vowel frames: on the synthetic benchmark 120 frames
    per Gaussian cut the mean vowel-onset error by 10-65 %, see
    ``benchmarks/align_quality.py``; corpora over 2 hours keep 1000);
    ``boost_silence`` scales the silence GMM weights when realigning (Kaldi's
    ``--boost-silence``); ``jobs`` worker processes realign.
    """

    num_iters: int = 40
    realign_iters: tuple = KALDI_REALIGN
    max_gaussians: int = 1000
    frames_per_gaussian: int = 120
    mixup_iters: int = 30
    min_gaussian_count: float = 20.0
    beam: float = 10.0
    boost_silence: float = 1.25
    jobs: int = 1
    seed: int = 0
    extra: dict = field(default_factory=dict)


def _equal_alignment(graph, num_frames, seed):
    """Kaldi's ``align-equal-compiled``: a random path of ``num_frames`` through ``graph``."""
    import kaldifst

    ok, path = kaldifst.equal_align(ifst=graph, length=num_frames, rand_seed=seed, num_retries=10)
    if not ok:
        raise AlignError("equal_alignment_failed")
    ok, tids, _, _ = kaldifst.get_linear_symbol_sequence(path)
    if not ok or len(tids) != num_frames:
        raise AlignError("equal_alignment_failed")
    return list(tids)


class _Shard:
    """Utterances, their compiled graphs, and how to (re)align them with a model."""

    def __init__(self, model, utterances, seed):
        self.model, self.utterances, self.seed = copy.copy(model), utterances, seed
        self.graphs, self.edge_graphs, self.failed = {}, {}, {}
        for utt in utterances:
            try:
                if len(utt.feats) < model.min_frames(utt.words) + 2 * SILENCE_MIN_FRAMES:
                    raise AlignError("audio_too_short_for_text")
                self.graphs[utt.utt_id] = model.compile(utt.words)
                self.edge_graphs[utt.utt_id] = model.compile(utt.words, edge_silence=True)
            except AlignError as err:
                self.failed[utt.utt_id] = err.reason

    def align(self, state):
        """``state`` None: equal alignment with silence at both ends; else ``(am, transition_model, beam)``: Viterbi."""
        if state is not None:
            self.model.am, self.model.transition_model, beam = state
        alignments, failed = {}, dict(self.failed)
        for k, utt in enumerate(self.utterances):
            graph = self.graphs.get(utt.utt_id)
            if graph is None:
                continue
            try:
                if state is None:
                    graph = self.edge_graphs[utt.utt_id]
                    alignments[utt.utt_id] = _equal_alignment(graph, len(utt.feats), self.seed + k)
                else:
                    alignments[utt.utt_id] = self.model.viterbi(utt.feats, graph, beam=beam)[0]
            except AlignError as err:
                failed[utt.utt_id] = err.reason
        return alignments, failed


def _shard_loop(conn, model, utterances, seed):
    shard = _Shard(model, utterances, seed)
    while True:
        state = conn.recv()
        if state == "stop":
            break
        conn.send(shard.align(state))
    conn.close()


class _Aligners:
    """``jobs`` shards, in worker processes when ``jobs > 1`` (fork) or in this process."""

    def __init__(self, model, utterances, jobs, seed):
        parts = [utterances[i::jobs] for i in range(jobs)]
        self.local, self.workers = None, []
        if jobs == 1 or "fork" not in multiprocessing.get_all_start_methods():
            self.local = _Shard(model, utterances, seed)
            return
        ctx = multiprocessing.get_context("fork")
        for i, part in enumerate(parts):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_shard_loop, args=(child, model, part, seed + i * 100003), daemon=True)
            proc.start()
            self.workers.append((proc, parent))

    def align(self, state):
        if self.local is not None:
            return self.local.align(state)
        for _, conn in self.workers:
            conn.send(state)
        alignments, failed = {}, {}
        for _, conn in self.workers:
            a, f = conn.recv()
            alignments.update(a)
            failed.update(f)
        return alignments, failed

    def close(self):
        for proc, conn in self.workers:
            conn.send("stop")
            proc.join(timeout=30)


def _boosted_silence(model, boost):
    """A copy of the GMMs with the silence states' likelihoods scaled by ``boost``."""
    import kaldi_hmm_gmm as khg

    am = khg.AmDiagGmm()
    am.copy_from_am_diag_gmm(model.am)
    if boost == 1.0:
        return am
    _, pdfs = khg.get_pdfs_for_phones(model.transition_model, [model.phone_ids[SIL]])
    for pdf in pdfs:
        gmm = am.get_pdf(pdf)
        gmm.set_weights(np.asarray(gmm.weights, dtype=np.float32) * boost)
        gmm.compute_gconsts()
    return am


def _accumulate(model, utterances, alignments):
    """GMM and transition statistics from alignments; returns ``(gmm_accs, trans_counts, log_like, frames)``."""
    import kaldi_hmm_gmm as khg

    accs = khg.AccumAmDiagGmm()
    accs.init(model=model.am, flags=khg.GmmUpdateFlags.kGmmAll)
    tm = model.transition_model
    tid_to_pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
    counts = np.zeros(tm.num_transition_ids + 1, dtype=np.float64)
    log_like, frames = 0.0, 0
    for utt in utterances:
        ali = alignments.get(utt.utt_id)
        if ali is None:
            continue
        ali = np.asarray(ali, dtype=np.int64)
        counts += np.bincount(ali, minlength=len(counts))
        for frame, pdf in zip(utt.feats, tid_to_pdf[ali]):
            log_like += accs.accumulate_for_gmm(model=model.am, data=frame, gmm_index=int(pdf), weight=1.0)
        frames += len(ali)
    return accs, counts, log_like, frames


def _update(model, accs, counts, num_gaussians, min_count):
    """M-step: transitions, GMM means/variances/weights, then split Gaussians by occupancy."""
    import kaldi_hmm_gmm as khg

    model.transition_model.mle_update(counts, khg.MleTransitionUpdateConfig())
    khg.mle_am_diag_gmm_update(
        config=khg.MleDiagGmmOptions(), amdiag_gmm_acc=accs, flags=khg.GmmUpdateFlags.kGmmAll, am_gmm=model.am
    )
    occs = np.array([accs.get_acc(i).occupancy.sum() for i in range(accs.num_accs)], dtype=np.float32)
    if num_gaussians > model.am.num_gauss:
        model.am.split_by_count(
            state_occs=occs, target_components=num_gaussians, perturb_factor=0.01, power=0.2, min_count=min_count
        )


def train_monophone(utterances, lang, config=None, progress=None):
    """Train a monophone :class:`~.aligner.AcousticModel` on ``utterances``.

    Arguments
    ---------
    utterances : list of TrainingUtterance
        Features and words; utterances that cannot be aligned are left out and reported.
    lang : str
        Language code stored with the model.
    config : TrainConfig, optional
        The schedule; defaults to Kaldi's monophone recipe.
    progress : callable, optional
        Called as ``progress(iteration, info_dict)`` after each pass.

    Returns
    -------
    (AcousticModel, dict)
        The model and a report: utterances trained on, failures by utterance,
        average log-likelihood per frame after each pass.
    """
    config = config or TrainConfig()
    if not utterances:
        raise ValueError("no utterances to train on")
    stacked = np.concatenate([u.feats for u in utterances[:2000]])
    phones = {p for u in utterances for w in u.words for p in w.phones}
    model = AcousticModel.flat(sorted(phones), lang, stacked.mean(axis=0), stacked.var(axis=0))
    num_gauss = model.am.num_gauss
    target = min(config.max_gaussians, sum(len(u.feats) for u in utterances) // max(1, config.frames_per_gaussian))
    step = max(0, (target - num_gauss) // max(1, config.mixup_iters))
    jobs = max(1, min(config.jobs, len(utterances)))
    aligners = _Aligners(model, utterances, jobs, config.seed)
    history = []
    try:
        alignments, failed = aligners.align(None)
        for iteration in range(config.num_iters):
            if iteration in config.realign_iters:
                state = (_boosted_silence(model, config.boost_silence), model.transition_model, config.beam)
                alignments, failed = aligners.align(state)
            if not alignments:
                raise RuntimeError(f"no utterance could be aligned at pass {iteration}: {_count(failed)}")
            accs, counts, log_like, frames = _accumulate(model, utterances, alignments)
            if iteration < config.mixup_iters:
                num_gauss += step
            _update(model, accs, counts, num_gauss if iteration > 0 else 0, config.min_gaussian_count)
            info = {"iter": iteration, "log_like": log_like / max(frames, 1), "aligned": len(alignments),
                    "gaussians": model.am.num_gauss}  # fmt: skip
            history.append(info)
            logger.info("pass %(iter)d: %(log_like).3f per frame, %(aligned)d utterances, %(gaussians)d Gaussians",
                        info)  # fmt: skip
            if progress is not None:
                progress(iteration, info)
    finally:
        aligners.close()
    report = {"trained_on": len(alignments), "failed": failed, "failed_by_reason": _count(failed), "history": history}
    return model, report


def _count(failed):
    counts = {}
    for reason in failed.values():
        counts[reason] = counts.get(reason, 0) + 1
    return counts
