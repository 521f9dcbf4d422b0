"""Generic data preparation for SpeechBrain recipes (see README.md in this folder).

Usable from any train script::

    from generic_prepare import prepare_generic
    run_on_main(
        prepare_generic,
        kwargs={"data_folder": hparams["data_folder"], "save_folder": hparams["save_folder"]},
    )

or as a command: ``python generic_prepare.py <data_folder> <save_folder> [options of phonanchor-prepare]``.
"""

import sys

from speechbrain_phonanchor.prepare import prepare_generic
from speechbrain_phonanchor.prepare.cli import main

__all__ = ["prepare_generic"]

if __name__ == "__main__":
    sys.exit(main(["generic"] + sys.argv[1:]))
