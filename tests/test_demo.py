"""The demo, scaled down (2 sentences, 3 voices, 2 epochs, tiny random encoder): every stage, one report."""

import pytest

from speechbrain_phonanchor import demo


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    return demo.run_demo(tmp_path_factory.mktemp("demo"), encoder="tiny", sentences=2, speakers=3, epochs=2,
                         align_iters=3, jobs=2)


def test_every_stage_ran_and_the_report_has_the_results(facts):
    names = [name for name, _ in facts["stages"].rows]
    assert names == ["synthesise en corpus", "synthesise zh corpus", "align en (built-in aligner)",
                     "align zh (built-in aligner)", "encoder", "train CL", "analyse anchors + train AGA-CL",
                     "export AGA-CL", "classify through foreign_class"]
    assert all(r["aligned"] == r["utterances"] == 24 for r in facts["alignment"].values())
    report = (demo.pathlib.Path(facts["out"]) / "report.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in report and "| CL |" in report and "| AGA-CL |" in report
    assert "--encoder facebook/wav2vec2-base" in report
    assert facts["anchors"] is not None


def test_export_ships_the_mandarin_aligner_and_classifies_with_vowels(facts):
    assert set(facts["export"]["aligners"]) == {"en", "zh"}
    card = (demo.pathlib.Path(facts["export"]["out_dir"]) / "README.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in card and "CL vs AGA-CL" in card
    assert facts["with_text"].segmentation == ["vowels"] and facts["with_text"].details[0]["vowels"]
    assert facts["without_text"].segmentation == ["chunks"]
    assert facts["with_text"][3][0] in ("neu", "hap", "ang", "sad")


def test_corpus_is_deterministic(tmp_path):
    first = demo.make_corpus(tmp_path / "a", "zh", 1, 3)
    second = demo.make_corpus(tmp_path / "b", "zh", 1, 3)
    assert first == second and len(first) == 12
    for row in first:
        assert (tmp_path / "a" / row["path"]).read_bytes() == (tmp_path / "b" / row["path"]).read_bytes()
