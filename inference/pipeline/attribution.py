"""Speaker attribution: candidate mentions around each quote, a learned ranker picks one.

Candidates are registry names (all scripts, inflected forms by prefix), role titles resolved to
the office holder on `doc.published`, pronouns linked to the previous speaker, generic
person-like spans next to the cue (mapped to `other`, or to null for collective speakers), and
a mention-less candidate that carries the previous quote's speaker (pro-drop).
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from pathlib import Path

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
)
from inference.pipeline.linear import LinearScorer
from inference.registry import OTHER, Registry, default_registry

WINDOW = 400
REFERENCE_WINDOW = 3000
LABEL_CHARS = 60
DASHES = "—―–-"
OPENING_MARKS = "「『“‘\"«„‹‚"
CLOSING_MARKS = "」』”’\"»“‘›"
GENERIC_WORDS = 3


@dataclass
class Mention:
    """A candidate: span (None for the mention-less candidate), type and the speaker it implies."""

    span: tuple[int, int] | None
    type: str
    speaker: str | None


class _QuoteIndex:
    """A document's quotes sorted by start, for the questions every candidate asks of all of
    them; bisection keeps a quote-dense text from costing quotes x candidates x quotes."""

    def __init__(self, quotes: list[Quote]):
        self.quotes = quotes
        self.starts = [q.content[0] for q in quotes]
        self.max_end: list[int] = []
        for q in quotes:
            self.max_end.append(max(q.content[1], self.max_end[-1] if self.max_end else q.content[1]))

    def count_within(self, lo: int, hi: int, exclude: Quote | None = None) -> int:
        """Quotes (other than `exclude`) whose content lies inside [lo, hi]."""
        return sum(
            1
            for k in range(bisect.bisect_left(self.starts, lo), bisect.bisect_right(self.starts, hi))
            if self.quotes[k] is not exclude and self.quotes[k].content[1] <= hi
        )

    def any_containing(self, start: int, end: int, exclude: Quote | None = None) -> bool:
        """Whether a quote (other than `exclude`) contains [start, end)."""
        k = bisect.bisect_right(self.starts, start) - 1
        while k >= 0 and self.max_end[k] >= end:
            if self.quotes[k] is not exclude and self.quotes[k].content[1] >= end:
                return True
            k -= 1
        return False


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

    def __init__(self, learned: bool = True, C: float = 1.0):
        self.learned = learned
        self.C = C
        self.ranker_: LinearScorer | None = None

    def _mentions(self, doc: Document, lex: Lexicon, registry: Registry) -> list[Mention]:
        text = doc.text
        names = registry.name_index
        titles = registry.title_index
        out: list[Mention] = []
        taken: list[tuple[int, int]] = []
        for s, e in _dedupe(lex.find_names(text, tuple(titles))):
            key = next((t for t in sorted(titles, key=len, reverse=True) if text.startswith(t, s)), None)
            if key is not None:
                holder = registry.holder(titles[key], doc.published)
                out.append(Mention((s, e), "title", holder if holder is not None else OTHER))
                taken.append((s, e))
        for s, e in _dedupe(lex.find_names(text, tuple(names))):
            key = next((n for n in sorted(names, key=len, reverse=True) if text.startswith(n, s)), None)
            if key is None:
                continue
            inside_title = [t for t in taken if t[0] <= s and e <= t[1]]
            if inside_title:
                continue
            out.append(Mention((s, e), "name", names[key]))
        for s, e in lex.find_pronouns(text):
            if not any(m.span[0] <= s < m.span[1] for m in out):
                out.append(Mention((s, e), "pronoun", None))
        for span in capitalised_names(text):
            if not any(m.span[0] < span[1] and span[0] < m.span[1] for m in out):
                out.append(self._classify_generic(text, lex, span, "person"))
        out.sort(key=lambda m: m.span)
        return out

    def _generic(self, doc: Document, lex: Lexicon, cue: tuple[int, int] | None, content: tuple[int, int]) -> list[Mention]:
        """Short word runs touching the cue (either side) or before a subject marker."""
        if cue is None:
            return []
        text = doc.text
        out = []
        cs, ce = cue
        stops = TERMINAL | CLAUSE | frozenset("「」“”\"«»『』:：\n()")
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
        if end - start >= 2:
            out.append(self._classify_generic(text, lex, (start, end)))
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
            out.append(self._classify_generic(text, lex, (start, end)))
        topic = self._sentence_topic(doc, lex, content)
        if topic is not None and not any(m.span == topic for m in out):
            out.append(self._classify_generic(text, lex, topic))
        return out

    def _layout(self, doc: Document, lex: Lexicon, content: tuple[int, int]) -> list[Mention]:
        """Speakers named by layout rather than a verb: an interview label opening the paragraph
        (Name: “…”) and a dash signature after the closing mark (“…” — Name, title)."""
        text = doc.text
        s, e = content
        out = []
        ps = text.rfind("\n", 0, s) + 1
        head = text[ps:s].rstrip(" \t" + OPENING_MARKS)
        if head.endswith((":", "：")):
            label = head[:-1].rstrip()
            lo = ps + len(label) - len(label.lstrip())
            if 2 <= len(label.strip()) <= LABEL_CHARS and not any(c in TERMINAL for c in label):
                out.append(self._classify_generic(text, lex, (lo, ps + len(label)), "label"))
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
                out.append(self._classify_generic(text, lex, (k, end), "signature"))
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
        return Mention(span, kind, OTHER)

    def _features(
        self, doc: Document, index: TextIndex, quote: Quote, m: Mention, rank: int, quotes: _QuoteIndex
    ) -> dict:
        text = doc.text
        s, e = quote.content
        f: dict[str, float] = {f"type={m.type}": 1.0}
        if m.span is None:
            f["has_prev_speaker"] = float(m.speaker is not None)
            f["has_cue"] = float(quote.cue is not None)
            f[f"{m.type}_has_cue"] = float(quote.cue is not None)
            f[f"{m.type}_kind={quote.kind}"] = 1.0
            f[f"{m.type}_para_start"] = float(s == 0 or text[:s].rstrip(" \t「“\"«„").endswith("\n"))
            return f
        ms, me = m.span
        before = me <= s
        dist = s - me if before else ms - e
        f["dir=before"] = float(before)
        f["dir=inside"] = float(s <= ms and me <= e)
        f["log_dist"] = math.log1p(max(0, dist))
        f["rank"] = float(min(rank, 5))
        f[f"rank{min(rank, 3)}_{m.type}"] = 1.0
        edge = s if before else e - 1
        f["same_sentence"] = float(index.sentence_of(ms) == index.sentence_of(max(0, edge)))
        f["same_paragraph"] = float(index.paragraph_of(ms) == index.paragraph_of(max(0, edge)))
        lo, hi = (me, s) if before else (e, ms)
        between = text[lo:hi] if lo < hi else ""
        f["newline_between"] = float("\n" in between)
        f["colon_layout"] = float(before and between.rstrip(" \n「“\"«„").endswith((":", "：")))
        f["intervening_quotes"] = float(min(3, quotes.count_within(lo, hi, exclude=quote)))
        if quote.cue is not None:
            cs, ce = quote.cue
            f["cue_dist"] = math.log1p(min(abs(ms - ce), abs(cs - me)))
            f["cue_adjacent"] = float(min(abs(ms - ce), abs(cs - me)) <= 12)
            f["cue_between"] = float(lo <= cs and ce <= hi)
            f["cue_same_sentence"] = float(index.sentence_of(ms) == index.sentence_of(cs))
        else:
            f["no_cue"] = 1.0
        for key in ("dir=before", "same_sentence", "cue_adjacent", "cue_same_sentence", "newline_between"):
            if f.get(key):
                f[f"{m.type}&{key}"] = 1.0
        f["in_other_quote"] = float(quotes.any_containing(ms, me, exclude=quote))
        f["unresolved"] = float(m.speaker is None and m.type == "pronoun")
        return f

    def _groups(self, doc: Document) -> tuple[list[tuple[Quote, list[Mention]]], TextIndex, list[Mention]]:
        """Candidates and features per quote, quotes in order; pronouns link to the last speaker."""
        lex = load_lexicon(doc.lang)
        registry = default_registry()
        index = TextIndex(doc.text)
        mentions = self._mentions(doc, lex, registry)
        quotes = sorted(doc.quotes, key=lambda q: q.content[0])
        groups = []
        for q in quotes:
            s, e = q.content
            near = [m for m in mentions if (m.span[1] <= s and s - m.span[1] <= WINDOW) or (m.span[0] >= e and m.span[0] - e <= WINDOW)]
            near += [
                g
                for g in self._generic(doc, lex, q.cue, q.content) + self._layout(doc, lex, q.content)
                if not any(m.span[0] < g.span[1] and g.span[0] < m.span[1] for m in mentions)
            ]
            near.append(Mention(None, "zero", None))
            groups.append((q, near))
        return groups, index, mentions

    def _resolve(self, m: Mention, mentions: list[Mention], previous: str | None) -> str | None:
        if m.type == "pronoun" or m.type == "zero":
            if previous is not None:
                return previous
            if m.span is None:
                return None
            prior = [x for x in mentions if x.type in ("name", "title", "person") and x.span[1] <= m.span[0]]
            return prior[-1].speaker if prior else None
        return m.speaker

    def _run(self, doc: Document, gold: Document | None = None):
        groups, index, mentions = self._groups(doc)
        quotes = _QuoteIndex([q for q, _ in groups])
        previous: str | None = None
        gold_by_span = {q.content: q for q in gold.quotes} if gold is not None else {}
        for q, cands in groups:
            extra = []
            for m in cands:
                if m.type in ("pronoun", "zero"):
                    m.speaker = self._resolve(m, mentions, previous)
                if m.type == "pronoun":
                    near = _antecedent(m, mentions, quotes)
                    if near is not None and near != m.speaker:
                        extra.append(Mention(m.span, "pronoun_antecedent", near))
            cands = cands + extra
            by_dir: dict[tuple[str, bool], int] = {}
            feats = []
            for m in sorted(cands, key=lambda m: _distance(q, m)):
                key = (m.type, m.span is not None and m.span[1] <= q.content[0])
                by_dir[key] = by_dir.get(key, 0) + 1
                f = self._features(doc, index, q, m, by_dir[key], quotes)
                if m.type in ("pronoun", "pronoun_antecedent", "zero"):
                    f.update(_reference_features(m, q, mentions, quotes, index))
                feats.append((m, f))
            g = gold_by_span.get(q.content)
            chosen = yield q, feats, g
            previous = chosen.speaker if chosen is not None and chosen.speaker is not None else previous
            if g is not None:
                previous = g.speaker if g.speaker is not None else previous

    def fit(self, docs: list[Document]) -> SpeakerAttributor:
        if not self.learned:
            return self
        X, y = [], []
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
                    item = gen.send(None)
            except StopIteration:
                pass
        self.ranker_ = LinearScorer(C=self.C, class_weight=None).fit(X, y)
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
        out = doc.model_copy(deep=True)
        gen = self._run(out)
        try:
            item = next(gen)
            while True:
                q, feats, _ = item
                mentions = [m for m, _ in feats]
                if self.learned and self.ranker_ is not None and self.ranker_.fitted:
                    scores = list(self.ranker_.predict_proba([f for _, f in feats]))
                else:
                    scores = [self._rule_score(m, f) for m, f in feats]
                best = max(range(len(mentions)), key=lambda i: scores[i])
                chosen = mentions[best]
                q.mention = chosen.span
                q.speaker = chosen.speaker
                conf = dict(q.confidence or {})
                if self.learned and self.ranker_ is not None and self.ranker_.fitted:
                    total = sum(scores) or 1.0
                    conf["speaker"] = round(float(scores[best] / total), 4)
                else:
                    conf["speaker"] = 1.0 if chosen.span is not None else 0.5
                q.confidence = conf
                item = gen.send(chosen)
        except StopIteration:
            pass
        return out

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {"params": {"learned": self.learned, "C": self.C}, "ranker": self.ranker_.to_dict() if self.ranker_ else None}
        (path / "speaker_attributor.json").write_text(json.dumps(state), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> SpeakerAttributor:
        state = json.loads((Path(path) / "speaker_attributor.json").read_text(encoding="utf-8"))
        att = cls(**state["params"])
        att.ranker_ = LinearScorer.from_dict(state["ranker"]) if state["ranker"] else None
        return att


def _marker_ok(text: str, lex: Lexicon, k: int, marker: str) -> bool:
    """A subject marker counts only at a word's end where the language spaces its words (Korean)."""
    if not lex.subject_markers_final:
        return True
    after = k + len(marker)
    return k > 0 and is_word_char(text[k - 1]) and (after >= len(text) or not is_word_char(text[after]))


def _subject_marker_before(text: str, lex: Lexicon, lo: int, hi: int) -> int:
    """Start of the last subject marker in [lo, hi) (-1 when none)."""
    best = -1
    for marker in lex.subject_markers:
        k = text.rfind(marker, lo, hi)
        while k >= lo and not _marker_ok(text, lex, k, marker):
            k = text.rfind(marker, lo, k)
        best = max(best, k)
    return best


def _subject_marker_after(text: str, lex: Lexicon, lo: int, hi: int) -> int | None:
    """Start of the first subject marker in [lo, hi), longest marker first on ties."""
    best = None
    for marker in sorted(lex.subject_markers, key=len, reverse=True):
        k = text.find(marker, lo, hi)
        while k >= 0 and not _marker_ok(text, lex, k, marker):
            k = text.find(marker, k + 1, hi)
        if k >= 0 and (best is None or k < best):
            best = k
    return best


def _antecedent(pronoun: Mention, mentions: list[Mention], quotes: _QuoteIndex) -> str | None:
    """The speaker of the nearest person mention before a pronoun, outside quoted content."""
    for m in reversed(mentions):
        if m.span[1] > pronoun.span[0] or m.type not in ("name", "title", "person") or m.speaker is None:
            continue
        if quotes.any_containing(m.span[0], m.span[1]):
            continue
        return m.speaker
    return None


def _reference_features(m: Mention, q: Quote, mentions: list[Mention], quotes: _QuoteIndex, index) -> dict:
    """How recently the speaker a pronoun (or pro-drop) candidate stands for was named: a
    pronoun refers to a nearby name far more often than to a speaker from paragraphs ago."""
    anchor = m.span[0] if m.span is not None else q.content[0]
    last = None
    for x in reversed(mentions):
        if x.span[1] > anchor or x.type not in ("name", "title", "person"):
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


def _distance(q: Quote, m: Mention) -> int:
    if m.span is None:
        return 10**9
    if m.span[1] <= q.content[0]:
        return q.content[0] - m.span[1]
    return max(0, m.span[0] - q.content[1])


def _is_gold(m: Mention, g: Quote | None) -> bool:
    if g is None:
        return False
    if g.mention is None:
        return m.span is None and m.speaker == g.speaker
    return m.span is not None and m.span[0] < g.mention[1] and g.mention[0] < m.span[1] and m.speaker == g.speaker
