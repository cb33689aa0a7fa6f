"""A logistic-regression scorer over dict features whose state is plain JSON.

Saving coefficients as JSON (not pickle) means a model directory can be loaded from anywhere
without executing code; the scikit-learn estimators are rebuilt from the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import expit
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

    def fit(self, X: list[dict], y: list[int], sparse: bool = False) -> LinearScorer:
        if len(set(y)) < 2:
            return self
        self.vectorizer_ = DictVectorizer(sparse=sparse)
        matrix = self.vectorizer_.fit_transform(X)
        self.model_ = LogisticRegression(
            C=self.C, class_weight=self.class_weight, max_iter=2000, random_state=self.random_state
        ).fit(matrix, np.asarray(y))
        return self

    def predict_proba(self, X: list[dict]) -> np.ndarray:
        """P(positive) per row: the same float64 matrix and product as `DictVectorizer` and
        `LogisticRegression.predict_proba` compute (so the same numbers), without their
        per-call validation, which dominated the cost on the few rows one quote has. Rows are
        filled as lists and converted once, not written one numpy cell at a time."""
        if not X:
            return np.zeros(0)
        index = self.vectorizer_.vocabulary_
        width = len(index)
        rows = []
        for row in X:
            cells = [0.0] * width
            for name, value in row.items():
                j = index.get(name)
                if j is not None:
                    cells[j] = value
            rows.append(cells)
        matrix = np.array(rows, dtype=np.float64)
        scores = matrix @ self.model_.coef_.T + self.model_.intercept_
        return expit(scores.reshape(-1))

    def predict_proba_sparse(self, X: list[dict]) -> np.ndarray:
        """`predict_proba` for rows with a few features out of a large vocabulary (n-gram
        windows): a sum over each row's own features instead of a dense row per sample."""
        if not X:
            return np.zeros(0)
        index = self.vectorizer_.vocabulary_
        coef = self.model_.coef_[0]
        bias = float(self.model_.intercept_[0])
        scores = [bias + sum(coef[j] * v for name, v in row.items() if (j := index.get(name)) is not None) for row in X]
        return expit(np.asarray(scores, dtype=np.float64))

    def fold(self, prefix: str) -> LinearScorer:
        """The scorer one group of rows sees when fitted with per-group copies of its features
        (`prefix + name` beside `name`, as `group_copies` makes them): a copy always equals its
        original, so its weight adds onto the original's and the group needs no extra columns."""
        base = [n for n in self.vectorizer_.feature_names_ if "|" not in n]
        index, coef = self.vectorizer_.vocabulary_, self.model_.coef_[0]
        merged = [coef[index[n]] + (coef[index[prefix + n]] if prefix + n in index else 0.0) for n in base]
        return LinearScorer.from_dict(
            {
                "C": self.C,
                "class_weight": self.class_weight,
                "fitted": True,
                "feature_names": base,
                "coef": [float(c) for c in merged],
                "intercept": float(self.model_.intercept_[0]),
                "classes": [int(c) for c in self.model_.classes_],
            }
        )

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
        names = d["feature_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ValueError("feature_names must be a list of distinct strings")
        vec = DictVectorizer(sparse=False)
        vec.feature_names_ = list(names)
        vec.vocabulary_ = {name: i for i, name in enumerate(names)}
        scorer.vectorizer_ = vec
        scorer.model_ = logistic_regression([d["coef"]], [d["intercept"]], d["classes"], C=d["C"])
        if scorer.model_.coef_.shape != (1, len(names)) or len(scorer.model_.classes_) != 2:
            raise ValueError(f"a binary scorer needs one coefficient per feature ({len(names)}) and two classes")
        return scorer

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearScorer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def group_copies(rows: list[dict], groups: list[str | None]) -> list[dict]:
    """Each row's features plus a copy prefixed by its group (`ja|log_tokens`): shared weights
    learn what holds everywhere, the copies what differs in one group (Daumé's feature
    augmentation). Rows without a group keep only the shared features."""
    for name in {n for row in rows for n in row}:
        if "|" in name:
            raise ValueError(f"feature name {name!r} must not contain '|', which marks group copies")
    return [{**row, **{f"{g}|{k}": v for k, v in row.items()}} if g else row for row, g in zip(rows, groups)]


def logistic_regression(coef, intercept, classes, C: float = 1.0) -> LogisticRegression:
    """A fitted `LogisticRegression` rebuilt from its numbers: finite floats, kept in the
    precision they were fitted in (a model fitted on float32 features has float32 weights)."""
    model = LogisticRegression(C=C)
    model.coef_ = np.asarray(coef)
    model.intercept_ = np.asarray(intercept)
    model.classes_ = np.asarray(classes)
    if model.coef_.dtype.kind != "f" or model.intercept_.dtype != model.coef_.dtype:
        raise ValueError(f"coefficients must be floats of one precision, not {model.coef_.dtype}/{model.intercept_.dtype}")
    if model.coef_.ndim != 2 or model.intercept_.shape != (model.coef_.shape[0],):
        raise ValueError(f"coefficients {model.coef_.shape} and intercepts {model.intercept_.shape} do not fit together")
    if not (np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()):
        raise ValueError("coefficients must be finite numbers")
    model.n_features_in_ = model.coef_.shape[1]
    return model


def logistic_proba(model: LogisticRegression, X) -> np.ndarray:
    """`model.predict_proba(X)` computed as scikit-learn computes it (the same product, then
    the logistic or the softmax), without its per-call input checks: on the few rows of one
    document those cost more than the product. X is a matrix this package built."""
    from sklearn.utils.extmath import safe_sparse_dot, softmax

    scores = safe_sparse_dot(X, model.coef_.T, dense_output=True) + model.intercept_
    if len(model.classes_) <= 2:
        p = expit(scores.reshape(-1))
        return np.stack([1 - p, p], axis=1)
    return softmax(scores, copy=False)
