"""Gold/prediction alignment for error lists and confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

from inference.document import Document, Quote


def overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def align(gold: Document, pred: Document) -> list[tuple[Quote | None, Quote | None]]:
    """One-to-one pairs by largest character overlap; unmatched quotes pair with None."""
    pairs = sorted(
        ((overlap(g.content, p.content), gi, pi) for gi, g in enumerate(gold.quotes) for pi, p in enumerate(pred.quotes)),
        reverse=True,
    )
    used_g, used_p, out = set(), set(), []
    for ov, gi, pi in pairs:
        if ov <= 0:
            break
        if gi in used_g or pi in used_p:
            continue
        used_g.add(gi)
        used_p.add(pi)
        out.append((gold.quotes[gi], pred.quotes[pi]))
    out += [(g, None) for gi, g in enumerate(gold.quotes) if gi not in used_g]
    out += [(None, p) for pi, p in enumerate(pred.quotes) if pi not in used_p]
    return out


def _short(doc: Document, q: Quote, n: int = 70) -> str:
    text = doc.quote_text(q).replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def error_list(golds: Sequence[Document], preds: Sequence[Document]) -> str:
    """A readable list of every miss, false alarm, wrong speaker and wrong stance."""
    lines = []
    by_id = {p.doc_id: p for p in preds}
    for gold in golds:
        pred = by_id.get(gold.doc_id)
        if pred is None:
            lines.append(f"{gold.doc_id}: no prediction")
            continue
        for g, p in align(gold, pred):
            if p is None:
                lines.append(f"{gold.doc_id} MISSED {g.kind} [{g.speaker}] {_short(gold, g)}")
            elif g is None:
                lines.append(f"{gold.doc_id} FALSE {p.kind} [{p.speaker}] {_short(pred, p)}")
            else:
                if g.speaker != p.speaker:
                    lines.append(f"{gold.doc_id} SPEAKER gold={g.speaker} pred={p.speaker}: {_short(gold, g)}")
                gs = {(s.topic, s.stance) for s in g.stances}
                ps = {(s.topic, s.stance) for s in p.stances}
                if gs != ps:
                    lines.append(f"{gold.doc_id} STANCE gold={sorted(gs)} pred={sorted(ps)}: {_short(gold, g)}")
    return "\n".join(lines) + "\n"
