"""``phonanchor-export``: turn a training run into a folder ready for the Hugging Face Hub.

Usage::

    phonanchor-export results/src_to_tgt/wav2vec2_base/4class/AGA_both/1986 exported/aga_model
    phonanchor-export <experiment dir> <out dir> --aligner aligned/zh/model --example hello.wav
    phonanchor-export <experiment dir> <out dir> --push my-user/phonanchor-aga   # needs network + HF token

The folder holds:

- ``hyperparams.yaml`` — the network, the encoder, the segmentation settings and a
  ``Pretrainer`` whose paths are ``<pretrained_path>/model.ckpt`` and
  ``<pretrained_path>/label_encoder.txt``; ``pretrained_path`` is the folder itself
  (the Hub repo id in a pushed copy);
- ``custom_interface.py`` — :class:`~speechbrain_phonanchor.inference.PhonAnchorClassifier`;
- ``model.ckpt`` — the best checkpoint by source-validation UAR (its buffers carry the
  target vowel prototype bank the attention uses at inference), ``label_encoder.txt``;
- ``anchors.yaml`` — the anchor vowels the run used (variants other than CL);
- ``encoder/`` — a copy of the frozen encoder when training used a local folder
  (an encoder given as a Hub id is referenced, not copied);
- ``aligners/<lang>/`` — the built-in aligner's saved model for each language it was
  found for (the run's TextGrid folders' ``align_report.json``, or ``--aligner``);
- ``example.wav`` and ``README.md`` (the model card: data, variant, UAR table,
  intended use, limits).

Load it offline with :func:`load_exported` (``foreign_class`` with
``FetchConfig(allow_network=False)``).  A folder that was moved after export
loads with ``overrides={"pretrained_path": <new folder>}``.

Example
-------
>>> import tempfile
>>> main(["/nonexistent", tempfile.mkdtemp()])
Traceback (most recent call last):
...
SystemExit: phonanchor-export: /nonexistent/hyperparams.yaml not found: give the output folder of a training run
"""

import argparse
import csv
import json
import logging
import pathlib
import shutil
import sys

from speechbrain_phonanchor.brain import uar

logger = logging.getLogger(__name__)

CLASSNAME = "PhonAnchorClassifier"
INTERFACE_FILE = "custom_interface.py"
MIN_DURATION = 0.1  # seconds of audio a classification needs at least
MODEL_KEYS = ("input_size", "attention_heads", "d_model", "encoder_heads", "encoder_layers", "d_ffn", "dropout",
              "pooling_mode", "classifier_hidden", "prototypes_per_vowel")

INTERFACE = '''"""Inference interface of a speechbrain-phonanchor model (``pip install speechbrain-phonanchor``)."""

from speechbrain_phonanchor.inference import PhonAnchorClassifier  # noqa: F401
'''

HYPERPARAMS = """\
# Inference hyperparameters of a speechbrain-phonanchor (AGA-CL) emotion recogniser, written by phonanchor-export.
# Load:  foreign_class(source=<this folder>, pymodule_file="custom_interface.py", classname="{classname}")
# A moved folder: add overrides={{"pretrained_path": "<new folder>"}}.
pretrained_path: {pretrained_path}

# ---- frozen encoder (must be the one the model was trained with) ----
encoder_source: {encoder_source}
bundled_encoder: {bundled_encoder}
encoder_layer: {encoder_layer}
whisper_window: {whisper_window}   # Whisper encoders: exact | 30s, as the training features were made
encoder_fingerprint: {encoder_sha}

# ---- segmentation ----
half_width: {half_width}   # seconds around each vowel centre
chunk_width: {chunk_width}   # seconds per fixed chunk when no vowel is located
min_duration: {min_duration}   # shorter audio is refused
language: {language}   # default language of transcripts (the target language)
textgrid_phone_set: espeak   # phone set of TextGrids given to classify_file
aligners: {aligners}

# ---- network ----
input_size: {input_size}
n_classes: {n_classes}

prototypes: !new:speechbrain_phonanchor.model.VowelPrototypeBank
    input_size: !ref <input_size>
    per_vowel: {prototypes_per_vowel}

model: !new:speechbrain_phonanchor.model.PhonAnchorNet
    attention: !new:speechbrain_phonanchor.model.CrossPhoneticAttention
        input_size: !ref <input_size>
        n_heads: {attention_heads}
        prototypes: !ref <prototypes>
        dropout: {dropout}
    encoder: !new:speechbrain_phonanchor.model.SegmentEncoder
        input_size: !ref <input_size>
        d_model: {d_model}
        n_heads: {encoder_heads}
        n_layers: {encoder_layers}
        d_ffn: {d_ffn}
        dropout: {dropout}
    pooling: !new:speechbrain_phonanchor.model.UtterancePooling
        input_size: {d_model}
        mode: {pooling_mode}
    classifier: !new:speechbrain_phonanchor.model.EmotionClassifier
        input_size: {d_model}
        n_classes: !ref <n_classes>
        hidden_size: {classifier_hidden}
        dropout: {dropout}

modules:
    model: !ref <model>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <model>
        label_encoder: !ref <label_encoder>
    paths:
        model: !ref <pretrained_path>/model.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""


class ExportError(ValueError):
    """An experiment folder that cannot be exported; the message says what is missing."""


def load_experiment(experiment_dir):
    """Load ``<experiment_dir>/hyperparams.yaml`` (as saved by train.py) into a dict."""
    from hyperpyyaml import load_hyperpyyaml

    path = pathlib.Path(experiment_dir) / "hyperparams.yaml"
    if not path.is_file():
        raise ExportError(f"{path} not found: give the output folder of a training run")
    with open(path, encoding="utf-8") as handle:
        return load_hyperpyyaml(handle)


def best_checkpoint(save_folder):
    """The checkpoint with the best source-validation UAR in ``save_folder``."""
    from speechbrain.utils.checkpoints import Checkpointer

    if not pathlib.Path(save_folder).is_dir():
        raise ExportError(f"{save_folder} does not exist: the run has not been trained")
    checkpoint = Checkpointer(save_folder).find_checkpoint(max_key="UAR")
    if checkpoint is None or not (checkpoint.path / "model.ckpt").is_file():
        raise ExportError(f"no checkpoint with a model.ckpt in {save_folder}: the run has not finished an epoch")
    return checkpoint


def recall_table(predictions_file, classes):
    """Per-class recall and UAR of the rows of a predictions CSV that have a label.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = path.write_text("id,label,prediction\\na,neu,neu\\nb,hap,neu\\nc,hap,hap\\n")
    >>> recall_table(path, ["neu", "hap"])
    {'n': 3, 'recall': {'neu': 1.0, 'hap': 0.5}, 'UAR': 0.75}
    """
    with open(predictions_file, encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("label")]
    if not rows:
        return None
    recall = {}
    for label in classes:
        own = [row for row in rows if row["label"] == label]
        recall[label] = sum(row["prediction"] == label for row in own) / len(own) if own else None
    return {"n": len(rows), "recall": recall, "UAR": uar([r["label"] for r in rows], [r["prediction"] for r in rows])}


def find_aligners(hparams, extra=()):
    """``{lang: model dir}`` of built-in aligner models: ``extra`` dirs and those the run's TextGrids came from."""
    from speechbrain_phonanchor.align import AcousticModel

    candidates = [pathlib.Path(p) for p in extra]
    for side in ("source", "target"):
        folder = hparams.get(f"{side}_textgrid_folder")
        if not folder:
            continue
        report = pathlib.Path(folder) / "align_report.json"
        if report.is_file():
            candidates.append(pathlib.Path(json.loads(report.read_text(encoding="utf-8"))["model_dir"]))
        candidates.append(pathlib.Path(folder) / "model")
    found = {}
    for folder in candidates:
        if AcousticModel.exists(folder):
            lang = json.loads((folder / "model.json").read_text(encoding="utf-8"))["lang"]
            found.setdefault(lang, folder)
        elif folder in map(pathlib.Path, extra):
            raise ExportError(f"{folder} holds no saved aligner model (model.pkl + model.json)")
    return found


class Inside(str):
    """A path inside the exported folder: written as ``!ref <pretrained_path>/<path>``."""


def _yaml_value(value):
    """A scalar as hyperpyyaml reads it back (None → null, strings JSON-quoted, :class:`Inside` as a ``!ref``).

    >>> _yaml_value(None), _yaml_value(0.12), _yaml_value("a b"), _yaml_value(Inside("encoder"))
    ('null', '0.12', '"a b"', '!ref <pretrained_path>/encoder')
    """
    if isinstance(value, Inside):
        return f"!ref <pretrained_path>/{value}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def write_hyperparams(path, settings):
    """Fill :data:`HYPERPARAMS` with ``settings`` (values are quoted for yaml) and write it to ``path``."""
    values = {key: _yaml_value(value) for key, value in settings.items() if key != "aligners"}
    aligners = settings.get("aligners") or {}
    values["aligners"] = "".join(f"\n    {lang}: {_yaml_value(path)}" for lang, path in aligners.items()) or "{}"
    values["classname"] = CLASSNAME
    pathlib.Path(path).write_text(HYPERPARAMS.format(**values), encoding="utf-8")


def _format_recall(table, classes):
    if table is None:
        return "the target test set has no labels in the predictions file"
    header = "| split | n | " + " | ".join(f"recall {c}" for c in classes) + " | UAR |"
    rule = "|" + "---|" * (len(classes) + 3)
    cells = " | ".join("–" if table["recall"][c] is None else f"{table['recall'][c]:.3f}" for c in classes)
    return "\n".join([header, rule, f"| target test | {table['n']} | {cells} | {table['UAR']:.4f} |"])


def model_card(info):
    """The README.md (Hub model card) text from the export ``info`` dict."""
    hp, classes = info["hparams"], info["classes"]
    aligners = ", ".join(f"`{lang}`" for lang in info["aligners"]) or "none (transcripts are not used)"
    lines = [
        "---",
        "library_name: speechbrain",
        "tags: [speechbrain, speech-emotion-recognition, cross-lingual, audio-classification]",
        "pipeline_tag: audio-classification",
        "---",
        f"# Cross-lingual speech emotion recognition: {hp.get('source_name')} → {hp.get('target_name')} "
        f"({hp.get('variant')})",
        "",
        *([info["notice"], ""] if info.get("notice") else []),
        "A [speechbrain-phonanchor](https://github.com/) model: trained on the labelled source corpus and adapted to "
        "the unlabelled target corpus by anchoring on vowels that behave alike across the two languages (AGA-CL).",
        "",
        "## Training",
        "",
        f"- source (labelled): `{hp.get('source_name')}` ({hp.get('source_language')}); "
        f"target (unlabelled): `{hp.get('target_name')}` ({hp.get('target_language')})",
        f"- task `{hp.get('task')}`, classes {', '.join(f'`{c}`' for c in classes)}",
        f"- variant `{hp.get('variant')}`, vowels `{hp.get('vowel_kind')}`, target labels from "
        f"`{hp.get('target_labels')}`, λ = {hp.get('adapt_weight')}, seed {hp.get('seed')}",
        f"- frozen encoder `{info['encoder_name']}` layer {hp.get('encoder_layer')}"
        f"{' (bundled in `encoder/`)' if info['bundled_encoder'] else ''}",
        f"- best epoch {info['epoch']} by source-validation UAR {info['valid_uar']:.4f}",
        f"- anchors: {'`anchors.yaml`' if info['anchors'] else 'none (CL: no adaptation)'}; "
        f"vowel prototypes in the bank: {info['n_prototypes']} ({', '.join(info['prototype_vowels'])})",
        "",
        "## Results (UAR)",
        "",
        _format_recall(info["recall"], classes),
        "",
        *([info["uar_table"], ""] if info.get("uar_table") else []),
        "## Use",
        "",
        "```python",
        "from speechbrain.inference.interfaces import foreign_class",
        "from speechbrain.utils.fetching import FetchConfig",
        f'clf = foreign_class(source="<this folder>", pymodule_file="{INTERFACE_FILE}", classname="{CLASSNAME}",',
        "                    fetch_config=FetchConfig(allow_network=False))",
        'probabilities, score, index, label = clf.classify_file("example.wav")',
        'result = clf.classify_file("example.wav", text="its transcript")  # vowels located by the aligner',
        "print(label, result.details[0]['segmentation'])",
        "```",
        "",
        "`pip install speechbrain-phonanchor` first. From the Hub: `huggingface_hub.snapshot_download(<repo>)`, then "
        "load the downloaded folder as above with `overrides={\"pretrained_path\": <that folder>}`.",
        f"Transcripts are used through the built-in aligner models shipped here: {aligners}. Without a transcript "
        f"(or without an aligner for its language) the audio is cut into {hp.get('chunk_width')} s chunks, and the "
        "result says so (`result.details[i]['segmentation'] == 'chunks'`).",
        "",
        "## Intended use and limits",
        "",
        "- Research on cross-lingual speech emotion recognition; acted or podcast speech in the target language.",
        "- Categorical emotion of the whole utterance; not for decisions about people (hiring, health, policing).",
        "- Accuracy on the target language is what the UAR table shows, no more: emotion expression varies with "
        "speaker, culture, recording conditions and elicitation; expect lower accuracy on other domains.",
        "- Vowel anchoring assumes the language of the audio is the target language; other languages fall back to "
        "the same network but were not evaluated.",
        f"- Audio shorter than {MIN_DURATION} s, silent or unreadable audio is refused with an error.",
        "",
    ]
    return "\n".join(lines)


def _copy_tree(source, destination):
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return destination


def export_model(experiment_dir, out_dir, aligner_dirs=(), example=None, uar_table=None, notice=None,
                 copy_encoder=True):
    """Export the run in ``experiment_dir`` to ``out_dir`` (see the module docstring).

    Arguments
    ---------
    experiment_dir : str or Path
        A train.py output folder (``hyperparams.yaml``, ``save/``, predictions).
    out_dir : str or Path
        Created if needed; existing files of the same names are replaced.
    aligner_dirs : list of path
        Extra saved aligner models to ship (besides those the run's TextGrids came from).
    example : str or Path, optional
        Audio to ship as ``example.wav``; by default one sentence in the target language is
        synthesised with espeak-ng (labelled synthetic), or none if that is not possible.
    uar_table : str, optional
        Markdown added to the card's results (e.g. a comparison of variants).
    notice : str, optional
        A line put at the top of the model card (e.g. "trained on synthetic speech").
    copy_encoder : bool
        Copy a local encoder folder into ``encoder/`` (True) or reference its path.

    Returns
    -------
    dict
        What was exported (``out_dir``, ``classes``, ``aligners``, ``example``, ``recall`` ...).
    """
    import torch

    from speechbrain_phonanchor.audio import load_audio
    from speechbrain_phonanchor.features.encoders import open_encoder
    from speechbrain_phonanchor.inference import encoder_fingerprint
    from speechbrain_phonanchor.model.vowel_ids import NONE_ID
    from speechbrain_phonanchor.phonetics import VOWELS

    experiment_dir, out = pathlib.Path(experiment_dir), pathlib.Path(out_dir).resolve()
    hp = load_experiment(experiment_dir)
    missing = [key for key in MODEL_KEYS + ("encoder_source", "encoder_layer", "half_width", "chunk_width")
               if key not in hp]
    if missing:
        raise ExportError(f"{experiment_dir}/hyperparams.yaml lacks {', '.join(missing)}")
    checkpoint = best_checkpoint(hp["save_folder"])
    labels = pathlib.Path(hp["save_folder"]) / "label_encoder.txt"
    if not labels.is_file():
        raise ExportError(f"{labels} not found")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint.path / "model.ckpt", out / "model.ckpt")
    shutil.copyfile(labels, out / "label_encoder.txt")
    from speechbrain.dataio.encoder import CategoricalEncoder

    label_encoder = CategoricalEncoder()
    label_encoder.load(out / "label_encoder.txt")
    classes = [label_encoder.ind2lab[i] for i in range(len(label_encoder))]

    whisper_window = hp.get("whisper_window") or "30s"  # runs from before the key existed used 30 s windows
    encoder = open_encoder(hp["encoder_source"], hp["encoder_layer"], whisper_window=whisper_window)
    bundled = copy_encoder and encoder.model_type != "fbank" and pathlib.Path(hp["encoder_source"]).is_dir()
    encoder_source = str(hp["encoder_source"])
    if bundled:
        shutil.rmtree(out / "encoder", ignore_errors=True)
        _copy_tree(encoder.source, out / "encoder")
    anchors = pathlib.Path(hp["anchors_file"]) if hp.get("anchors_file") else None
    anchors = anchors if hp.get("variant") != "CL" and anchors is not None and anchors.is_file() else None
    if anchors:
        shutil.copyfile(anchors, out / "anchors.yaml")
    aligners = {}
    for lang, folder in find_aligners(hp, aligner_dirs).items():
        aligners[lang] = _copy_tree(folder, out / "aligners" / lang)

    state = torch.load(out / "model.ckpt", map_location="cpu")
    filled = state["attention.prototypes.filled"]
    vowel_ids = state["attention.prototypes.prototype_vowels"][filled].unique().tolist()
    language = hp.get("target_language")
    settings = {
        "pretrained_path": str(out), "bundled_encoder": bool(bundled),
        "encoder_source": Inside("encoder") if bundled else encoder_source,
        "encoder_layer": hp["encoder_layer"], "whisper_window": whisper_window,
        "encoder_sha": encoder_fingerprint(encoder),
        "half_width": hp["half_width"], "chunk_width": hp["chunk_width"], "min_duration": MIN_DURATION,
        "language": language,
        "n_classes": len(classes), "aligners": {lang: Inside(f"aligners/{lang}") for lang in aligners},
        **{key: hp[key] for key in MODEL_KEYS},
    }
    write_hyperparams(out / "hyperparams.yaml", settings)
    (out / INTERFACE_FILE).write_text(INTERFACE, encoding="utf-8")

    example_path = None
    if example is not None:
        import soundfile

        wav, _ = load_audio(example)
        example_path = out / "example.wav"
        soundfile.write(example_path, wav.numpy(), 16000)
    else:
        example_path = _synthesised_example(out / "example.wav", language)

    predictions = hp.get("predictions_file")
    recall = recall_table(predictions, classes) if predictions and pathlib.Path(predictions).is_file() else None
    info = {
        "out_dir": str(out), "hparams": hp, "classes": classes, "aligners": {k: str(v) for k, v in aligners.items()},
        "example": str(example_path) if example_path else None, "recall": recall, "bundled_encoder": bool(bundled),
        "encoder_name": hp.get("encoder_name") or encoder_source, "epoch": checkpoint.meta.get("epoch"),
        "valid_uar": float(checkpoint.meta.get("UAR", float("nan"))), "anchors": bool(anchors),
        "n_prototypes": int(filled.sum()),
        "prototype_vowels": [VOWELS[v] if v != NONE_ID else "chunk" for v in vowel_ids],
        "uar_table": uar_table, "notice": notice,
    }
    (out / "README.md").write_text(model_card(info), encoding="utf-8")
    info.pop("hparams")
    logger.info("exported %s to %s", experiment_dir, out)
    return info


def _synthesised_example(path, language):
    """One espeak-ng sentence in ``language`` as ``path``; None (with a log line) when that fails."""
    try:
        from speechbrain_phonanchor.synth import write_example
    except ImportError:
        return None
    try:
        return write_example(path, language)
    except Exception as err:  # espeak-ng missing or the language unknown: the folder is still usable
        logger.warning("no example.wav: %s", err)
        return None


def load_exported(folder, savedir=None, **kwargs):
    """Load an exported folder offline with ``foreign_class``; returns a :class:`PhonAnchorClassifier`.

    Arguments
    ---------
    folder : str or Path
        The exported folder (it may have been moved: ``pretrained_path`` is set to it).
    savedir : str or Path, optional
        Where SpeechBrain collects its links (default: ``<folder>/.collected``).
    **kwargs
        Passed on to ``foreign_class`` (e.g. ``run_opts={"device": "cuda"}``).
    """
    from speechbrain.inference.interfaces import foreign_class
    from speechbrain.utils.fetching import FetchConfig

    folder = pathlib.Path(folder).resolve()
    overrides = dict(kwargs.pop("overrides", {}), pretrained_path=str(folder))
    return foreign_class(source=str(folder), pymodule_file=INTERFACE_FILE, classname=CLASSNAME,
                         savedir=str(savedir or folder / ".collected"), overrides=overrides,
                         fetch_config=FetchConfig(allow_network=False), **kwargs)


def push_to_hub(folder, repo_id, token=None, private=False):
    """Upload an exported folder to the Hub as ``repo_id`` (needs network and a token).

    The uploaded ``hyperparams.yaml`` has ``pretrained_path: <repo_id>``; the local copy is unchanged.
    """
    from huggingface_hub import HfApi

    folder = pathlib.Path(folder)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    text = (folder / "hyperparams.yaml").read_text(encoding="utf-8")
    lines = [f"pretrained_path: {repo_id}" if line.startswith("pretrained_path:") else line
             for line in text.splitlines()]
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=[".collected/*", "hyperparams.yaml"])
    api.upload_file(path_or_fileobj=("\n".join(lines) + "\n").encode(), path_in_repo="hyperparams.yaml",
                    repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"


def main(argv=None):
    """Entry point of ``phonanchor-export`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="phonanchor-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="output folder of a train.py run")
    parser.add_argument("out", help="folder to write the exported model to")
    parser.add_argument("--aligner", action="append", default=[], help="saved aligner model dir to ship (repeatable)")
    parser.add_argument("--example", help="audio file to ship as example.wav (default: espeak-ng sentence)")
    parser.add_argument("--uar-table", help="markdown file with more results to put in the model card")
    parser.add_argument("--reference-encoder", action="store_true",
                        help="reference a local encoder folder by path instead of copying it")
    parser.add_argument("--no-verify", action="store_true", help="do not load the folder and classify the example")
    parser.add_argument("--push", metavar="REPO_ID", help="upload to the Hugging Face Hub (needs network and token)")
    args = parser.parse_args(argv)
    try:
        table = pathlib.Path(args.uar_table).read_text(encoding="utf-8") if args.uar_table else None
        info = export_model(args.experiment, args.out, args.aligner, args.example, table,
                            copy_encoder=not args.reference_encoder)
    except (ExportError, FileNotFoundError) as err:
        raise SystemExit(f"phonanchor-export: {err}") from err
    print(f"exported to {info['out_dir']} (classes {', '.join(info['classes'])}; "
          f"aligners: {', '.join(info['aligners']) or 'none'})")
    if not args.no_verify and info["example"]:
        result = load_exported(info["out_dir"]).classify_file(info["example"])
        print(f"check: example.wav → {result[3][0]} ({float(result[1][0]):.3f}, {result.segmentation[0]})")
    if args.push:
        print(f"pushed: {push_to_hub(info['out_dir'], args.push)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
