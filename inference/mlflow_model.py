"""The pipeline as an MLflow pyfunc model ("models from code": nothing pickled).

The logged model holds the pipeline directory as the artifact `pipeline`; `predict` takes a
DataFrame with a `text` column (and optional `published`, `lang`, `doc_id`) and returns one
annotation-format record per row. `log_pipeline_model` / `save_pipeline_model` are the one way
the project writes such a model (training, serving tests and the Spark batch engine share them),
so every copy carries the same signature.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import mlflow.pyfunc

PIPELINE_ARTIFACT = "pipeline"
ENTRY_FILE = Path(__file__).with_name("mlflow_entry.py")
PIP_REQUIREMENTS = ["quote-stance"]
INPUT_COLUMNS = ("doc_id", "text", "published", "lang")
OUTPUT_RECORDS = "records"
OUTPUT_JSON = "json"


class QuoteStanceModel(mlflow.pyfunc.PythonModel):
    """`params={"output": "json"}` returns one JSON string per row instead of a dict, and a
    document that fails to analyze becomes `{"doc_id", "error"}` there rather than failing the
    whole batch: that is the form Spark's string-typed UDF needs."""

    def load_context(self, context) -> None:
        self.analyzer = _cached_analyzer(str(Path(context.artifacts[PIPELINE_ARTIFACT]).resolve()))

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list:
        import pandas as pd

        from inference.batch import analyze_isolated, exception_reason
        from inference.document import Document

        output = (params or {}).get("output") or OUTPUT_RECORDS
        if output not in (OUTPUT_RECORDS, OUTPUT_JSON):
            raise ValueError(f"params.output must be {OUTPUT_RECORDS!r} or {OUTPUT_JSON!r}, not {output!r}")
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "text" not in frame.columns:
            raise ValueError("input needs a 'text' column")
        docs = []
        for i, row in enumerate(frame.to_dict(orient="records")):
            published = _present(row.get("published"))
            docs.append(
                Document(
                    doc_id=str(_present(row.get("doc_id")) or f"doc-{i}"),
                    text=str(row["text"]),
                    published=str(published)[:10] if published else None,
                    lang=_present(row.get("lang")),
                )
            )
        if output == OUTPUT_RECORDS:
            return [d.to_dict() for d in self.analyzer.analyze_many(docs)]
        out = []
        for doc, result in analyze_isolated(self.analyzer, docs):
            record = result.to_dict() if not isinstance(result, Exception) else {"doc_id": doc.doc_id, "error": exception_reason(result)}
            out.append(json.dumps(record, ensure_ascii=False))
        return out


@lru_cache(maxsize=2)
def _cached_analyzer(path: str):
    """One Analyzer per pipeline directory and process: Spark's local-mode UDF loads the pyfunc
    model again for every task, and this keeps that from re-reading the pipeline each time."""
    from inference.analyzer import Analyzer

    return Analyzer.load(path)


def _present(value: Any) -> Any:
    """None for the missing-value markers pandas puts in optional columns (None, NaN, NaT, '')."""
    import pandas as pd

    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)) or value == "":
        return None
    return value


def model_signature():
    """Input columns (only `text` required), no fixed output schema (records are nested), and
    the `output` param; Spark and the scoring server both accept this."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("string", name, required=name == "text") for name in INPUT_COLUMNS])
    params = ParamSchema([ParamSpec("output", "string", OUTPUT_RECORDS)])
    return ModelSignature(inputs=inputs, outputs=None, params=params)


def log_pipeline_model(model_dir: str | Path, registered_model_name: str | None = None, name: str = "model"):
    """Log a fitted pipeline directory as the pyfunc model in the active run (optionally registered)."""
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(ENTRY_FILE),
        artifacts={PIPELINE_ARTIFACT: str(model_dir)},
        pip_requirements=PIP_REQUIREMENTS,
        signature=model_signature(),
        registered_model_name=registered_model_name,
    )


def save_pipeline_model(model_dir: str | Path, path: str | Path) -> Path:
    """The same pyfunc model written to a local directory, without a tracking store."""
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(ENTRY_FILE),
        artifacts={PIPELINE_ARTIFACT: str(model_dir)},
        pip_requirements=PIP_REQUIREMENTS,
        signature=model_signature(),
    )
    return Path(path)


def download_model_dir(uri: str) -> Path:
    """Local copy of a logged model's pipeline directory, without unpickling anything."""
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    candidate = local / "artifacts" / PIPELINE_ARTIFACT
    if not candidate.is_dir():
        raise ValueError(f"{uri} is not a quote-stance model (no artifacts/{PIPELINE_ARTIFACT})")
    return candidate
