"""MSP-Podcast data preparation for SpeechBrain recipes (see README.md in this folder).

Usable from any train script::

    from msp_podcast_prepare import prepare_msp_podcast
    run_on_main(
        prepare_msp_podcast,
        kwargs={"data_folder": hparams["data_folder"], "save_folder": hparams["save_folder"]},
    )

or as a command: ``python msp_podcast_prepare.py <data_folder> <save_folder> [options of phonanchor-prepare]``.
"""

import sys

from speechbrain_phonanchor.prepare import prepare_msp_podcast
from speechbrain_phonanchor.prepare.cli import main

__all__ = ["prepare_msp_podcast"]

if __name__ == "__main__":
    sys.exit(main(["msp_podcast"] + sys.argv[1:]))
