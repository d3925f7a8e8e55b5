"""The Task interface: what an evaluation declares and returns, so the engine never names a task.

A task says which dataset kinds it accepts, which options it owns, how it labels a record's
variant, which columns it adds to ``clipbench run``'s table and which detail table it adds to the
report. ``run`` turns (model, dataset) into a ``TaskResult`` through a ``TaskContext``, which
hands out splits, cached features and text features. The engine (``clipbench.engine.runner``)
does everything else, the same way for every task: the torchrun rank check, timing, cost, the
record (core fields + ``record[task.name]`` = the result's ``block``), the per-sample file and the
append. To add a task: subclass ``Task`` in one file and register it in
``clipbench.tasks.registry`` (or name its module in ``CLIPBENCH_PLUGINS``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from clipbench.datasets.base import DatasetAdapter, SplitData
    from clipbench.features.extraction import FeatureSet
    from clipbench.foundations.option import Option
    from clipbench.models.base import ImageTextModel

#: Core record fields a task may set itself (the engine fills in every other core field).
TASK_CORE_FIELDS = ("prompt_hash", "C", "sweep")


@dataclass
class SampleTable:
    """A per-sample table: its kind, the size ``--log-samples`` judges (``n``), the kind's columns
    (``data``, the keyword arguments of the kind's table builder) and the file's metadata.

    Kinds (``clipbench.results.samples``): ``classification`` (``scores`` [N, C], ``labels``,
    ``score_kind``), ``retrieval`` (``i2t_rank``, ``t2i_rank``, ``text_image``, ``captions``) and
    ``outcomes`` (``index``, ``outcomes`` = {column: [N] values}, optional ``subset``, ``group``).
    The engine builds and writes it; a task never writes a file.
    """

    kind: str
    n: int
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    """What a task computed; the engine turns it into the record.

    ``ci`` maps metric names to ``{low, high}`` (or None); the primary metric's entry becomes the
    record's ``ci95``, and all of them its ``metric_ci95`` when there is more than the primary's.
    ``block`` is the task's own fields (``record[task.name]``); ``core`` the task-decided core fields
    (``TASK_CORE_FIELDS``); ``record_task`` a record name other than the task's (few-shot probes);
    ``notes`` are warnings for the run's log and the record.
    """

    split: SplitData
    metrics: dict[str, float]
    ci: dict[str, dict | None] | None = None
    block: dict[str, Any] = field(default_factory=dict)
    samples: SampleTable | None = None
    core: dict[str, Any] = field(default_factory=dict)
    record_task: str | None = None
    notes: list[str] = field(default_factory=list)


def classification_samples(scores, labels, score_kind: str, classnames: Sequence[str] | None) -> SampleTable:
    """The per-sample table of a classifier: its [N, C] ``scores`` (logits or probabilities) and labels."""
    return SampleTable("classification", int(len(labels)),
                       {"scores": scores, "labels": labels, "score_kind": score_kind},
                       {"score_kind": score_kind, "classnames": list(classnames) if classnames is not None else None})


class Figure(NamedTuple):
    """Grouped bars for a detail table: ``cells`` = {model: {column: (value, ci_low, ci_high)}}."""

    caption: str
    file: str  # a PNG file name, unique within the report
    title: str
    ylabel: str
    cells: dict[str, dict[str, tuple[float | None, float | None, float | None]]]


class DetailTable(NamedTuple):
    """A task's table in the report: what its primary metric hides (per direction, per subset, ...)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str
    figures: tuple[Figure, ...] = ()


def cell(value, ci: dict | None = None) -> str:
    """A number in a detail table: one decimal, with its 95% CI when there is one; "–" when missing or not
    a finite number (a task's fields in a results file are untrusted)."""
    import math

    def finite(x):
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        return float(x) if ok else None

    value = finite(value)
    if value is None:
        return "–"
    ci = ci if isinstance(ci, dict) else {}
    low, high = finite(ci.get("low")), finite(ci.get("high"))
    if low is None or high is None:
        return f"{value:.1f}"
    return f"{value:.1f} [{low:.1f}, {high:.1f}]"


class TaskContext(Protocol):
    """Everything a task may ask of the engine during ``run`` (implemented by ``clipbench.engine.context``)."""

    options: Any  # the resolved options: attribute access, e.g. ``ctx.options.seed``
    progress: bool

    def evaluation_split(self, adapter: DatasetAdapter) -> SplitData:
        """The adapter's scored split (test, else val), with ``--limit`` applied."""

    def probe_splits(self, adapter: DatasetAdapter) -> tuple[SplitData, SplitData, SplitData]:
        """(train, val, test) for training-based tasks, with ``--limit`` applied to each."""

    def features(self, model: ImageTextModel, split: SplitData, projected: bool = True,
                 also: Sequence[SplitData] = ()) -> FeatureSet:
        """Cached image features. On a torchrun rank that does not score, this ends the task (the engine
        catches it), so a task never checks its rank; ``also`` names splits the task asks for later (every
        rank extracts its share of them here)."""

    def probe_features(self, model: ImageTextModel, adapter: DatasetAdapter, projected: bool = True
                       ) -> tuple[tuple[SplitData, ...], tuple[FeatureSet, ...]]:
        """``probe_splits`` (train, val, test) and their features; ends the task off rank 0 as ``features`` does."""

    def text_classifier(self, model: ImageTextModel, class_prompts: Sequence[Sequence[str]]) -> Any:
        """Unit-norm class weights [C, D] averaged over each class's prompts (cached)."""

    def text_features(self, model: ImageTextModel, texts: Sequence[str]) -> Any:
        """Unnormalised float32 [len(texts), D] features of the exact ``texts`` (cached, verified)."""


class Task(abc.ABC):
    """One kind of evaluation. Subclasses set the class attributes and implement ``run``."""

    #: registry name, as written in suites (``tasks: [zeroshot]``); also the record's block name
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
    #: metrics shown as columns of ``clipbench run``'s table (beside the primary metric)
    summary_columns: ClassVar[tuple[str, ...]] = ()
    #: its label in the report's "classification views per model" table ("" = not a classification view)
    classification_view: ClassVar[str] = ""
    #: schema-1 records: the block's old name (if it had one) and the block fields written at the top level
    legacy_block: ClassVar[str] = ""
    legacy_fields: ClassVar[tuple[str, ...]] = ()
    #: tasks that keep per-sample top-1 outcomes only (the linear probe, k-NN): they refuse multi-label sets and
    #: score sets whose own metric needs more (ROC AUC, worst group, macro F1) by top-1
    #: (``ClassificationAdapter.single_label_metric``)
    single_label_only: ClassVar[bool] = False
    #: whether the task encodes texts (prompts, captions): it then runs once per ``--language`` and its records
    #: name their language; a task of image features alone runs once and its records name none
    uses_text: ClassVar[bool] = False

    def accepts(self, adapter: DatasetAdapter) -> bool:
        if self.single_label_only and getattr(adapter, "multilabel", False):
            return False
        return getattr(adapter, "kind", "classification") in self.dataset_kinds

    def owns_record(self, task_name: str) -> bool:
        """Whether a record's ``task`` field was written by this task (few-shot names carry K)."""
        return task_name == self.name

    def single_label_note(self, adapter: DatasetAdapter) -> list[str]:
        """The record's note when a single-label task scores a set whose own metric it cannot (see above)."""
        own = adapter.primary_metric
        if not self.single_label_only or own == self.primary_metric(adapter):
            return []
        return [f"{adapter.name}'s own metric is {own}, which needs the targets the zero-shot task scores; "
                f"{self.name} reports {self.primary_metric(adapter)}"]

    def primary_metric(self, adapter: DatasetAdapter) -> str:
        if self.single_label_only:
            return getattr(adapter, "single_label_metric", adapter.primary_metric)
        return adapter.primary_metric

    @abc.abstractmethod
    def run(self, ctx: TaskContext, model: ImageTextModel, adapter: DatasetAdapter) -> TaskResult | None:
        """Score ``model`` on ``adapter`` (``None``: nothing to record; the engine then writes nothing)."""

    def check_options(self, merged: dict[str, Any]) -> None:
        """Reject combinations of this task's options that make no sense (one-line ``ClipbenchError``)."""
        return None

    def block(self, record: dict) -> dict:
        """This task's fields of ``record`` (``record[task.name]``; {} when missing or damaged)."""
        block = record.get(self.name)
        return block if isinstance(block, dict) else {}

    def variant_parts(self, record: dict) -> list[str]:
        """Task options in ``record`` that change its numbers (joined into the leaderboard variant)."""
        return []

    def table_note(self, record: dict) -> str:
        """A short note for the run's printed table (e.g. a convergence warning); "" for none."""
        return ""

    def detail_table(self, records: Sequence[dict], names: dict[str, str]) -> DetailTable | None:
        """The report's table for this task's latest records (``names``: model -> display name), or None."""
        return None

    def describe(self) -> dict[str, Any]:
        """A row of ``clipbench list tasks``."""
        return {"task": self.name, "title": self.title, "dataset_kinds": ",".join(self.dataset_kinds),
                "inputs": self.inputs,
                "options": ", ".join(f"{o.name}={o.default!r}" for o in self.options) or "-"}
