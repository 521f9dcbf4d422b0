"""AGA-CL model parts, each usable alone from a hyperpyyaml file with ``!new:``.

- :class:`VowelPrototypeBank` — fixed target vowel prototypes (what attention sees without a partner)
- :class:`CrossPhoneticAttention` — source frames attend to target frames / prototypes, first
- :class:`SegmentPooling`, :class:`UtterancePooling` — masked pooling
- :class:`SegmentEncoder` — transformer over vowel segments
- :class:`EmotionClassifier` — logits
- :class:`PhonAnchorNet` — all of the above in order
- :class:`VowelTripletLoss` — ``L_adapt``
- :class:`PseudoLabeler` — target pseudo-labels after warm-up (most confident per predicted class, or above a threshold)
"""

from speechbrain_phonanchor.model.attention import CrossPhoneticAttention
from speechbrain_phonanchor.model.encoder import EmotionClassifier, SegmentEncoder
from speechbrain_phonanchor.model.losses import VowelTripletLoss
from speechbrain_phonanchor.model.network import NetOutput, PhonAnchorNet
from speechbrain_phonanchor.model.pooling import SegmentPooling, UtterancePooling
from speechbrain_phonanchor.model.prototypes import VowelPrototypeBank
from speechbrain_phonanchor.model.pseudo_labels import PseudoLabeler
from speechbrain_phonanchor.model.vowel_ids import NONE_ID, PAD_ID, vowel_id

__all__ = [
    "CrossPhoneticAttention",
    "EmotionClassifier",
    "NetOutput",
    "NONE_ID",
    "PAD_ID",
    "PhonAnchorNet",
    "PseudoLabeler",
    "SegmentEncoder",
    "SegmentPooling",
    "UtterancePooling",
    "VowelPrototypeBank",
    "VowelTripletLoss",
    "vowel_id",
]
