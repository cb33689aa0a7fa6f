import json

from typer.testing import CliRunner

from inference.validate import read_jsonl, validate_paths
from training.cli import app

runner = CliRunner()


def _write(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def test_bundled_annotation_set_has_no_errors(all_annotation_files):
    problems = validate_paths(all_annotation_files)
    assert [str(p) for p in problems if p.severity == "error"] == []


def test_malformed_line_is_reported_with_its_line_and_the_good_lines_are_kept(tmp_path, seed_lines):
    p = _write(tmp_path, "a.jsonl", (seed_lines[0] + "\n{not json\n" + seed_lines[1] + "\n").encode())
    problems = validate_paths([p])
    assert len(problems) == 1 and problems[0].line == 2 and "malformed JSON" in problems[0].message
    assert [d.doc_id for d in read_jsonl(p, strict=False)] == ["seed-000", "seed-001"]


def test_span_past_end_unknown_speaker_and_unknown_topic_are_errors(tmp_path, seed_lines):
    d1, d2 = json.loads(seed_lines[0]), json.loads(seed_lines[1])
    d1["quotes"][0]["mention"] = [0, len(d1["text"]) + 1]
    d2["quotes"][0]["speaker"] = "medvedev"
    d2["quotes"][1]["stances"] = [{"topic": "weather", "stance": "favor"}]
    p = _write(tmp_path, "b.jsonl", (json.dumps(d1, ensure_ascii=False) + "\n" + json.dumps(d2, ensure_ascii=False) + "\n").encode())
    messages = [(p_.line, p_.doc_id, p_.message) for p_ in validate_paths([p])]
    assert any(line == 1 and doc == "seed-000" and "runs past the end" in m for line, doc, m in messages)
    assert any(line == 2 and "unknown speaker id 'medvedev'" in m for line, doc, m in messages)
    assert any(line == 2 and "unknown topic 'weather'" in m for line, doc, m in messages)


def test_direct_content_including_its_marks_and_overlaps_are_errors(seed_lines, tmp_path):
    d = json.loads(seed_lines[2])
    q = next(q for q in d["quotes"] if q["kind"] == "direct")
    q["content"] = [q["content"][0] - 1, q["content"][1] + 1]
    d["quotes"].append({**d["quotes"][0], "id": "q99"})
    p = _write(tmp_path, "c.jsonl", (json.dumps(d, ensure_ascii=False) + "\n").encode())
    messages = " | ".join(str(x) for x in validate_paths([p]))
    assert "includes its quotation marks" in messages
    assert "same content span" in messages


def test_empty_file_and_non_utf8_file_are_clear_errors(tmp_path):
    empty = _write(tmp_path, "empty.jsonl", b"")
    latin = _write(tmp_path, "latin.jsonl", '{"doc_id": "x", "text": "Poutine a déclaré"}\n'.encode("latin-1"))
    msgs = {p.path.split("/")[-1]: p.message for p in validate_paths([empty, latin])}
    assert "empty" in msgs["empty.jsonl"]
    assert "not UTF-8" in msgs["latin.jsonl"]


def test_cli_validate_exits_nonzero_and_names_file_line_and_doc(tmp_path, seed_lines):
    d = json.loads(seed_lines[0])
    d["quotes"][0]["speaker"] = "nobody"
    p = _write(tmp_path, "d.jsonl", (json.dumps(d, ensure_ascii=False) + "\n").encode())
    result = runner.invoke(app, ["validate", str(p)])
    assert result.exit_code == 1
    assert f"{p}:1 [seed-000]: error: quote q1: unknown speaker id 'nobody'" in result.output


def test_cli_validate_passes_on_the_seed_file():
    result = runner.invoke(app, ["validate", "annotations/seeds.jsonl"])
    assert result.exit_code == 0, result.output
