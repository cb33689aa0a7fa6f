"""Experiments: a YAML config builds a pipeline; cross-validation measures it honestly.

Evaluation of record: leave-one-document-out over the five seed documents (train on the
authored set and the other four seeds, predict the held-out seed from its raw text), and
leave-one-language-out over the authored set (train on every other language's documents,
seeds of that language excluded too, predict the held-out language). Figures on training data
are never produced here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from inference.analyzer import Analyzer, component_class, stage_name
from inference.document import Document

STAGE_ORDER = ("quote_detection", "attribution", "stance")


class EvaluationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seeds_lodo: bool = True
    authored_lolo: bool = True
    # k-fold by document over the authored set (0 = off): the split on which what a model learns
    # per language can be judged, since leave-one-language-out never tests a seen language
    authored_kfold: int = Field(default=0, ge=0)

    @field_validator("authored_kfold")
    @classmethod
    def _at_least_two(cls, k: int) -> int:
        if k == 1:
            raise ValueError("authored_kfold needs at least 2 folds (0 turns it off)")
        return k


class ExperimentConfig(BaseModel):
    """One YAML file under experiments/: which components, with which parameters."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    preset: str | None = None
    seed: int = 0
    components: dict[str, dict[str, Any]]
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: an experiment config must be a YAML mapping")
        return cls.model_validate(raw)

    def build(self) -> Analyzer:
        unknown = set(self.components) - set(STAGE_ORDER)
        if unknown:
            raise ValueError(f"unknown components in config {self.name!r}: {sorted(unknown)}")
        comps = []
        for name in STAGE_ORDER:
            if name in self.components:
                params = dict(self.components[name] or {})
                comps.append(component_class(name)(**params))
        return Analyzer(comps, metadata={"experiment": self.name, "preset": self.preset})


def fit_analyzer(config: ExperimentConfig, train_docs: Sequence[Document]) -> Analyzer:
    """Fit each stage on gold documents (each stage learns from gold, not from upstream output)."""
    analyzer = config.build()
    for comp in analyzer.components:
        comp.fit(train_docs)
    return analyzer


def raw(doc: Document) -> Document:
    """What the model may see of a held-out document: text, language and date, no quotes."""
    return Document(doc_id=doc.doc_id, lang=doc.lang, published=doc.published, origin=doc.origin, text=doc.text)


def gold_spans_only(doc: Document) -> Document:
    """The held-out document with its gold quote spans and kinds, but no speaker or stance."""
    quotes = [
        q.model_copy(update={"mention": None, "speaker": None, "stances": [], "confidence": None})
        for q in doc.quotes
    ]
    return raw(doc).model_copy(update={"quotes": quotes})


def predict_on_gold_spans(analyzer: Analyzer, docs: Sequence[Document]) -> list[Document]:
    """Run the stages after quote detection on gold quote spans (stage-wise evaluation)."""
    out = [gold_spans_only(d) for d in docs]
    for comp in analyzer.components:
        if stage_name(comp) != "quote_detection":
            out = list(comp.pipe(out))
    return out


@dataclass
class Fold:
    name: str
    kind: str
    train: list[Document]
    test: list[Document]


@dataclass
class CrossValResult:
    gold: list[Document] = field(default_factory=list)
    pred: list[Document] = field(default_factory=list)
    on_gold_spans: list[Document] = field(default_factory=list)
    folds: list[str] = field(default_factory=list)


def folds(docs: Sequence[Document], cfg: EvaluationConfig) -> Iterator[Fold]:
    seeds = [d for d in docs if d.origin == "seed"]
    authored = [d for d in docs if d.origin == "authored"]
    if cfg.seeds_lodo:
        for held in seeds:
            yield Fold(held.doc_id, "seeds_lodo", [d for d in docs if d.doc_id != held.doc_id], [held])
    if cfg.authored_lolo:
        for lang in sorted({d.lang for d in authored}):
            test = [d for d in authored if d.lang == lang]
            train = [d for d in docs if d.lang != lang]
            yield Fold(lang, "authored_lolo", train, test)
    if cfg.authored_kfold:
        from sklearn.model_selection import GroupKFold

        splits = GroupKFold(n_splits=cfg.authored_kfold).split(authored, groups=[d.doc_id for d in authored])
        for k, (_, held) in enumerate(splits, start=1):
            test_ids = {authored[i].doc_id for i in held}
            train = [d for d in docs if d.doc_id not in test_ids]
            yield Fold(f"k{k}", "authored_kfold", train, [authored[i] for i in held])


def cross_validate(
    config: ExperimentConfig,
    docs: Sequence[Document],
    progress: Callable[[Fold], None] | None = None,
) -> dict[str, CrossValResult]:
    """Predict every held-out document from raw text with a model that never saw it."""
    results: dict[str, CrossValResult] = {}
    for fold in folds(docs, config.evaluation):
        if progress:
            progress(fold)
        analyzer = fit_analyzer(config, fold.train)
        preds = list(analyzer.analyze_many([raw(d) for d in fold.test]))
        res = results.setdefault(fold.kind, CrossValResult())
        res.gold.extend(fold.test)
        res.pred.extend(preds)
        res.on_gold_spans.extend(predict_on_gold_spans(analyzer, fold.test))
        res.folds.append(fold.name)
    return results
