"""The inference API and `analyze` CLI, on the rule-only pipeline (no fitting needed)."""

import json
import unicodedata

import pytest
from typer.testing import CliRunner

from inference.analyzer import Analyzer, ModelLoadError, load_analyzer
from inference.document import Document
from inference.scoring import score
from inference.validate import check_document, write_jsonl
from training.cli import app
from training.experiment import ExperimentConfig, raw
from tests.conftest import ROOT

runner = CliRunner()


@pytest.fixture(scope="module")
def rules() -> Analyzer:
    return ExperimentConfig.from_yaml(ROOT / "experiments" / "rules.yaml").build()


@pytest.fixture(scope="module")
def rules_dir(rules, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "rules"
    rules.save(path)
    return path


@pytest.mark.parametrize(
    "text",
    ["", "   \n", "No quotes here at all.", "สวัสดีครับ นี่คือข่าว", "“unbalanced « marks ” here „", "\u202bمرحبا\u202c “x”"],
)
def test_odd_inputs_give_a_valid_document(rules, text):
    doc = rules.analyze(text)
    assert isinstance(doc, Document) and doc.text == text
    assert [m for m in check_document(doc, gold=False) if m.startswith("error")] == []


def test_seed_shoigu_quote_found_with_speaker_and_against_missile_defense(rules, seed_docs):
    gold = next(d for d in seed_docs if d.doc_id == "seed-002")
    doc = rules.analyze(gold.text, published="2013-11-02")
    assert doc.lang == "vi"
    shoigu = [q for q in doc.quotes if "giấu giếm" in doc.quote_text(q)]
    assert shoigu and shoigu[0].stance_on("missile_defense") == "against"


def test_results_do_not_depend_on_batch_size(rules, seed_docs):
    texts = [d.text for d in seed_docs]
    one = [d.to_dict() for d in rules.analyze_many(texts, batch_size=1)]
    many = [d.to_dict() for d in rules.analyze_many(texts, batch_size=64)]
    assert one == many


def test_nfd_text_spans_index_the_text_as_given(rules, seed_docs):
    nfd = unicodedata.normalize("NFD", seed_docs[2].text)
    doc = rules.analyze(nfd, published="2013-11-02")
    assert doc.text == nfd and doc.quotes
    for q in doc.quotes:
        assert 0 <= q.content[0] < q.content[1] <= len(nfd)


def test_saved_model_loads_and_predicts_the_same(rules, rules_dir, seed_docs):
    again = load_analyzer(rules_dir)
    assert again.analyze(seed_docs[0].text).to_dict() == rules.analyze(seed_docs[0].text).to_dict()


def test_foreign_or_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no model at"):
        load_analyzer(tmp_path / "nothing")
    (tmp_path / "pipeline.json").write_text(json.dumps({"format_version": 1, "components": ["os_system"]}))
    with pytest.raises(ModelLoadError, match="unknown pipeline component"):
        load_analyzer(tmp_path)


def test_cli_analyze_jsonl_reports_bad_lines_and_keeps_the_rest(rules_dir, tmp_path, seed_docs):
    src = tmp_path / "in.jsonl"
    good = {"doc_id": "a", "text": seed_docs[2].text, "published": "2013-11-02"}
    src.write_text(json.dumps(good, ensure_ascii=False) + "\n{broken\n" + json.dumps({"doc_id": "b"}) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["analyze", str(src), "--format", "jsonl", "--model", str(rules_dir)])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert [json.loads(line)["doc_id"] for line in lines] == ["a"]
    assert "in.jsonl:2" in result.stderr and "in.jsonl:3" in result.stderr


def test_cli_analyze_text_file_prints_a_table(rules_dir, tmp_path, seed_docs):
    src = tmp_path / "article.txt"
    src.write_text(seed_docs[2].text, encoding="utf-8")
    result = runner.invoke(app, ["analyze", str(src), "--published", "2013-11-02", "--model", str(rules_dir)])
    assert result.exit_code == 0, result.output
    assert "article" in result.stdout and "speaker" in result.stdout


def test_cli_evaluate_prints_quote_speaker_and_stance_scores_overall_and_per_language(rules, rules_dir, tmp_path, seed_docs):
    gold = tmp_path / "gold.jsonl"
    write_jsonl(seed_docs[:3], gold)
    result = runner.invoke(app, ["evaluate", str(gold), "--model", str(rules_dir)])
    assert result.exit_code == 0, result.output
    expected = score(seed_docs[:3], list(rules.analyze_many([raw(d) for d in seed_docs[:3]])))
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line.strip()}
    assert set(expected["by_lang"]) < set(rows)
    assert rows["overall"][2] == f"{expected['overall']['overlap']['f1']:.3f}"
    assert rows["overall"][-2] == str(len([q for d in seed_docs[:3] for q in d.quotes]))
    as_json = runner.invoke(app, ["evaluate", str(gold), "--model", str(rules_dir), "--format", "json"])
    assert json.loads(as_json.stdout)["overall"]["end_to_end"] == pytest.approx(expected["overall"]["end_to_end"])


@pytest.mark.slow
def test_bundled_accurate_preset_gives_each_document_the_same_answer_alone_or_in_a_batch(seed_docs):
    from inference.encoder.memo import forget_embeddings

    analyzer = load_analyzer("accurate")
    alone = [analyzer.analyze(d.text, published=d.published, lang=d.lang) for d in seed_docs]
    forget_embeddings()  # the batch must be encoded afresh, not served from what `alone` memoised
    batched = list(analyzer.analyze_many([Document(doc_id=d.doc_id, lang=d.lang, published=d.published, text=d.text) for d in seed_docs]))
    assert [d.to_dict()["quotes"] for d in alone] == [d.to_dict()["quotes"] for d in batched]
    assert any(q.speaker == "shoigu" and q.stance_on("missile_defense") == "against" for q in alone[2].quotes)
    assert [m for d in alone for m in check_document(d, gold=False) if m.startswith("error")] == []


def test_bundled_default_model_loads_from_the_package_and_finds_the_seed_shoigu_quote(seed_docs):
    from inference import load_analyzer as public_load

    from inference.analyzer import PRESETS, default_preset

    analyzer = public_load()
    assert default_preset() in PRESETS
    assert analyzer.metadata.get("preset") == default_preset()
    doc = analyzer.analyze(seed_docs[2].text, published="2013-11-02")
    assert any(q.speaker == "shoigu" and q.stance_on("missile_defense") == "against" for q in doc.quotes)
