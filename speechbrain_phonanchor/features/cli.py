"""``phonanchor-extract``: build a feature store from a manifest.

One process::

    phonanchor-extract train.json --encoder facebook/wav2vec2-base --layer -1 --out feats/train_w2v2

Several processes or GPUs (each rank encodes every N-th batch, rank 0 merges the
shards into the same store a single process would write)::

    python -m torch.distributed.run --nproc_per_node=4 -m speechbrain_phonanchor.features.cli \\
        train.json --encoder facebook/wav2vec2-base --out feats/train_w2v2

Rerunning an interrupted command resumes it.  Exit status 0 on success, 1 on a store
or manifest problem (the message says what to do).

Example
-------
>>> parse_args(["m.json", "--out", "s", "--layer", "6", "12"]).layer
[6, 12]
"""

import argparse
import json
import logging
import sys

import torch
from speechbrain.utils.distributed import ddp_barrier, ddp_init_group, get_local_rank, get_rank

from speechbrain_phonanchor.audio import AudioError
from speechbrain_phonanchor.features.encoders import DEFAULT_WHISPER_WINDOW, WHISPER_WINDOWS, EncoderError
from speechbrain_phonanchor.features.extraction import (
    DEFAULT_LOADER_WORKERS,
    extract_shard,
    init_store,
    load_encoder,
)
from speechbrain_phonanchor.features.store import DEFAULT_BATCH_SECONDS, StoreError
from speechbrain_phonanchor.features.writer import finalize_store
from speechbrain_phonanchor.manifest import ManifestError

logger = logging.getLogger("phonanchor-extract")


def parse_args(argv=None):
    """Parse the command line (see ``phonanchor-extract --help``)."""
    parser = argparse.ArgumentParser(
        prog="phonanchor-extract",
        description="Extract frozen-encoder features of every utterance of a manifest into a feature store.",
    )
    parser.add_argument("manifest", help="SpeechBrain JSON manifest")
    parser.add_argument("--encoder", default="facebook/wav2vec2-base", help="HF model id or local folder")
    parser.add_argument("--layer", type=int, nargs="+", default=[-1],
                        help="hidden-state index (0 = before the first layer, -1 = last); several are concatenated")
    parser.add_argument("--out", required=True, help="store folder (created; rerun to resume)")
    parser.add_argument("--data-root", default=None, help="corpus folder for {data_root} in the manifest")
    parser.add_argument("--batch-seconds", type=float, default=DEFAULT_BATCH_SECONDS,
                        help="most padded seconds of audio per batch (default %(default)s)")
    parser.add_argument("--whisper-window", choices=WHISPER_WINDOWS, default=DEFAULT_WHISPER_WINDOW,
                        help="Whisper encoders: '30s' pads to Whisper's 30 s window (default %(default)s: its features "
                             "learned better); 'exact' encodes each utterance at its own length (about 10x faster "
                             "on 2-5 s utterances, for fast iteration); part of the store's identity")
    parser.add_argument("--loader-workers", type=int, default=DEFAULT_LOADER_WORKERS,
                        help="processes that read audio ahead of the encoder (0: no overlap; default %(default)s)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the extraction; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    distributed = get_rank() is not None and get_local_rank() is not None
    rank, world_size = get_rank() or 0, 1
    device = args.device or (f"cuda:{get_local_rank() or 0}" if torch.cuda.is_available() else "cpu")
    if distributed:
        ddp_init_group({"distributed_backend": "nccl" if device.startswith("cuda") else "gloo"})
        world_size = torch.distributed.get_world_size()
    layer = args.layer[0] if len(args.layer) == 1 else args.layer
    try:
        encoder = load_encoder(args.encoder, layer=layer, device=device, whisper_window=args.whisper_window)
        if rank == 0:
            init_store(args.manifest, encoder, args.out, args.data_root, args.batch_seconds)
        ddp_barrier()
        extract_shard(args.manifest, encoder, args.out, data_root=args.data_root,
                      batch_seconds=args.batch_seconds, rank=rank, world_size=world_size,
                      progress=not args.no_progress, loader_workers=args.loader_workers)
        ddp_barrier()
        if rank == 0:
            summary = finalize_store(args.manifest, args.out)
            print(json.dumps(summary, indent=2))
        ddp_barrier()
    except (StoreError, ManifestError, EncoderError, AudioError) as err:
        logger.error("%s", err)
        return 1
    finally:
        if distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
