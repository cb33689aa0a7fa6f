"""A classifier on the encoder's attention-masked mean, for fine-tuning.

`BertForSequenceClassification` would put a randomly initialised pooler (dense + tanh over the
first token) under its head, because the e5 checkpoint ships no pooler weights; e5 was trained
with mean pooling, so the head here reads the same mean that `Encoder.encode` returns (before
normalisation). Saved as a standard encoder directory (loadable by `AutoModel` and `Encoder`)
plus `classifier.json` and `classifier_head.safetensors`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .embed import load_encoder_model, mean_pool
from .resolve import resolve_encoder

HEAD_CONFIG = "classifier.json"
HEAD_WEIGHTS = "classifier_head.safetensors"


@dataclass
class ClassifierOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None


class MeanPooledClassifier(nn.Module):
    """encoder -> masked mean of the last hidden states -> dropout -> linear."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, labels: list[str] | None = None):
        super().__init__()
        if labels is not None and len(labels) != num_labels:
            raise ValueError(f"{len(labels)} label names for {num_labels} labels")
        self.encoder = encoder
        self.num_labels = int(num_labels)
        self.labels = list(labels) if labels is not None else None
        self.dropout_p = float(dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str | os.PathLike | None = None,
        num_labels: int = 2,
        dropout: float = 0.1,
        labels: list[str] | None = None,
    ) -> MeanPooledClassifier:
        """A new head on the resolved encoder (None: the offline multilingual-e5-small build)."""
        encoder = load_encoder_model(resolve_encoder(name_or_path))
        return cls(encoder, num_labels, dropout, labels)

    def freeze_word_embeddings(self) -> None:
        """Freeze the word embeddings: about 96 M of e5-small's 118 M parameters, so CPU steps get
        ~2.5x cheaper while every transformer layer still trains."""
        self.encoder.get_input_embeddings().weight.requires_grad_(False)

    def pooled(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return mean_pool(self.encoder(**kwargs).last_hidden_state, attention_mask)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None) -> ClassifierOutput:
        logits = self.head(self.dropout(self.pooled(input_ids, attention_mask, token_type_ids)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ClassifierOutput(logits=logits, loss=loss)

    def save_pretrained(self, out_dir: str | os.PathLike, tokenizer=None) -> Path:
        """Encoder as a standard model directory (safetensors), head beside it; the tokenizer too
        when given, so the directory is self-contained."""
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(out_dir, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
            out_dir / HEAD_WEIGHTS,
            metadata={"format": "pt"},
        )
        config = {"pooling": "mean", "num_labels": self.num_labels, "dropout": self.dropout_p, "labels": self.labels}
        (out_dir / HEAD_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return out_dir

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> MeanPooledClassifier:
        from safetensors.torch import load_file

        path = Path(path)
        config = json.loads((path / HEAD_CONFIG).read_text(encoding="utf-8"))
        if config.get("pooling") != "mean":
            raise ValueError(f"{path}: pooling {config.get('pooling')!r}, expected 'mean'")
        model = cls(load_encoder_model(path), config["num_labels"], config["dropout"], config.get("labels"))
        model.head.load_state_dict(load_file(path / HEAD_WEIGHTS))
        return model.eval()
