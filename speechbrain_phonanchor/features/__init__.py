"""Frozen-encoder features: encoders, the feature store (fp16 frames read on demand by offset), vowel-centred segments.

See :mod:`~speechbrain_phonanchor.features.encoders`, :mod:`~speechbrain_phonanchor.features.store`
and :mod:`~speechbrain_phonanchor.features.segments`; the command is ``phonanchor-extract``
(:mod:`~speechbrain_phonanchor.features.cli`).
"""
