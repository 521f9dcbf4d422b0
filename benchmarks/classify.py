#!/usr/bin/env python3
"""Time ``classify_file`` against the bare frozen-encoder forward on the same file (goal: ≤ 1.15×).

    python benchmarks/classify.py --model demo_output/model [--file speech.wav] [--text "..."]
    python benchmarks/classify.py --encoder ~/.cache/offline-whisper-base --file speech.wav

``--model`` loads an exported folder through ``foreign_class``; ``--encoder`` builds a
classifier with an untrained network on that encoder (same code path and the same
cost as a trained one: the weights do not change the work).  Both columns use the
same encoder instance; ``classify_file`` also reads and resamples the file, locates
vowels (chunks without ``--text``, the built-in aligner with it) and runs the network.
The median of ``--repeats`` runs after one warm-up is reported.
"""

import argparse
import statistics
import time

import torch

from speechbrain_phonanchor.audio import load_audio


def untrained_classifier(encoder_source, classes=("neu", "hap", "ang", "sad"), layer=-1):
    """A :class:`PhonAnchorClassifier` with a randomly initialised network on ``encoder_source``."""
    from speechbrain.dataio.encoder import CategoricalEncoder

    from speechbrain_phonanchor.features.encoders import FrozenEncoder
    from speechbrain_phonanchor.inference import PhonAnchorClassifier
    from speechbrain_phonanchor.model import (
        CrossPhoneticAttention,
        EmotionClassifier,
        PhonAnchorNet,
        SegmentEncoder,
        UtterancePooling,
        VowelPrototypeBank,
    )

    dim = FrozenEncoder(encoder_source, layer).dim
    torch.manual_seed(0)
    bank = VowelPrototypeBank(dim)
    bank.fit([(torch.randn(110, dim).numpy(), [(10 * v, 10 * v + 10, v) for v in range(11)])])
    model = PhonAnchorNet(CrossPhoneticAttention(dim, 8, bank), SegmentEncoder(dim, 256, 4, 2, 1024),
                          UtterancePooling(256), EmotionClassifier(256, len(classes), 128))
    labels = CategoricalEncoder()
    labels.update_from_iterable(classes)
    hparams = {"encoder_source": encoder_source, "encoder_layer": layer, "label_encoder": labels, "half_width": 0.12,
               "chunk_width": 0.24, "min_duration": 0.1, "language": "en", "aligners": {}}
    return PhonAnchorClassifier(modules={"model": model}, hparams=hparams, run_opts={"device": "cpu"})


def median_seconds(function, repeats):
    """Median wall time of ``function()`` over ``repeats`` runs after one warm-up run."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="exported folder (phonanchor-export)")
    source.add_argument("--encoder", help="encoder folder or HF id (untrained network)")
    parser.add_argument("--file", help="audio file (default: the model's example.wav)")
    parser.add_argument("--text", help="transcript: also time classification with the aligner")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.model:
        from speechbrain_phonanchor.export import load_exported

        classifier = load_exported(args.model)
        path = args.file or f"{args.model}/example.wav"
    else:
        classifier = untrained_classifier(args.encoder)
        path = args.file
        if path is None:
            parser.error("--file is needed with --encoder")
    wav, info = load_audio(path)
    encoder = median_seconds(lambda: classifier.encoder.encode_list([wav]), args.repeats)
    rows = [("bare encoder forward", encoder)]
    rows.append(("classify_file (chunks)", median_seconds(lambda: classifier.classify_file(path), args.repeats)))
    if args.text:
        rows.append(("classify_file (text → aligner)",
                     median_seconds(lambda: classifier.classify_file(path, text=args.text), args.repeats)))
    print(f"file {path}: {info.duration:.2f} s at {info.sample_rate} Hz, {info.channels} channel(s); "
          f"encoder {classifier.hparams.encoder_source}; torch threads {torch.get_num_threads()}")
    print(f"{'':32s} {'median s':>9s} {'× encoder':>10s}")
    for name, seconds in rows:
        print(f"{name:32s} {seconds:9.4f} {seconds / encoder:10.3f}")
    return rows


if __name__ == "__main__":
    main()
