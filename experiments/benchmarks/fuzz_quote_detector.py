"""Coverage-guided fuzzing of the quote detector (atheris/libFuzzer) for a fixed time budget.

Each input becomes a text (arbitrary code points, salted with quotation marks of every
convention, cue words, line breaks and bidi/zero-width controls drawn from the same bytes) and a
language (one of the 11, none, or an unknown code), then goes through the bundled `fast`
preset's quote detector and, every 16th input, the whole Analyzer. A crash is any exception
or a broken invariant: spans inside the text, direct content enclosed by (and not including)
its marks, no validator error. The seed corpus is the annotated documents. Results (inputs
tried, crashes with their inputs) go to results/fuzz_quote_detector.{json,md}.

    pip install -e ".[bench]"
    python experiments/benchmarks/fuzz_quote_detector.py --seconds 600
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
SALT = [
    "“", "”", "‘", "’", "«", "»", "„", "‚", "‹", "›", "「", "」", "『", "』", '"', "'", "\n", "\n\n", " ", "\u00a0",
    "\u202b", "\u202c", "\u2067", "\u2069", "\u200d", "\u200c", "\u200f", "\x00", "\ud7ff", "\ufeff", "\u0301",
    "said", "a déclaré", "sagte", "заявил", "قال", "表示", "と述べた", "말했다", "cho biết", "বলেন", "dijo", " that ", ": ",
]
LANGS = [None, "bn", "ar", "vi", "ja", "en", "ru", "zh", "ko", "fr", "de", "es", "th"]


def build_text(data: bytes) -> tuple[str, str | None]:
    import atheris

    fdp = atheris.FuzzedDataProvider(data)
    lang = LANGS[fdp.ConsumeIntInRange(0, len(LANGS) - 1)]
    parts = []
    while fdp.remaining_bytes() > 0:
        if fdp.ConsumeBool():
            parts.append(SALT[fdp.ConsumeIntInRange(0, len(SALT) - 1)])
        else:
            parts.append(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(1, 24)))
    return "".join(parts), lang


def make_target(instrument: bool):
    """The function every input goes through; raises on a crash or a broken invariant."""
    import contextlib

    import atheris

    with atheris.instrument_imports(include=["inference"]) if instrument else contextlib.nullcontext():
        from inference.analyzer import _nfc_with_offsets, load_analyzer
        from inference.document import Document
        from inference.quotemarks import quotation_marks
        from inference.validate import check_document

    analyzer = load_analyzer("fast")
    detector = analyzer.components[0]
    marks = quotation_marks().all
    count = [0]

    def check(doc, text: str) -> None:
        n = len(text)
        for q in doc.quotes:
            for span in (q.content, q.cue, q.mention):
                if span is not None and not 0 <= span[0] < span[1] <= n:
                    raise AssertionError(f"span {span} outside a text of {n} characters")
            if q.kind == "direct":
                s, e = q.content
                if text[:s].rstrip()[-1:] not in marks or text[e:].lstrip()[:1] not in marks:
                    raise AssertionError(f"direct quote {q.content} not enclosed in its marks")
        errors = [m for m in check_document(doc, gold=False) if m.startswith("error") and "NFC" not in m]
        if errors:
            raise AssertionError(errors[0])

    def one_input(data: bytes, whole: bool | None = None) -> None:
        text, lang = build_text(data)
        count[0] += 1
        if whole if whole is not None else count[0] % 16 == 0:
            doc = analyzer.analyze(text, lang=lang, published="2013-11-02")
            check(doc, doc.text)
        else:
            nfc, _ = _nfc_with_offsets(text)
            check(detector(Document(doc_id="fuzz", text=nfc, lang=lang)), nfc)

    return one_input


def replay(path: Path) -> None:
    """Run one saved input through both paths; exit status 1 when it still fails."""
    target = make_target(instrument=False)
    data = path.read_bytes()
    target(data, whole=False)
    target(data, whole=True)


def child(seconds: int, corpus: Path, artifacts: Path) -> None:
    """The libFuzzer process: instrument the inference package, check every input."""
    import atheris

    one_input = make_target(instrument=True)
    atheris.Setup(
        [sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-artifact_prefix={artifacts}/", "-max_len=4096", "-print_final_stats=1"],
        one_input,
    )
    atheris.Fuzz()


def _reason(log: str) -> str:
    lines = [ln for ln in log.splitlines() if "ERROR" in ln or "Error" in ln or "Exception" in ln]
    return lines[-1].strip() if lines else log.strip().splitlines()[-1] if log.strip() else ""


def seed_corpus(folder: Path) -> int:
    """The annotated documents as seed inputs (a language byte, then the UTF-8 text)."""
    n = 0
    for path in [ROOT / "annotations" / "seeds.jsonl", *sorted((ROOT / "annotations" / "authored").glob("*.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines()[:4]:
            text = json.loads(line)["text"][:1500]
            (folder / f"seed-{n:04d}").write_bytes(bytes([0]) + text.encode("utf-8"))
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=Path, help="check one saved input (a crash artifact) and exit")
    args = parser.parse_args()
    if args.replay:
        replay(args.replay)
        return
    if args.child:
        child(args.seconds, args.corpus, args.artifacts)
        return
    with tempfile.TemporaryDirectory() as tmp:
        corpus, artifacts = Path(tmp) / "corpus", Path(tmp) / "artifacts"
        corpus.mkdir()
        artifacts.mkdir()
        seeds = seed_corpus(corpus)
        started = time.time()
        crashes: list[dict] = []
        not_reproduced: list[dict] = []
        stops: list[dict] = []
        # libFuzzer stops at the first crash; keep fuzzing until the budget is spent.
        runs = 0
        while (left := args.seconds - (time.time() - started)) > 5:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", "--seconds", str(int(left)), "--corpus", str(corpus), "--artifacts", str(artifacts)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            done = re.findall(r"Done (\d+) runs", proc.stderr) or re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
            runs += int(done[-1]) if done else 0
            if proc.returncode == 0:
                break
            stops.append({"returncode": proc.returncode, "reason": _reason(proc.stderr)})
        seconds = time.time() - started
        # Every input libFuzzer saved as a crash is replayed in a fresh process: only one that
        # fails again counts (libFuzzer can stop with "fuzz target exited" when its time is up).
        for artifact in sorted(artifacts.iterdir()):
            again = subprocess.run([sys.executable, __file__, "--replay", str(artifact)], capture_output=True, text=True, cwd=ROOT)
            record = {
                "artifact": artifact.name,
                "input_base64": base64.b64encode(artifact.read_bytes()).decode(),
                "reproduces": again.returncode != 0,
                "replay_error": again.stderr.strip().splitlines()[-1] if again.returncode else None,
            }
            (crashes if record["reproduces"] else not_reproduced).append(record)
    result = {
        "target": "inference.pipeline.quote_detection.QuoteDetector (bundled fast preset); every 16th input the whole Analyzer",
        "engine": "atheris (libFuzzer), inference/ instrumented for coverage",
        "budget_seconds": args.seconds,
        "seconds": round(seconds, 1),
        "seed_inputs": seeds,
        "inputs_tried": runs,
        "crashes": crashes,
        "fuzzer_stops": stops,
        "saved_inputs_that_pass_on_replay": not_reproduced,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fuzz_quote_detector.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    (RESULTS / "fuzz_quote_detector.md").write_text(
        "# Fuzzing the quote detector\n\n"
        f"`python experiments/benchmarks/fuzz_quote_detector.py --seconds {args.seconds}` ({result['engine']}), "
        f"finished {result['finished']}: **{runs:,} inputs tried in {seconds / 60:.1f} min, {len(crashes)} crash(es)** "
        f"(seed corpus: {seeds} annotated documents). libFuzzer stopped early {len(stops)} time(s); "
        f"{len(not_reproduced)} input(s) it saved passed when replayed in a fresh process. Details: fuzz_quote_detector.json.\n",
        encoding="utf-8",
    )
    print(f"{runs} inputs tried in {seconds:.0f} s, {len(crashes)} crash(es)")


if __name__ == "__main__":
    main()
