"""`quote-stance batch --engine local`: every annotation document scored, failures isolated,
re-runs resumed without duplicates, Parquet and JSONL alike."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from inference.analyzer import load_analyzer
from inference.batch import analyze_isolated, errors_path, run_local
from inference.document import Document
from inference.validate import check_document
from training.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(all_annotation_files, tmp_path_factory) -> Path:
    """Every annotated document (seeds + authored), gold quotes included, as one JSONL file."""
    path = tmp_path_factory.mktemp("corpus") / "annotated.jsonl"
    path.write_text("".join(f.read_text(encoding="utf-8") for f in all_annotation_files), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus_lines(corpus) -> list[str]:
    return corpus.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def sample(corpus_lines, tmp_path_factory) -> Path:
    """Every seed and authored documents of several languages: 64 documents, for the resume checks."""
    path = tmp_path_factory.mktemp("sample") / "sample.jsonl"
    path.write_text("\n".join(corpus_lines[:64]) + "\n", encoding="utf-8")
    return path


def _by_id(rows: list[dict], ids=None) -> list[dict]:
    return sorted((r for r in rows if ids is None or r["doc_id"] in ids), key=lambda r: r["doc_id"])


@pytest.fixture(scope="module")
def fast():
    return load_analyzer("fast")


@pytest.fixture(scope="module")
def reference(fast, corpus, tmp_path_factory) -> list[dict]:
    """One clean local run over the whole corpus, as Parquet rows."""
    out = tmp_path_factory.mktemp("reference") / "all.parquet"
    stats = run_local(corpus, out, analyzer=fast, progress=False)
    n = len(corpus.read_text(encoding="utf-8").splitlines())
    assert (stats.read, stats.written, stats.errors) == (n, n, 0)
    return pq.read_table(out).to_pylist()


def _records(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return [json.loads(r["record"]) for r in pq.read_table(path).to_pylist()]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _errors(output: Path) -> list[dict]:
    return [json.loads(line) for line in errors_path(output).read_text(encoding="utf-8").splitlines()]


def test_every_annotated_document_gets_one_row_equal_to_the_analyzer_output(reference, corpus_lines, fast):
    gold = [Document.from_json(line) for line in corpus_lines]
    assert [r["doc_id"] for r in reference] == [d.doc_id for d in gold]
    raw = [Document(doc_id=d.doc_id, text=d.text, published=d.published, lang=d.lang) for d in gold]
    direct = [d.to_dict() for d in fast.analyze_many(raw)]
    assert [json.loads(r["record"]) for r in reference] == direct
    for row, g in zip(reference, gold):
        doc = Document.from_json(row["record"])
        assert doc.text == g.text and doc.published == g.published
        assert (row["lang"], row["published"], row["n_quotes"]) == (doc.lang, g.published.isoformat(), len(doc.quotes))
        assert [m for m in check_document(doc, gold=False) if m.startswith("error")] == []
    assert sum(r["n_quotes"] for r in reference) > 1000


def test_malformed_line_and_record_without_text_go_to_the_errors_file(fast, corpus_lines, tmp_path, reference):
    seeds = corpus_lines[:5]
    no_text = json.loads(corpus_lines[5])
    del no_text["text"]
    lines = [seeds[0], seeds[1][: len(seeds[1]) // 2], seeds[2], json.dumps(no_text, ensure_ascii=False), "", seeds[3], seeds[4]]
    src = tmp_path / "news.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    result = runner.invoke(app, ["batch", str(src), str(out), "--model", "fast", "--quiet"])
    assert result.exit_code == 1, result.output
    errors = _errors(out)
    assert [(e["line"], e["stage"]) for e in errors] == [(2, "parse"), (4, "parse")]
    assert errors[0]["error"].startswith("malformed JSON") and errors[0]["doc_id"] is None
    assert errors[1] == {"source": str(src), "line": 4, "doc_id": no_text["doc_id"], "stage": "parse", "error": "record has no 'text'"}
    by_id = {json.loads(r["record"])["doc_id"]: json.loads(r["record"]) for r in reference}
    written = _records(out)
    assert [r["doc_id"] for r in written] == ["seed-000", "seed-002", "seed-003", "seed-004"]
    assert written == [by_id[r["doc_id"]] for r in written]


def test_a_document_that_fails_to_analyze_fails_alone(fast, seed_docs):
    class Fragile:
        """The real analyzer, except that any batch holding seed-003 raises (as a broken input would)."""

        def analyze_many(self, docs, batch_size=64):
            docs = list(docs)
            if any(d.doc_id == "seed-003" for d in docs):
                raise RuntimeError("cannot analyze seed-003")
            return fast.analyze_many(docs, batch_size=batch_size)

    inputs = [d.model_copy(update={"quotes": []}) for d in seed_docs]
    results = list(analyze_isolated(Fragile(), inputs, batch_size=4))
    assert [d.doc_id for d, _ in results] == [d.doc_id for d in seed_docs]
    failed = [d.doc_id for d, r in results if isinstance(r, Exception)]
    assert failed == ["seed-003"]
    expected = {d.doc_id: d.to_dict() for d in fast.analyze_many(inputs)}
    assert all(r.to_dict() == expected[d.doc_id] for d, r in results if not isinstance(r, Exception))


def test_rerun_skips_what_is_written_and_adds_no_duplicate_rows(fast, sample, corpus_lines, tmp_path, reference):
    half = tmp_path / "half.jsonl"
    half.write_text("\n".join(corpus_lines[:25]) + "\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    first = run_local(half, out, analyzer=fast, progress=False)
    second = run_local(sample, out, analyzer=fast, progress=False)
    third = run_local(sample, out, analyzer=fast, progress=False)
    assert (first.written, second.skipped, second.written, third.skipped, third.written) == (25, 25, 39, 64, 0)
    assert pq.read_table(out).to_pylist() == reference[:64]
    assert not out.with_name(out.name + ".parts").exists()


def test_interrupted_parquet_run_keeps_its_finished_parts_and_is_completed(fast, sample, tmp_path, reference, monkeypatch):
    import inference.batch as batch

    real = batch.analyze_isolated
    calls = {"n": 0}

    def interrupted(analyzer, docs, batch_size=64):
        calls["n"] += 1
        if calls["n"] == 4:  # the fourth batch of 8
            raise KeyboardInterrupt
        return real(analyzer, docs, batch_size)

    out = tmp_path / "out.parquet"
    monkeypatch.setattr(batch, "analyze_isolated", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_local(sample, out, analyzer=fast, batch_size=8, part_rows=10, progress=False)
    monkeypatch.setattr(batch, "analyze_isolated", real)
    parts = out.with_name(out.name + ".parts")
    assert not out.exists() and len(list(parts.glob("part-*.parquet"))) == 2  # 24 scored, 20 in closed parts
    resumed = run_local(sample, out, analyzer=fast, progress=False)
    assert (resumed.previous, resumed.skipped, resumed.written) == (20, 20, 44)
    assert _by_id(pq.read_table(out).to_pylist()) == _by_id(reference[:64])


def test_jsonl_output_cut_mid_line_is_repaired_and_completed(fast, sample, corpus_lines, tmp_path, reference):
    head = tmp_path / "head.jsonl"
    head.write_text("\n".join(corpus_lines[:20]) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run_local(head, out, analyzer=fast, progress=False)
    content = out.read_bytes()
    out.write_bytes(content[: len(content) - 200])  # the last record cut short, as by a kill
    resumed = run_local(sample, out, analyzer=fast, progress=False)
    assert (resumed.previous, resumed.written) == (19, 45)
    assert _by_id(_records(out)) == _by_id([json.loads(r["record"]) for r in reference[:64]])


def test_parquet_input_with_date_column_scores_like_jsonl(fast, corpus_lines, tmp_path, reference):
    docs = [Document.from_json(line) for line in corpus_lines[:12]]
    table = pa.table(
        {
            "doc_id": [d.doc_id for d in docs],
            "text": [d.text for d in docs],
            "published": pa.array([d.published for d in docs], type=pa.date32()),
            "lang": [d.lang for d in docs],
        }
    )
    src = tmp_path / "docs.parquet"
    pq.write_table(table, src)
    out = tmp_path / "scored.jsonl"
    stats = run_local(src, out, analyzer=fast, progress=False)
    assert (stats.read, stats.written, stats.errors) == (12, 12, 0)
    by_id = {r["doc_id"]: json.loads(r["record"]) for r in reference}
    assert _records(out) == [by_id[d.doc_id] for d in docs]


def test_repeated_doc_id_is_scored_once_and_reported(fast, corpus_lines, tmp_path):
    src = tmp_path / "dup.jsonl"
    src.write_text("\n".join([corpus_lines[0], corpus_lines[1], corpus_lines[0]]) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    stats = run_local(src, out, analyzer=fast, progress=False)
    assert (stats.written, stats.errors) == (2, 1)
    assert _errors(out)[0]["error"] == "duplicate doc_id (first at line 1)"
    assert [r["doc_id"] for r in _records(out)] == ["seed-000", "seed-001"]


def test_unknown_output_format_is_refused_before_any_work(corpus, tmp_path):
    result = runner.invoke(app, ["batch", str(corpus), str(tmp_path / "out.csv"), "--quiet"])
    assert result.exit_code == 1
    assert "unknown format" in result.output
    assert not (tmp_path / "out.csv").exists()
