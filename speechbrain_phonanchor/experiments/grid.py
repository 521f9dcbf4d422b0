"""The experiment grid: variants × tasks × seeds of ``train.py`` for one language pair.

Each run is one ``train.py`` subprocess with command-line overrides, writing into
``<out>/runs/<task>/<variant folder>/<seed>/``; a run is *finished* when its
``metrics.json`` exists, so rerunning the same grid only runs what is missing
(an interrupted run resumes from its own checkpoints).  Before any run starts,
the artefacts every run reads (manifests, feature stores, anchors file) are made
once in this process by ``train.prepare_stage``, so parallel runs only read the
stores and nothing is encoded twice.  Runs go to ``workers`` processes at a time
(each with ``OMP_NUM_THREADS=1`` when there are several), ordered seed by seed so
that a grid cut short still holds every variant for its first seeds.  At the end
every ``metrics.json`` under ``<out>/runs`` is gathered into ``<out>/results.csv``
(one row per run; the columns of :mod:`speechbrain_phonanchor.experiments.stats`
plus every metric and setting of the run).

Variants are written ``NAME[:KIND]``: ``CL``, ``BA-CL``, ``WA-CL``, ``GA-CL``,
``AGA-CL`` (anchored; ``KIND`` = ``mono`` | ``diph`` | ``both``, default ``both``),
``DANN`` and ``in-domain``.

Example
-------
>>> [v.label for v in parse_variants(["CL", "AGA-CL:mono", "AGA-CL", "in-domain"])]
['CL', 'AGA-CL (mono)', 'AGA-CL', 'in-domain']
>>> runs = plan_runs("grid", parse_variants(["CL", "AGA-CL:diph"]), seeds=[1, 2], tasks=["4class"])
>>> [(r.variant.folder, r.seed) for r in runs]
[('CL', 1), ('AGA-CL_diph', 1), ('CL', 2), ('AGA-CL_diph', 2)]
>>> runs[1].overrides()["variant"], runs[1].overrides()["vowel_kind"]
('AGA', 'diph')
"""

import importlib.util
import json
import logging
import math
import os
import pathlib
import subprocess
import sys
import time
from dataclasses import dataclass

import pandas as pd

from speechbrain_phonanchor.fileio import atomic_write_text

logger = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRAIN_SCRIPT = ROOT / "train.py"
ANCHORED = ("BA", "WA", "GA", "AGA")
PLAIN = {"CL": "CL", "DANN": "DANN", "in-domain": "in-domain"}
KINDS = ("mono", "diph", "both")
DEFAULT_VARIANTS = ("CL", "BA-CL", "WA-CL", "GA-CL", "AGA-CL", "DANN", "in-domain")
FIRST_COLUMNS = ["direction", "task", "variant", "vowel_kind", "seed", "uar", "transductive_uar", "transductive_n",
                 "valid_uar", "epochs", "best_epoch", "wall_time_s", "encoder", "lr", "adapt_weight", "dann_weight"]
OPTIONAL_METRICS = {"transductive_uar": "target_transductive_uar",  # results.csv column → metrics.json key
                    "transductive_n": "target_transductive_n"}  # (runs before them have none)


@dataclass(frozen=True)
class Variant:
    """One row of the paper's tables: ``train.py``'s ``variant`` and ``vowel_kind``.

    ``label`` is the table row (``AGA-CL``, ``AGA-CL (mono)``, ``DANN``, ...): an
    anchored variant with both vowel kinds is named plainly.
    """

    train_variant: str
    vowel_kind: str = "both"

    @property
    def name(self):
        """``CL``, ``BA-CL``, ..., ``DANN``, ``in-domain``."""
        return f"{self.train_variant}-CL" if self.train_variant in ANCHORED else self.train_variant

    @property
    def label(self):
        """The table row label."""
        if self.train_variant in ANCHORED and self.vowel_kind != "both":
            return f"{self.name} ({self.vowel_kind})"
        return self.name

    @property
    def folder(self):
        """The run folder name (no spaces)."""
        return self.name if self.label == self.name else f"{self.name}_{self.vowel_kind}"


def parse_variant(spec):
    """Parse ``NAME[:KIND]`` (``AGA-CL:mono``, ``GA``, ``CL``, ``DANN``, ``in-domain``) into a :class:`Variant`."""
    name, _, kind = spec.partition(":")
    kind = kind or "both"
    if kind not in KINDS:
        raise ValueError(f"vowel kind of {spec!r} must be one of {KINDS}")
    if name in PLAIN:
        if _:
            raise ValueError(f"{name} takes no vowel kind ({spec!r})")
        return Variant(PLAIN[name])
    base = name[:-3] if name.endswith("-CL") else name
    if base not in ANCHORED:
        raise ValueError(f"unknown variant {spec!r}; use {', '.join(DEFAULT_VARIANTS)} (anchored ones with :KIND)")
    return Variant(base, kind)


def parse_variants(specs):
    """Parse several variant specs, dropping repeats."""
    return list(dict.fromkeys(parse_variant(spec) for spec in specs))


def parse_seeds(specs):
    """Seeds from ``["1-10"]``, ``["1", "2", "5"]`` or ``["1-3", "7"]``.

    >>> parse_seeds(["1-3", "7"])
    [1, 2, 3, 7]
    """
    seeds = []
    for spec in specs:
        low, _, high = str(spec).partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return list(dict.fromkeys(seeds))


@dataclass(frozen=True)
class Run:
    """One run of the grid."""

    variant: Variant
    task: str
    seed: int
    output_folder: pathlib.Path

    @property
    def metrics_file(self):
        """``metrics.json`` of the run (train.py's default ``metrics_file``): its presence means the run is finished."""
        return self.output_folder / "metrics.json"

    @property
    def finished(self):
        """True once the run has written its metrics."""
        return self.metrics_file.is_file()

    def overrides(self):
        """The ``train.py`` overrides that make this run."""
        return {"variant": self.variant.train_variant, "vowel_kind": self.variant.vowel_kind, "task": self.task,
                "seed": self.seed, "output_folder": str(self.output_folder)}


def plan_runs(out_dir, variants, seeds, tasks):
    """Every run of the grid, seed by seed (then task, then variant)."""
    out_dir = pathlib.Path(out_dir)
    return [Run(variant, task, seed, out_dir / "runs" / task / variant.folder / str(seed))
            for seed in seeds for task in tasks for variant in variants]


def yaml_overrides(overrides):
    """The overrides that are yaml keys as a yaml string, as ``train.py`` parses its ``--key=value``
    arguments, leaving out SpeechBrain run options (``device``, ``debug``, ...).

    >>> print(yaml_overrides({"lr": "0.01", "device": "cpu", "variant": "AGA"}))
    lr: 0.01
    variant: AGA
    """
    from speechbrain.utils.run_opts import RunOptions

    run_options = set(RunOptions().as_dict())
    return "\n".join(f"{key}: {value}" for key, value in overrides.items() if key not in run_options)


def load_train_module(train_script=TRAIN_SCRIPT):
    """Import the recipe's ``train.py`` (it lives at the repository root, outside the package)."""
    spec = importlib.util.spec_from_file_location("phonanchor_train_script", train_script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare_artefacts(hparams_file, overrides, variants, train_script=TRAIN_SCRIPT):
    """Make the manifests, feature stores and (when a variant is anchored) the anchors file, once.

    The hparams are loaded as the most demanding variant of the grid would load them,
    so every split any run reads is extracted here.
    """
    from hyperpyyaml import load_hyperpyyaml

    train = load_train_module(train_script)
    demanding = next((v for v in variants if v.train_variant in ANCHORED), None) or next(
        (v for v in variants if v.train_variant != "CL"), variants[0])
    settings = dict(overrides, variant=demanding.train_variant, vowel_kind=demanding.vowel_kind)
    with open(hparams_file, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, yaml_overrides(settings))
    train.fill_optional(hparams)
    started = time.time()
    train.prepare_stage(hparams)
    return time.time() - started


def command(run, hparams_file, overrides, train_script=TRAIN_SCRIPT, python=sys.executable):
    """The ``train.py`` command line of ``run`` (``overrides`` first, the run's own settings last)."""
    return _command([str(python), str(train_script), str(hparams_file)], overrides, run)


def _command(prefix, overrides, run):
    return prefix + [f"--{key}={value}" for key, value in dict(overrides, **run.overrides()).items()]


def execute(runs, hparams_file, overrides, workers=2, train_script=TRAIN_SCRIPT, python=sys.executable):
    """Run ``runs`` as ``train.py`` subprocesses, ``workers`` at a time; returns ``{run: return code}``.

    Each run's stdout and stderr go to ``<output_folder>/grid_run.log``.
    """
    env = dict(os.environ)
    if workers > 1:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    queue, active, codes = list(runs), {}, {}
    try:
        _drain(queue, active, codes, workers, [str(python), str(train_script), str(hparams_file)], overrides, env)
    finally:  # interrupted (Ctrl-C; SIGTERM under phonanchor-grid): stop the runs this grid started
        for process, log in active.values():
            process.terminate()
            process.wait()
            log.close()
    return codes


def _drain(queue, active, codes, workers, prefix, overrides, env):
    """Start queued runs while fewer than ``workers`` are active; collect the finished ones."""
    while queue or active:
        while queue and len(active) < workers:
            run = queue.pop(0)
            run.output_folder.mkdir(parents=True, exist_ok=True)
            log = open(run.output_folder / "grid_run.log", "w", encoding="utf-8")  # closed when the run ends
            cmd = _command(prefix, overrides, run)
            logger.info("start %s %s seed %s: %s", run.task, run.variant.label, run.seed, " ".join(cmd))
            active[run] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
        for run, (process, log) in list(active.items()):
            if process.poll() is not None:
                log.close()
                codes[run] = process.returncode
                del active[run]
                status = "done" if process.returncode == 0 else f"FAILED ({process.returncode}), see grid_run.log"
                logger.info("%s %s seed %s: %s", run.task, run.variant.label, run.seed, status)
        time.sleep(0.2)


def collect_results(out_dir):
    """Every finished run under ``<out_dir>/runs`` as one DataFrame (one row per run).

    ``uar`` is the held-out target-test UAR, ``transductive_uar`` the UAR over every target
    utterance and ``transductive_n`` their number (empty for runs whose ``metrics.json`` predates
    them), ``variant`` the table label (anchored runs with ``target_labels: analysis_subset`` get
    `` [analysis subset]``, runs with a ``run_label`` get `` [<run_label>]``, and runs from before
    ``run_label`` existed with a ``pseudo_selection`` other than ``top_fraction`` get `` [<selection>]``)
    and ``train_variant`` train.py's own value; the other columns are the
    run's ``metrics.json`` (``source_valid_uar_final``, ``source_at_chance``, ... where present).
    """
    rows = []
    for path in sorted(pathlib.Path(out_dir).glob("runs/*/*/*/metrics.json")):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        rows.append(dict(metrics, **result_columns(metrics), variant=table_label(metrics),
                         train_variant=metrics["variant"]))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in OPTIONAL_METRICS:  # NaN (empty cells) where a run has none (or null)
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["transductive_n"] = frame["transductive_n"].astype("Int64")  # whole numbers in results.csv
    first = [c for c in FIRST_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]].sort_values(
        ["direction", "task", "variant", "seed"], kind="stable").reset_index(drop=True)


def table_label(metrics):
    """The row label of a run in every table, from its ``metrics.json``.

    >>> table_label({"variant": "AGA", "vowel_kind": "both", "run_label": "old defaults"})
    'AGA-CL [old defaults]'
    >>> table_label({"variant": "AGA", "vowel_kind": "mono", "run_label": "", "target_labels": "analysis_subset"})
    'AGA-CL (mono) [analysis subset]'
    """
    variant = Variant(metrics["variant"], metrics["vowel_kind"])
    label = variant.label
    if metrics.get("run_label"):
        label += f" [{metrics['run_label']}]"  # named by the user (e.g. "old defaults")
    if variant.train_variant in ANCHORED and metrics.get("target_labels") == "analysis_subset":
        label += " [analysis subset]"  # anchored on the labelled analysis subset instead of pseudo-labels
    elif (variant.train_variant in ANCHORED and "run_label" not in metrics
          and metrics.get("pseudo_selection") not in (None, "top_fraction")):
        label += f" [{metrics['pseudo_selection']}]"  # runs from before run_label: another rule than theirs
    return label


def result_columns(metrics):
    """The ``results.csv`` columns named apart from the ``metrics.json`` keys they come from;
    NaN for an optional metric the run did not record.

    >>> result_columns({"source": "a", "target": "b", "target_test_uar": 0.4})
    {'direction': 'a→b', 'uar': 0.4, 'transductive_uar': nan, 'transductive_n': nan}
    """
    return dict({"direction": f"{metrics['source']}→{metrics['target']}", "uar": metrics["target_test_uar"]},
                **{column: metrics.get(key, math.nan) for column, key in OPTIONAL_METRICS.items()})


def run_grid(hparams_file, out_dir, variants=DEFAULT_VARIANTS, seeds=range(1, 11), tasks=("4class",),
             overrides=None, workers=2, train_script=TRAIN_SCRIPT, python=sys.executable):
    """Run the grid (only its unfinished runs) and write ``<out_dir>/results.csv``.

    Arguments
    ---------
    hparams_file : str or Path
        The recipe yaml (e.g. ``hparams/generic_pair.yaml``).
    out_dir : str or Path
        Grid folder: ``runs/`` and ``results.csv`` go there.
    variants : sequence of str or Variant
        Variant specs (see the module docstring).
    seeds, tasks : sequence
        Seeds and tasks (``4class``, ``binary_<emotion>``, ``arousal``, ``valence``).
    overrides : dict, optional
        ``train.py`` overrides shared by every run (corpora, encoder, epochs...).
    workers : int
        Runs at a time.
    train_script, python : str or Path
        The recipe script and the interpreter that runs it.

    Returns
    -------
    dict
        ``planned``, ``skipped`` (already finished), ``ran``, ``failed`` (run folders),
        ``prepare_s`` and ``runs_s`` (wall seconds), ``results`` (path of results.csv).
    """
    out_dir = pathlib.Path(out_dir)
    variants = [v if isinstance(v, Variant) else parse_variant(v) for v in variants]
    overrides = {k: str(v) for k, v in (overrides or {}).items()}
    runs = plan_runs(out_dir, variants, list(seeds), list(tasks))
    pending = [run for run in runs if not run.finished]
    summary = {"planned": len(runs), "skipped": len(runs) - len(pending), "ran": 0, "failed": [],
               "prepare_s": 0.0, "runs_s": 0.0}
    if pending:
        summary["prepare_s"] = prepare_artefacts(hparams_file, overrides, variants, train_script)
        started = time.time()
        codes = execute(pending, hparams_file, overrides, workers, train_script, python)
        summary["runs_s"] = time.time() - started
        summary["ran"] = len(codes)
        summary["failed"] = [str(run.output_folder) for run, code in codes.items() if code != 0 or not run.finished]
    summary["results"] = str(write_results(out_dir))
    return summary


def write_results(out_dir):
    """Gather the finished runs under ``<out_dir>/runs`` into ``<out_dir>/results.csv``; return its path.

    ``run_grid`` does this at its end; call it alone for a grid that was stopped part way.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.csv", collect_results(out_dir).to_csv(index=False))
    return out_dir / "results.csv"
