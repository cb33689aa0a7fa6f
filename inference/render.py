"""The quote viewer: documents as one self-contained HTML page, quotes highlighted in the text.

Meant for people reading annotations or predictions (and gold beside prediction, matched by
`doc_id`): quotes are marked by kind, speaker mentions and cues are marked, each speaker has a
stable colour, stances are badges per topic. The page loads nothing from the network (inline
CSS, no scripts, a Content-Security-Policy that forbids both), every text is HTML-escaped by the
template engine, and right-to-left documents are laid out right to left.

Spans may nest (a quote inside a quote, a mention inside another quote's content) or overlap;
overlapping spans are split at each other's boundaries so the markup always nests properly.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from inference.document import Document, Quote
from inference.registry import OTHER, default_registry

TEMPLATE = "viewer.html.j2"
_ROLE_RANK = {"quote": 0, "mention": 1, "cue": 2}
_LINE_BREAKS = re.compile(r"([\r\n\u2028\u2029]+)")
# Languages written right to left (ISO 639 codes); other documents follow their first strong character.
RTL_LANGS = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "ps", "sd", "syr", "ug", "ur", "yi"})


@lru_cache(maxsize=1)
def _style() -> dict[str, Any]:
    text = resources.files("inference").joinpath("resources/templates/viewer.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _tint(hex_colour: str, share: float) -> str:
    """`hex_colour` mixed with white (`share` of the colour), so text on it stays readable."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * share):02x}" for c in rgb)


def speaker_class(speaker: str | None) -> str:
    """A CSS class per speaker that does not change between pages: registry order, then `other`;
    ids outside the registry get a stable hash of the id."""
    if speaker is None:
        return "spn"
    n = len(_style()["speaker_palette"])
    order = [*default_registry().speakers, OTHER]
    idx = order.index(speaker) if speaker in order else zlib.crc32(speaker.encode("utf-8"))
    return f"sp{idx % n}"


def speaker_name(speaker: str | None) -> str:
    if speaker is None:
        return "no speaker"
    sp = default_registry().speakers.get(speaker)
    return sp.name if sp else speaker


def text_direction(text: str, lang: str | None = None) -> str:
    """`rtl` or `ltr` from the language code when it is known, else from the first strong character."""
    if lang:
        return "rtl" if lang.split("-")[0].lower() in RTL_LANGS else "ltr"
    for ch in text:
        bidi = unicodedata.bidirectional(ch)
        if bidi in ("R", "AL"):
            return "rtl"
        if bidi == "L":
            return "ltr"
    return "auto"


@dataclass
class _Span:
    start: int
    end: int
    role: str  # quote | mention | cue
    order: int
    quotes: list[Quote] = field(default_factory=list)
    parts: int = 0

    @property
    def key(self) -> tuple:
        return (-self.end, _ROLE_RANK[self.role], self.order)


def _stance_text(q: Quote) -> str:
    return "; ".join(
        f"{s.topic}: {s.stance}" + (f" ({s.confidence:.2f})" if s.confidence is not None else "") for s in q.stances
    )


def _title(span: _Span) -> str:
    if span.role == "quote":
        q = span.quotes[0]
        bits = [f"{q.id} · {q.kind} quote", f"speaker: {speaker_name(q.speaker)}"]
        if q.stances:
            bits.append(f"stance: {_stance_text(q)}")
        if q.confidence:
            bits.append("confidence: " + ", ".join(f"{k} {v:.2f}" for k, v in q.confidence.items()))
        return " · ".join(bits)
    ids = ", ".join(q.id for q in span.quotes)
    if span.role == "mention":
        return f"speaker mention of {ids}: " + ", ".join(dict.fromkeys(speaker_name(q.speaker) for q in span.quotes))
    return f"cue of {ids}"


def _open(span: _Span) -> dict[str, Any]:
    q = span.quotes[0]
    if span.role == "quote":
        classes = ["q", f"q-{q.kind}", speaker_class(q.speaker)]
    elif span.role == "mention":
        classes = ["mention", speaker_class(q.speaker)]
    else:
        classes = ["cue"]
    if span.parts:
        classes.append("cont")
    span.parts += 1
    return {
        "t": "open",
        "cls": " ".join(classes),
        "title": _title(span),
        "role": span.role,
        "qids": " ".join(x.id for x in span.quotes),
    }


def _label(q: Quote) -> dict[str, Any]:
    return {
        "t": "label",
        "qid": q.id,
        "kind": q.kind,
        "speaker": speaker_name(q.speaker),
        "stances": [_stance_badge(s) for s in q.stances],
    }


def _stance_badge(s) -> dict[str, Any]:
    conf = f"{s.confidence:.2f}" if s.confidence is not None else None
    return {"topic": s.topic, "stance": s.stance, "confidence": conf}


def _spans(doc: Document) -> list[_Span]:
    """Every non-empty quote, mention and cue span; a mention or cue shared by quotes is one span."""
    spans: list[_Span] = []
    shared: dict[tuple[int, int, str], _Span] = {}
    for q in doc.quotes:
        for role, span in (("quote", q.content), ("mention", q.mention), ("cue", q.cue)):
            if span is None or span[0] >= span[1]:
                continue
            key = (span[0], span[1], role)
            if role != "quote" and key in shared:
                shared[key].quotes.append(q)
                continue
            sp = _Span(span[0], span[1], role, len(spans), [q])
            spans.append(sp)
            shared[key] = sp
    return spans


def tokens(doc: Document) -> list[dict[str, Any]]:
    """The text as a flat list of text / open / label / close tokens whose markup nests properly.

    At each boundary the elements ending there are closed; an element still open above them
    (an overlap, not a nesting) is closed too and reopened as a continuation part."""
    spans = _spans(doc)
    starts: dict[int, list[_Span]] = defaultdict(list)
    for sp in spans:
        starts[sp.start].append(sp)
    bounds = sorted({0, len(doc.text), *(s.start for s in spans), *(s.end for s in spans)})
    out: list[dict[str, Any]] = []
    stack: list[_Span] = []
    for i, pos in enumerate(bounds):
        reopen: list[_Span] = []
        while any(s.end == pos for s in stack):
            top = stack.pop()
            if top.end == pos and top.role == "quote":
                out.append(_label(top.quotes[0]))
            out.append({"t": "close"})
            if top.end != pos:
                reopen.append(top)
        for sp in sorted(reopen + starts.get(pos, []), key=lambda s: s.key):
            out.append(_open(sp))
            stack.append(sp)
        if i + 1 < len(bounds) and bounds[i + 1] > pos:
            out.extend(_text(doc.text[pos : bounds[i + 1]], stack))
    return out


def _text(segment: str, stack: list[_Span]) -> Iterator[dict[str, Any]]:
    """Text tokens; line breaks inside open elements are left outside them (closed before,
    reopened after), so a quote over several paragraphs is a box per paragraph, not empty boxes."""
    for piece in _LINE_BREAKS.split(segment):
        if not piece:
            continue
        if stack and _LINE_BREAKS.fullmatch(piece):
            yield from ({"t": "close"} for _ in stack)
            yield {"t": "text", "s": piece}
            yield from (_open(sp) for sp in stack)
        else:
            yield {"t": "text", "s": piece}


def _quote_rows(doc: Document) -> list[dict[str, Any]]:
    rows = []
    for q in doc.quotes:
        rows.append(
            {
                "id": q.id,
                "kind": q.kind,
                "speaker": speaker_name(q.speaker),
                "speaker_id": q.speaker,
                "speaker_class": speaker_class(q.speaker),
                "mention": doc.span_text(q.mention),
                "cue": doc.span_text(q.cue),
                "stances": [_stance_badge(s) for s in q.stances],
                "confidence": ", ".join(f"{k} {v:.2f}" for k, v in (q.confidence or {}).items()),
            }
        )
    return rows


def _column(doc: Document | None, label: str) -> dict[str, Any]:
    if doc is None:
        return {"label": label, "missing": True}
    return {
        "label": label,
        "missing": False,
        "dir": text_direction(doc.text, doc.lang),
        "lang": doc.lang or "",
        "tokens": tokens(doc),
        "quotes": _quote_rows(doc),
    }


def _meta(doc: Document) -> list[str]:
    return [str(v) for v in (doc.lang, doc.published, doc.origin, doc.source) if v]


def _legend(docs: Iterable[Document]) -> list[dict[str, str]]:
    seen = {q.speaker for d in docs for q in d.quotes}
    order = [*default_registry().speakers, OTHER]
    ids = [s for s in order if s in seen] + sorted(s for s in seen if s is not None and s not in order)
    if None in seen:
        ids.append(None)
    return [{"id": s or "null", "name": speaker_name(s), "cls": speaker_class(s)} for s in ids]


def _palette_css() -> list[dict[str, str]]:
    c = _style()
    entries = [(f"sp{i}", col) for i, col in enumerate(c["speaker_palette"])] + [("spn", c["no_speaker"])]
    return [{"cls": cls, "base": col, "tint": _tint(col, c["tint"])} for cls, col in entries]


def render_html(
    docs: Sequence[Document],
    pred: Sequence[Document] | None = None,
    title: str = "quote-stance: quotes",
) -> str:
    """One HTML page: `docs` alone, or `docs` (gold) beside `pred`, matched by `doc_id`."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("inference", "resources/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rows = []
    if pred is None:
        for d in docs:
            rows.append({"doc_id": d.doc_id, "meta": _meta(d), "columns": [_column(d, "")]})
    else:
        by_id = {p.doc_id: p for p in pred}
        gold_ids = {d.doc_id for d in docs}
        for d in docs:
            rows.append(
                {"doc_id": d.doc_id, "meta": _meta(d), "columns": [_column(d, "gold"), _column(by_id.get(d.doc_id), "prediction")]}
            )
        for p in pred:
            if p.doc_id not in gold_ids:
                rows.append({"doc_id": p.doc_id, "meta": _meta(p), "columns": [_column(None, "gold"), _column(p, "prediction")]})
    every = [*docs, *(pred or [])]
    return env.get_template(TEMPLATE).render(
        title=title,
        rows=rows,
        side_by_side=pred is not None,
        n_docs=len(rows),
        n_quotes=sum(len(d.quotes) for d in docs),
        n_pred_quotes=sum(len(p.quotes) for p in pred) if pred is not None else None,
        speakers=_legend(every),
        palette=_palette_css(),
        stances=[*default_registry().stances],
        marks=_style()["stance_marks"],
    )
