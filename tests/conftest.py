"""Shared fixtures: small real data from the bundled annotations."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.document import Document
from inference.validate import read_jsonl

ROOT = Path(__file__).resolve().parent.parent
ANNOTATIONS = ROOT / "annotations"


@pytest.fixture(scope="session")
def seed_docs() -> list[Document]:
    return read_jsonl(ANNOTATIONS / "seeds.jsonl")


@pytest.fixture(scope="session")
def seed_lines() -> list[str]:
    return (ANNOTATIONS / "seeds.jsonl").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def all_annotation_files() -> list[Path]:
    return [ANNOTATIONS / "seeds.jsonl", *sorted((ANNOTATIONS / "authored").glob("*.jsonl"))]
