"""The quote viewer on the seed documents: highlights, nesting, RTL, side by side, escaping."""

from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inference.document import Document, Quote, Stance
from inference.render import render_html, speaker_class, text_direction, tokens
from training.cli import app

ROOT = Path(__file__).resolve().parent.parent
BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
VOID = {"meta", "br", "img", "link", "input", "hr", "wbr"}


def flat(text: str) -> str:
    """The text without its line breaks, which the viewer keeps outside highlights."""
    return BREAKS.sub("", text)


class Page(HTMLParser):
    """Parses a viewer page: the text inside each highlight, per (side, doc, role, quote id).

    Fails on markup that does not nest (an end tag that is not the innermost open element)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[tuple[str, str, str, str], str] = defaultdict(str)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_dirs: dict[tuple[str, str], str] = {}
        self.styles: list[str] = []
        self.feed(html)
        self.close()
        assert not self.stack, f"unclosed elements: {self.stack}"

    def _attr(self, name: str) -> str | None:
        return next((a[name] for _, a in reversed(self.stack) if name in a), None)

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attrs))
        if tag in VOID:
            return
        self.stack.append((tag, attrs))
        if "text" in attrs.get("class", "").split():
            self.text_dirs[(self._attr("data-side"), self._attr("data-doc"))] = attrs.get("dir")

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "style":
            self.styles.append(data)
        if any("lbl" in a.get("class", "").split() for _, a in self.stack):
            return
        side, doc = self._attr("data-side"), self._attr("data-doc")
        for _, a in self.stack:
            if "data-role" in a:
                for qid in a["data-q"].split():
                    self.texts[(side, doc, a["data-role"], qid)] += data


@pytest.fixture(scope="module")
def seed_page(seed_docs) -> Page:
    return Page(render_html(seed_docs))


def test_every_quote_mention_and_cue_of_the_seeds_is_highlighted_with_its_exact_text(seed_docs, seed_page):
    checked = 0
    for doc in seed_docs:
        for q in doc.quotes:
            assert seed_page.texts[("document", doc.doc_id, "quote", q.id)] == flat(doc.quote_text(q))
            for role, span in (("mention", q.mention), ("cue", q.cue)):
                if span:
                    assert seed_page.texts[("document", doc.doc_id, role, q.id)] == flat(doc.span_text(span))
            checked += 1
    assert checked == 56


def test_nested_quotes_render_as_nested_elements(seed_docs):
    doc = next(d for d in seed_docs if d.doc_id == "seed-004")
    outer, inner = next(
        (a, b)
        for a in doc.quotes
        for b in doc.quotes
        if a is not b and a.content[0] <= b.content[0] and b.content[1] <= a.content[1]
    )
    toks = tokens(doc)
    depth, inner_depth = 0, None
    for t in toks:
        if t["t"] == "open":
            depth += 1
            if t["role"] == "quote" and t["qids"] == inner.id and "cont" not in t["cls"]:
                inner_depth = depth
        elif t["t"] == "close":
            depth -= 1
    assert depth == 0
    assert inner_depth is not None and inner_depth >= 2, (outer.id, inner.id)


def test_a_quote_over_two_paragraphs_is_one_box_per_paragraph_with_the_break_outside(seed_docs):
    doc = next(d for d in seed_docs if d.doc_id == "seed-004")
    q = next(q for q in doc.quotes if q.id == "q21")
    assert "\n" in doc.quote_text(q)
    toks = tokens(doc)
    parts = [t for t in toks if t["t"] == "open" and t["role"] == "quote" and t["qids"] == "q21"]
    assert len(parts) == len(BREAKS.split(doc.quote_text(q).strip()))
    depth = 0
    for t in toks:
        depth += {"open": 1, "close": -1}.get(t["t"], 0)
        if t["t"] == "text" and BREAKS.fullmatch(t["s"]):
            assert depth == 0


def test_arabic_seed_is_right_to_left_and_the_others_left_to_right(seed_docs, seed_page):
    dirs = {doc.doc_id: seed_page.text_dirs[("document", doc.doc_id)] for doc in seed_docs}
    assert dirs["seed-001"] == "rtl"
    assert {d for k, d in dirs.items() if k != "seed-001"} == {"ltr"}
    html = render_html(seed_docs)
    assert '<div class="text" dir="rtl" lang="ar">' in html


def test_direction_is_detected_from_the_first_strong_character_without_a_language():
    arabic = "أعلن وزيرا الدفاع"
    assert text_direction("«" + arabic, None) == "rtl"
    assert text_direction("2+2: שלום", None) == "rtl"
    assert text_direction("2+2 talks", None) == "ltr"
    assert text_direction("2+2 — 2013", None) == "auto"
    assert text_direction(arabic, "en") == "ltr"


def test_page_loads_nothing_from_the_network_even_when_the_text_contains_a_url(seed_docs, seed_page):
    seed4 = next(d for d in seed_docs if d.doc_id == "seed-004")
    assert "http://www.asyura2.com" in seed4.text
    loading = {"src", "href", "srcset", "action", "data", "poster", "background"}
    for tag, attrs in seed_page.tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed", "a", "base"}
        assert not loading & set(attrs), (tag, attrs)
    css = "".join(seed_page.styles)
    assert css and "url(" not in css and "@import" not in css and "http" not in css


def test_gold_and_prediction_side_by_side_matched_by_doc_id(seed_docs):
    from training.experiment import ExperimentConfig, raw

    gold = [d for d in seed_docs if d.doc_id in ("seed-001", "seed-002")]
    rules = ExperimentConfig.from_yaml(ROOT / "experiments" / "rules.yaml").build()  # no fitting needed
    pred = list(rules.analyze_many([raw(d) for d in gold]))
    extra = pred[1].model_copy(update={"doc_id": "only-predicted"})
    page = Page(render_html(gold, [pred[0], extra]))
    for p in [pred[0], extra]:
        assert p.quotes
        for q in p.quotes:
            assert page.texts[("prediction", p.doc_id, "quote", q.id)] == flat(p.quote_text(q))
    for q in gold[0].quotes:
        assert page.texts[("gold", "seed-001", "quote", q.id)] == flat(gold[0].quote_text(q))
    assert page.text_dirs[("gold", "seed-001")] == page.text_dirs[("prediction", "seed-001")] == "rtl"
    html = render_html(gold, [pred[0], extra])
    assert "no prediction for this document" in html  # seed-002 has no prediction
    assert "no gold for this document" in html  # only-predicted has no gold
    conf = pred[0].quotes[0].stances[0].confidence
    assert f"{conf:.2f}" in html


def test_text_labels_and_ids_are_escaped():
    evil = "<script>alert(1)</script>"
    text = f'{evil} said: "<img src=x onerror=alert(2)>" & more'
    start = text.index('"') + 1
    doc = Document(
        doc_id='"><script>alert(3)</script>',
        lang="en",
        text=text,
        quotes=[
            Quote(
                id="q<1>",
                kind="direct",
                content=(start, text.index('"', start)),
                mention=(0, len(evil)),
                speaker='"><b>x</b>',
                stances=[Stance(topic="<i>topic</i>", stance="favor")],
            )
        ],
    )
    html = render_html([doc], title="<title>")
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Page(html)
    assert not {t for t, _ in page.tags} & {"script", "img", "b", "i"}
    assert page.texts[("document", doc.doc_id, "quote", "q<1>")] == "<img src=x onerror=alert(2)>"
    assert page.texts[("document", doc.doc_id, "mention", "q<1>")] == evil


def test_overlapping_spans_are_split_into_parts_that_keep_every_character(seed_docs):
    doc = next(d for d in seed_docs if d.doc_id == "seed-002")
    first = doc.quotes[0]
    a, b = first.content
    crossing = Quote(id="x1", kind="indirect", content=((a + b) // 2, min(b + 40, len(doc.text))), speaker="lavrov")
    empty = Quote(id="x2", kind="direct", content=(a, a), speaker="kono")
    doc = doc.model_copy(update={"quotes": [*doc.quotes, crossing, empty]})
    page = Page(render_html([doc]))
    for q in doc.quotes[:-1]:
        assert page.texts[("document", doc.doc_id, "quote", q.id)] == flat(doc.quote_text(q))
    assert sum(1 for t in tokens(doc) if t["t"] == "open" and "cont" in t["cls"]) >= 1
    assert ">x2 · direct" not in render_html([doc])


def test_speaker_colours_follow_the_registry_and_are_stable(seed_docs):
    assert speaker_class("kishida") == "sp0"
    assert speaker_class("lavrov") == "sp2"
    assert speaker_class(None) == "spn"
    assert speaker_class("someone-new") == speaker_class("someone-new")
    html = render_html(seed_docs)
    legend = re.search(r'<div class="group"><span class="name">speakers</span>(.*?)</div>', html).group(1)
    assert '<span class="sp0" title="kishida"><span class="swatch"></span><bdi>' in legend
    assert "no speaker" in legend


def test_render_command_writes_the_page_to_stdout_or_a_file(tmp_path):
    runner = CliRunner()
    seeds = str(ROOT / "annotations" / "seeds.jsonl")
    out = runner.invoke(app, ["render", seeds])
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("<!DOCTYPE html>") and 'dir="rtl"' in out.stdout
    target = tmp_path / "view.html"
    res = runner.invoke(app, ["render", seeds, "--pred", seeds, "-o", str(target)])
    assert res.exit_code == 0, res.output
    html = target.read_text(encoding="utf-8")
    assert html.count('data-side="gold"') == html.count('data-side="prediction"') == 5
