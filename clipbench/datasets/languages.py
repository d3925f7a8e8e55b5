"""Languages as a run dimension: which languages a dataset's texts come in, and the dataset in one of them.

A classification dataset has its English prompts in ``clipbench/prompts/<name>.yaml`` and one file per
other language in ``clipbench/prompts/<language>/<name>.yaml`` (classnames in label order and templates);
a multilingual image-text set (``multilingual.py``: Crossmodal-3600, XTD10) carries its captions in every
language it publishes. Every other dataset is scored as given and counts as English. ``in_language``
returns the adapter whose texts are in that language (its ``language`` field says which), or a one-line
error naming the languages the dataset has. A set of some of ImageNet's classes (ImageNet-A, -R, -O) takes
ImageNet's translated names for its classes (``prompt_classes``). A user's prompt file wins over the packaged
translation (``_with_user_prompts``).

Codes are ISO 639-1 where there is one (``zh``, ``ja``), as Crossmodal-3600 writes them; CLIP_benchmark's
``cn`` and ``jp`` and XTD10's ``jp`` are accepted as aliases. XTD200 and Flickr30k-200 name their 201 languages
by FLORES-200 codes (``zho_Hans``, ``arb_Arab``), kept as such, except English (``eng_Latn``), which is ``en``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from clipbench.datasets.base import CLASSIFICATION, DatasetAdapter
from clipbench.datasets.prompts import PromptSet, packaged_prompt_languages, packaged_prompts, with_prompts
from clipbench.foundations.config import resolve_data_root
from clipbench.foundations.errors import ClipbenchError, DataError

DEFAULT_LANGUAGE = "en"
#: ``--language all``: every language each dataset has
ALL = "all"
ALIASES = {"cn": "zh", "jp": "ja", "zh-cn": "zh", "zh_cn": "zh", "eng_latn": "en"}
_FLORES = re.compile(r"([a-z]{3})[_-]([a-z]{4})")
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
    """``"ZH"`` -> ``"zh"``, ``"jp"`` -> ``"ja"``, FLORES-200's ``"ZHO_hans"`` -> ``"zho_Hans"`` (``eng_Latn`` ->
    ``"en"``); a code that is not a short tag is an error."""
    if not isinstance(code, str) or not code.strip():
        raise ClipbenchError(f"a language must be a code such as en, zh or de, got {code!r}")
    text = code.strip().lower()
    text = ALIASES.get(text, text)
    flores = _FLORES.fullmatch(text)
    if flores:  # FLORES-200's language_Script (XTD200, Flickr30k-200): zho_Hans
        return f"{flores[1]}_{flores[2].title()}"
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


def dataset_languages(adapter: DatasetAdapter, data_root=None) -> tuple[str, ...]:
    """The languages ``adapter``'s texts come in (English first where it has English); a set whose texts lie
    with its data (Babel-ImageNet: ``languages_at``) reads them under ``data_root`` where given."""
    if hasattr(adapter, "languages_at"):
        return adapter.languages_at(data_root)
    own = getattr(adapter, "languages", None)
    if own:
        return tuple(own)
    if adapter.kind == CLASSIFICATION:
        return packaged_prompt_languages(_prompt_name(adapter)) or (DEFAULT_LANGUAGE,)
    return (DEFAULT_LANGUAGE,)


def _prompt_name(adapter: DatasetAdapter) -> str:
    """The packaged prompt files a classification set reads: its own, or those it shares (ImageNetV2's are
    ImageNet's: ``prompts_of``)."""
    return getattr(adapter, "prompts_of", "") or adapter.name


def _translated(adapter: DatasetAdapter, language: str) -> PromptSet:
    """The packaged prompts of ``adapter`` in ``language``; a set of some of a shared file's classes
    (ImageNet-A's 200 of ImageNet's 1000: ``prompt_classes``) takes those classes' names, in its label order."""
    prompts = packaged_prompts(_prompt_name(adapter), language=language)
    classes = getattr(adapter, "prompt_classes", ())
    if classes:
        prompts = dataclasses.replace(prompts, classnames=[prompts.classnames[i] for i in classes])
    return prompts


def _declared(prompts: PromptSet) -> str:
    """The language a user's prompt file declares (``language: zh``), canonical; "" when it declares none."""
    if not prompts.language:
        return ""
    try:
        return canonical_language(prompts.language)
    except ClipbenchError as exc:
        raise DataError(f"{prompts.where}: 'language': {exc}") from exc


def _with_user_prompts(adapter: DatasetAdapter, own: PromptSet, language: str) -> DatasetAdapter:
    """``adapter`` carrying a user's prompt file, in ``language``: the file's classnames and templates win; what
    it leaves out comes from the packaged texts of that language. A file that declares another language is an
    error."""
    declared = _declared(own)
    if declared and declared != language:
        raise DataError(f"{adapter.name}: the prompts file {own.where} is in {described([declared])}, but the run "
                        f"asks for {described([language])}: pass --language {declared}, or change its 'language'")
    if language == adapter.language or (own.classnames and own.templates):
        return dataclasses.replace(adapter, language=language)
    have = dataset_languages(adapter)
    if language not in have:
        gives = "classnames" if own.classnames else "templates"
        raise DataError(f"{adapter.name}: the prompts file {own.where} gives only {gives}, and {adapter.name} has "
                        f"no packaged texts in {described([language])} for the rest (its languages are "
                        f"{described(have)})")
    base = with_prompts(adapter, _translated(adapter, language), user=False)
    return dataclasses.replace(with_prompts(base, own), language=language)


def described(codes: Sequence[str]) -> str:
    return ", ".join(f"{c} ({NAMES[c]})" if c in NAMES else c for c in codes)


def in_language(adapter: DatasetAdapter, language: str, data_root=None) -> DatasetAdapter:
    """``adapter`` with its texts in ``language`` (a ``DataError`` naming the languages it has otherwise);
    ``data_root`` (default: the configured one) where a set's texts lie with its data (``texts_in``)."""
    language = canonical_language(language)
    own = getattr(adapter, "user_prompts", None)
    if own is not None:  # the user's file wins over the packaged translation
        return _with_user_prompts(adapter, own, language)
    if hasattr(adapter, "texts_in"):  # Babel-ImageNet: each language's classes and names in its files
        return adapter.texts_in(language, resolve_data_root(data_root))
    if language == adapter.language:
        return adapter
    have = dataset_languages(adapter)
    if language not in have:
        raise DataError(f"{adapter.name} has no texts in {described([language])}: its languages are "
                        f"{described(have)}")
    if hasattr(adapter, "languages"):  # a multilingual set picks its captions itself
        return dataclasses.replace(adapter, language=language)
    translated = with_prompts(adapter, _translated(adapter, language), user=False)
    return dataclasses.replace(translated, language=language)


def plan_languages(adapter: DatasetAdapter, requested: Sequence[str], data_root=None) -> list[DatasetAdapter]:
    """One adapter per requested language (``("all",)``: each language the dataset has), checked up front.

    A user's prompt file holds one language's texts: with it, the run asks for one language (``all``: the one
    the file declares, else the adapter's)."""
    own = getattr(adapter, "user_prompts", None)
    if own is not None:
        if tuple(requested) == (ALL,):
            requested = (_declared(own) or adapter.language,)
        elif len(requested) > 1:
            raise DataError(f"{adapter.name}: the prompts file {own.where} holds the texts of one language, but the "
                            f"run asks for {len(requested)} ({', '.join(requested)}): run one --language per file")
    codes = dataset_languages(adapter, data_root) if tuple(requested) == (ALL,) else requested
    return [in_language(adapter, code, data_root) for code in codes]
