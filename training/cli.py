"""The `quote-stance` command: annotation tools, training, evaluation and analysis."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from training.annotation_build import ANNOTATIONS, build_all

app = typer.Typer(help="Multilingual quote extraction, speaker attribution and stance.", no_args_is_help=True)
annotations_app = typer.Typer(help="Build and convert the annotation set.", no_args_is_help=True)
app.add_typer(annotations_app, name="annotations")

console = Console()
err_console = Console(stderr=True)


@annotations_app.command("build")
def annotations_build(
    root: Path = typer.Option(ANNOTATIONS, help="The annotations/ folder."),
    check: bool = typer.Option(False, "--check", help="Only check the sources; write nothing."),
) -> None:
    """Compute spans from the YAML sources and write the JSONL files."""
    result = build_all(root, write=not check)
    for err in result.errors:
        err_console.print(err, markup=False, highlight=False, soft_wrap=True)
    if result.errors:
        err_console.print(f"[red]{len(result.errors)} source file(s) with errors; nothing written[/red]")
        raise typer.Exit(1)
    n_quotes = sum(len(d.quotes) for d in result.docs)
    verb = "checked" if check else "built"
    console.print(f"{verb} {len(result.docs)} documents, {n_quotes} quotes")


@annotations_app.command("labelstudio-config")
def labelstudio_config(out: Path = typer.Option(ANNOTATIONS / "labelstudio.xml", help="Where to write the config.")) -> None:
    """Write the Label Studio labeling config generated from the speaker registry."""
    from training.labelstudio import labeling_config

    out.write_text(labeling_config(), encoding="utf-8")
    console.print(f"wrote {out}")


@annotations_app.command("to-labelstudio")
def to_labelstudio(src: Path = typer.Argument(..., help="JSONL documents."), out: Path = typer.Argument(..., help="Label Studio tasks JSON.")) -> None:
    """Convert JSONL documents to Label Studio tasks (gold as annotations, predictions as predictions)."""
    from inference.validate import read_jsonl
    from training.labelstudio import export_tasks

    n = export_tasks(_read_or_exit(read_jsonl, src), out)
    console.print(f"wrote {n} tasks to {out}")


@annotations_app.command("from-labelstudio")
def from_labelstudio(src: Path = typer.Argument(..., help="Label Studio JSON export."), out: Path = typer.Argument(..., help="JSONL documents.")) -> None:
    """Convert a Label Studio JSON export back to JSONL documents in the annotation format."""
    from inference.validate import write_jsonl
    from training.labelstudio import import_tasks

    docs = _read_or_exit(import_tasks, src)
    write_jsonl(docs, out)
    console.print(f"wrote {len(docs)} documents to {out}")


def _read_or_exit(reader, path: Path):
    """Run a reader; turn its clear ValueError into a message and exit code 1, not a traceback."""
    try:
        return reader(path)
    except (ValueError, OSError) as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc


@app.command()
def validate(
    paths: list[Path] = typer.Argument(None, help="JSONL files or folders (default: annotations/)."),
    warnings: bool = typer.Option(True, help="Show warnings as well as errors."),
) -> None:
    """Check annotation files: schema, ids, spans, labels, overlaps. Exits 1 on any error."""
    from inference.validate import validate_paths

    problems = validate_paths(paths or [ANNOTATIONS])
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        if p.severity == "error" or warnings:
            (err_console if p.severity == "error" else console).print(str(p), markup=False, highlight=False, soft_wrap=True)
    if errors:
        err_console.print(f"[red]{len(errors)} error(s)[/red]")
        raise typer.Exit(1)
    console.print(f"[green]OK[/green]: no errors ({len(problems)} warning(s))")


@app.command()
def stats(
    paths: list[Path] = typer.Argument(None, help="JSONL files or folders (default: annotations/)."),
) -> None:
    """Counts per language, origin, speaker, kind, topic and stance."""
    from training.stats import annotation_stats, render_stats

    render_stats(annotation_stats(paths or [ANNOTATIONS]), console)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="experiments/<name>.yaml"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables (for scripts)."),
    register: bool = typer.Option(True, help="Register the model as `quote-stance` in the MLflow registry."),
    bundle: bool = typer.Option(False, help="Also copy the fitted pipeline into the package as its preset."),
) -> None:
    """Cross-validate an experiment (LODO on seeds, LOLO on authored), fit it on all data, log to MLflow."""
    from training.train import run_experiment

    metrics = run_experiment(config, quiet=quiet, register=register, bundle=bundle)
    if not quiet:
        from training.report import metrics_table

        console.print(metrics_table(metrics))


@app.command("stance-cv")
def stance_cv(
    config: Path = typer.Option(..., "--config", "-c", exists=True, dir_okay=False, help="experiments/<name>.yaml"),
    set_: list[str] = typer.Option(None, "--set", help="Override a stance parameter: key=value (YAML value); repeatable."),
    spans_from: str = typer.Option(None, "--spans-from", help="MLflow run (id or its first characters) whose held-out quotes to read too."),
    seeds: bool = typer.Option(True, help="Leave-one-document-out over the seeds."),
    lolo: bool = typer.Option(True, help="Leave-one-language-out over the authored set."),
    kfold: int = typer.Option(0, help="Also k-fold by document over the authored set (0: off)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; JSON only."),
) -> None:
    """Refit only the stance stage per fold and score it on gold spans and on a run's detector spans."""
    import json

    from tqdm import tqdm

    from training.data import load_documents
    from training.experiment import EvaluationConfig, ExperimentConfig, folds
    from training.stance_cv import parse_overrides, run_quotes, stance_cv as run_stance_cv
    from training.train import tracking_uri

    try:
        cfg = ExperimentConfig.from_yaml(config).model_copy(
            update={"evaluation": EvaluationConfig(seeds_lodo=seeds, authored_lolo=lolo, authored_kfold=kfold)}
        )
        overrides = parse_overrides(set_ or [])
        detector = run_quotes(spans_from, tracking_uri()) if spans_from else None
        docs = load_documents()
        with tqdm(total=len(list(folds(docs, cfg.evaluation))), desc="stance folds", disable=quiet, leave=False) as bar:
            result = run_stance_cv(cfg, docs, overrides, detector, on_fold_done=lambda fold: bar.update(1))
    except ValueError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"config": str(config), "overrides": overrides, "spans_from": spans_from, "macro_f1": result}, indent=1))


@app.command()
def compare(experiments: list[str] = typer.Argument(None, help="Experiment names (default: all).")) -> None:
    """Print the comparison table (Markdown) of the latest run of each experiment in MLflow."""
    from training.compare import comparison_table
    from training.train import tracking_uri

    typer.echo(comparison_table(tracking_uri(), experiments))


@app.command()
def dashboard(
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; the default keeps it local."),
) -> None:
    """Start the MLflow UI over the project's tracking store (runs, metrics, charts, registry)."""
    import subprocess
    import sys

    from training.train import tracking_uri

    uri = tracking_uri()
    console.print(f"MLflow UI for {uri} at http://{host}:{port} (Ctrl-C to stop)")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def evaluate(
    gold: Path = typer.Argument(..., exists=True, help="Gold JSONL (annotation format)."),
    model: str = typer.Option(None, "--model", "-m", help="Preset, model directory or MLflow URI (default: bundled)."),
    output: Path = typer.Option(None, "--output", "-o", help="Also write the predictions here (JSONL)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | json (every metric, overall and per language)"),
) -> None:
    """Score a model against gold documents with the training metrics. Note: the bundled model
    was fitted on the bundled annotations, so scoring it on them measures training data."""
    from inference.analyzer import load_analyzer
    from inference.scoring import score
    from inference.validate import read_jsonl, write_jsonl
    from training.experiment import raw
    from training.report import score_table

    if fmt not in ("table", "json"):
        err_console.print(f"error: --format must be table or json, not {fmt!r}")
        raise typer.Exit(2)

    golds = _read_or_exit(read_jsonl, gold)
    analyzer = load_analyzer(model)
    preds = list(_progress(analyzer.analyze_many([raw(d) for d in golds]), len(golds), "analyzing"))
    if output:
        write_jsonl(preds, output)
    s = score(golds, preds)
    if fmt == "json":
        import json

        typer.echo(json.dumps(s, ensure_ascii=False, indent=1))
    else:
        console.print(score_table(s, title=f"{gold.name}: {len(golds)} documents"))


@app.command()
def analyze(
    source: str = typer.Argument(..., help="A .txt file, a .jsonl file of documents, a folder of them, or - for stdin."),
    published: str = typer.Option(None, help="Publication date YYYY-MM-DD for plain texts (resolves role titles)."),
    lang: str = typer.Option(None, help="Language code; detected when omitted."),
    fmt: str = typer.Option("table", "--format", "-f", help="json | jsonl | table"),
    model: str = typer.Option(None, "--model", "-m", help="Preset, model directory or MLflow URI (default: bundled)."),
) -> None:
    """Find quotes, speakers and stances in texts; a table for people, JSON for programs."""
    from inference.analyzer import load_analyzer
    from training.analyze_io import iter_inputs
    from training.report import document_table

    if fmt not in ("json", "jsonl", "table"):
        err_console.print(f"error: --format must be json, jsonl or table, not {fmt!r}")
        raise typer.Exit(2)
    inputs = iter_inputs(source, published=published, lang=lang, on_error=lambda msg: err_console.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True))
    analyzer = load_analyzer(model)
    docs = analyzer.analyze_many(inputs.documents())
    if fmt == "table":
        for doc in _progress(docs, inputs.count, "analyzing"):
            console.print(document_table(doc))
    elif fmt == "jsonl":
        for doc in _progress(docs, inputs.count, "analyzing"):
            typer.echo(doc.to_json())
    else:
        import json

        typer.echo(json.dumps([d.to_dict() for d in _progress(docs, inputs.count, "analyzing")], ensure_ascii=False, indent=1))
    if inputs.errors:
        raise typer.Exit(1)


@app.command()
def render(
    docs: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL documents (gold or predictions)."),
    pred: Path = typer.Option(None, "--pred", "-p", exists=True, dir_okay=False, help="Predictions to show beside DOCS, matched by doc_id."),
    output: Path = typer.Option(None, "--output", "-o", help="HTML file to write (default: stdout)."),
) -> None:
    """Write a self-contained HTML page showing the quotes, speakers and stances of documents."""
    import sys

    from inference.render import render_html
    from inference.validate import read_jsonl

    gold = _read_or_exit(read_jsonl, docs)
    preds = _read_or_exit(read_jsonl, pred) if pred else None
    page = render_html(gold, preds, title=f"{docs.name} vs {pred.name}" if pred else docs.name)
    if output:
        output.write_text(page, encoding="utf-8")
        err_console.print(f"wrote {output}")
    else:
        sys.stdout.buffer.write(page.encode("utf-8"))
        sys.stdout.flush()


@app.command()
def batch(
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="Input .jsonl or .parquet (doc_id, text, optional published, lang)."),
    output: Path = typer.Argument(..., help="Output .parquet or .jsonl; failures go to OUTPUT.errors.jsonl."),
    engine: str = typer.Option("local", "--engine", "-e", help="local (this process) | spark (mlflow spark_udf)."),
    model: str = typer.Option(None, "--model", "-m", help="Preset, model directory or MLflow URI (default: bundled)."),
    master: str = typer.Option("local[*]", help="Spark master for --engine spark."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Documents per model call (default: resources/batch.yaml)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Score a corpus into Parquet or JSONL; a re-run skips documents already in OUTPUT."""
    from inference.batch import BatchError

    if engine not in ("local", "spark"):
        err_console.print(f"error: --engine must be local or spark, not {engine!r}")
        raise typer.Exit(2)
    if model and model.split(":", 1)[0] in ("models", "runs"):
        import mlflow

        from training.train import tracking_uri

        mlflow.set_tracking_uri(tracking_uri())
    try:
        if engine == "local":
            from inference.batch import run_local

            stats = run_local(source, output, model=model, batch_size=batch_size, progress=not quiet)
        else:
            from inference.batch_spark import run_spark

            stats = run_spark(source, output, model=model, master=master, batch_size=batch_size, progress=not quiet)
    except BatchError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from exc
    err_console.print(
        f"{engine}: {stats.read} read, {stats.written} written, {stats.skipped} already in {output}, "
        f"{stats.errors} errors in {output.name}.errors.jsonl; {stats.seconds:.1f} s ({stats.docs_per_second:.1f} docs/s)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if stats.errors:
        raise typer.Exit(1)


@app.command()
def bench(
    preset: list[str] = typer.Option(None, "--preset", "-p", help="fast and/or accurate (default: both)."),
    docs: int = typer.Option(None, "--docs", min=1, help="Documents per throughput run (default: experiments/benchmarks/bench.yaml)."),
    quick: bool = typer.Option(False, "--quick", help="A smoke run of the harness (small corpora)."),
    scaling: bool = typer.Option(True, help="Also the 1,000 / 10,000 / 100,000-document scaling runs."),
    out: Path = typer.Option(None, "--out", help="Folder for bench.json and bench.md (default: experiments/benchmarks/results)."),
    name: str = typer.Option("bench", help="File name stem of the results."),
) -> None:
    """Measure cold start, documents/s, quotes/s and peak memory per preset, stage and layout."""
    from training.bench import RESULTS, run_bench

    unknown = sorted(set(preset or []) - {"fast", "accurate"})
    if unknown:
        err_console.print(f"error: unknown preset(s) {unknown}; use fast and/or accurate")
        raise typer.Exit(2)
    run_bench(presets=preset or None, docs=docs, quick=quick, scaling=scaling, out_dir=out or RESULTS, name=name, log=err_console.print)
    err_console.print(f"wrote {(out or RESULTS) / name}.json and .md", markup=False, highlight=False, soft_wrap=True)


def _progress(items, total: int | None, label: str):
    """A progress bar (on stderr, so JSON on stdout stays clean) for many documents; none for one."""
    from tqdm import tqdm

    return tqdm(items, total=total, desc=label, disable=not total or total < 2, leave=False)


if __name__ == "__main__":
    app()
