"""Build the annotation JSONL files from YAML sources, computing every span from the text.

Annotators write substrings (content, mention, cue); this module locates them, so no offset is
ever typed by hand. See annotations/SOURCES.md for the source format and the placement rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from inference.document import Document, Quote, Stance
from inference.validate import check_document, write_jsonl

ANNOTATIONS = Path(__file__).resolve().parent.parent / "annotations"


SENTENCE_BOUNDARIES = ("\n", "。", "। ", ". ", "! ", "? ", "！", "？")
"""A mention or cue is looked for first in the content's own sentence, then anywhere."""


class SourceError(ValueError):
    pass


@dataclass
class BuildResult:
    docs: list[Document] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def _occurrences(text: str, needle: str) -> list[int]:
    out, i = [], text.find(needle)
    while i >= 0:
        out.append(i)
        i = text.find(needle, i + 1)
    return out


def _nth(text: str, needle: str, n: int, what: str) -> int:
    occ = _occurrences(text, needle)
    if not occ:
        raise SourceError(f"{what} not found in text: {needle!r}")
    if not 1 <= n <= len(occ):
        raise SourceError(f"{what} {needle!r} occurs {len(occ)} time(s), occurrence {n} asked")
    return occ[n - 1]


def locate_content(text: str, q: dict) -> tuple[int, int]:
    n = int(q.get("occurrence", 1))
    if "content" in q:
        needle = _nfc(str(q["content"]))
        if "occurrence" not in q and len(_occurrences(text, needle)) > 1:
            raise SourceError(f"content occurs {len(_occurrences(text, needle))} times; add occurrence: N: {needle[:40]!r}")
        start = _nth(text, needle, n, "content")
        return start, start + len(needle)
    if "content_from" in q and "content_to" in q:
        head, tail = _nfc(str(q["content_from"])), _nfc(str(q["content_to"]))
        start = _nth(text, head, n, "content_from")
        ends = [i + len(tail) for i in _occurrences(text, tail) if i + len(tail) >= start + len(head)]
        if not ends:
            raise SourceError(f"content_to {tail!r} not found after content_from")
        return start, ends[0]
    raise SourceError("quote needs `content`, or `content_from` and `content_to`")


def locate_near(text: str, needle: str | None, content: tuple[int, int], what: str, occurrence: int | None = None) -> tuple[int, int] | None:
    """The occurrence of `needle` nearest to the content and outside it.

    Candidates in the same sentence as the content win over nearer ones across a sentence
    boundary (a Japanese cue follows its quote; the previous sentence's verb is closer); ties
    go to the one before the content.
    """
    if needle is None:
        return None
    needle = _nfc(str(needle))
    if occurrence is not None:
        start = _nth(text, needle, int(occurrence), what)
        return start, start + len(needle)
    s, e = content
    best: tuple[int, int] | None = None
    for i in _occurrences(text, needle):
        j = i + len(needle)
        if j <= s:
            dist = s - j
        elif i >= e:
            dist = i - e
        else:
            continue
        gap = text[j:s] if j <= s else text[e:i]
        crosses = any(b in gap for b in SENTENCE_BOUNDARIES)
        key = (crosses, dist, 0 if j <= s else 1)
        if best is None or key < best:
            best, pos = key, i
    if best is None:
        raise SourceError(f"{what} {needle!r} not found outside the content")
    return pos, pos + len(needle)


def _quote_lines(source_text: str) -> list[int]:
    """1-based line numbers of each item of `quotes:` in the YAML, for error messages."""
    root = yaml.compose(source_text)
    for key, value in getattr(root, "value", []):
        if key.value == "quotes" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def build_document(path: Path, texts_dir: Path | None = None) -> Document:
    """One YAML source -> a validated Document; raises SourceError with file:line context."""
    source_text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(source_text)
    if not isinstance(raw, dict):
        raise SourceError(f"{path}: not a YAML mapping")
    if "text" in raw:
        text = _nfc(raw["text"])
    else:
        text_file = (texts_dir or path.parent) / raw["source"]
        text = _nfc(text_file.read_text(encoding="utf-8"))
    lines = _quote_lines(source_text)
    located: list[tuple[tuple[int, int], dict, int]] = []
    errors: list[str] = []
    for idx, q in enumerate(raw.get("quotes") or []):
        line = lines[idx] if idx < len(lines) else 0
        try:
            content = locate_content(text, q)
            mention = locate_near(text, q.get("mention"), content, "mention", q.get("mention_occurrence"))
            cue = locate_near(text, q.get("cue"), content, "cue", q.get("cue_occurrence"))
            located.append((content, {**q, "_mention": mention, "_cue": cue}, line))
        except SourceError as exc:
            errors.append(f"{path}:{line}: {exc}")
    if errors:
        raise SourceError("\n".join(errors))
    located.sort(key=lambda item: (item[0][0], -item[0][1]))
    quotes = []
    for i, (content, q, line) in enumerate(located, start=1):
        stances = q.get("stances") or {}
        if not isinstance(stances, dict):
            raise SourceError(f"{path}:{line}: stances must be a mapping topic: label")
        quotes.append(
            Quote(
                id=f"q{i}",
                kind=q["kind"],
                content=content,
                cue=q["_cue"],
                mention=q["_mention"],
                speaker=q.get("speaker"),
                stances=[Stance(topic=t, stance=s) for t, s in stances.items()],
            )
        )
    published = raw.get("published")
    doc = Document(
        doc_id=raw["doc_id"],
        lang=raw["lang"],
        published=str(published) if published is not None else None,
        source=raw.get("source"),
        origin=raw["origin"],
        text=text,
        quotes=quotes,
    )
    problems = [m for m in check_document(doc) if m.startswith("error")]
    if problems:
        raise SourceError("\n".join(f"{path}: {doc.doc_id}: {m}" for m in problems))
    return doc


def build_all(root: Path = ANNOTATIONS, write: bool = True) -> BuildResult:
    """Build seeds.jsonl and authored/<lang>.jsonl from every source under `root`."""
    result = BuildResult()
    groups: dict[Path, list[Document]] = {}
    seed_sources = sorted((root / "seeds" / "src").glob("*.yaml"))
    for path in seed_sources:
        _build_into(path, root / "seeds.jsonl", groups, result, texts_dir=root / "seeds" / "texts")
    for lang_dir in sorted(p for p in (root / "authored" / "src").glob("*") if p.is_dir()):
        for path in sorted(lang_dir.glob("*.yaml")):
            _build_into(path, root / "authored" / f"{lang_dir.name}.jsonl", groups, result)
    if write and not result.errors:
        for out, docs in groups.items():
            write_jsonl(docs, out)
    return result


def _build_into(path: Path, out: Path, groups: dict[Path, list[Document]], result: BuildResult, texts_dir: Path | None = None) -> None:
    try:
        doc = build_document(path, texts_dir)
    except (SourceError, KeyError, ValueError) as exc:
        result.errors.append(str(exc) if isinstance(exc, SourceError) else f"{path}: {type(exc).__name__}: {exc}")
        return
    groups.setdefault(out, []).append(doc)
    result.docs.append(doc)


def iter_sources(root: Path = ANNOTATIONS) -> Iterable[Path]:
    yield from sorted((root / "seeds" / "src").glob("*.yaml"))
    yield from sorted((root / "authored" / "src").rglob("*.yaml"))
