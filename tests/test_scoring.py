"""The scorer: overlap vs exact matching, attribution, end-to-end, per language."""

from __future__ import annotations

from inference.document import Document, Quote
from inference.scoring import score


def _doc(quotes, lang="en"):
    return Document(doc_id="d", lang=lang, text="x" * 100, quotes=quotes)


def test_perfect_prediction(seed_docs):
    r = score(seed_docs, seed_docs)
    assert r["overall"]["overlap"]["f1"] == 1.0 and r["overall"]["exact"]["f1"] == 1.0
    assert r["overall"]["end_to_end"] == 1.0 and r["overall"]["stance_macro_f1"] == 1.0
    assert set(r["by_lang"]) == {"bn", "ar", "vi", "ja"}


def test_overlap_one_to_one_and_exact():
    gold = _doc([Quote(id="q1", kind="direct", content=(0, 10), speaker="a"),
                 Quote(id="q2", kind="direct", content=(20, 30), speaker="b")])
    pred = _doc([Quote(id="q1", kind="direct", content=(2, 25), speaker="a"),
                 Quote(id="q2", kind="direct", content=(20, 30), speaker="x")])
    r = score([gold], [pred])["overall"]
    assert r["overlap"]["f1"] == 1.0
    assert r["exact"]["precision"] == 0.5
    assert r["end_to_end"] == 0.5
    assert r["attribution"] == 0.0


def test_empty_prediction():
    gold = _doc([Quote(id="q1", kind="direct", content=(0, 10), speaker="a")])
    r = score([gold], [_doc([])])["overall"]
    assert r["overlap"]["f1"] == 0.0 and r["end_to_end"] == 0.0
