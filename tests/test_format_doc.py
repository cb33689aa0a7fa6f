import re

from inference.registry import default_registry
from tests.conftest import ANNOTATIONS


def _table_ids(markdown: str, heading: str) -> list[str]:
    section = markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)


def test_format_doc_lists_the_registry_speakers_and_topics():
    md = (ANNOTATIONS / "FORMAT.md").read_text(encoding="utf-8")
    reg = default_registry()
    assert _table_ids(md, "Speakers") == [*reg.speakers, "other"]
    assert _table_ids(md, "Topics and stance") == list(reg.topics)


def test_office_dates_in_registry_resolve_titles_by_date():
    reg = default_registry()
    import datetime as dt

    assert reg.holder("jp_foreign_minister", dt.date(2013, 11, 2)) == "kishida"
    assert reg.holder("jp_foreign_minister", dt.date(2018, 7, 31)) == "kono"
    assert reg.holder("jp_defense_minister", dt.date(2016, 1, 1)) == "other"
    assert reg.holder("ru_defense_minister", dt.date(2018, 7, 31)) == "shoigu"
    assert reg.holder("ru_defense_minister", None) is None
