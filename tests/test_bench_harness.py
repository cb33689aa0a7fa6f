"""`quote-stance bench` measures what it says: tiny corpora through the real worker processes."""

from __future__ import annotations

import pytest

from training.bench import STAGES, base_records, markdown, measure, stream

COMMON = {"preset": "fast", "batch_size": 16, "sample_interval_s": 0.02}


def test_corpus_repeats_every_annotated_document_with_its_own_id(all_annotation_files):
    records = base_records()
    n = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in all_annotation_files)
    assert len(records) == n
    docs = list(stream(records, n - 5, n + 5))
    assert [d.doc_id for d in docs[4:6]] == [f"{records[n - 1]['doc_id']}~0", f"{records[0]['doc_id']}~1"]
    assert docs[5].text == records[0]["text"] and docs[5].lang is None



def test_the_report_names_the_corpus_it_was_measured_on():
    records = base_records()
    corpus = {"documents": len(records), "languages": len({r["lang"] for r in records})}
    env = {"cpu": "x", "cpus_usable": 2, "python": "3", "torch": "t", "scikit-learn": "s", "git_commit": "c", "started": "now"}
    text = markdown({"environment": env, "command": "quote-stance bench", "total_seconds": 60, "corpus": corpus, "presets": {}})
    assert f"Corpus: the {len(records)} annotated documents (11 languages) repeated" in text

@pytest.mark.slow
def test_one_and_two_process_runs_analyze_every_document_and_time_every_stage():
    one = measure({**COMMON, "kind": "run", "docs": 40, "processes": 1, "threads": 1})
    two = measure({**COMMON, "kind": "run", "docs": 40, "processes": 2, "threads": 1})
    for r in (one, two):
        assert r["docs"] == 40 and r["quotes"] == one["quotes"] > 100
        assert set(r["stage_seconds"]) == set(STAGES) and all(v > 0 for v in r["stage_seconds"].values())
        assert r["docs_per_s"] > 0 and r["peak_rss_mb"] > 50
    assert abs(sum(one["stage_seconds"].values()) - one["seconds"]) < 1e-6
    assert two["peak_rss_total_mb"] > two["peak_rss_mb"]
    cold = measure({**COMMON, "kind": "cold", "threads": 1})
    assert 0 < cold["import_and_load_s"] < cold["ready_s"] and not cold["torch_imported_by_load"]
    table = markdown(
        {
            "environment": {"cpu": "x", "cpus_usable": 2, "python": "3", "torch": "t", "scikit-learn": "s", "git_commit": "c", "started": "now"},
            "command": "quote-stance bench",
            "total_seconds": 60,
            "presets": {"fast": {"cold": [cold], "load_memory": {}, "runs": [one, two], "scaling": [one]}},
        }
    )
    assert "| fast | 40 | 1 x 1 |" in table and "| fast | quote_detection |" in table


def test_timing_the_fast_preset_does_not_load_the_encoder_runtime():
    """The benchmark empties the embedding memo between stages; for fast, which never embeds,
    that must not import torch (it added about 180 MB to fast's measured memory)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from training.bench import StageClock\n"
        "from inference import load_analyzer\n"
        "a = load_analyzer('fast'); StageClock(a)\n"
        "a.analyze('Lavrov said the talks were useful.', lang='en')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
