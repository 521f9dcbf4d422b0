"""``phonanchor-grid``: run the experiment grid, make the tables, measure the anchoring effect.

Usage::

    phonanchor-grid run hparams/generic_pair.yaml --out results/grid/nemo_to_emovo \\
        --variants CL BA-CL WA-CL GA-CL AGA-CL DANN in-domain --seeds 1-10 --tasks 4class --workers 2 \\
        --device=cpu --encoder_source=~/.cache/offline-whisper-base --input_size=512 ...
    phonanchor-grid collect results/grid/nemo_to_emovo      # results.csv of a grid stopped part way
    phonanchor-grid tables results/grid/*/results.csv --out docs/results
    phonanchor-grid pseudo results/grid/* --out docs/results/pseudo_labels
    phonanchor-grid splits results/grid/* --manifests results/manifests --out docs/results/target_splits
    phonanchor-grid anchoring results/grid/nemo_to_emovo/runs/4class/AGA-CL/1 --out docs/results/anchoring

``run``: every ``--key=value`` argument it does not know is a ``train.py``
override shared by all runs (SpeechBrain run options such as ``--device`` too).
Finished runs (those with a ``metrics.json``) are skipped, so the same command
resumes a grid.  ``collect``: (re)write ``results.csv`` from the runs finished so far.
``pseudo``: per anchored run, when adaptation started and how accurate each epoch's
pseudo-labels were (scored after training).  ``splits``: the target UAR of every run split by
the target's own splits (train: adapted on; valid, test: never trained on), each variant
against a baseline per split.  ``tables``: every paper table, bootstrap CIs,
t-tests and confusion matrices
from one or more ``results.csv`` (for the held-out and, where present, the
transductive target UAR).  ``anchoring``: Com tables and t-SNE of the
frozen features versus the trained model's segment embeddings for one run.

Example
-------
>>> args, extra = build_parser().parse_known_args(["run", "h.yaml", "--out", "g", "--seeds", "1-3", "--lr=0.01"])
>>> args.seeds, extra_overrides(extra)
(['1-3'], {'lr': '0.01'})
"""

import argparse
import json
import logging
import signal
import sys

from speechbrain_phonanchor.experiments import grid, tables


def build_parser():
    """The argument parser of ``phonanchor-grid``."""
    parser = argparse.ArgumentParser(prog="phonanchor-grid", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) a grid of train.py runs; writes results.csv",
                              allow_abbrev=False)
    run.add_argument("hparams", help="recipe yaml, e.g. hparams/generic_pair.yaml")
    run.add_argument("--out", required=True, help="grid folder (runs/ and results.csv)")
    run.add_argument("--variants", nargs="+", default=list(grid.DEFAULT_VARIANTS),
                     help="NAME[:mono|diph|both]: CL BA-CL WA-CL GA-CL AGA-CL DANN in-domain")
    run.add_argument("--seeds", nargs="+", default=["1-10"], help="seeds, e.g. 1-10 or 1 2 3")
    run.add_argument("--tasks", nargs="+", default=["4class"],
                     help="4class, binary_neu, binary_hap, binary_ang, binary_sad, arousal, valence")
    run.add_argument("--workers", type=int, default=2, help="runs at a time (each with OMP_NUM_THREADS=1 if > 1)")
    run.add_argument("--dry-run", action="store_true", help="print the commands of the unfinished runs and stop")
    collect = commands.add_parser("collect", help="write <grid>/results.csv from the runs finished so far",
                                  allow_abbrev=False)
    collect.add_argument("out", help="grid folder (holds runs/)")
    table = commands.add_parser("tables", help="paper tables, t-tests and confusion matrices from results.csv")
    table.add_argument("results", nargs="+", help="results.csv files (e.g. one per direction)")
    table.add_argument("--out", required=True, help="output folder")
    table.add_argument("--baselines", nargs="+", default=list(tables.BASELINES), help="variants to test against")
    table.add_argument("--no-plots", action="store_true", help="skip the confusion matrices")
    table.add_argument("--resamples", type=int, default=tables.RESAMPLES,
                       help="bootstrap resamples of the confidence intervals (rng seed fixed)")
    table.add_argument("--confidence", type=float, default=tables.CONFIDENCE,
                       help="level of the bootstrap confidence intervals")
    pseudo = commands.add_parser("pseudo", help="pseudo-label accuracy and adaptation diagnostics per anchored run")
    pseudo.add_argument("grids", nargs="+", help="grid folders (each holds runs/)")
    pseudo.add_argument("--out", required=True, help="output folder (pseudo_labels_per_run / _by_variant .csv/.md)")
    splits = commands.add_parser("splits", help="target UAR per target split (adapted-on train, valid, test) per run, "
                                 "and each variant against a baseline per split")
    splits.add_argument("grids", nargs="+", help="grid folders (each holds runs/)")
    splits.add_argument("--manifests", required=True, help="the manifest_folder the runs trained with")
    splits.add_argument("--out", required=True, help="output folder (target_splits_per_run / _vs_<baseline> .csv/.md)")
    splits.add_argument("--baseline", default="CL", help="variant to compare with")
    anchoring = commands.add_parser("anchoring", help="Com and t-SNE before/after anchoring for one trained run")
    anchoring.add_argument("run", help="a finished run folder (holds hyperparams.yaml and save/)")
    anchoring.add_argument("--out", required=True, help="output folder")
    anchoring.add_argument("--min-segments", type=int, default=10, help="fewest segments per corpus for a Com cell")
    anchoring.add_argument("--tsne-points", type=int, default=300, help="most t-SNE points per corpus and emotion")
    return parser


def extra_overrides(extra):
    """``--key=value`` arguments → ``{key: value}``; anything else is an error."""
    overrides = {}
    for argument in extra:
        key, sep, value = argument.partition("=")
        if not key.startswith("--") or not sep:
            raise SystemExit(f"phonanchor-grid run: unrecognised argument {argument!r} (overrides are --key=value)")
        overrides[key[2:]] = value
    return overrides


def write_pseudo_report(grids, out):
    """Write the pseudo-label diagnostics of ``grids`` to ``out`` (CSV and Markdown); return 0."""
    import pathlib

    from speechbrain_phonanchor.experiments.pseudo_quality import pseudo_label_summary, summarise_by_variant
    from speechbrain_phonanchor.experiments.stats import write_table

    per_run = pseudo_label_summary(grids)
    pathlib.Path(out).mkdir(parents=True, exist_ok=True)
    by_variant = summarise_by_variant(per_run)
    for name, frame in (("pseudo_labels_per_run", per_run), ("pseudo_labels_by_variant", by_variant)):
        write_table(frame.round(4).set_index("direction") if not frame.empty else frame, pathlib.Path(out) / name,
                    index_name="direction")
    print(f"wrote pseudo-label diagnostics of {len(per_run)} anchored runs to {out}")
    return 0


def write_split_report(grids, manifests, out, baseline):
    """Write the per-split target UAR of ``grids`` to ``out`` (CSV and Markdown, UAR in %, differences in
    percentage points); return 0."""
    import pathlib

    from speechbrain_phonanchor.experiments.stats import write_table
    from speechbrain_phonanchor.experiments.target_splits import SCORES, split_summary, split_table

    percent_columns = ("mean", "ci_low", "ci_high", "mean_diff", "diff_ci_low", "diff_ci_high")

    per_run = split_table(grids, manifests)
    if per_run.empty:
        raise SystemExit(f"phonanchor-grid splits: no finished run with target_all_predictions.csv under {grids}")
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    percent = per_run.assign(**{s: (100 * per_run[s]).round(2) for s in SCORES})
    write_table(percent.set_index("direction"), out / "target_splits_per_run", index_name="direction")
    summary = split_summary(per_run, baseline)
    summary = summary.assign(**{c: (100 * summary[c]).round(2) for c in percent_columns if c in summary},
                             t=summary["t"].round(3), p=summary["p"].round(4))
    write_table(summary.set_index("direction"), out / f"target_splits_vs_{baseline}", index_name="direction")
    print(f"wrote the per-split target UAR of {len(per_run)} runs to {out}")
    return 0


def main(argv=None):
    """Entry point of ``phonanchor-grid``; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args, extra = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.command != "run" and extra:
        raise SystemExit(f"phonanchor-grid {args.command}: unrecognised arguments {extra}")
    if args.command == "run":
        overrides = extra_overrides(extra)
        variants = grid.parse_variants(args.variants)
        seeds = grid.parse_seeds(args.seeds)
        if args.dry_run:
            for run in grid.plan_runs(args.out, variants, seeds, args.tasks):
                if not run.finished:
                    print(" ".join(grid.command(run, args.hparams, overrides)))
            return 0
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the runs started are stopped too
        summary = grid.run_grid(args.hparams, args.out, variants, seeds, args.tasks, overrides, args.workers)
        print(json.dumps(summary, indent=2))
        return 1 if summary["failed"] else 0
    if args.command == "collect":
        path = grid.write_results(args.out)
        print(f"wrote {path}")
        return 0
    if args.command == "tables":
        written = tables.make_tables(args.results, args.out, args.baselines, plots=not args.no_plots,
                                     confidence=args.confidence, resamples=args.resamples)
        print(f"wrote {len(written)} tables to {args.out}: {', '.join(written)}")
        return 0
    if args.command == "pseudo":
        return write_pseudo_report(args.grids, args.out)
    if args.command == "splits":
        return write_split_report(args.grids, args.manifests, args.out, args.baseline)
    from speechbrain_phonanchor.experiments.anchoring_effect import anchoring_effect

    summary = anchoring_effect(args.run, args.out, min_segments=args.min_segments, tsne_points=args.tsne_points)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
