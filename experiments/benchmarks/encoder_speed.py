"""Speed of `Encoder.encode` on CPU: sentences/s at batch sizes 1, 16 and 64, fp32 and dynamic
int8, on a fixed number of threads (2 by default, the project's target), and how closely the int8
embeddings agree with fp32 (cosine per text).

Texts are annotated quotes from the bundled corpus, the same number per language in turn, so
lengths are those the stance and attribution components see. Each timing is the median of
`--repeats` passes after a warm-up,
fp32 and int8 passes alternating so that load from other processes hits both alike (the median is
kept in the JSON too).

    python experiments/benchmarks/encoder_speed.py [--encoder DIR] [--threads 2] [--texts 128]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from itertools import zip_longest
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inference.encoder import Encoder  # noqa: E402
from inference.encoder.embed import DEFAULT_MAX_BATCH_TOKENS  # noqa: E402
from inference.validate import read_jsonl  # noqa: E402

RESULTS = ROOT / "experiments" / "benchmarks" / "results"


def corpus_quotes(n: int) -> tuple[list[str], int]:
    """`n` annotated quotes, languages interleaved so any prefix is balanced; and how many languages."""
    docs = read_jsonl(ROOT / "annotations" / "seeds.jsonl")
    for path in sorted((ROOT / "annotations" / "authored").glob("*.jsonl")):
        docs += read_jsonl(path)
    by_lang: dict[str, list[str]] = {}
    for doc in docs:
        for quote in doc.quotes:
            text = doc.quote_text(quote).strip()
            if text:
                by_lang.setdefault(doc.lang, []).append(text)
    interleaved = [t for group in zip_longest(*by_lang.values()) for t in group if t is not None]
    if len(interleaved) < n:
        raise SystemExit(f"only {len(interleaved)} quotes in the annotations, asked for {n}")
    return interleaved[:n], len(by_lang)


def time_encode(encoder: Encoder, texts: list[str], batch_size: int, max_length: int, cap: int | None) -> float:
    started = time.perf_counter()
    encoder.encode(texts, batch_size=batch_size, max_length=max_length, max_batch_tokens=cap)
    return time.perf_counter() - started


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def markdown(report: dict) -> str:
    modes = list(report["modes"])
    lines = [
        f"# Encoder speed ({report['encoder_name']})",
        "",
        f"{report['texts']} annotated quotes ({report['languages']} languages, mean {report['mean_tokens']:.1f} tokens "
        f"with prefix and specials, max_length {report['max_length']}), {report['threads']} torch threads on "
        f"{report['cpu']}, torch {report['torch']}; best of {report['repeats']} passes. Batches hold at most `batch size` texts "
        f"and {report['max_batch_tokens']} padded tokens unless marked otherwise.",
        "",
        "| batch size | " + " | ".join(f"{m} sentences/s" for m in modes) + " | int8 speed-up |",
        "|---:|" + "---:|" * len(modes) + "---:|",
    ]
    for label in report["settings"]:
        rates = [report["modes"][m]["sentences_per_s"][label] for m in modes]
        speedup = rates[1] / rates[0] if len(rates) > 1 else float("nan")
        lines.append(f"| {label} | " + " | ".join(f"{r:.1f}" for r in rates) + f" | {speedup:.2f}x |")
    agreement = report.get("int8_vs_fp32_cosine")
    if agreement:
        lines += [
            "",
            f"int8 vs fp32 cosine over the {report['texts']} texts: mean {agreement['mean']:.4f}, "
            f"min {agreement['min']:.4f}, 5th percentile {agreement['p5']:.4f}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default=None, help="name or path for resolve_encoder (default: offline build)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    texts, n_languages = corpus_quotes(args.texts)
    report: dict = {
        "benchmark": "encoder_speed",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "texts": len(texts),
        "threads": args.threads,
        "batch_sizes": args.batch_sizes,
        "repeats": args.repeats,
        "max_length": args.max_length,
        "max_batch_tokens": DEFAULT_MAX_BATCH_TOKENS,
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "modes": {},
    }
    encoders = {}
    for mode in ("fp32", "int8"):
        started = time.perf_counter()
        encoders[mode] = Encoder(args.encoder, quantize=None if mode == "fp32" else "int8", num_threads=args.threads)
        report["modes"][mode] = {"load_seconds": round(time.perf_counter() - started, 2), "sentences_per_s": {}, "median_sentences_per_s": {}}
    lengths = [len(ids) for ids in encoders["fp32"].tokenize(texts, max_length=args.max_length)]
    report.update(
        encoder_name=str(args.encoder or "multilingual-e5-small-q4 (offline build)"),
        encoder_path=str(encoders["fp32"].path),
        mean_tokens=float(np.mean(lengths)),
        max_tokens=int(max(lengths)),
        languages=n_languages,
    )
    settings = [(str(bs), bs, DEFAULT_MAX_BATCH_TOKENS) for bs in args.batch_sizes]
    settings.append((f"{max(args.batch_sizes)}, no token cap", max(args.batch_sizes), None))
    report["settings"] = [label for label, _, _ in settings]
    for label, bs, cap in settings:
        runs: dict[str, list[float]] = {mode: [] for mode in encoders}
        for encoder in encoders.values():
            encoder.encode(texts[: max(bs, 8)], batch_size=bs, max_length=args.max_length, max_batch_tokens=cap)
        for _ in range(args.repeats):
            for mode, encoder in encoders.items():
                runs[mode].append(time_encode(encoder, texts, bs, args.max_length, cap))
        for mode in encoders:
            report["modes"][mode]["sentences_per_s"][label] = len(texts) / min(runs[mode])
            report["modes"][mode]["median_sentences_per_s"][label] = len(texts) / statistics.median(runs[mode])
            print(f"{mode:5s} batch {label}: {len(texts) / min(runs[mode]):7.1f} sentences/s", flush=True)
    embeddings = {mode: enc.encode(texts, max_length=args.max_length) for mode, enc in encoders.items()}
    cos = np.sum(embeddings["fp32"] * embeddings["int8"], axis=1)
    report["int8_vs_fp32_cosine"] = {
        "mean": float(cos.mean()),
        "min": float(cos.min()),
        "p5": float(np.percentile(cos, 5)),
    }

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "encoder_speed.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = markdown(report)
    (args.out_dir / "encoder_speed.md").write_text(table, encoding="utf-8")
    print(table)
    return report


if __name__ == "__main__":
    main()
