"""Speaker attribution: candidate mentions around each quote, a learned ranker picks one.

Candidates are registry names (all scripts, inflected forms by prefix), role titles resolved to
the office holder on `doc.published`, pronouns linked to the previous speaker, generic
person-like spans next to the cue (mapped to `other`, or to null for collective speakers), office
descriptions with a nationality word ("the Russian minister") linked to the last speaker of that
nationality, and a mention-less candidate that carries the previous quote's speaker (pro-drop).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from inference.document import Document, Quote
from inference.pipeline.base import Component
from inference.pipeline.lexicon import (
    CLAUSE,
    TERMINAL,
    Lexicon,
    TextIndex,
    capitalised_names,
    is_word_char,
    load_lexicon,
    photo_credits,
)
from inference.pipeline.linear import LinearScorer, group_copies
from inference.registry import OTHER, Registry, default_registry

WINDOW = 400
REFERENCE_WINDOW = 3000
LABEL_CHARS = 60
DASHES = "—―–-"
OPENING_MARKS = "「『“‘\"«„‹‚"
CLOSING_MARKS = "」』”’\"»“‘›"
GENERIC_WORDS = 3
PERSONS = ("name", "title", "person")
_GENERIC_STOPS = TERMINAL | CLAUSE | frozenset("「」“”\"«»『』:：\n()")


@dataclass
class Mention:
    """A candidate: span (None for the mention-less candidate), type and the speaker it implies."""

    span: tuple[int, int] | None
    type: str
    speaker: str | None
    person_noun: bool = False
    """A generic or person phrase holds a person noun outside every collective term (minister)."""


class _QuoteIndex:
    """A document's quotes sorted by start, for the questions every candidate asks of all of
    them; bisection keeps a quote-dense text from costing quotes x candidates x quotes."""

    def __init__(self, quotes: list[Quote]):
        self.quotes = quotes
        self.starts = [q.content[0] for q in quotes]
        self.ends = [q.content[1] for q in quotes]
        self.max_end: list[int] = []
        for q in quotes:
            self.max_end.append(max(q.content[1], self.max_end[-1] if self.max_end else q.content[1]))

    def count_within(self, lo: int, hi: int, exclude: Quote | None = None) -> int:
        """Quotes (other than `exclude`) whose content lies inside [lo, hi]."""
        n = 0
        for k in range(bisect.bisect_left(self.starts, lo), bisect.bisect_right(self.starts, hi)):
            if self.ends[k] <= hi and self.quotes[k] is not exclude:
                n += 1
        return n

    def any_containing(self, start: int, end: int, exclude: Quote | None = None) -> bool:
        """Whether a quote (other than `exclude`) contains [start, end)."""
        k = bisect.bisect_right(self.starts, start) - 1
        while k >= 0 and self.max_end[k] >= end:
            if self.quotes[k] is not exclude and self.quotes[k].content[1] >= end:
                return True
            k -= 1
        return False


class _Site:
    """What the features of every candidate of one quote ask of the text, looked up once per
    quote: the sentence and paragraph of the content's first and last character and the cue's."""

    def __init__(self, quote: Quote, index: TextIndex):
        s, e = quote.content
        self.quote = quote
        self.sentences, self.paragraphs = index.sentences, index.paragraphs
        self.start_sentence, self.start_paragraph = index.sentence_of(s), index.paragraph_of(s)
        self.end_sentence, self.end_paragraph = index.sentence_of(max(0, e - 1)), index.paragraph_of(max(0, e - 1))
        self.cue_sentence = index.sentence_of(quote.cue[0]) if quote.cue is not None else None


class _FeatureKeys(NamedTuple):
    """The names of the features that carry a candidate's type."""

    type: str
    rank: tuple[str, ...]
    before: str
    same_sentence: str
    cue_adjacent: str
    cue_same_sentence: str
    newline_between: str


@lru_cache(maxsize=None)
def _feature_keys(kind: str) -> _FeatureKeys:
    """A candidate type's feature names, formatted once rather than for every candidate."""
    conjoined = ("dir=before", "same_sentence", "cue_adjacent", "cue_same_sentence", "newline_between")
    return _FeatureKeys(f"type={kind}", tuple(f"rank{r}_{kind}" for r in range(4)), *(f"{kind}&{k}" for k in conjoined))


class _Spans:
    """Spans sorted by start with the running maximum of their ends: whether any of them
    overlaps or covers a position is one bisection, not a scan of all of them."""

    def __init__(self, spans: Iterable[tuple[int, int]] = ()):
        self.spans = sorted(spans)
        self._index()

    def _index(self) -> None:
        self.starts = [s for s, _ in self.spans]
        self.max_end: list[int] = []
        for _, e in self.spans:
            self.max_end.append(max(e, self.max_end[-1]) if self.max_end else e)

    def add(self, span: tuple[int, int]) -> None:
        """Add a span; spans that arrive in order (as matches do) extend the index in place."""
        if self.spans and span < self.spans[-1]:
            self.spans.append(span)
            self.spans.sort()
            self._index()
            return
        self.spans.append(span)
        self.starts.append(span[0])
        self.max_end.append(max(span[1], self.max_end[-1]) if self.max_end else span[1])

    def overlaps(self, start: int, end: int) -> bool:
        """Whether a span has start < `end` and end > `start`."""
        k = bisect.bisect_left(self.starts, end)
        return k > 0 and self.max_end[k - 1] > start

    def covers(self, pos: int) -> bool:
        """Whether a span has start <= `pos` < end."""
        k = bisect.bisect_right(self.starts, pos)
        return k > 0 and self.max_end[k - 1] > pos


class _MentionIndex(_Spans):
    """A document's mentions (sorted by span, as `_mentions` gives them) for the questions each
    quote asks of them."""

    def __init__(self, mentions: list[Mention]):
        super().__init__([m.span for m in mentions])
        self.mentions = mentions
        self.longest = max((e - s for s, e in self.spans), default=0)

    def near(self, s: int, e: int) -> list[Mention]:
        """Mentions ending at most WINDOW before `s` or starting at most WINDOW after `e`, in
        order; only those whose start can qualify are tested."""
        lo = bisect.bisect_left(self.starts, s - WINDOW - self.longest)
        hi = bisect.bisect_right(self.starts, e + WINDOW)
        return [
            m
            for m in self.mentions[lo:hi]
            if (m.span[1] <= s and s - m.span[1] <= WINDOW) or (m.span[0] >= e and m.span[0] - e <= WINDOW)
        ]

    def before(self, pos: int) -> list[Mention]:
        """Mentions starting at or before `pos`, nearest last: every mention ending by `pos` is
        among them."""
        return self.mentions[: bisect.bisect_right(self.starts, pos)]


def _longest_at(text: str, pos: int, terms: dict[str, str], lengths: dict[str, tuple[int, ...]]) -> str | None:
    """The longest of `terms` that `text` has at `pos` (`lengths`: theirs by first character,
    longest first, as the registry gives them)."""
    for n in lengths.get(text[pos : pos + 1]) or lengths.get("", ()):
        if pos + n <= len(text) and text[pos : pos + n] in terms:
            return text[pos : pos + n]
    return None


def _dedupe(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop matches inside longer ones (the alternation is per term list, so overlaps occur)."""
    found = sorted(set(found), key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[tuple[int, int]] = []
    for s in found:
        if out and s[0] < out[-1][1]:
            continue
        out.append(s)
    return out


class SpeakerAttributor(Component):
    """Fills `mention`, `speaker`, the cue (when missing) and confidence["speaker"] of each quote."""

    name = "speaker_attributor"

    def __init__(
        self,
        learned: bool = True,
        C: float = 1.0,
        language_features: bool = False,
        person_nouns: bool = False,
        circumstances: bool = False,
        places: bool = False,
        descriptions: bool = False,
    ):
        self.learned = learned
        self.C = C
        self.language_features = language_features
        self.person_nouns = person_nouns
        self.circumstances = circumstances
        self.places = places
        self.descriptions = descriptions
        self.ranker_: LinearScorer | None = None
        self.lang_rankers_: dict[str, LinearScorer] = {}

    def _mentions(self, doc: Document, lex: Lexicon, registry: Registry) -> list[Mention]:
        text = doc.text
        names = registry.name_index
        titles = registry.title_index
        out: list[Mention] = []
        taken: list[tuple[int, int]] = []
        holders: dict[str, str | None] = {}
        for s, e in _dedupe(lex.find_names(text, registry.title_terms)):
            key = _longest_at(text, s, titles, registry.title_lengths)
            if key is not None:
                office = titles[key]
                if office not in holders:
                    holders[office] = registry.holder(office, doc.published)
                holder = holders[office]
                out.append(Mention((s, e), "title", holder if holder is not None else OTHER))
                taken.append((s, e))
        for s, e in _dedupe(lex.find_names(text, registry.name_terms)):
            key = _longest_at(text, s, names, registry.name_lengths)
            if key is None:
                continue
            if any(t[0] <= s and e <= t[1] for t in taken):
                continue
            out.append(Mention((s, e), "name", names[key]))
        registered, pronouns = _Spans(m.span for m in out), _Spans()
        for s, e in lex.find_pronouns(text):
            if not registered.covers(s) and not pronouns.covers(s):
                pronouns.add((s, e))
                out.append(Mention((s, e), "pronoun", None))
        found, persons = _Spans(m.span for m in out), _Spans()
        for span in capitalised_names(text):
            if not found.overlaps(*span) and not persons.overlaps(*span):
                persons.add(span)
                out.append(self._classify_generic(text, lex, span, "person"))
        out.sort(key=lambda m: m.span)
        return out

    def _generic(
        self, doc: Document, lex: Lexicon, cue: tuple[int, int] | None, content: tuple[int, int]
    ) -> list[tuple[tuple[int, int], str]]:
        """Short word runs touching the cue (either side) or before a subject marker, as (span,
        kind): `_prepare` classifies the ones no mention overlaps."""
        if cue is None:
            return []
        text = doc.text
        out = []
        cs, ce = cue
        stops = _GENERIC_STOPS
        j = cs
        while j > 0 and text[j - 1] == " ":
            j -= 1
        k = _subject_marker_before(text, lex, max(0, cs - 40), cs)
        if k > 0:
            j = k
        end = j
        start = end
        words = 0
        while start > 0 and text[start - 1] not in stops and not (content[0] < start <= content[1]):
            if text[start - 1] == " ":
                words += 1
                if words >= GENERIC_WORDS:
                    break
            start -= 1
        while start < end and text[start].isspace():
            start += 1
        if end - start >= 2:
            out.append(((start, end), "generic"))
        k = ce
        while k < len(text) and text[k] == " ":
            k += 1
        start, end, words = k, k, 0
        while end < len(text) and text[end] not in stops and not (content[0] <= end < content[1]):
            if end > start and text[end - 1] == " " and lex.complementizer_at(text, end):
                break
            if text[end] == " ":
                words += 1
                if words >= GENERIC_WORDS:
                    break
            end += 1
        end = start + len(text[start:end].rstrip())
        if end - start >= 2 and is_word_char(text[start]) and not lex.complementizer_at(text, start):
            out.append(((start, end), "generic"))
        topic = self._sentence_topic(doc, lex, content)
        if topic is not None and not any(span == topic for span, _ in out):
            out.append((topic, "generic"))
        return out

    def _layout(self, doc: Document, lex: Lexicon, content: tuple[int, int]) -> list[tuple[tuple[int, int], str]]:
        """Speakers named by layout rather than a verb, as (span, kind): an interview label
        opening the paragraph (Name: “…”) and a dash signature after the closing mark (“…” — Name,
        title)."""
        text = doc.text
        s, e = content
        out = []
        ps = text.rfind("\n", 0, s) + 1
        head = text[ps:s].rstrip(" \t" + OPENING_MARKS)
        if head.endswith((":", "：")):
            label = head[:-1].rstrip()
            lo = ps + len(label) - len(label.lstrip())
            if 2 <= len(label.strip()) <= LABEL_CHARS and not any(c in TERMINAL for c in label):
                out.append(((lo, ps + len(label)), "label"))
        k = e
        while k < len(text) and (text[k] in CLOSING_MARKS or text[k] in " \t"):
            k += 1
        if k < len(text) and text[k] in DASHES:
            k += 1
            while k < len(text) and text[k] in " \t" + DASHES:
                k += 1
            nl = text.find("\n", k)
            end = len(text) if nl < 0 else nl
            if 2 <= end - k <= LABEL_CHARS:
                end = k + len(text[k:end].rstrip(" .。"))
                out.append(((k, end), "signature"))
        return out

    @staticmethod
    def _sentence_topic(doc: Document, lex: Lexicon, content: tuple[int, int]) -> tuple[int, int] | None:
        """Cue-final languages put the speaker first, marked as topic or subject (X는 “…”라고
        말했다, Xは「…」と語った): the words before the first such marker of the sentence that
        holds the content's start, when the marker stands before the content."""
        if not lex.subject_markers:
            return None
        text = doc.text
        s = content[0]
        lo = s
        while lo > 0 and text[lo - 1] not in TERMINAL and text[lo - 1] != "\n" and s - lo < 200:
            lo -= 1
        k = _subject_marker_after(text, lex, lo, s)
        if k is None:
            return None
        start = k
        words = 0
        while start > lo and text[start - 1] not in CLAUSE and text[start - 1] not in "「」“”\"«»『』:：()":
            if text[start - 1] == " ":
                words += 1
                if words >= GENERIC_WORDS:
                    break
            start -= 1
        start, end = start, k
        while start < end and text[start] == " ":
            start += 1
        return (start, end) if end - start >= 2 else None

    @staticmethod
    def _classify_generic(text: str, lex: Lexicon, span: tuple[int, int], kind: str = "generic") -> Mention:
        phrase = text[span[0] : span[1]]
        if lex.is_collective(phrase):
            return Mention(span, "collective", None)
        return Mention(span, kind, OTHER, person_noun=lex.names_individual(phrase))

    def _features(self, text: str, site: _Site, m: Mention, rank: int, quotes: _QuoteIndex) -> dict:
        quote = site.quote
        s, e = quote.content
        keys = _feature_keys(m.type)
        if m.span is None:
            return {
                keys.type: 1.0,
                "has_prev_speaker": float(m.speaker is not None),
                "has_cue": float(quote.cue is not None),
                f"{m.type}_has_cue": float(quote.cue is not None),
                f"{m.type}_kind={quote.kind}": 1.0,
                f"{m.type}_para_start": float(s == 0 or text[:s].rstrip(" \t「“\"«„").endswith("\n")),
            }
        ms, me = m.span
        before = me <= s
        if before:
            dist, lo, hi = s - me, me, s
            edge_sentence, edge_paragraph = site.start_sentence, site.start_paragraph
        else:
            dist, lo, hi = ms - e, e, ms
            edge_sentence, edge_paragraph = site.end_sentence, site.end_paragraph
        sentence = bisect.bisect_right(site.sentences, ms) - 1
        same_sentence = sentence == edge_sentence
        newline = text.find("\n", lo, hi) >= 0
        intervening = quotes.count_within(lo, hi, exclude=quote)
        f: dict[str, float] = {
            keys.type: 1.0,
            "dir=before": 1.0 if before else 0.0,
            "dir=inside": 1.0 if s <= ms and me <= e else 0.0,
            "log_dist": math.log1p(dist if dist > 0 else 0),
            "rank": float(rank if rank < 5 else 5),
            keys.rank[rank if rank < 3 else 3]: 1.0,
            "same_sentence": 1.0 if same_sentence else 0.0,
            "same_paragraph": 1.0 if bisect.bisect_right(site.paragraphs, ms) - 1 == edge_paragraph else 0.0,
            "newline_between": 1.0 if newline else 0.0,
            "colon_layout": 1.0 if before and text[lo:hi].rstrip(" \n「“\"«„").endswith((":", "：")) else 0.0,
            "intervening_quotes": float(intervening if intervening < 3 else 3),
        }
        adjacent = cue_same_sentence = False
        if quote.cue is not None:
            cs, ce = quote.cue
            gap = min(ms - ce if ms >= ce else ce - ms, cs - me if cs >= me else me - cs)
            adjacent = gap <= 12
            cue_same_sentence = sentence == site.cue_sentence
            f["cue_dist"] = math.log1p(gap)
            f["cue_adjacent"] = 1.0 if adjacent else 0.0
            f["cue_between"] = 1.0 if lo <= cs and ce <= hi else 0.0
            f["cue_same_sentence"] = 1.0 if cue_same_sentence else 0.0
        else:
            f["no_cue"] = 1.0
        if before:
            f[keys.before] = 1.0
        if same_sentence:
            f[keys.same_sentence] = 1.0
        if adjacent:
            f[keys.cue_adjacent] = 1.0
        if cue_same_sentence:
            f[keys.cue_same_sentence] = 1.0
        if newline:
            f[keys.newline_between] = 1.0
        if self.person_nouns and m.person_noun:
            f[f"{m.type}&person_noun"] = 1.0
        f["in_other_quote"] = 1.0 if quotes.any_containing(ms, me, exclude=quote) else 0.0
        f["unresolved"] = 1.0 if m.speaker is None and m.type == "pronoun" else 0.0
        return f

    def _prepare(self, doc: Document) -> tuple[list[tuple[Quote, list[Mention]]], TextIndex, _MentionIndex]:
        """Candidates per quote, quotes in order, with the text's units and its mentions. With
        `circumstances`, a phrase that opens or closes with a circumstance word ("Về Syria",
        シリア情勢について) is no candidate: it sits where a subject would, next to the cue, and
        the ranker otherwise takes it for an unnamed speaker. With `places`, neither is a phrase
        that only names a place or nationality (Nhật Bản, "the United States"): a state speaking
        as a whole is named beside the cue with its government or ministry, which stay candidates."""
        lex = load_lexicon(doc.lang)
        registry = default_registry()
        index = TextIndex(doc.text)
        credits = _Spans(photo_credits(doc.text))
        found = _MentionIndex([m for m in self._mentions(doc, lex, registry) if not credits.overlaps(*m.span)])
        quotes = sorted(doc.quotes, key=lambda q: q.content[0])
        groups = []
        for q in quotes:
            near = found.near(*q.content)
            near += [
                self._classify_generic(doc.text, lex, span, kind)
                for span, kind in self._generic(doc, lex, q.cue, q.content) + self._layout(doc, lex, q.content)
                if not found.overlaps(*span) and not credits.overlaps(*span)
            ]
            if self.circumstances:
                near = [m for m in near if not lex.is_circumstance(_unregistered_phrase(doc.text, m))]
            if self.places:
                near = [m for m in near if not lex.is_place(_unregistered_phrase(doc.text, m))]
            near.append(Mention(None, "zero", None))
            groups.append((q, near))
        return groups, index, found

    def _groups(self, doc: Document) -> tuple[list[tuple[Quote, list[Mention]]], TextIndex, list[Mention]]:
        """Candidates per quote, quotes in order; pronouns link to the last speaker."""
        groups, index, found = self._prepare(doc)
        return groups, index, found.mentions

    def _resolve(self, m: Mention, found: _MentionIndex, previous: str | None) -> str | None:
        if m.type == "pronoun" or m.type == "zero":
            if previous is not None:
                return previous
            if m.span is None:
                return None
            prior = next(
                (x for x in reversed(found.before(m.span[0])) if x.type in PERSONS and x.span[1] <= m.span[0]), None
            )
            return prior.speaker if prior is not None else None
        return m.speaker

    def _run(self, doc: Document, gold: Document | None = None):
        groups, index, found = self._prepare(doc)
        quotes = _QuoteIndex([q for q, _ in groups])
        previous: str | None = None
        gold_by_span = {q.content: q for q in gold.quotes} if gold is not None else {}
        text = doc.text
        antecedents: dict[tuple[int, int], str | None] = {}
        references: dict[tuple[str, int, str | None], dict] = {}
        lex = load_lexicon(doc.lang)
        described: dict[tuple[int, int], str | None] = {}
        for q, cands in groups:
            extra = []
            for m in cands:
                if self.descriptions and m.type in ("person", "generic") and m.span is not None:
                    if m.span not in described:
                        described[m.span] = _described(text, m, lex, found, quotes)
                    if described[m.span] is not None:
                        extra.append(Mention(m.span, "description", described[m.span]))
                if m.type in ("pronoun", "zero"):
                    m.speaker = self._resolve(m, found, previous)
                if m.type == "pronoun":
                    if m.span not in antecedents:
                        antecedents[m.span] = _antecedent(m, found, quotes)
                    near = antecedents[m.span]
                    if near is not None and near != m.speaker:
                        extra.append(Mention(m.span, "pronoun_antecedent", near))
            cands = cands + extra
            site = _Site(q, index)
            start = q.content[0]
            by_dir: dict[tuple[str, bool], int] = {}
            feats = []
            for m in _by_distance(q, cands):
                key = (m.type, m.span is not None and m.span[1] <= start)
                by_dir[key] = by_dir.get(key, 0) + 1
                f = self._features(text, site, m, by_dir[key], quotes)
                if m.type in ("pronoun", "pronoun_antecedent", "zero", "description"):
                    ref = (m.type, m.span[0] if m.span is not None else start, m.speaker)
                    if ref not in references:
                        references[ref] = _reference_features(m, q, found, quotes, index)
                    f.update(references[ref])
                feats.append((m, f))
            g = gold_by_span.get(q.content)
            chosen = yield q, feats, g
            previous = chosen.speaker if chosen is not None and chosen.speaker is not None else previous
            if g is not None:
                previous = g.speaker if g.speaker is not None else previous

    def fit(self, docs: list[Document]) -> SpeakerAttributor:
        if not self.learned:
            return self
        X, y, langs = [], [], []
        for doc in docs:
            gen = self._run(doc, doc)
            try:
                item = next(gen)
                while True:
                    q, feats, g = item
                    labels = [_is_gold(m, g) for m, _ in feats]
                    if any(labels):
                        X.extend(f for _, f in feats)
                        y.extend(int(v) for v in labels)
                        langs.extend([doc.lang] * len(labels))
                    item = gen.send(None)
            except StopIteration:
                pass
        self.ranker_ = LinearScorer(C=self.C, class_weight=None).fit(X, y)
        if self.language_features:
            # shared weights plus per-language copies, folded into one ranker per seen language
            # (how far a speaker's name sits from the quote and on which side differs by word
            # order); languages not seen keep the shared-only ranker
            joint = LinearScorer(C=self.C, class_weight=None).fit(group_copies(X, langs), y, sparse=True)
            seen = sorted({g for g in langs if g})
            self.lang_rankers_ = {lang: joint.fold(f"{lang}|") for lang in seen} if joint.fitted else {}
        return self

    def _rule_score(self, m: Mention, f: dict) -> float:
        if m.span is None:
            return 0.05
        score = 0.0
        score += 2.0 * f.get("cue_adjacent", 0.0) + 1.0 * f.get("cue_same_sentence", 0.0)
        score += 0.5 * f.get("same_sentence", 0.0) + 0.3 * f.get("same_paragraph", 0.0)
        score += 0.5 * f.get("colon_layout", 0.0) + {"name": 0.4, "title": 0.35, "pronoun": 0.3}.get(m.type, 0.0)
        score -= 0.1 * f["log_dist"] + 1.0 * f.get("in_other_quote", 0.0) + f.get("dir=inside", 0.0)
        return score

    def __call__(self, doc: Document) -> Document:
        ranker = self.lang_rankers_.get(doc.lang) or self.ranker_
        learned = self.learned and ranker is not None and ranker.fitted
        attributed: dict[int, Quote] = {}
        gen = self._run(doc)
        try:
            item = next(gen)
            while True:
                q, feats, _ = item
                mentions = [m for m, _ in feats]
                if learned:
                    scores = list(ranker.predict_proba([f for _, f in feats]))
                else:
                    scores = [self._rule_score(m, f) for m, f in feats]
                best = max(range(len(mentions)), key=scores.__getitem__)
                chosen = mentions[best]
                conf = dict(q.confidence or {})
                if learned:
                    total = sum(scores) or 1.0
                    conf["speaker"] = round(float(scores[best] / total), 4)
                else:
                    conf["speaker"] = 1.0 if chosen.span is not None else 0.5
                attributed[id(q)] = _attributed(q, chosen, conf)
                item = gen.send(chosen)
        except StopIteration:
            pass
        return type(doc).model_construct(
            set(doc.model_fields_set), **{**doc.__dict__, "quotes": [attributed[id(q)] for q in doc.quotes]}
        )

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {
            "params": {
                "learned": self.learned,
                "C": self.C,
                "language_features": self.language_features,
                "person_nouns": self.person_nouns,
                "circumstances": self.circumstances,
                "places": self.places,
                "descriptions": self.descriptions,
            },
            "ranker": self.ranker_.to_dict() if self.ranker_ else None,
            "lang_rankers": {lang: r.to_dict() for lang, r in self.lang_rankers_.items()},
        }
        (path / "speaker_attributor.json").write_text(json.dumps(state), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> SpeakerAttributor:
        state = json.loads((Path(path) / "speaker_attributor.json").read_text(encoding="utf-8"))
        att = cls(**state["params"])
        att.ranker_ = LinearScorer.from_dict(state["ranker"]) if state["ranker"] else None
        lang_rankers = state.get("lang_rankers", {})
        if not isinstance(lang_rankers, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in lang_rankers.items()):
            raise ValueError("per-language rankers must map language codes to scorer states")
        att.lang_rankers_ = {lang: LinearScorer.from_dict(d) for lang, d in lang_rankers.items()}
        return att


_UNREGISTERED = ("generic", "person", "label", "signature")


def _unregistered_phrase(text: str, m: Mention) -> str:
    """The text of an unregistered candidate (not a name, title, pronoun or collective), else "":
    only such phrases can be circumstances or places rather than speakers."""
    return text[m.span[0] : m.span[1]] if m.type in _UNREGISTERED and m.span is not None else ""


def _attributed(q: Quote, chosen: Mention, confidence: dict[str, float]) -> Quote:
    """A copy of `q` with the chosen mention and speaker, sharing nothing mutable with it (its
    own stance list and stances; the other fields are immutable): what a deep copy and three
    assignments gave, without `copy.deepcopy`'s walk over every value. The confidence is still
    assigned, so validated: its entries from earlier stages were not necessarily."""
    out = type(q).model_construct(
        q.model_fields_set | {"mention", "speaker"},
        **{**q.__dict__, "mention": chosen.span, "speaker": chosen.speaker, "stances": [s.model_copy() for s in q.stances]},
    )
    out.confidence = confidence
    return out


def _subject_marker_before(text: str, lex: Lexicon, lo: int, hi: int) -> int:
    """Start of the last subject marker in [lo, hi) (-1 when none)."""
    best = -1
    for marker in lex.subject_markers:
        k = text.rfind(marker, lo, hi)
        while k >= lo and not lex.subject_marker_at(text, k, marker):
            k = text.rfind(marker, lo, k)
        best = max(best, k)
    return best


def _subject_marker_after(text: str, lex: Lexicon, lo: int, hi: int) -> int | None:
    """Start of the first subject marker in [lo, hi), longest marker first on ties."""
    best = None
    for marker in sorted(lex.subject_markers, key=len, reverse=True):
        k = text.find(marker, lo, hi)
        while k >= 0 and not lex.subject_marker_at(text, k, marker):
            k = text.find(marker, k + 1, hi)
        if k >= 0 and (best is None or k < best):
            best = k
    return best


def _antecedent(pronoun: Mention, found: _MentionIndex, quotes: _QuoteIndex) -> str | None:
    """The speaker of the nearest person mention before a pronoun, outside quoted content."""
    for m in reversed(found.before(pronoun.span[0])):
        if m.span[1] > pronoun.span[0] or m.type not in PERSONS or m.speaker is None:
            continue
        if quotes.any_containing(m.span[0], m.span[1]):
            continue
        return m.speaker
    return None


def _described(text: str, m: Mention, lex: Lexicon, found: _MentionIndex, quotes: _QuoteIndex) -> str | None:
    """The registry speaker an office description refers back to ("the Russian minister",
    রুশ মন্ত্রীর, El ministro ruso): the last one named before it, outside quotes and within
    REFERENCE_WINDOW, of the nationality its words give. A description without a nationality
    word ("the minister") gets none: taking the last speaker of any nationality gained nothing."""
    phrase = text[m.span[0] : m.span[1]]
    nationality = lex.nationality_of(phrase)
    if nationality is None or not lex.names_office(phrase):
        return None
    speakers = default_registry().speakers
    for x in reversed(found.before(m.span[0])):
        if x.span[1] > m.span[0] or x.type not in ("name", "title"):
            continue
        if m.span[0] - x.span[1] > REFERENCE_WINDOW:
            break
        if x.speaker not in speakers or quotes.any_containing(x.span[0], x.span[1]):
            continue
        if speakers[x.speaker].nationality == nationality:
            return x.speaker
    return None


def _reference_features(m: Mention, q: Quote, found: _MentionIndex, quotes: _QuoteIndex, index) -> dict:
    """How recently the speaker a pronoun (or pro-drop) candidate stands for was named: a
    pronoun refers to a nearby name far more often than to a speaker from paragraphs ago."""
    anchor = m.span[0] if m.span is not None else q.content[0]
    last = None
    for x in reversed(found.before(anchor)):
        if x.span[1] > anchor or x.type not in PERSONS:
            continue
        if anchor - x.span[1] > REFERENCE_WINDOW:
            break
        if quotes.any_containing(x.span[0], x.span[1]):
            continue
        if last is None:
            last = x
        if m.speaker is not None and x.speaker == m.speaker:
            d = anchor - x.span[1]
            same = index.sentence_of(x.span[0]) == index.sentence_of(max(0, anchor - 1))
            return {
                f"{m.type}_ref_log_dist": math.log1p(d),
                f"{m.type}_ref_same_sentence": float(same),
                f"{m.type}_ref_is_latest": float(x is last),
            }
    return {f"{m.type}_ref_missing": 1.0}


def _by_distance(q: Quote, cands: list[Mention]) -> list[Mention]:
    """Candidates nearest the quote first (stable; the mention-less one last)."""
    s, e = q.content
    far = 10**9
    distance = [far if m.span is None else s - m.span[1] if m.span[1] <= s else max(0, m.span[0] - e) for m in cands]
    return [cands[i] for i in sorted(range(len(cands)), key=distance.__getitem__)]


def _is_gold(m: Mention, g: Quote | None) -> bool:
    if g is None:
        return False
    if g.mention is None:
        return m.span is None and m.speaker == g.speaker
    return m.span is not None and m.span[0] < g.mention[1] and g.mention[0] < m.span[1] and m.speaker == g.speaker
