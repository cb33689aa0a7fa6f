"""Quote detection: direct quotes from quotation marks, indirect and mixed ones around cues.

Direct candidates come from one linear scan over the marks of every convention (a bounded
stack, so unbalanced marks cost nothing extra); a learned filter rejects scare quotes, titles
and names in marks. Indirect candidates are spans before/after each reporting cue from the
lexicon; a learned scorer picks the content span. Without fitting, both fall back to rules.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from inference.document import Document, Quote
from inference.pipeline.base import Component
from inference.pipeline.lexicon import (
    CLAUSE,
    TERMINAL,
    ComplementizerIndex,
    Lexicon,
    TextIndex,
    capitalised_names,
    count_tokens,
    find_terms,
    is_word_char,
    load_lexicon,
    strip_span,
)
from inference.pipeline.linear import LinearScorer, group_copies
from inference.quotemarks import QuotationMarks, quotation_marks
from inference.registry import default_registry
from inference.validate import unpaired_edge_mark

MAX_STACK = 32
MAX_CLOSE_SEARCH = 4
MAX_CARRIED_PARAGRAPHS = 4
CLOSING_PUNCT = frozenset(".,;:!?)]}。、，．！？」』»›”’।؟،")
# French typography puts a (narrow) no-break space inside « »; it must not break flanking.
TIGHT_SPACE = frozenset("\u00a0\u202f\u2009\u2007")
SPAN_STRIP = "".join(sorted(CLAUSE)) + ":：—–-"
_CLAUSE_MARK = re.compile("[" + re.escape("".join(sorted(CLAUSE))) + "]")


@dataclass
class MarkPair:
    """One matched pair of quotation marks: positions of the marks and the stripped content."""

    open: int
    close: int
    depth: int
    multi_paragraph: bool
    content: tuple[int, int]


def scan_marks(text: str, marks: QuotationMarks | None = None) -> list[MarkPair]:
    """Pair quotation marks in one pass; nested, multi-paragraph and unbalanced marks handled.

    A paragraph that ends inside an open quote continues it when the next paragraph opens with
    the same mark (the multi-paragraph convention) or, for a few paragraphs, when the quote
    itself opened a paragraph; otherwise the open marks are dropped.
    """
    marks = marks or quotation_marks()
    stops = marks.stops
    openers = marks.openers
    spaced = marks.spaced
    n = len(text)
    stack: list[tuple[str, int, int]] = []
    pairs: list[MarkPair] = []
    skip = -1
    i = 0
    while (m := stops.search(text, i)) is not None:
        i = m.start()
        ch = text[i]
        if ch == "\n":
            if stack:
                j = i + 1
                while j < n and text[j].isspace():
                    j += 1
                op, pos, carried = stack[0]
                if j < n and text[j] == op:
                    stack = [(op, pos, carried + 1)]
                    skip = j
                elif carried < MAX_CARRIED_PARAGRAPHS and (pos == 0 or text[pos - 1] == "\n"):
                    stack = [(op, pos, carried + 1)]
                else:
                    stack = []
                i = j if j > i + 1 else i + 1
                continue
            i += 1
            continue
        if i == skip or (i + 1 < n and unicodedata.combining(text[i + 1])):
            i += 1  # a mark carrying a combining accent is a letter, not a quotation mark
            continue
        prev = text[i - 1] if i > 0 else " "
        nxt = text[i + 1] if i + 1 < n else " "
        if ch in spaced:
            if nxt == " " and i + 2 < n:
                nxt = text[i + 2]
            if prev == " " and i > 1:
                prev = text[i - 2]
        if ch in marks.ambidextrous and is_word_char(prev) and is_word_char(nxt) and ch == "'":
            i += 1
            continue
        can_open_flank = (not nxt.isspace() or nxt in TIGHT_SPACE) and nxt not in CLOSING_PUNCT
        can_close_flank = not prev.isspace() or prev in TIGHT_SPACE
        found = None
        for k in range(len(stack) - 1, max(-1, len(stack) - 1 - MAX_CLOSE_SEARCH), -1):
            if marks.closes(stack[k][0], ch):
                found = k
                break
        action = None
        if found is not None and ch in openers:
            if can_close_flank and not can_open_flank:
                action = "close"
            elif can_open_flank and not can_close_flank:
                action = "open"
            elif can_open_flank and can_close_flank:
                action = "close" if (stack[found][0] != ch or ch in marks.ambidextrous) else "open"
        elif found is not None:
            action = "close"
        elif ch in openers and can_open_flank:
            action = "open"
        if action == "close":
            op, pos, multi = stack[found]
            start, end = strip_span(text, pos + 1, i)
            pairs.append(MarkPair(pos, i, found, multi > 0, (start, end)))
            stack = stack[:found]
        elif action == "open":
            if len(stack) >= MAX_STACK:
                stack.pop(0)
            stack.append((ch, i, 0))
        i += 1
    pairs.sort(key=lambda p: (p.open, -p.close))
    return pairs


def _log(x: float) -> float:
    return math.log1p(max(0.0, x))


@dataclass
class _Context:
    """Per-document lookups shared by the feature functions."""

    doc: Document
    lex: Lexicon
    index: TextIndex
    cues: list[tuple[int, int]]
    names: list[tuple[int, int]]
    name_set: frozenset[str] = frozenset()
    persons: list[tuple[int, int]] = field(default_factory=list)
    comps: ComplementizerIndex | None = None
    speaker_starts: list[int] = field(default_factory=list)
    speaker_ends: list[int] = field(default_factory=list)
    """Sorted starts and ends of the speaker-like mentions (persons plus groups such as "the two
    ministries"), for the adjacency tests; empty unless `speaker_adjacency`."""
    clauses: list[int] = field(default_factory=list)
    """Positions of the clause punctuation, ascending."""
    pairs: list[MarkPair] = field(default_factory=list)
    """Every quotation-mark pair of the text with some content, accepted by the mark filter or not."""


@dataclass
class _NearCue:
    """What the span features of one cue can see: the names, persons, other cues and mark pairs
    that lie around its candidate spans (the rest cannot satisfy any test), and the name test
    that depends only on the side of the cue a span is on."""

    names: list[tuple[int, int]]
    persons: list[tuple[int, int]]
    cues: list[tuple[int, int]]
    direct: list[MarkPair]
    marked: list[MarkPair]
    name_after_cue: float
    name_before_cue: float


@lru_cache(maxsize=4)
def _term_set(terms: tuple[str, ...]) -> frozenset[str]:
    """The registry terms as a set, built once instead of once per document."""
    return frozenset(terms)


def _between(positions: list[int], lo: int, hi: int) -> list[int]:
    """The ascending `positions` in [lo, hi)."""
    return positions[bisect.bisect_left(positions, lo) : bisect.bisect_left(positions, hi)]


def _relations(
    items: list[tuple[int, int]], s: int, e: int, cs: int, ce: int, back: bool
) -> tuple[float, float, float]:
    """Whether some item lies inside the span, inside it within 40 characters of the cue, and
    between the span and the cue (`back`: the span ends before the cue)."""
    inside = near = between = 0.0
    for ns, ne in items:
        if s <= ns and ne <= e:
            inside = 1.0
            if min(abs(ns - ce), abs(cs - ne)) < 40:
                near = 1.0
        if (e <= ns and ne <= cs) if back else (ce <= ns and ne <= s):
            between = 1.0
    return inside, near, between


def _direct_relations(pairs: list[MarkPair], s: int, e: int) -> tuple[float, float, float]:
    """Whether a mark pair's content crosses the span (without the pair lying inside it), some
    pair lies inside it, and the span lies inside some pair's content."""
    overlaps = contains = inside = 0.0
    for p in pairs:
        if s <= p.open and p.close < e:
            contains = 1.0
        elif p.content[0] < e and s < p.content[1]:
            overlaps = 1.0
        if p.content[0] <= s and e <= p.content[1]:
            inside = 1.0
    return overlaps, contains, inside


def _after_newline(text: str, pos: int, blanks: str) -> bool:
    """`text[:pos].rstrip(blanks).endswith("\n")`, without copying the text before `pos`."""
    while pos > 0 and text[pos - 1] in blanks:
        pos -= 1
    return pos > 0 and text[pos - 1] == "\n"


def _subject_marker_ends_at(text: str, lex: Lexicon, pos: int) -> bool:
    """A topic or subject marker just before `pos` (知事は「…」, 관계자는 “…”): in Japanese and
    Korean the speaker stands there when the marks hold their words."""
    while pos > 0 and text[pos - 1] == " ":
        pos -= 1
    for marker in lex.subject_markers:
        k = pos - len(marker)
        if k > 0 and text.startswith(marker, k) and lex.subject_marker_at(text, k, marker):
            return True
    return False


_MARK_FOLDS = 5
_LEAD_CHARS = 24
_ADJACENT_CHARS = 12
_ADJACENT_WINDOW = 48
"""How far (in characters, spaces included) a mention may lie from the cue and still be tested."""
_MARK_CUE_KEYS = ("mark_before_cue", "mark_after_cue", "direct_closes_before_cue_in_sentence", "direct_opens_after_cue_in_sentence")
_ADJACENCY_KEYS = ("speaker_right_before_cue", "speaker_right_after_cue")
_SENTENCE_BREAKS = frozenset(TERMINAL) | frozenset("\n")
_CLAUSE_BREAKS = _SENTENCE_BREAKS | frozenset(",;:،、，；：「」“”\"«»")


def _short_gap(text: str, lo: int, hi: int, breaks: frozenset[str] = _CLAUSE_BREAKS) -> bool:
    """`text[lo:hi]` is short (spaces aside) and holds none of `breaks` (by default clause and
    sentence breaks; `_SENTENCE_BREAKS` lets a comma stand there)."""
    gap = text[lo:hi]
    return len(gap.replace(" ", "")) <= _ADJACENT_CHARS and not any(ch in breaks for ch in gap)


def _mention_ends_before(ctx: _Context, pos: int, breaks: frozenset[str] = _CLAUSE_BREAKS) -> bool:
    """Some speaker-like mention ends at most `_ADJACENT_WINDOW` characters before `pos`, with a
    short gap free of `breaks`."""
    ends = ctx.speaker_ends
    lo = bisect.bisect_left(ends, pos - _ADJACENT_WINDOW)
    hi = bisect.bisect_right(ends, pos)
    return any(_short_gap(ctx.doc.text, me, pos, breaks) for me in ends[lo:hi])


def _mention_starts_after(ctx: _Context, pos: int) -> bool:
    starts = ctx.speaker_starts
    lo = bisect.bisect_left(starts, pos)
    hi = bisect.bisect_right(starts, pos + _ADJACENT_WINDOW)
    return any(_short_gap(ctx.doc.text, pos, ms) for ms in starts[lo:hi])


def _adjacency(ctx: _Context, cue: tuple[int, int]) -> dict[str, float]:
    """Whether a speaker-like mention (a name, title, pronoun or group) stands right before
    or right after the cue, with only a few characters of the same clause between: a cue word
    used as a reporting verb has its speaker next to it ("Lavrov stressed", "と、外相は語った",
    "said the two ministries"), the same word used as a noun ("signed a declaration", "the
    threats") does not."""
    cs, ce = cue
    return {
        "speaker_right_before_cue": float(_mention_ends_before(ctx, cs)),
        "speaker_right_after_cue": float(_mention_starts_after(ctx, ce)),
    }


def _nearest_gap(spans: list[tuple[int, int]], start: int, end: int, window: int) -> tuple[float, float]:
    """Characters from the span to the nearest item before it and after it (window when none)."""
    before, after = window, window
    for s, e in spans:
        if e <= start:
            before = min(before, start - e)
        elif s >= end:
            after = min(after, s - end)
    return before, after


class QuoteDetector(Component):
    """Direct, indirect and mixed quotes with a learned mark filter and a learned span scorer."""

    name = "quote_detector"

    def __init__(
        self,
        learned: bool = True,
        threshold: float = 0.5,
        span_threshold: float = 0.5,
        C: float = 1.0,
        language_features: bool = False,
        encoder_weight: float = 0.0,
        encoder: str | None = None,
        quantize: str | None = None,
        encoder_max_tokens: int = 256,
        speaker_adjacency: bool = False,
        filtered_marks: bool = False,
        post_speaker: bool = False,
        act_cues: bool = False,
        cue_context: bool = False,
        cue_threshold: float = 0.2,
        cue_sense_speaker: bool = False,
        lead_phrase: bool = False,
        mixed_spans: bool = False,
        sentence_marks: bool = False,
    ):
        self.learned = learned
        self.threshold = threshold
        self.span_threshold = span_threshold
        self.C = C
        self.language_features = language_features
        self.encoder_weight = encoder_weight
        self.encoder = encoder
        self.quantize = quantize
        self.encoder_max_tokens = encoder_max_tokens
        self.speaker_adjacency = speaker_adjacency
        self.filtered_marks = filtered_marks
        self.post_speaker = post_speaker
        self.act_cues = act_cues
        self.cue_context = cue_context
        self.cue_threshold = cue_threshold
        self.cue_sense_speaker = cue_sense_speaker
        self.lead_phrase = lead_phrase
        self.mixed_spans = mixed_spans
        self.sentence_marks = sentence_marks
        self.cue_sense_: LinearScorer | None = None
        self.filter_: LinearScorer | None = None
        self.spans_: LinearScorer | None = None
        self.lang_filters_: dict[str, LinearScorer] = {}
        self.lang_spans_: dict[str, LinearScorer] = {}

    def _context(self, doc: Document) -> _Context:
        text = doc.text
        lex = load_lexicon(doc.lang)
        terms = default_registry().all_terms
        names = lex.find_names(text, terms)
        persons = names + capitalised_names(text) + lex.find_pronouns(text)
        speakers = persons + find_terms(text, lex.collective, lex.word_boundaries, lex.inflected) if self.speaker_adjacency or self.post_speaker else []
        return _Context(
            doc=doc,
            lex=lex,
            index=TextIndex(text),
            cues=lex.find_cues(text),
            names=names,
            name_set=_term_set(terms),
            persons=persons,
            comps=ComplementizerIndex(lex, text),
            clauses=[m.start() for m in _CLAUSE_MARK.finditer(text)],
            speaker_starts=sorted(s for s, _ in speakers),
            speaker_ends=sorted(e for _, e in speakers),
            pairs=[p for p in scan_marks(text) if p.content[1] > p.content[0]],
        )

    def _mark_features(self, ctx: _Context, pair: MarkPair) -> dict:
        text = ctx.doc.text
        s, e = pair.content
        content = text[s:e]
        ntok = count_tokens(content)
        before_gap, after_gap = _nearest_gap(ctx.cues, pair.open, pair.close + 1, 200)
        para_start = pair.open == 0 or _after_newline(text, pair.open, " \t")
        left = text[max(0, pair.open - 3) : pair.open]
        right = text[pair.close + 1 : pair.close + 4]
        rest = pair.close + 1
        while rest < len(text) and text[rest] == " ":
            rest += 1
        after = text[rest : rest + 2]  # the start of text[pair.close + 1 :].lstrip(" ")
        n_terminal = sum(map(TERMINAL.__contains__, content))
        letters = sum(map(str.isalpha, content))
        name_gap_b, name_gap_a = _nearest_gap(ctx.names, pair.open, pair.close + 1, 200)
        return {
            "subject_before": float(_subject_marker_ends_at(text, ctx.lex, pair.open)),
            "log_chars": _log(len(content)),
            "log_tokens": _log(ntok),
            "tokens<=3": float(ntok <= 3),
            "tokens<=1": float(ntok <= 1),
            "ends_terminal": float(bool(content) and content[-1] in TERMINAL),
            "ends_clause": float(bool(content) and content[-1] in CLAUSE),
            "n_terminal": _log(n_terminal),
            "has_clause_punct": float(not CLAUSE.isdisjoint(content)),
            "letter_ratio": letters / max(1, len(content)),
            "cue_before": 1.0 - min(before_gap, 60) / 60,
            "cue_after": 1.0 - min(after_gap, 60) / 60,
            "name_before": 1.0 - min(name_gap_b, 60) / 60,
            "name_after": 1.0 - min(name_gap_a, 60) / 60,
            "colon_before": float(":" in left or "：" in left),
            "para_start": float(para_start),
            "para_end_after": float(after[:1] in ("\n", "") or (after[:1] in TERMINAL and after[1:2] in ("\n", ""))),
            "terminal_after": float(bool(right) and right.lstrip(" ")[:1] in TERMINAL),
            "comp_after": float(pair.close + 1 in ctx.comps.at),
            "clause_after": float(bool(right) and right[0] in CLAUSE),
            "depth": float(pair.depth),
            "multi_paragraph": float(pair.multi_paragraph),
            "is_registry_name": float(content in ctx.name_set),
            "word_char_before": float(pair.open > 0 and is_word_char(text[pair.open - 1])),
            **(_sentence_mark_features(text, pair, after, after_gap) if self.sentence_marks else {}),
        }

    def _rule_mark(self, feats: dict) -> float:
        long_enough = feats["log_tokens"] > _log(3)
        cued = max(feats["cue_before"], feats["cue_after"]) > 0.5 or feats["colon_before"] or feats["comp_after"]
        sentence = feats["ends_terminal"] or feats["ends_clause"] or feats["n_terminal"] > 0
        return float(long_enough and (cued or sentence) and not feats["is_registry_name"])

    def _span_candidates(self, ctx: _Context, cue: tuple[int, int]) -> list[tuple[tuple[int, int], dict]]:
        """Spans after and before the cue, cut at the sentence, clause punctuation and
        complementizers; the searches look those up in the per-document position lists."""
        text, lex, index = ctx.doc.text, ctx.lex, ctx.index
        comp_at, comp_before = ctx.comps.at, ctx.comps.before
        cs, ce = cue
        sent_s, sent_e = index.sentence_bounds(cs)
        out: list[tuple[tuple[int, int], dict]] = []

        def add(start: int, end: int, feats: dict) -> None:
            start, end = strip_span(text, start, end, SPAN_STRIP)
            if end > start and end - start >= 3:
                end_trim = end
                while end_trim > start and text[end_trim - 1] in TERMINAL:
                    end_trim -= 1
                out.append(((start, end_trim), feats))

        sent_end = sent_e
        while sent_end > ce and (text[sent_end - 1].isspace() or text[sent_end - 1] in TERMINAL):
            sent_end -= 1
        pos = ce
        while pos < sent_end and (text[pos].isspace() or text[pos] in ",:：،、，"):
            pos += 1
        comp = comp_at.get(pos, 0) or lex.cue_particle_at(text, pos)
        starts = [(pos + comp, "after_cue" if not comp else "after_cue_comp")]
        for j in _between(ctx.comps.starts, pos + 1, min(sent_end, pos + 120)):
            if not is_word_char(text[j - 1]) and j + comp_at[j] < sent_end:
                starts.append((j + comp_at[j], "after_later_comp"))
                break
        clauses = _between(ctx.clauses, pos, min(sent_end, pos + 150))[:2]
        for k, j in enumerate(clauses):
            st = j + 1
            while st < sent_end and text[st].isspace():
                st += 1
            st += comp_at.get(st, 0)
            if st < sent_end:
                starts.append((st, f"after_clause{k + 1}"))
        clause_end = next(iter(_between(ctx.clauses, starts[0][0] + 10, sent_end)), None)
        ends = [(sent_end, "sent_end")] + ([(clause_end, "clause_end")] if clause_end else [])
        for st, st_kind in starts:
            for en, en_kind in ends:
                if en > st:
                    add(st, en, {"dir=fwd": 1.0, f"start={st_kind}": 1.0, f"end={en_kind}": 1.0})
        back_end = cs
        while back_end > sent_s and text[back_end - 1].isspace():
            back_end -= 1
        b_ends = [(back_end, "at_cue")]
        k = comp_before.get(back_end, 0)
        if k:
            b_ends.append((back_end - k, "before_comp"))
        for absj in _between(ctx.clauses, sent_s, cs)[-1:]:
            k = comp_before.get(absj, 0)
            b_ends.append((absj - k, "before_clause_comp" if k else "before_clause"))
            if absj in comp_at:
                b_ends.append((absj, "before_comp_clause"))
        for end in reversed(_between(ctx.comps.ends, max(sent_s, back_end - 80) + 2, back_end + 1)):
            k = comp_before[end]
            if end - k > sent_s and text[end : end + 1] in (",", "、", "，", "،", " "):
                b_ends.append((end - k, "before_mid_comp"))
                break
        b_starts = [(sent_s, "sent_start")]
        for marker in lex.subject_markers:
            j = text.find(marker, sent_s, cs)
            if j >= 0:
                b_starts.append((j + len(marker), "after_subject"))
                lead = next(iter(_between(ctx.clauses, j + len(marker) + 1, cs)), None) if self.lead_phrase else None
                if lead is not None:
                    b_starts.append((lead + 1, "after_subject_clause"))
                break
        j = next(iter(_between(ctx.clauses, sent_s, cs)), None)
        if j is not None:
            b_starts.append((j + 1, "after_first_clause"))
        seen = set()
        for st, st_kind in b_starts:
            for en, en_kind in b_ends:
                if en > st and (st, en) not in seen:
                    seen.add((st, en))
                    add(st, en, {"dir=back": 1.0, f"start={st_kind}": 1.0, f"end={en_kind}": 1.0})
        return out

    def _cue_features(self, ctx: _Context, cue: tuple[int, int], direct: list[MarkPair]) -> dict:
        """The span features that depend on the cue alone: computed once per cue."""
        text = ctx.doc.text
        cs, ce = cue
        sent_s, sent_e = ctx.index.sentence_bounds(cs)
        return {
            "direct_closes_before_cue_in_sentence": float(any(sent_s <= p.close <= cs for p in direct)),
            "direct_opens_after_cue_in_sentence": float(any(ce <= p.open < sent_e for p in direct)),
            "name_near_cue": float(any(abs(ns - ce) < 40 or abs(cs - ne) < 40 for ns, ne in ctx.names)),
            "mark_before_cue": float(
                any(0 <= cs - p.close <= 4 for p in direct) or text[max(0, cs - 3) : cs].strip() in ("」と", "”", "“")
            ),
            "mark_after_cue": float(any(0 <= p.open - ce <= 4 for p in direct)),
            "cue_in_direct": float(any(p.content[0] <= cs and ce <= p.content[1] for p in direct)),
            "cue_len": _log(ce - cs),
            **(_adjacency(ctx, cue) if self.speaker_adjacency else {}),
            **({"cue_reports_act": float(ctx.lex.is_act_cue(text[cs:ce]))} if self.act_cues else {}),
        }

    def _speaker_outside(self, ctx: _Context, cue: tuple[int, int], span: tuple[int, int]) -> float:
        """A speaker-like mention right outside the cue-and-content unit: before the cue when the
        content follows it ("Lavrov stressed [that ...]"), before the content or right after the
        cue when the content comes first ("外相は、[...]と語った", "[...], said the ministry")."""
        (cs, ce), (s, e) = cue, span
        if e > cs:
            return float(_mention_ends_before(ctx, cs))
        return float(_mention_ends_before(ctx, s, _SENTENCE_BREAKS) or _mention_starts_after(ctx, ce))

    def _post_speaker(self, ctx: _Context, cue: tuple[int, int], span: tuple[int, int], base: dict) -> dict:
        """A speaker-like mention between the content and a cue that follows it ("[…], the
        minister said"; "[日本は…を懸念している]と、防衛相は…語った"). The speaker slot after the
        content is then taken, so a subject at the sentence start belongs to the content: the
        features pair the test with where the span starts."""
        (cs, _), (s, e) = cue, span
        if e > cs:
            return {}
        starts = ctx.speaker_starts
        taken = bisect.bisect_left(starts, e) < bisect.bisect_left(starts, cs)
        if not taken:
            return {}
        kind = next((k for k in base if k.startswith("start=")), "start=other")
        return {"speaker_after_content": 1.0, f"speaker_after_content&{kind}": 1.0}

    def _near_cue(
        self, ctx: _Context, cue: tuple[int, int], spans: list[tuple[int, int]], direct: list[MarkPair]
    ) -> _NearCue:
        """The items each span feature of this cue's candidates tests: a test about a span
        inside [lo, hi] (or between it and the cue) is false for anything outside, so the
        per-span tests run over a handful of items instead of every one in the document."""
        cs, ce = cue
        lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
        wide_lo, wide_hi = min(lo, cs), max(hi, ce)
        return _NearCue(
            names=[(ns, ne) for ns, ne in ctx.names if wide_lo <= ns and ne <= wide_hi],
            persons=[(ns, ne) for ns, ne in ctx.persons if wide_lo <= ns and ne <= wide_hi],
            cues=[(a, b) for a, b in ctx.cues if lo <= a and b <= hi and (a, b) != cue],
            direct=[p for p in direct if p.content[0] <= hi and lo <= p.content[1]],
            marked=[p for p in ctx.pairs if lo <= p.open and p.close < hi] if self.mixed_spans else [],
            name_after_cue=float(any(ns >= ce and ns - ce < 60 for ns, _ in ctx.names)),
            name_before_cue=float(any(ne <= cs and cs - ne < 60 for _, ne in ctx.names)),
        )

    def _span_features(
        self,
        ctx: _Context,
        cue: tuple[int, int],
        span: tuple[int, int],
        base: dict,
        near: _NearCue,
        cue_feats: dict,
    ) -> dict:
        text = ctx.doc.text
        s, e = span
        cs, ce = cue
        back = e <= cs
        name_in, name_in_near, name_between = _relations(near.names, s, e, cs, ce, back)
        _, person_in_near, person_between = _relations(near.persons, s, e, cs, ce, back)
        overlaps_direct, contains_direct, inside_direct = _direct_relations(near.direct, s, e)
        ntok = count_tokens(text[s:e])
        return {
            **base,
            "log_tokens": _log(ntok),
            "tokens<=3": float(ntok <= 3),
            "gap_to_cue": _log(min(abs(s - ce), abs(cs - e))),
            "comp_touch": float(s in ctx.comps.before or e in ctx.comps.at),
            "name_near_cue": cue_feats["name_near_cue"],
            "contains_name": name_in,
            "contains_cue": float(any(s <= a and b <= e for a, b in near.cues)),
            "mark_before_cue": cue_feats["mark_before_cue"],
            "mark_after_cue": cue_feats["mark_after_cue"],
            "overlaps_direct": overlaps_direct,
            "contains_direct": contains_direct,
            "inside_direct": inside_direct,
            "cue_in_direct": cue_feats["cue_in_direct"],
            "cue_len": cue_feats["cue_len"],
            "direct_closes_before_cue_in_sentence": cue_feats["direct_closes_before_cue_in_sentence"],
            "direct_opens_after_cue_in_sentence": cue_feats["direct_opens_after_cue_in_sentence"],
            **{k: cue_feats[k] for k in _ADJACENCY_KEYS if k in cue_feats},
            **({"speaker_outside": self._speaker_outside(ctx, cue, span)} if self.speaker_adjacency else {}),
            **(self._post_speaker(ctx, cue, span, base) if self.post_speaker else {}),
            **({"cue_reports_act": cue_feats["cue_reports_act"]} if self.act_cues else {}),
            "name_opposite_side": near.name_after_cue if back else near.name_before_cue,
            "name_between": name_between,
            "name_in_span_near_cue": name_in_near,
            "starts_paragraph": float(s == 0 or _after_newline(text, s, " ")),
            "person_between": person_between,
            "person_in_span_near_cue": person_in_near,
            **({"lead_clause": _lead_clause(ctx, s, e)} if self.lead_phrase else {}),
            **(_mixed_features(ctx, near, s, e, base, cue_feats) if self.mixed_spans else {}),
        }

    def _rule_span(self, feats: dict) -> float:
        if feats["mark_before_cue"] or feats["mark_after_cue"] or feats["overlaps_direct"] or feats["inside_direct"]:
            return 0.0
        if feats["log_tokens"] < _log(4) or not feats["name_near_cue"]:
            return 0.0
        if feats.get("dir=fwd") and feats.get("end=sent_end") and (
            feats.get("start=after_cue_comp") or feats.get("start=after_cue")
        ):
            return 0.6 + 0.1 * feats["comp_touch"]
        if feats.get("dir=back") and feats.get("start=after_subject") and feats.get("end=before_comp"):
            return 0.55
        return 0.0

    def _candidates(
        self, doc: Document, span_pairs: list[MarkPair] | None = None
    ) -> tuple[_Context, list[MarkPair], list[dict], list[tuple], list[dict]]:
        """Mark pairs with their features, and cue-span candidates with theirs. The span features
        that look at quotation marks see `span_pairs`: by default every pair, or with
        `filtered_marks` the pairs the fitted mark filter accepts."""
        ctx, pairs, mark_feats = self._marks(doc)
        if span_pairs is None:
            span_pairs = self._pairs_for_spans(pairs, mark_feats, doc.lang)
        span_cands, span_feats = self._spans(ctx, span_pairs)
        return ctx, pairs, mark_feats, span_cands, span_feats

    def _marks(self, doc: Document) -> tuple[_Context, list[MarkPair], list[dict]]:
        ctx = self._context(doc)
        return ctx, ctx.pairs, [self._mark_features(ctx, p) for p in ctx.pairs]

    def _pairs_for_spans(self, pairs: list[MarkPair], mark_feats: list[dict], lang: str | None) -> list[MarkPair]:
        """With `filtered_marks`, only the pairs the mark filter accepts: a scare-quoted phrase
        (「平和条約を締結」することに…を示した) is no direct quote, so it must not make the cue
        beside it look like the cue of one."""
        if not self._filters_marks():
            return pairs
        return [p for p, prob in zip(pairs, self._score_marks(mark_feats, lang), strict=True) if prob >= self.threshold]

    def _filters_marks(self) -> bool:
        return bool(self.filtered_marks and self.learned and self.filter_ is not None and self.filter_.fitted)

    def _spans(self, ctx: _Context, pairs: list[MarkPair]) -> tuple[list[tuple], list[dict]]:
        span_cands, span_feats = [], []
        for cue in ctx.cues:
            candidates = self._span_candidates(ctx, cue)
            if not candidates:
                continue
            cue_feats = self._cue_features(ctx, cue, pairs)
            near = self._near_cue(ctx, cue, [span for span, _ in candidates], pairs)
            for span, base in candidates:
                span_cands.append((cue, span))
                span_feats.append(self._span_features(ctx, cue, span, base, near, cue_feats))
        if self.encoder_weight and span_cands:
            self._add_span_embeddings(ctx.doc.text, span_cands, span_feats)
        return span_cands, span_feats

    def _add_span_embeddings(self, text: str, span_cands: list[tuple], span_feats: list[dict]) -> None:
        """The candidate's text through the multilingual encoder, scaled by `encoder_weight`:
        the hand features say where a span lies, the embedding says whether it reads like
        reported content or like a speaker clause ("the minister said"), and that reading
        carries across languages where the hand features' weights, learned mostly from the
        authored style, do not."""
        from inference.encoder.memo import embed  # imports torch: only configs that embed pay for it

        spans = [text[s:e] for _, (s, e) in span_cands]
        rows = embed(spans, self.encoder, self.quantize, max_length=self.encoder_max_tokens)
        w = float(self.encoder_weight)
        for feats, row in zip(span_feats, rows, strict=True):
            feats.update({f"emb{i}": w * float(x) for i, x in enumerate(row)})

    def fit(self, docs: list[Document]) -> QuoteDetector:
        if not self.learned:
            return self
        marks = [self._marks(doc) for doc in docs]
        gold_direct = [{q.content for q in doc.quotes if q.kind == "direct"} for doc in docs]
        mx, my, m_lang = [], [], []
        for doc, (_, pairs, mark_feats), direct in zip(docs, marks, gold_direct, strict=True):
            mx.extend(mark_feats)
            my.extend(int(p.content in direct) for p in pairs)
            m_lang.extend([doc.lang] * len(pairs))
        self.filter_ = LinearScorer(C=self.C).fit(mx, my)
        if self.cue_context:
            self._fit_cue_sense(docs, [ctx for ctx, _, _ in marks])
        else:
            self.cue_sense_ = None
        span_pairs = self._held_out_accepted(marks, gold_direct) if self.filtered_marks else [pairs for _, pairs, _ in marks]
        sx, sy, s_lang = [], [], []
        for doc, (ctx, _, _), accepted in zip(docs, marks, span_pairs, strict=True):
            span_cands, span_feats = self._spans(ctx, accepted)
            reported = [q for q in doc.quotes if q.kind != "direct"]
            best: dict[tuple[int, int], tuple[float, int]] = {}
            for k, (cue, span) in enumerate(span_cands):
                iou = max((_iou(span, q.content) for q in reported if _overlap(cue, q.cue)), default=0.0)
                if iou >= 0.5 and iou > best.get(cue, (0.0, -1))[0]:
                    best[cue] = (iou, k)
            positives = {k for _, k in best.values()}
            sx.extend(span_feats)
            sy.extend(int(k in positives) for k in range(len(span_cands)))
            s_lang.extend([doc.lang] * len(span_cands))
        self.spans_ = LinearScorer(C=self.C).fit(sx, sy)
        if self.language_features:
            self.lang_filters_ = self._per_language(mx, my, m_lang)
            self.lang_spans_ = self._per_language(sx, sy, s_lang)
        return self

    def _fit_cue_sense(self, docs: list[Document], contexts: list[_Context]) -> None:
        """The cue-sense scorer on every cue of the training documents: a cue is positive when
        it is the cue of a gold quote. It is a separate stage, like the mark filter, so that in a
        language it never saw it stays silent and the span scorer works as without it."""
        rows = [_cue_window(ctx, cue, self.cue_sense_speaker) for ctx in contexts for cue in ctx.cues]
        labels = [
            int(any(q.cue and _overlap(cue, q.cue) for q in doc.quotes))
            for doc, ctx in zip(docs, contexts, strict=True)
            for cue in ctx.cues
        ]
        self.cue_sense_ = LinearScorer(C=self.C, class_weight=None).fit(rows, labels, sparse=True)

    def _held_out_accepted(
        self, marks: list[tuple[_Context, list[MarkPair], list[dict]]], gold_direct: list[set]
    ) -> list[list[MarkPair]]:
        """Each training document's pairs as a mark filter that never saw it accepts them (5 folds
        by document): the span scorer then learns from the same kind of filtered pairs it gets
        at prediction time, not from the in-sample filter's nearly perfect ones."""
        n = len(marks)
        if n < 2:
            return [self._pairs_for_spans(pairs, feats, ctx.doc.lang) for ctx, pairs, feats in marks]
        out: list[list[MarkPair]] = [[] for _ in marks]
        folds = min(_MARK_FOLDS, n)
        for k in range(folds):
            train = [i for i in range(n) if i % folds != k]
            x = [f for i in train for f in marks[i][2]]
            y = [int(p.content in gold_direct[i]) for i in train for p in marks[i][1]]
            scorer = LinearScorer(C=self.C).fit(x, y)
            for i in range(k, n, folds):
                _, pairs, feats = marks[i]
                probs = scorer.predict_proba(feats) if scorer.fitted and feats else [self._rule_mark(f) for f in feats]
                out[i] = [p for p, prob in zip(pairs, probs, strict=True) if prob >= self.threshold]
        return out

    def _per_language(self, X: list[dict], y: list[int], langs: list[str | None]) -> dict[str, LinearScorer]:
        """Scorers for the languages seen in training: marks and cues behave differently per
        script (「」 vs “ ”, verb-final cues), so shared weights plus per-language copies fit each
        seen language better. A language not seen keeps the shared-only scorer, whose weights are
        not thinned out by the copies (on unseen languages the joint model's shared part is worse)."""
        joint = LinearScorer(C=self.C).fit(group_copies(X, langs), y, sparse=True)
        if not joint.fitted:
            return {}
        return {lang: joint.fold(f"{lang}|") for lang in sorted({g for g in langs if g})}

    def _score_marks(self, feats: list[dict], lang: str | None = None) -> list[float]:
        scorer = self.lang_filters_.get(lang) or self.filter_
        if self.learned and scorer is not None and scorer.fitted:
            return list(scorer.predict_proba(feats))
        return [self._rule_mark(f) for f in feats]

    def _score_spans(self, feats: list[dict], lang: str | None = None) -> list[float]:
        scorer = self.lang_spans_.get(lang) or self.spans_
        if self.learned and scorer is not None and scorer.fitted:
            return list(scorer.predict_proba(feats))
        return [self._rule_span(f) for f in feats]

    def __call__(self, doc: Document) -> Document:
        ctx, pairs, mark_feats = self._marks(doc)
        text = doc.text
        mark_p = self._score_marks(mark_feats, doc.lang)
        span_pairs = [p for p, prob in zip(pairs, mark_p, strict=True) if prob >= self.threshold] if self._filters_marks() else pairs
        span_cands, span_feats = self._spans(ctx, span_pairs)
        direct = [
            (p, prob)
            for p, prob in zip(pairs, mark_p, strict=True)
            if prob >= self.threshold and not unpaired_edge_mark(text[p.content[0] : p.content[1]])
        ]
        senses = _cue_sense(self.cue_sense_, ctx, self.cue_sense_speaker) if self.cue_context and self.cue_sense_ is not None and self.cue_sense_.fitted else {}
        best: dict[tuple[int, int], tuple[float, tuple[int, int]]] = {}
        for (cue, span), prob in zip(span_cands, self._score_spans(span_feats, doc.lang), strict=True):
            if senses.get(cue, 1.0) < self.cue_threshold:
                continue
            if prob >= self.span_threshold and (cue not in best or prob > best[cue][0]):
                best[cue] = (prob, span)
        reported: list[tuple[tuple[int, int], tuple[int, int], float]] = []
        for cue, (prob, span) in sorted(best.items(), key=lambda kv: -kv[1][0]):
            if _only_marks(text, span, [p for p, _ in direct]):
                continue
            clash = any(_overlap(span, s) and not _contains(span, s) and not _contains(s, span) for _, s, _ in reported)
            same = any(_contains(span, s) or _contains(s, span) for _, s, _ in reported)
            if not clash and not same and not any(_overlap(cue, s) for _, s, _ in reported):
                reported.append((cue, span, prob))
        quotes: list[tuple[str, tuple[int, int], tuple[int, int] | None, float]] = []
        for cue, span, prob in reported:
            inner = [p for p, _ in direct if span[0] <= p.open and p.close < span[1]]
            all_inner = [p for p in pairs if span[0] <= p.open and p.close < span[1] and count_tokens(text[p.content[0]:p.content[1]]) >= 2]
            kind = "mixed" if all_inner else "indirect"
            quotes.append((kind, span, cue, prob))
            for p in inner:
                own_cue = _cue_for(ctx, p.open, p.close + 1)
                if own_cue is None or not _contains(span, own_cue):
                    direct = [(d, dp) for d, dp in direct if d is not p]
        for p, _ in direct:
            # reported speech found inside a direct quote must not run past its closing mark: the
            # mark pair is the stronger evidence, so such a crossing span gives way to the quote
            quotes = [
                q
                for q in quotes
                if not (q[2] is not None and _contains(p.content, q[2]) and _overlap(p.content, q[1]) and not _contains(p.content, q[1]))
            ]
        for p, prob in direct:
            if any(_overlap(p.content, s) and not _contains(s, p.content) and not _contains(p.content, s) for _, s, _, _ in quotes):
                continue
            quotes.append(("direct", p.content, _cue_for(ctx, p.open, p.close + 1), prob))
        quotes.sort(key=lambda q: (q[1][0], -q[1][1]))
        out = doc.model_copy(deep=True)
        out.quotes = [
            Quote(id=f"q{i}", kind=kind, content=span, cue=cue, confidence={"quote": round(float(prob), 4)})
            for i, (kind, span, cue, prob) in enumerate(quotes, start=1)
        ]
        return out

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {
            "params": {
                "learned": self.learned,
                "threshold": self.threshold,
                "span_threshold": self.span_threshold,
                "C": self.C,
                "language_features": self.language_features,
                "encoder_weight": self.encoder_weight,
                "encoder": self.encoder,
                "quantize": self.quantize,
                "encoder_max_tokens": self.encoder_max_tokens,
                "speaker_adjacency": self.speaker_adjacency,
                "filtered_marks": self.filtered_marks,
                "post_speaker": self.post_speaker,
                "act_cues": self.act_cues,
                "cue_context": self.cue_context,
                "cue_sense_speaker": self.cue_sense_speaker,
                "cue_threshold": self.cue_threshold,
                "lead_phrase": self.lead_phrase,
                "mixed_spans": self.mixed_spans,
                "sentence_marks": self.sentence_marks,
            },
            "filter": self.filter_.to_dict() if self.filter_ else None,
            "spans": self.spans_.to_dict() if self.spans_ else None,
            "lang_filters": {lang: sc.to_dict() for lang, sc in self.lang_filters_.items()},
            "lang_spans": {lang: sc.to_dict() for lang, sc in self.lang_spans_.items()},
            "cue_sense": self.cue_sense_.to_dict() if self.cue_sense_ else None,
        }
        (path / "quote_detector.json").write_text(json.dumps(state), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> QuoteDetector:
        state = json.loads((Path(path) / "quote_detector.json").read_text(encoding="utf-8"))
        det = cls(**state["params"])
        det.filter_ = LinearScorer.from_dict(state["filter"]) if state["filter"] else None
        det.spans_ = LinearScorer.from_dict(state["spans"]) if state["spans"] else None
        det.lang_filters_ = _scorers_by_language(state.get("lang_filters", {}))
        det.lang_spans_ = _scorers_by_language(state.get("lang_spans", {}))
        det.cue_sense_ = LinearScorer.from_dict(state["cue_sense"]) if state.get("cue_sense") else None
        return det


def _scorers_by_language(state) -> dict[str, LinearScorer]:
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in state.items()):
        raise ValueError("per-language scorers must map language codes to scorer states")
    return {lang: LinearScorer.from_dict(d) for lang, d in state.items()}


_WINDOW_LENGTHS = (1, 2, 3, 5, 8)


def _cue_window(ctx: _Context, cue: tuple[int, int], speaker: bool = False) -> dict[str, float]:
    """The cue and the characters right around it, anchored at its edges: "ký [tuyên bố] chung"
    (signed a declaration) and "Lavrov [tuyên bố] rằng" differ in the words beside the cue,
    whatever the language's script or word boundaries. With `speaker`, also whether a
    speaker-like mention stands right beside the cue ("Ông Kono cũng [cho]"), which the
    characters alone show only for the names seen in training."""
    text = ctx.doc.text
    cs, ce = cue
    feats = {_cue_word(ctx, cue): 1.0, **(_adjacency(ctx, cue) if speaker else {})}
    for k in _WINDOW_LENGTHS:
        feats[f"L{k}:{text[max(0, cs - k) : cs].casefold()}"] = 1.0
        feats[f"R{k}:{text[ce : ce + k].casefold()}"] = 1.0
    return feats


def _sentence_mark_features(text: str, pair: MarkPair, after: str, after_gap: int) -> dict[str, float]:
    """Whether the pair opens a sentence and hands over to a cue right after a comma or dash
    ("Useful," he told reporters; «Полезно», — сказал он): a name or title in marks seldom opens
    its sentence, and a quote before its cue ends at clause punctuation, which the mark filter
    otherwise sees only as length and distance."""
    prev = pair.open
    while prev > 0 and text[prev - 1] in " \t":
        prev -= 1
    opens = prev == 0 or text[prev - 1] == "\n" or text[prev - 1] in TERMINAL
    content_end = text[pair.content[1] - 1]
    hands_over = (content_end in CLAUSE or after[:1] in CLAUSE or after[:1] in "—–-") and after_gap <= 30
    return {
        "opens_sentence": float(opens),
        "opens_sentence&cue_after": float(opens and after_gap <= 30),
        "clause_then_cue": float(hands_over),
        "opens_sentence&clause_then_cue": float(opens and hands_over),
    }


def _mixed_features(ctx: _Context, near: _NearCue, s: int, e: int, base: dict, cue_feats: dict) -> dict[str, float]:
    """For a span holding a quotation-mark pair (accepted by the mark filter or not): how much
    unmarked text stands before and after the marks, and whether a name or person noun stands in
    that lead. A mixed quote's lead is the content's own subject (日本の積極的平和主義は「…」と批判した,
    dijo que Japón «…»); a span that is only the marks, or whose lead holds a name, is a direct
    quote with its speaker. The span's kind features are repeated in a block of their own, so the
    scorer weighs a candidate with marks inside apart from one without."""
    inner = [p for p in near.marked if s <= p.open and p.close < e]
    if not inner:
        return {}
    text = ctx.doc.text
    first, last = min(p.open for p in inner), max(p.close for p in inner)
    lead, tail = count_tokens(text[s:first]), count_tokens(text[last + 1 : e])
    lead_name = any(s <= ns and ne <= first for ns, ne in near.persons)
    lead_text = text[s:first].rstrip()
    return {
        **({f"mixed_lead_char={lead_text[-1]}": 1.0} if lead_text else {}),
        "mixed_lead_tokens": _log(lead),
        "mixed_tail_tokens": _log(tail),
        "mixed_no_lead": float(lead == 0),
        "mixed_lead_name": float(lead_name),
        "mixed_marked_tokens": _log(sum(count_tokens(text[p.content[0] : p.content[1]]) for p in inner)),
        **{f"mixed&{k}": v for k, v in base.items()},
        **{f"mixed&{k}": cue_feats[k] for k in _MARK_CUE_KEYS},
    }


def _lead_clause(ctx: _Context, s: int, e: int) -> float:
    """A clause break within the span's first characters with more text after it: content that
    begins with a lead phrase (15日の記者会見で、…, no obstante, …) that is often no part of it."""
    j = next(iter(_between(ctx.clauses, s + 1, min(e, s + _LEAD_CHARS))), None)
    return float(j is not None and e - j > _LEAD_CHARS // 2)


def _cue_word(ctx: _Context, cue: tuple[int, int]) -> str:
    """The window feature naming the cue word itself."""
    return f"C:{ctx.doc.text[cue[0] : cue[1]].casefold()}"


def _cue_sense(scorer: LinearScorer | None, ctx: _Context, speaker: bool = False) -> dict[tuple[int, int], float]:
    """Per cue the scorer's probability; cues whose word it never saw are left out (their sense
    is unknown, as in a language the scorer was not trained on)."""
    if scorer is None or not ctx.cues:
        return {}
    vocab = scorer.vectorizer_.vocabulary_
    known = [cue for cue in ctx.cues if _cue_word(ctx, cue) in vocab]
    probs = scorer.predict_proba_sparse([_cue_window(ctx, cue, speaker) for cue in known])
    return {cue: float(p) for cue, p in zip(known, probs, strict=True)}


def _cue_for(ctx: _Context, start: int, end: int) -> tuple[int, int] | None:
    """The nearest cue in the quote's own sentence, else the nearest in its paragraph (else one
    just across a paragraph break). In `"A," Lavrov said. "B," Shoigu said.` the `said` right
    before "B" ends the sentence of "A", whose cue it is; B's own is the one after it."""
    index = ctx.index
    paras = (index.paragraph_of(start), index.paragraph_of(max(start, end - 1)))
    first, last = index.sentence_of(start), index.sentence_of(max(start, end - 1))
    best: list = [None, None, None]
    limits = (100, 100, 30)
    for cs, ce in ctx.cues:
        if ce <= start:
            d, same = start - ce, index.sentence_of(ce - 1) == first
        elif cs >= end:
            d, same = cs - end, index.sentence_of(cs) == last
        else:
            continue
        group = (0 if same else 1) if index.paragraph_of(cs) in paras else 2
        if d <= limits[group] and (best[group] is None or d < best[group][0]):
            best[group] = (d, (cs, ce))
    return next((found[1] for found in best if found is not None), None)


def _only_marks(text: str, span: tuple[int, int], pairs: list[MarkPair]) -> bool:
    """True when a reported span is just one or more direct quotes (nothing reported around them)."""
    inner = [p for p in pairs if span[0] <= p.open and p.close < span[1]]
    if not inner:
        return False
    covered = set()
    for p in inner:
        covered.update(range(p.open, p.close + 1))
    return sum(1 for i in range(span[0], span[1]) if i not in covered and is_word_char(text[i])) < 2


def _overlap(a: tuple[int, int] | None, b: tuple[int, int] | None) -> bool:
    return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]


def _contains(outer: tuple[int, int], inner: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union else 0.0
