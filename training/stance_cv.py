"""The stance stage alone, refitted per fold: the measurement its settings are chosen on.

A full run (`quote-stance train`) refits every stage in every fold. A stance setting only needs
the stance stage refitted, so this module does that over the training run's own folds
(`training.experiment.folds`) and reads each held-out document twice:

- on its annotated quote spans and speakers (what the stance stage can do with perfect input);
- on the quote spans and speakers that a full run's detector and ranker gave it in that run's
  held-out predictions (`--spans-from RUN`): what the setting would score end to end with that
  run's detector, without refitting the detector.

With both, `gap` splits the difference between the two figures into what the detector's missed
quotes, its false alarms and its spans of the quotes it found each cost, so work goes where the
points are.

    quote-stance stance-cv --config experiments/fast.yaml --set sentence_weight=0.5 --spans-from 80d528ea
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from inference.analyzer import component_class
from inference.document import Document, Quote
from inference.scoring import match_overlap, score
from inference.validate import read_jsonl
from training.experiment import ExperimentConfig, Fold, folds, raw

SPAN_SOURCES = ("gold", "detector")


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs, each value read as YAML (`0.5`, `true`, `{seed: 16}`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def stance_params(config: ExperimentConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The config's stance parameters with the overrides, refused early when one is unknown."""
    import inspect

    params = {**(config.components.get("stance") or {}), **overrides}
    known = set(inspect.signature(component_class("stance")).parameters)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown stance parameter(s) {unknown}; known: {sorted(known)}")
    return params


def run_quotes(run_id: str, tracking_uri: str) -> dict[str, dict[str, list[Quote]]]:
    """Per split kind and document, the quotes a full run predicted for the held-out document."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    run_id = _resolve_run(run_id)
    wanted = [
        a.path
        for a in mlflow.MlflowClient().list_artifacts(run_id, "evaluation")
        if Path(a.path).name.startswith("predictions_") and a.path.endswith(".jsonl")
    ]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for artifact in sorted(wanted):
            path = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp))
            out[path.stem.removeprefix("predictions_")] = {d.doc_id: list(d.quotes) for d in read_jsonl(path)}
    if not out:
        raise ValueError(f"run {run_id} logged no held-out predictions (evaluation/predictions_*.jsonl)")
    return out


def _resolve_run(prefix: str) -> str:
    """A run id from its first characters, as the README and the notes quote them."""
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    matches = sorted({r.info.run_id for r in runs if r.info.run_id.startswith(prefix)})
    if len(matches) != 1:
        raise ValueError(f"{len(matches)} runs start with {prefix!r}; give more of the run id")
    return matches[0]


def stance_cv(
    config: ExperimentConfig,
    docs: Sequence[Document],
    overrides: Mapping[str, Any] | None = None,
    detector_quotes: Mapping[str, Mapping[str, list[Quote]]] | None = None,
    on_fold_done: Callable[[Fold], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Stance macro-F1 (and favor/against F1) per split kind and span source, the stance stage
    refitted on each fold's training documents; `detector_quotes` as `run_quotes` returns it.
    With detector quotes, each split also gets `gap` (see `gap`)."""
    params = stance_params(config, overrides or {})
    pooled: dict[tuple[str, str], tuple[list[Document], list[Document]]] = {}
    for fold in folds(docs, config.evaluation):
        if detector_quotes is not None and fold.kind not in detector_quotes:
            raise ValueError(f"the run has no held-out predictions for {fold.kind}; turn that split off or name a run that evaluated it")
        model = component_class("stance")(**params).fit(fold.train)
        sources = {"gold": {d.doc_id: d.quotes for d in fold.test}}
        if detector_quotes is not None:
            sources["detector"] = detector_quotes[fold.kind]
        for source, quotes in sources.items():
            missing = [d.doc_id for d in fold.test if d.doc_id not in quotes]
            if missing:
                raise ValueError(f"the run's {fold.kind} predictions lack {missing[:3]}: it was trained on another data version")
            inputs = [_with_quotes(d, quotes[d.doc_id]) for d in fold.test]
            gold, pred = pooled.setdefault((fold.kind, source), ([], []))
            gold.extend(fold.test)
            pred.extend(model.pipe(inputs))
        if on_fold_done:
            on_fold_done(fold)
    out: dict[str, dict[str, dict[str, float]]] = {}
    on_gold_f1: dict[str, float] = {}
    for (kind, source), (gold, pred) in pooled.items():
        s = score(gold, pred)["overall"]
        out.setdefault(kind, {})[source] = {
            "stance_macro_f1": round(s["stance_macro_f1"], 4),
            "stance_favor_against_f1": round(s["stance_favor_against_f1"], 4),
        }
        if source == "gold":
            on_gold_f1[kind] = s["stance_macro_f1"]
        else:
            out[kind]["gap"] = gap(gold, pooled[(kind, "gold")][1], pred, (on_gold_f1[kind], s["stance_macro_f1"]))
    return out


def gap(
    gold: Sequence[Document],
    on_gold: Sequence[Document],
    on_detector: Sequence[Document],
    f1: tuple[float, float],
) -> dict[str, float]:
    """Stance macro-F1 lost from annotated spans to detector spans, in three parts that add up:
    `missed_quotes` (gold quotes the detector did not find), `false_alarms` (stances put on its
    quotes that match no gold quote) and `found_spans` (the found quotes read through the
    detector's spans and speakers instead of the annotated ones). Each part is the change when
    that difference alone is undone, in the order found_spans, false_alarms, missed_quotes.
    `f1` holds the macro-F1 of `on_gold` and of `on_detector`, already scored by the caller."""
    as_gold, found_only = [], []
    for g, pg, pd in zip(gold, on_gold, on_detector, strict=True):
        matched = {pj: gi for gi, pj in match_overlap(g.quotes, pd.quotes)}
        quotes = [
            q.model_copy(update={"stances": pg.quotes[matched[j]].stances}) if j in matched else q
            for j, q in enumerate(pd.quotes)
        ]
        as_gold.append(pd.model_copy(update={"quotes": quotes}))
        found_only.append(pd.model_copy(update={"quotes": [q for j, q in enumerate(quotes) if j in matched]}))
    f1_found_only, f1_as_gold = (score(gold, docs)["overall"]["stance_macro_f1"] for docs in (found_only, as_gold))
    return {
        "missed_quotes": round(f1[0] - f1_found_only, 4),
        "false_alarms": round(f1_found_only - f1_as_gold, 4),
        "found_spans": round(f1_as_gold - f1[1], 4),
    }


def _with_quotes(doc: Document, quotes: Sequence[Quote]) -> Document:
    """The held-out document's raw text with the given quotes, their stances removed."""
    kept = [q.model_copy(update={"stances": [], "confidence": None}) for q in quotes]
    return raw(doc).model_copy(update={"quotes": kept})
