"""`mlflow models serve` on the registered champion answers in the annotation format.

The bundled fast pipeline is logged and registered exactly as training does it
(`log_pipeline_model`), in a temporary tracking store, then served on a free local port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from inference.analyzer import bundled_model_dir
from inference.document import Document
from inference.mlflow_model import log_pipeline_model
from inference.validate import check_document
from training.train import CHAMPION, MODEL_NAME

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def champion_store(tmp_path_factory) -> str:
    import mlflow
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment(MODEL_NAME, artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_pipeline_model(bundled_model_dir("fast"), registered_model_name=MODEL_NAME)
        MlflowClient(uri).set_registered_model_alias(MODEL_NAME, CHAMPION, str(info.registered_model_version))
    finally:
        mlflow.set_tracking_uri(previous)
    return uri


@pytest.fixture(scope="module")
def server(champion_store, tmp_path_factory):
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": champion_store, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    log = (tmp_path_factory.mktemp("serve") / "server.log").open("w")
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL_NAME}@{CHAMPION}",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after 120 s: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def arabic_and_japanese(seed_docs) -> list[Document]:
    return [next(d for d in seed_docs if d.lang == lang) for lang in ("ar", "ja")]


def _requests(docs: list[Document]) -> list[dict]:
    return [{"doc_id": d.doc_id, "text": d.text, "published": d.published.isoformat()} for d in docs]


def _assert_annotation_documents(predictions: list, sent: list[Document]) -> None:
    assert len(predictions) == len(sent)
    for record, gold in zip(predictions, sent):
        doc = Document.from_dict(record)
        assert (doc.doc_id, doc.text, doc.lang, doc.published) == (gold.doc_id, gold.text, gold.lang, gold.published)
        assert doc.quotes, f"{doc.doc_id}: no quotes found"
        assert [m for m in check_document(doc, gold=False) if m.startswith("error")] == []


def test_served_champion_answers_arabic_and_japanese_seeds_in_annotation_format(server, arabic_and_japanese):
    response = requests.post(f"{server}/invocations", json={"dataframe_records": _requests(arabic_and_japanese)}, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"predictions"}
    _assert_annotation_documents(body["predictions"], arabic_and_japanese)


def test_served_champion_accepts_split_and_inputs_payloads_alike(server, arabic_and_japanese):
    rows = _requests(arabic_and_japanese)
    split = {"dataframe_split": {"columns": list(rows[0]), "data": [list(r.values()) for r in rows]}}
    answers = [requests.post(f"{server}/invocations", json=p, timeout=120) for p in (split, {"inputs": rows})]
    assert [a.status_code for a in answers] == [200, 200]
    first, second = (a.json()["predictions"] for a in answers)
    assert first == second
    _assert_annotation_documents(first, arabic_and_japanese)


def test_served_champion_rejects_a_record_without_text(server):
    response = requests.post(f"{server}/invocations", json={"dataframe_records": [{"doc_id": "no-text"}]}, timeout=60)
    assert response.status_code == 400
    assert "text" in response.json()["message"]


def test_served_json_output_param_gives_one_json_string_per_document(server, arabic_and_japanese):
    payload = {"dataframe_records": _requests(arabic_and_japanese), "params": {"output": "json"}}
    response = requests.post(f"{server}/invocations", json=payload, timeout=120)
    assert response.status_code == 200, response.text
    _assert_annotation_documents([json.loads(p) for p in response.json()["predictions"]], arabic_and_japanese)

