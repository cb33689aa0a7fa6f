"""Time every named hostile text of `tests/test_robustness.py` on the default model, one core.

The tests assert a valid result within a bound chosen for a loaded CI machine; this script
reports what each case actually gets and takes on a quiet core, for the README and the issue
note. Written to `results/hostile_cases.{json,md}`.

    python experiments/benchmarks/hostile_cases.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inference.analyzer import load_analyzer  # noqa: E402
from tests import test_robustness as cases  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def named_texts() -> list[tuple[str, str, float]]:
    """(name, text, bound in seconds) for every text-level hostile case the tests check."""
    extra = [
        ("a single 100,000-character line", cases.single_line(100_000), 30),
        ("5 MB of news text (11 languages)", cases._corpus_text(5 * 2**20), 300),
        ("4,000 quotes in one text", cases.QUOTE_DENSE_TEXT, 60),
        ("mixed RTL/LTR with bidi controls", cases.BIDI_TEXT, 10),
        ("NUL bytes", cases.NUL_TEXT, 10),
        ("a lone surrogate", cases.SURROGATE_TEXT, 10),
    ]
    extra += [(f"{name} text", text, 10) for name, text in cases.OUTSIDE_LANGUAGES]
    return [*cases.HOSTILE_CASES, *extra]


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    analyzer = load_analyzer("fast")
    analyzer.analyze(cases.SEEDS[2].text, published="2013-11-02")
    rows = []
    for name, text, bound in named_texts():
        start = time.perf_counter()
        try:
            doc = analyzer.analyze(text, published="2013-11-02")
            cases.assert_valid(doc, text)
            outcome = f"valid Document, {len(doc.quotes)} quotes"
        except Exception as exc:  # a row per case, whatever happens
            outcome = f"{type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - start
        rows.append({"case": name, "chars": len(text), "outcome": outcome, "seconds": round(seconds, 3), "bound_s": bound})
        print(f"{name:40s} {len(text):>9,d} chars  {seconds:7.3f} s  (bound {bound} s)  {outcome}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile_cases.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "# Hostile text cases on the fast preset (one quiet core)",
        "",
        "`python experiments/benchmarks/hostile_cases.py`; the bound is what `tests/test_robustness.py` asserts on CI.",
        "",
        "| case | characters | outcome | seconds | test bound (s) |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    lines += [f"| {r['case']} | {r['chars']:,} | {r['outcome']} | {r['seconds']:.3f} | {r['bound_s']} |" for r in rows]
    (RESULTS / "hostile_cases.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
