"""Checks for annotation files and predictions: schema, spans, registry labels, overlaps.

Every problem is reported with its file, line and doc id; reading never stops at the first bad
line, so one malformed record does not hide the rest (and nothing valid is dropped).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from .document import Document
from .quotemarks import quotation_marks
from .registry import Registry, default_registry


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    doc_id: str | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        doc = f" [{self.doc_id}]" if self.doc_id else ""
        return f"{where}{doc}: {self.severity}: {self.message}"


class AnnotationFileError(ValueError):
    """Raised by `read_jsonl(strict=True)` with every problem of the file listed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Document | None, list[Problem]]]:
    """Yield (line number, document or None, problems) for each non-blank line of a JSONL file."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield 0, None, [Problem(str(path), None, None, f"file is not UTF-8 ({exc.reason} at byte {exc.start})")]
        return
    if not content.strip():
        yield 0, None, [Problem(str(path), None, None, "file is empty: no documents")]
        return
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield lineno, None, [Problem(str(path), lineno, None, f"malformed JSON: {exc.msg} (column {exc.colno})")]
            continue
        doc_id = record.get("doc_id") if isinstance(record, dict) else None
        try:
            doc = Document.from_dict(record)
        except ValidationError as exc:
            yield lineno, None, [Problem(str(path), lineno, doc_id, _pydantic_message(exc))]
            continue
        yield lineno, doc, []


def read_jsonl(path: str | Path, strict: bool = True) -> list[Document]:
    """Read documents; with `strict`, raise one error listing every bad line."""
    docs, problems = [], []
    for _, doc, probs in iter_jsonl(path):
        problems.extend(probs)
        if doc is not None:
            docs.append(doc)
    if strict and problems:
        raise AnnotationFileError(problems)
    return docs


def write_jsonl(docs: Iterable[Document], path: str | Path) -> None:
    with Path(path).open("w", encoding="utf-8", newline="\n") as fh:
        for doc in docs:
            fh.write(doc.to_json() + "\n")


def check_document(doc: Document, registry: Registry | None = None, gold: bool = True) -> list[str]:
    """Content checks beyond the schema; returns messages (errors start with 'error:')."""
    registry = registry or default_registry()
    marks = quotation_marks().all
    text = doc.text
    out: list[str] = []
    if not unicodedata.is_normalized("NFC", text):
        out.append("error: text is not in Unicode NFC")
    if doc.lang is not None and doc.lang not in registry.languages:
        out.append(f"warning: language {doc.lang!r} is not one of the annotated languages")
    spans: list[tuple[int, int, str]] = []
    for q in doc.quotes:
        s, e = q.content
        content = text[s:e]
        tag = f"quote {q.id}"
        if s == e or not content.strip():
            out.append(f"error: {tag}: empty content")
            continue
        if content != content.strip():
            out.append(f"error: {tag}: content starts or ends with whitespace")
        if q.kind == "direct":
            if unpaired_edge_mark(content):
                out.append(f"error: {tag}: direct content includes its quotation marks: {content[:20]!r}…")
            before, after = text[:s].rstrip()[-1:], text[e:].lstrip()[:1]
            if before not in marks or after not in marks:
                out.append(f"error: {tag}: direct content is not enclosed in quotation marks")
        elif q.kind == "mixed" and not any(c in marks for c in content):
            out.append(f"error: {tag}: mixed content embeds no quoted fragment")
        if q.speaker is not None and q.speaker not in registry.speaker_ids:
            out.append(f"error: {tag}: unknown speaker id {q.speaker!r}")
        if gold and q.speaker is not None and q.mention is None and q.cue is None:
            out.append(f"warning: {tag}: speaker given with neither mention nor cue")
        topics = [st.topic for st in q.stances]
        for topic in topics:
            if topic not in registry.topics:
                out.append(f"error: {tag}: unknown topic {topic!r}")
        if len(set(topics)) != len(topics):
            out.append(f"error: {tag}: a topic appears twice in stances")
        for name in ("mention", "cue"):
            span = getattr(q, name)
            if span is None:
                continue
            if span[0] == span[1]:
                out.append(f"error: {tag}: empty {name} span")
            elif s < span[1] and span[0] < e and not (span[0] >= s and span[1] <= e):
                out.append(f"error: {tag}: {name} span {list(span)} partly overlaps the content")
        spans.append((s, e, q.id))
    spans.sort()
    for (s1, e1, id1), (s2, e2, id2) in zip(spans, spans[1:]):
        if (s1, e1) == (s2, e2):
            out.append(f"error: quotes {id1} and {id2} have the same content span")
        elif s2 < e1 and e2 > e1:
            out.append(f"error: quotes {id1} and {id2} overlap without nesting")
    return out


def unpaired_edge_mark(content: str) -> bool:
    """True if the content starts or ends with a mark that is not paired inside it.

    A direct quote may begin with a nested quote (““২+২” কাঠামো …”): that leading mark is
    closed inside the content, so it is not the quote's own opening mark.
    """
    qm = quotation_marks()
    first, last = content[0], content[-1]
    if len(content) > 1 and first in qm.openers and qm.closes(first, last):
        return True
    if first in qm.all and not any(qm.closes(first, c) for c in content[1:]):
        return True
    return last in qm.all and not any(qm.closes(o, last) for o in content[:-1])


def validate_paths(paths: Iterable[str | Path], registry: Registry | None = None) -> list[Problem]:
    """Validate JSONL files (directories are searched recursively); doc ids unique across all."""
    registry = registry or default_registry()
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    files = expand_paths(paths)
    if not files:
        return [Problem(", ".join(map(str, paths)), None, None, "no .jsonl files found")]
    for path in files:
        for lineno, doc, probs in iter_jsonl(path):
            problems.extend(probs)
            if doc is None:
                continue
            where = f"{path}:{lineno}"
            if doc.doc_id in seen:
                problems.append(Problem(str(path), lineno, doc.doc_id, f"duplicate doc_id (first at {seen[doc.doc_id]})"))
            seen.setdefault(doc.doc_id, where)
            for msg in check_document(doc, registry):
                severity, _, message = msg.partition(": ")
                problems.append(Problem(str(path), lineno, doc.doc_id, message, severity))
    return problems


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*.jsonl")))
        else:
            out.append(p)
    return out


def _pydantic_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "document"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
