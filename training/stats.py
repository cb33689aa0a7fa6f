"""Counts over the annotation set, shown as tables by `quote-stance stats`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from inference.document import Document
from inference.validate import expand_paths, read_jsonl


@dataclass
class AnnotationStats:
    docs_by_lang_origin: Counter = field(default_factory=Counter)
    quotes_by_lang_origin: Counter = field(default_factory=Counter)
    speakers: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    topic_stance: Counter = field(default_factory=Counter)
    per_doc: dict[str, int] = field(default_factory=dict)


def load_documents(paths: Iterable[str | Path]) -> list[Document]:
    docs: list[Document] = []
    for path in expand_paths(paths):
        docs.extend(read_jsonl(path))
    return docs


def annotation_stats(paths: Iterable[str | Path]) -> AnnotationStats:
    st = AnnotationStats()
    for doc in load_documents(paths):
        key = (doc.lang, doc.origin or "-")
        st.docs_by_lang_origin[key] += 1
        st.quotes_by_lang_origin[key] += len(doc.quotes)
        st.per_doc[doc.doc_id] = len(doc.quotes)
        for q in doc.quotes:
            st.speakers[str(q.speaker)] += 1
            st.kinds[q.kind] += 1
            for s in q.stances:
                st.topic_stance[(s.topic, s.stance)] += 1
    return st


def render_stats(st: AnnotationStats, console: Console) -> None:
    t = Table(title="Documents and quotes per language and origin")
    for col in ("lang", "origin", "documents", "quotes"):
        t.add_column(col, justify="right" if col in ("documents", "quotes") else "left")
    for (lang, origin), n in sorted(st.docs_by_lang_origin.items()):
        t.add_row(lang, origin, str(n), str(st.quotes_by_lang_origin[(lang, origin)]))
    by_origin = Counter()
    for (lang, origin), n in st.docs_by_lang_origin.items():
        by_origin[origin] += n
    t.add_section()
    for origin in sorted(by_origin):
        q = sum(v for (l, o), v in st.quotes_by_lang_origin.items() if o == origin)
        langs = len({l for (l, o) in st.docs_by_lang_origin if o == origin})
        t.add_row(f"{langs} langs", origin, str(by_origin[origin]), str(q))
    t.add_row("all", "", str(sum(by_origin.values())), str(sum(st.quotes_by_lang_origin.values())))
    console.print(t)

    t = Table(title="Quotes per speaker and kind")
    t.add_column("speaker")
    t.add_column("quotes", justify="right")
    for sp, n in st.speakers.most_common():
        t.add_row(sp, str(n))
    t.add_section()
    for kind, n in st.kinds.most_common():
        t.add_row(f"kind: {kind}", str(n))
    console.print(t)

    t = Table(title="Stances per topic")
    for col in ("topic", "favor", "against", "neutral", "values"):
        t.add_column(col, justify="left" if col == "topic" else "right")
    topics = sorted({topic for topic, _ in st.topic_stance})
    for topic in topics:
        counts = [st.topic_stance[(topic, s)] for s in ("favor", "against", "neutral")]
        t.add_row(topic, *map(str, counts), str(sum(1 for c in counts if c)))
    console.print(t)
