"""Leave-one-document-out (seeds) and leave-one-language-out (authored) for detection + attribution.

    .venv/bin/python -m training.evaluate_components [--lolo]

Each held-out document is predicted from its raw text (text, lang, published only); the learned
variant is trained on everything else, the rule-only variant uses no training at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inference.document import Document
from inference.pipeline.attribution import SpeakerAttributor
from inference.pipeline.quote_detection import QuoteDetector
from inference.scoring import score
from inference.validate import read_jsonl

ROOT = Path(__file__).resolve().parent.parent


def load_sets() -> tuple[list[Document], list[Document]]:
    seeds = read_jsonl(ROOT / "annotations/seeds.jsonl")
    authored = [d for f in sorted((ROOT / "annotations/authored").glob("*.jsonl")) for d in read_jsonl(f)]
    return seeds, authored


def raw(doc: Document) -> Document:
    return Document(doc_id=doc.doc_id, lang=doc.lang, published=doc.published, text=doc.text)


def predict(train: list[Document], test: list[Document], learned: bool):
    det = QuoteDetector(learned=learned).fit(train)
    att = SpeakerAttributor(learned=learned).fit(train)
    preds = [att(det(raw(d))) for d in test]
    on_gold = [att(_gold_spans(d)) for d in test]
    return preds, on_gold


def _gold_spans(doc: Document) -> Document:
    out = raw(doc)
    out.quotes = [q.model_copy(update={"mention": None, "speaker": None, "stances": []}) for q in doc.quotes]
    return out


def _row(name: str, r: dict) -> str:
    return (
        f"{name:<12} n={r['n_gold']:>3} pred={r['n_pred']:>3}  F1 overlap {r['overlap']['f1']:.3f}  "
        f"exact {r['exact']['f1']:.3f}  attr(gold spans) {r['attribution']:.3f}  e2e {r['end_to_end']:.3f}"
    )


def lodo(seeds: list[Document], authored: list[Document], learned: bool) -> dict:
    all_preds, all_gold_spans = [], []
    lines = []
    for held in seeds:
        train = authored + [d for d in seeds if d.doc_id != held.doc_id]
        preds, on_gold = predict(train, [held], learned)
        all_preds += preds
        all_gold_spans += on_gold
        lines.append(_row(held.doc_id, score([held], preds, on_gold)["overall"]))
    total = score(seeds, all_preds, all_gold_spans)
    lines.append(_row("overall", total["overall"]))
    return {"lines": lines, "score": total}


def lolo(authored: list[Document], seeds: list[Document], learned: bool) -> dict:
    langs = sorted({d.lang for d in authored})
    all_preds, all_gold_spans, lines = [], [], []
    for lang in langs:
        test = [d for d in authored if d.lang == lang]
        train = [d for d in authored if d.lang != lang] + [d for d in seeds if d.lang != lang]
        preds, on_gold = predict(train, test, learned)
        all_preds += preds
        all_gold_spans += on_gold
        lines.append(_row(lang, score(test, preds, on_gold)["overall"]))
    lines.append(_row("overall", score(authored, all_preds, all_gold_spans)["overall"]))
    return {"lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lolo", action="store_true", help="also leave-one-language-out on the authored set")
    parser.add_argument("--json", type=Path, help="write the LODO scores here")
    args = parser.parse_args()
    seeds, authored = load_sets()
    print(f"seeds: {len(seeds)} docs; authored: {len(authored)} docs")
    results = {}
    for learned in (False, True):
        name = "learned" if learned else "rule-only"
        res = lodo(seeds, authored, learned)
        results[name] = res["score"]
        print(f"\n== LODO seeds, {name}")
        print("\n".join(res["lines"]))
        if args.lolo and authored:
            print(f"\n== LOLO authored, {name}")
            print("\n".join(lolo(authored, seeds, learned)["lines"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
