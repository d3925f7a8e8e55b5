"""Suites: YAML files naming datasets, tasks and options, shipped here beside this module.

A suite file::

    name: smoke                # optional, defaults to the file's stem
    version: 1                 # required integer; goes into every result record
    description: ...           # optional
    model: clipbench-tiny      # optional default model(s) when `--model` is not given
    datasets: [digits]         # registered dataset names (or folder:/csv:/hf: specs)
    tasks: [zeroshot, linear_probe]
    # a dataset may name its own tasks instead of ``tasks`` (suites mixing dataset kinds, e.g. datacomp):
    #   datasets: [cifar10, {flickr30k: [zeroshot_retrieval]}]
    options: {batch_size: 128, offline: true}   # defaults that command-line flags override

Everything is validated up front (unknown keys, wrong types, unknown datasets with close
matches) so a typo fails in a second with one line instead of after an hour of extraction.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from clipbench.foundations.errors import ClipbenchError, UnknownNameError
from clipbench.foundations.option import an_int

_TOP_KEYS = {"name", "version", "description", "model", "datasets", "tasks", "options", "subsets"}


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    datasets: tuple[str, ...]
    tasks: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    #: per-task options (``tasks: [{linear_probe: {solver: sklearn}}]``), applied over ``options``
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: datasets that run their own tasks instead of the suite's ``tasks:`` (``datasets: [{flickr30k:
    #: [zeroshot_retrieval]}]``); ``tasks`` then holds every task the suite runs, ``base_tasks`` the ``tasks:`` list
    dataset_tasks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    base_tasks: tuple[str, ...] = ()
    #: dataset -> {split, fingerprint, digest, indices}: score only these samples (``clipbench lite`` writes it)
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tasks_for(self, dataset: Any) -> tuple[str, ...]:
        """The tasks the suite runs on ``dataset`` (a name as the suite gives it), in suite order."""
        chosen = self.dataset_tasks.get(dataset) if isinstance(dataset, str) else None
        if chosen is None:
            chosen = self.base_tasks or self.tasks
        return tuple(t for t in self.tasks if t in chosen)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears more than once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def builtin_suite_names() -> list[str]:
    folder = resources.files(__name__)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _close(name: str, choices: list[str]) -> str:
    matches = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


def _default_dataset_check(name: str) -> None:
    from clipbench.datasets import get_dataset

    get_dataset(name)


def load_suite(name_or_path: str | os.PathLike, check_dataset: Callable[[str], None] | None = _default_dataset_check
               ) -> Suite:
    """A built-in suite by name, or a suite YAML file by path; validated (``ClipbenchError`` on problems)."""
    text_name = os.fspath(name_or_path)
    path = Path(text_name).expanduser()
    builtins = builtin_suite_names()
    if text_name in builtins:
        source = f"suite {text_name!r}"
        text = resources.files(__name__).joinpath(f"{text_name}.yaml").read_text(encoding="utf-8")
        default_name = text_name
    elif path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ClipbenchError(f"suite file not found: {path}")
        source, default_name = str(path), path.stem
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClipbenchError(f"cannot read suite file {path}: {exc}") from exc
    else:
        raise UnknownNameError(f"unknown suite {text_name!r} (built-in: {', '.join(builtins)}; or pass a .yaml path)"
                               f"{_close(text_name, builtins)}")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ClipbenchError(f"{source}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    return parse_suite(data, source, default_name, check_dataset)


def parse_suite(data: Any, source: str, default_name: str,
                check_dataset: Callable[[str], None] | None = _default_dataset_check) -> Suite:
    """Validate the parsed YAML mapping of a suite."""
    if not isinstance(data, dict):
        raise ClipbenchError(f"{source}: a suite must be a YAML mapping with version, datasets and tasks")
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise ClipbenchError(f"{source}: unknown key {unknown[0]!r}{_close(unknown[0], sorted(_TOP_KEYS))} "
                             f"(allowed: {', '.join(sorted(_TOP_KEYS))})")
    for required in ("version", "datasets", "tasks"):
        if required not in data:
            raise ClipbenchError(f"{source}: missing required key {required!r}")
    if not an_int(data["version"]):
        raise ClipbenchError(f"{source}: 'version' must be an integer, got {data['version']!r}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ClipbenchError(f"{source}: 'name' must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ClipbenchError(f"{source}: 'description' must be a string")
    datasets, dataset_tasks = _dataset_entries(data["datasets"], source)
    tasks, task_options = _tasks(data["tasks"], source)
    base_tasks = tuple(tasks) if dataset_tasks else ()
    tasks += [t for own in dataset_tasks.values() for t in own if t not in tasks]
    tasks = list(dict.fromkeys(tasks))
    models = data.get("model")
    models = () if models is None else tuple(_str_list(models if isinstance(models, list) else [models], "model",
                                                       source))
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ClipbenchError(f"{source}: 'options' must be a mapping")
    _check_options(options, source)
    if check_dataset is not None:
        for dataset in datasets:
            try:
                check_dataset(dataset)
            except ClipbenchError as exc:
                raise type(exc)(f"{source}: {exc}") from exc
    subsets = _subsets(data.get("subsets") or {}, datasets, source)
    return Suite(name, int(data["version"]), tuple(datasets), tuple(tasks), dict(options), models, description,
                 source, task_options, dataset_tasks, base_tasks, subsets)


def _subsets(value: Any, datasets: list[str], source: str) -> dict[str, dict[str, Any]]:
    """``subsets:`` (``clipbench lite``'s suites): per listed dataset, its split, full-split fingerprint and the
    sorted, distinct sample indices to score."""
    if not isinstance(value, dict):
        raise ClipbenchError(f"{source}: 'subsets' must be a mapping of dataset -> {{split, fingerprint, indices}}")
    out = {}
    for dataset, entry in value.items():
        where = f"{source}: subsets of {dataset!r}"
        if dataset not in datasets:
            raise ClipbenchError(f"{where}: the dataset is not in 'datasets'")
        if not isinstance(entry, dict) or not {"split", "fingerprint", "indices"} <= set(entry):
            raise ClipbenchError(f"{where}: needs split, fingerprint and indices")
        indices = entry["indices"]
        if (not isinstance(indices, list) or not indices or not all(an_int(i) and i >= 0 for i in indices)
                or any(b <= a for a, b in zip(indices, indices[1:], strict=False))):
            raise ClipbenchError(f"{where}: 'indices' must be a non-empty, increasing list of sample positions")
        if not isinstance(entry["split"], str) or not isinstance(entry["fingerprint"], str):
            raise ClipbenchError(f"{where}: 'split' and 'fingerprint' must be strings")
        out[dataset] = {"split": entry["split"], "fingerprint": entry["fingerprint"], "indices": list(indices),
                        "digest": str(entry.get("digest") or "")}
    return out


def _dataset_entries(value: Any, source: str) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Dataset names in order, plus ``{name: [task, ...]}`` entries' own tasks (known task names, canonical)."""
    from clipbench.tasks.registry import TASKS

    if not isinstance(value, list) or not value:
        raise ClipbenchError(f"{source}: 'datasets' must be a non-empty list of names, got {value!r}")
    names, own = [], {}
    for item in value:
        if isinstance(item, dict) and len(item) == 1:
            (name, tasks), = item.items()
            if not isinstance(name, str) or not isinstance(tasks, list) or not tasks or not all(
                    isinstance(t, str) for t in tasks):
                raise ClipbenchError(f"{source}: a dataset with its own tasks is {{name: [task, ...]}}, got {item!r}")
            for task in tasks:
                if task not in TASKS:
                    raise ClipbenchError(f"{source}: dataset {name!r}: unknown task {task!r}"
                                         f"{_close(task, TASKS.names())}")
            own[name.strip()] = tuple(dict.fromkeys(TASKS.canonical(t) for t in tasks))
            names.append(name)
        else:
            names.append(item)
    return _str_list(names, "datasets", source), own


def _check_options(options: dict, source: str, task: str | None = None) -> None:
    from clipbench.engine.options import all_options

    table = all_options()
    where = f"{source}: task {task!r}" if task else source
    for key, value in options.items():
        if key not in table:
            raise ClipbenchError(f"{where}: unknown option {key!r}{_close(str(key), sorted(table))} "
                                 f"(allowed: {', '.join(sorted(table))})")
        if task and table[key].owner != task:  # shared options go in the suite's `options:` block
            raise ClipbenchError(f"{where}: {key!r} is not an option of this task; put it under 'options:'")
        table[key].validate(value, source)


def _tasks(value: Any, source: str) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Task names in order, plus per-task options from ``{name: {option: value}}`` entries."""
    from clipbench.tasks.registry import TASKS

    if not isinstance(value, list) or not value:
        raise ClipbenchError(f"{source}: 'tasks' must be a non-empty list of names, got {value!r}")
    names, per_task = [], {}
    for item in value:
        if isinstance(item, dict) and len(item) == 1:
            (name, options), = item.items()
            if options is not None and not isinstance(options, dict):
                raise ClipbenchError(f"{source}: options of task {name!r} must be a mapping")
        elif isinstance(item, str) and item.strip():
            name, options = item.strip(), None
        else:
            raise ClipbenchError(f"{source}: 'tasks' entries are names or {{name: {{options}}}}, got {item!r}")
        if name not in TASKS:
            known = TASKS.names()
            raise ClipbenchError(f"{source}: unknown task {name!r}{_close(str(name), known)} "
                                 f"(known: {', '.join(known)})")
        name = TASKS.canonical(name)
        if name in names:
            raise ClipbenchError(f"{source}: 'tasks' lists {name} more than once")
        names.append(name)
        if options:
            _check_options(options, source, name)
            per_task[name] = dict(options)
    return names, per_task


def _str_list(value: Any, key: str, source: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ClipbenchError(f"{source}: {key!r} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        dup = sorted({v for v in value if value.count(v) > 1})
        raise ClipbenchError(f"{source}: {key!r} lists {', '.join(dup)} more than once")
    return [v.strip() for v in value]


def describe_suites() -> list[dict]:
    """For `clipbench list suites`: every built-in suite, validated without touching dataset files."""
    out = []
    for name in builtin_suite_names():
        suite = load_suite(name, check_dataset=None)
        out.append({"name": suite.name, "version": suite.version, "datasets": len(suite.datasets),
                    "tasks": ",".join(suite.tasks), "model": ",".join(suite.models) or "-",
                    "description": suite.description})
    return out
