"""The speaker registry: speaker ids, their names in every script, offices with dates, topics.

Read from `resources/speakers.yaml` (also reachable as `annotations/speakers.yaml`), so the
validator, the annotation tools and the inference pipeline agree on one list.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

OTHER = "other"


class OfficeTerm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    office: str
    start: dt.date
    end: dt.date | None = None

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


class Speaker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    nationality: str
    names: dict[str, list[str]]
    offices: list[OfficeTerm] = Field(default_factory=list)


class Office(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    country: str
    titles: dict[str, list[str]]


class Registry(BaseModel):
    """Everything the label set is made of, with lookups used across the pipeline."""

    model_config = ConfigDict(extra="forbid")

    languages: list[str]
    speakers: dict[str, Speaker]
    offices: dict[str, Office]
    topics: dict[str, str]
    stances: dict[str, str]

    @classmethod
    def from_yaml(cls, path: str | Path) -> Registry:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls._from_raw(raw)

    @classmethod
    def _from_raw(cls, raw: dict) -> Registry:
        speakers = {sid: Speaker(id=sid, **body) for sid, body in raw["speakers"].items()}
        offices = {oid: Office(id=oid, **body) for oid, body in raw["offices"].items()}
        for sp in speakers.values():
            sp.names = {lang: _spellings(names) for lang, names in sp.names.items()}
            for term in sp.offices:
                if term.office not in offices:
                    raise ValueError(f"speaker {sp.id}: unknown office {term.office!r}")
        for off in offices.values():
            off.titles = {lang: _spellings(titles, sentence_case=True) for lang, titles in off.titles.items()}
        return cls(
            languages=raw["languages"],
            speakers=speakers,
            offices=offices,
            topics=raw["topics"],
            stances=raw["stances"],
        )

    @property
    def speaker_ids(self) -> set[str]:
        return set(self.speakers) | {OTHER}

    @cached_property
    def name_index(self) -> dict[str, str]:
        """Every spelling of every speaker's name, in all languages -> speaker id."""
        return {n: sp.id for sp in reversed(list(self.speakers.values())) for ns in sp.names.values() for n in ns}

    @cached_property
    def title_index(self) -> dict[str, str]:
        """Every role title, in all languages -> office id."""
        return {t: o.id for o in reversed(list(self.offices.values())) for ts in o.titles.values() for t in ts}

    @cached_property
    def name_terms(self) -> tuple[str, ...]:
        """The keys of `name_index`, as the hashable term list the lexicon's matcher caches on."""
        return tuple(self.name_index)

    @cached_property
    def title_terms(self) -> tuple[str, ...]:
        return tuple(self.title_index)

    @cached_property
    def name_lengths(self) -> dict[str, tuple[int, ...]]:
        """The distinct lengths of the spellings by first character, longest first: which
        spelling starts at a position is then a dictionary lookup per length, not a scan."""
        return _lengths_by_initial(self.name_index)

    @cached_property
    def title_lengths(self) -> dict[str, tuple[int, ...]]:
        return _lengths_by_initial(self.title_index)

    @cached_property
    def all_terms(self) -> tuple[str, ...]:
        """Names and titles together, longest first (so the longest match wins)."""
        return tuple(sorted(set(self.name_index) | set(self.title_index), key=len, reverse=True))

    def holder(self, office: str, day: dt.date | None) -> str | None:
        """Who held `office` on `day`: a speaker id, `other` (someone unlisted), or None (no date)."""
        if day is None:
            return None
        for sp in self.speakers.values():
            if any(t.office == office and t.covers(day) for t in sp.offices):
                return sp.id
        return OTHER

    def names_for(self, lang: str | None = None) -> dict[str, list[str]]:
        """Speaker id -> spellings; all languages' spellings when `lang` is None or unknown."""
        out: dict[str, list[str]] = {}
        for sp in self.speakers.values():
            if lang in sp.names:
                out[sp.id] = list(sp.names[lang])
            else:
                out[sp.id] = sorted({n for names in sp.names.values() for n in names}, key=len, reverse=True)
        return out

    def titles_for(self, lang: str | None = None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for off in self.offices.values():
            if lang in off.titles:
                out[off.id] = list(off.titles[lang])
            else:
                out[off.id] = sorted({t for ts in off.titles.values() for t in ts}, key=len, reverse=True)
        return out


def _lengths_by_initial(terms: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """First character -> distinct lengths of the terms it starts, longest first; an empty term
    (which starts everywhere) counts under every character and under ""."""
    lengths: dict[str, set[int]] = {}
    for t in terms:
        lengths.setdefault(t[:1], set()).add(len(t))
    if "" in lengths:
        for found in lengths.values():
            found.add(0)
    return {ch: tuple(sorted(found, reverse=True)) for ch, found in lengths.items()}


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def _spellings(values: list[str], sentence_case: bool = False) -> list[str]:
    """NFC forms, plus the typographic-apostrophe variant of any form with a straight one, and
    (for role titles, written in running-text case) the capitalised form a sentence opens with."""
    out: list[str] = []
    for v in map(_nfc, values):
        forms = [v]
        if sentence_case and v[:1].islower() and v[:1].upper() != v[:1]:
            forms.append(v[0].upper() + v[1:])
        for f in forms:
            out.append(f)
            if "'" in f:
                out.append(f.replace("'", "\u2019"))
    return out


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry bundled with the package (`inference/resources/speakers.yaml`)."""
    text = resources.files("inference").joinpath("resources/speakers.yaml").read_text(encoding="utf-8")
    return Registry._from_raw(yaml.safe_load(text))
