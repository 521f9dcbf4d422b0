"""The four named recipes: each loads, passes the yaml-vs-script key check and trains in debug mode.

Fixture corpora are built in the MSP-Podcast, BIIC-Podcast (MSP-style, Mandarin TextGrids) and Dusha
layouts with the preparation tests' helpers; the encoder is a tiny random wav2vec2 saved to a folder.
"""

import csv
import json
import pathlib
import re
import sys

import pytest
import test_train
from hyperpyyaml import load_hyperpyyaml
from prepare_fixtures import write_textgrid
from test_prepare_dusha import make_dusha
from test_prepare_msp_podcast import make_msp

from speechbrain_phonanchor.analysis.selection import write_anchors
from speechbrain_phonanchor.features.encoders import make_tiny_encoder

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECIPES = ("msp_to_biic", "biic_to_msp", "msp_to_dusha", "biic_to_dusha")
EMOTION_CODES = {"N": "neu", "H": "hap", "A": "ang", "S": "sad"}
SPLITS = {"Train": 2, "Development": 1, "Test1": 1}  # utterances per emotion
PREPARE = {"msp_podcast": "prepare_msp_podcast", "biic_podcast": "prepare_biic_podcast", "dusha": "prepare_dusha"}
PHONES = {  # TextGrid phones per corpus and the inventory vowels they must give
    "msp_podcast": ([("HH", 0.1, 0.2), ("AY1", 0.2, 0.4)], {"aɪ"}),
    "biic_podcast": ([("n", 0.1, 0.15), ("aj˧˥", 0.15, 0.3), ("x", 0.3, 0.35), ("ow˨˩˦", 0.35, 0.45)], {"aɪ", "oʊ"}),
}


def recipe_path(name):
    return ROOT / "hparams" / f"{name}.yaml"


def podcast_corpus(root, prefix, phones):
    """A corpus in the MSP-Podcast layout (BIIC-Podcast's default too), every utterance force-aligned."""
    rows = []
    for split, count in SPLITS.items():
        for code in EMOTION_CODES:
            for i in range(count):
                name = f"{prefix}_{split}_{code}{i}.wav"
                rows.append([name, code, "4", "4", "4", str(len(rows) % 3), "Female", split])
    make_msp(root, rows=rows, transcripts=False, aligned=False)
    for row in rows:
        write_textgrid(root / "ForceAligned" / f"{row[0][:-4]}.TextGrid", phones=phones, words=[("w", 0.1, 0.45)])
    return root


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Corpus name → folder, the tiny encoder and an anchors file naming the fixtures' diphthongs."""
    folder = tmp_path_factory.mktemp("recipes")
    per_kind = {"mono": {"ranking": [], "com": [], "BA": [], "WA": [], "GA": []},
                "diph": {"ranking": ["aɪ", "oʊ"], "com": [0.8, 0.4], "BA": ["aɪ"], "WA": ["oʊ"], "GA": ["aɪ"]}}
    write_anchors(folder / "anchors.yaml", {e: per_kind for e in EMOTION_CODES.values()}, {}, "s", "t", 1)
    return {
        "msp_podcast": podcast_corpus(folder / "MSP-Podcast", "MSP-PODCAST", PHONES["msp_podcast"][0]),
        "biic_podcast": podcast_corpus(folder / "BIIC-Podcast", "BIIC", PHONES["biic_podcast"][0]),
        "dusha": make_dusha(folder / "Dusha"),
        "encoder": make_tiny_encoder(folder / "encoder"),
        "anchors": folder / "anchors.yaml",
    }


def load(name, **overrides):
    with open(recipe_path(name), encoding="utf-8") as handle:
        return load_hyperpyyaml(handle, overrides)


def shared_part(path):
    """The yaml without its header comments and its corpora section: what every recipe shares."""
    text = path.read_text(encoding="utf-8")
    text = text[text.index("\nseed:"):]
    return re.sub(r"# ---- corpora ----\n.*?(?=# ---- )", "", text, flags=re.S)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_keys_are_used_by_train_py(name, monkeypatch):
    monkeypatch.setattr(test_train, "HPARAMS", recipe_path(name))
    test_train.test_every_yaml_key_is_used_by_train_py()


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_shares_everything_but_its_corpora_with_generic_pair(name):
    assert shared_part(recipe_path(name)) == shared_part(ROOT / "hparams" / "generic_pair.yaml"), (
        f"{name}.yaml differs from generic_pair.yaml outside its header and '# ---- corpora ----' section; "
        "copy the change over")


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_binds_its_corpora_and_defaults(name):
    with pytest.raises(ValueError, match="source_data_folder' is a !PLACEHOLDER"):
        load(name)
    hparams = load(name, source_data_folder="/src", target_data_folder="/tgt")
    for side, folder in (("source", "/src"), ("target", "/tgt")):
        prepare = hparams[f"prepare_{side}"]
        assert prepare.func.__name__ == PREPARE[hparams[f"{side}_name"]]
        assert prepare.keywords["data_folder"] == folder
        assert prepare.keywords["save_folder"] == f"results/manifests/{hparams[f'{side}_name']}"
    assert hparams["encoder_source"] == "facebook/wav2vec2-base" and hparams["input_size"] == 768
    assert (hparams["variant"], hparams["vowel_kind"], hparams["task"]) == ("AGA", "both", "4class")
    assert (hparams["lr"], hparams["weight_decay"], hparams["adapt_weight"]) == (1e-4, 1e-3, 0.5)
    assert (hparams["batch_size"], hparams["number_of_epochs"]) == (64, 70)


def run_recipe(name, corpora, out):
    """``python train.py hparams/<name>.yaml --debug ...`` on the fixture corpora with a tiny model."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from train import main

    source, target = name.split("_to_")
    names = {"msp": "msp_podcast", "biic": "biic_podcast", "dusha": "dusha"}
    settings = {
        "source_data_folder": corpora[names[source]], "target_data_folder": corpora[names[target]],
        "manifest_folder": out / "manifests", "feature_folder": out / "features", "output_folder": out / "run",
        "anchors_file": corpora["anchors"], "encoder_source": corpora["encoder"], "input_size": 16,
        "attention_heads": 2, "d_model": 8, "encoder_heads": 2, "encoder_layers": 1, "d_ffn": 16,
        "classifier_hidden": 8, "batch_size": 4, "warmup_epochs": 0, "pseudo_threshold": 0.0, "vowel_kind": "diph",
    }
    argv = [str(recipe_path(name)), "--device=cpu", "--debug", "--debug_batches=2", "--debug_epochs=1"]
    return main(argv + [f"--{key}={value}" for key, value in settings.items()])


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_prepares_extracts_and_trains_in_debug_mode(name, corpora, tmp_path):
    brain = run_recipe(name, corpora, tmp_path)
    hparams = vars(brain.hparams)
    manifests = {side: {split: json.loads((tmp_path / "manifests" / hparams[f"{side}_name"] / f"{split}.json")
                                          .read_text(encoding="utf-8")) for split in ("train", "valid", "test")}
                 for side in ("source", "target")}
    for side in ("source", "target"):  # each corpus was read with its own layout and phone set
        corpus = hparams[f"{side}_name"]
        utterances = [e for split in manifests[side].values() for e in split.values()]
        assert utterances and {e["lang"] for e in utterances} == {
            "msp_podcast": {"en"}, "biic_podcast": {"zh"}, "dusha": {"ru"}}[corpus]
        if corpus in PHONES:
            assert all({v["vowel"] for v in e["vowels"]} == PHONES[corpus][1] for e in utterances)
    with open(hparams["predictions_file"], encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    test_ids = set(manifests["target"]["test"])
    assert test_ids and {row["id"] for row in rows} <= test_ids
    assert len(rows) == min(len(test_ids), 2 * hparams["batch_size"])  # debug: two evaluation batches
    assert hparams["adapt_loss"].n_batches == 2  # debug: two training steps, each with the adaptation loss
    assert len(re.findall(r"valid UAR", pathlib.Path(hparams["train_log"]).read_text(encoding="utf-8"))) == 1
