"""The Task interface: what an evaluation declares, so the engine never names a task.

A task says which dataset kinds it accepts, which options it owns, how it labels a record's
variant and what it adds to the printed table; ``run`` turns (model, dataset) into one record
through a ``TaskContext``, which hands out splits, cached features and text classifiers and builds
the record's core fields. The runner loops model -> dataset -> task and knows nothing else about
tasks; suites, leaderboards, compare, report titles and ``clipbench list tasks`` all read the
declarations. To add a task: subclass ``Task`` in one file and register it in
``clipbench.tasks.registry`` (or name its module in ``CLIPBENCH_PLUGINS``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from clipbench.datasets.base import DatasetAdapter, SplitData
    from clipbench.features.extraction import FeatureSet
    from clipbench.foundations.option import Option
    from clipbench.models.base import ImageTextModel


class TaskContext(Protocol):
    """What a task may ask of the engine during ``run`` (implemented by ``clipbench.engine.runner``)."""

    options: Any  # the resolved options: attribute access, e.g. ``ctx.options.seed``
    progress: bool

    def evaluation_split(self, adapter: DatasetAdapter) -> SplitData:
        """The adapter's scored split (test, else val), with ``--limit`` applied."""

    def probe_splits(self, adapter: DatasetAdapter) -> tuple[SplitData, SplitData, SplitData]:
        """(train, val, test) for training-based tasks, with ``--limit`` applied to each."""

    def features(self, model: ImageTextModel, split: SplitData, projected: bool = True) -> FeatureSet | None:
        """Cached image features; ``None`` on a torchrun rank that does not score (return ``None`` then)."""

    def probe_features(self, model: ImageTextModel, adapter: DatasetAdapter, projected: bool = True
                       ) -> tuple[tuple[SplitData, ...], tuple[FeatureSet, ...]] | None:
        """``probe_splits`` (train, val, test) and their features; ``None`` as ``features`` does."""

    def text_classifier(self, model: ImageTextModel, class_prompts: Sequence[Sequence[str]]) -> Any:
        """Unit-norm class weights [C, D] averaged over each class's prompts (cached)."""

    def record(self, model: ImageTextModel, adapter: DatasetAdapter, split: SplitData, task: str,
               **fields: Any) -> dict:
        """A record with every core field filled in, updated with the task's ``fields``."""


class Task(abc.ABC):
    """One kind of evaluation. Subclasses set the class attributes and implement ``run``."""

    #: registry name, as written in suites (``tasks: [zeroshot]``)
    name: ClassVar[str]
    #: human title for reports and ``clipbench list tasks``
    title: ClassVar[str]
    #: dataset kinds this task can score (see ``clipbench.datasets.base.DATASET_KINDS``)
    dataset_kinds: ClassVar[tuple[str, ...]] = ("classification",)
    #: options only this task reads (joined into the one option table by ``clipbench.engine.options``)
    options: ClassVar[tuple[Option, ...]] = ()
    #: metric names the task reports (the adapter or the task picks the primary one)
    metrics: ClassVar[tuple[str, ...]] = ()
    #: what the task needs, for ``clipbench list tasks`` (splits, features, texts)
    inputs: ClassVar[str] = ""

    def accepts(self, adapter: DatasetAdapter) -> bool:
        return getattr(adapter, "kind", "classification") in self.dataset_kinds

    def owns_record(self, task_name: str) -> bool:
        """Whether a record's ``task`` field was written by this task (few-shot names carry K)."""
        return task_name == self.name

    def primary_metric(self, adapter: DatasetAdapter) -> str:
        return adapter.primary_metric

    @abc.abstractmethod
    def run(self, ctx: TaskContext, model: ImageTextModel, adapter: DatasetAdapter) -> dict | None:
        """Score ``model`` on ``adapter``; the record, or ``None`` on a non-scoring torchrun rank."""

    def check_options(self, merged: dict[str, Any]) -> None:
        """Reject combinations of this task's options that make no sense (one-line ``ClipbenchError``)."""
        return None

    def variant_parts(self, record: dict) -> list[str]:
        """Task options in ``record`` that change its numbers (joined into the leaderboard variant)."""
        return []

    def table_note(self, record: dict) -> str:
        """A short note for the run's printed table (e.g. a convergence warning); "" for none."""
        return ""

    def describe(self) -> dict[str, Any]:
        """A row of ``clipbench list tasks``."""
        return {"task": self.name, "title": self.title, "dataset_kinds": ",".join(self.dataset_kinds),
                "inputs": self.inputs,
                "options": ", ".join(f"{o.name}={o.default!r}" for o in self.options) or "-"}
