"""Scores for cross-validation results, flattened for MLflow, and the score of record.

Two predictions per held-out document are scored: end to end (from raw text), and with the
gold quote spans given (attribution and stance alone), so each stage's figure is visible.
"""

from __future__ import annotations

from inference.scoring import score

RECORD_PARTS = ("quote_f1_overlap", "attribution_accuracy_e2e", "stance_macro_f1")


def named_metrics(result: dict) -> dict[str, float]:
    """The scorer's nested result under the flat names used in MLflow and the README."""
    return {
        "quote_precision_overlap": result["overlap"]["precision"],
        "quote_recall_overlap": result["overlap"]["recall"],
        "quote_f1_overlap": result["overlap"]["f1"],
        "quote_f1_exact": result["exact"]["f1"],
        "attribution_accuracy_gold_spans": result["attribution"],
        "attribution_accuracy_e2e": result["end_to_end"],
        "stance_macro_f1": result["stance_macro_f1"],
        "stance_macro_f1_topic_label": result["stance_macro_f1_topic_label"],
        "stance_favor_against_f1": result["stance_favor_against_f1"],
        "n_gold": float(result["n_gold"]),
        "n_pred": float(result["n_pred"]),
    }


def score_results(res) -> dict:
    e2e = score(res.gold, res.pred, attributed_docs=res.on_gold_spans or None)
    out = named_metrics(e2e["overall"])
    per_language = {lang: named_metrics(r) for lang, r in e2e["by_lang"].items()}
    gold_spans = score(res.gold, res.on_gold_spans) if res.on_gold_spans else None
    if gold_spans:
        out["stance_macro_f1_gold_spans"] = gold_spans["overall"]["stance_macro_f1"]
        out["stance_favor_against_f1_gold_spans"] = gold_spans["overall"]["stance_favor_against_f1"]
        for lang, r in gold_spans["by_lang"].items():
            per_language[lang]["stance_macro_f1_gold_spans"] = r["stance_macro_f1"]
    out["per_language"] = per_language
    out["per_topic"] = _per_topic(e2e["overall"], gold_spans["overall"] if gold_spans else None)
    return out


def _per_topic(e2e: dict, gold_spans: dict | None) -> dict[str, dict[str, float]]:
    """Stance per topic, end to end and (when scored) on gold quote spans."""
    out = {
        topic: {"stance_f1": r["f1"], "stance_macro_f1": r["macro_f1"], "n_gold_stances": float(r["n_gold"])}
        for topic, r in e2e["stance_by_topic"].items()
    }
    for topic, r in (gold_spans or {}).get("stance_by_topic", {}).items():
        out.setdefault(topic, {"n_gold_stances": float(r["n_gold"])})["stance_f1_gold_spans"] = r["f1"]
    return out


def score_all(results) -> dict[str, dict]:
    return {kind: score_results(res) for kind, res in results.items()}


def flat_metrics(scores: dict[str, dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, s in scores.items():
        for name, value in s.items():
            if isinstance(value, (int, float)):
                out[f"{kind}.{name}"] = float(value)
        for lang, per in s.get("per_language", {}).items():
            for name, value in per.items():
                out[f"{kind}.{lang}.{name}"] = float(value)
        for topic, per in s.get("per_topic", {}).items():
            for name, value in per.items():
                out[f"{kind}.topic.{topic}.{name}"] = float(value)
    return out


def record_score(scores: dict[str, dict]) -> float:
    """Mean of quote F1 (overlap), end-to-end attribution and stance macro-F1 on the seeds' LODO."""
    s = scores.get("seeds_lodo") or next(iter(scores.values()))
    return sum(float(s.get(k, 0.0)) for k in RECORD_PARTS) / len(RECORD_PARTS)
