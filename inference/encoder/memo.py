"""Encoder embeddings memoised per process, shared by every component that embeds text.

Cross-validation re-encodes the same quotes and candidate spans in every fold, and one loaded
encoder (per name and quantisation) should serve the quote detector and the stance heads alike.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

_ENCODERS: dict[str, object] = {}
_EMBEDDINGS: dict[str, dict[str, np.ndarray]] = {}
_CACHE_MAX = 50_000
GROUP_BATCH_SIZE = 4


def embed(
    texts: Sequence[str],
    encoder: str | None = None,
    quantize: str | None = None,
    max_length: int = 256,
    groups: Sequence[Hashable] | None = None,
) -> np.ndarray:
    """(len(texts), dim) unit-length rows, in input order; `encoder` None is the offline build,
    `max_length` the tokens read from each text (the rest is cut).

    `groups` (one key per text, e.g. its document) encodes each group's texts in batches of their
    own: int8 dynamic quantisation scales activations per batch, so without it a document's
    embeddings, and the labels read from them, would depend on which other documents shared its
    batch (`analyze` and `analyze_many` would disagree)."""
    key = f"{encoder or ''}|{quantize or 'fp32'}"
    if key not in _ENCODERS:
        from inference.encoder.embed import Encoder

        _ENCODERS[key] = Encoder(encoder, quantize=quantize)
    cache = _EMBEDDINGS.setdefault(f"{key}|{max_length}", {})
    if len(cache) > _CACHE_MAX:
        cache.clear()
    batches: dict[Hashable, list[str]] = {}
    for text, group in zip(texts, groups if groups is not None else [None] * len(texts), strict=True):
        if text not in cache:
            batches.setdefault(group, []).append(text)
    # a document's dozen texts vary in length: small batches waste less on padding (measured on the
    # annotated documents, one core: 5.1 documents/s in batches of 32, 5.8 in batches of 4, 4.7 in 2)
    size = GROUP_BATCH_SIZE if groups is not None else 32
    for batch in batches.values():
        _encode_into(cache, _ENCODERS[key], list(dict.fromkeys(t for t in batch if t not in cache)), max_length, size)
    dim = _ENCODERS[key].dim
    return np.vstack([cache[t] for t in texts]) if len(texts) else np.zeros((0, dim), np.float32)


def _encode_into(cache: dict[str, np.ndarray], enc, missing: list[str], max_length: int, batch_size: int) -> None:
    """Texts that differ only past `max_length` tokens (candidate spans with one start and several
    ends) read the same tokens: each distinct token sequence is encoded once."""
    if not missing:
        return
    ids = enc.tokenize(missing, max_length=max_length)
    unique = list(dict.fromkeys(tuple(i) for i in ids))
    rows = dict(zip(unique, enc.encode_ids([list(u) for u in unique], batch_size), strict=True))
    for text, tokens in zip(missing, ids, strict=True):
        cache[text] = rows[tuple(tokens)]


def forget_embeddings() -> None:
    """Drop the memoised rows (benchmarks time the encoder, not the cache); encoders stay loaded."""
    _EMBEDDINGS.clear()
