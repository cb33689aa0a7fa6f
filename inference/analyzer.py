"""The inference API: `load_analyzer()` and `Analyzer.analyze(text)` -> `Document`.

A model is a directory: `pipeline.json` names the stages (from an allow-list, never an
arbitrary import path) and each stage's sub-directory holds its files (JSON, skops with
trusted types). Presets `fast` and `accurate` ship inside the package; MLflow URIs
(`models:/quote-stance@champion`) resolve to the same directory layout.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import import_module, resources
from pathlib import Path
from typing import Any

import yaml

from inference.document import Document, Quote
from inference.langid import detect_language
from inference.pipeline.base import Component
from inference.pipeline.lexicon import TERMINAL
from inference.safe_io import ModelFileError

PIPELINE_FILE = "pipeline.json"
FORMAT_VERSION = 1
COMPONENTS: dict[str, str] = {
    "quote_detection": "inference.pipeline.quote_detection:QuoteDetector",
    "attribution": "inference.pipeline.attribution:SpeakerAttributor",
    "stance": "inference.pipeline.stance:StanceClassifier",
}
PRESETS = ("fast", "accurate")
DEFAULT_PRESET_FILE = "resources/models/DEFAULT"
ANALYZER_CONFIG = "resources/analyzer.yaml"


class ModelLoadError(ModelFileError):
    """A model directory that cannot be loaded: missing, malformed, tampered or foreign."""


def component_class(name: str) -> type[Component]:
    if name not in COMPONENTS:
        raise ModelLoadError(f"unknown pipeline component {name!r}; known: {sorted(COMPONENTS)}")
    module, cls = COMPONENTS[name].split(":")
    return getattr(import_module(module), cls)


def stage_name(component: Component) -> str:
    """The allow-listed stage key under which a component's class is registered."""
    path = f"{type(component).__module__}:{type(component).__name__}"
    for stage, registered in COMPONENTS.items():
        if registered == path:
            return stage
    raise ModelLoadError(f"{path} is not a registered pipeline component; add it to COMPONENTS")


class Analyzer:
    """Runs the pipeline stages over raw text and returns Documents in the annotation format."""

    def __init__(self, components: list[Component], metadata: dict[str, Any] | None = None):
        self.components = components
        self.metadata = metadata or {}

    def analyze(
        self,
        text: str,
        published: str | dt.date | None = None,
        lang: str | None = None,
        doc_id: str = "doc",
    ) -> Document:
        return next(self.analyze_many([text], published=published, lang=lang, doc_ids=[doc_id]))

    def analyze_many(
        self,
        texts: Iterable[str | Document],
        batch_size: int = 64,
        published: str | dt.date | None = None,
        lang: str | None = None,
        doc_ids: Iterable[str] | None = None,
    ) -> Iterator[Document]:
        """Analyze a stream of texts (or quote-less Documents) lazily, `batch_size` at a time."""
        ids = iter(doc_ids) if doc_ids is not None else None
        batch: list[tuple[Document, str]] = []
        for i, item in enumerate(texts):
            if isinstance(item, Document):
                doc, original = item.model_copy(update={"quotes": []}), item.text
            else:
                if not isinstance(item, str):
                    raise TypeError(f"analyze expects str or Document, got {type(item).__name__}")
                doc_id = next(ids) if ids is not None else f"doc-{i}"
                doc, original = Document(doc_id=doc_id, text=item, published=_date(published), lang=lang), item
            batch.append((doc, original))
            if len(batch) >= batch_size:
                yield from self._run(batch)
                batch = []
        if batch:
            yield from self._run(batch)

    def _run(self, batch: list[tuple[Document, str]]) -> Iterator[Document]:
        prepared: list[Document] = []
        owners: list[tuple[int, int]] = []
        returned: list[str] = []
        n_windows: list[int] = []
        mappings: list[list[int] | None] = []
        limit = window_chars()
        for k, (doc, original) in enumerate(batch):
            cleaned = _clean(original)
            nfc, mapping = _nfc_with_offsets(cleaned)
            work = doc.model_copy(update={"text": nfc, "quotes": []})
            if work.lang is None:
                work.lang = detect_language(nfc)
            windows = split_windows(nfc, limit)
            if len(windows) == 1:
                prepared.append(work)
                owners.append((k, 0))
            else:
                for offset, piece in windows:
                    prepared.append(work.model_copy(update={"text": piece}))
                    owners.append((k, offset))
            returned.append(cleaned if mapping is not None or nfc == cleaned else nfc)
            n_windows.append(len(windows))
            mappings.append(mapping)
        docs: Iterable[Document] = prepared
        for component in self.components:
            docs = list(component.pipe(docs))
        found: list[list[Quote]] = [[] for _ in batch]
        langs: list[str | None] = [None] * len(batch)
        for (k, offset), pred in zip(owners, docs):
            found[k].extend(_shift(q, offset) for q in pred.quotes)
            langs[k] = pred.lang
        for k, ((doc, _), mapping) in enumerate(zip(batch, mappings)):
            quotes = found[k]
            if n_windows[k] > 1:
                quotes = [q.model_copy(update={"id": f"q{i}"}) for i, q in enumerate(quotes, start=1)]
            if mapping is not None:
                quotes = [_remap(q, mapping) for q in quotes]
            yield doc.model_copy(update={"text": returned[k], "lang": langs[k], "quotes": quotes})

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        spec = {"format_version": FORMAT_VERSION, "components": [], "metadata": self.metadata}
        for c in self.components:
            stage = stage_name(c)
            c.save(path / stage)
            spec["components"].append(stage)
        (path / PIPELINE_FILE).write_text(json.dumps(spec, indent=1, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Analyzer:
        path = Path(path)
        spec_file = path / PIPELINE_FILE
        if not spec_file.is_file():
            raise ModelLoadError(f"{path} is not a quote-stance model directory (no {PIPELINE_FILE})")
        try:
            spec = json.loads(spec_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{spec_file}: not valid JSON ({exc})") from exc
        if not isinstance(spec, dict) or spec.get("format_version") != FORMAT_VERSION:
            version = spec.get("format_version") if isinstance(spec, dict) else None
            raise ModelLoadError(f"{spec_file}: unsupported model format version {version!r}")
        names = spec.get("components")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelLoadError(f"{spec_file}: 'components' must be a list of stage names")
        components = []
        for name in names:
            cls_ = component_class(name)
            try:
                components.append(cls_.load(path / name))
            except ModelFileError:
                raise
            except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                raise ModelLoadError(f"{path / name}: not a valid {name} stage ({type(exc).__name__}: {exc})") from exc
        metadata = spec.get("metadata", {})
        return cls(components, metadata if isinstance(metadata, dict) else {})


def _clean(text: str) -> str:
    """The text the stages read and the Document returns: NUL bytes as spaces and lone
    surrogates (which no encoder accepts; JSON escapes such as "\\ud800" make them) as U+FFFD,
    so every offset stays that of the text as given."""
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", " "))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@lru_cache(maxsize=1)
def window_chars() -> int:
    """The longest text analyzed in one piece (`resources/analyzer.yaml`)."""
    raw = yaml.safe_load(resources.files("inference").joinpath(ANALYZER_CONFIG).read_text(encoding="utf-8"))
    return int(raw["window_chars"])


def split_windows(text: str, limit: int) -> list[tuple[int, str]]:
    """(offset, piece) windows of at most `limit` characters covering `text`, each cut at the
    last paragraph break in its second half, else after the last sentence end, else at the last
    space, else at `limit` (never before a combining mark)."""
    if len(text) <= limit:
        return [(0, text)]
    out: list[tuple[int, str]] = []
    start = 0
    while len(text) - start > limit:
        lo, hi = start + limit // 2, start + limit
        cut = text.rfind("\n", lo, hi) + 1
        if not cut:
            cut = next((j + 1 for j in range(hi - 1, lo - 1, -1) if text[j] in TERMINAL), 0)
        if not cut:
            cut = next((j + 1 for j in range(hi - 1, lo - 1, -1) if text[j].isspace()), 0)
        if not cut:
            cut = hi
            while cut > lo and unicodedata.combining(text[cut]):
                cut -= 1
        out.append((start, text[start:cut]))
        start = cut
    out.append((start, text[start:]))
    return out


def _shift(q: Quote, offset: int) -> Quote:
    if not offset:
        return q

    def span(s):
        return None if s is None else (s[0] + offset, s[1] + offset)

    return q.model_copy(update={"content": span(q.content), "cue": span(q.cue), "mention": span(q.mention)})


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def _nfc_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """NFC text and, when normalisation changed it, a map from NFC offsets to original offsets."""
    if unicodedata.is_normalized("NFC", text):
        return text, None
    pieces, starts = [], []
    seg_start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or unicodedata.combining(text[i]) == 0:
            pieces.append(unicodedata.normalize("NFC", text[seg_start:i]))
            starts.append(seg_start)
            seg_start = i
    nfc = "".join(pieces)
    if nfc != unicodedata.normalize("NFC", text):
        nfc = unicodedata.normalize("NFC", text)
        return nfc, None
    mapping: list[int] = []
    for piece, start in zip(pieces, starts):
        mapping.extend([start] * len(piece))
    mapping.append(len(text))
    return nfc, mapping


def _remap(q: Quote, mapping: list[int]) -> Quote:
    def span(s):
        return None if s is None else (mapping[s[0]], mapping[s[1]] if s[1] < len(mapping) else mapping[-1])

    return q.model_copy(update={"content": span(q.content), "cue": span(q.cue), "mention": span(q.mention)})


def bundled_model_dir(preset: str) -> Path:
    return Path(str(resources.files("inference").joinpath(f"resources/models/{preset}")))


def default_preset() -> str:
    marker = resources.files("inference").joinpath(DEFAULT_PRESET_FILE)
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else "fast"


def load_analyzer(model: str | Path | None = None) -> Analyzer:
    """Load a model: None (the bundled default), a preset (`fast`, `accurate`), a directory,
    or an MLflow URI such as `models:/quote-stance@champion`."""
    if model is None or model == "default":
        model = default_preset()
    if isinstance(model, str) and model in PRESETS:
        path = bundled_model_dir(model)
        if not (path / PIPELINE_FILE).is_file():
            raise ModelLoadError(
                f"the bundled {model!r} model is not built; run `quote-stance train --config experiments/{model}.yaml --bundle`"
            )
        return Analyzer.load(path)
    if isinstance(model, str) and model.split(":", 1)[0] in ("models", "runs"):
        from inference.mlflow_model import download_model_dir

        return Analyzer.load(download_model_dir(model))
    path = Path(model)
    if not path.exists():
        raise ModelLoadError(f"no model at {model!r}: not a preset {PRESETS}, a directory or an MLflow URI")
    return Analyzer.load(path)
