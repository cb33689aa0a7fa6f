"""Entry file for MLflow "models from code": declares the pyfunc model to load."""

import mlflow.models

from inference.mlflow_model import QuoteStanceModel

mlflow.models.set_model(QuoteStanceModel())
