"""``phonanchor-analyze``: analysis subset → formants, CS / ED / Com, anchors, t-SNE, report.

Usage::

    phonanchor-analyze --source manifests/nemo_pl --target manifests/emovo_it \\
        --source-store features/nemo_pl --target-store features/emovo_it --out analysis/

``--source`` / ``--target`` name a validation manifest JSON, or a manifest
folder holding one (``valid.json``, ``dev.json`` or ``validation.json``).  The
output folder receives ``anchors.yaml``, ``commonality.csv`` / ``.md``,
``formant_tokens.csv``, ``formant_means.csv``, ``vowel_space_mono.png``,
``vowel_space_diph.png``, ``tsne.png``, ``summary.json`` and ``report.md``.

Example
-------
>>> build_parser().parse_args(["--source", "a", "--target", "b", "--source-store", "s",
...                            "--target-store", "t", "--out", "o"]).per_emotion
500
"""

import argparse
import pathlib
import sys

import pandas as pd

from speechbrain_phonanchor.analysis import formants as fm
from speechbrain_phonanchor.analysis.commonality import (
    collect_segments,
    commonality_markdown,
    commonality_table,
    write_commonality,
)
from speechbrain_phonanchor.analysis.report import write_report
from speechbrain_phonanchor.analysis.selection import select_anchors, write_anchors
from speechbrain_phonanchor.analysis.subset import draw_subset
from speechbrain_phonanchor.analysis.tsne import plot_tsne
from speechbrain_phonanchor.features.store import FeatureStore, StoreError
from speechbrain_phonanchor.fileio import atomic_write_json, atomic_write_text
from speechbrain_phonanchor.manifest import ManifestError, load_manifest

VALID_NAMES = ("valid.json", "dev.json", "validation.json")


def resolve_manifest(path):
    """The validation manifest at ``path``: the file itself, or the first of ``VALID_NAMES`` in a folder."""
    path = pathlib.Path(path)
    if path.is_dir():
        for name in VALID_NAMES:
            if (path / name).is_file():
                return path / name
        raise ManifestError(f"{path} holds no validation manifest ({', '.join(VALID_NAMES)})")
    return path


def corpus_name(manifest_path, given=None):
    """``given``, else the manifest's folder name (``manifests/nemo_pl/valid.json`` → ``nemo_pl``)."""
    return given or pathlib.Path(manifest_path).resolve().parent.name


def build_parser():
    """The argument parser of ``phonanchor-analyze``."""
    parser = argparse.ArgumentParser(prog="phonanchor-analyze", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="source validation manifest (JSON or folder)")
    parser.add_argument("--target", required=True, help="target validation manifest (JSON or folder)")
    parser.add_argument("--source-store", required=True, help="source feature store")
    parser.add_argument("--target-store", required=True, help="target feature store")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--source-name", help="source corpus name (default: manifest folder name)")
    parser.add_argument("--target-name", help="target corpus name (default: manifest folder name)")
    parser.add_argument("--source-data-root", help="resolves {data_root} in source wav paths")
    parser.add_argument("--target-data-root", help="resolves {data_root} in target wav paths")
    parser.add_argument("--per-emotion", type=int, default=500, help="utterances per emotion and corpus (paper: 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset draw and t-SNE")
    parser.add_argument("--emotions", nargs="+", help="emotions to analyse (default: those of the source subset)")
    parser.add_argument("--min-segments", type=int, default=10,
                        help="vowels with fewer segments in either corpus (per emotion) are excluded")
    parser.add_argument("--half-width", type=float, default=0.12, help="segment half-width around a vowel centre (s)")
    parser.add_argument("--tsne-points", type=int, default=300, help="most t-SNE points per corpus and emotion")
    parser.add_argument("--no-formants", action="store_true", help="skip the formant view")
    parser.add_argument("--no-tsne", action="store_true", help="skip the t-SNE figure")
    return parser


def run_formants(subsets, names, out):
    """Measure, normalise, tabulate and plot formants; return the report's formant dict."""
    measured = {name: fm.measure_formants(subsets[name].entries, name, progress=True) for name in names}
    tokens = fm.nearey_normalise(pd.concat([tokens for tokens, _ in measured.values()], ignore_index=True))
    means = fm.formant_means(tokens)
    atomic_write_text(out / "formant_tokens.csv", tokens.to_csv(index=False, float_format="%.4f"))
    atomic_write_text(out / "formant_means.csv", means.to_csv(index=False, float_format="%.4f"))
    figures = {}
    for kind, caption in (("mono", "Vowel spaces, monophthongs"), ("diph", "Vowel spaces, diphthongs")):
        fm.plot_vowel_spaces(means, kind, out / f"vowel_space_{kind}.png", corpora=list(names))
        figures[caption] = f"vowel_space_{kind}.png"
    return {"sanity": fm.sanity_check(tokens), "figures": figures,
            "skipped": {name: skipped for name, (_, skipped) in measured.items()}}


def main(argv=None):
    """Run the whole analysis; return 0 on success, 2 on unusable input."""
    args = build_parser().parse_args(argv)
    out = pathlib.Path(args.out)
    try:
        paths = {"source": resolve_manifest(args.source), "target": resolve_manifest(args.target)}
        names = (corpus_name(paths["source"], args.source_name), corpus_name(paths["target"], args.target_name))
        if names[0] == names[1]:
            names = (f"{names[0]} (source)", f"{names[1]} (target)")
        manifests = {names[0]: load_manifest(paths["source"], data_root=args.source_data_root),
                     names[1]: load_manifest(paths["target"], data_root=args.target_data_root)}
        source_store = FeatureStore.open(args.source_store)
        # Both corpora must be encoded alike, or their features cannot be compared.
        same_encoder = {key: source_store.config[key] for key in ("encoder", "layers")}
        stores = {names[0]: source_store, names[1]: FeatureStore.open(args.target_store, expect=same_encoder)}
    except (ManifestError, StoreError) as err:
        print(f"phonanchor-analyze: {err}", file=sys.stderr)
        return 2
    subsets = {names[0]: draw_subset(manifests[names[0]], args.per_emotion, args.seed, args.emotions)}
    emotions = args.emotions or list(subsets[names[0]].available)
    subsets[names[1]] = draw_subset(manifests[names[1]], args.per_emotion, args.seed, emotions)

    formants = None if args.no_formants else run_formants(subsets, names, out)
    segments, segment_skips = {}, {}
    for name in names:
        segments[name], segment_skips[name] = collect_segments(subsets[name].entries, stores[name], args.half_width,
                                                               progress=True)
    table = commonality_table(segments[names[0]], segments[names[1]], args.min_segments, emotions)
    write_commonality(table, out)
    anchors, excluded = select_anchors(table)
    write_anchors(out / "anchors.yaml", anchors, excluded, names[0], names[1], args.min_segments)
    tsne_figure = None
    if not args.no_tsne:
        plot_tsne(segments, out / "tsne.png", emotions, args.tsne_points, args.seed)
        tsne_figure = "tsne.png"
    settings = {"source manifest": f"`{paths['source']}`", "target manifest": f"`{paths['target']}`",
                "source store": f"`{args.source_store}`", "target store": f"`{args.target_store}`",
                "encoder (layers)": f"{same_encoder['encoder']} ({same_encoder['layers']})",
                "utterances per emotion (at most)": args.per_emotion, "seed": args.seed,
                "min segments per vowel, emotion and corpus": args.min_segments,
                "segment half-width (s)": args.half_width}
    write_report(out / "report.md", names=names, settings=settings, subsets=subsets,
                 commonality_md=commonality_markdown(table), segment_skips=segment_skips, anchors=anchors,
                 excluded=excluded, formants=formants, tsne_figure=tsne_figure)
    atomic_write_json(out / "summary.json", {
        "names": list(names), "subset": {name: subsets[name].counts for name in names},
        "subset_skipped": {name: dict(subsets[name].skipped) for name in names},
        "segment_skipped": {name: dict(segment_skips[name]) for name in names},
        "formant_skipped": {name: dict(formants["skipped"][name]) for name in names} if formants else None,
        "sanity": formants["sanity"] if formants else None,
    })
    print(f"phonanchor-analyze: wrote {out / 'report.md'} and {out / 'anchors.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
