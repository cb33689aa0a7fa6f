"""`quote-stance batch --engine spark` on local[2] writes what the local engine writes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from inference.analyzer import load_analyzer
from inference.batch import errors_path, run_local
from inference.batch_spark import run_spark, spark_session
from training.cli import app

runner = CliRunner()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.ui.showConsoleProgress": "false"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fast():
    return load_analyzer("fast")


@pytest.fixture(scope="module")
def corpus(all_annotation_files, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "annotated.jsonl"
    path.write_text("".join(f.read_text(encoding="utf-8") for f in all_annotation_files), encoding="utf-8")
    return path


def _errors(output: Path) -> list[dict]:
    rows = [json.loads(line) for line in errors_path(output).read_text(encoding="utf-8").splitlines()]
    return sorted(rows, key=lambda e: e["line"])


def test_spark_engine_writes_the_same_rows_as_the_local_engine_for_all_annotated_documents(spark, fast, corpus, tmp_path):
    local, distributed = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    run_local(corpus, local, analyzer=fast, progress=False)
    stats = run_spark(corpus, distributed, model="fast", spark=spark, progress=False)
    n = len(corpus.read_text(encoding="utf-8").splitlines())
    assert (stats.read, stats.written, stats.errors) == (n, n, 0)
    local_rows, spark_rows = pq.read_table(local).to_pylist(), pq.read_table(distributed).to_pylist()
    assert len(spark_rows) == n and len({r["doc_id"] for r in spark_rows}) == n
    assert sorted(spark_rows, key=lambda r: r["doc_id"]) == sorted(local_rows, key=lambda r: r["doc_id"])
    assert sum(r["n_quotes"] for r in spark_rows) > 1000


def test_spark_engine_reports_the_same_errors_and_resumes_without_duplicates(spark, fast, corpus, tmp_path):
    lines = corpus.read_text(encoding="utf-8").splitlines()
    no_text = json.loads(lines[7])
    del no_text["text"]
    bad = [lines[0], lines[1][:300], json.dumps(no_text, ensure_ascii=False), *lines[2:6], lines[3]]
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(bad) + "\n", encoding="utf-8")
    local, distributed = tmp_path / "local.jsonl", tmp_path / "spark.jsonl"
    run_local(src, local, analyzer=fast, progress=False)
    run_spark(src, distributed, model="fast", spark=spark, progress=False)
    assert _errors(distributed) == _errors(local)
    assert [(e["line"], e["error"].split(":")[0]) for e in _errors(distributed)] == [
        (2, "malformed JSON"),
        (3, "record has no 'text'"),
        (8, "duplicate doc_id (first at line 5)"),
    ]
    assert sorted(local.read_text(encoding="utf-8").splitlines()) == sorted(distributed.read_text(encoding="utf-8").splitlines())

    src.write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    again = runner.invoke(app, ["batch", str(src), str(distributed), "--engine", "spark", "--model", "fast", "--quiet"])
    assert again.exit_code == 0, again.output
    assert "12 read, 7 written, 5 already in" in again.output
    assert spark.sparkContext._jsc is not None  # the CLI ran in the active session and left it open
    ids = [json.loads(line)["doc_id"] for line in distributed.read_text(encoding="utf-8").splitlines()]
    assert sorted(ids) == sorted(json.loads(line)["doc_id"] for line in lines[:12])
