"""The per-language lexicon files: data the detector relies on."""

from __future__ import annotations

import pytest

from inference.pipeline.lexicon import available_languages, load_lexicon


@pytest.mark.parametrize("lang", available_languages())
def test_every_act_cue_is_found_as_a_cue_so_the_flag_can_reach_the_detector(lang):
    """An act cue the cue finder never returns would be a dead entry: each must be found as
    (part of) a cue in a text that holds it."""
    lex = load_lexicon(lang)
    assert lex.act_cues, f"{lang} lists no act_cues"
    for act in lex.act_cues:
        text = f"X {act} Y"
        found = [text[s:e] for s, e in lex.find_cues(text)]
        assert any(lex.is_act_cue(c) for c in found), (lang, act, found)
