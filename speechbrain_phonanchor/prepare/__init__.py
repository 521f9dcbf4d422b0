"""Corpus preparation: one pure function per corpus, from a folder to SpeechBrain JSON manifests.

Each ``prepare_<corpus>(data_folder, save_folder, ...)`` writes ``train.json``,
``valid.json``, ``test.json`` (and extra official splits such as MSP-Podcast's
``test2.json``), ``prep_report.json`` (kept/skipped/flagged counts by reason,
``data_folder``, options) and ``prep_skipped.tsv`` into ``save_folder``, and
does nothing when those outputs already exist with the same options.
Console command: ``phonanchor-prepare`` (:mod:`.cli`).
"""

from speechbrain_phonanchor.prepare.biic_podcast import prepare_biic_podcast
from speechbrain_phonanchor.prepare.common import PrepareError, PrepReport, Utterance, summarize
from speechbrain_phonanchor.prepare.dusha import prepare_dusha
from speechbrain_phonanchor.prepare.generic import prepare_generic
from speechbrain_phonanchor.prepare.msp_podcast import prepare_msp_podcast

PREPARERS = {
    "msp_podcast": prepare_msp_podcast,
    "biic_podcast": prepare_biic_podcast,
    "dusha": prepare_dusha,
    "generic": prepare_generic,
}

__all__ = [
    "PREPARERS",
    "PrepReport",
    "PrepareError",
    "Utterance",
    "prepare_biic_podcast",
    "prepare_dusha",
    "prepare_generic",
    "prepare_msp_podcast",
    "summarize",
]
