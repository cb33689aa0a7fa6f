"""quote-stance runtime library: the data model, the pipeline and the inference API."""

from .document import Document, Quote, Stance
from .registry import Registry, default_registry

__all__ = ["Document", "Quote", "Stance", "Registry", "default_registry"]
