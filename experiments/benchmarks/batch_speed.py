"""Documents per second of `quote-stance batch --engine local` and `--engine spark` on one corpus.

Each engine runs as its own `quote-stance batch` process, into a fresh output, one after the
other. Reported per run: wall time (the whole command, Spark start and model load included),
documents/s over it, the CPU seconds used by the command's whole process tree (driver, JVM and
Spark's Python workers, sampled from /proc every 0.2 s), and the 1-minute load average before and
after, since on a shared machine other processes take CPU from the run. Results are appended to
`results/batch_speed.json`.

    python experiments/benchmarks/make_corpus.py /tmp/corpus10k.jsonl
    python experiments/benchmarks/batch_speed.py /tmp/corpus10k.jsonl [--engines local spark] [--master local[*]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results" / "batch_speed.json"
TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int, seen: dict[int, float]) -> None:
    """Record the CPU seconds (user + system) of `root` and its descendants, kept per pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    for pid, seconds in cpu.items():
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            seen[pid] = max(seen.get(pid, 0.0), seconds)


def run(cmd: list[str]) -> dict:
    load_before = os.getloadavg()[0]
    seen: dict[int, float] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            _tree_cpu(proc.pid, seen)
            done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    summary = next(line for line in err.splitlines()[::-1] if "docs/s" in line)
    return {"wall_s": round(wall, 1), "cpu_s": round(sum(seen.values()), 1), "load1_before": round(load_before, 2),
            "load1_after": round(os.getloadavg()[0], 2), "summary": summary.strip()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--engines", nargs="+", default=["local", "spark"])
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    exe = shutil.which("quote-stance", path=str(Path(sys.executable).parent)) or "quote-stance"
    n_docs = sum(1 for line in args.corpus.open("rb") if line.strip())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines:
            cmd = [exe, "batch", str(args.corpus), str(Path(tmp) / f"{engine}.parquet"), "--engine", engine, "--quiet"]
            if engine == "spark":
                cmd += ["--master", args.master]
            if args.batch_size:
                cmd += ["--batch-size", str(args.batch_size)]
            result = run(cmd)
            result.update(engine=engine, docs=n_docs, docs_per_s=round(n_docs / result["wall_s"], 1),
                          command=" ".join(["quote-stance", *cmd[1:]]).replace(tmp, "OUT"),
                          summary=result["summary"].replace(tmp, "OUT"))  # fmt: skip
            print(json.dumps(result), flush=True)
            runs.append(result)
    record = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared with other processes)",
        "corpus": str(args.corpus),
        "runs": runs,
    }
    history = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps([*history, record], indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
