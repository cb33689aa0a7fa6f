"""The scorer of record: gold and predicted Documents in, metrics out, overall and per language.

- Quote detection P/R/F1, `overlap` (any shared character, quotes matched one-to-one so as to
  maximise the number of matches, ties broken by shared characters) and `exact` (same span).
- `attribution`: speaker accuracy over gold quotes, given the gold content span. It reads the
  `attributed` documents (the attributor run on the gold quotes) when given, else the predicted
  quote with the exact gold span (a missing span counts as wrong).
- `end_to_end`: over gold quotes, the fraction found (overlap match) with the right speaker.
- Stance is scored over (quote, topic, stance) triples of overlap-matched quotes; a triple on
  an unmatched gold quote is a miss, one on an unmatched predicted quote a false alarm.
  `stance_macro_f1`: macro-F1 over the three labels favor/against/neutral (the figure of
  record); `stance_favor_against_f1`: the mean of favor and against F1 (SemEval-2016's
  measure); `stance_macro_f1_topic_label`: the stricter macro over every (topic, label) class;
  `stance_by_topic`: per topic, F1 over its triples and macro-F1 over the labels it has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from inference.document import STANCE_LABELS, Document, Quote


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def match_overlap(gold: Sequence[Quote], pred: Sequence[Quote]) -> list[tuple[int, int]]:
    """One-to-one (gold index, pred index) pairs of overlapping quotes, most matches first."""
    if not gold or not pred:
        return []
    weight = np.zeros((len(gold), len(pred)))
    for i, g in enumerate(gold):
        glen = max(1, g.content[1] - g.content[0])
        for j, p in enumerate(pred):
            inter = min(g.content[1], p.content[1]) - max(g.content[0], p.content[0])
            if inter > 0:
                plen = max(1, p.content[1] - p.content[0])
                weight[i, j] = 1.0 + inter / max(glen, plen)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if weight[i, j] > 0]


class _Tally:
    def __init__(self) -> None:
        self.n_gold = self.n_pred = self.tp_overlap = self.tp_exact = 0
        self.attr_right = self.attr_total = 0
        self.e2e_right = 0
        self.stance = defaultdict(lambda: [0, 0, 0])

    def result(self) -> dict[str, float | dict]:
        pairs = sorted(self.stance)
        f1s = []
        for key in pairs:
            tp, fp, fn = self.stance[key]
            f1s.append(_prf(tp, tp + fp, tp + fn)["f1"])
        by_label = {label: [0, 0, 0] for label in STANCE_LABELS}
        for (_, label), counts in self.stance.items():
            by_label[label] = [a + b for a, b in zip(by_label[label], counts)]
        label_f1 = {label: _prf(tp, tp + fp, tp + fn)["f1"] for label, (tp, fp, fn) in by_label.items()}
        return {
            "stance_f1_by_label": label_f1,
            "stance_macro_f1": float(np.mean(list(label_f1.values()))),
            "stance_favor_against_f1": (label_f1["favor"] + label_f1["against"]) / 2,
            "n_gold": self.n_gold,
            "n_pred": self.n_pred,
            "overlap": _prf(self.tp_overlap, self.n_pred, self.n_gold),
            "exact": _prf(self.tp_exact, self.n_pred, self.n_gold),
            "attribution": self.attr_right / self.attr_total if self.attr_total else 0.0,
            "end_to_end": self.e2e_right / self.n_gold if self.n_gold else 0.0,
            "stance_macro_f1_topic_label": float(np.mean(f1s)) if f1s else 0.0,
            "stance_by_topic": self._by_topic(),
        }

    def _by_topic(self) -> dict[str, dict[str, float]]:
        """Per topic: F1 over its (quote, stance) triples, macro-F1 over the labels it has, gold count."""
        out = {}
        for topic in sorted({t for t, _ in self.stance}):
            counts = [self.stance.get((topic, label), [0, 0, 0]) for label in STANCE_LABELS]
            tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
            present = [_prf(c[0], c[0] + c[1], c[0] + c[2])["f1"] for c in counts if any(c)]
            out[topic] = {
                "f1": _prf(tp, tp + fp, tp + fn)["f1"],
                "macro_f1": float(np.mean(present)),
                "n_gold": tp + fn,
            }
        return out


def score(
    gold_docs: Sequence[Document],
    pred_docs: Sequence[Document],
    attributed_docs: Sequence[Document] | None = None,
) -> dict:
    """Metrics over all documents (`overall`) and per language (`by_lang`); docs matched by id."""
    preds = {d.doc_id: d for d in pred_docs}
    attributed = {d.doc_id: d for d in attributed_docs} if attributed_docs is not None else None
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    for gold in gold_docs:
        pred = preds.get(gold.doc_id)
        pquotes = list(pred.quotes) if pred is not None else []
        targets = [tallies["overall"], tallies[gold.lang or "und"]]
        exact = {q.content for q in pquotes}
        matches = match_overlap(gold.quotes, pquotes)
        source = attributed.get(gold.doc_id) if attributed is not None else pred
        by_span = {q.content: q for q in (source.quotes if source is not None else [])}
        for t in targets:
            t.n_gold += len(gold.quotes)
            t.n_pred += len(pquotes)
            t.tp_overlap += len(matches)
            t.tp_exact += sum(1 for q in gold.quotes if q.content in exact)
            for g in gold.quotes:
                t.attr_total += 1
                hit = by_span.get(g.content)
                t.attr_right += int(hit is not None and hit.speaker == g.speaker)
            for gi, pj in matches:
                t.e2e_right += int(pquotes[pj].speaker == gold.quotes[gi].speaker)
            matched_g = {gi for gi, _ in matches}
            matched_p = {pj for _, pj in matches}
            for gi, pj in matches:
                _stance_counts(t, gold.quotes[gi], pquotes[pj])
            for gi, g in enumerate(gold.quotes):
                if gi not in matched_g:
                    _stance_counts(t, g, None)
            for pj, p in enumerate(pquotes):
                if pj not in matched_p:
                    _stance_counts(t, None, p)
    overall = tallies.pop("overall", _Tally()).result()
    return {"overall": overall, "by_lang": {lang: t.result() for lang, t in sorted(tallies.items())}}


def _stance_counts(t: _Tally, gold: Quote | None, pred: Quote | None) -> None:
    g = {(s.topic, s.stance) for s in gold.stances} if gold is not None else set()
    p = {(s.topic, s.stance) for s in pred.stances} if pred is not None else set()
    for key in g & p:
        t.stance[key][0] += 1
    for key in p - g:
        t.stance[key][1] += 1
    for key in g - p:
        t.stance[key][2] += 1
