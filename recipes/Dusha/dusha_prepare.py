"""Dusha data preparation for SpeechBrain recipes (see README.md in this folder).

Usable from any train script::

    from dusha_prepare import prepare_dusha
    run_on_main(
        prepare_dusha,
        kwargs={"data_folder": hparams["data_folder"], "save_folder": hparams["save_folder"]},
    )

or as a command: ``python dusha_prepare.py <data_folder> <save_folder> [options of phonanchor-prepare]``.
"""

import sys

from speechbrain_phonanchor.prepare import prepare_dusha
from speechbrain_phonanchor.prepare.cli import main

__all__ = ["prepare_dusha"]

if __name__ == "__main__":
    sys.exit(main(["dusha"] + sys.argv[1:]))
