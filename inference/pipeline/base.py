"""The component contract every pipeline stage follows (spaCy-style: Document in, Document out).

A stage reads a `Document` and returns it with its own fields filled in: the detector adds
quotes (content, kind, cue), the attributor sets mention/speaker, the stance stage sets
stances. Stages are fitted on gold Documents, saved into a directory with files that load
without executing code (JSON, safetensors, skops with trusted types), and replaceable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from inference.document import Document


class Component(ABC):
    """One replaceable pipeline stage. Parameters go in `__init__`; learning happens in `fit`."""

    name: ClassVar[str]

    def fit(self, docs: Sequence[Document]) -> Component:
        """Learn from gold documents. Rule-only components return self unchanged."""
        return self

    @abstractmethod
    def __call__(self, doc: Document) -> Document:
        """Annotate one document and return it (a copy or the same object)."""

    def pipe(self, docs: Iterable[Document], batch_size: int = 64) -> Iterable[Document]:
        """Annotate many documents; components with batched models override this."""
        for doc in docs:
            yield self(doc)

    def save(self, path: Path) -> None:
        """Write the component's parameters and learned state into directory `path`."""
        path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def load(cls, path: Path) -> Component:
        """Rebuild the component from `save`'s directory without executing stored code."""
        return cls()
