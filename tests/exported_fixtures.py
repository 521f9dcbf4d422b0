"""A tiny trained and exported model (tiny random encoder, 2 epochs on the generated pair), for inference tests.

``build(folder)`` trains with :mod:`pair_fixtures`, saves a flat Italian aligner model
(every phone one Gaussian: it aligns, crudely, any Italian transcript) and exports the run.
"""

import pathlib

import numpy as np
from pair_fixtures import make_pair, run_train

from speechbrain_phonanchor.align import AcousticModel, make_g2p
from speechbrain_phonanchor.align.features import FEATURE_DIM
from speechbrain_phonanchor.export import export_model

ALIGNED_TEXT = "la vita è bella"


def flat_aligner(folder, lang="it", text=ALIGNED_TEXT):
    """Save a flat-start aligner model for the phones of ``text`` in ``folder``."""
    phones = make_g2p(lang).transcribe(text).phones
    AcousticModel.flat(phones, lang=lang, mean=np.zeros(FEATURE_DIM), var=np.ones(FEATURE_DIM)).save(folder)
    return pathlib.Path(folder)


def build(folder):
    """Train, export; return ``(pair folder, brain, exported folder, export info)``."""
    folder = pathlib.Path(folder)
    make_pair(folder)
    brain = run_train(folder, "aga")
    aligner = flat_aligner(folder / "aligner_it")
    info = export_model(folder / "aga", folder / "exported", aligner_dirs=[aligner])
    return folder, brain, pathlib.Path(info["out_dir"]), info
