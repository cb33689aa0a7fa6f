"""The fine-tuned stance backend, on a tiny BERT built here (tokenizer trained on the annotations).

The real encoder is far too slow for unit tests on 2 cores; the tiny model exercises the same
code: pair construction, Trainer / torch training, mean pooling, prediction and persistence.
"""

import copy
import json
from pathlib import Path

import pytest

from inference.document import STANCE_LABELS, Stance
from inference.pipeline.stance import StanceClassifier
from inference.pipeline.stance_finetune import LABELS, FineTunedStance, stance_questions, topic_question
from inference.registry import default_registry

FAST = {"max_steps": 120, "lr": 5e-3, "batch_size": 16, "max_length": 96, "freeze_embeddings": False, "progress": False}
"""Enough to over-fit the tiny model in ~2 s; frozen random embeddings would leave it predicting `none` only."""


@pytest.fixture(scope="module")
def tiny(tiny_encoder) -> Path:
    return tiny_encoder


@pytest.fixture(scope="module")
def items(seed_docs):
    return [(d, q) for d in seed_docs for q in d.quotes]


@pytest.fixture(scope="module")
def fitted(tiny, items):
    return FineTunedStance(encoder=str(tiny), **FAST).fit(items)


def _falls(losses: list[float]) -> bool:
    return sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_every_registry_topic_has_a_question():
    topics = list(default_registry().topics)
    assert list(stance_questions()) == topics
    assert all(topic_question(t).endswith("?") for t in topics)


def test_training_pairs_hold_gold_stances_and_sampled_negatives(tiny, items):
    model = FineTunedStance(encoder=str(tiny), negatives=3)
    questions, segments, labels = model._examples(items)
    n_gold = sum(len(q.stances) for _, q in items)
    assert labels.count(0) == 3 * len(items)
    assert len(labels) - labels.count(0) == n_gold
    assert all(s.startswith("query: ") for s in segments)
    doc, quote = next((d, q) for d, q in items if q.speaker == "shoigu")
    assert "Shoigu" in model._quote_segment(doc, quote)
    assert set(questions) <= set(stance_questions().values())


def test_loss_falls_and_predictions_are_valid_stances(fitted, items):
    assert len(fitted.loss_history_) == FAST["max_steps"]
    assert _falls(fitted.loss_history_)
    preds = fitted.predict(items)
    assert len(preds) == len(items)
    topics = set(default_registry().topics)
    flat = [s for p in preds for s in p]
    assert flat, "an over-fitted tiny model should predict some stances on its training quotes"
    for s in flat:
        assert isinstance(s, Stance)
        assert s.topic in topics and s.stance in STANCE_LABELS
        assert 0.0 < s.confidence <= 1.0
    proba = fitted.predict_proba(items[:3])
    assert proba.shape == (3, len(topics), len(LABELS))


def test_save_load_gives_identical_predictions(fitted, items, tmp_path):
    fitted.save(tmp_path / "ft")
    assert not list((tmp_path / "ft").rglob("*.bin")) and not list((tmp_path / "ft").rglob("*.pkl"))
    again = FineTunedStance.load(tmp_path / "ft")
    assert again.predict(items) == fitted.predict(items)
    assert again.get_params() == fitted.get_params()


def test_load_refuses_another_format(fitted, tmp_path):
    fitted.save(tmp_path / "ft")
    meta_path = tmp_path / "ft" / "finetune.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not a fine-tuned stance model"):
        FineTunedStance.load(tmp_path / "ft")


def test_plain_torch_loop_learns_and_keeps_frozen_embeddings(tiny, items):
    from safetensors.torch import load_file

    params = {**FAST, "max_steps": 40, "freeze_embeddings": True}
    model = FineTunedStance(encoder=str(tiny), trainer="torch", **params).fit(items)
    assert len(model.loss_history_) == 40
    assert _falls(model.loss_history_)
    original = load_file(str(tiny / "model.safetensors"))
    key = next(k for k in original if k.endswith("word_embeddings.weight"))
    assert model.model_.encoder.get_input_embeddings().weight.detach().equal(original[key])
    assert not model.model_.encoder.get_input_embeddings().weight.requires_grad


def test_stance_classifier_delegates_to_the_finetune_backend(tiny, seed_docs, tmp_path):
    clf = StanceClassifier(backend="finetune", encoder=str(tiny), finetune=FAST).fit(seed_docs[1:])
    held_out = copy.deepcopy(seed_docs[0])
    for q in held_out.quotes:
        q.stances = []
    out = clf(copy.deepcopy(held_out))
    assert len(out.quotes) == len(held_out.quotes)
    clf.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert again.get_params() == clf.get_params()
    assert again(copy.deepcopy(held_out)).to_dict() == out.to_dict()
