import textwrap

import pytest

from training.annotation_build import SourceError, build_all, build_document
from tests.conftest import ANNOTATIONS


def test_committed_jsonl_equals_a_fresh_build_from_the_sources(tmp_path):
    result = build_all(ANNOTATIONS, write=False)
    assert result.errors == []
    built = {d.doc_id: d.to_json() for d in result.docs}
    for path in [ANNOTATIONS / "seeds.jsonl", *sorted((ANNOTATIONS / "authored").glob("*.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines():
            doc_id = line.split('"doc_id": "', 1)[1].split('"', 1)[0]
            assert built.pop(doc_id) == line, f"{doc_id} in {path.name} is stale: run quote-stance annotations build"
    assert built == {}, "sources without built JSONL"


def _source(tmp_path, body: str):
    p = tmp_path / "x.yaml"
    p.write_text(textwrap.dedent(body), encoding="utf-8")
    return p


def test_cue_after_a_japanese_quote_is_taken_from_the_same_sentence(tmp_path):
    p = _source(tmp_path, """\
        doc_id: t-1
        lang: ja
        published: 2013-11-02
        origin: authored
        text: |-
          会談は成功したと語った。
          「協力を進める」と、岸田外相は語った。
        quotes:
          - {kind: direct, content: 協力を進める, mention: 岸田, cue: 語った, speaker: kishida, stances: {}}
        """)
    doc = build_document(p)
    q = doc.quotes[0]
    assert doc.span_text(q.cue) == "語った" and q.cue[0] > q.content[1]


def test_ambiguous_and_missing_substrings_are_refused_with_the_yaml_line(tmp_path):
    p = _source(tmp_path, """\
        doc_id: t-2
        lang: en
        published: null
        origin: authored
        text: |-
          "Yes," he said. "Yes," she said.
        quotes:
          - {kind: direct, content: "Yes,", mention: he, cue: said, speaker: other, stances: {}}
          - {kind: direct, content: "Maybe", mention: she, cue: said, speaker: other, stances: {}}
        """)
    with pytest.raises(SourceError) as exc:
        build_document(p)
    assert "x.yaml:8: content occurs 2 times" in str(exc.value)
    assert "x.yaml:9: content not found" in str(exc.value)
