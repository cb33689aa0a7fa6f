"""Language identification restricted to the annotated languages, with script rules first.

Script rules settle the cases statistical detectors get wrong on short news text (a kanji-only
Japanese headline read as Chinese, Bengali misread by langid): any kana → ja, Hangul → ko,
Bengali script → bn. The rest goes to lingua, restricted to the registry's languages and
loaded once, lazily.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import islice

from .registry import default_registry

_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("bn", re.compile(r"[\u0980-\u09ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff\u0750-\u077f]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
)
_ANY_SCRIPT = re.compile("|".join(rx.pattern for _, rx in _SCRIPTS))
"""Whether any script rule can apply: most Latin-script texts skip counting six scripts."""
_VI_MARKS = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.I)


def _at_least_quarter(count: int, sample: str) -> bool:
    """Whether `count` is at least a quarter of the sample's letters; counting them one by one
    only when the sample's length leaves it open (a script that fills a quarter of all
    characters fills a quarter of the letters)."""
    return count * 4 >= len(sample) or count * 4 >= sum(1 for c in sample if c.isalpha())


@lru_cache(maxsize=1)
def _detector():
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, lang.upper()) for lang in default_registry().languages]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's main language, or None when nothing is recognisable."""
    sample = text[:2000]
    if _ANY_SCRIPT.search(sample):
        counts = {lang: len(rx.findall(sample)) for lang, rx in _SCRIPTS}
        if counts["ja"]:
            return "ja"
        best = max(counts, key=counts.get)
        if counts[best] and _at_least_quarter(counts[best], sample):
            return best
    if len(list(islice(_VI_MARKS.finditer(sample), 3))) >= 3:
        return "vi"
    if not any(c.isalpha() for c in sample):
        return None
    found = _detector().detect_language_of(sample)
    return found.iso_code_639_1.name.lower() if found else None
