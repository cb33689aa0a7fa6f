"""The data model: `Document`, `Quote`, `Stance`, serialised to the annotation format (FORMAT.md).

Gold annotations and predictions share these classes, so one scorer compares them.
`Document.from_dict(d).to_dict() == d` holds for every valid record: fields absent from the
input stay absent in the output.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator, model_validator

StanceLabel = Literal["favor", "against", "neutral"]
QuoteKind = Literal["direct", "indirect", "mixed"]
Origin = Literal["seed", "authored"]

STANCE_LABELS: tuple[str, ...] = ("favor", "against", "neutral")
QUOTE_KINDS: tuple[str, ...] = ("direct", "indirect", "mixed")

Span = Annotated[
    tuple[int, int],
    PlainSerializer(lambda s: [s[0], s[1]], return_type=list),
]
"""A `[start, end)` span in Unicode code points: Python's `text[start:end]`."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class Stance(_Model):
    """A speaker's position on one topic, as voiced in one quote."""

    topic: str
    stance: StanceLabel
    confidence: float | None = None


class Quote(_Model):
    """One quote: its content span, how it is reported, who said it and what it argues."""

    id: str
    kind: QuoteKind
    content: Span
    cue: Span | None = None
    mention: Span | None = None
    speaker: str | None = None
    stances: list[Stance] = Field(default_factory=list)
    confidence: dict[str, float] | None = None

    @field_validator("content", "cue", "mention")
    @classmethod
    def _ordered(cls, span: tuple[int, int] | None) -> tuple[int, int] | None:
        if span is not None and not 0 <= span[0] <= span[1]:
            raise ValueError(f"span {list(span)} must satisfy 0 <= start <= end")
        return span

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quote:
        return cls.model_validate(d)

    def stance_on(self, topic: str) -> str | None:
        return next((s.stance for s in self.stances if s.topic == topic), None)


class Document(_Model):
    """A text and its quotes; every span indexes into `text`."""

    doc_id: str
    lang: str | None = None
    published: dt.date | None = None
    source: str | None = None
    origin: Origin | None = None
    text: str
    quotes: list[Quote] = Field(default_factory=list)

    @field_validator("published", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str) and not _is_iso_date(value):
            raise ValueError(f"published must be YYYY-MM-DD, got {value!r}")
        return value

    @model_validator(mode="after")
    def _spans_inside_text(self) -> Document:
        n = len(self.text)
        ids = set()
        for q in self.quotes:
            if q.id in ids:
                raise ValueError(f"duplicate quote id {q.id!r}")
            ids.add(q.id)
            for name in ("content", "cue", "mention"):
                span = getattr(q, name)
                if span is not None and span[1] > n:
                    raise ValueError(
                        f"quote {q.id}: {name} span {list(span)} runs past the end of the text ({n} code points)"
                    )
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Document:
        return cls.model_validate(d)

    @classmethod
    def from_json(cls, line: str) -> Document:
        return cls.model_validate_json(line)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def span_text(self, span: tuple[int, int] | None) -> str | None:
        return None if span is None else self.text[span[0] : span[1]]

    def quote_text(self, quote: Quote) -> str:
        return self.text[quote.content[0] : quote.content[1]]


def _is_iso_date(value: str) -> bool:
    try:
        return dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False
