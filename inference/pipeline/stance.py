"""Stance stage: which topics a quote addresses, and the speaker's stance on each.

Two decisions, two scikit-learn heads over one feature builder:
1. topics: one-vs-rest logistic regression (multi-label) — is topic T addressed?
2. stance: logistic regression over the quote's features plus the topic, the speaker×topic
   pair and topic×polarity cues — favor / against / neutral.

Backends differ only in the text representation: `fast` uses character n-gram TF-IDF,
`accurate` pooled embeddings from the multilingual encoder (which carries what is learned in
one language over to the others). Both add the cross-lingual keyword counts of
`resources/stance_lexicon.yaml`. Learned state is saved as skops files restricted to
scikit-learn/numpy/scipy types, so loading never runs stored code.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from scipy import sparse

from inference.document import STANCE_LABELS, Document, Quote, Stance
from inference.pipeline.base import Component
from inference.registry import default_registry
from inference.safe_io import load_skops, save_skops


_ENCODERS: dict[str, object] = {}
_EMBEDDINGS: dict[str, dict[str, np.ndarray]] = {}
_EMBEDDING_CACHE_MAX = 50_000


@lru_cache(maxsize=1)
def stance_lexicon() -> dict:
    raw = resources.files("inference").joinpath("resources/stance_lexicon.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(raw)


class _KeywordCounter:
    """Counts keyword-group hits; all-lowercase keywords match case-insensitively, acronyms exactly."""

    def __init__(self, groups: dict[str, dict[str, list[str]]]):
        self.names = list(groups)
        self.by_lang: dict[str | None, list[tuple[list[str], list[str]]]] = {}
        langs = {lang for g in groups.values() for lang in g}
        for lang in [*langs, None]:
            entries = []
            for g in groups.values():
                words = g.get(lang) if lang else sorted({w for ws in g.values() for w in ws})
                words = [unicodedata.normalize("NFC", str(w)) for w in (words or [])]
                entries.append(([w for w in words if w == w.lower()], [w for w in words if w != w.lower()]))
            self.by_lang[lang] = entries

    def __call__(self, text: str, lang: str | None) -> np.ndarray:
        entries = self.by_lang.get(lang) or self.by_lang[None]
        low = text.lower()
        return np.array(
            [sum(low.count(w) for w in lower) + sum(text.count(w) for w in exact) for lower, exact in entries],
            dtype=np.float32,
        )


def quote_context(doc: Document, quote: Quote, chars: int) -> str:
    """The quote with up to `chars` characters around it, kept inside its paragraph."""
    s, e = quote.content
    lo = max(doc.text.rfind("\n", 0, s) + 1, s - chars)
    hi_nl = doc.text.find("\n", e)
    hi = min(len(doc.text) if hi_nl < 0 else hi_nl, e + chars)
    return doc.text[lo:hi]


class StanceClassifier(Component):
    """Topics and stances per quote; `backend` is `fast` (char n-grams), `accurate` (encoder),
    `lexicon` (rules) or `finetune` (the encoder fine-tuned on topic-question/quote pairs, see
    `stance_finetune.py`; its hyper-parameters go in `finetune`)."""

    name = "stance"

    def __init__(
        self,
        backend: str = "fast",
        topic_threshold: float = 0.4,
        C: float = 4.0,
        context_chars: int = 120,
        ngram_range: tuple[int, int] = (2, 4),
        max_features: int = 60000,
        encoder: str | None = None,
        random_state: int = 0,
        finetune: dict | None = None,
    ):
        self.backend = backend
        self.topic_threshold = topic_threshold
        self.C = C
        self.context_chars = context_chars
        self.ngram_range = tuple(ngram_range)
        self.max_features = max_features
        self.encoder = encoder
        self.random_state = random_state
        self.finetune = dict(finetune or {})

    def get_params(self) -> dict:
        return {
            "backend": self.backend,
            "topic_threshold": self.topic_threshold,
            "C": self.C,
            "context_chars": self.context_chars,
            "ngram_range": list(self.ngram_range),
            "max_features": self.max_features,
            "encoder": self.encoder,
            "random_state": self.random_state,
            "finetune": self.finetune,
        }

    # ---- features -------------------------------------------------------------------------
    def _lexicon(self) -> tuple[_KeywordCounter, _KeywordCounter]:
        lex = stance_lexicon()
        return _KeywordCounter(lex["topics"]), _KeywordCounter(lex["polarity"])

    def _texts(self, items: Sequence[tuple[Document, Quote]]) -> tuple[list[str], list[str]]:
        contents = [d.quote_text(q) for d, q in items]
        contexts = [quote_context(d, q, self.context_chars) for d, q in items]
        return contents, contexts

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Encoder embeddings, memoised per process: cross-validation re-encodes the same quotes
        in every fold, and one loaded encoder serves every StanceClassifier."""
        key = self.encoder or ""
        if key not in _ENCODERS:
            from inference.encoder import Encoder

            _ENCODERS[key] = Encoder(self.encoder)
        cache = _EMBEDDINGS.setdefault(key, {})
        if len(cache) > _EMBEDDING_CACHE_MAX:
            cache.clear()
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            for text, row in zip(missing, _ENCODERS[key].encode(missing)):
                cache[text] = row
        dim = _ENCODERS[key].dim
        return np.vstack([cache[t] for t in texts]) if texts else np.zeros((0, dim), np.float32)

    def _text_features(self, contents: list[str], contexts: list[str], fit: bool) -> sparse.csr_matrix:
        if self.backend == "fast":
            from sklearn.feature_extraction.text import TfidfVectorizer

            if fit:
                self.vectorizer_ = TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=self.ngram_range,
                    sublinear_tf=True,
                    min_df=2,
                    max_features=self.max_features,
                )
                self.vectorizer_.fit(contexts)
            return sparse.hstack([self.vectorizer_.transform(contents), 0.5 * self.vectorizer_.transform(contexts)]).tocsr()
        if self.backend == "accurate":
            emb = self._embed(contents + contexts)
            return sparse.csr_matrix(np.hstack([emb[: len(contents)], 0.5 * emb[len(contents) :]]))
        raise ValueError(f"unknown stance backend {self.backend!r} (expected 'fast' or 'accurate')")

    def _lex_features(self, items, contents, contexts) -> np.ndarray:
        topics, polarity = self._lexicon()
        rows = []
        for (doc, _), content, context in zip(items, contents, contexts):
            rows.append(
                np.concatenate(
                    [
                        np.log1p(topics(content, doc.lang)),
                        0.5 * np.log1p(topics(context, doc.lang)),
                        np.log1p(polarity(content, doc.lang)),
                    ]
                )
            )
        return np.vstack(rows) if rows else np.zeros((0, len(topics.names) * 2 + len(polarity.names)), np.float32)

    def _pair_features(self, base: sparse.csr_matrix, lex: np.ndarray, speakers: list[str | None], topic: str) -> sparse.csr_matrix:
        topics = list(default_registry().topics)
        speakers_all = [*default_registry().speakers, "other", "none"]
        n = base.shape[0]
        t_idx = topics.index(topic)
        topic_onehot = np.zeros((n, len(topics)), np.float32)
        topic_onehot[:, t_idx] = 1
        sp_topic = np.zeros((n, len(speakers_all) * len(topics)), np.float32)
        for i, sp in enumerate(speakers):
            sp_topic[i, speakers_all.index(sp if sp in speakers_all else "none") * len(topics) + t_idx] = 1
        n_pol = len(stance_lexicon()["polarity"])
        polarity = lex[:, -n_pol:]
        topic_x_pol = np.zeros((n, len(topics) * n_pol), np.float32)
        topic_x_pol[:, t_idx * n_pol : (t_idx + 1) * n_pol] = polarity
        return sparse.hstack([base, sparse.csr_matrix(np.hstack([lex, topic_onehot, 2 * sp_topic, topic_x_pol]))]).tocsr()

    # ---- learning -------------------------------------------------------------------------
    def fit(self, docs: Sequence[Document]) -> StanceClassifier:
        if self.backend == "lexicon":
            return self
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        items = [(d, q) for d in docs for q in d.quotes]
        if not items:
            raise ValueError("StanceClassifier.fit needs documents with quotes")
        if self.backend == "finetune":
            from inference.pipeline.stance_finetune import FineTunedStance

            params = {"encoder": self.encoder, "context_chars": self.context_chars, "seed": self.random_state}
            self.finetune_ = FineTunedStance(**{**params, **self.finetune}).fit(items)
            return self
        topics = list(default_registry().topics)
        contents, contexts = self._texts(items)
        base = self._text_features(contents, contexts, fit=True)
        lex = self._lex_features(items, contents, contexts)
        x_topic = sparse.hstack([base, sparse.csr_matrix(lex)]).tocsr()
        y_topic = np.array([[int(q.stance_on(t) is not None) for t in topics] for _, q in items])
        self.topic_model_ = OneVsRestClassifier(
            LogisticRegression(C=self.C, class_weight="balanced", max_iter=3000, random_state=self.random_state)
        )
        self.topic_model_.fit(x_topic, y_topic)
        rows, labels = [], []
        speakers = [q.speaker for _, q in items]
        for t in topics:
            idx = [i for i, (_, q) in enumerate(items) if q.stance_on(t) is not None]
            if not idx:
                continue
            rows.append(self._pair_features(base[idx], lex[idx], [speakers[i] for i in idx], t))
            labels.extend(STANCE_LABELS.index(items[i][1].stance_on(t)) for i in idx)
        self.stance_model_ = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=3000, random_state=self.random_state
        )
        self.stance_model_.fit(sparse.vstack(rows).tocsr(), np.array(labels))
        return self

    # ---- prediction -----------------------------------------------------------------------
    def __call__(self, doc: Document) -> Document:
        return next(iter(self.pipe([doc])))

    def pipe(self, docs, batch_size: int = 64):
        batch: list[Document] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._predict_batch(batch)
                batch = []
        if batch:
            yield from self._predict_batch(batch)

    def _predict_batch(self, docs: list[Document]) -> list[Document]:
        items = [(d, q) for d in docs for q in d.quotes]
        if not items:
            return docs
        topics = list(default_registry().topics)
        contents, contexts = self._texts(items)
        if self.backend == "lexicon":
            return self._predict_lexicon(docs, items, contents, contexts)
        if self.backend == "finetune":
            for (_, q), st in zip(items, self.finetune_.predict(items)):
                q.stances = st
            return docs
        base = self._text_features(contents, contexts, fit=False)
        lex = self._lex_features(items, contents, contexts)
        p_topic = self.topic_model_.predict_proba(sparse.hstack([base, sparse.csr_matrix(lex)]).tocsr())
        speakers = [q.speaker for _, q in items]
        stances: list[list[Stance]] = [[] for _ in items]
        for t_idx, t in enumerate(topics):
            idx = [i for i in range(len(items)) if p_topic[i, t_idx] >= self.topic_threshold]
            if not idx:
                continue
            x = self._pair_features(base[idx], lex[idx], [speakers[i] for i in idx], t)
            proba = self.stance_model_.predict_proba(x)
            classes = list(self.stance_model_.classes_)
            for row, i in enumerate(idx):
                k = int(np.argmax(proba[row]))
                stances[i].append(
                    Stance(topic=t, stance=STANCE_LABELS[classes[k]], confidence=round(float(proba[row, k] * p_topic[i, t_idx]), 4))
                )
        for (_, q), st in zip(items, stances):
            q.stances = sorted(st, key=lambda s: -(s.confidence or 0))
        return docs

    def _predict_lexicon(self, docs, items, contents, contexts) -> list[Document]:
        """Rule-only baseline: topics whose keywords occur in the quote; polarity words decide."""
        topics = list(default_registry().topics)
        lex = self._lex_features(items, contents, contexts)
        n_topics, pol_names = len(topics), list(stance_lexicon()["polarity"])
        for (_, q), row in zip(items, lex):
            polarity = dict(zip(pol_names, row[2 * n_topics :]))
            if polarity["against"] > polarity["support"]:
                label = "against"
            elif polarity["support"] > polarity["against"]:
                label = "favor"
            else:
                label = "neutral"
            q.stances = [Stance(topic=t, stance=label, confidence=0.5) for t, hits in zip(topics, row[:n_topics]) if hits > 0]
        return docs

    # ---- persistence ----------------------------------------------------------------------
    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "params.json").write_text(json.dumps(self.get_params(), indent=1), encoding="utf-8")
        if self.backend == "lexicon":
            return
        if self.backend == "finetune":
            self.finetune_.save(path / "finetune")
            return
        state = {"topic_model": self.topic_model_, "stance_model": self.stance_model_}
        if self.backend == "fast":
            if hasattr(self.vectorizer_, "stop_words_"):
                del self.vectorizer_.stop_words_  # every pruned n-gram: only needed for introspection
            self.vectorizer_.vocabulary_ = {k: int(v) for k, v in self.vectorizer_.vocabulary_.items()}
            state["vectorizer"] = self.vectorizer_
        save_skops(state, path / "state.skops")

    @classmethod
    def load(cls, path: Path) -> StanceClassifier:
        params = json.loads((path / "params.json").read_text(encoding="utf-8"))
        obj = cls(**params)
        if obj.backend == "lexicon":
            return obj
        if obj.backend == "finetune":
            from inference.pipeline.stance_finetune import FineTunedStance

            obj.finetune_ = FineTunedStance.load(path / "finetune")
            return obj
        state = load_skops(path / "state.skops")
        obj.topic_model_, obj.stance_model_ = state["topic_model"], state["stance_model"]
        if obj.backend == "fast":
            obj.vectorizer_ = state["vectorizer"]
        return obj
