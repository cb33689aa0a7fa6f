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
from functools import cached_property, lru_cache
from importlib import resources

import yaml

TERMINAL = frozenset(".!?。！？।؟")
CLAUSE = frozenset(",，、،;；")
_BREAK = re.compile("[\n" + re.escape("".join(sorted(TERMINAL))) + "]")
"""Characters that can end a paragraph or sentence: TextIndex looks only at these."""


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
    clitics: tuple[str, ...] = ()
    subject_markers_final: bool = False
    exact_cues: tuple[str, ...] = ()
    act_cues: tuple[str, ...] = ()
    """Cues that report an act more often than words (proposed, agreed): GUIDELINES §1 makes
    them quotes only when the words of the act are given."""
    cue_particles: tuple[str, ...] = ()
    """Words left out like a complementizer only right after the cue (Vietnamese nhấn mạnh về):
    anywhere else they belong to the content, so no candidate span starts after them there."""
    individual: tuple[str, ...] = ()
    """Nouns naming one person or outlet (spokesman, minister, newspaper): they make a phrase that
    also names an institution ("the Kremlin spokesman") a single speaker."""
    circumstances: tuple[str, ...] = ()
    """Adpositions and sentence adverbs that open a phrase of place, time, topic or manner (in,
    about, además; について closes one): such a phrase beside a cue is where or what was said,
    never who said it."""
    places: tuple[str, ...] = ()
    """Countries, cities, regions and nationality words of the domain (Japan, Nhật Bản, Extremo
    Oriente, Russian): a phrase beside a cue that names one is a place, or a state speaking as a
    group, never an unnamed person."""
    nationalities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Per registry nationality (JP, RU), the words that give it (Russian, রুশ, 日本): "the Russian
    minister" refers back to the Russian speaker named last."""
    office_nouns: tuple[str, ...] = ()
    """Head nouns of the registry's offices (minister, 大統領): a phrase that holds one but no name
    may refer back to a registry speaker named before it."""
    circumstances_at: str = "both"
    """Where a circumstance word stands in its phrase: `open` (prepositions), `close`
    (postpositions, Japanese について) or `both`; unspaced scripts need the side, else 前首相
    (the former prime minister) would read as opening with 前 (before)."""

    def is_act_cue(self, cue: str) -> bool:
        return _holds_any(cue, self.act_cues)

    def find_cues(self, text: str) -> list[tuple[int, int]]:
        """Cues by prefix (inflected languages) plus `exact_cues` as whole words; a proclitic
        written onto a cue (Arabic و/ف) belongs to the cue, so the span keeps it."""
        found = find_terms(text, self.cues, self.word_boundaries, self.inflected, self.clitics, keep_clitic=True)
        if self.exact_cues:
            exact = find_terms(text, self.exact_cues, self.word_boundaries, False, self.clitics, keep_clitic=True)
            found = _merge_spans(found, exact)
        return found

    def find_names(self, text: str, terms: tuple[str, ...]) -> list[tuple[int, int]]:
        """Registry names and titles; an attached proclitic is left out of the mention."""
        return find_terms(text, terms, self.word_boundaries, self.inflected, self.clitics, keep_clitic=False)

    def find_pronouns(self, text: str) -> list[tuple[int, int]]:
        return find_terms(text, self.pronouns, self.word_boundaries, False)

    def subject_marker_at(self, text: str, k: int, marker: str) -> bool:
        """A subject marker at `k` counts only at a word's end where the language spaces its
        words (Korean 는 after a noun, not inside one)."""
        if not self.subject_markers_final:
            return True
        after = k + len(marker)
        return k > 0 and is_word_char(text[k - 1]) and (after >= len(text) or not is_word_char(text[after]))

    @cached_property
    def _complementizers_longest_first(self) -> tuple[str, ...]:
        return tuple(sorted(self.complementizers, key=len, reverse=True))

    @cached_property
    def _cue_particles_longest_first(self) -> tuple[str, ...]:
        return tuple(sorted(self.cue_particles, key=len, reverse=True))

    @cached_property
    def _complementizer_edges(self) -> tuple[frozenset[str], frozenset[str]]:
        """First and last characters of the complementizers: most positions are rejected by
        one set lookup (the span search asks at every character)."""
        comps = [c for c in self.complementizers if c]
        return frozenset(c[0] for c in comps), frozenset(c[-1] for c in comps)

    def complementizer_at(self, text: str, pos: int) -> int:
        """Length of the complementizer starting at `pos` (0 when none)."""
        if pos >= 0 and (pos >= len(text) or text[pos] not in self._complementizer_edges[0]):
            return 0
        return self._term_at(text, pos, self._complementizers_longest_first)

    def cue_particle_at(self, text: str, pos: int) -> int:
        """Length of the cue particle starting at `pos` (0 when none)."""
        return self._term_at(text, pos, self._cue_particles_longest_first)

    def _term_at(self, text: str, pos: int, terms_longest_first: tuple[str, ...]) -> int:
        """Length of the first of the terms that starts at `pos` and ends at a word's end."""
        for term in terms_longest_first:
            end = pos + len(term)
            if text.startswith(term, pos) and (not self.word_boundaries or end >= len(text) or not is_word_char(text[end])):
                return len(term)
        return 0

    def complementizer_before(self, text: str, pos: int) -> int:
        """Length of the complementizer ending at `pos` (0 when none)."""
        if 0 < pos <= len(text) and text[pos - 1] not in self._complementizer_edges[1]:
            return 0
        for comp in self._complementizers_longest_first:
            start = pos - len(comp)
            if start >= 0 and text.startswith(comp, start):
                if not self.word_boundaries or start == 0 or not is_word_char(text[start - 1]):
                    return len(comp)
        return 0

    def is_collective(self, phrase: str) -> bool:
        """Groups, institutions and anonymous sources (speaker null), case-insensitively: a
        collective term occurs, and no individual noun stands outside every collective term
        ("the Kremlin" is a group, "the Kremlin spokesman" a person, "the ministers" a group)."""
        return _holds_any(phrase, self.collective) and not self.names_individual(phrase)

    def is_circumstance(self, phrase: str) -> bool:
        """The phrase opens or closes with a circumstance word ("Tại Tokyo", "Zum Abschied",
        シリア情勢について), as a whole word where the language spaces its words."""
        folded = phrase.casefold().strip()
        opens, closes = self.circumstances_at in ("open", "both"), self.circumstances_at in ("close", "both")
        for word in self.circumstances:
            w = word.casefold()
            if not w or len(folded) < len(w):
                continue
            if folded == w:
                return True
            if opens and folded.startswith(w) and (not self.word_boundaries or not is_word_char(folded[len(w)])):
                return True
            if closes and folded.endswith(w) and (not self.word_boundaries or not is_word_char(folded[-len(w) - 1])):
                return True
        return False

    def is_place(self, phrase: str) -> bool:
        """The phrase is a place or nationality word and nothing more, but for its edge
        punctuation and one short leading word where words are spaced ("the United States",
        "- Russia", Nhật Bản); where the language inflects, the word may run on (Японии). A longer
        phrase that holds a place ("Japan's defence ministry spokesman") says more than where."""
        folded = "".join(c for c in phrase.casefold().strip() if c.isalnum() or c in " -'·").strip(" -")
        if self.word_boundaries:
            first, _, rest = folded.partition(" ")
            forms = [folded, rest] if rest and len(first) <= 3 else [folded]
        else:
            forms = [folded]
        for term in self.places:
            t = term.casefold()
            for form in forms:
                if form == t or (self.inflected and form.startswith(t) and " " not in form[len(t) :]):
                    return True
        return False

    def names_office(self, phrase: str) -> bool:
        """The phrase holds the head noun of a registry office (minister, 大統領), case-insensitively."""
        return _holds_any(phrase, self.office_nouns)

    def nationality_of(self, phrase: str) -> str | None:
        """The one nationality the phrase's words give ("El ministro ruso" -> RU), None for none
        or more than one; a word must start a word where the language spaces its words."""
        folded = phrase.casefold()
        found = {
            nationality
            for nationality, words in self.nationalities
            if find_terms(folded, tuple(w.casefold() for w in words), self.word_boundaries, inflected=True)
        }
        return found.pop() if len(found) == 1 else None

    def names_individual(self, phrase: str) -> bool:
        """The phrase holds a person noun outside every collective term ("the Russian minister")."""
        groups = _occurrences(phrase, self.collective)
        return any(not any(a <= s and e <= b for a, b in groups) for s, e in _occurrences(phrase, self.individual))


def _circumstance_side(value) -> str:
    if value not in ("open", "close", "both"):
        raise ValueError(f"circumstances_at must be open, close or both, not {value!r}")
    return value


def _occurrences(phrase: str, terms: tuple[str, ...]) -> list[tuple[int, int]]:
    """Spans of every occurrence of every term in `phrase`, case-insensitively."""
    folded = phrase.casefold()
    out = []
    for term in terms:
        t = term.casefold()
        k = folded.find(t) if t else -1
        while k >= 0:
            out.append((k, k + len(t)))
            k = folded.find(t, k + 1)
    return out


def _holds_any(phrase: str, terms: tuple[str, ...]) -> bool:
    """Some term occurs in `phrase`, case-insensitively."""
    folded = phrase.casefold()
    return any(t.casefold() in folded for t in terms)


class ComplementizerIndex:
    """`complementizer_at` and `complementizer_before` of one text, answered by a dict lookup:
    the span search asks at nearly every character of a sentence, but complementizers start
    and end at few positions, found once per text with `str.find`."""

    def __init__(self, lex: Lexicon, text: str):
        starts, ends = set(), set()
        for comp in lex.complementizers:
            if comp:
                i = text.find(comp)
                while i >= 0:
                    starts.add(i)
                    ends.add(i + len(comp))
                    i = text.find(comp, i + 1)
        self.at = {i: k for i in sorted(starts) if (k := lex.complementizer_at(text, i))}
        self.before = {i: k for i in sorted(ends) if (k := lex.complementizer_before(text, i))}
        self.starts = list(self.at)
        self.ends = list(self.before)


class _WordChars(dict):
    """is_word_char per character, computed on first sight: the scans ask about the same few
    hundred characters millions of times, and a dict lookup beats the Unicode category call."""

    def __missing__(self, ch: str) -> bool:
        value = ch.isalnum() or unicodedata.category(ch)[0] == "M"
        if len(ch) == 1:
            self[ch] = value
        return value


_WORD_CHARS = _WordChars()
_word_char = _WORD_CHARS.__getitem__


def is_word_char(ch: str) -> bool:
    """Letters, digits and combining marks (Bengali vowel signs are marks, not letters)."""
    return _WORD_CHARS[ch]


@lru_cache(maxsize=256)
def _alternation(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching the longest term at the leftmost position, as `a|b|...` sorted
    longest first would, but written as a trie (`ab(?:c|d)?`): the engine follows one branch
    per character instead of trying hundreds of alternatives at every position."""
    root: dict = {}
    for term in {t for t in terms if t}:
        node = root
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}
    return re.compile(_trie_regex(root)) if root else None


def _trie_regex(node: dict) -> str:
    """A trie node as a regex; a term ending here is the last (optional) choice, so a longer
    term through this node wins and a failed one backtracks to the shorter."""
    branches = [re.escape(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body


def find_terms(
    text: str,
    terms: tuple[str, ...],
    word_boundaries: bool,
    inflected: bool,
    clitics: tuple[str, ...] = (),
    keep_clitic: bool = True,
) -> list[tuple[int, int]]:
    """Non-overlapping occurrences of `terms` (longest first), respecting word boundaries.

    A match glued to a preceding word is accepted only when that word part is one of `clitics`
    (bounded look-back, so the scan stays linear)."""
    pattern = _alternation(tuple(terms))
    if pattern is None:
        return []
    longest_clitic = max((len(c) for c in clitics), default=0)
    out = []
    n = len(text)
    for m in pattern.finditer(text):
        s, e = m.span()
        if word_boundaries:
            if s > 0 and _word_char(text[s - 1]):
                w = s
                while w > 0 and _word_char(text[w - 1]) and s - w <= longest_clitic:
                    w -= 1
                if not (text[w:s] in clitics and (w == 0 or not _word_char(text[w - 1]))):
                    continue
                if keep_clitic:
                    s = w
            if e < n and _word_char(text[e]):
                if not inflected:
                    continue
                while e < n and _word_char(text[e]):
                    e += 1
        out.append((s, e))
    return out


def _merge_spans(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of two span lists, longest first where they overlap."""
    out: list[tuple[int, int]] = []
    for span in sorted(a + b, key=lambda x: (x[0], -(x[1] - x[0]))):
        if out and span[0] < out[-1][1]:
            continue
        out.append(span)
    return out


def _with_capitals(terms: list[str]) -> list[str]:
    """Each term also with its first letter upper-cased (sentence-initial Selon, По словам)."""
    out = list(terms)
    for t in terms:
        cap = t[:1].upper() + t[1:]
        if cap != t and cap not in out:
            out.append(cap)
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
            cues=tuple(_with_capitals(_nfc(raw.get("cues", [])))),
            exact_cues=tuple(_with_capitals(_nfc(raw.get("exact_cues", [])))),
            act_cues=tuple(_nfc(raw.get("act_cues", []))),
            clitics=tuple(_nfc(raw.get("clitics", []))),
            subject_markers_final=bool(raw.get("subject_markers_final", False)),
            complementizers=tuple(_nfc(raw.get("complementizers", []))),
            cue_particles=tuple(_nfc(raw.get("cue_particles", []))),
            pronouns=tuple(_nfc(raw.get("pronouns", []))),
            collective=tuple(_nfc(raw.get("collective", []))),
            individual=tuple(_nfc(raw.get("individual", []))),
            circumstances=tuple(_nfc(raw.get("circumstances", []))),
            circumstances_at=_circumstance_side(raw.get("circumstances_at", "both")),
            places=tuple(_nfc(raw.get("places", []))),
            office_nouns=tuple(_nfc(raw.get("office_nouns", []))),
            nationalities=tuple((str(k), tuple(_nfc(v))) for k, v in (raw.get("nationalities") or {}).items()),
            subject_markers=tuple(_nfc(raw.get("subject_markers", []))),
            word_boundaries=bool(raw.get("word_boundaries", True)),
            inflected=bool(raw.get("inflected", False)),
        )
    parts = [load_lexicon(code) for code in available_languages()]
    return Lexicon(
        lang="*",
        cues=tuple(c for p in parts for c in p.cues + p.exact_cues if len(c) > 2),
        complementizers=(),
        pronouns=(),
        collective=tuple(c for p in parts for c in p.collective),
        individual=tuple(c for p in parts for c in p.individual),
        act_cues=tuple(c for p in parts for c in p.act_cues if len(c) > 2),
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
        for m in _BREAK.finditer(text):
            i = m.start()
            ch = text[i]
            if ch == "\n":
                para.append(i + 1)
                sent.append(i + 1)
            elif i + 1 >= n or text[i + 1].isspace() or ch in "。！？":
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
    longest = max(map(len, words), default=0)
    if longest > 12:
        return max(1, sum(map(_word_char, s)) // 2)
    return len(words)


def capitalised_names(text: str) -> list[tuple[int, int]]:
    """Names of people outside the registry in cased scripts: runs of two or more capitalised
    words (Céline Marchand, Kenji Mori), plus later lone uses of such a run's last word (Mori).
    Uncased scripts yield nothing; one pass over the words."""
    words = [m.span() for m in _WORD.finditer(text)]
    runs: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for s, e in words:
        if text[s].isupper() and any(map(str.islower, text[s:e])):
            if current and text[current[-1][1] : s] in (" ", "\u00a0"):
                current.append((s, e))
                continue
            if len(current) >= 2:
                runs.append(current)
            current = [(s, e)]
        elif current:
            if len(current) >= 2:
                runs.append(current)
            current = []
    if len(current) >= 2:
        runs.append(current)
    out = [(r[0][0], r[-1][1]) for r in runs if len(r) <= 4]
    surnames: dict[str, int] = {}
    for r in runs:
        if len(r) <= 4:
            surnames.setdefault(text[r[-1][0] : r[-1][1]], r[-1][0])
    for s, e in words if surnames else ():
        first = surnames.get(text[s:e])
        if first is not None and s > first and not any(a <= s < b for a, b in out):
            out.append((s, e))
    return sorted(out)


_WORD = re.compile(r"\w[\w'’-]*")


@lru_cache(maxsize=1)
def _credit_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Regexes for photo credits, from `resources/photo_credits.yaml` (every language's words)."""
    raw = yaml.safe_load(resources.files("inference").joinpath("resources/photo_credits.yaml").read_text(encoding="utf-8"))
    words = sorted({w for ws in raw["markers"].values() for w in _nfc(ws)}, key=len, reverse=True)
    marker = "(?<![\\w])(?:" + "|".join(map(re.escape, words)) + ")(?![\\w])"
    bracketed = re.compile(r"[(（\[][^()（）\[\]\n]*?" + marker + r"[^()（）\[\]\n]*[)）\]]", re.IGNORECASE)
    labelled = re.compile(marker + r"\s*[:：/][^\n.。!?！？]{1,40}(?=\n|$)", re.IGNORECASE)
    return bracketed, labelled


def photo_credits(text: str) -> list[tuple[int, int]]:
    """Spans of photo credits ("(AFP Photo / Jane Doe)", "Ảnh: REUTERS" alone at the end of a line; a longer line after "Ảnh:" is a caption, which may
    hold a quote): whoever they name took
    or supplied a picture and said nothing, so no speaker mention may come from inside one."""
    bracketed, labelled = _credit_patterns()
    return sorted(m.span() for pattern in (bracketed, labelled) for m in pattern.finditer(text))
