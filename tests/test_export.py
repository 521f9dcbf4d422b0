"""phonanchor-export: folder contents, offline foreign_class loading, moved folders, the CLI and its errors."""

import shutil

import pytest
import torch
from exported_fixtures import build
from speechbrain.inference.interfaces import foreign_class
from speechbrain.utils.fetching import FetchConfig

from speechbrain_phonanchor.export import CLASSNAME, ExportError, export_model, load_exported, main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return build(tmp_path_factory.mktemp("export"))


def test_folder_holds_everything_the_card_promises(exported):
    _, brain, out, info = exported
    names = {p.name for p in out.iterdir()}
    assert {"hyperparams.yaml", "custom_interface.py", "model.ckpt", "label_encoder.txt", "anchors.yaml",
            "encoder", "aligners", "README.md"} <= names
    assert (out / "aligners" / "it" / "model.pkl").is_file() and info["aligners"] == {"it": str(out / "aligners/it")}
    assert (out / "encoder" / "config.json").is_file()
    hyperparams = (out / "hyperparams.yaml").read_text(encoding="utf-8")
    assert "model: !ref <pretrained_path>/model.ckpt" in hyperparams
    assert "label_encoder: !ref <pretrained_path>/label_encoder.txt" in hyperparams
    assert "encoder_source: !ref <pretrained_path>/encoder" in hyperparams
    assert "it: !ref <pretrained_path>/aligners/it" in hyperparams
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "src → tgt (AGA)" in card and "## Intended use and limits" in card
    assert "| target test | 8 | " in card and f"{info['recall']['UAR']:.4f} |" in card
    # the prototype bank of the best checkpoint travels inside model.ckpt
    state = torch.load(out / "model.ckpt", map_location="cpu")
    bank = brain.modules.model.attention.prototypes
    assert torch.equal(state["attention.prototypes.prototypes"], bank.prototypes)
    assert info["prototype_vowels"] == ["i", "a"] and info["n_prototypes"] == 2


def test_plain_foreign_class_loads_offline(exported, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pair, _, out, _ = exported
    clf = foreign_class(source=str(out), pymodule_file="custom_interface.py", classname=CLASSNAME,
                        fetch_config=FetchConfig(allow_network=False))
    assert type(clf).__name__ == CLASSNAME and not clf.mods.model.training
    probabilities, score, index, label = clf.classify_file(pair / "corpora" / "tgt" / "wavs" / "tgt_test_0.wav")
    assert label[0] in ("neu", "hap", "ang", "sad") and probabilities.shape == (1, 4)


def test_moved_folder_loads_with_pretrained_path(exported, tmp_path):
    pair, _, out, _ = exported
    moved = tmp_path / "moved"
    shutil.copytree(out, moved, ignore=shutil.ignore_patterns(".collected"))
    shutil.rmtree(out / ".collected", ignore_errors=True)
    wav = pair / "corpora" / "tgt" / "wavs" / "tgt_test_2.wav"
    original = load_exported(out).classify_file(wav)
    shutil.move(str(out), str(tmp_path / "gone"))  # the original location no longer exists
    try:
        again = load_exported(moved).classify_file(wav)
    finally:
        shutil.move(str(tmp_path / "gone"), str(out))
    assert torch.equal(original[0], again[0])


def test_cli_exports_and_verifies(exported, tmp_path, capsys):
    pair = exported[0]
    assert main([str(pair / "aga"), str(tmp_path / "cli"), "--example", str(pair / "corpora/tgt/wavs/tgt_test_1.wav"),
                 "--reference-encoder"]) == 0
    printed = capsys.readouterr().out
    assert "exported to" in printed and "check: example.wav → " in printed and "chunks" in printed
    assert not (tmp_path / "cli" / "encoder").exists()
    assert f"encoder_source: \"{pair / 'encoder'}\"" in (tmp_path / "cli" / "hyperparams.yaml").read_text()


def test_unfinished_or_wrong_folders_are_refused(exported, tmp_path):
    pair = exported[0]
    with pytest.raises(SystemExit, match="hyperparams.yaml not found"):
        main([str(tmp_path), str(tmp_path / "out")])
    broken = tmp_path / "broken"
    shutil.copytree(pair / "aga", broken, ignore=shutil.ignore_patterns("CKPT+*"))
    text = (broken / "hyperparams.yaml").read_text().replace(str(pair / "aga" / "save"), str(broken / "save"))
    (broken / "hyperparams.yaml").write_text(text)
    with pytest.raises(ExportError, match="no checkpoint with a model.ckpt"):
        export_model(broken, tmp_path / "out")
    with pytest.raises(ExportError, match="holds no saved aligner model"):
        export_model(pair / "aga", tmp_path / "out", aligner_dirs=[tmp_path])
