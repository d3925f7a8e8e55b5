"""Classnames and prompt templates as data: the packaged files under ``clipbench/prompts/`` and user files.

A prompt file (YAML or JSON) holds ``classnames`` in label order and ``templates`` (format strings
with ``{c}``). A classname entry may be a list of names (CLIP's FER2013 prompts): the first is the
display name and every template is applied to every name. Packaged files also carry ``origin``
(where the facts come from) and, for ImageNet, ``wnids`` and named ``template_sets``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clipbench.datasets.base import CLASSIFICATION, DatasetAdapter
from clipbench.foundations.errors import ClipbenchError, DataError


@dataclass(frozen=True)
class PromptSet:
    """One prompt file, parsed and checked."""

    classnames: list[str]
    templates: list[str]
    #: classname -> every name for that class, only where a class has more than one
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    template_sets: dict[str, list[str]] = field(default_factory=dict)
    origin: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    #: the language the file declares (its ``language`` key, as written; ``datasets.languages`` reads it), and
    #: where the file is, for messages
    language: str = ""
    where: str = ""
    #: SHA-256 of a user file's bytes (``load_prompt_file``; "" for packaged files), and whether the file lies
    #: beside the data (``prompts.yaml`` of a ``folder:`` set: part of the dataset, not a run's choice)
    sha256: str = ""
    beside_data: bool = False

    def per_class_prompts(self, templates: list[str] | None = None) -> dict[str, list[str]] | None:
        """Prompt lists for classes with synonyms (every template x every name); None when there are none."""
        if not self.synonyms:
            return None
        templates = self.templates if templates is None else templates
        return {
            name: [t.format(c=alias) for alias in self.synonyms.get(name, [name]) for t in templates]
            for name in self.classnames
        }


def _check_templates(templates: Any, where: str) -> list[str]:
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise DataError(f"{where}: 'templates' must be a non-empty list of strings")
    for t in templates:
        try:
            t.format(c="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise DataError(f"{where}: template {t!r} is not a format string with {{c}} ({exc})") from exc
        if "{c}" not in t:
            raise DataError(f"{where}: template {t!r} does not contain {{c}}")
    return list(templates)


def parse_prompt_doc(doc: Any, where: str, require_classnames: bool = True) -> PromptSet:
    """Validate one prompt document (already loaded from YAML/JSON)."""
    if not isinstance(doc, dict):
        raise DataError(f"{where}: expected a mapping with 'classnames' and 'templates'")
    classnames: list[str] = []
    synonyms: dict[str, list[str]] = {}
    entries = doc.get("classnames")
    if entries is not None or require_classnames:
        if not isinstance(entries, list) or not entries:
            raise DataError(f"{where}: 'classnames' must be a non-empty list")
        for entry in entries:
            names = entry if isinstance(entry, list) else [entry]
            if not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise DataError(f"{where}: classname entry {entry!r} must be a non-empty string or list of strings")
            classnames.append(names[0])
            if len(names) > 1:
                synonyms[names[0]] = list(names)
        # Repeats are allowed: CLIP's ImageNet names repeat "missile" and "sunglasses", as published.
        if synonyms and len(set(classnames)) != len(classnames):
            raise DataError(f"{where}: classnames with synonyms must be unique")
    templates = _check_templates(doc.get("templates"), where) if "templates" in doc else []
    sets = doc.get("template_sets") or {}
    if not isinstance(sets, dict):
        raise DataError(f"{where}: 'template_sets' must map a name to a list of templates")
    template_sets = {str(k): _check_templates(v, f"{where} template_sets.{k}") for k, v in sets.items()}
    language = doc.get("language") or ""
    if not isinstance(language, str):
        raise DataError(f"{where}: 'language' must be a language code such as zh, got {language!r}")
    return PromptSet(classnames, templates, synonyms, template_sets, str(doc.get("origin", "")), doc, language, where)


#: libyaml's safe loader where PyYAML was built with it: the 22 packaged prompt files parse in ~0.05 s instead
#: of the pure-Python loader's ~0.4 s, which every run paid when the dataset registry loaded
#: (tests/datasets/test_datasets_contract.py checks both loaders read every packaged file the same)
FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _packaged_doc(name: str, language: str = "en") -> dict[str, Any]:
    parts = ("prompts", f"{name}.yaml") if language == "en" else ("prompts", language, f"{name}.yaml")
    resource = resources.files("clipbench").joinpath(*parts)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ClipbenchError(f"no packaged prompt file clipbench/{'/'.join(parts)}; reinstall clipbench") from exc
    return yaml.load(text, Loader=FAST_SAFE_LOADER)  # noqa: S506 (a safe loader)


def packaged_prompts(name: str, require_classnames: bool = True, language: str = "en") -> PromptSet:
    """The packaged prompt file ``clipbench/prompts/<name>.yaml`` (English), or ``prompts/<language>/<name>.yaml``."""
    where = f"clipbench/prompts/{name}.yaml" if language == "en" else f"clipbench/prompts/{language}/{name}.yaml"
    return parse_prompt_doc(_packaged_doc(name, language), where, require_classnames)


@functools.cache
def packaged_prompt_languages(name: str) -> tuple[str, ...]:
    """The languages with a packaged prompt file for ``name``: "en" (``prompts/<name>.yaml``) first, then every
    ``prompts/<language>/<name>.yaml``, sorted."""
    folder = resources.files("clipbench").joinpath("prompts")
    others = sorted(entry.name for entry in folder.iterdir()
                    if entry.is_dir() and not entry.name.startswith(("_", ".")) and entry.joinpath(f"{name}.yaml").is_file())
    return ("en", *others) if folder.joinpath(f"{name}.yaml").is_file() else tuple(others)


def load_prompt_file(path: str | os.PathLike) -> PromptSet:
    """A user's prompt file (.yaml/.yml/.json); ``classnames`` and ``templates`` are each optional."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise DataError(f"cannot read prompt file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"prompt file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"prompt file {path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {first}") from exc
    if not isinstance(doc, dict) or not ({"classnames", "templates"} & set(doc)):
        raise DataError(f"prompt file {path}: expected a mapping with 'classnames' and/or 'templates'")
    parsed = parse_prompt_doc(doc, str(path), require_classnames=False)
    return dataclasses.replace(parsed, sha256=hashlib.sha256(data).hexdigest())


def with_prompts(adapter: DatasetAdapter, prompts: PromptSet | str | os.PathLike, user: bool = True) -> DatasetAdapter:
    """A copy of ``adapter`` using custom classnames and/or templates (same data, same label space).

    Replacing classnames requires one name per class of the adapter; replacing templates drops
    any per-class prompt lists unless the file gives synonyms of its own. A ``user`` file (not a packaged
    translation) is kept as the adapter's ``user_prompts``: it wins over the packaged translations when the run
    asks for another language (``datasets.languages``).
    """
    if adapter.kind != CLASSIFICATION:
        raise DataError(f"{adapter.name} is an {adapter.kind} dataset: custom classnames and templates apply to "
                        "classification datasets only")
    if not isinstance(prompts, PromptSet):
        prompts = load_prompt_file(prompts)
    changes: dict[str, Any] = {}
    if prompts.classnames:
        if len(prompts.classnames) != len(adapter.classnames):
            raise DataError(
                f"{f'prompt file {prompts.where} gives' if prompts.where else 'custom prompts give'} "
                f"{len(prompts.classnames)} classnames but {adapter.name} has "
                f"{len(adapter.classnames)} classes"
            )
        changes["classnames"] = list(prompts.classnames)
    if prompts.templates:
        changes["templates"] = list(prompts.templates)
    if changes:
        changes["per_class_prompts"] = prompts.per_class_prompts(changes.get("templates", adapter.templates))
    if user:
        changes["user_prompts"] = prompts
    return dataclasses.replace(adapter, **changes)
