"""Stance stage: which topics a quote addresses, and the speaker's stance on each.

Two decisions, two scikit-learn heads over one feature builder:
1. topics: one-vs-rest logistic regression (multi-label) — is topic T addressed?
2. stance: logistic regression over the quote's features plus the topic, the speaker×topic
   pair and topic×polarity cues — favor / against / neutral.

Backends differ only in the text representation: `fast` uses character n-gram TF-IDF,
`accurate` pooled embeddings from the multilingual encoder (which carries what is learned in
one language over to the others). Both add the cross-lingual keyword counts of
`resources/stance_lexicon.yaml`. Learned state is saved as numbers (JSON and safetensors) and
the scikit-learn heads are rebuilt from them, so loading never runs stored code; older model
directories with skops files still load through the allow-listed skops loader.
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
from inference.pipeline import char_ngrams
from inference.pipeline.base import Component
from inference.pipeline.lexicon import TextIndex
from inference.pipeline.linear import logistic_proba
from inference.registry import default_registry
from inference.safe_io import STATE_JSON, ModelFileError, load_skops, load_state, save_state


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
        return self.count_many([text], [lang])[0]

    def count_many(self, texts: Sequence[str], langs: Sequence[str | None]) -> np.ndarray:
        """Counts for many texts: keywords absent from all texts of a language are dropped once
        for the whole batch instead of being searched for in every text."""
        out = np.zeros((len(texts), len(self.names)), dtype=np.float32)
        groups: dict[str | None, list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(lang if lang in self.by_lang else None, []).append(i)
        for lang, rows in groups.items():
            joined = "\n".join(texts[i] for i in rows)
            joined_low = joined.lower()
            present = [
                (e, w, False) for e, (lower, _) in enumerate(self.by_lang[lang]) for w in lower if w in joined_low
            ] + [(e, w, True) for e, (_, exact) in enumerate(self.by_lang[lang]) for w in exact if w in joined]
            for i in rows:
                text = texts[i]
                low = text.lower()
                row = out[i]
                for e, w, exact in present:
                    n = (text if exact else low).count(w)
                    if n:
                        row[e] += n
        return out


@lru_cache(maxsize=1)
def _keyword_counters() -> tuple[_KeywordCounter, _KeywordCounter]:
    lex = stance_lexicon()
    return _KeywordCounter(lex["topics"]), _KeywordCounter(lex["polarity"])


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
    `stance_finetune.py`; its hyper-parameters go in `finetune`). `quantize: int8` runs the encoder
    with dynamic int8 Linear layers, about 3x faster on CPU; the heads must be fitted with the same
    setting, so it is a parameter of the fitted component, saved with it."""

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
        char_ngrams: bool | None = None,
        quantize: str | None = None,
        threshold_folds: int = 0,
        doc_topic_weight: float = 0.0,
        context_polarity: float = 0.0,
        min_topics: int = 0,
        max_topics: int | None = None,
        topic_similarity: float = 0.0,
        neighbours: int = 0,
        neighbour_weight: float = 1.0,
        topic_interaction: float = 0.0,
        origin_weights: dict[str, float] | None = None,
        span_jitter: int = 0,
        span_jitter_ratio: float = 0.2,
        sentence_weight: float = 0.0,
        min_topic_share: float = 0.0,
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
        self.char_ngrams = char_ngrams
        self.quantize = quantize
        self.threshold_folds = threshold_folds
        self.doc_topic_weight = doc_topic_weight
        self.context_polarity = context_polarity
        self.min_topics = min_topics
        self.max_topics = max_topics
        self.topic_similarity = topic_similarity
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight
        self.topic_interaction = topic_interaction
        self.origin_weights = dict(origin_weights or {})
        self.span_jitter = span_jitter
        self.span_jitter_ratio = span_jitter_ratio
        self.sentence_weight = sentence_weight
        self.min_topic_share = min_topic_share

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
            "char_ngrams": self.char_ngrams,
            "quantize": self.quantize,
            "threshold_folds": self.threshold_folds,
            "doc_topic_weight": self.doc_topic_weight,
            "context_polarity": self.context_polarity,
            "min_topics": self.min_topics,
            "max_topics": self.max_topics,
            "topic_similarity": self.topic_similarity,
            "neighbours": self.neighbours,
            "neighbour_weight": self.neighbour_weight,
            "topic_interaction": self.topic_interaction,
            "origin_weights": self.origin_weights,
            "span_jitter": self.span_jitter,
            "span_jitter_ratio": self.span_jitter_ratio,
            "sentence_weight": self.sentence_weight,
            "min_topic_share": self.min_topic_share,
        }

    # ---- features -------------------------------------------------------------------------
    def _lexicon_data(self) -> dict:
        """The keyword groups this model was fitted with (saved beside its weights), else the package's."""
        return getattr(self, "lexicon_", None) or stance_lexicon()

    def _lexicon(self) -> tuple[_KeywordCounter, _KeywordCounter]:
        own = getattr(self, "lexicon_", None)
        if own is None:
            return _keyword_counters()
        cached = getattr(self, "_counters_cache", None)
        if cached is None or cached[0] is not own:
            cached = (own, (_KeywordCounter(own["topics"]), _KeywordCounter(own["polarity"])))
            self._counters_cache = cached
        return cached[1]

    def _texts(self, items: Sequence[tuple[Document, Quote]]) -> tuple[list[str], list[str]]:
        contents = [d.quote_text(q) for d, q in items]
        contexts = [quote_context(d, q, self.context_chars) for d, q in items]
        return contents, contexts

    def _item_features(self, items: Sequence[tuple[Document, Quote]], fit: bool) -> tuple[list[str], list[str], list, sparse.csr_matrix]:
        """Texts, per-document batch groups and text features of (document, quote) items, the one
        recipe for fitting, for the jittered copies and for prediction."""
        contents, contexts = self._texts(items)
        groups = [id(doc) for doc, _ in items]
        base = self._text_features(contents, contexts, fit=fit, groups=groups, sentences=self._sentences(items))
        return contents, contexts, groups, base

    def _sentences(self, items: Sequence[tuple[Document, Quote]]) -> list[str] | None:
        """The whole sentences each quote touches, when `sentence_weight` is set: the detector's
        content boundaries often leave out a subject or take in a clause, the sentences around
        the quote move far less, so the stance read from them survives a boundary error. Only the
        character n-grams read them, so without those nothing is built."""
        if not self.sentence_weight or not self._uses_char_ngrams():
            return None
        indexes: dict[int, TextIndex] = {}
        out = []
        for doc, q in items:
            index = indexes.setdefault(id(doc), TextIndex(doc.text))
            start = index.sentence_bounds(q.content[0])[0]
            end = index.sentence_bounds(max(q.content[0], q.content[1] - 1))[1]
            out.append(doc.text[start:end])
        return out

    def _embed(self, texts: list[str], groups: list | None = None) -> np.ndarray:
        from inference.encoder.memo import embed  # imports torch: only presets that embed pay for it

        return embed(texts, self.encoder, self.quantize, groups=groups)

    def _uses_char_ngrams(self) -> bool:
        return self.backend == "fast" if self.char_ngrams is None else bool(self.char_ngrams)

    def _text_features(
        self, contents: list[str], contexts: list[str], fit: bool, groups: list | None = None, sentences: list[str] | None = None
    ) -> sparse.csr_matrix:
        """Character n-grams (fast: in-language wording) and/or encoder embeddings (accurate:
        carries across languages); `char_ngrams` adds the former to the accurate backend."""
        if self.backend not in ("fast", "accurate"):
            raise ValueError(f"unknown stance backend {self.backend!r} (expected 'fast' or 'accurate')")
        parts = []
        if self._uses_char_ngrams():
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
            both = char_ngrams.transform(self.vectorizer_, contents + contexts, self._ngram_index())
            parts += [both[: len(contents)], 0.5 * both[len(contents) :]]
            if sentences is not None:
                parts.append(self.sentence_weight * char_ngrams.transform(self.vectorizer_, sentences, self._ngram_index()))
        if self.backend == "accurate":
            emb = self._embed(contents + contexts, None if groups is None else groups + groups)
            parts.append(sparse.csr_matrix(np.hstack([emb[: len(contents)], 0.5 * emb[len(contents) :]])))
            if self.topic_similarity:
                if fit:
                    self.topic_texts_ = list(default_registry().topics.values())
                topics = self._embed(self.topic_texts_)
                # centred per text: e5's cosines all sit near 0.8, only their differences tell topics apart
                sims = [x - x.mean(axis=1, keepdims=True) for x in (emb[: len(contents)] @ topics.T, emb[len(contents) :] @ topics.T)]
                parts.append(sparse.csr_matrix(self.topic_similarity * np.hstack(sims)))
        return sparse.hstack(parts).tocsr()

    def _uses_neighbours(self) -> bool:
        return self.backend == "accurate" and self.neighbours > 0

    def _neighbour_features(
        self, emb: np.ndarray, doc_ids: list[str] | None = None, bank_ids: list[str] | None = None
    ) -> sparse.csr_matrix:
        """Per quote, the topics and (topic, stance) labels of its `neighbours` nearest annotated
        quotes by embedding, as shares: a quote in a language with few examples borrows the labels
        of what was said alike in the others. While fitting (`doc_ids` given), a quote's own
        document is left out, so the heads learn how far the neighbours can be trusted on text they
        did not label. `bank_ids` names the bank rows' documents when they are not the query rows'."""
        bank, labels = self.neighbour_emb_, self.neighbour_labels_
        k = min(self.neighbours, bank.shape[0])
        if k == 0 or emb.shape[0] == 0:
            return sparse.csr_matrix((emb.shape[0], labels.shape[1]), dtype=np.float32)
        sims = emb.astype(np.float32) @ bank.T
        if doc_ids is not None:
            ids = np.array(doc_ids)
            owners = ids if bank_ids is None else np.array(bank_ids)
            sims[ids[:, None] == owners[None, :]] = -np.inf
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        shares = labels[nearest].astype(np.float32).mean(axis=1)
        return sparse.csr_matrix(self.neighbour_weight * shares)

    def _ngram_index(self) -> char_ngrams.NgramIndex | None:
        """The vectorizer's vocabulary as a look-up table, built once per fitted vectorizer."""
        if not char_ngrams.supports(self.vectorizer_):
            return None
        cached = getattr(self, "_ngram_index_cache", None)
        if cached is None or cached[0] is not self.vectorizer_:
            cached = (self.vectorizer_, char_ngrams.NgramIndex(self.vectorizer_.vocabulary_, self.vectorizer_.ngram_range))
            self._ngram_index_cache = cached
        return cached[1]

    def _lex_features(self, items, contents, contexts) -> np.ndarray:
        topics, polarity = self._lexicon()
        if not items:
            width = len(topics.names) * (3 if self.doc_topic_weight else 2) + len(polarity.names) * (2 if self.context_polarity else 1)
            return np.zeros((0, width), np.float32)
        langs = [doc.lang for doc, _ in items]
        parts = [np.log1p(topics.count_many(contents, langs)), 0.5 * np.log1p(topics.count_many(contexts, langs))]
        if self.doc_topic_weight:
            parts.append(self.doc_topic_weight * self._doc_topic_profile(items))
        if self.context_polarity:
            parts.append(self.context_polarity * np.log1p(polarity.count_many(contexts, langs)))
        return np.hstack([*parts, np.log1p(polarity.count_many(contents, langs))])

    def _doc_topic_profile(self, items) -> np.ndarray:
        """Each quote's document as shares of topic keyword hits: a quote that names no topic
        ("we discussed it frankly") is most likely about what its article is about."""
        topics, _ = self._lexicon()
        docs = list({id(d): d for d, _ in items}.values())
        counts = topics.count_many([d.text for d in docs], [d.lang for d in docs])
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        row_of = {id(d): k for k, d in enumerate(docs)}
        return shares[[row_of[id(d)] for d, _ in items]]

    def _pair_features(self, base: sparse.csr_matrix, lex: np.ndarray, speakers: list[str | None], topic: str) -> sparse.csr_matrix:
        topics = list(default_registry().topics)
        speakers_all = [*default_registry().speakers, "other", "none"]
        n = base.shape[0]
        t_idx = topics.index(topic)
        sp_topic = np.zeros((n, len(speakers_all) * len(topics)), np.float32)
        for i, sp in enumerate(speakers):
            sp_topic[i, speakers_all.index(sp if sp in speakers_all else "none") * len(topics) + t_idx] = 1
        n_pol = len(self._lexicon_data()["polarity"])
        polarity = sparse.csr_matrix(lex[:, -n_pol:])
        parts = [
            base,
            sparse.csr_matrix(lex),
            _topic_block(sparse.csr_matrix(np.ones((n, 1), np.float32)), t_idx, len(topics), 1.0),
            sparse.csr_matrix(2 * sp_topic),
            _topic_block(polarity, t_idx, len(topics), 1.0),
        ]
        if self.topic_interaction:
            parts.append(_topic_block(base, t_idx, len(topics), self.topic_interaction))
        return sparse.hstack(parts).tocsr()

    # ---- learning -------------------------------------------------------------------------
    def fit(self, docs: Sequence[Document]) -> StanceClassifier:
        if self.backend == "lexicon":
            return self
        from sklearn.linear_model import LogisticRegression

        items = [(d, q) for d in docs for q in d.quotes]
        if not items:
            raise ValueError("StanceClassifier.fit needs documents with quotes")
        if self.backend == "finetune":
            from inference.pipeline.stance_finetune import FineTunedStance

            params = {"encoder": self.encoder, "context_chars": self.context_chars, "seed": self.random_state}
            self.finetune_ = FineTunedStance(**{**params, **self.finetune}).fit(items)
            return self
        self.lexicon_ = stance_lexicon()
        topics = list(default_registry().topics)
        n_gold = len(items)
        contents, contexts, groups, base = self._item_features(items, fit=True)
        if self.span_jitter:
            items = items + _jittered(items, self.span_jitter, self.span_jitter_ratio, self.random_state)
            more_contents, more_contexts, more_groups, more = self._item_features(items[n_gold:], fit=False)
            base = sparse.vstack([base, more]).tocsr()
            contents, contexts, groups = contents + more_contents, contexts + more_contexts, groups + more_groups
        if self._uses_neighbours():
            emb = self._embed(contents, groups)
            self.neighbour_emb_ = emb[:n_gold].astype(np.float32)
            self.neighbour_labels_ = _label_matrix([q for _, q in items[:n_gold]], topics)
            ids = [d.doc_id for d, _ in items]
            base = sparse.hstack([base, self._neighbour_features(emb, ids, ids[:n_gold])]).tocsr()
        lex = self._lex_features(items, contents, contexts)
        x_topic = sparse.hstack([base, sparse.csr_matrix(lex)]).tocsr()
        y_topic = np.array([[int(q.stance_on(t) is not None) for t in topics] for _, q in items])
        weights = self._sample_weights(items)
        self.topic_model_ = self._fit_topics(x_topic, y_topic, weights)
        self.topic_thresholds_ = (
            self._tuned_thresholds(x_topic, y_topic, [d.doc_id for d, _ in items], weights) if self.threshold_folds > 1 else None
        )
        rows, labels, row_weights = [], [], []
        speakers = [q.speaker for _, q in items]
        for t in topics:
            idx = [i for i, (_, q) in enumerate(items) if q.stance_on(t) is not None]
            if not idx:
                continue
            rows.append(self._pair_features(base[idx], lex[idx], [speakers[i] for i in idx], t))
            labels.extend(STANCE_LABELS.index(items[i][1].stance_on(t)) for i in idx)
            row_weights.append(None if weights is None else weights[idx])
        self.stance_model_ = LogisticRegression(
            C=self.C, class_weight="balanced", max_iter=3000, random_state=self.random_state
        )
        self.stance_model_.fit(
            sparse.vstack(rows).tocsr(), np.array(labels), sample_weight=None if weights is None else np.concatenate(row_weights)
        )
        return self

    def _sample_weights(self, items) -> np.ndarray | None:
        """Per quote, the weight of its document's origin (`origin_weights`, default 1): a few
        annotated articles of the kind the model will read (the seeds: real news on the talks,
        where security cooperation is the topic of nearly half the quotes) outweigh many authored
        ones whose topic mix differs. None when no origin is weighted, so the plain fit is unchanged."""
        if not self.origin_weights:
            return None
        if any(w <= 0 for w in self.origin_weights.values()):
            raise ValueError(f"origin_weights must be positive, got {self.origin_weights}")
        return np.array([float(self.origin_weights.get(doc.origin, 1.0)) for doc, _ in items])

    def _topic_estimator(self, weighted: bool = False):
        """One balanced logistic regression per topic (multi-label)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        head = LogisticRegression(C=self.C, class_weight="balanced", max_iter=3000, random_state=self.random_state)
        return OneVsRestClassifier(head.set_fit_request(sample_weight=True) if weighted else head)

    def _fit_topics(self, x, y: np.ndarray, weights: np.ndarray | None):
        """The topic estimator fitted with sample weights routed to each per-topic head."""
        if weights is None:
            return self._topic_estimator().fit(x, y)
        import sklearn

        with sklearn.config_context(enable_metadata_routing=True):
            return self._topic_estimator(weighted=True).fit(x, y, sample_weight=weights)

    def _tuned_thresholds(self, x, y: np.ndarray, groups: list[str], weights: np.ndarray | None = None) -> list[float]:
        """One cut-off per topic, the one with the best out-of-fold F1 (folds by document): a rare
        topic's probabilities sit lower than a common one's, so one shared threshold serves neither.
        Topics with fewer than `_MIN_POSITIVES` examples keep `topic_threshold`."""
        from sklearn.metrics import f1_score
        from sklearn.model_selection import GroupKFold

        oof = np.zeros(y.shape, np.float64)
        for train, held in GroupKFold(n_splits=self.threshold_folds).split(x, y, groups):
            fold_weights = None if weights is None else weights[train]
            oof[held] = self._fit_topics(x[train], y[train], fold_weights).predict_proba(x[held])
        thresholds = []
        for k in range(y.shape[1]):
            if y[:, k].sum() < _MIN_POSITIVES:
                thresholds.append(float(self.topic_threshold))
                continue
            scores = [f1_score(y[:, k], oof[:, k] >= g, sample_weight=weights, zero_division=0) for g in _THRESHOLD_GRID]
            thresholds.append(float(_THRESHOLD_GRID[int(np.argmax(scores))]))
        return thresholds

    def _threshold(self, t_idx: int) -> float:
        tuned = getattr(self, "topic_thresholds_", None)
        return tuned[t_idx] if tuned else self.topic_threshold

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
        if self.backend == "lexicon":
            return self._predict_lexicon(docs, items, *self._texts(items))
        if self.backend == "finetune":
            for (_, q), st in zip(items, self.finetune_.predict(items)):
                q.stances = st
            return docs
        contents, contexts, groups, base = self._item_features(items, fit=False)
        if self._uses_neighbours():
            base = sparse.hstack([base, self._neighbour_features(self._embed(contents, groups))]).tocsr()
        lex = self._lex_features(items, contents, contexts)
        x_topic = sparse.hstack([base, sparse.csr_matrix(lex)]).tocsr()
        if x_topic.shape[1] != self.topic_model_.n_features_in_:
            raise ModelFileError(
                f"stance model expects {self.topic_model_.n_features_in_} features, these texts give {x_topic.shape[1]}: "
                "it was fitted with another stance lexicon or encoder; refit it"
            )
        p_topic = self.topic_model_.predict_proba(x_topic)
        chosen = self._chosen_topics(p_topic)
        speakers = [q.speaker for _, q in items]
        stances: list[list[Stance]] = [[] for _ in items]
        for t_idx, t in enumerate(topics):
            idx = [i for i in range(len(items)) if chosen[i, t_idx]]
            if not idx:
                continue
            x = self._pair_features(base[idx], lex[idx], [speakers[i] for i in idx], t)
            proba = logistic_proba(self.stance_model_, x)
            classes = list(self.stance_model_.classes_)
            for row, i in enumerate(idx):
                k = int(np.argmax(proba[row]))
                stances[i].append(
                    Stance(topic=t, stance=STANCE_LABELS[classes[k]], confidence=round(float(proba[row, k] * p_topic[i, t_idx]), 4))
                )
        for (_, q), st in zip(items, stances):
            q.stances = sorted(st, key=lambda s: -(s.confidence or 0))
        return docs

    def _chosen_topics(self, p_topic: np.ndarray) -> np.ndarray:
        """Topics over their threshold and at least `min_topic_share` of the quote's most likely
        topic's probability, then at least `min_topics` and at most `max_topics` per quote by
        probability: nearly every annotated quote addresses one or two topics. Each cut-off is
        tuned on its topic alone, blind to the others, so beside a topic the quote plainly
        addresses (0.9) one just over its own cut-off (0.4) is most often a false second topic."""
        cuts = np.array([self._threshold(k) for k in range(p_topic.shape[1])])
        chosen = (p_topic >= cuts) & (p_topic >= self.min_topic_share * p_topic.max(axis=1, keepdims=True))
        order = np.argsort(-p_topic, axis=1, kind="stable")
        rows = np.arange(p_topic.shape[0])
        for rank in range(min(self.min_topics, p_topic.shape[1])):
            chosen[rows, order[:, rank]] = True
        if self.max_topics is not None:
            for rank in range(self.max_topics, p_topic.shape[1]):
                chosen[rows, order[:, rank]] = False
        return chosen

    def _predict_lexicon(self, docs, items, contents, contexts) -> list[Document]:
        """Rule-only baseline: topics whose keywords occur in the quote; polarity words decide."""
        topics = list(default_registry().topics)
        lex = self._lex_features(items, contents, contexts)
        n_topics, pol_names = len(topics), list(self._lexicon_data()["polarity"])
        for (_, q), row in zip(items, lex):
            polarity = dict(zip(pol_names, row[-len(pol_names) :]))
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
        meta, arrays = _linear_state(self.topic_model_, self.stance_model_)
        meta["topic_thresholds"] = getattr(self, "topic_thresholds_", None)
        meta["lexicon"] = self._lexicon_data()
        meta["topic_texts"] = getattr(self, "topic_texts_", None)
        if self._uses_neighbours():
            arrays["neighbour_emb"], arrays["neighbour_labels"] = self.neighbour_emb_, self.neighbour_labels_
        if self._uses_char_ngrams():
            meta["vectorizer"], arrays["idf"] = _vectorizer_state(self.vectorizer_)
        save_state(path, meta, arrays)

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
        if not (path / STATE_JSON).is_file() and (path / LEGACY_STATE).is_file():
            state = load_skops(path / LEGACY_STATE)
            obj.topic_model_, obj.stance_model_ = state["topic_model"], state["stance_model"]
            if obj._uses_char_ngrams():
                obj.vectorizer_ = state["vectorizer"]
            return obj
        meta, arrays = load_state(path, required=("topic_coef", "topic_intercept", "stance_coef", "stance_intercept"))
        if meta.get("format") != STATE_FORMAT:
            raise ModelFileError(f"{path / STATE_JSON}: not a stance state ({meta.get('format')!r}, expected {STATE_FORMAT!r})")
        try:
            obj.topic_model_, obj.stance_model_ = _restore_linear(meta, arrays, obj.C)
            obj.topic_thresholds_ = _restore_thresholds(meta.get("topic_thresholds"), arrays["topic_coef"].shape[0])
            obj.lexicon_ = _restore_lexicon(meta.get("lexicon"))
            if obj.topic_similarity:
                obj.topic_texts_ = _restore_topic_texts(meta.get("topic_texts"), arrays["topic_coef"].shape[0])
            if obj._uses_neighbours():
                obj.neighbour_emb_, obj.neighbour_labels_ = _restore_neighbours(arrays, arrays["topic_coef"].shape[0])
            if obj._uses_char_ngrams():
                obj.vectorizer_ = _restore_vectorizer(meta.get("vectorizer"), arrays.get("idf"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: inconsistent stance state ({exc})") from exc
        return obj


# ---- state files: JSON + safetensors, no code -----------------------------------------------------
STATE_FORMAT = "quote-stance/stance-state/1"
LEGACY_STATE = "state.skops"
_THRESHOLD_GRID = np.round(np.arange(0.1, 0.91, 0.05), 2)
_MIN_POSITIVES = 5


def _jittered(items, copies: int, ratio: float, seed: int) -> list:
    """`copies` copies of each (document, quote) with both content boundaries moved at random by up
    to `ratio` of the content's length: the stance heads learn from gold spans but read the
    detector's, which often take in or leave out the subject or a clause."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(copies):
        for doc, q in items:
            s, e = q.content
            reach = max(1, round(ratio * (e - s)))
            start = int(np.clip(s + rng.integers(-reach, reach + 1), 0, len(doc.text) - 1))
            end = int(np.clip(e + rng.integers(-reach, reach + 1), start + 1, len(doc.text)))
            out.append((doc, q.model_copy(update={"content": (start, end)})))
    return out


def _topic_block(x: sparse.csr_matrix, t_idx: int, n_topics: int, weight: float) -> sparse.csr_matrix:
    """`x` scaled by `weight` in the columns of topic `t_idx`, zeros in the other topics' columns:
    the stance head then learns per topic what a wording means (a worry about missile defense is
    against it, the same worry in a quote on cooperation is not), beside the shared weights."""
    x = sparse.csr_matrix(x, dtype=np.float32)
    shape = (x.shape[0], n_topics * x.shape[1])
    return sparse.csr_matrix((weight * x.data, x.indices + t_idx * x.shape[1], x.indptr), shape=shape)


def _label_matrix(quotes: Sequence[Quote], topics: list[str]) -> np.ndarray:
    """Per quote, one column per topic it addresses, then one per (topic, stance) it takes."""
    out = np.zeros((len(quotes), len(topics) * (1 + len(STANCE_LABELS))), np.uint8)
    for i, q in enumerate(quotes):
        for k, t in enumerate(topics):
            label = q.stance_on(t)
            if label is not None:
                out[i, k] = 1
                out[i, len(topics) + k * len(STANCE_LABELS) + STANCE_LABELS.index(label)] = 1
    return out


def _restore_neighbours(arrays: dict[str, np.ndarray], n_topics: int) -> tuple[np.ndarray, np.ndarray]:
    """The annotated quotes' embeddings and labels that the neighbour features read."""
    emb, labels = arrays["neighbour_emb"], arrays["neighbour_labels"]
    if emb.ndim != 2 or labels.ndim != 2 or emb.shape[0] != labels.shape[0] or labels.shape[1] != n_topics * (1 + len(STANCE_LABELS)):
        raise ValueError("neighbour embeddings and labels must have one row per quote and one label column per topic and stance")
    return emb.astype(np.float32), labels.astype(np.uint8)


def _restore_topic_texts(raw, n_topics: int) -> list[str]:
    """The topic descriptions whose embeddings the model compared quotes with when it was fitted."""
    if not isinstance(raw, list) or len(raw) != n_topics or not all(isinstance(t, str) for t in raw):
        raise ValueError(f"topic_texts must be {n_topics} strings")
    return raw


def _restore_thresholds(value, n_topics: int) -> list[float] | None:
    """Tuned per-topic thresholds from the state file: absent (older files) or a list of probabilities."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != n_topics or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in value):
        raise ValueError(f"topic_thresholds must be {n_topics} probabilities, got {value!r}")
    return [float(v) for v in value]


def _restore_lexicon(value) -> dict | None:
    """The keyword groups saved with the model: features are counts per group, so a model must be
    read with the groups it was fitted with, not whatever the installed package now lists. Absent in
    older files (they use the package's lexicon)."""
    if value is None:
        return None
    ok = isinstance(value, dict) and set(value) == {"topics", "polarity"} and all(
        isinstance(groups, dict)
        and groups
        and all(
            isinstance(by_lang, dict)
            and all(isinstance(lang, str) and isinstance(words, list) and all(isinstance(w, str) for w in words) for lang, words in by_lang.items())
            for by_lang in groups.values()
        )
        for groups in value.values()
    )
    if not ok:
        raise ValueError("lexicon must map 'topics' and 'polarity' to groups of per-language word lists")
    if list(value["topics"]) != list(default_registry().topics):
        raise ValueError(f"lexicon topics {list(value['topics'])} differ from the registry's")
    return value


class _ConstantTopic:
    """What OneVsRestClassifier uses for a topic always (or never) present in training."""

    def __init__(self, p: float):
        self.p = float(p)

    def predict_proba(self, X) -> np.ndarray:
        return np.tile([1.0 - self.p, self.p], (X.shape[0], 1))


class _TopicModel:
    """Per-topic binary classifiers combined as a multi-label OneVsRestClassifier combines them.
    When every topic has a logistic regression, one product scores all topics: the same sums
    (scipy adds each column's products in the same order) without twelve validations."""

    multilabel_ = True

    def __init__(self, estimators: list, n_features: int, coef: np.ndarray | None = None, intercept: np.ndarray | None = None):
        self.estimators_ = estimators
        self.n_features_in_ = n_features
        self.coef, self.intercept = coef, intercept

    def predict_proba(self, X) -> np.ndarray:
        if self.coef is not None:
            from scipy.special import expit
            from sklearn.utils.extmath import safe_sparse_dot

            return expit(safe_sparse_dot(X, self.coef.T, dense_output=True) + self.intercept)
        return np.array([e.predict_proba(X)[:, 1] for e in self.estimators_]).T


def _linear_state(topic_model, stance_model) -> tuple[dict, dict[str, np.ndarray]]:
    if not topic_model.multilabel_:
        raise ValueError("the topic model must be multi-label (one binary classifier per topic)")
    width = int(topic_model.n_features_in_)
    dtype = next((e.coef_.dtype for e in topic_model.estimators_ if hasattr(e, "coef_")), np.float64)
    coef = np.zeros((len(topic_model.estimators_), width), dtype=dtype)
    intercept = np.zeros(len(topic_model.estimators_), dtype=dtype)
    constants: list[float | None] = []
    for k, est in enumerate(topic_model.estimators_):
        if hasattr(est, "coef_"):
            if est.coef_.dtype != dtype or [int(c) for c in est.classes_] != [0, 1]:
                raise ValueError(f"topic classifier {k}: classes {list(est.classes_)} ({est.coef_.dtype}), expected [0, 1] ({dtype})")
            coef[k], intercept[k] = est.coef_[0], est.intercept_[0]
            constants.append(None)
        else:
            constants.append(float(est.predict_proba(np.zeros((1, width)))[0, 1]))
    meta = {
        "format": STATE_FORMAT,
        "topic_constants": constants,
        "stance_classes": [int(c) for c in stance_model.classes_],
    }
    arrays = {
        "topic_coef": coef,
        "topic_intercept": intercept,
        "stance_coef": np.asarray(stance_model.coef_),
        "stance_intercept": np.asarray(stance_model.intercept_),
    }
    return meta, arrays


def _restore_linear(meta: dict, arrays: dict[str, np.ndarray], C: float):
    from inference.pipeline.linear import logistic_regression

    coef, intercept, constants = arrays["topic_coef"], arrays["topic_intercept"], meta["topic_constants"]
    n_topics = len(default_registry().topics)
    if not isinstance(constants, list) or len(constants) != n_topics or coef.ndim != 2 or coef.shape[0] != n_topics:
        raise ValueError(f"the topic model must have one classifier per registry topic ({n_topics})")
    estimators = [
        logistic_regression(coef[k : k + 1], intercept[k : k + 1], [0, 1], C=C) if c is None else _ConstantTopic(c)
        for k, c in enumerate(constants)
    ]
    classes = meta["stance_classes"]
    if not isinstance(classes, list) or not set(classes) <= set(range(len(STANCE_LABELS))) or len(classes) < 2:
        raise ValueError(f"stance classes must be indices of {list(STANCE_LABELS)}")
    stance = logistic_regression(arrays["stance_coef"], arrays["stance_intercept"], classes, C=C)
    if stance.coef_.shape[0] != (1 if len(classes) == 2 else len(classes)):
        raise ValueError("one row of stance coefficients per class expected")
    if all(c is None for c in constants):
        return _TopicModel(estimators, coef.shape[1], coef, intercept), stance
    return _TopicModel(estimators, coef.shape[1]), stance


def _vectorizer_state(vectorizer) -> tuple[dict, np.ndarray]:
    params = vectorizer.get_params()
    if params.pop("dtype") is not np.float64 or any(callable(v) for v in params.values()) or params.pop("vocabulary") is not None:
        raise ValueError("only a float64 TfidfVectorizer with settings (no callables, no fixed vocabulary) can be saved")
    params["ngram_range"] = list(params["ngram_range"])
    vocab = vectorizer.vocabulary_
    terms = sorted(vocab, key=vocab.__getitem__)
    return {"params": params, "terms": terms}, np.asarray(vectorizer.idf_, dtype=np.float64)


def _restore_vectorizer(state: dict | None, idf: np.ndarray | None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not isinstance(state, dict) or idf is None:
        raise ValueError("the character n-gram backend needs the vectorizer's settings, terms and idf")
    params, terms = dict(state["params"]), state["terms"]
    allowed = set(TfidfVectorizer().get_params()) - {"dtype", "vocabulary"}
    if not set(params) <= allowed or any(isinstance(v, dict) for v in params.values()):
        raise ValueError(f"unexpected vectorizer settings {sorted(set(params) - allowed)}")
    if params.get("input", "content") != "content" or params.get("analyzer") not in ("char_wb", "char", "word"):
        raise ValueError("the vectorizer must read the text it is given with a built-in analyzer")
    if params.get("tokenizer") is not None or params.get("preprocessor") is not None:
        raise ValueError("the vectorizer must not name a tokenizer or preprocessor")
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms) or len(set(terms)) != len(terms):
        raise ValueError("vectorizer terms must be distinct strings")
    params["ngram_range"] = tuple(params["ngram_range"])
    vectorizer = TfidfVectorizer(**params)
    vectorizer.vocabulary_ = {t: i for i, t in enumerate(terms)}
    vectorizer.idf_ = idf
    return vectorizer
