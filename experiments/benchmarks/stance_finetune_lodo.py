"""Leave-one-document-out over the five seeds for the fine-tuned stance backend (gold quotes given).

For each seed: fine-tune on the authored set plus the other four seeds, predict the stances of the
held-out seed's gold quotes (gold content spans and speakers, stances removed), and count
(quote, topic, stance) triples: TP = a gold triple predicted exactly, FP = a predicted triple not
in gold, FN = a gold triple not predicted. Reported: macro-F1 over favor/against/neutral, the
FAVOR/AGAINST average (SemEval-2016 style) and the project scorer's stance figures (including its
stricter macro over (topic, stance) classes), per seed and pooled over the five folds, with the
training time of each fold.

    python experiments/benchmarks/stance_finetune_lodo.py --encoder DIR --epochs 1 --max-steps 150
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from tqdm.auto import tqdm

from inference.document import STANCE_LABELS
from inference.pipeline.stance_finetune import FineTunedStance
from inference.scoring import score
from inference.validate import read_jsonl

ROOT = Path(__file__).resolve().parents[2]


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def triple_counts(gold_docs, pred_docs) -> dict[str, list[int]]:
    """[tp, fp, fn] per stance label over (quote id, topic, stance) triples."""
    counts = {label: [0, 0, 0] for label in STANCE_LABELS}
    for g_doc, p_doc in zip(gold_docs, pred_docs):
        gold = {(q.id, s.topic, s.stance) for q in g_doc.quotes for s in q.stances}
        pred = {(q.id, s.topic, s.stance) for q in p_doc.quotes for s in q.stances}
        for _, _, label in gold & pred:
            counts[label][0] += 1
        for _, _, label in pred - gold:
            counts[label][1] += 1
        for _, _, label in gold - pred:
            counts[label][2] += 1
    return counts


def summarise(counts: dict[str, list[int]]) -> dict:
    per_label = {label: round(f1(*c), 4) for label, c in counts.items()}
    return {
        "macro_f1": round(sum(per_label.values()) / len(per_label), 4),
        "favor_against_f1": round((per_label["favor"] + per_label["against"]) / 2, 4),
        "f1": per_label,
        "counts": {label: dict(zip(("tp", "fp", "fn"), c)) for label, c in counts.items()},
    }


def _scorer(overall: dict) -> dict:
    """The project scorer's stance figures, as a cross-check (it matches quotes by overlap)."""
    return {k: round(v, 4) for k, v in overall.items() if k.startswith("stance_") and isinstance(v, float)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default=None, help="local model directory; default: inference.encoder.resolve_encoder()")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--context-chars", type=int, default=60)
    ap.add_argument("--freeze-layers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="comma-separated seed doc ids to hold out (default: all five)")
    ap.add_argument("--out", type=Path, default=ROOT / "experiments/benchmarks/results/stance_finetune_lodo.json")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    encoder = args.encoder
    if encoder is None:
        try:
            from inference.encoder import resolve_encoder
        except ImportError:
            print("no --encoder given and inference.encoder is not available", file=sys.stderr)
            return 2
        encoder = str(resolve_encoder())

    seeds = read_jsonl(ROOT / "annotations/seeds.jsonl")
    authored = [d for f in sorted((ROOT / "annotations/authored").glob("*.jsonl")) for d in read_jsonl(f)]
    held = [d for d in seeds if args.only is None or d.doc_id in args.only.split(",")]
    params = {
        "encoder": encoder,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "negatives": args.negatives,
        "context_chars": args.context_chars,
        "freeze_embeddings": True,
        "freeze_layers": args.freeze_layers,
        "seed": args.seed,
        "progress": not args.quiet,
    }
    folds, golds, preds = [], [], []
    pooled = {label: [0, 0, 0] for label in STANCE_LABELS}
    for doc in tqdm(held, desc="LODO folds", disable=args.quiet):
        train_docs = authored + [d for d in seeds if d.doc_id != doc.doc_id]
        items = [(d, q) for d in train_docs for q in d.quotes]
        t0 = time.perf_counter()
        model = FineTunedStance(**params).fit(items)
        train_s = time.perf_counter() - t0
        pred = copy.deepcopy(doc)
        for q in pred.quotes:
            q.stances = []
        t0 = time.perf_counter()
        for q, st in zip(pred.quotes, model.predict([(pred, q) for q in pred.quotes])):
            q.stances = st
        predict_s = time.perf_counter() - t0
        counts = triple_counts([doc], [pred])
        for label in STANCE_LABELS:
            pooled[label] = [a + b for a, b in zip(pooled[label], counts[label])]
        fold = {
            "held_out": doc.doc_id,
            "lang": doc.lang,
            "n_train_quotes": len(items),
            "n_steps": len(model.loss_history_),
            "train_seconds": round(train_s, 1),
            "predict_seconds": round(predict_s, 1),
            "first_loss": round(sum(model.loss_history_[:10]) / max(1, len(model.loss_history_[:10])), 4),
            "last_loss": round(sum(model.loss_history_[-10:]) / max(1, len(model.loss_history_[-10:])), 4),
            **summarise(counts),
            "scorer": _scorer(score([doc], [pred])["overall"]),
            "predicted": Counter(s.stance for q in pred.quotes for s in q.stances),
            "gold": Counter(s.stance for q in doc.quotes for s in q.stances),
        }
        folds.append(fold)
        golds.append(doc)
        preds.append(pred)
        if not args.quiet:
            tqdm.write(f"{doc.doc_id} ({doc.lang}): macro-F1 {fold['macro_f1']:.3f}, train {train_s:.0f} s")
        result = _write(args.out, params, pooled, folds, golds, preds)
    print(json.dumps({k: result[k] for k in ("pooled", "mean_train_seconds")}, indent=1))
    return 0


def _write(out: Path, params: dict, pooled: dict, folds: list, golds: list, preds: list) -> dict:
    """Written after every fold, so an interrupted run keeps the folds it finished."""
    result = {
        "benchmark": "stance_finetune_lodo",
        "folds_done": [f["held_out"] for f in folds],
        "params": params,
        "machine": {"torch_threads": torch.get_num_threads(), "platform": platform.platform()},
        "pooled": {**summarise(pooled), "scorer": _scorer(score(golds, preds)["overall"])},
        "mean_train_seconds": round(sum(f["train_seconds"] for f in folds) / max(1, len(folds)), 1),
        "folds": folds,
        "predictions": [p.to_dict() for p in preds],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return result


if __name__ == "__main__":
    sys.exit(main())
