"""Micro-benchmarks, one per pipeline stage of the bundled `fast` preset, on one seed article.

pytest-benchmark prints their timings in the test output, so a regression shows in CI logs; no
timing is asserted (the CI machine is shared). Each stage gets the previous stage's output, as
in the Analyzer. The corpus-level benchmark is `quote-stance bench` (training/bench.py).
"""

from __future__ import annotations

import pytest

from inference.analyzer import load_analyzer, stage_name
from inference.langid import detect_language

ROUNDS = {"rounds": 15, "warmup_rounds": 2, "iterations": 1}


@pytest.fixture(scope="module")
def fast():
    return load_analyzer("fast")


@pytest.fixture(scope="module")
def seed(seed_docs):
    """The Vietnamese seed article (seed-002), quotes dropped, as the first stage sees it."""
    doc = next(d for d in seed_docs if d.doc_id == "seed-002")
    return doc.model_copy(update={"quotes": []})


@pytest.fixture(scope="module")
def stage_inputs(fast, seed):
    """Input of each stage: the previous stage's output."""
    inputs, doc = {}, seed
    for component in fast.components:
        inputs[stage_name(component)] = doc
        doc = next(iter(component.pipe([doc])))
    return inputs


def test_bench_language_detection(benchmark, seed):
    assert benchmark.pedantic(detect_language, args=(seed.text,), **ROUNDS) == "vi"


@pytest.mark.parametrize("stage", ["quote_detection", "attribution", "stance"])
def test_bench_stage(benchmark, fast, stage_inputs, stage):
    component = next(c for c in fast.components if stage_name(c) == stage)
    doc = stage_inputs[stage]
    out = benchmark.pedantic(lambda: next(iter(component.pipe([doc]))), **ROUNDS)
    assert out.quotes


def test_bench_whole_analyzer(benchmark, fast, seed):
    doc = benchmark.pedantic(fast.analyze, args=(seed.text,), kwargs={"published": "2013-11-02"}, **ROUNDS)
    assert any(q.speaker == "shoigu" for q in doc.quotes)
