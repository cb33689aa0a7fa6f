"""Fine-tuned transformer stance backend: (topic question, quote) pairs, one 4-way decision each.

Every (quote, topic) pair is classified as none / favor / against / neutral, so one model decides
both whether a topic is addressed and the stance on it. The topic goes in as the natural-language
question of `resources/stance_questions.yaml`; the quote goes in as `query: ` + speaker + quote +
a little context (the e5 convention). The head is mean-pooled over the encoder's last hidden
states, because the e5 encoder ships no pooler weights and a randomly initialised pooler would
have to be learned from a few hundred examples.

Training uses `transformers.Trainer` when `accelerate` is installed (its requirement on CPU) and
an equivalent plain torch loop otherwise. Models are saved as safetensors + JSON + tokenizer
files, and loaded with `local_files_only=True`: nothing is downloaded and nothing is unpickled.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import random
import tempfile
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from inference.document import STANCE_LABELS, Document, Quote, Stance
from inference.registry import default_registry

LABELS: tuple[str, ...] = ("none", *STANCE_LABELS)
"""Label ids of the pair classifier: 0 means the quote does not address the topic."""

FORMAT_VERSION = 1


@lru_cache(maxsize=1)
def stance_questions() -> dict[str, str]:
    raw = resources.files("inference").joinpath("resources/stance_questions.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(raw)["questions"])


def topic_question(topic: str) -> str:
    """The topic as a yes/no question; a topic added to the registry without one still gets a question."""
    q = stance_questions().get(topic)
    if q:
        return q
    definition = default_registry().topics.get(topic, topic.replace("_", " "))
    return f"Does the speaker support this: {definition.rstrip('.')}?"


def _around(doc: Document, quote: Quote, chars: int) -> tuple[str, str]:
    """Up to `chars` characters before and after the quote, kept inside its paragraph."""
    if chars <= 0:
        return "", ""
    s, e = quote.content
    lo = max(doc.text.rfind("\n", 0, s) + 1, s - chars)
    nl = doc.text.find("\n", e)
    hi = min(len(doc.text) if nl < 0 else nl, e + chars)
    return doc.text[lo:s].strip(), doc.text[e:hi].strip()


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _mean_pooled_model(encoder, num_labels: int, dropout: float):
    from torch import nn
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPooledClassifier(nn.Module):
        """Encoder + dropout + linear over the attention-masked mean of the last hidden states."""

        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            hidden = self.encoder(**kwargs).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            logits = self.classifier(self.dropout(pooled))
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return MeanPooledClassifier()


def _LossBar():
    """Trainer's progress bar with the running loss as a postfix instead of one printed line per log."""
    from transformers import ProgressCallback

    class LossBar(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

    return LossBar()


class FineTunedStance:
    """Fine-tunes an encoder on (topic question, quote) pairs; scikit-learn-style parameters.

    `encoder` is a local model directory (or a cached hub id); None means the project's offline
    encoder (`inference.encoder.resolve_encoder()`), resolved only when `fit` needs it.
    `negatives` unaddressed topics per quote are sampled as `none` examples; at prediction all
    topics are scored and those whose most probable label is not `none` are kept.
    """

    def __init__(
        self,
        encoder: str | None = None,
        epochs: float = 2.0,
        lr: float = 5e-5,
        batch_size: int = 16,
        max_length: int = 128,
        freeze_embeddings: bool = True,
        freeze_layers: int = 0,
        seed: int = 0,
        context_chars: int = 60,
        max_steps: int | None = None,
        negatives: int = 3,
        use_speaker: bool = True,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        dropout: float = 0.1,
        num_threads: int = 2,
        trainer: str = "auto",
        progress: bool = True,
    ):
        self.encoder = encoder
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.freeze_embeddings = freeze_embeddings
        self.freeze_layers = freeze_layers
        self.seed = seed
        self.context_chars = context_chars
        self.max_steps = max_steps
        self.negatives = negatives
        self.use_speaker = use_speaker
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.dropout = dropout
        self.num_threads = num_threads
        self.trainer = trainer
        self.progress = progress

    def get_params(self) -> dict:
        return {
            "encoder": None if self.encoder is None else str(self.encoder),
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "freeze_embeddings": self.freeze_embeddings,
            "freeze_layers": self.freeze_layers,
            "seed": self.seed,
            "context_chars": self.context_chars,
            "max_steps": self.max_steps,
            "negatives": self.negatives,
            "use_speaker": self.use_speaker,
            "weight_decay": self.weight_decay,
            "warmup_ratio": self.warmup_ratio,
            "dropout": self.dropout,
            "num_threads": self.num_threads,
            "trainer": self.trainer,
            "progress": self.progress,
        }

    # ---- inputs -----------------------------------------------------------------------------
    def _resolve_encoder(self) -> str:
        if self.encoder is not None:
            return str(self.encoder)
        from inference.encoder import resolve_encoder

        return str(resolve_encoder())

    def _quote_segment(self, doc: Document, quote: Quote) -> str:
        """`query: ` + speaker name + quote + context; the quote first so truncation cuts context."""
        parts = ["query:"]
        if self.use_speaker and quote.speaker:
            sp = default_registry().speakers.get(quote.speaker)
            if sp is not None:
                parts.append(f"{sp.name}:")
        parts.append(doc.quote_text(quote))
        left, right = _around(doc, quote, self.context_chars)
        if left or right:
            parts.append(f"| {left} … {right}")
        return _nfc(" ".join(parts))

    def _encode(self, questions: list[str], segments: list[str], labels: list[int] | None = None) -> list[dict]:
        enc = self.tokenizer_(
            [_nfc(q) for q in questions],
            segments,
            truncation="longest_first",
            max_length=self.max_length,
            return_token_type_ids=self._use_token_types(),
        )
        rows = [{k: enc[k][i] for k in enc.keys()} for i in range(len(questions))]
        if labels is not None:
            for row, y in zip(rows, labels):
                row["labels"] = y
        return rows

    def _use_token_types(self) -> bool:
        """Only encoders with a second token type get segment ids (XLM-R-style e5 has one)."""
        return getattr(self.model_.encoder.config, "type_vocab_size", 0) > 1

    def _examples(self, items: Sequence[tuple[Document, Quote]]) -> tuple[list[str], list[str], list[int]]:
        topics = list(default_registry().topics)
        rng = random.Random(self.seed)
        questions, segments, labels = [], [], []
        for doc, quote in items:
            seg = self._quote_segment(doc, quote)
            gold = {s.topic: s.stance for s in quote.stances if s.topic in topics}
            unaddressed = [t for t in topics if t not in gold]
            chosen = [(t, LABELS.index(st)) for t, st in gold.items()]
            chosen += [(t, 0) for t in rng.sample(unaddressed, min(self.negatives, len(unaddressed)))]
            for t, y in chosen:
                questions.append(topic_question(t))
                segments.append(seg)
                labels.append(y)
        return questions, segments, labels

    # ---- model ------------------------------------------------------------------------------
    def _build(self, encoder_dir: str, tokenizer_dir: str | None = None) -> None:
        import torch
        from transformers import AutoConfig, AutoTokenizer
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        self.tokenizer_ = AutoTokenizer.from_pretrained(tokenizer_dir or encoder_dir, local_files_only=True)
        config = AutoConfig.from_pretrained(encoder_dir, local_files_only=True)
        model_cls = MODEL_MAPPING[type(config)]
        extra = {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_cls.__init__).parameters else {}
        encoder = model_cls.from_pretrained(encoder_dir, config=config, local_files_only=True, **extra)
        torch.manual_seed(self.seed)
        self.model_ = _mean_pooled_model(encoder, len(LABELS), self.dropout)

    def _freeze(self) -> None:
        """Frozen word embeddings (most of e5's parameters) and lowest layers make CPU steps affordable."""
        if self.freeze_embeddings:
            self.model_.encoder.get_input_embeddings().weight.requires_grad_(False)
        layers = getattr(getattr(self.model_.encoder, "encoder", None), "layer", None)
        if self.freeze_layers and layers is None:
            raise ValueError("freeze_layers needs a BERT-style encoder with `encoder.layer`")
        for layer in list(layers or [])[: self.freeze_layers]:
            layer.requires_grad_(False)

    def _set_threads(self) -> None:
        import torch

        if self.num_threads:
            torch.set_num_threads(self.num_threads)

    # ---- learning ---------------------------------------------------------------------------
    def fit(self, items: Sequence[tuple[Document, Quote]]) -> FineTunedStance:
        from transformers import set_seed

        if not items:
            raise ValueError("FineTunedStance.fit needs (Document, Quote) pairs with gold stances")
        self._set_threads()
        set_seed(self.seed)
        self._build(self._resolve_encoder())
        self._freeze()
        questions, segments, labels = self._examples(items)
        rows = self._encode(questions, segments, labels)
        use_hf = self.trainer == "hf" or (self.trainer == "auto" and importlib.util.find_spec("accelerate") is not None)
        self.loss_history_ = self._train_hf(rows) if use_hf else self._train_torch(rows)
        self.model_.eval()
        return self

    def _collator(self):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(self.tokenizer_)

    def _train_hf(self, rows: list[dict]) -> list[float]:
        from transformers import PrinterCallback, ProgressCallback, Trainer, TrainingArguments

        steps_per_epoch = -(-len(rows) // self.batch_size)
        total = self.max_steps or int(round(self.epochs * steps_per_epoch))
        with tempfile.TemporaryDirectory(prefix="stance-ft-") as out:
            args = TrainingArguments(
                output_dir=out,
                num_train_epochs=self.epochs,
                max_steps=self.max_steps or -1,
                per_device_train_batch_size=self.batch_size,
                learning_rate=self.lr,
                weight_decay=self.weight_decay,
                warmup_steps=int(self.warmup_ratio * total),
                lr_scheduler_type="linear",
                logging_steps=1,
                logging_strategy="steps",
                save_strategy="no",
                report_to=[],
                use_cpu=True,
                seed=self.seed,
                data_seed=self.seed,
                dataloader_num_workers=0,
                remove_unused_columns=False,
                disable_tqdm=not self.progress,
                log_level="warning",
            )
            trainer = Trainer(model=self.model_, args=args, train_dataset=rows, data_collator=self._collator())
            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
            if self.progress:
                trainer.add_callback(_LossBar())
            trainer.train()
        return [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]

    def _train_torch(self, rows: list[dict]) -> list[float]:
        """The same schedule as the Trainer path, for environments without `accelerate`."""
        import torch
        from tqdm.auto import tqdm
        from transformers import get_linear_schedule_with_warmup

        steps_per_epoch = -(-len(rows) // self.batch_size)
        total = self.max_steps or max(1, int(round(self.epochs * steps_per_epoch)))
        params = [p for p in self.model_.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=self.lr
        )
        sched = get_linear_schedule_with_warmup(opt, int(self.warmup_ratio * total), total)
        collate = self._collator()
        gen = torch.Generator().manual_seed(self.seed)
        self.model_.train()
        losses: list[float] = []
        with tqdm(total=total, desc="fine-tuning stance", disable=not self.progress) as bar:
            while len(losses) < total:
                order = torch.randperm(len(rows), generator=gen).tolist()
                for start in range(0, len(order), self.batch_size):
                    batch = collate([rows[i] for i in order[start : start + self.batch_size]])
                    loss = self.model_(**batch).loss
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    opt.zero_grad()
                    losses.append(loss.item())
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
                    if len(losses) >= total:
                        break
        return losses

    # ---- prediction -------------------------------------------------------------------------
    def predict_proba(self, items: Sequence[tuple[Document, Quote]], batch_size: int = 64):
        """Label probabilities, shape (len(items), n_topics, 4), columns in `LABELS` order."""
        import numpy as np
        import torch

        topics = list(default_registry().topics)
        if not items:
            return np.zeros((0, len(topics), len(LABELS)), np.float32)
        self._set_threads()
        segments = [self._quote_segment(d, q) for d, q in items]
        questions = [topic_question(t) for t in topics]
        pairs = [(i, j) for i in range(len(items)) for j in range(len(topics))]
        rows = self._encode([questions[j] for _, j in pairs], [segments[i] for i, _ in pairs])
        order = sorted(range(len(rows)), key=lambda k: len(rows[k]["input_ids"]))
        out = np.zeros((len(items), len(topics), len(LABELS)), np.float32)
        collate = self._collator()
        self.model_.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                logits = self.model_(**collate([rows[k] for k in chunk])).logits
                proba = torch.softmax(logits.float(), dim=-1).numpy()
                for k, p in zip(chunk, proba):
                    out[pairs[k]] = p
        return out

    def predict(self, items: Sequence[tuple[Document, Quote]], batch_size: int = 64) -> list[list[Stance]]:
        topics = list(default_registry().topics)
        proba = self.predict_proba(items, batch_size=batch_size)
        result = []
        for per_topic in proba:
            stances = []
            for t, p in zip(topics, per_topic):
                k = int(p.argmax())
                if k != 0:
                    stances.append(Stance(topic=t, stance=LABELS[k], confidence=round(float(p[k]), 4)))
            result.append(sorted(stances, key=lambda s: -(s.confidence or 0)))
        return result

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Encoder and head as safetensors, parameters as JSON, the tokenizer's own files."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "labels": list(LABELS),
            "topics": list(default_registry().topics),
            "params": self.get_params(),
            "loss_history": getattr(self, "loss_history_", []),
        }
        (path / "finetune.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        self.model_.encoder.save_pretrained(path / "encoder", safe_serialization=True)
        head = {k: v.detach().contiguous() for k, v in self.model_.classifier.state_dict().items()}
        save_file(head, str(path / "head.safetensors"))
        self.tokenizer_.save_pretrained(path / "tokenizer")

    @classmethod
    def load(cls, path: Path | str) -> FineTunedStance:
        from safetensors.torch import load_file

        path = Path(path)
        meta = json.loads((path / "finetune.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION or meta.get("labels") != list(LABELS):
            raise ValueError(f"{path}: not a fine-tuned stance model of format {FORMAT_VERSION}")
        if meta["topics"] != list(default_registry().topics):
            raise ValueError(f"{path}: trained on topics {meta['topics']}, the registry now has others")
        obj = cls(**meta["params"])
        obj._build(str(path / "encoder"), str(path / "tokenizer"))
        obj.model_.classifier.load_state_dict(load_file(str(path / "head.safetensors")))
        obj.model_.eval()
        obj.loss_history_ = meta.get("loss_history", [])
        return obj
