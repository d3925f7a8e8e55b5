"""Languages as a run dimension: which languages a dataset's texts come in, and the dataset in one of them.

A classification dataset has its English prompts in ``clipbench/prompts/<name>.yaml`` and one file per
other language in ``clipbench/prompts/<language>/<name>.yaml`` (classnames in label order and templates);
a multilingual image-text set (``multilingual.py``: Crossmodal-3600, XTD10) carries its captions in every
language it publishes. Every other dataset is scored as given and counts as English. ``in_language``
returns the adapter whose texts are in that language (its ``language`` field says which), or a one-line
error naming the languages the dataset has.

Codes are ISO 639-1 where there is one (``zh``, ``ja``), as Crossmodal-3600 writes them; CLIP_benchmark's
``cn`` and ``jp`` and XTD10's ``jp`` are accepted as aliases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from clipbench.datasets.base import CLASSIFICATION, DatasetAdapter
from clipbench.foundations.errors import ClipbenchError, DataError

DEFAULT_LANGUAGE = "en"
#: ``--language all``: every language each dataset has
ALL = "all"
ALIASES = {"cn": "zh", "jp": "ja", "zh-cn": "zh", "zh_cn": "zh"}
#: English names of the codes the packaged files and the multilingual sets use (for listings and errors)
NAMES = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fil": "Filipino", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "mi": "Maori", "nl": "Dutch", "no": "Norwegian", "pl": "Polish",
    "pt": "Portuguese", "quz": "Cusco Quechua", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "sw": "Swahili", "te": "Telugu", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese",
    "zh": "Chinese",
}


def canonical_language(code: str) -> str:
    """``"ZH"`` -> ``"zh"``, ``"jp"`` -> ``"ja"``; a code that is not a short lower-case tag is an error."""
    if not isinstance(code, str) or not code.strip():
        raise ClipbenchError(f"a language must be a code such as en, zh or de, got {code!r}")
    text = code.strip().lower()
    text = ALIASES.get(text, text)
    if text != ALL and not (text.replace("-", "").isalpha() and text.isascii() and 2 <= len(text) <= 8):
        raise ClipbenchError(f"{code!r} is not a language code (expected ISO 639 codes such as en, zh, de, or all)")
    return text


def language_list(value) -> tuple[str, ...]:
    """The ``language`` option (``"en,zh"``, ``["en", "zh"]`` or ``"all"``) as canonical codes, in order."""
    items = [v for v in value.split(",")] if isinstance(value, str) else list(value)
    codes = [canonical_language(v) for v in items]
    if not codes:
        raise ClipbenchError("--language needs at least one language code")
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise ClipbenchError(f"language {repeated[0]} given more than once")
    if ALL in codes and len(codes) > 1:
        raise ClipbenchError("--language all stands alone (it means every language each dataset has)")
    return tuple(codes)


def valid_language_option(value) -> bool:
    try:
        return (isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))) \
            and bool(language_list(value))
    except ClipbenchError:
        return False


def dataset_languages(adapter: DatasetAdapter) -> tuple[str, ...]:
    """The languages ``adapter``'s texts come in (English first where it has English)."""
    own = getattr(adapter, "languages", None)
    if own:
        return tuple(own)
    if adapter.kind == CLASSIFICATION:
        from clipbench.datasets.prompts import packaged_prompt_languages

        return packaged_prompt_languages(_prompt_name(adapter)) or (DEFAULT_LANGUAGE,)
    return (DEFAULT_LANGUAGE,)


def _prompt_name(adapter: DatasetAdapter) -> str:
    """The packaged prompt files a classification set reads: its own, or those it shares (ImageNetV2's are
    ImageNet's: ``prompts_of``)."""
    return getattr(adapter, "prompts_of", "") or adapter.name


def described(codes: Sequence[str]) -> str:
    return ", ".join(f"{c} ({NAMES[c]})" if c in NAMES else c for c in codes)


def in_language(adapter: DatasetAdapter, language: str) -> DatasetAdapter:
    """``adapter`` with its texts in ``language`` (a ``DataError`` naming the languages it has otherwise)."""
    language = canonical_language(language)
    if language == adapter.language:
        return adapter
    have = dataset_languages(adapter)
    if language not in have:
        raise DataError(f"{adapter.name} has no texts in {described([language])}: its languages are "
                        f"{described(have)}")
    if hasattr(adapter, "languages"):  # a multilingual set picks its captions itself
        return dataclasses.replace(adapter, language=language)
    from clipbench.datasets.prompts import packaged_prompts, with_prompts

    translated = with_prompts(adapter, packaged_prompts(_prompt_name(adapter), language=language))
    return dataclasses.replace(translated, language=language)


def plan_languages(adapter: DatasetAdapter, requested: Sequence[str]) -> list[DatasetAdapter]:
    """One adapter per requested language (``("all",)``: each language the dataset has), checked up front."""
    codes = dataset_languages(adapter) if tuple(requested) == (ALL,) else requested
    return [in_language(adapter, code) for code in codes]
