"""Encoder embeddings memoised per process, shared by every component that embeds text.

Cross-validation re-encodes the same quotes and candidate spans in every fold, and one loaded
encoder (per name and quantisation) should serve the quote detector and the stance heads alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_ENCODERS: dict[str, object] = {}
_EMBEDDINGS: dict[str, dict[str, np.ndarray]] = {}
_CACHE_MAX = 50_000


def embed(
    texts: Sequence[str], encoder: str | None = None, quantize: str | None = None, max_length: int = 256
) -> np.ndarray:
    """(len(texts), dim) unit-length rows, in input order; `encoder` None is the offline build,
    `max_length` the tokens read from each text (the rest is cut)."""
    key = f"{encoder or ''}|{quantize or 'fp32'}"
    if key not in _ENCODERS:
        from inference.encoder.embed import Encoder

        _ENCODERS[key] = Encoder(encoder, quantize=quantize)
    cache = _EMBEDDINGS.setdefault(f"{key}|{max_length}", {})
    if len(cache) > _CACHE_MAX:
        cache.clear()
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    if missing:
        # texts that differ only past `max_length` tokens (candidate spans with one start and
        # several ends) read the same tokens: each distinct token sequence is encoded once
        enc = _ENCODERS[key]
        ids = enc.tokenize(missing, max_length=max_length)
        unique = list(dict.fromkeys(tuple(i) for i in ids))
        rows = dict(zip(unique, enc.encode_ids([list(u) for u in unique]), strict=True))
        for text, tokens in zip(missing, ids, strict=True):
            cache[text] = rows[tuple(tokens)]
    dim = _ENCODERS[key].dim
    return np.vstack([cache[t] for t in texts]) if len(texts) else np.zeros((0, dim), np.float32)


def forget_embeddings() -> None:
    """Drop the memoised rows (benchmarks time the encoder, not the cache); encoders stay loaded."""
    _EMBEDDINGS.clear()
