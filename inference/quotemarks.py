"""Quotation marks of every convention, loaded from `resources/quotation_marks.yaml`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class QuotationMarks:
    pairs: dict[str, tuple[str, ...]]
    ambidextrous: frozenset[str]
    spaced: frozenset[str] = frozenset()

    @cached_property
    def openers(self) -> frozenset[str]:
        return frozenset(self.pairs) | self.ambidextrous

    @cached_property
    def closers(self) -> frozenset[str]:
        return frozenset(c for cs in self.pairs.values() for c in cs) | self.ambidextrous

    @cached_property
    def all(self) -> frozenset[str]:
        return self.openers | self.closers

    @cached_property
    def stops(self) -> re.Pattern[str]:
        """Any mark or a line break: the mark scan jumps from one to the next."""
        return re.compile("[\n" + re.escape("".join(sorted(self.all))) + "]")

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
        spaced=frozenset(raw.get("spaced", ())),
    )
