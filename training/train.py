"""`quote-stance train`: cross-validate an experiment, fit it on everything, log it all to MLflow.

Logged per run: params (flattened config), the config file, the data version (hash of the
annotation files) and backend/language tags, every cross-validation metric (overall and per
language, per topic), PNG charts, per-document predictions (JSONL), an error list, the HTML quote
viewer of the held-out documents (gold beside prediction), and the final pipeline
as a pyfunc model registered as `quote-stance`. The alias `champion` moves to the new version
only when it beats the current champion's evaluation-of-record score on the same data version.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from inference.mlflow_model import log_pipeline_model
from inference.render import render_html
from inference.validate import write_jsonl
from training.data import annotation_files, data_version, load_documents
from training.errors import error_list
from training.experiment import ExperimentConfig, cross_validate, fit_analyzer
from training.plots import save_charts
from training.scoring import flat_metrics, record_score, score_all

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "quote-stance"
CHAMPION = "champion"
RECORD_METRIC = "record_score"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Artifacts next to a SQLite store (its folder's mlruns/), not under whatever directory the
    command happens to run from; other stores keep their own default."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///") :]).resolve().parent / "mlruns").as_uri()


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def run_experiment(
    config_path: Path,
    quiet: bool = False,
    register: bool = True,
    bundle: bool = False,
    console: Console | None = None,
) -> dict[str, float]:
    import mlflow

    console = console or Console(quiet=quiet)
    config = ExperimentConfig.from_yaml(config_path)
    files = annotation_files()
    docs = load_documents(files)
    version = data_version(files)
    n_folds = (sum(d.origin == "seed" for d in docs) if config.evaluation.seeds_lodo else 0) + (
        len({d.lang for d in docs if d.origin == "authored"}) if config.evaluation.authored_lolo else 0
    ) + config.evaluation.authored_kfold
    with Progress(console=console, disable=quiet, transient=True) as progress:
        task = progress.add_task(f"{config.name}: cross-validation", total=n_folds + 1)

        def advance(fold):
            progress.update(task, advance=1, description=f"{config.name}: {fold.kind} fold {fold.name}")

        results = cross_validate(config, docs, progress=advance)
        progress.update(task, description=f"{config.name}: final fit on all documents")
        final = fit_analyzer(config, docs)
        progress.update(task, advance=1)

    scores = score_all(results)
    metrics = flat_metrics(scores)
    metrics[RECORD_METRIC] = record_score(scores)

    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(MODEL_NAME) is None:
        mlflow.create_experiment(MODEL_NAME, artifact_location=artifact_location(tracking_uri()))
    mlflow.set_experiment(MODEL_NAME)
    params: dict[str, Any] = {}
    _flatten("", config.model_dump(exclude={"description"}), params)
    langs = sorted({d.lang for d in docs if d.lang})
    stance_backend = (config.components.get("stance") or {}).get("backend", "none")
    with mlflow.start_run(run_name=config.name) as run, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mlflow.set_tags(
            {
                "data_version": version,
                "experiment_config": config.name,
                "stance_backend": stance_backend if "stance" in config.components else "none",
                "languages": ",".join(langs),
                "preset": config.preset or "",
            }
        )
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_artifact(str(config_path), artifact_path="config")
        mlflow.log_metrics(metrics)
        for kind, res in results.items():
            write_jsonl(res.pred, tmp / f"predictions_{kind}.jsonl")
            (tmp / f"errors_{kind}.txt").write_text(error_list(res.gold, res.pred), encoding="utf-8")
            viewer = render_html(res.gold, res.pred, title=f"{config.name}: {kind} held-out documents, gold vs prediction")
            (tmp / f"viewer_{kind}.html").write_text(viewer, encoding="utf-8")
        save_charts(results, scores, tmp / "charts")
        (tmp / "scores.json").write_text(json.dumps(scores, indent=1, ensure_ascii=False), encoding="utf-8")
        mlflow.log_artifacts(str(tmp), artifact_path="evaluation")

        model_dir = tmp / "pipeline"
        final.metadata.update({"data_version": version, "record_score": metrics[RECORD_METRIC], "run_id": run.info.run_id})
        final.save(model_dir)
        info = log_pipeline_model(model_dir, registered_model_name=MODEL_NAME if register else None)
        if register:
            _maybe_promote(info.registered_model_version, metrics[RECORD_METRIC], version, console)
        if bundle and config.preset:
            from inference.analyzer import bundled_model_dir

            target = bundled_model_dir(config.preset)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(model_dir, target)
            console.print(f"bundled the fitted pipeline as preset {config.preset!r} at {target}")
        console.print(f"run {run.info.run_id}: {RECORD_METRIC}={metrics[RECORD_METRIC]:.4f} (data {version})")
    return metrics


def _maybe_promote(version: int | str | None, score: float, data_ver: str, console: Console) -> None:
    """Move `champion` to this version only if it beats the champion on the same evaluation."""
    from mlflow import MlflowClient

    if version is None:
        return
    client = MlflowClient()
    try:
        champ = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except Exception:
        champ = None
    if champ is not None:
        champ_run = client.get_run(champ.run_id)
        same_eval = champ_run.data.tags.get("data_version") == data_ver
        champ_score = champ_run.data.metrics.get(RECORD_METRIC, float("-inf"))
        if same_eval and champ_score >= score:
            console.print(f"champion stays at version {champ.version} ({champ_score:.4f} >= {score:.4f})")
            return
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    console.print(f"alias {CHAMPION!r} -> version {version}")
