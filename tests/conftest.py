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


def _tiny_encoder(out: Path) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from inference.pipeline.stance_finetune import stance_questions

    docs = read_jsonl(ANNOTATIONS / "seeds.jsonl")
    docs += [d for f in sorted((ANNOTATIONS / "authored").glob("*.jsonl")) for d in read_jsonl(f)]
    texts = [d.text for d in docs] + list(stance_questions().values())
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=2000, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    ).save_pretrained(out)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A 2-layer BERT with a WordPiece tokenizer trained on the annotations: the real encoder's
    code paths at a speed unit tests can afford (its embeddings mean nothing)."""
    return _tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))
