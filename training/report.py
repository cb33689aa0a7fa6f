"""Readable tables for people: metrics, and one document's quotes with speaker and stance."""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from inference.document import Document
from training.scoring import named_metrics

STANCE_STYLE = {"favor": "green", "against": "red", "neutral": "yellow"}


def metrics_table(metrics: dict[str, float], title: str = "Metrics") -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for name in sorted(metrics):
        if name.count(".") <= 1:
            t.add_row(name, f"{metrics[name]:.3f}")
    return t


HEADLINE_METRICS = (
    ("P", "quote_precision_overlap"),
    ("R", "quote_recall_overlap"),
    ("F1", "quote_f1_overlap"),
    ("exact", "quote_f1_exact"),
    ("spk", "attribution_accuracy_gold_spans"),
    ("e2e", "attribution_accuracy_e2e"),
    ("stance", "stance_macro_f1"),
    ("f/a", "stance_favor_against_f1"),
    ("gold", "n_gold"),
    ("pred", "n_pred"),
)
"""Columns of `score_table` (short labels, the metric names of `training.scoring.named_metrics`)."""


def score_table(scores: dict, title: str = "Scores") -> Table:
    """`inference.scoring.score`'s result as one table: a row overall and one per language."""
    rows = {"overall": scores["overall"], **scores.get("by_lang", {})}
    t = Table(
        title=title,
        caption=(
            "P/R/F1: quotes by overlap; exact: F1 of exact spans; spk: speaker on gold spans; "
            "e2e: quote found and speaker right; stance: macro-F1; f/a: favor/against F1"
        ),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    t.add_column("", no_wrap=True)
    for label, _ in HEADLINE_METRICS:
        t.add_column(label, justify="right", no_wrap=True)
    for name, result in rows.items():
        named = named_metrics(result)
        cells = [f"{named[m]:.0f}" if m.startswith("n_") else f"{named[m]:.3f}" for _, m in HEADLINE_METRICS]
        t.add_row(name, *cells, end_section=name == "overall")
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
