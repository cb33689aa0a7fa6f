"""quote-stance runtime library: the data model, the pipeline and the inference API."""

from .analyzer import Analyzer, load_analyzer
from .document import Document, Quote, Stance
from .registry import Registry, default_registry

__all__ = ["Analyzer", "Document", "Quote", "Stance", "Registry", "default_registry", "load_analyzer"]
