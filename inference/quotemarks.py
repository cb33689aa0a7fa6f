"""Quotation marks of every convention, loaded from `resources/quotation_marks.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class QuotationMarks:
    pairs: dict[str, tuple[str, ...]]
    ambidextrous: frozenset[str]

    @property
    def openers(self) -> frozenset[str]:
        return frozenset(self.pairs) | self.ambidextrous

    @property
    def closers(self) -> frozenset[str]:
        return frozenset(c for cs in self.pairs.values() for c in cs) | self.ambidextrous

    @property
    def all(self) -> frozenset[str]:
        return self.openers | self.closers

    def closes(self, opener: str, closer: str) -> bool:
        if opener in self.ambidextrous:
            return closer == opener
        return closer in self.pairs.get(opener, ())


@lru_cache(maxsize=1)
def quotation_marks() -> QuotationMarks:
    raw = yaml.safe_load(
        resources.files("inference").joinpath("resources/quotation_marks.yaml").read_text(encoding="utf-8")
    )
    return QuotationMarks(
        pairs={k: tuple(v) for k, v in raw["pairs"].items()},
        ambidextrous=frozenset(raw["ambidextrous"]),
    )
