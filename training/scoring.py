"""Scores for the cross-validation results, flattened for MLflow, and the score of record."""

from __future__ import annotations

from inference.scoring import score

RECORD_PARTS = ("quote_f1_overlap", "attribution_accuracy_e2e", "stance_macro_f1")


def score_all(results) -> dict[str, dict]:
    return {kind: score(res.gold, res.pred) for kind, res in results.items()}


def flat_metrics(scores: dict[str, dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, s in scores.items():
        for name, value in s.items():
            if isinstance(value, (int, float)):
                out[f"{kind}.{name}"] = float(value)
        for lang, per in s.get("per_language", {}).items():
            for name, value in per.items():
                if isinstance(value, (int, float)):
                    out[f"{kind}.{lang}.{name}"] = float(value)
    return out


def record_score(scores: dict[str, dict]) -> float:
    """Mean of quote F1 (overlap), end-to-end attribution and stance macro-F1 on the seeds' LODO."""
    s = scores.get("seeds_lodo") or next(iter(scores.values()))
    return sum(float(s.get(k, 0.0)) for k in RECORD_PARTS) / len(RECORD_PARTS)
