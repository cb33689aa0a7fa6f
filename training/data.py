"""The annotation set as Hugging Face `datasets`: one row per document, or one per quote."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import datasets
from datasets import ClassLabel, Features, List, Value

from inference.document import QUOTE_KINDS, STANCE_LABELS, Document
from inference.validate import expand_paths, read_jsonl
from training.annotation_build import ANNOTATIONS

SPAN = List(Value("int32"), length=2)

DOCUMENT_FEATURES = Features(
    {
        "doc_id": Value("string"),
        "lang": Value("string"),
        "published": Value("string"),
        "source": Value("string"),
        "origin": Value("string"),
        "text": Value("string"),
        "quotes": List(
            {
                "id": Value("string"),
                "kind": Value("string"),
                "content": SPAN,
                "cue": SPAN,
                "mention": SPAN,
                "speaker": Value("string"),
                "stances": List({"topic": Value("string"), "stance": Value("string")}),
            }
        ),
    }
)

QUOTE_FEATURES = Features(
    {
        "doc_id": Value("string"),
        "lang": Value("string"),
        "origin": Value("string"),
        "published": Value("string"),
        "quote_id": Value("string"),
        "kind": ClassLabel(names=list(QUOTE_KINDS)),
        "content": SPAN,
        "content_text": Value("string"),
        "mention_text": Value("string"),
        "cue_text": Value("string"),
        "speaker": Value("string"),
        "stances": List({"topic": Value("string"), "stance": ClassLabel(names=list(STANCE_LABELS))}),
    }
)


def annotation_files(root: Path = ANNOTATIONS) -> list[Path]:
    """The bundled annotation files: seeds.jsonl and authored/<lang>.jsonl."""
    return expand_paths([root / "seeds.jsonl", root / "authored"])


def data_version(files: Iterable[Path] | None = None) -> str:
    """A short hash of the annotation files' bytes, logged with every experiment."""
    h = hashlib.sha256()
    for path in sorted(files or annotation_files()):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def load_documents(
    paths: Iterable[str | Path] | None = None,
    origin: str | None = None,
    langs: Iterable[str] | None = None,
) -> list[Document]:
    """Read validated documents, optionally only one origin or some languages."""
    keep = set(langs) if langs else None
    docs: list[Document] = []
    for path in expand_paths(paths or annotation_files()):
        docs.extend(read_jsonl(path))
    return [d for d in docs if (origin is None or d.origin == origin) and (keep is None or d.lang in keep)]


def _doc_row(doc: Document) -> dict:
    row = {
        "doc_id": doc.doc_id,
        "lang": doc.lang,
        "published": doc.published.isoformat() if doc.published else None,
        "source": doc.source,
        "origin": doc.origin,
        "text": doc.text,
        "quotes": [],
    }
    for q in doc.quotes:
        row["quotes"].append(
            {
                "id": q.id,
                "kind": q.kind,
                "content": list(q.content),
                "cue": list(q.cue) if q.cue else None,
                "mention": list(q.mention) if q.mention else None,
                "speaker": q.speaker,
                "stances": [{"topic": s.topic, "stance": s.stance} for s in q.stances],
            }
        )
    return row


def load_annotations(
    paths: Iterable[str | Path] | None = None,
    origin: str | None = None,
    langs: Iterable[str] | None = None,
) -> datasets.Dataset:
    """One row per document, with typed `Features` (spans as length-2 int lists or null)."""
    docs = load_documents(paths, origin, langs)
    return datasets.Dataset.from_list([_doc_row(d) for d in docs], features=DOCUMENT_FEATURES)


def to_documents(ds: datasets.Dataset) -> list[Document]:
    """Back from dataset rows to Documents (the inverse of `load_annotations`)."""
    docs = []
    for row in ds:
        d = {k: row[k] for k in ("doc_id", "lang", "published", "source", "origin", "text", "quotes")}
        docs.append(Document.from_dict(d))
    return docs


def flatten_quotes(ds: datasets.Dataset) -> datasets.Dataset:
    """One row per quote, with the quoted, mention and cue text resolved from the spans."""
    rows = []
    for row in ds:
        text = row["text"]

        def cut(span: list[int] | None) -> str | None:
            return None if span is None else text[span[0] : span[1]]

        for q in row["quotes"]:
            rows.append(
                {
                    "doc_id": row["doc_id"],
                    "lang": row["lang"],
                    "origin": row["origin"],
                    "published": row["published"],
                    "quote_id": q["id"],
                    "kind": QUOTE_KINDS.index(q["kind"]),
                    "content": q["content"],
                    "content_text": cut(q["content"]),
                    "mention_text": cut(q["mention"]),
                    "cue_text": cut(q["cue"]),
                    "speaker": q["speaker"],
                    "stances": [
                        {"topic": s["topic"], "stance": STANCE_LABELS.index(s["stance"])} for s in q["stances"]
                    ],
                }
            )
    return datasets.Dataset.from_list(rows, features=QUOTE_FEATURES)
