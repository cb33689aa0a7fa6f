"""The stance-alone cross-validation that stance settings are chosen on."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from inference.pipeline.stance import StanceClassifier
from inference.validate import read_jsonl
from tests.conftest import ANNOTATIONS, ROOT
from training.cli import app
from training.experiment import EvaluationConfig, ExperimentConfig
from training.stance_cv import parse_overrides, stance_cv


@pytest.fixture(scope="module")
def small_set(seed_docs):
    """The five seeds and four authored documents in each of two languages."""
    authored = []
    for lang in ("ja", "vi"):
        authored += read_jsonl(ANNOTATIONS / "authored" / f"{lang}.jsonl")[:4]
    return [*seed_docs, *authored]


def _config(seeds: bool) -> ExperimentConfig:
    return ExperimentConfig(
        name="t",
        components={"stance": {"backend": "fast", "C": 4.0, "max_features": 5000}},
        evaluation=EvaluationConfig(seeds_lodo=seeds, authored_lolo=True),
    )


def test_stance_cv_never_fits_on_the_held_out_documents_and_reads_given_spans_like_gold(small_set, monkeypatch):
    seen: list[set[str]] = []
    fit = StanceClassifier.fit

    def recording_fit(self, docs):
        seen.append({d.doc_id for d in docs})
        return fit(self, docs)

    monkeypatch.setattr(StanceClassifier, "fit", recording_fit)
    held: list[tuple[str, set[str]]] = []
    same_as_gold = {"authored_lolo": {d.doc_id: d.quotes for d in small_set if d.origin == "authored"}}
    result = stance_cv(_config(seeds=False), small_set, {"sentence_weight": 0.5}, same_as_gold, on_fold_done=lambda f: held.append((f.name, {d.doc_id for d in f.test})))

    assert len(seen) == len(held) == 2
    for train_ids, (lang, test_ids) in zip(seen, held):
        assert test_ids == {d.doc_id for d in small_set if d.origin == "authored" and d.lang == lang}
        assert train_ids == {d.doc_id for d in small_set if d.lang != lang}
    lolo = result["authored_lolo"]
    assert lolo["detector"] == lolo["gold"]
    assert 0.0 < lolo["gold"]["stance_macro_f1"] <= 1.0
    assert lolo["gap"] == {"missed_quotes": 0.0, "false_alarms": 0.0, "found_spans": 0.0}


def test_stance_cv_gap_charges_quotes_the_detector_missed_to_missed_quotes(small_set):
    authored = [d for d in small_set if d.origin == "authored"]
    first_missed = {"authored_lolo": {d.doc_id: d.quotes[1:] for d in authored}}
    lolo = stance_cv(_config(seeds=False), small_set, None, first_missed)["authored_lolo"]

    assert lolo["gap"]["false_alarms"] == 0.0
    assert lolo["gap"]["found_spans"] == 0.0
    assert lolo["gap"]["missed_quotes"] > 0.0
    lost = lolo["gold"]["stance_macro_f1"] - lolo["detector"]["stance_macro_f1"]
    assert sum(lolo["gap"].values()) == pytest.approx(lost, abs=2e-4)


def test_stance_cv_refuses_a_run_without_the_split_before_fitting(small_set):
    with pytest.raises(ValueError, match="no held-out predictions for seeds_lodo"):
        stance_cv(_config(seeds=True), small_set, None, {"authored_lolo": {}})


def test_overrides_are_read_as_yaml_values():
    assert parse_overrides(["sentence_weight=0.5", "origin_weights={seed: 16}", "char_ngrams=true"]) == {
        "sentence_weight": 0.5,
        "origin_weights": {"seed": 16},
        "char_ngrams": True,
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["sentence_weight"])


def test_stance_cv_command_names_an_unknown_parameter_and_exits_2():
    result = CliRunner().invoke(app, ["stance-cv", "--config", str(ROOT / "experiments/fast.yaml"), "--set", "sentence_wieght=0.5", "-q"])
    assert result.exit_code == 2
    assert "sentence_wieght" in result.output
