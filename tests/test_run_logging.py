"""Per-topic stance scores and the charts logged with each run, on the seed documents."""

from __future__ import annotations

from collections import Counter

from inference.document import Stance
from inference.scoring import score
from training.experiment import CrossValResult
from training.plots import save_charts
from training.scoring import flat_metrics, score_all


def _flip(doc, topic: str):
    """The document with every stance on `topic` turned into a different label."""
    other = {"favor": "against", "against": "neutral", "neutral": "favor"}
    quotes = [
        q.model_copy(update={"stances": [Stance(topic=s.topic, stance=other[s.stance]) if s.topic == topic else s for s in q.stances]})
        for q in doc.quotes
    ]
    return doc.model_copy(update={"quotes": quotes})


def test_stance_by_topic_counts_gold_pairs_and_scores_each_topic_apart(seed_docs):
    counts = Counter(s.topic for d in seed_docs for q in d.quotes for s in q.stances)
    perfect = score(seed_docs, seed_docs)["overall"]["stance_by_topic"]
    assert {t: r["n_gold"] for t, r in perfect.items()} == dict(counts)
    assert all(r["f1"] == r["macro_f1"] == 1.0 for r in perfect.values())

    flipped = score(seed_docs, [_flip(d, "missile_defense") for d in seed_docs])["overall"]["stance_by_topic"]
    assert flipped["missile_defense"]["f1"] == 0.0
    assert all(r["f1"] == 1.0 for t, r in flipped.items() if t != "missile_defense")


def test_per_topic_metrics_are_flattened_and_charted_with_the_other_charts(seed_docs, tmp_path):
    pred = [_flip(d, "security_cooperation") for d in seed_docs]
    results = {"seeds_lodo": CrossValResult(gold=list(seed_docs), pred=pred, on_gold_spans=list(seed_docs))}
    scores = score_all(results)
    metrics = flat_metrics(scores)
    assert metrics["seeds_lodo.topic.security_cooperation.stance_f1"] == 0.0
    assert metrics["seeds_lodo.topic.security_cooperation.stance_f1_gold_spans"] == 1.0
    assert metrics["seeds_lodo.topic.peace_treaty.stance_f1"] == 1.0
    save_charts(results, scores, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"seeds_lodo_{c}.png" for c in ("per_topic", "per_language", "speaker_confusion", "stance_confusion")}
    assert (tmp_path / "seeds_lodo_per_topic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_authored_kfold_tests_every_authored_document_once_and_never_trains_on_it():
    import pytest
    from pydantic import ValidationError

    from training.data import load_documents
    from training.experiment import EvaluationConfig, folds

    docs = load_documents()
    cfg = EvaluationConfig(seeds_lodo=False, authored_lolo=False, authored_kfold=5)
    splits = list(folds(docs, cfg))
    assert [f.kind for f in splits] == ["authored_kfold"] * 5
    tested = Counter(d.doc_id for f in splits for d in f.test)
    assert set(tested) == {d.doc_id for d in docs if d.origin == "authored"}
    assert set(tested.values()) == {1}
    for f in splits:
        assert not {d.doc_id for d in f.train} & {d.doc_id for d in f.test}
        assert any(d.origin == "seed" for d in f.train)
        assert {d.lang for d in f.test} <= {d.lang for d in f.train}, "every test language is seen in training"
    with pytest.raises(ValidationError, match="at least 2"):
        EvaluationConfig(authored_kfold=1)
