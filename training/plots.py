"""Charts logged with each run: per-language and per-topic metric bars, confusion matrices (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from inference.document import STANCE_LABELS  # noqa: E402
from inference.registry import default_registry  # noqa: E402
from training.errors import align  # noqa: E402

BAR_METRICS = ("quote_f1_overlap", "attribution_accuracy_e2e", "stance_macro_f1", "stance_macro_f1_gold_spans")


def per_language_bars(per_lang: dict[str, dict[str, float]], title: str, path: Path) -> None:
    langs = sorted(per_lang)
    x = np.arange(len(langs))
    width = 0.8 / len(BAR_METRICS)
    fig, ax = plt.subplots(figsize=(max(6, len(langs) * 0.9), 4))
    for i, metric in enumerate(BAR_METRICS):
        ax.bar(x + i * width, [per_lang[lang].get(metric, 0.0) for lang in langs], width, label=metric)
    ax.set_xticks(x + width * (len(BAR_METRICS) - 1) / 2, langs)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


TOPIC_METRICS = (("stance_f1", "end to end"), ("stance_f1_gold_spans", "on gold quote spans"))


def per_topic_bars(per_topic: dict[str, dict[str, float]], title: str, path: Path) -> None:
    """Stance F1 per topic (over its quote/stance pairs), with the number of gold pairs behind each."""
    order = [t for t in default_registry().topics if t in per_topic] + sorted(set(per_topic) - set(default_registry().topics))
    y = np.arange(len(order))
    height = 0.8 / len(TOPIC_METRICS)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.45 * len(order)))
    for i, (metric, label) in enumerate(TOPIC_METRICS):
        ax.barh(y + i * height, [per_topic[t].get(metric, 0.0) for t in order], height, label=label)
    ax.set_yticks(y + height * (len(TOPIC_METRICS) - 1) / 2, [f"{t} (n={int(per_topic[t].get('n_gold_stances', 0))})" for t in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("stance F1")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(TOPIC_METRICS), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def confusion(labels: list[str], pairs: list[tuple[str, str]], title: str, path: Path) -> None:
    idx = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for g, p in pairs:
        m[idx[g], idx[p]] += 1
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 0.8 + 0.6 * len(labels)))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > m.max() / 2 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_charts(results, scores: dict, out: Path) -> None:
    """Per-language and per-topic bars for each evaluation, and speaker/stance confusion over aligned quotes."""
    out.mkdir(parents=True, exist_ok=True)
    speakers = [*default_registry().speakers, "other", "none", "missed"]
    stances = [*STANCE_LABELS, "none"]
    for kind, res in results.items():
        per_lang = scores.get(kind, {}).get("per_language", {})
        if per_lang:
            per_language_bars(per_lang, f"{kind}: per language", out / f"{kind}_per_language.png")
        per_topic = scores.get(kind, {}).get("per_topic", {})
        if per_topic:
            per_topic_bars(per_topic, f"{kind}: stance F1 per topic", out / f"{kind}_per_topic.png")
        sp_pairs, st_pairs = [], []
        preds = {p.doc_id: p for p in res.pred}
        for gold in res.gold:
            for g, p in align(gold, preds[gold.doc_id]):
                if g is None:
                    continue
                sp_pairs.append((g.speaker or "none", "missed" if p is None else (p.speaker or "none")))
                if p is None:
                    continue
                pst = {s.topic: s.stance for s in p.stances}
                st_pairs += [(s.stance, pst.get(s.topic, "none")) for s in g.stances]
                gst = {s.topic for s in g.stances}
                st_pairs += [("none", s.stance) for s in p.stances if s.topic not in gst]
        confusion(speakers, sp_pairs, f"{kind}: speaker (gold quotes)", out / f"{kind}_speaker_confusion.png")
        confusion(stances, st_pairs, f"{kind}: stance per (quote, topic)", out / f"{kind}_stance_confusion.png")
