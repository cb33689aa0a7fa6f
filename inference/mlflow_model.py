"""The pipeline as an MLflow pyfunc model ("models from code": nothing pickled).

The logged model holds the pipeline directory as the artifact `pipeline`; `predict` takes a
DataFrame with a `text` column (and optional `published`, `lang`, `doc_id`) and returns one
annotation-format record per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc

PIPELINE_ARTIFACT = "pipeline"


class QuoteStanceModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from inference.analyzer import Analyzer

        self.analyzer = Analyzer.load(context.artifacts[PIPELINE_ARTIFACT])

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[dict]:
        import pandas as pd

        from inference.document import Document

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if "text" not in frame.columns:
            raise ValueError("input needs a 'text' column")
        docs = []
        for i, row in enumerate(frame.to_dict(orient="records")):
            published = row.get("published") or None
            docs.append(
                Document(
                    doc_id=str(row.get("doc_id") or f"doc-{i}"),
                    text=str(row["text"]),
                    published=str(published)[:10] if published else None,
                    lang=row.get("lang") or None,
                )
            )
        return [d.to_dict() for d in self.analyzer.analyze_many(docs)]


def download_model_dir(uri: str) -> Path:
    """Local copy of a logged model's pipeline directory, without unpickling anything."""
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    candidate = local / "artifacts" / PIPELINE_ARTIFACT
    if not candidate.is_dir():
        raise ValueError(f"{uri} is not a quote-stance model (no artifacts/{PIPELINE_ARTIFACT})")
    return candidate
