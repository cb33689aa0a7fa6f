"""Readable tables for people: metrics, and one document's quotes with speaker and stance."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from inference.document import Document

STANCE_STYLE = {"favor": "green", "against": "red", "neutral": "yellow"}


def metrics_table(metrics: dict[str, float], title: str = "Metrics") -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for name in sorted(metrics):
        if name.count(".") <= 1:
            t.add_row(name, f"{metrics[name]:.3f}")
    return t


def document_table(doc: Document, width: int = 90) -> Table:
    t = Table(title=f"{doc.doc_id} · {doc.lang or '?'} · {doc.published or 'no date'} · {len(doc.quotes)} quotes", show_lines=True)
    t.add_column("#", justify="right")
    t.add_column("speaker")
    t.add_column("kind")
    t.add_column("stances")
    t.add_column("quote", overflow="fold")
    for q in doc.quotes:
        quote = doc.quote_text(q).replace("\n", " ")
        if len(quote) > width:
            quote = quote[: width - 1] + "…"
        mention = doc.span_text(q.mention)
        speaker = f"{q.speaker or '?'}" + (f" ({mention})" if mention else "")
        stances = Text()
        for s in q.stances:
            stances.append(f"{s.topic}: {s.stance}\n", style=STANCE_STYLE[s.stance])
        t.add_row(q.id, speaker, q.kind, stances, quote)
    return t
