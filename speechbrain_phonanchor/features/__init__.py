"""Frozen-encoder features: encoders, the memory-mapped feature store, vowel-centred segments.

See :mod:`~speechbrain_phonanchor.features.encoders`, :mod:`~speechbrain_phonanchor.features.store`
and :mod:`~speechbrain_phonanchor.features.segments`; the command is ``phonanchor-extract``
(:mod:`~speechbrain_phonanchor.features.cli`).
"""
