"""Inputs for `quote-stance analyze`: .txt files, JSONL documents, folders, or stdin.

A file that cannot be read (not UTF-8, malformed JSONL line, missing `text`) is reported with
its name and line; every other document is still analyzed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from inference.document import Document


@dataclass
class Inputs:
    source: str
    published: str | None
    lang: str | None
    on_error: Callable[[str], None]
    errors: int = 0
    files: list[Path] = field(default_factory=list)

    @property
    def count(self) -> int | None:
        return len(self.files) if self.files and all(f.suffix == ".txt" for f in self.files) else None

    def _error(self, msg: str) -> None:
        self.errors += 1
        self.on_error(msg)

    def documents(self) -> Iterator[Document]:
        if self.source == "-":
            yield from self._from_text("stdin", sys.stdin.read(), is_jsonl=False)
            return
        for path in self.files:
            try:
                content = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError as exc:
                self._error(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); skipped")
                continue
            yield from self._from_text(str(path), content, is_jsonl=path.suffix == ".jsonl")

    def _from_text(self, name: str, content: str, is_jsonl: bool) -> Iterator[Document]:
        if not is_jsonl:
            yield Document(doc_id=Path(name).stem, text=content, published=self.published, lang=self.lang)
            return
        for lineno, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "text" not in record:
                    raise ValueError("record has no 'text'")
                _check_encodable(record)
                record.setdefault("doc_id", f"{Path(name).stem}-{lineno}")
                record["quotes"] = []
                if self.published and not record.get("published"):
                    record["published"] = self.published
                yield Document.from_dict(record)
            except (ValueError, ValidationError) as exc:
                self._error(f"{name}:{lineno}: {str(exc).splitlines()[0]}; skipped")


def _check_encodable(record: dict) -> None:
    """A JSON escape of half a surrogate pair ("\\ud800") decodes to a string no UTF-8 output
    can hold; such a record is refused here rather than failing when its result is written."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode: a lone surrogate ({exc.object[exc.start]!a})") from exc


def iter_inputs(source: str, published: str | None, lang: str | None, on_error: Callable[[str], None]) -> Inputs:
    inputs = Inputs(source, published, lang, on_error)
    if source != "-":
        path = Path(source)
        if path.is_dir():
            inputs.files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".jsonl"))
        elif path.is_file():
            inputs.files = [path]
        else:
            on_error(f"{source}: no such file or folder")
            inputs.errors += 1
    return inputs
