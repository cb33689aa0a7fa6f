import unicodedata

from inference.analyzer import _nfc_with_offsets
from inference.langid import detect_language


def test_seed_languages_are_detected_from_their_text(seed_docs):
    assert [detect_language(d.text) for d in seed_docs] == [d.lang for d in seed_docs]


def test_kanji_only_japanese_with_kana_elsewhere_and_scripts_outside_the_set():
    assert detect_language("岸田外相は語った") == "ja"
    assert detect_language("สวัสดีครับ ยินดีต้อนรับ") is None
    assert detect_language("   ") is None


def test_nfd_input_offsets_map_back_to_the_original_text():
    original = unicodedata.normalize("NFD", "Ông Kishida khẳng định: “Chúng tôi có một khởi đầu tốt đẹp”.")
    nfc, mapping = _nfc_with_offsets(original)
    start = nfc.index("Chúng")
    end = nfc.index("”")
    assert unicodedata.normalize("NFC", original[mapping[start] : mapping[end]]) == nfc[start:end]
