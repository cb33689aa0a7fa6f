import json

import pytest
from pydantic import ValidationError

from inference.document import Document, Quote


def test_every_annotated_document_round_trips_dict_to_dict(all_annotation_files):
    for path in all_annotation_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            assert Document.from_dict(d).to_dict() == d


def test_jsonl_to_objects_to_jsonl_is_byte_identical(seed_lines):
    for line in seed_lines:
        assert Document.from_json(line).to_json() == line


def test_fields_absent_from_input_stay_absent():
    d = {"doc_id": "x", "text": "Lavrov said: “No.”", "quotes": []}
    assert Document.from_dict(d).to_dict() == d


def test_span_past_end_of_text_is_rejected_with_the_quote_id(seed_docs):
    d = seed_docs[2].to_dict()
    d["quotes"][0]["content"] = [0, len(d["text"]) + 5]
    with pytest.raises(ValidationError, match="q1: content span .* runs past the end"):
        Document.from_dict(d)


def test_bad_dates_kinds_and_reversed_spans_are_rejected():
    base = {"doc_id": "x", "text": "abc"}
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        Document.from_dict({**base, "published": "2/11/2013"})
    with pytest.raises(ValidationError):
        Quote.from_dict({"id": "q1", "kind": "paraphrase", "content": [0, 1]})
    with pytest.raises(ValidationError, match="start <= end"):
        Quote.from_dict({"id": "q1", "kind": "direct", "content": [2, 1]})


def test_quote_text_reads_the_span_from_the_document(seed_docs):
    doc = next(d for d in seed_docs if d.doc_id == "seed-004")
    shoigu = [q for q in doc.quotes if q.speaker == "shoigu" and q.kind == "direct"]
    assert any("ミサイル防衛" in doc.quote_text(q) for q in shoigu)
