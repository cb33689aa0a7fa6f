"""A scale-out corpus for `quote-stance batch`: the 245 annotated documents (seeds and authored,
all 11 languages) repeated in turn until N documents, each copy with its own doc_id
(`<doc_id>~<copy>`), gold quotes dropped. Written as JSONL, or Parquet by the output's suffix.

    python experiments/benchmarks/make_corpus.py /tmp/corpus10k.jsonl [--docs 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from training.data import annotation_files  # noqa: E402

FIELDS = ("doc_id", "lang", "published", "text")


def source_records() -> list[dict]:
    records = []
    for path in annotation_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                records.append({k: record.get(k) for k in FIELDS})
    return records


def corpus(n: int) -> list[dict]:
    base = source_records()
    return [{**base[i % len(base)], "doc_id": f"{base[i % len(base)]['doc_id']}~{i // len(base)}"} for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help=".jsonl or .parquet")
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args()
    rows = corpus(args.docs)
    if args.output.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), args.output)
    else:
        with args.output.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    chars = sum(len(r["text"]) for r in rows)
    print(f"wrote {len(rows)} documents ({len(source_records())} distinct texts, {chars:,} characters) to {args.output}")


if __name__ == "__main__":
    main()
