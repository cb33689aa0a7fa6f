import copy

import pytest

from inference.pipeline.stance import StanceClassifier
from inference.registry import default_registry
from inference.safe_io import ModelFileError, UnsafeModelFileError, load_skops
from tests.conftest import ANNOTATIONS


def _strip(doc):
    d = copy.deepcopy(doc)
    for q in d.quotes:
        q.stances = []
    return d


@pytest.fixture(scope="module")
def fitted(seed_docs):
    """Fitted on four seeds; seed-000 (Bengali) is held out."""
    return StanceClassifier(backend="fast").fit([d for d in seed_docs if d.doc_id != "seed-000"])


def test_held_out_bengali_shoigu_quote_is_against_missile_defense(fitted, seed_docs):
    doc = fitted(_strip(seed_docs[0]))
    shoigu_direct = next(q for q in doc.quotes if q.speaker == "shoigu" and q.kind == "direct")
    assert shoigu_direct.stance_on("missile_defense") == "against"


def test_save_load_gives_identical_predictions(fitted, seed_docs, tmp_path):
    fitted.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    a = fitted(_strip(seed_docs[0])).to_dict()
    b = again(_strip(seed_docs[0])).to_dict()
    assert a == b


def test_tampered_model_file_is_refused_not_executed(fitted, tmp_path):
    import skops.io as sio

    class Evil:
        pass

    path = tmp_path / "evil.skops"
    sio.dump({"x": Evil()}, path)
    with pytest.raises(UnsafeModelFileError, match="refuses to load types"):
        load_skops(path)
    garbage = tmp_path / "garbage.skops"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(UnsafeModelFileError, match="not a valid skops"):
        load_skops(garbage)


def test_lexicon_baseline_needs_no_training_and_finds_missile_defense(seed_docs):
    doc = StanceClassifier(backend="lexicon")(_strip(seed_docs[2]))
    shoigu = [q for q in doc.quotes if q.speaker == "shoigu" and q.kind == "direct"][0]
    assert shoigu.stance_on("missile_defense") == "against"


def test_unknown_backend_is_a_clear_error(seed_docs):
    with pytest.raises(ValueError, match="unknown stance backend"):
        StanceClassifier(backend="magic").fit(seed_docs)


def test_tuned_topic_thresholds_come_from_held_out_documents_and_survive_save_load(seed_docs, tmp_path):
    import json

    from training.data import load_documents

    docs = [d for d in load_documents() if d.lang == "vi"]
    model = StanceClassifier(backend="fast", threshold_folds=3).fit(docs)
    thresholds = model.topic_thresholds_
    assert len(thresholds) == len(default_registry().topics)
    assert all(0.1 <= t <= 0.9 for t in thresholds)
    assert len(set(thresholds)) > 1, "common and rare topics should not all get one cut-off"
    model.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert again.topic_thresholds_ == thresholds
    assert again(_strip(seed_docs[2])).to_dict() == model(_strip(seed_docs[2])).to_dict()
    state = tmp_path / "stance" / "state.json"
    meta = json.loads(state.read_text())
    meta["topic_thresholds"] = ["0.5; import os"] * len(thresholds)
    state.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="topic_thresholds"):
        StanceClassifier.load(tmp_path / "stance")


def test_document_topic_profile_is_the_articles_topic_shares_whatever_else_is_in_the_batch(seed_docs, tmp_path):
    model = StanceClassifier(backend="fast", doc_topic_weight=0.5)
    bengali, japanese = seed_docs[0], seed_docs[4]
    alone = model._doc_topic_profile([(bengali, q) for q in bengali.quotes])
    mixed = model._doc_topic_profile([(japanese, japanese.quotes[0]), *[(bengali, q) for q in bengali.quotes]])
    assert (alone == mixed[1:]).all(), "a document's profile must not depend on its batch"
    assert (alone == alone[0]).all(), "every quote of an article shares the article's profile"
    assert abs(alone[0].sum() - 1.0) < 1e-6
    topics = list(default_registry().topics)
    assert alone[0][topics.index("missile_defense")] > 0
    fitted = model.fit([d for d in seed_docs if d.doc_id != "seed-000"])
    fitted.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert again.doc_topic_weight == 0.5
    assert again(_strip(bengali)).to_dict() == fitted(_strip(bengali)).to_dict()


def test_model_reads_texts_with_the_lexicon_it_was_fitted_with(seed_docs, tmp_path, monkeypatch):
    import json

    from inference.pipeline import stance as stance_module

    train = [d for d in seed_docs if d.doc_id != "seed-000"]
    model = StanceClassifier(backend="fast").fit(train)
    model.save(tmp_path / "stance")
    expected = model(_strip(seed_docs[0])).to_dict()
    grown = copy.deepcopy(stance_module.stance_lexicon())
    grown["polarity"]["extra"] = {"bn": ["হুমকি"]}
    monkeypatch.setattr(stance_module, "stance_lexicon", lambda: grown)
    monkeypatch.setattr(stance_module, "_keyword_counters", lambda: (None, None))
    again = StanceClassifier.load(tmp_path / "stance")
    assert again(_strip(seed_docs[0])).to_dict() == expected
    state = tmp_path / "stance" / "state.json"
    meta = json.loads(state.read_text())
    del meta["lexicon"]
    state.write_text(json.dumps(meta))
    monkeypatch.setattr(stance_module, "_keyword_counters", lambda: (stance_module._KeywordCounter(grown["topics"]), stance_module._KeywordCounter(grown["polarity"])))
    older = StanceClassifier.load(tmp_path / "stance")
    with pytest.raises(ModelFileError, match="another stance lexicon"):
        older(_strip(seed_docs[0]))
    meta["lexicon"] = {"topics": {"missile_defense": {"en": "radar"}}, "polarity": {}}
    state.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="lexicon"):
        StanceClassifier.load(tmp_path / "stance")


def test_int8_encoder_labels_a_document_the_same_whatever_else_is_in_its_batch(seed_docs, tiny_encoder):
    import numpy as np

    from inference.encoder.memo import embed, forget_embeddings

    first = [seed_docs[0].quote_text(q) for q in seed_docs[0].quotes]
    second = [seed_docs[1].quote_text(q) for q in seed_docs[1].quotes]
    forget_embeddings()
    alone = embed(first, str(tiny_encoder), "int8", groups=[0] * len(first))
    forget_embeddings()
    together = embed(first + second, str(tiny_encoder), "int8", groups=[0] * len(first) + [1] * len(second))
    assert np.array_equal(alone, together[: len(first)])

    model = StanceClassifier(backend="accurate", encoder=str(tiny_encoder), quantize="int8", char_ngrams=False)
    model.fit(seed_docs[2:])

    def labels(docs):
        return [[(s.topic, s.stance, s.confidence) for q in d.quotes for s in q.stances] for d in docs]

    def blank(doc):
        out = copy.deepcopy(doc)
        for q in out.quotes:
            q.stances = []
        return out

    forget_embeddings()
    one_by_one = [labels(model.pipe([blank(d)]))[0] for d in seed_docs[:2]]
    forget_embeddings()
    assert labels(model.pipe([blank(d) for d in seed_docs[:2]])) == one_by_one


def test_context_polarity_adds_the_context_windows_counts_and_keeps_the_quotes_own_last(seed_docs, tmp_path):
    """The cue verb (warned, expressed concern) sits beside the quote, not in it: `context_polarity`
    adds the polarity counts of the context window, while the last columns stay the quote's own,
    which the topic x polarity features read."""
    import numpy as np

    doc = seed_docs[0]
    items = [(doc, q) for q in doc.quotes]
    plain, with_context = StanceClassifier(backend="fast"), StanceClassifier(backend="fast", context_polarity=0.5)
    contents, contexts = plain._texts(items)
    a = plain._lex_features(items, contents, contexts)
    b = with_context._lex_features(items, contents, contexts)
    _, polarity = with_context._lexicon()
    n_pol = len(polarity.names)
    assert b.shape[1] == a.shape[1] + n_pol
    assert np.array_equal(a[:, -n_pol:], b[:, -n_pol:])
    added = b[:, -2 * n_pol : -n_pol]
    assert np.allclose(added, 0.5 * np.log1p(polarity.count_many(contexts, [doc.lang] * len(items))))
    assert (added.sum(axis=1) >= 0.5 * np.log1p(polarity.count_many(contents, [doc.lang] * len(items))).sum(axis=1)).all()
    assert with_context._lex_features([], [], []).shape[1] == b.shape[1]
    fitted = with_context.fit([d for d in seed_docs if d.doc_id != "seed-000"])
    fitted.save(tmp_path / "stance")
    assert StanceClassifier.load(tmp_path / "stance")(_strip(doc)).to_dict() == fitted(_strip(doc)).to_dict()


def test_min_topics_gives_every_quote_its_likeliest_topic_and_max_topics_caps_them(seed_docs, tmp_path):
    """Nearly every annotated quote addresses one or two topics (1,583 of 1,647 authored quotes
    address at least one): `min_topics` keeps each quote's likeliest topic even under the
    threshold, `max_topics` keeps only the likeliest ones; both survive save and load."""
    train = [d for d in seed_docs if d.doc_id != "seed-000"]
    strict = StanceClassifier(backend="fast", topic_threshold=0.99).fit(train)
    assert any(not q.stances for q in strict(_strip(seed_docs[0])).quotes)
    floor = StanceClassifier(backend="fast", topic_threshold=0.99, min_topics=1).fit(train)
    floored = floor(_strip(seed_docs[0]))
    assert all(len(q.stances) == 1 for q in floored.quotes)
    loose = StanceClassifier(backend="fast", topic_threshold=0.01, max_topics=2).fit(train)
    assert all(1 <= len(q.stances) <= 2 for q in loose(_strip(seed_docs[0])).quotes)
    floor.save(tmp_path / "stance")
    assert StanceClassifier.load(tmp_path / "stance")(_strip(seed_docs[0])).to_dict() == floored.to_dict()


def test_min_topic_share_drops_a_second_topic_far_less_likely_than_the_quotes_first(seed_docs, tmp_path):
    """A per-topic cut-off is tuned on its topic alone; `min_topic_share` also asks a topic for a
    share of the quote's likeliest topic's probability, so weak second topics go and the first
    stays. The setting is a parameter of the fitted model, saved with it."""
    train = [d for d in seed_docs if d.doc_id != "seed-000"]
    held = _strip(seed_docs[0])
    plain = StanceClassifier(backend="fast", topic_threshold=0.05).fit(train)
    shared = StanceClassifier(backend="fast", topic_threshold=0.05, min_topic_share=0.9).fit(train)
    before, after = plain(held.model_copy(deep=True)), shared(held.model_copy(deep=True))
    assert sum(len(q.stances) for q in after.quotes) < sum(len(q.stances) for q in before.quotes)
    for q_before, q_after in zip(before.quotes, after.quotes):
        topics_after = {s.topic for s in q_after.stances}
        assert topics_after <= {s.topic for s in q_before.stances}
        assert bool(topics_after) == bool(q_before.stances)
    shared.save(tmp_path / "stance")
    reloaded = StanceClassifier.load(tmp_path / "stance")
    assert reloaded.min_topic_share == 0.9
    assert reloaded(held.model_copy(deep=True)).to_dict() == after.to_dict()


def test_topic_similarity_compares_each_quote_with_the_topic_descriptions_it_was_fitted_with(seed_docs, tiny_encoder, tmp_path, monkeypatch):
    """`topic_similarity` adds, per topic, how much nearer the quote's embedding is to that topic's
    description (speakers.yaml) than to the others'; the descriptions are saved with the model, so
    an edited registry cannot shift a fitted model's features."""
    import numpy as np

    from inference.pipeline import stance as stance_module

    params = dict(backend="accurate", encoder=str(tiny_encoder), char_ngrams=False)
    plain = StanceClassifier(**params).fit(seed_docs[1:])
    model = StanceClassifier(**params, topic_similarity=2.0).fit(seed_docs[1:])
    n_topics = len(default_registry().topics)
    assert model.topic_model_.n_features_in_ == plain.topic_model_.n_features_in_ + 2 * n_topics
    assert model.topic_texts_ == list(default_registry().topics.values())
    contents, contexts = model._texts([(seed_docs[0], q) for q in seed_docs[0].quotes])
    sims = model._text_features(contents, contexts, fit=False).toarray()[:, -2 * n_topics :]
    assert np.allclose(sims.sum(axis=1), 0, atol=1e-4) and np.abs(sims).max() > 0
    before = model(_strip(seed_docs[0])).to_dict()
    model.save(tmp_path / "stance")
    edited = default_registry().model_copy(update={"topics": {t: "edited" for t in default_registry().topics}})
    monkeypatch.setattr(stance_module, "default_registry", lambda: edited)
    assert StanceClassifier.load(tmp_path / "stance")(_strip(seed_docs[0])).to_dict() == before


def test_neighbour_features_are_the_labels_of_the_nearest_quotes_of_other_documents(seed_docs, tiny_encoder, tmp_path):
    """`neighbours` adds, per quote, the topic and (topic, stance) shares of its nearest annotated
    quotes by embedding. While fitting, a quote's own document is left out (a quote is its own
    nearest neighbour, which would teach the heads to trust the feature blindly); the bank of
    embeddings and labels is saved with the model."""
    import numpy as np

    from inference.pipeline.stance import _label_matrix

    train = seed_docs[1:]
    model = StanceClassifier(backend="accurate", encoder=str(tiny_encoder), char_ngrams=False, neighbours=3).fit(train)
    quotes = [q for d in train for q in d.quotes]
    topics = list(default_registry().topics)
    assert model.neighbour_emb_.shape[0] == len(quotes)
    assert (model.neighbour_labels_ == _label_matrix(quotes, topics)).all()
    doc_ids = [d.doc_id for d in train for _ in d.quotes]
    own = model._neighbour_features(model.neighbour_emb_, None).toarray()
    held = model._neighbour_features(model.neighbour_emb_, doc_ids).toarray()
    labels = model.neighbour_labels_.astype(float)
    # with its own document in the bank, a quote's own labels weigh in; left out, they may not
    sims = model.neighbour_emb_ @ model.neighbour_emb_.T
    ids = np.array(doc_ids)
    sims[ids[:, None] == ids[None, :]] = -np.inf
    nearest = np.argsort(-sims, axis=1)[:, :3]
    assert np.allclose(held, labels[nearest].mean(axis=1))
    assert not np.allclose(own, held)
    n_topics = len(topics)
    per_label = held[:, n_topics:].reshape(len(quotes), n_topics, -1).sum(axis=2)
    assert np.allclose(per_label, held[:, :n_topics])  # a neighbour that addresses a topic takes one stance on it
    before = model(_strip(seed_docs[0])).to_dict()
    model.save(tmp_path / "stance")
    assert StanceClassifier.load(tmp_path / "stance")(_strip(seed_docs[0])).to_dict() == before


def test_topic_interaction_gives_the_stance_head_a_copy_of_the_text_features_per_topic(seed_docs, tmp_path):
    """With `topic_interaction` the stance head sees each quote's text features twice: shared, and
    in the block of the topic being judged, so a wording can mean `against` on one topic and not
    on another. Blocks of other topics stay empty; the model survives save and load."""
    from inference.pipeline.stance import _topic_block

    train = [d for d in seed_docs if d.doc_id != "seed-000"]
    plain = StanceClassifier(backend="fast").fit(train)
    crossed = StanceClassifier(backend="fast", topic_interaction=0.5).fit(train)
    n_topics = len(default_registry().topics)
    n_text = len(crossed.vectorizer_.vocabulary_) * 2
    assert crossed.stance_model_.n_features_in_ == plain.stance_model_.n_features_in_ + n_topics * n_text

    doc = _strip(seed_docs[0])
    contents, contexts = crossed._texts([(doc, q) for q in doc.quotes])
    base = crossed._text_features(contents, contexts, fit=False)
    block = _topic_block(base, 3, n_topics, 0.5)
    assert block.shape == (base.shape[0], n_topics * base.shape[1])
    inside = block[:, 3 * base.shape[1] : 4 * base.shape[1]].toarray()
    assert abs(inside - 0.5 * base.toarray()).max() < 1e-6
    assert block[:, : 3 * base.shape[1]].nnz == 0 and block[:, 4 * base.shape[1] :].nnz == 0

    crossed.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert again.topic_interaction == 0.5
    assert again(_strip(seed_docs[0])).to_dict() == crossed(_strip(seed_docs[0])).to_dict()


def test_origin_weights_pull_the_model_toward_the_weighted_documents_and_survive_save_load(seed_docs, tmp_path):
    """A seed article weighs `origin_weights['seed']` authored ones: the topic and stance heads then
    fit the seeds' labels more closely (weighted maximum likelihood). The weights are a fit-time
    setting saved with the model; a non-positive weight is refused."""
    import numpy as np
    from scipy import sparse

    from inference.validate import read_jsonl

    seeds = [d for d in seed_docs if d.doc_id != "seed-000"]
    authored = read_jsonl(ANNOTATIONS / "authored" / "ja.jsonl")
    assert {d.origin for d in seeds} == {"seed"} and {d.origin for d in authored} == {"authored"}
    plain = StanceClassifier(backend="fast").fit(authored + seeds)
    weighted = StanceClassifier(backend="fast", origin_weights={"seed": 8}).fit(authored + seeds)

    topics = list(default_registry().topics)
    items = [(d, q) for d in seeds for q in d.quotes]
    y = np.array([[int(q.stance_on(t) is not None) for t in topics] for _, q in items])

    def seed_log_likelihood(model):
        contents, contexts = model._texts(items)
        base = model._text_features(contents, contexts, fit=False)
        lex = model._lex_features(items, contents, contexts)
        p = model.topic_model_.predict_proba(sparse.hstack([base, sparse.csr_matrix(lex)]).tocsr()).clip(1e-9, 1 - 1e-9)
        return float((y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    assert seed_log_likelihood(weighted) > seed_log_likelihood(plain)

    weighted.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert again.origin_weights == {"seed": 8}
    assert again(_strip(seed_docs[0])).to_dict() == weighted(_strip(seed_docs[0])).to_dict()
    with pytest.raises(ValueError, match="origin_weights"):
        StanceClassifier(backend="fast", origin_weights={"seed": 0}).fit(seeds)


def test_span_jitter_trains_on_moved_boundaries_but_keeps_the_annotated_spans_as_neighbours(seed_docs, tiny_encoder, tmp_path):
    """`span_jitter` adds copies of each training quote whose content boundaries moved by up to
    `span_jitter_ratio` of its length (the detector's spans differ from the annotators'), with the
    quote's labels. The neighbour bank holds only the annotated spans, so the saved model does not
    grow with the copies, and the setting survives save and load."""
    from inference.pipeline.stance import _jittered

    items = [(d, q) for d in seed_docs for q in d.quotes]
    moved = _jittered(items, 2, 0.2, 0)
    assert len(moved) == 2 * len(items)
    assert any(tuple(q.content) != tuple(o.content) for (_, q), (_, o) in zip(moved, items + items))
    for (doc, q), (_, orig) in zip(moved, items + items):
        s, e = q.content
        os_, oe = orig.content
        reach = max(1, round(0.2 * (oe - os_)))
        assert 0 <= s < e <= len(doc.text)
        assert abs(s - os_) <= reach and abs(e - oe) <= reach
        assert q.stances == orig.stances and q.speaker == orig.speaker

    train = seed_docs[1:]
    model = StanceClassifier(
        backend="accurate", encoder=str(tiny_encoder), char_ngrams=False, neighbours=3, span_jitter=1
    ).fit(train)
    assert model.neighbour_emb_.shape[0] == sum(len(d.quotes) for d in train)
    before = model(_strip(seed_docs[0])).to_dict()
    model.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert (again.span_jitter, again.span_jitter_ratio) == (1, 0.2)
    assert again(_strip(seed_docs[0])).to_dict() == before


def test_sentence_weight_reads_the_whole_sentence_so_a_cut_subject_changes_nothing(seed_docs, tmp_path):
    """The detector often starts a Japanese quote after its subject (日本政府とロシアとの協力は…);
    with `sentence_weight` the stance features also read the whole sentences the quote touches,
    which a boundary moved inside the sentence leaves as they were. The setting survives save and load."""
    doc = next(d for d in seed_docs if d.lang == "ja")
    quote = next(q for q in doc.quotes if doc.quote_text(q).startswith("日本政府とロシアとの協力は"))
    cut = quote.model_copy(update={"content": (quote.content[0] + len("日本政府とロシアとの協力は"), quote.content[1])})
    model = StanceClassifier(backend="fast", sentence_weight=0.5)
    whole, after_cut = model._sentences([(doc, quote), (doc, cut)])
    assert whole == after_cut
    assert doc.quote_text(quote) in whole and len(whole) > len(doc.quote_text(quote))
    assert StanceClassifier(backend="fast")._sentences([(doc, quote)]) is None

    train = [d for d in seed_docs if d.doc_id != doc.doc_id]
    plain, fitted = StanceClassifier(backend="fast").fit(train), model.fit(train)
    assert fitted.topic_model_.n_features_in_ == plain.topic_model_.n_features_in_ + len(fitted.vectorizer_.vocabulary_)
    fitted.save(tmp_path / "stance")
    again = StanceClassifier.load(tmp_path / "stance")
    assert again.sentence_weight == 0.5
    assert again(_strip(doc)).to_dict() == fitted(_strip(doc)).to_dict()
