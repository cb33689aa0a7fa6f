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


if __name__ == "__main__":
    app()
