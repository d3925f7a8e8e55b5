"""The task registry: every evaluation clipbench can run, by name.

Built-in tasks are registered explicitly below. Extra tasks (your own, or a test's) live in any
importable module that calls ``register_task``; name such modules in ``CLIPBENCH_PLUGINS``
(comma-separated) and they are imported once, when this registry is first used. Suites,
``clipbench run``, leaderboards, compare and the report look tasks up here and nowhere else.
"""

from __future__ import annotations

import importlib
import os

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.registry import Registry
from clipbench.tasks.base import Task

TASKS: Registry[Task] = Registry("task")

PLUGINS_ENV = "CLIPBENCH_PLUGINS"


def register_task(task: Task) -> Task:
    """Add ``task`` (an instance) to the registry; its options join the one option table."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task expects a Task instance, got {type(task).__name__}")
    return TASKS.register(task.name, task)


def get_task(name: str) -> Task:
    return TASKS.get(name)


def task_for_record(task_name: str) -> Task | None:
    """The registered task that writes records named ``task_name`` (e.g. ``linear_probe_4shot``), if any."""
    for _, task in TASKS.items():
        if task.owns_record(task_name):
            return task
    return None


def task_title(task_name: str) -> str:
    task = task_for_record(task_name)
    if task is None:
        return task_name.replace("_", " ").capitalize()
    if task.name != task_name:  # e.g. few-shot probes: "Linear probe (4-shot)"
        return f"{task.title} ({task_name[len(task.name):].strip('_').replace('shot', '-shot')})"
    return task.title


def task_order(task_name: str) -> int:
    """Registration order, for stable report sections (unknown tasks last)."""
    task = task_for_record(task_name)
    names = TASKS.names()
    return names.index(task.name) if task is not None else len(names)


def _register_builtins() -> None:
    from clipbench.tasks.image_retrieval import ImageRetrievalTask
    from clipbench.tasks.knn import KnnTask
    from clipbench.tasks.probe_task import LinearProbeTask
    from clipbench.tasks.retrieval import ZeroShotRetrievalTask
    from clipbench.tasks.selection import ImageCaptionSelectionTask
    from clipbench.tasks.zeroshot import ZeroShotTask

    register_task(ZeroShotTask())
    register_task(LinearProbeTask())
    register_task(KnnTask())
    register_task(ZeroShotRetrievalTask())
    register_task(ImageRetrievalTask())
    register_task(ImageCaptionSelectionTask())

    from clipbench.tasks.association import AssociationTask  # issue 29: WinoGAViL

    register_task(AssociationTask())


def _load_plugins() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ClipbenchError(f"{PLUGINS_ENV}: cannot import task plugin {module!r}: {exc}") from exc


_register_builtins()
_load_plugins()
