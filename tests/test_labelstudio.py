import json

import pytest

from inference.document import Document
from training.labelstudio import LabelStudioError, from_task, import_tasks, labeling_config, to_task
from tests.conftest import ANNOTATIONS


def test_every_seed_document_round_trips_through_label_studio(seed_docs):
    for doc in seed_docs:
        assert from_task(json.loads(json.dumps(to_task(doc)))).to_dict() == doc.to_dict()


def test_predictions_keep_their_confidences_through_label_studio(seed_docs):
    d = seed_docs[1].to_dict()
    for q in d["quotes"]:
        q["confidence"] = {"quote": 0.9, "speaker": 0.8} if q["speaker"] else {"quote": 0.7}
        for s in q["stances"]:
            s["confidence"] = 0.6
    pred = Document.from_dict(d)
    task = to_task(pred)
    assert "predictions" in task
    assert from_task(task).to_dict() == pred.to_dict()


def test_shifted_offsets_are_reported_not_silently_accepted(seed_docs):
    task = to_task(seed_docs[0])
    region = next(r for r in task["annotations"][0]["result"] if r.get("type") == "labels")
    region["value"]["start"] += 1
    region["value"]["end"] += 1
    with pytest.raises(LabelStudioError, match="do not match its text"):
        from_task(task)


def test_import_of_a_non_json_file_is_a_clear_error(tmp_path):
    p = tmp_path / "export.json"
    p.write_text("<html>", encoding="utf-8")
    with pytest.raises(LabelStudioError, match="not a Label Studio JSON export"):
        import_tasks(p)


def test_committed_labeling_config_matches_the_registry():
    assert (ANNOTATIONS / "labelstudio.xml").read_text(encoding="utf-8") == labeling_config()
