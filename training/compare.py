"""The experiment comparison table (Markdown), from the latest MLflow run of each experiment."""

from __future__ import annotations

COLUMNS = (
    ("seeds_lodo.quote_f1_overlap", "quote F1 (overlap)"),
    ("seeds_lodo.quote_f1_exact", "quote F1 (exact)"),
    ("seeds_lodo.attribution_accuracy_gold_spans", "speaker acc. (gold spans)"),
    ("seeds_lodo.attribution_accuracy_e2e", "speaker acc. (end to end)"),
    ("seeds_lodo.stance_macro_f1", "stance macro-F1"),
    ("seeds_lodo.stance_macro_f1_gold_spans", "stance macro-F1 (gold spans)"),
    ("authored_lolo.quote_f1_overlap", "LOLO quote F1"),
    ("authored_lolo.attribution_accuracy_e2e", "LOLO speaker e2e"),
    ("authored_lolo.stance_macro_f1", "LOLO stance macro-F1"),
)


def comparison_table(tracking_uri: str, experiments: list[str] | None = None) -> str:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["quote-stance"], order_by=["attributes.start_time DESC"])
    if runs.empty:
        return "no runs yet: run `quote-stance train --config experiments/<name>.yaml` first"
    latest = runs.drop_duplicates(subset=["tags.experiment_config"], keep="first")
    if experiments:
        latest = latest[latest["tags.experiment_config"].isin(experiments)]
    header = "| experiment | data | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 2)]
    for _, run in latest.sort_values("tags.experiment_config").iterrows():
        cells = []
        for key, _ in COLUMNS:
            value = run.get(f"metrics.{key}")
            cells.append("—" if value is None or value != value else f"{value:.3f}")
        lines.append(f"| {run['tags.experiment_config']} | {run['tags.data_version']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
