"""The demo, scaled down (2 sentences, 3 voices, 2 epochs, the default fbank front end): every stage, one report."""

import pytest

from speechbrain_phonanchor import demo
from speechbrain_phonanchor.features.store import FeatureStore

STYLES = {"neutral", "happy", "angry", "sad"}


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    return demo.run_demo(tmp_path_factory.mktemp("demo"), sentences=2, speakers=3, epochs=2, align_iters=3, jobs=2)


def test_every_stage_ran_and_the_report_has_the_results(facts):
    names = [name for name, _ in facts["stages"].rows]
    assert names == ["synthesise en corpus", "synthesise zh corpus", "align en (built-in aligner)",
                     "align zh (built-in aligner)", "encoder", "train CL", "analyse anchors + train AGA-CL",
                     "export AGA-CL", "classify through foreign_class"]
    assert all(r["aligned"] == r["utterances"] == 24 for r in facts["alignment"].values())
    assert facts["encoder_source"] == "fbank"
    store = FeatureStore.open(demo.pathlib.Path(facts["out"]) / "features" / "en_synth" / "train")
    assert (store.config["encoder"], store.dim, store.frame_rate) == ("fbank", 80, 50.0)
    assert list(facts["results"]) == ["CL", "AGA-CL"]
    for recall, transductive, valid in facts["results"].values():
        assert recall["n"] == 8 and transductive["n"] == 24 and 0.0 <= valid <= 1.0
    report = (demo.pathlib.Path(facts["out"]) / "report.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in report and "| CL |" in report and "| AGA-CL |" in report
    assert "UAR source valid" in report and "UAR target test" in report and demo.what_it_means(8, 24) in report
    assert "--encoder whisper-base" in report and "--encoder facebook/wav2vec2-base" in report
    assert facts["anchors"] is not None


def test_export_ships_the_mandarin_aligner_and_classifies_one_file_per_style(facts):
    assert set(facts["export"]["aligners"]) == {"en", "zh"}
    assert not facts["export"]["bundled_encoder"]  # nothing to bundle: fbank has no weights
    card = (demo.pathlib.Path(facts["export"]["out_dir"]) / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in card and "CL vs AGA-CL" in card
    classified = facts["classified"]
    assert sorted(row["style"] for row in classified) == sorted(STYLES)
    assert all("zh_m3_" in row["file"] for row in classified)  # the Mandarin test speaker (last of 3 voices)
    for row in classified:
        assert row["with_text"].segmentation == ["vowels"] and row["with_text"].details[0]["vowels"]
        assert row["without_text"].segmentation == ["chunks"]
        for result in (row["with_text"], row["without_text"]):
            assert result[3][0] in ("neu", "hap", "ang", "sad")
            assert 0.25 <= float(result[1][0]) <= 1.0  # the top of four probabilities
    table = demo.classification_table(classified)
    assert table.count("\n") == 5 and "| ang |" in table


def test_corpus_is_deterministic(tmp_path):
    first = demo.make_corpus(tmp_path / "a", "zh", 1, 3)
    second = demo.make_corpus(tmp_path / "b", "zh", 1, 3)
    assert first == second and len(first) == 12
    for row in first:
        assert (tmp_path / "a" / row["path"]).read_bytes() == (tmp_path / "b" / row["path"]).read_bytes()
