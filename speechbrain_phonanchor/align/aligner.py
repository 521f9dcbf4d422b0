"""Viterbi forced alignment with a monophone HMM-GMM (kaldi-hmm-gmm) and MFA-style TextGrids.

:class:`AcousticModel` holds what alignment needs: the phone list, the HMM
topology (3 left-to-right states per speech phone, Kaldi's 5-state silence
model for ``sil`` and ``spn``), the monophone tree, the transition model and
the diagonal GMMs.  It compiles a transcript into a graph (optional silence
before, between and after words; an unpronounceable word becomes spoken
noise ``spn``), aligns features with Kaldi's Viterbi aligner and turns the
frame alignment into word and phone intervals.  ``save``/``load`` keep the
model in a folder so new utterances align without retraining.

Example
-------
>>> model = AcousticModel.flat(["a", "b"], lang="xx", mean=np.zeros(2), var=np.ones(2))
>>> model.phones
['sil', 'spn', 'a', 'b']
>>> feats = np.random.default_rng(0).normal(size=(40, 2)).astype("float32")
>>> result = model.align(feats, [Word("ab", ("a", "b"))], duration=0.425)
>>> [p[0] for p in result.phones if p[0] != "sil"], result.words[0][0]
(['a', 'b'], 'ab')
"""

import json
import math
import pathlib
import pickle
from dataclasses import dataclass

import numpy as np

from speechbrain_phonanchor.align.features import FRAME_SHIFT
from speechbrain_phonanchor.align.g2p import Word
from speechbrain_phonanchor.fileio import atomic_open, atomic_write_json

SIL = "sil"
SPN = "spn"
NON_SPEECH_PHONES = (SIL, SPN)
SPEECH_STATES = 3
SILENCE_STATES = 5
MODEL_FILE = "model.pkl"
INFO_FILE = "model.json"


class AlignError(RuntimeError):
    """An utterance that could not be aligned; ``reason`` is a short tag for summaries."""

    def __init__(self, reason, detail=""):
        self.reason = reason
        super().__init__(reason.replace("_", " ") + (f" ({detail})" if detail else ""))


@dataclass
class AlignConfig:
    """Viterbi beams and scales (Kaldi's ``gmm-align-compiled`` defaults for training)."""

    beam: float = 10.0
    retry_beam: float = 400.0
    acoustic_scale: float = 0.1
    transition_scale: float = 1.0
    self_loop_scale: float = 0.1
    silence_prob: float = 0.5


@dataclass
class AlignmentResult:
    """Words and phones as ``(label, start, end)`` in seconds; silence is ``sil``."""

    words: list
    phones: list
    log_like: float
    num_frames: int


def _topology(speech_ids, silence_ids):
    """Kaldi HMM topology: 3 left-to-right states for speech; silence's middle states are ergodic."""
    import kaldi_hmm_gmm as khg

    def state(s, targets):
        arcs = " ".join(f"<Transition> {t} {p}" for t, p in targets)
        return f"<State> {s} <PdfClass> {s} {arcs} </State>"

    def entry(ids, n):
        states = [f"<TopologyEntry> <ForPhones> {' '.join(map(str, ids))} </ForPhones>"]
        if n == SPEECH_STATES:
            states += [state(s, [(s, 0.75), (s + 1, 0.25)]) for s in range(n)]
        else:
            p = 1.0 / (n - 1)
            states.append(state(0, [(t, p) for t in range(n - 1)]))
            states += [state(s, [(t, p) for t in range(1, n)]) for s in range(1, n - 1)]
            states.append(state(n - 1, [(n - 1, 0.75), (n, 0.25)]))
        states.append(f"<State> {n} </State> </TopologyEntry>")
        return "\n".join(states)

    topo = khg.HmmTopology()
    topo.read(f"<Topology>\n{entry(speech_ids, SPEECH_STATES)}\n{entry(silence_ids, SILENCE_STATES)}\n</Topology>")
    return topo


class AcousticModel:
    """A monophone HMM-GMM aligner for one language.

    Arguments
    ---------
    phones : list of str
        Phone symbols; index + 1 is the Kaldi phone id (``sil`` and ``spn`` first).
    lang : str
        Language code of the G2P that produced the phones.
    transition_model, tree, am : kaldi_hmm_gmm objects
        Built by :meth:`flat` and refined by the trainer.
    """

    def __init__(self, phones, lang, transition_model, tree, am, align_config=None):
        self.phones = list(phones)
        self.lang = lang
        self.transition_model = transition_model
        self.tree = tree
        self.am = am
        self.align_config = align_config or AlignConfig()
        self.phone_ids = {p: i + 1 for i, p in enumerate(self.phones)}

    @classmethod
    def flat(cls, speech_phones, lang, mean, var):
        """A flat-start model: every state is one Gaussian with the global ``mean`` and ``var``."""
        import kaldi_hmm_gmm as khg

        phones = list(NON_SPEECH_PHONES) + sorted({str(p) for p in speech_phones} - set(NON_SPEECH_PHONES))
        ids = {p: i + 1 for i, p in enumerate(phones)}
        topo = _topology([ids[p] for p in phones[2:]], [ids[SIL], ids[SPN]])
        tree = khg.monophone_context_dependency(
            phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes()
        )
        gmm = khg.DiagGmm(nmix=1, dim=len(mean))
        gmm.set_weights(np.ones(1, dtype=np.float32))
        gmm.set_means(np.asarray(mean, dtype=np.float32)[None, :])
        gmm.set_invvars(1.0 / np.maximum(np.asarray(var, dtype=np.float32), 1e-3)[None, :])
        gmm.compute_gconsts()
        am = khg.AmDiagGmm()
        for _ in range(tree.num_pdfs):
            am.add_pdf(gmm)
        return cls(phones, lang, khg.TransitionModel(ctx_dep=tree, hmm_topo=topo), tree, am)

    # ------------------------------------------------------------------ graphs
    def check_phones(self, words):
        """Raise :class:`AlignError` ``phone_not_in_model`` if a word uses a phone the model lacks."""
        unknown = sorted({p for w in words for p in w.phones if p not in self.phone_ids})
        if unknown:
            raise AlignError("phone_not_in_model", " ".join(unknown))

    def compile(self, words, edge_silence=False):
        """The training graph of a transcript: its words in order, optional silence around each.

        Each word position is its own lexicon entry (so repeated words need no
        disambiguation); a word without phones is spoken noise ``spn``.  With
        ``edge_silence`` the utterance must start and end with silence and has none
        between words (the flat-start alignment: silence is seeded from the edges only).
        """
        import kaldi_hmm_gmm as khg
        import kaldifst

        self.check_phones(words)
        cfg = self.align_config
        sil_cost, no_sil_cost = -math.log(cfg.silence_prob), -math.log(1.0 - cfg.silence_prob)
        sil = self.phone_ids[SIL]
        lex = kaldifst.StdVectorFst()
        start, loop, sil_state = lex.add_state(), lex.add_state(), lex.add_state()
        lex.start = start

        def arc(src, ilabel, olabel, weight, dst):
            lex.add_arc(state=src, arc=kaldifst.StdArc(ilabel=ilabel, olabel=olabel, weight=weight, nextstate=dst))

        if edge_silence:
            tail, end = lex.add_state(), lex.add_state()
            arc(start, sil, 0, 0, loop)
            arc(tail, sil, 0, 0, end)
            lex.set_final(state=end, weight=0)
        else:
            arc(start, 0, 0, no_sil_cost, loop)
            arc(start, 0, 0, sil_cost, sil_state)
            lex.set_final(state=loop, weight=0)
        arc(sil_state, sil, 0, 0, loop)
        for position, word in enumerate(words, start=1):
            ids = [self.phone_ids[p] for p in (word.phones or (SPN,))]
            state = loop
            for k, phone_id in enumerate(ids[:-1]):
                nxt = lex.add_state()
                arc(state, phone_id, position if k == 0 else 0, 0, nxt)
                state = nxt
            label = position if len(ids) == 1 else 0
            if edge_silence:  # silence only at the edges: the last word leads to it, the others to the next word
                arc(state, ids[-1], label, 0, tail if position == len(words) else loop)
                continue
            arc(state, ids[-1], label, no_sil_cost, loop)
            arc(state, ids[-1], label, sil_cost, sil_state)
        kaldifst.arcsort(lex, sort_type="olabel")
        opts = khg.TrainingGraphCompilerOptions()
        opts.reorder = False  # a phone's last frame then carries the transition into the final state
        compiler = khg.TrainingGraphCompiler(
            trans_model=self.transition_model, ctx_dep=self.tree, lex_fst=lex, disambig_syms=[], opts=opts
        )
        return compiler.compile_graph_from_text(list(range(1, len(words) + 1)))

    def min_frames(self, words):
        """The fewest frames a transcript can take (3 per phone, spoken noise included)."""
        return sum(SPEECH_STATES * max(len(w.phones), 1) for w in words)

    # --------------------------------------------------------------- alignment
    def viterbi(self, feats, graph, beam=None):
        """Frame-level transition ids for ``feats`` through a compiled ``graph`` (copied, not changed)."""
        import kaldi_hmm_gmm as khg

        cfg = self.align_config
        fst = graph.copy()
        khg.add_transition_probs(
            trans_model=self.transition_model,
            transition_scale=cfg.transition_scale,
            self_loop_scale=cfg.self_loop_scale,
            fst=fst,
        )
        decodable = khg.DecodableAmDiagGmmScaled(
            am=self.am, tm=self.transition_model, feats=np.ascontiguousarray(feats), scale=cfg.acoustic_scale
        )
        config = khg.AlignConfig()
        config.beam = beam or cfg.beam
        config.retry_beam = cfg.retry_beam
        config.careful = False
        _, num_error, _, log_like, _, alignment, _ = khg.align_utterance_wrapper(
            config=config,
            utt="utt",
            acoustic_scale=cfg.acoustic_scale,
            fst=fst,
            decodable=decodable,
            num_done=0,
            num_error=0,
            num_retried=0,
            tot_like=0.0,
            frame_count=0,
        )
        if num_error or len(alignment) != len(feats):
            raise AlignError("alignment_failed", "no path through the transcript within the retry beam")
        return list(alignment), float(log_like)

    def split_phones(self, alignment):
        """``[(phone, first_frame, end_frame), ...]`` from frame-level transition ids."""
        tm = self.transition_model
        segments, first = [], 0
        for t, tid in enumerate(alignment):
            if tm.is_final(tid):
                segments.append((self.phones[tm.transition_id_to_phone(tid) - 1], first, t + 1))
                first = t + 1
        return segments

    def align(self, feats, words, duration=None):
        """Align ``feats`` to ``words`` (list of :class:`~.g2p.Word`) → :class:`AlignmentResult`.

        Raises
        ------
        AlignError
            ``empty_transcript``, ``phone_not_in_model``, ``audio_too_short_for_text``
            or ``alignment_failed``.
        """
        if not words:
            raise AlignError("empty_transcript")
        if len(feats) < self.min_frames(words):
            raise AlignError(
                "audio_too_short_for_text", f"{len(feats)} frames < {self.min_frames(words)} needed by the phones"
            )
        alignment, log_like = self.viterbi(feats, self.compile(words))
        return self.to_intervals(alignment, words, log_like, duration)

    def to_intervals(self, alignment, words, log_like=0.0, duration=None):
        """Turn a frame alignment into word and phone intervals (seconds); the last ends at ``duration``."""
        num_frames = len(alignment)
        end_time = duration if duration is not None else num_frames * FRAME_SHIFT

        def seconds(frame):
            return round(min(frame * FRAME_SHIFT, end_time) if frame < num_frames else end_time, 4)

        segments = self.split_phones(alignment)
        phones = [(p, seconds(a), seconds(b)) for p, a, b in segments]
        spoken = [seg for seg in phones if seg[0] != SIL]
        expected = [p for w in words for p in (w.phones or (SPN,))]
        if [s[0] for s in spoken] != expected:
            raise AlignError("alignment_mismatch", "aligned phones differ from the transcript")
        word_intervals, k = [], 0
        for word in words:
            n = len(word.phones) or 1
            word_intervals.append((word.text, spoken[k][1], spoken[k + n - 1][2]))
            k += n
        return AlignmentResult(word_intervals, phones, log_like, num_frames)

    # ----------------------------------------------------------------- storage
    def save(self, folder, extra=None):
        """Write ``model.pkl`` (Kaldi objects) and ``model.json`` (phones, language, settings)."""
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / MODEL_FILE, "wb") as handle:
            pickle.dump({"transition_model": self.transition_model, "tree": self.tree, "am": self.am}, handle)
        info = {
            "lang": self.lang,
            "phones": self.phones,
            "align_config": vars(self.align_config),
            "num_pdfs": self.am.num_pdfs,
            "num_gaussians": self.am.num_gauss,
            **(extra or {}),
        }
        atomic_write_json(folder / INFO_FILE, info)

    @classmethod
    def load(cls, folder):
        """Load a model written by :meth:`save`; ``FileNotFoundError`` if the folder has none."""
        folder = pathlib.Path(folder)
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        with open(folder / MODEL_FILE, "rb") as handle:
            parts = pickle.load(handle)
        return cls(
            info["phones"],
            info["lang"],
            parts["transition_model"],
            parts["tree"],
            parts["am"],
            AlignConfig(**info.get("align_config", {})),
        )

    @staticmethod
    def exists(folder):
        """True if ``folder`` holds a saved model."""
        folder = pathlib.Path(folder)
        return (folder / MODEL_FILE).is_file() and (folder / INFO_FILE).is_file()


def words_from_phones(phone_lists):
    """Test helper: :class:`~.g2p.Word` objects named ``w0, w1, ...`` from lists of phones.

    >>> words_from_phones([["a"], ["b", "a"]])[1]
    Word(text='w1', phones=('b', 'a'))
    """
    return [Word(f"w{i}", tuple(p)) for i, p in enumerate(phone_lists)]
