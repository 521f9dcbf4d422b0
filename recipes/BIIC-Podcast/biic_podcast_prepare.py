"""BIIC-Podcast data preparation for SpeechBrain recipes (see README.md in this folder).

Usable from any train script::

    from biic_podcast_prepare import prepare_biic_podcast
    run_on_main(
        prepare_biic_podcast,
        kwargs={"data_folder": hparams["data_folder"], "save_folder": hparams["save_folder"]},
    )

or as a command: ``python biic_podcast_prepare.py <data_folder> <save_folder> [options of phonanchor-prepare]``.
"""

import sys

from speechbrain_phonanchor.prepare import prepare_biic_podcast
from speechbrain_phonanchor.prepare.cli import main

__all__ = ["prepare_biic_podcast"]

if __name__ == "__main__":
    sys.exit(main(["biic_podcast"] + sys.argv[1:]))
