"""Pooled sentence embeddings from the multilingual encoder, for the stance and attribution components.

Everything e5 needs is decided here and only here: Unicode NFC before tokenising (decomposed
Vietnamese otherwise tokenises differently from what the model was trained on), the `query: `
prefix, truncation, length-sorted batching, attention-masked mean pooling (the checkpoint has no
pooler) and L2 normalisation.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import unicodedata
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .resolve import resolve_encoder

DEFAULT_PREFIX = "query: "
THREADS_ENV = "QUOTE_STANCE_THREADS"
DEFAULT_MAX_BATCH_TOKENS = 2048


def prepare_text(text: str, prefix: str | None = DEFAULT_PREFIX) -> str:
    """NFC-normalised text with the e5 prefix."""
    return (prefix or "") + unicodedata.normalize("NFC", text)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states where the mask is 1 (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads: `num_threads`, else `$QUOTE_STANCE_THREADS`, else torch's
    default capped at the CPUs this process may run on (containers often report more)."""
    if num_threads is None and os.environ.get(THREADS_ENV):
        num_threads = int(os.environ[THREADS_ENV])
    if num_threads is not None:
        torch.set_num_threads(max(1, int(num_threads)))
    else:
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if torch.get_num_threads() > available:
            torch.set_num_threads(available)
    return torch.get_num_threads()


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of every Linear: int8 weights with a scale per output row (closer
    to fp32 than one scale per matrix), activations quantised per batch. torch marks this eager API
    deprecated in favour of torchao; it still works in 2.13."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


def load_encoder_model(path, *, quantize: str | None = None) -> torch.nn.Module:
    """The bare encoder (no pooler) in eval mode, optionally int8-quantised."""
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
    except TypeError:
        model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    if quantize in (None, "none", "fp32"):
        return model
    if quantize == "int8":
        return quantize_int8(model)
    raise ValueError(f"quantize must be None or 'int8', not {quantize!r}")


class Encoder:
    """Sentence encoder: `Encoder().encode(texts) -> (n, dim)` float32, unit-length rows.

    `name_or_path` goes through `resolve_encoder` (None: the offline multilingual-e5-small build).
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike | None = None,
        *,
        quantize: str | None = None,
        num_threads: int | None = None,
    ):
        from transformers import AutoTokenizer

        self.path = resolve_encoder(name_or_path)
        self.quantize = quantize
        self.num_threads = configure_threads(num_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = load_encoder_model(self.path, quantize=quantize)
        self.dim = int(self.model.config.hidden_size)
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 512))

    def __repr__(self) -> str:
        return f"Encoder({str(self.path)!r}, quantize={self.quantize!r}, dim={self.dim})"

    def tokenize(self, texts: Sequence[str], prefix: str | None = DEFAULT_PREFIX, max_length: int = 256) -> list[list[int]]:
        """Token ids with specials, truncated to `max_length` (at most the model's positions)."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings; wrap a single text in a list")
        prepared = [prepare_text(t, prefix) for t in texts]
        if not prepared:
            return []
        limit = min(int(max_length), self.max_positions)
        return self.tokenizer(prepared, truncation=True, max_length=limit)["input_ids"]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        prefix: str | None = DEFAULT_PREFIX,
        max_length: int = 256,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
    ) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings in input order.

        Texts are sorted by length and batched up to `batch_size` texts, and also up to
        `max_batch_tokens` padded tokens (None: no limit): on CPU a larger batch is not faster
        per token, so a few long texts should not pad dozens of short ones to their length."""
        return self.encode_ids(self.tokenize(texts, prefix, max_length), batch_size, max_batch_tokens)

    def encode_ids(
        self, ids: list[list[int]], batch_size: int = 32, max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS
    ) -> np.ndarray:
        """`encode` for texts already tokenized by `tokenize` (callers that dedupe on tokens)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        pad_id = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for rows in _length_batches(order, ids, max(1, int(batch_size)), max_batch_tokens):
                width = len(ids[rows[0]])
                input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
                    mask[r, : len(ids[i])] = 1
                hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                pooled = torch.nn.functional.normalize(mean_pool(hidden, mask).float(), dim=-1)
                out[rows] = pooled.numpy()
                del hidden, pooled
                _return_freed_memory()
        return out


def _return_freed_memory() -> None:
    """Give freed heap pages back to the system (glibc only). Batches of varying shapes leave
    the encoder's activations scattered over the heap, and without this the resident memory of
    a long run creeps up by several hundred MB although nothing is live (measured in
    experiments/benchmarks/results/bench.md)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _length_batches(order: list[int], ids: list[list[int]], batch_size: int, max_tokens: int | None):
    """Consecutive runs of `order` (longest first) within both limits; at least one text each."""
    batch: list[int] = []
    for i in order:
        width = len(ids[batch[0]]) if batch else len(ids[i])
        if batch and (len(batch) >= batch_size or (max_tokens and (len(batch) + 1) * width > max_tokens)):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch
