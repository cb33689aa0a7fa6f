"""The vectorised char_wb TF-IDF and the batched keyword counts give exactly what the plain
scikit-learn / per-text versions give, so the speed-up cannot change a prediction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from inference.pipeline import char_ngrams
from inference.pipeline.stance import _keyword_counters, quote_context
from inference.validate import read_jsonl

HOSTILE = ["", "   ", "a", "ab", "\u200b x\ty\n\nz  ", "İSTANBUL ǅ ß ΣΊΣΥΦΟΣ", "a\u3000b\xa0c\x1cd\x85e", "\ud800 x", "\x00 a", "«»“”"]


@pytest.fixture(scope="module")
def texts(all_annotation_files) -> list[str]:
    out = []
    for path in all_annotation_files:
        for doc in read_jsonl(path):
            out += [doc.quote_text(q) for q in doc.quotes] + [quote_context(doc, q, 120) for q in doc.quotes]
    return out


@pytest.mark.parametrize("ngram_range", [(2, 4), (2, 3), (3, 4)])
def test_vectorised_char_wb_tfidf_equals_scikit_learn(texts, ngram_range):
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True, min_df=2, max_features=20000)
    vectorizer.fit(texts[::2])
    sample = texts[1::2] + HOSTILE
    assert char_ngrams.supports(vectorizer)
    index = char_ngrams.NgramIndex(vectorizer.vocabulary_, vectorizer.ngram_range)
    assert index.exact
    expected = vectorizer.transform(sample).tocsr()
    got = char_ngrams.transform(vectorizer, sample, index).tocsr()
    assert got.shape == expected.shape
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)
    assert got.nnz > 1000


def test_unsupported_vectorizer_falls_back_to_scikit_learn(texts):
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(2, 3)).fit(texts[:200])
    assert not char_ngrams.supports(vectorizer)
    got = char_ngrams.transform(vectorizer, texts[200:260])
    assert np.array_equal(got.toarray(), vectorizer.transform(texts[200:260]).toarray())


def test_batched_keyword_counts_equal_per_text_counts(all_annotation_files):
    docs = [d for path in all_annotation_files for d in read_jsonl(path)]
    texts = [d.quote_text(q) for d in docs for q in d.quotes] + HOSTILE
    langs = [d.lang for d in docs for q in d.quotes] + [None, "xx", "en", "ja", "ar", None, "ru", "vi", "bn", "zh"]
    for counter in _keyword_counters():
        batched = counter.count_many(texts, langs)
        for i, (text, lang) in enumerate(zip(texts, langs)):
            entries = counter.by_lang.get(lang) or counter.by_lang[None]
            low = text.lower()
            plain = [sum(low.count(w) for w in lower) + sum(text.count(w) for w in exact) for lower, exact in entries]
            assert batched[i].tolist() == plain, (text[:40], lang)
        assert batched.sum() > 100
