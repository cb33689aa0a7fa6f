"""`quote-stance bench`: speed and memory of the shipped presets, each figure from a fresh process.

The corpus is the annotated documents (seeds and authored, 11 languages) repeated to N documents
and streamed (never held in memory), with `published` given and the language detected, as
`quote-stance analyze` sees a JSONL corpus. Measured per preset: cold start (import and
`load_analyzer()`, then the first document, which loads lazily built parts such as the language
detector and the encoder), documents/s, quotes/s and characters/s per process/thread layout, the
peak resident memory, and the time and memory of each pipeline stage. Stage times come from
wrapping each component's `pipe`; outputs are not changed. "prepare" is what the Analyzer does
around the components: NFC, language detection, copies and span remapping.

The accurate preset memoises encoder embeddings per text (cross-validation re-encodes the same
quotes); a repeated corpus would hit that memo from its second copy on, so the benchmark empties
it before every batch and measures the encoding of every document.

    quote-stance bench                      # the plan in experiments/benchmarks/bench.yaml
    quote-stance bench --quick              # a smoke run of the harness
    quote-stance bench --preset fast --docs 2000
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "experiments" / "benchmarks" / "bench.yaml"
RESULTS = ROOT / "experiments" / "benchmarks" / "results"
ANNOTATION_FILES = [ROOT / "annotations" / "seeds.jsonl", *sorted((ROOT / "annotations" / "authored").glob("*.jsonl"))]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "QUOTE_STANCE_THREADS")
STAGES = ("prepare", "quote_detection", "attribution", "stance")
RESULT_TAG = "BENCH_RESULT "


# ---- the corpus ---------------------------------------------------------------------------------
def base_records() -> list[dict]:
    """doc_id, published and text of every annotated document (gold quotes dropped)."""
    records = []
    for path in ANNOTATION_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                records.append({"doc_id": r["doc_id"], "lang": r.get("lang"), "published": r.get("published"), "text": r["text"]})
    return records


def stream(records: list[dict], start: int, stop: int) -> Iterator:
    """Documents start..stop of the repeated corpus, built one at a time."""
    from inference.document import Document

    for i in range(start, stop):
        r = records[i % len(records)]
        yield Document(doc_id=f"{r['doc_id']}~{i // len(records)}", text=r["text"], published=r["published"])


# ---- measuring inside a worker -------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Sampler(threading.Thread):
    """Resident memory every `interval` seconds: of this process and its children, overall and
    per stage (the stage the wrapped components say is running)."""

    def __init__(self, interval: float, children: bool = False):
        super().__init__(daemon=True)
        self.interval, self.children = interval, children
        self.stage = "load"
        self.peak = 0
        self.peak_by_stage: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._halt.wait(self.interval):
            rss = me.memory_info().rss
            if self.children:
                for child in me.children(recursive=True):
                    try:
                        rss += child.memory_info().rss
                    except psutil.Error:
                        pass
            self.peak = max(self.peak, rss)
            self.peak_by_stage[self.stage] = max(self.peak_by_stage.get(self.stage, 0), rss)

    def stop(self) -> None:
        self._halt.set()
        self.join()


class StageClock:
    """Wraps every component's `pipe` to add up its time; empties the embedding memo before the
    stages that embed (a repeated corpus must not be served from the memo)."""

    def __init__(self, analyzer, sampler: Sampler | None = None):
        from inference.analyzer import stage_name

        self.seconds = dict.fromkeys(STAGES[1:], 0.0)
        self.sampler = sampler
        for component in analyzer.components:
            component.pipe = self._timed(stage_name(component), component.pipe)

    def _timed(self, name: str, pipe):
        def timed(docs, *args, **kwargs):
            if name in ("quote_detection", "stance"):
                _forget_embeddings()
            if self.sampler is not None:
                self.sampler.stage = name
            t = time.perf_counter()
            out = list(pipe(docs, *args, **kwargs))
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
            if self.sampler is not None:
                self.sampler.stage = "prepare"
            return out

        return timed


def _forget_embeddings() -> None:
    """Empties the memo only where something embedded: importing it loads torch, which the fast
    preset never does, and the benchmark must not add that to fast's memory."""
    memo = sys.modules.get("inference.encoder.memo")
    if memo is not None:
        memo.forget_embeddings()


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _first_document(analyzer, records: list[dict]) -> None:
    """Analyze one seed article: builds what loads lazily (language detector, encoder)."""
    list(analyzer.analyze_many(stream(records, 0, 1)))


def worker_cold(spec: dict) -> dict:
    t0 = time.perf_counter()
    from inference import load_analyzer

    analyzer = load_analyzer(spec["preset"])
    t1 = time.perf_counter()
    rss_loaded = rss_bytes()
    torch_at_load = "torch" in sys.modules
    _first_document(analyzer, base_records())
    t2 = time.perf_counter()
    return {
        "import_and_load_s": t1 - t0,
        "first_document_s": t2 - t1,
        "ready_s": t2 - t0,
        "rss_after_load_mb": rss_loaded / 2**20,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "torch_imported_by_load": torch_at_load,
    }


def worker_load_memory(spec: dict) -> dict:
    """Resident memory added by loading each stage (the encoder loads with the first document)."""
    before = rss_bytes()
    import inference.analyzer as an

    out = {"imports_mb": (rss_bytes() - before) / 2**20}
    path = an.bundled_model_dir(spec["preset"])
    components = []
    for name in json.loads((path / an.PIPELINE_FILE).read_text(encoding="utf-8"))["components"]:
        before = rss_bytes()
        components.append(an.component_class(name).load(path / name))
        out[f"load_{name}_mb"] = (rss_bytes() - before) / 2**20
    before = rss_bytes()
    _first_document(an.Analyzer(components), base_records())
    out["first_document_mb"] = (rss_bytes() - before) / 2**20
    return out


def _analyze_range(analyzer, records, start, stop, batch_size) -> tuple[int, int, int]:
    docs = quotes = chars = 0
    for doc in analyzer.analyze_many(stream(records, start, stop), batch_size=batch_size):
        docs += 1
        quotes += len(doc.quotes)
        chars += len(doc.text)
    return docs, quotes, chars


def worker_run(spec: dict) -> dict:
    """One layout: `processes` workers (1: this process) analyze `docs` documents."""
    if spec["processes"] > 1:
        return _run_processes(spec)
    if spec["threads"] == 1:
        _pin_to_one_core()
    sampler = Sampler(spec["sample_interval_s"])
    sampler.start()
    from inference import load_analyzer

    analyzer = load_analyzer(spec["preset"])
    records = base_records()
    _first_document(analyzer, records)
    clock = StageClock(analyzer, sampler)
    sampler.stage = "prepare"
    load_before = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    docs, quotes, chars = _analyze_range(analyzer, records, 0, spec["docs"], spec["batch_size"])
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    sampler.stop()
    stage_s = dict(clock.seconds)
    stage_s["prepare"] = max(0.0, seconds - sum(stage_s.values()))
    return {
        **_rates(docs, quotes, chars, seconds),
        "cpu_seconds": cpu,
        "stage_seconds": {k: stage_s.get(k, 0.0) for k in STAGES},
        "stage_peak_rss_mb": {k: sampler.peak_by_stage.get(k, 0) / 2**20 for k in STAGES},
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "peak_rss_total_mb": peak_rss_bytes() / 2**20,
        "loadavg_1min": [load_before, os.getloadavg()[0]],
    }


def _rates(docs: int, quotes: int, chars: int, seconds: float) -> dict:
    return {
        "docs": docs,
        "quotes": quotes,
        "chars": chars,
        "seconds": seconds,
        "docs_per_s": docs / seconds,
        "quotes_per_s": quotes / seconds,
        "chars_per_s": chars / seconds,
    }


def _process_worker(spec: dict, tasks, results, ready, start) -> None:
    from inference import load_analyzer

    analyzer = load_analyzer(spec["preset"])
    records = base_records()
    _first_document(analyzer, records)
    clock = StageClock(analyzer)
    ready.put(os.getpid())
    start.wait()
    totals = [0, 0, 0]
    cpu = time.process_time()
    while (task := tasks.get()) is not None:
        for k, v in enumerate(_analyze_range(analyzer, records, *task, spec["batch_size"])):
            totals[k] += v
    results.put(
        {"counts": totals, "cpu_seconds": time.process_time() - cpu, "stage_seconds": clock.seconds, "peak_rss_mb": peak_rss_bytes() / 2**20}
    )


def _run_processes(spec: dict) -> dict:
    """`processes` spawned workers share the corpus in chunks of one batch; timing starts when
    every worker has loaded its model and analyzed its first document."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    tasks, results, ready, start = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_process_worker, args=(spec, tasks, results, ready, start)) for _ in range(spec["processes"])]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get()
    sampler = Sampler(spec["sample_interval_s"], children=True)
    sampler.start()
    step = spec["batch_size"]
    for lo in range(0, spec["docs"], step):
        tasks.put((lo, min(spec["docs"], lo + step)))
    for _ in workers:
        tasks.put(None)
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    start.set()
    reports = [results.get() for _ in workers]
    seconds = time.perf_counter() - t
    sampler.stop()
    for w in workers:
        w.join()
    docs, quotes, chars = (sum(r["counts"][k] for r in reports) for k in range(3))
    stage_s = {k: sum(r["stage_seconds"].get(k, 0.0) for r in reports) for k in STAGES[1:]}
    stage_s["prepare"] = max(0.0, seconds * len(workers) - sum(stage_s.values()))
    return {
        **_rates(docs, quotes, chars, seconds),
        "cpu_seconds": sum(r["cpu_seconds"] for r in reports),
        "stage_seconds": {k: stage_s[k] for k in STAGES},
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
        "peak_rss_total_mb": sampler.peak / 2**20,
        "loadavg_1min": [load_before, os.getloadavg()[0]],
    }


WORKERS = {"cold": worker_cold, "load_memory": worker_load_memory, "run": worker_run}


# ---- the orchestrator ---------------------------------------------------------------------------
def measure(spec: dict, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh interpreter with the layout's thread settings."""
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(spec.get("threads", 1))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    proc = subprocess.run(
        [sys.executable, "-m", "training.bench", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed ({spec}):\n{proc.stderr[-3000:]}")
    return {**spec, **json.loads(lines[-1][len(RESULT_TAG) :])}


def environment() -> dict:
    from importlib.metadata import version

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
        platform.processor(),
    )
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {
        "cpu": cpu,
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": version("torch"),
        "scikit-learn": version("scikit-learn"),
        "git_commit": commit + ("+uncommitted changes" if dirty else ""),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def load_plan(quick: bool = False) -> dict:
    import yaml

    raw = yaml.safe_load(PLAN.read_text(encoding="utf-8"))
    presets = raw["quick"] if quick else raw["presets"]
    return {**{k: v for k, v in raw.items() if k not in ("presets", "quick")}, "presets": presets}


def run_bench(
    presets: list[str] | None = None,
    docs: int | None = None,
    quick: bool = False,
    scaling: bool = True,
    out_dir: Path = RESULTS,
    name: str = "bench",
    log=print,
) -> dict:
    """Measure the plan (or a part of it); write `<name>.json` and `<name>.md` into `out_dir`."""
    plan = load_plan(quick)
    command = ["quote-stance", "bench"] + [f"--preset {p}" for p in presets or []]
    command += [f"--docs {docs}"] * bool(docs) + ["--quick"] * quick + ["--no-scaling"] * (not scaling)
    records = base_records()
    corpus = {"documents": len(records), "languages": len({r["lang"] for r in records if r["lang"]})}
    report = {"environment": environment(), "command": " ".join(command), "corpus": corpus, "presets": {}}
    started = time.perf_counter()
    for preset in presets or list(plan["presets"]):
        p = plan["presets"][preset]
        n = docs or p["docs"]
        common = {"preset": preset, "batch_size": plan["batch_size"], "sample_interval_s": plan["memory_sample_interval_s"]}
        entry: dict = {"cold": [], "runs": [], "scaling": []}
        for _ in range(plan["cold_start_repeats"]):
            entry["cold"].append(measure({**common, "kind": "cold", "threads": 1}))
            log(f"{preset}: cold start {entry['cold'][-1]['import_and_load_s']:.2f} s")
        entry["load_memory"] = measure({**common, "kind": "load_memory", "threads": 1})
        for procs, threads in p["layouts"]:
            r = measure({**common, "kind": "run", "docs": n, "processes": procs, "threads": threads})
            entry["runs"].append(r)
            log(f"{preset}: {n} docs, {procs} process(es) x {threads} thread(s): {r['docs_per_s']:.1f} docs/s, peak {r['peak_rss_total_mb']:.0f} MB")
        if scaling:
            for size in p["scaling"]:
                same = next((r for r in entry["runs"] if r["docs"] == size and r["processes"] == 1 and r["threads"] == 1), None)
                r = same or measure({**common, "kind": "run", "docs": size, "processes": 1, "threads": 1})
                entry["scaling"].append(r)
                log(f"{preset}: scaling {size} docs: {r['seconds']:.1f} s, peak {r['peak_rss_mb']:.0f} MB")
        report["presets"][preset] = entry
    report["total_seconds"] = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out_dir / f"{name}.md").write_text(markdown(report), encoding="utf-8")
    return report


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def markdown(report: dict) -> str:
    env = report["environment"]
    corpus = report.get("corpus")
    described = f"the {corpus['documents']} annotated documents ({corpus['languages']} languages)" if corpus else "the annotated documents"
    lines = [
        "# quote-stance speed and memory",
        "",
        f"`{report['command']}` on {env['cpu']}, {env['cpus_usable']} usable cores, Python {env['python']}, "
        f"torch {env['torch']}, scikit-learn {env['scikit-learn']}, commit {env['git_commit']}, started {env['started']} "
        f"({report['total_seconds'] / 60:.0f} min in all). Corpus: {described} repeated, "
        "streamed; language detected, publication date given. Every row is a fresh process; docs/s is wall-clock "
        "time after the model is loaded and has analyzed one document; docs per CPU-second counts only the CPU time "
        "the benchmark's own processes got (all their threads), which is what other work on a shared machine cannot "
        "take away; load = 1-minute load average of the machine before and after the run (2.0 = both cores busy).",
        "",
        "| preset | cold start: import + load_analyzer (s) | + first document (s) | RSS after load (MB) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for preset, e in report["presets"].items():
        c = e["cold"]
        lines.append(
            f"| {preset} | {_median([x['import_and_load_s'] for x in c]):.2f} (median of {len(c)}) | "
            f"{_median([x['ready_s'] for x in c]):.2f} | {_median([x['rss_after_load_mb'] for x in c]):.0f} |"
        )
    lines += [
        "",
        "| preset | documents | processes x threads | docs/s | quotes/s | chars/s | docs per CPU-second | peak RSS per process (MB) | peak RSS all processes (MB) | load |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for preset, e in report["presets"].items():
        for r in e["runs"]:
            lines.append(
                f"| {preset} | {r['docs']:,} | {r['processes']} x {r['threads']} | {r['docs_per_s']:.1f} | {r['quotes_per_s']:.0f} | "
                f"{r['chars_per_s']:,.0f} | {r['docs'] / r['cpu_seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['peak_rss_total_mb']:.0f} | "
                f"{r['loadavg_1min'][0]:.1f} / {r['loadavg_1min'][1]:.1f} |"
            )
    lines += [
        "",
        "Per stage, one process on one core (the first layout). Stage docs/s = documents over the time spent in "
        "that stage alone; peak RSS = the process's resident memory sampled while the stage ran; load = resident "
        "memory the stage's model adds when loaded.",
        "",
        "| preset | stage | share of time | stage docs/s | peak RSS while running (MB) | load (MB) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for preset, e in report["presets"].items():
        r = next((r for r in e["runs"] if r["processes"] == 1 and "stage_peak_rss_mb" in r), None)
        if r is None:
            continue
        total = sum(r["stage_seconds"].values()) or 1.0
        mem = e.get("load_memory", {})
        for stage in STAGES:
            s = r["stage_seconds"][stage]
            load = mem.get(f"load_{stage}_mb")
            lines.append(
                f"| {preset} | {stage} | {100 * s / total:.1f} % | {r['docs'] / s if s else float('inf'):,.0f} | "
                f"{r['stage_peak_rss_mb'][stage]:.0f} | {'' if load is None else f'{load:.0f}'} |"
            )
    lines += [
        "",
        "Scaling, one process on one core: time should grow linearly with the corpus and memory stay flat.",
        "",
        "| preset | documents | seconds | docs/s | docs per CPU-second | peak RSS (MB) | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for preset, e in report["presets"].items():
        for r in e["scaling"]:
            lines.append(
                f"| {preset} | {r['docs']:,} | {r['seconds']:.1f} | {r['docs_per_s']:.1f} | {r['docs'] / r['cpu_seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                f"{r['loadavg_1min'][0]:.1f} / {r['loadavg_1min'][1]:.1f} |"
            )
    return "\n".join(lines) + "\n"


def _worker_main(arg: str) -> None:
    spec = json.loads(arg)
    result = WORKERS[spec["kind"]](spec)
    print(RESULT_TAG + json.dumps(result), flush=True)


if __name__ == "__main__":
    _worker_main(sys.argv[1])
