"""Quote detection on small real data: mark pairing, the learned filter, save/load."""

from __future__ import annotations

import time

import pytest

from inference.document import Document
from inference.pipeline.quote_detection import QuoteDetector, scan_marks
from inference.validate import read_jsonl
from tests.conftest import ANNOTATIONS


def _raw(doc: Document) -> Document:
    return Document(doc_id=doc.doc_id, lang=doc.lang, published=doc.published, text=doc.text)


def _contents(text: str) -> list[str]:
    return [text[p.content[0] : p.content[1]] for p in scan_marks(text)]


def test_balanced_marks_of_several_conventions():
    text = "A «un» B „zwei“ C 「三」 D “four” E \"five\" F 『六』"
    assert _contents(text) == ["un", "zwei", "三", "four", "five", "六"]


def test_nested_marks_keep_inner_pair(seed_docs):
    bn = seed_docs[0]
    lavrov = next(q for q in bn.quotes if bn.quote_text(q).startswith("“২+২”"))
    pairs = {p.content for p in scan_marks(bn.text)}
    assert lavrov.content in pairs
    inner = bn.text.index("২+২", lavrov.content[0])
    assert (inner, inner + 3) in pairs


def test_multi_paragraph_quote_is_one_pair(seed_docs):
    ja = seed_docs[4]
    multi = [q for q in ja.quotes if q.kind == "direct" and "\n" in ja.quote_text(q)]
    assert multi
    pairs = {p.content for p in scan_marks(ja.text)}
    assert all(q.content in pairs for q in multi)


def test_multi_paragraph_with_reopening_marks():
    text = "He said:\n“First part.\n“Second part.”\nNext."
    assert _contents(text) == ["First part.\n“Second part."]


def test_unbalanced_marks_are_fast_and_safe():
    text = "“a " * 20000 + "” b " * 3000 + "\"x «y „z\n" * 3000
    start = time.perf_counter()
    scan_marks(text)
    assert time.perf_counter() - start < 2.0
    det = QuoteDetector(learned=False)
    out = det(Document(doc_id="x", lang="en", text="He said “unclosed and «half» then ” end ” “"))
    assert all(0 <= q.content[0] <= q.content[1] for q in out.quotes)
    assert det(Document(doc_id="e", text="")).quotes == []


def test_apostrophes_are_not_marks():
    assert _contents("Russia's view and Japan's 'quoted' word") == ["quoted"]


@pytest.fixture(scope="module")
def fitted(seed_docs) -> QuoteDetector:
    return QuoteDetector().fit(seed_docs[1:])


def test_scare_quotes_and_names_rejected(fitted, seed_docs):
    ja = fitted(_raw(seed_docs[4]))
    texts = [ja.quote_text(q) for q in ja.quotes if q.kind == "direct"]
    assert "同盟外の" not in texts and "防衛的性格" not in texts
    bn = fitted(_raw(seed_docs[0]))
    assert "২+২" not in [bn.quote_text(q) for q in bn.quotes]


def test_direct_quotes_found_on_held_out_seed(fitted, seed_docs):
    gold = seed_docs[0]
    pred = fitted(_raw(gold))
    spans = {q.content for q in pred.quotes}
    direct = [q for q in gold.quotes if q.kind == "direct"]
    assert sum(q.content in spans for q in direct) >= len(direct) - 1
    assert all(q.confidence and 0.0 <= q.confidence["quote"] <= 1.0 for q in pred.quotes)


def test_save_load_round_trip(fitted, seed_docs, tmp_path):
    fitted.save(tmp_path)
    loaded = QuoteDetector.load(tmp_path)
    for doc in seed_docs:
        assert loaded(_raw(doc)).to_dict() == fitted(_raw(doc)).to_dict()


def test_french_guillemets_with_no_break_spaces():
    """fr-001: « Nous … » with U+00A0 inside the marks; the content excludes the spaces."""
    text = "\u00ab\u00a0Nous avons ouvert aujourd'hui un nouveau chapitre de nos relations\u00a0\u00bb, a déclaré Sergueï Lavrov."
    assert _contents(text) == ["Nous avons ouvert aujourd'hui un nouveau chapitre de nos relations"]


def test_french_guillemets_with_plain_spaces():
    """fr-016: « … » set with ordinary spaces, as French text often is once the no-break spaces
    are lost; both the mixed fragment and the paragraph-opening direct quote pair up."""
    text = (
        "proposé de renforcer la coopération « contre le terrorisme international ».\n\n"
        "« Le Japon et la Russie doivent agir ensemble face à cette menace », a-t-il ajouté."
    )
    assert _contents(text) == ["contre le terrorisme international", "Le Japon et la Russie doivent agir ensemble face à cette menace"]


def test_a_lone_spaced_guillemet_opens_nothing():
    assert _contents("Er sagte: »Wir kommen« und ging. Ein » loses Zeichen.") == ["Wir kommen"]


def test_arabic_cue_with_clitic_and_inflection():
    """ar-008: فأكدت (ف + أكد + feminine ت) and the participle مشددة are cues; the clitic stays in the span."""
    from inference.pipeline.lexicon import load_lexicon

    text = "أما وزيرة الدفاع اليابانية تومومي إينادا فأكدت أن بلادها تدرس خيارات، مشددة على أن هذه الخيارات دفاعية."
    found = [text[s:e] for s, e in load_lexicon("ar").find_cues(text)]
    assert "فأكدت" in found
    assert "مشددة" in found


def test_capitalised_cue_at_sentence_start():
    """fr-002: sentence-initial D'après, listed lower-case in the lexicon, is a cue."""
    from inference.pipeline.lexicon import load_lexicon

    text = "D'après une source diplomatique japonaise, les discussions ont été « plus franches que prévu »."
    found = [text[s:e] for s, e in load_lexicon("fr").find_cues(text)]
    assert "D'après" in found


def test_cue_after_a_quote_closed_in_its_sentence_is_flagged_for_the_span_filter():
    """ru-014: «…», — заявил представитель МИД … The cue reports the quote before it, so the
    words after it name the speaker; the span filter sees that the direct quote closed there."""
    text = (
        "Южная Корея. «Мы рассчитываем, что Россия и Япония внесут вклад в мирное решение ядерной "
        "проблемы Корейского полуострова», — заявил представитель МИД Республики Корея Чо Тхэ Ён.\n\n"
        "Россия. Лавров заявил, что переговоры были полезными."
    )
    _, _, _, spans, feats = QuoteDetector()._candidates(Document(doc_id="t", lang="ru", text=text))
    flags = {text[s:e]: f["direct_closes_before_cue_in_sentence"] for ((cs, _), (s, e)), f in zip(spans, feats)}
    after_quote = [span for span in flags if span.startswith("представитель МИД")]
    assert after_quote and all(flags[span] == 1.0 for span in after_quote)
    assert flags["переговоры были полезными"] == 0.0


def test_a_direct_quote_takes_the_cue_of_its_own_sentence_not_the_one_closing_the_sentence_before():
    """zh-201, ko-013, es-016, ja-013, ja-202: a direct quote whose cue follows it comes right after a
    sentence ending in the previous quote's cue; the nearer cue belongs to that sentence."""
    from inference.pipeline.quote_detection import _cue_for

    detector = QuoteDetector()
    for doc_id, start in (("zh-201", "共同经济活动"), ("ko-013", "비용과 기간"), ("es-016", "Este formato"), ("ja-013", "こういう時だからこそ"), ("ja-202", "意見の違い")):
        doc = _authored(doc_id)
        quote = next(q for q in doc.quotes if q.kind == "direct" and doc.quote_text(q).startswith(start))
        ctx = detector._context(_raw(doc))
        assert _cue_for(ctx, quote.content[0] - 1, quote.content[1] + 1) == quote.cue, doc_id


def test_subject_marker_before_the_mark_is_seen_in_japanese_and_korean():
    """ja-014 知事は「…」, ko-002 관계자는 “…”: the speaker's topic marker touches the opening mark."""
    from inference.pipeline.lexicon import load_lexicon
    from inference.pipeline.quote_detection import _subject_marker_ends_at

    ja = "秋田県の佐竹敬久知事は「県民の不安に配慮した判断だと受け止めたい」とのコメントを出した。"
    ko = "국방부 관계자는 “주변국과의 충분한 소통이 필요하다”는 입장을 밝혔다."
    assert _subject_marker_ends_at(ja, load_lexicon("ja"), ja.index("「"))
    assert _subject_marker_ends_at(ko, load_lexicon("ko"), ko.index("“"))
    scare = "日本の「防衛的性格」を強調した。"
    assert not _subject_marker_ends_at(scare, load_lexicon("ja"), scare.index("「"))
    assert not _subject_marker_ends_at("는 “x”", load_lexicon("ko"), 2)


def test_seen_languages_get_folded_scorers_and_an_unseen_one_keeps_the_shared_scorer(seed_docs, tmp_path):
    import numpy as np

    from inference.pipeline.linear import LinearScorer, group_copies

    detector = QuoteDetector(language_features=True).fit(seed_docs[1:])
    assert set(detector.lang_spans_) == set(detector.lang_filters_) == {"ar", "vi", "ja"}
    # folding the per-language copies into one scorer gives the joint model's probabilities
    rows, langs, labels = [], [], []
    for doc in seed_docs[1:]:
        _, _, _, cands, feats = detector._candidates(doc)
        rows += feats
        langs += [doc.lang] * len(feats)
        labels += [int(any(q.content == span for q in doc.quotes)) for _, span in cands]
    joint = LinearScorer().fit(group_copies(rows, langs), labels, sparse=True)
    ja = [k for k, lang in enumerate(langs) if lang == "ja"]
    assert np.allclose(
        joint.fold("ja|").predict_proba([rows[k] for k in ja]),
        joint.predict_proba(group_copies([rows[k] for k in ja], ["ja"] * len(ja))),
    )
    # Bengali was held out: its seed is read by the shared scorers, as without the option
    shared_only = QuoteDetector().fit(seed_docs[1:])
    assert detector(_raw(seed_docs[0])).to_dict() == shared_only(_raw(seed_docs[0])).to_dict()
    detector.save(tmp_path)
    loaded = QuoteDetector.load(tmp_path)
    for doc in seed_docs:
        assert loaded(_raw(doc)).to_dict() == detector(_raw(doc)).to_dict()


def test_feature_names_with_the_group_separator_are_refused():
    from inference.pipeline.linear import group_copies

    with pytest.raises(ValueError, match="must not contain"):
        group_copies([{"ja|x": 1.0}], ["ja"])


def test_span_scorer_reads_candidates_through_the_encoder_and_survives_save_load(seed_docs, tiny_encoder, tmp_path):
    det = QuoteDetector(encoder_weight=2.0, encoder=str(tiny_encoder), encoder_max_tokens=24).fit(seed_docs[1:])
    names = set(det.spans_.vectorizer_.feature_names_)
    dim = 32
    assert {f"emb{i}" for i in range(dim)} <= names
    assert not any(n.startswith("emb") for n in det.filter_.vectorizer_.feature_names_), "marks keep hand features"
    _, _, _, cands, feats = det._candidates(_raw(seed_docs[0]))
    same_text = {}
    for (_, (s, e)), f in zip(cands, feats, strict=True):
        row = tuple(f[f"emb{i}"] for i in range(dim))
        assert abs(sum(x * x for x in row) - 4.0) < 1e-3, "unit-length embedding scaled by encoder_weight"
        same_text.setdefault(seed_docs[0].text[s:e], row)
        assert same_text[seed_docs[0].text[s:e]] == row
    det.save(tmp_path)
    loaded = QuoteDetector.load(tmp_path)
    assert (loaded.encoder_weight, loaded.encoder, loaded.encoder_max_tokens) == (2.0, str(tiny_encoder), 24)
    assert loaded(_raw(seed_docs[0])).to_dict() == det(_raw(seed_docs[0])).to_dict()
    plain = QuoteDetector().fit(seed_docs[1:])
    assert not any(n.startswith("emb") for n in plain.spans_.vectorizer_.feature_names_)


def test_spans_that_differ_only_past_the_token_limit_read_the_same(seed_docs, tiny_encoder):
    import numpy as np

    from inference.encoder.memo import embed

    gold = next(q for q in seed_docs[0].quotes if q.kind == "indirect")
    start, end = gold.content
    text = seed_docs[0].text
    short, longer = text[start : start + 40], text[start:end]
    cut = embed([short, longer], str(tiny_encoder), max_length=6)
    assert np.allclose(cut[0], cut[1])
    whole = embed([short, longer], str(tiny_encoder), max_length=128)
    assert not np.allclose(whole[0], whole[1])


def _cue_flags(doc: Document, cue_text: str, after: str) -> dict:
    """The span features of the first candidate of the cue `cue_text` that follows `after`."""
    det = QuoteDetector(speaker_adjacency=True)
    _, _, _, spans, feats = det._candidates(_raw(doc))
    at = doc.text.index(after) + len(after)
    for (cue, _), f in zip(spans, feats):
        if cue[0] >= at and doc.text[cue[0] : cue[1]] == cue_text:
            return f
    raise AssertionError(f"no candidate for {cue_text!r} after {after!r}")


def test_a_cue_with_its_speaker_beside_it_is_told_from_the_same_word_used_as_a_noun(seed_docs):
    """seed-003: "Lavrov nhấn mạnh …" reports speech; "mới ký tuyên bố đình chiến" (signed a
    declaration) uses a cue word as a noun, with no speaker next to it."""
    doc = next(d for d in seed_docs if d.doc_id == "seed-003")
    said = _cue_flags(doc, "nhấn mạnh", "Lavrov")
    noun = _cue_flags(doc, "tuyên bố", "mới ký")
    assert said["speaker_right_before_cue"] == 1.0 and said["speaker_outside"] == 1.0
    assert noun["speaker_right_before_cue"] == 0.0 and noun["speaker_right_after_cue"] == 0.0


def test_a_speaker_named_after_a_participial_cue_counts_for_the_content_before_it(seed_docs):
    """seed-000: "[…], এই কথা উল্লেখ করে রাশিয়ার প্রতিরক্ষা মন্ত্রী সের্গেই শইগু বলেছেন": the
    minister is named right after the cue, so a content span before the cue has its speaker."""
    doc = next(d for d in seed_docs if d.doc_id == "seed-000")
    det = QuoteDetector(speaker_adjacency=True)
    _, _, _, spans, feats = det._candidates(_raw(doc))
    cue_at = doc.text.index("এই কথা উল্লেখ করে রাশিয়ার প্রতিরক্ষা") + len("এই কথা ")
    back = [f for ((cs, _), (s, e)), f in zip(spans, feats) if cs == cue_at and e <= cs]
    assert back and all(f["speaker_right_after_cue"] == 1.0 and f["speaker_outside"] == 1.0 for f in back)


def test_without_speaker_adjacency_the_features_are_absent_so_older_models_score_the_same(seed_docs):
    doc = next(d for d in seed_docs if d.doc_id == "seed-003")
    _, _, _, _, feats = QuoteDetector()._candidates(_raw(doc))
    assert feats and not any("speaker_outside" in f or "speaker_right_before_cue" in f for f in feats)


def test_scare_quotes_the_filter_rejects_do_not_count_as_a_direct_quote_beside_the_cue(seed_docs):
    """seed-004: …「平和条約を締結」することに「非常に強い意欲」を示したと、安倍晋三・日本首相は語った。
    The two marked phrases are scare quotes, not a direct quote that 語った reports; with
    `filtered_marks` the span features see only the pairs the fitted mark filter accepts."""
    held = next(d for d in seed_docs if d.doc_id == "seed-004")
    train = [d for d in seed_docs if d.doc_id != "seed-004"]
    cue_at = held.text.index("と、安倍晋三・日本首相は語った") + len("と、安倍晋三・日本首相は")

    def closes_before(det: QuoteDetector) -> set[float]:
        _, _, _, spans, feats = det._candidates(_raw(held))
        return {f["direct_closes_before_cue_in_sentence"] for (cue, _), f in zip(spans, feats) if cue[0] == cue_at}

    assert closes_before(QuoteDetector().fit(train)) == {1.0}
    assert closes_before(QuoteDetector(filtered_marks=True).fit(train)) == {0.0}


def test_a_speaker_between_the_content_and_its_cue_is_paired_with_where_the_span_starts(seed_docs):
    """seed-004: 日本は太平洋地域で…を考慮していると、日本防衛相は会談前にノーボスチ通信に語った。
    The minister stands between the content and 語った, so the speaker slot after the content
    is taken and 日本は at the sentence start belongs to the content: `post_speaker` tells the
    span that starts at the sentence from the one that starts after 日本は."""
    doc = next(d for d in seed_docs if d.doc_id == "seed-004")
    det = QuoteDetector(post_speaker=True)
    _, _, _, spans, feats = det._candidates(_raw(doc))
    sent = doc.text.index("日本は太平洋地域で")
    cue_at = doc.text.index("語った", sent)
    back = {s: f for ((cs, _), (s, e)), f in zip(spans, feats) if cs == cue_at and e <= cs}
    assert back[sent]["speaker_after_content&start=sent_start"] == 1.0
    assert back[sent + len("日本は")]["speaker_after_content&start=after_subject"] == 1.0
    forward = [f for ((cs, _), (s, _)), f in zip(spans, feats) if cs == cue_at and s >= cs]
    assert not any("speaker_after_content" in f for f in forward)


def test_a_proposal_verb_is_flagged_as_a_cue_that_usually_reports_an_act(seed_docs):
    """seed-004: ロシア政府は…会談を行うことを提案した reports a proposal, an act (GUIDELINES §1);
    語った reports words. `act_cues` gives the span scorer the lexicon's act_cues list."""
    doc = next(d for d in seed_docs if d.doc_id == "seed-004")
    det = QuoteDetector(act_cues=True)
    _, _, _, spans, feats = det._candidates(_raw(doc))
    flags = {doc.text[cs:ce]: f["cue_reports_act"] for ((cs, ce), _), f in zip(spans, feats)}
    assert flags["提案した"] == 1.0
    assert flags["語った"] == 0.0
    _, _, _, _, plain = QuoteDetector()._candidates(_raw(doc))
    assert not any("cue_reports_act" in f for f in plain)


def _cue_at(doc: Document, cue_text: str, after: str) -> tuple[int, int]:
    start = doc.text.index(cue_text, doc.text.index(after) + len(after))
    return start, start + len(cue_text)


def test_the_cue_sense_stage_tells_a_saying_verb_from_the_same_word_used_as_a_noun(seed_docs):
    """seed-003, held out: "Lavrov nhấn mạnh" reports speech, "mới ký tuyên bố đình chiến"
    (signed a declaration) does not. The cue-sense scorer, fitted on the Vietnamese authored
    documents, reads the words beside each cue; the noun use falls under the threshold."""
    from inference.pipeline.quote_detection import _cue_sense

    held = next(d for d in seed_docs if d.doc_id == "seed-003")
    train = read_jsonl(ANNOTATIONS / "authored" / "vi.jsonl")
    det = QuoteDetector(cue_context=True, cue_threshold=0.3).fit(train)
    ctx = det._context(_raw(held))
    senses = _cue_sense(det.cue_sense_, ctx)
    said = senses[_cue_at(held, "nhấn mạnh", "Lavrov")]
    noun = senses[_cue_at(held, "tuyên bố", "mới ký")]
    assert noun < det.cue_threshold < said


def test_the_cue_sense_stage_keeps_a_short_cue_with_its_speaker_beside_it(seed_docs):
    """seed-003, held out: in "Ông Kono cũng cho [...]" the clipped cue *cho* (its usual sense is
    "for / give") reports Kono's view. Fitted on the whole authored set, the characters alone
    leave it at the threshold's edge (0.30 on data version c414dc12f99d; under it before); seeing
    that a speaker stands right before it lifts it well over (0.39), while "ký tuyên bố" (signed a
    declaration) and "cho thấy" (shows) stay vetoed."""
    from inference.pipeline.quote_detection import _cue_sense

    held = next(d for d in seed_docs if d.doc_id == "seed-003")
    train = [d for f in sorted((ANNOTATIONS / "authored").glob("*.jsonl")) for d in read_jsonl(f)]
    cho, noun, shows = _cue_at(held, "cho", "Ông Kono cũng"), _cue_at(held, "tuyên bố", "mới ký"), _cue_at(held, "cho", "thượng mại…")
    senses = {}
    for speaker in (False, True):
        det = QuoteDetector(speaker_adjacency=True, cue_context=True, cue_threshold=0.3, cue_sense_speaker=speaker).fit(train)
        senses[speaker] = _cue_sense(det.cue_sense_, det._context(_raw(held)), speaker)
    assert senses[True][cho] > 0.3 and senses[True][cho] - senses[False][cho] > 0.05
    assert senses[True][noun] < 0.3 and senses[True][shows] < 0.3


def test_the_cue_sense_stage_stays_silent_in_a_language_it_never_saw(seed_docs, tmp_path):
    """Fitted on Vietnamese only, it has no opinion on Japanese cues, so the Japanese seed is
    detected as without the stage; and the stage survives save and load."""
    from inference.pipeline.quote_detection import _cue_sense

    held = next(d for d in seed_docs if d.doc_id == "seed-004")
    train = read_jsonl(ANNOTATIONS / "authored" / "vi.jsonl")
    det = QuoteDetector(cue_context=True).fit(train)
    assert _cue_sense(det.cue_sense_, det._context(_raw(held))) == {}
    plain = QuoteDetector().fit(train)
    assert [q.content for q in det(_raw(held)).quotes] == [q.content for q in plain(_raw(held)).quotes]
    det.save(tmp_path)
    loaded = QuoteDetector.load(tmp_path)
    vi = next(d for d in seed_docs if d.doc_id == "seed-003")
    assert _cue_sense(loaded.cue_sense_, loaded._context(_raw(vi))) == _cue_sense(det.cue_sense_, det._context(_raw(vi)))


def _authored(doc_id: str) -> Document:
    lang = doc_id.split("-")[0]
    return next(d for d in read_jsonl(ANNOTATIONS / "authored" / f"{lang}.jsonl") if d.doc_id == doc_id)


def test_content_after_a_lead_phrase_behind_the_japanese_subject_gets_a_candidate_of_its_own():
    """ja-107: 一方、ロシア大統領は15日の記者会見で、共同宣言には…と指摘した。 The content starts after
    the lead phrase that follows the subject (15日の記者会見で、); with `lead_phrase` that start is
    a candidate, and the span that takes the lead phrase in is flagged."""
    doc = _authored("ja-107")
    gold = next(q for q in doc.quotes if "共同宣言には" in doc.text[q.content[0] : q.content[1]])
    lead_start = doc.text.index("15日の記者会見で、", doc.text.index("ロシア大統領は"))

    def back_spans(det: QuoteDetector) -> dict[tuple[int, int], dict]:
        _, _, _, spans, feats = det._candidates(_raw(doc))
        return {span: f for (cue, span), f in zip(spans, feats) if cue == tuple(gold.cue)}

    plain, lead = back_spans(QuoteDetector()), back_spans(QuoteDetector(lead_phrase=True))
    assert tuple(gold.content) not in plain
    assert lead[tuple(gold.content)]["start=after_subject_clause"] == 1.0
    assert lead[tuple(gold.content)]["lead_clause"] == 0.0
    assert lead[(lead_start, gold.content[1])]["lead_clause"] == 1.0
    assert not any("lead_clause" in f for f in plain.values())


def test_vietnamese_content_is_not_cut_after_la_or_ve_inside_it():
    """vi-009: "… cho biết các hệ thống này là cần thiết để bảo vệ …": là (is) and về (about)
    are no complementizers (lexicons/vi.yaml), so no candidate of the cue starts after them."""
    doc = _authored("vi-009")
    gold = next(q for q in doc.quotes if doc.text[q.content[0] :].startswith("các hệ thống này là cần thiết"))
    _, _, _, spans, _ = QuoteDetector()._candidates(_raw(doc))
    starts = {s for (cue, (s, _)) in spans if cue == tuple(gold.cue)}
    assert gold.content[0] in starts
    assert doc.text.index("cần thiết", gold.content[0]) not in starts


def test_vietnamese_ve_right_after_the_cue_is_left_out_of_the_content(seed_docs):
    """seed-002: "Shoigu nhấn mạnh về [mối quan ngại của Nga …]" (GUIDELINES: về after the cue is
    left out like a complementizer): the cue particle moves the first candidate past it."""
    doc = next(d for d in seed_docs if d.doc_id == "seed-002")
    gold = next(q for q in doc.quotes if doc.text[q.content[0] :].startswith("mối quan ngại của Nga"))
    _, _, _, spans, feats = QuoteDetector()._candidates(_raw(doc))
    first = [f for (cue, (s, _)), f in zip(spans, feats) if cue == tuple(gold.cue) and s == gold.content[0]]
    assert first and all(f["start=after_cue_comp"] == 1.0 for f in first)


def _shipped_detector(**changes) -> QuoteDetector:
    """The quote detector with the shipped experiment's settings (experiments/fast.yaml)."""
    import yaml

    params = yaml.safe_load((ANNOTATIONS.parent / "experiments" / "fast.yaml").read_text(encoding="utf-8"))["components"]["quote_detection"]
    return QuoteDetector(**{**params, **changes})


def _authored_except(lang: str) -> list[Document]:
    return [d for f in sorted((ANNOTATIONS / "authored").glob("*.jsonl")) if f.stem != lang for d in read_jsonl(f)]


def test_a_short_quote_opening_its_sentence_before_its_cue_is_kept_in_a_language_never_seen():
    """en-301: "Useful," he told reporters / "We agree," Lavrov said. With `sentence_marks` the
    mark filter sees that the pair opens its sentence and hands over to a cue after a comma; a
    detector that never saw English keeps both, and still rejects "2+2" and "Kommersant"."""
    doc = _authored("en-301")
    train = _authored_except("en")
    found = {}
    for flag in (False, True):
        pred = _shipped_detector(sentence_marks=flag).fit(train)(_raw(doc))
        found[flag] = {pred.quote_text(q) for q in pred.quotes if q.kind == "direct"}
    assert {"Useful,", "We agree,"} <= found[True]
    assert not {"Useful,", "We agree,"} & found[False]
    assert not {"2+2", "Kommersant", "Varyag"} & found[True]


def test_sentence_mark_features_tell_a_quote_before_its_cue_from_a_name_in_marks():
    """ru-301: «Полезно», — сказал он opens its sentence and hands over to the cue after a comma
    and a dash; the newspaper «Коммерсантъ» in mid-sentence does neither."""
    text = _authored("ru-301").text
    _, marked, feats = QuoteDetector(sentence_marks=True)._marks(Document(doc_id="ru-301", lang="ru", text=text))
    by_content = {text[p.content[0] : p.content[1]]: f for p, f in zip(marked, feats)}
    assert by_content["Полезно"]["opens_sentence&clause_then_cue"] == 1.0
    assert by_content["Коммерсантъ"]["opens_sentence"] == 0.0
    assert "opens_sentence" not in QuoteDetector()._marks(Document(doc_id="ru-301", lang="ru", text=text))[2][0]


def test_a_mixed_quote_keeps_the_subject_before_its_marks_in_a_language_never_seen():
    """ar-003: … اليابان «ترفع شعارات السلام غطاء لتوسيع دورها العسكري»: the content's subject
    stands between the cue and the marks. With `mixed_spans` the span scorer sees the unmarked
    lead before the marks (and whether it holds a name), so the quote keeps its subject."""
    doc = _authored("ar-003")
    gold = next(q for q in doc.quotes if q.kind == "mixed" and doc.quote_text(q).startswith("اليابان «ترفع"))
    train = _authored_except("ar")
    spans = {flag: {q.content: q.kind for q in _shipped_detector(mixed_spans=flag).fit(train)(_raw(doc)).quotes} for flag in (False, True)}
    assert spans[True].get(gold.content) == "mixed"
    assert gold.content not in spans[False]


def test_mixed_span_features_measure_the_lead_before_the_marks():
    doc = _authored("ar-003")
    gold = next(q for q in doc.quotes if q.kind == "mixed" and doc.quote_text(q).startswith("اليابان «ترفع"))
    _, _, _, spans, feats = QuoteDetector(mixed_spans=True)._candidates(_raw(doc))
    f = next(f for (cue, span), f in zip(spans, feats) if span == gold.content)
    assert f["mixed_lead_tokens"] > 0 and f["mixed_no_lead"] == 0.0 and f["mixed_lead_name"] == 0.0
    assert all("mixed_lead_tokens" not in f for f in QuoteDetector()._candidates(_raw(doc))[4])
