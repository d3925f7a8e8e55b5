"""The tokenizer's clean-up skips ftfy for printable ASCII without ``&`` (``models.tokenizer.clean_text``): for
such text ftfy and the HTML unescapes are the identity, so the token ids stay OpenAI's. Checked on every
classname and template of every shipped prompt file (all languages), every template filled with a classname,
and on the strings that do need ftfy."""

from __future__ import annotations

import html
from pathlib import Path

import ftfy
import pytest
import regex
import yaml

import clipbench
from clipbench.models.tokenizer import clean_text

PROMPTS = Path(clipbench.__file__).parent / "prompts"


def reference_clean(text: str) -> str:
    """OpenAI's basic_clean + whitespace_clean + lower, as CLIP's simple_tokenizer does it, on every string."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


def _shipped_strings() -> list[str]:
    strings = []
    for path in sorted(PROMPTS.rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = [str(c) for c in data.get("classnames") or []]
        templates = [str(t) for t in data.get("templates") or []]
        for prompts in (data.get("per_class_prompts") or {}).values():
            strings += [str(p) for p in prompts]
        strings += names + templates
        strings += [t.replace("{c}", names[i % len(names)]) for i, t in enumerate(templates) if names]
    return strings


def test_every_shipped_prompt_cleans_as_openais_tokenizer_cleans_it():
    strings = _shipped_strings()
    assert len(strings) > 5000
    assert [clean_text(s) for s in strings] == [reference_clean(s) for s in strings]


@pytest.mark.parametrize("text", ["a photo of a  Dog.", "  tabby CAT  ", "a &amp; b", "a &amp;amp; b",
                                  "caf\u00e9", "cafÃ©", "x\x1b[31mred", "line\r\nbreak", "tab\there",
                                  "\ufb01sh", "\u201cquoted\u201d", "zero\u200bwidth", "", "   "])
def test_text_that_needs_ftfy_still_gets_it(text):
    assert clean_text(text) == reference_clean(text)
