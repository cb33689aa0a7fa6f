"""Batch scoring of corpora: JSONL or Parquet in, Parquet or JSONL out, in bounded memory.

Both engines (`local` here, `spark` in `inference.batch_spark`) share what decides the output:
how an input record becomes a Document (`parse_line`, `parse_row`), how a result becomes an
output row (`result_row`), and `ResultWriter`, which skips documents already in the output
(so a re-run resumes instead of duplicating), sends every failure to `OUTPUT.errors.jsonl`
and never leaves a half-written Parquet file behind.

Output rows (Parquet columns; JSONL output holds the `record` itself, one per line):
`doc_id`, `lang`, `published` (YYYY-MM-DD or null), `n_quotes`, `record` (the document in the
annotation format, as JSON).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from inference.document import Document

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
INPUT_FIELDS = ("doc_id", "text", "published", "lang")
OUTPUT_FIELDS = ("doc_id", "lang", "published", "n_quotes", "record")
PARSE, ANALYZE = "parse", "analyze"
CONFIG_FILE = "resources/batch.yaml"


@lru_cache(maxsize=1)
def batch_config() -> dict[str, Any]:
    """Defaults (batch size, part size, Spark settings) from `resources/batch.yaml`."""
    return yaml.safe_load(resources.files("inference").joinpath(CONFIG_FILE).read_text(encoding="utf-8"))


class BatchError(ValueError):
    """A problem with the run as a whole (unknown format, unreadable output): nothing is scored."""


def file_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise BatchError(f"{path}: unknown format; use {', '.join(JSONL_SUFFIXES + PARQUET_SUFFIXES)}")


def errors_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".errors.jsonl")


# -- input records -> Documents ---------------------------------------------------------------


def parse_line(line: str, lineno: int, default_prefix: str) -> Document:
    """One JSONL line as a quote-less Document; ValueError with the reason when it is not one."""
    if lineno == 1:
        line = line.lstrip("\ufeff")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    return parse_row(record, lineno, default_prefix)


def parse_row(record: Any, lineno: int, default_prefix: str) -> Document:
    """A record with `text` and optional `doc_id`, `published`, `lang` (other fields, such as gold
    `quotes`, are ignored) as a quote-less Document; a missing id becomes `<prefix>-<line>`."""
    if not isinstance(record, dict):
        raise ValueError(f"record is a JSON {type(record).__name__}, not an object")
    text = record.get("text")
    if text is None:
        raise ValueError("record has no 'text'")
    if not isinstance(text, str):
        raise ValueError(f"'text' is a {type(text).__name__}, not a string")
    doc_id = record.get("doc_id")
    if doc_id is None or doc_id == "":
        doc_id = f"{default_prefix}-{lineno}"
    elif not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        raise ValueError(f"'doc_id' is a {type(doc_id).__name__}, not a string")
    lang = record.get("lang") or None
    if lang is not None and not isinstance(lang, str):
        raise ValueError(f"'lang' is a {type(lang).__name__}, not a string")
    return Document(doc_id=str(doc_id), text=text, published=_published(record.get("published")), lang=lang)


def _published(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            parsed = dt.date.fromisoformat(value)
            if parsed.isoformat() == value:
                return parsed
            raise ValueError
        except ValueError:
            try:
                return dt.datetime.fromisoformat(value).date()
            except ValueError:
                pass
    raise ValueError(f"'published' must be a date YYYY-MM-DD, got {value!r}")


@dataclass
class InputItem:
    """One input record: its line (JSONL) or row (Parquet) number, from 1, and a Document or the
    reason it is none."""

    line: int
    doc: Document | None = None
    doc_id: str | None = None
    error: str | None = None


def iter_input(path: str | Path, chunk_rows: int = 1024) -> Iterator[InputItem]:
    """Stream the records of a JSONL or Parquet file without reading it whole."""
    path = Path(path)
    prefix = path.stem
    if file_format(path) == "jsonl":
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    line = raw.rstrip(b"\r\n").decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield InputItem(lineno, error=f"not UTF-8 ({exc.reason} at byte {exc.start})")
                    continue
                yield _item(lambda: parse_line(line, lineno, prefix), lineno, line)
        return
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    columns = [c for c in INPUT_FIELDS if c in pf.schema_arrow.names]
    if "text" not in columns:
        raise BatchError(f"{path}: no 'text' column (columns: {', '.join(pf.schema_arrow.names)})")
    rowno = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
        for record in batch.to_pylist():
            rowno += 1
            yield _item(lambda: parse_row(record, rowno, prefix), rowno, record)


def _item(parse: Callable[[], Document], lineno: int, raw: Any) -> InputItem:
    try:
        doc = parse()
    except ValueError as exc:
        return InputItem(lineno, doc_id=raw_doc_id(raw), error=str(exc).splitlines()[0])
    return InputItem(lineno, doc=doc, doc_id=doc.doc_id)


def raw_doc_id(raw: Any) -> str | None:
    """The doc_id of a record that failed to parse, when it can still be read."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    value = raw.get("doc_id") if isinstance(raw, dict) else None
    return str(value) if isinstance(value, (str, int)) and value != "" else None


def count_input(path: str | Path) -> int:
    """Records to expect (for the progress bar): non-blank lines, or Parquet rows from metadata."""
    path = Path(path)
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with path.open("rb") as fh:
        return sum(1 for raw in fh if raw.strip())


# -- analysis with per-document isolation -----------------------------------------------------


def analyze_isolated(analyzer, docs: list[Document], batch_size: int = 64) -> Iterator[tuple[Document, Document | Exception]]:
    """(input, result) per document; a batch that raises is redone one document at a time, so
    one document that cannot be analyzed fails alone."""
    for start in range(0, len(docs), batch_size):
        chunk = docs[start : start + batch_size]
        try:
            results: list[Document | Exception] = list(analyzer.analyze_many(chunk, batch_size=len(chunk)))
        except Exception:
            results = []
            for doc in chunk:
                try:
                    results.append(next(analyzer.analyze_many([doc], batch_size=1)))
                except Exception as exc:
                    results.append(exc)
        yield from zip(chunk, results)


def result_row(line: int, record_json: str) -> dict[str, Any]:
    """An output row from a model result: an annotation-format record, or `{"doc_id", "error"}`."""
    record = json.loads(record_json)
    if "error" in record:
        return error_row(line, record.get("doc_id"), ANALYZE, record["error"])
    return {
        "line": line,
        "doc_id": record["doc_id"],
        "lang": record.get("lang"),
        "published": record.get("published"),
        "n_quotes": len(record.get("quotes", [])),
        "record": record_json,
        "stage": None,
        "error": None,
    }


def error_row(line: int, doc_id: str | None, stage: str, reason: str) -> dict[str, Any]:
    return {"line": line, "doc_id": doc_id, "lang": None, "published": None, "n_quotes": None, "record": None, "stage": stage, "error": reason}


def exception_reason(exc: Exception) -> str:
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# -- output: resume, parts, errors -----------------------------------------------------------


def output_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("lang", pa.string()),
            ("published", pa.string()),
            ("n_quotes", pa.int32()),
            ("record", pa.string()),
        ]
    )


@dataclass
class BatchStats:
    """Counts of one run: records read, rows written, documents skipped because OUTPUT already
    held them (`previous` = rows OUTPUT held at the start), failures sent to the errors file."""

    read: int = 0
    written: int = 0
    skipped: int = 0
    errors: int = 0
    previous: int = 0
    seconds: float = 0.0

    @property
    def docs_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


class ResultWriter:
    """Appends result rows to OUTPUT, errors to OUTPUT.errors.jsonl (rewritten by each run).

    On opening it reads the doc ids already in OUTPUT: `previous` holds them, and the engines
    skip those documents. JSONL output is appended line by line (a line cut short by an
    interruption is dropped first). Parquet output is written as closed part files in
    `OUTPUT.parts/` (each renamed into place when complete) and merged into OUTPUT by `close()`,
    so an interrupted run keeps every finished part and OUTPUT is never a truncated file.
    """

    def __init__(self, output: str | Path, source: str | Path, part_rows: int | None = None):
        self.output = Path(output)
        self.format = file_format(self.output)
        self.source = str(source)
        self.part_rows = part_rows or batch_config()["part_rows"]
        self.parts_dir = self.output.with_name(self.output.name + ".parts")
        self.errors_file = errors_path(self.output)
        self.stats = BatchStats()
        self.previous: set[str] = set()
        self.first_line: dict[str, int] = {}
        self._buffer: list[dict[str, Any]] = []
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._scan_existing()
        self.stats.previous = len(self.previous)
        self._errors = self.errors_file.open("w", encoding="utf-8", newline="\n")
        self._jsonl = self.output.open("a", encoding="utf-8", newline="\n") if self.format == "jsonl" else None

    def _scan_existing(self) -> None:
        if self.format == "jsonl":
            self._scan_jsonl()
            return
        import pyarrow.parquet as pq

        if self.output.exists():
            try:
                ids = pq.read_table(self.output, columns=["doc_id"]).column("doc_id").to_pylist()
            except Exception as exc:
                raise BatchError(f"{self.output} exists but is not a Parquet file written by batch ({exc})") from exc
            self.previous.update(ids)
        if not self.parts_dir.is_dir():
            return
        in_output = set(self.previous)
        for part in sorted(self.parts_dir.iterdir()):
            ids = None
            if part.suffix == ".parquet":
                try:
                    ids = pq.read_table(part, columns=["doc_id"]).column("doc_id").to_pylist()
                except Exception:
                    ids = None
            if ids is None or any(i in in_output for i in ids):
                part.unlink()  # unfinished, or merged into OUTPUT by an interrupted close()
                continue
            self.previous.update(ids)

    def _scan_jsonl(self) -> None:
        if not self.output.exists():
            return
        keep = 0
        with self.output.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # cut short by an interruption: dropped below
                keep += len(raw)
                if not raw.strip():
                    continue
                try:
                    self.previous.add(json.loads(raw)["doc_id"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise BatchError(f"{self.output}:{lineno}: not a record written by batch; refusing to append") from exc
        if keep < self.output.stat().st_size:
            with self.output.open("r+b") as fh:
                fh.truncate(keep)

    def admit(self, line: int, doc_id: str) -> str | None:
        """'skip' for a document already in OUTPUT, an error for a doc_id seen earlier in this
        input, None for a document to score."""
        if doc_id in self.previous:
            self.stats.skipped += 1
            return "skip"
        first = self.first_line.setdefault(doc_id, line)
        if first != line:
            return f"duplicate doc_id (first at line {first})"
        return None

    def add(self, row: dict[str, Any]) -> None:
        if row.get("error") is not None:
            self.stats.errors += 1
            entry = {"source": self.source, "line": row["line"], "doc_id": row["doc_id"], "stage": row["stage"], "error": row["error"]}
            self._errors.write(json.dumps(entry, ensure_ascii=False) + "\n")
            return
        self.stats.written += 1
        if self._jsonl is not None:
            self._jsonl.write(row["record"] + "\n")
            return
        self._buffer.append({k: row[k] for k in OUTPUT_FIELDS})
        if len(self._buffer) >= self.part_rows:
            self._write_part()

    def flush(self) -> None:
        self._errors.flush()
        if self._jsonl is not None:
            self._jsonl.flush()

    def _write_part(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        self.parts_dir.mkdir(exist_ok=True)
        n = len(list(self.parts_dir.glob("part-*.parquet")))
        name = f"part-{n:06d}.parquet"
        tmp = self.parts_dir / (name + ".tmp")
        pq.write_table(pa.Table.from_pylist(self._buffer, schema=output_schema()), tmp)
        os.replace(tmp, self.parts_dir / name)
        self._buffer = []

    def close(self) -> BatchStats:
        """Finish OUTPUT: flush JSONL, or merge the Parquet parts into it (written aside, then
        renamed, so OUTPUT is complete at every moment)."""
        self._errors.close()
        if self._jsonl is not None:
            self._jsonl.close()
            return self.stats
        self._write_part()
        parts = sorted(self.parts_dir.glob("part-*.parquet")) if self.parts_dir.is_dir() else []
        if not parts and self.output.exists():
            return self.stats
        import pyarrow.parquet as pq

        tmp = self.output.with_name(self.output.name + ".tmp")
        with pq.ParquetWriter(tmp, output_schema()) as writer:
            for source in ([self.output] if self.output.exists() else []) + parts:
                for batch in pq.ParquetFile(source).iter_batches():
                    writer.write_batch(batch)
        os.replace(tmp, self.output)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return self.stats

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        if not self._errors.closed:
            self._errors.close()
        if self._jsonl is not None and not self._jsonl.closed:
            self._jsonl.close()


# -- models -----------------------------------------------------------------------------------


def pipeline_dir(model: str | Path | None) -> Path | None:
    """The pipeline directory behind a preset, a pipeline directory or a saved pyfunc model
    directory; None for MLflow URIs (resolved by their own loaders)."""
    from inference.analyzer import PRESETS, bundled_model_dir, default_preset

    if model is None or model == "default":
        model = default_preset()
    if isinstance(model, str) and model in PRESETS:
        return bundled_model_dir(model)
    if isinstance(model, str) and model.split(":", 1)[0] in ("models", "runs"):
        return None
    path = Path(model)
    if (path / "MLmodel").is_file():
        from inference.mlflow_model import PIPELINE_ARTIFACT

        return path / "artifacts" / PIPELINE_ARTIFACT
    return path


def load_batch_analyzer(model: str | Path | None):
    from inference.analyzer import Analyzer, load_analyzer

    path = pipeline_dir(model)
    return load_analyzer(str(model)) if path is None else Analyzer.load(path)


# -- the local engine -------------------------------------------------------------------------


def run_local(
    input_path: str | Path,
    output: str | Path,
    model: str | Path | None = None,
    batch_size: int | None = None,
    part_rows: int | None = None,
    progress: bool = True,
    analyzer=None,
) -> BatchStats:
    """Score INPUT into OUTPUT in this process: records are read, analyzed and written
    `batch_size` at a time, so memory does not grow with the corpus. An already loaded
    `analyzer` replaces `model`."""
    import time

    from tqdm import tqdm

    start = time.perf_counter()
    batch_size = batch_size or batch_config()["batch_size"]
    part_rows = part_rows or batch_config()["part_rows"]
    input_path = Path(input_path)
    file_format(input_path), file_format(output)
    analyzer = analyzer or load_batch_analyzer(model)
    with ResultWriter(output, input_path, part_rows=part_rows) as writer:
        pending: list[tuple[int, Document]] = []

        def score() -> None:
            lines = {doc.doc_id: line for line, doc in pending}
            for doc, result in analyze_isolated(analyzer, [d for _, d in pending], batch_size):
                line = lines[doc.doc_id]
                if isinstance(result, Exception):
                    writer.add(error_row(line, doc.doc_id, ANALYZE, exception_reason(result)))
                else:
                    writer.add(result_row(line, json.dumps(result.to_dict(), ensure_ascii=False)))
            writer.flush()
            pending.clear()

        total = count_input(input_path) if progress else None
        for item in tqdm(iter_input(input_path), total=total, desc="scoring", unit="doc", disable=not progress):
            writer.stats.read += 1
            if item.error is not None:
                writer.add(error_row(item.line, item.doc_id, PARSE, item.error))
                continue
            verdict = writer.admit(item.line, item.doc.doc_id)
            if verdict == "skip":
                continue
            if verdict is not None:
                writer.add(error_row(item.line, item.doc.doc_id, PARSE, verdict))
                continue
            pending.append((item.line, item.doc))
            if len(pending) >= batch_size:
                score()
        if pending:
            score()
        stats = writer.close()
    stats.seconds = time.perf_counter() - start
    return stats
