"""Per-language reporting lexicons (data in `resources/lexicons/<lang>.yaml`) and text helpers.

Everything language-specific the quote stages need (cue verbs, complementizers, pronouns,
collective nouns, subject markers, whether words are space-delimited) lives in the YAML files,
so adding a language means adding a file, not code.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

TERMINAL = frozenset(".!?。！？।؟")
CLAUSE = frozenset(",，、،;；")


@dataclass(frozen=True)
class Lexicon:
    """Reporting vocabulary of one language; the `merged` lexicon serves unknown languages."""

    lang: str
    cues: tuple[str, ...]
    complementizers: tuple[str, ...]
    pronouns: tuple[str, ...]
    collective: tuple[str, ...]
    subject_markers: tuple[str, ...]
    word_boundaries: bool = True
    inflected: bool = False

    def find_cues(self, text: str) -> list[tuple[int, int]]:
        return find_terms(text, self.cues, self.word_boundaries, self.inflected)

    def find_pronouns(self, text: str) -> list[tuple[int, int]]:
        return find_terms(text, self.pronouns, self.word_boundaries, False)

    def complementizer_at(self, text: str, pos: int) -> int:
        """Length of the complementizer starting at `pos` (0 when none)."""
        for comp in sorted(self.complementizers, key=len, reverse=True):
            if text.startswith(comp, pos):
                end = pos + len(comp)
                if not self.word_boundaries or end >= len(text) or not is_word_char(text[end]):
                    return len(comp)
        return 0

    def complementizer_before(self, text: str, pos: int) -> int:
        """Length of the complementizer ending at `pos` (0 when none)."""
        for comp in sorted(self.complementizers, key=len, reverse=True):
            start = pos - len(comp)
            if start >= 0 and text.startswith(comp, start):
                if not self.word_boundaries or start == 0 or not is_word_char(text[start - 1]):
                    return len(comp)
        return 0

    def is_collective(self, phrase: str) -> bool:
        return any(c in phrase for c in self.collective)


def is_word_char(ch: str) -> bool:
    """Letters, digits and combining marks (Bengali vowel signs are marks, not letters)."""
    return ch.isalnum() or unicodedata.category(ch)[0] == "M"


@lru_cache(maxsize=256)
def _alternation(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    terms = tuple(sorted({t for t in terms if t}, key=len, reverse=True))
    return re.compile("|".join(re.escape(t) for t in terms)) if terms else None


def find_terms(text: str, terms: tuple[str, ...], word_boundaries: bool, inflected: bool) -> list[tuple[int, int]]:
    """Non-overlapping occurrences of `terms` (longest first), respecting word boundaries."""
    pattern = _alternation(tuple(terms))
    if pattern is None:
        return []
    out = []
    for m in pattern.finditer(text):
        s, e = m.span()
        if word_boundaries:
            if s > 0 and is_word_char(text[s - 1]):
                continue
            if e < len(text) and is_word_char(text[e]):
                if not inflected:
                    continue
                while e < len(text) and is_word_char(text[e]):
                    e += 1
        out.append((s, e))
    return out


def _load_raw(lang: str) -> dict | None:
    path = resources.files("inference").joinpath(f"resources/lexicons/{lang}.yaml")
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def available_languages() -> list[str]:
    folder = resources.files("inference").joinpath("resources/lexicons")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=32)
def load_lexicon(lang: str | None) -> Lexicon:
    """The lexicon of `lang`; for an unknown language, the union of all (substring matching)."""
    raw = _load_raw(lang) if lang else None
    if raw is not None:
        return Lexicon(
            lang=lang,
            cues=tuple(_nfc(raw.get("cues", []))),
            complementizers=tuple(_nfc(raw.get("complementizers", []))),
            pronouns=tuple(_nfc(raw.get("pronouns", []))),
            collective=tuple(_nfc(raw.get("collective", []))),
            subject_markers=tuple(_nfc(raw.get("subject_markers", []))),
            word_boundaries=bool(raw.get("word_boundaries", True)),
            inflected=bool(raw.get("inflected", False)),
        )
    parts = [load_lexicon(code) for code in available_languages()]
    return Lexicon(
        lang="*",
        cues=tuple(c for p in parts for c in p.cues if len(c) > 2),
        complementizers=(),
        pronouns=(),
        collective=tuple(c for p in parts for c in p.collective),
        subject_markers=(),
        word_boundaries=True,
        inflected=True,
    )


def _nfc(items: list) -> list[str]:
    return [unicodedata.normalize("NFC", str(x)) for x in items if x is not None]


class TextIndex:
    """Sentence and paragraph boundaries of one text, for position -> unit lookups."""

    def __init__(self, text: str):
        self.text = text
        para = [0]
        sent = [0]
        n = len(text)
        for i, ch in enumerate(text):
            if ch == "\n":
                para.append(i + 1)
                sent.append(i + 1)
            elif ch in TERMINAL and (i + 1 >= n or text[i + 1].isspace() or ch in "。！？"):
                if ch == "." and i > 0 and text[i - 1].isdigit() and i + 1 < n and text[i + 1].isdigit():
                    continue
                sent.append(i + 1)
        self.paragraphs = para
        self.sentences = sorted(set(sent))

    def sentence_of(self, pos: int) -> int:
        return bisect.bisect_right(self.sentences, pos) - 1

    def paragraph_of(self, pos: int) -> int:
        return bisect.bisect_right(self.paragraphs, pos) - 1

    def sentence_bounds(self, pos: int) -> tuple[int, int]:
        k = self.sentence_of(pos)
        end = self.sentences[k + 1] if k + 1 < len(self.sentences) else len(self.text)
        return self.sentences[k], end


def strip_span(text: str, start: int, end: int, chars: str = "") -> tuple[int, int]:
    """Trim whitespace (and `chars`) from both ends of a span."""
    while start < end and (text[start].isspace() or text[start] in chars):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in chars):
        end -= 1
    return start, end


def count_tokens(s: str) -> int:
    """Words for spaced scripts; roughly two characters per word for unspaced ones."""
    words = s.split()
    longest = max((len(w) for w in words), default=0)
    if longest > 12:
        return max(1, sum(1 for ch in s if is_word_char(ch)) // 2)
    return len(words)
