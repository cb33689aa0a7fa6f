"""A logistic-regression scorer over dict features whose state is plain JSON.

Saving coefficients as JSON (not pickle) means a model directory can be loaded from anywhere
without executing code; the scikit-learn estimators are rebuilt from the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression


class LinearScorer:
    """`DictVectorizer` + `LogisticRegression`, fitted on feature dicts, serialised as JSON."""

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", random_state: int = 0):
        self.C = C
        self.class_weight = class_weight
        self.random_state = random_state
        self.vectorizer_: DictVectorizer | None = None
        self.model_: LogisticRegression | None = None

    @property
    def fitted(self) -> bool:
        return self.model_ is not None

    def fit(self, X: list[dict], y: list[int]) -> LinearScorer:
        if len(set(y)) < 2:
            return self
        self.vectorizer_ = DictVectorizer(sparse=False)
        matrix = self.vectorizer_.fit_transform(X)
        self.model_ = LogisticRegression(
            C=self.C, class_weight=self.class_weight, max_iter=2000, random_state=self.random_state
        ).fit(matrix, np.asarray(y))
        return self

    def predict_proba(self, X: list[dict]) -> np.ndarray:
        """P(positive) per row."""
        if not X:
            return np.zeros(0)
        matrix = self.vectorizer_.transform(X)
        return self.model_.predict_proba(matrix)[:, 1]

    def to_dict(self) -> dict:
        if not self.fitted:
            return {"C": self.C, "class_weight": self.class_weight, "fitted": False}
        return {
            "C": self.C,
            "class_weight": self.class_weight,
            "fitted": True,
            "feature_names": list(self.vectorizer_.feature_names_),
            "coef": self.model_.coef_[0].tolist(),
            "intercept": float(self.model_.intercept_[0]),
            "classes": [int(c) for c in self.model_.classes_],
        }

    @classmethod
    def from_dict(cls, d: dict) -> LinearScorer:
        scorer = cls(C=d["C"], class_weight=d.get("class_weight"))
        if not d.get("fitted"):
            return scorer
        vec = DictVectorizer(sparse=False)
        vec.feature_names_ = list(d["feature_names"])
        vec.vocabulary_ = {name: i for i, name in enumerate(vec.feature_names_)}
        model = LogisticRegression(C=d["C"])
        model.coef_ = np.asarray([d["coef"]], dtype=float)
        model.intercept_ = np.asarray([d["intercept"]], dtype=float)
        model.classes_ = np.asarray(d["classes"])
        model.n_features_in_ = len(vec.feature_names_)
        scorer.vectorizer_, scorer.model_ = vec, model
        return scorer

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearScorer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
