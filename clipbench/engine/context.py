"""What a task gets from the engine while it runs: splits, cached features and text features.

``RunContext`` is the engine's ``TaskContext`` (``clipbench.tasks.base``). Besides serving, it
meters each record's cost (``clipbench.results.history.Meter``), times the seconds spent obtaining
features (a record's ``time_extract_s``), and remembers what the record's core fields need: how
the served features were extracted and whether ``--limit`` cut a split. ``take_record_state``
hands that over to the record being built and starts the next one afresh.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.splits import limit_split
from clipbench.engine import distributed
from clipbench.features import FeatureStore, extract_features
from clipbench.features.image_pipeline import image_pipeline
from clipbench.foundations.config import Paths
from clipbench.foundations.errors import DataError
from clipbench.models.base import ImageTextModel
from clipbench.suites import Suite


class NotScoringRank(Exception):
    """Raised by ``features`` on a torchrun rank that helped extract but does not score: the engine ends
    the task there (rank 0 alone scores and writes), so no task checks its rank."""


class RunContext:
    """Splits, features and text for the tasks of one run (see the module docstring)."""

    def __init__(self, suite: Suite, paths: Paths, options, progress: bool,
                 dist: distributed.DistContext | None = None, write: bool = True) -> None:
        from clipbench.results.history import Meter

        self.suite, self.paths, self.options, self.progress = suite, paths, options, progress
        self.store = FeatureStore(paths.features_dir)
        self.dist = dist or distributed.DistContext()  # ranks that share each split's extraction
        self.write = write
        self.meter = Meter(options.device)
        self._reset()

    def _reset(self) -> None:
        self._provenance: list[dict] = []  # how the features served since the last record were extracted
        self._limited = False  # whether --limit cut any split served since the last record
        self._lite: str | None = None  # the lite subset (digest) a split served since the last record was cut to
        self._served_s = 0.0  # seconds spent obtaining features since the last record

    @contextlib.contextmanager
    def _serving(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._served_s += time.perf_counter() - t0

    def _lite_subset(self, split: SplitData) -> SplitData:
        """The samples a lite suite names for this split, on the copy of the data they were chosen from only."""
        entry = self.suite.subsets.get(split.dataset_name) if getattr(self.suite, "subsets", None) else None
        if entry is None or entry["split"] != split.split:
            return split
        if split.fingerprint != entry["fingerprint"]:
            raise DataError(f"suite {self.suite.name}: the lite subset of {split.dataset_name} was chosen on split "
                            f"fingerprint {entry['fingerprint']}, this copy's is {split.fingerprint} (other data, or "
                            "--verify-data on one side only); run `clipbench lite` on results from this data")
        if entry["indices"][-1] >= len(split):
            raise DataError(f"suite {self.suite.name}: the lite subset of {split.dataset_name} names sample "
                            f"{entry['indices'][-1]}, past the split's {len(split)}")
        self._lite = entry["digest"] or "custom"
        return split.subset(entry["indices"], f"lite={self._lite}")

    def take_record_state(self) -> tuple[list[dict], bool, float, str | None]:
        """(extraction provenance, whether --limit cut a split, seconds obtaining features, the lite subset) of the record
        being built; the next record starts afresh."""
        state = (self._provenance, self._limited, self._served_s, self._lite)
        self._reset()
        return state

    def model_loaded(self, model: ImageTextModel, seconds: float) -> None:
        """The engine loaded ``model`` in ``seconds`` (the load phase of each of its records)."""
        image_pipeline(model, self.options.decode)  # --decode gpu and a model it cannot serve: before any work
        self.meter.model_loaded(model.name, seconds)

    def evaluation_split(self, adapter: DatasetAdapter) -> SplitData:
        from clipbench.datasets.splits import load_split

        o = self.options
        with self.meter.phase("data"):
            split = load_split(adapter, adapter.evaluation_split, self.paths.data_root, verify_data=o.verify_data)
            return self._limit(split)

    def probe_splits(self, adapter: DatasetAdapter) -> tuple[SplitData, SplitData, SplitData]:
        from clipbench.datasets import probe_splits

        o = self.options
        with self.meter.phase("data"):
            train, val, test = probe_splits(adapter, self.paths.data_root, o.val_fraction, o.seed,
                                            verify_data=o.verify_data)
            return tuple(self._limit(s) for s in (train, val, test))

    def probe_features(self, model: ImageTextModel, adapter: DatasetAdapter, projected: bool = True):
        """((train, val, test) splits, their features) for the tasks that fit on train+val."""
        splits = self.probe_splits(adapter)
        feats = tuple(self._served_features(model, s, projected) for s in splits)  # every rank extracts all three
        if feats[2] is None:
            raise NotScoringRank
        return splits, feats

    def _limit(self, split: SplitData) -> SplitData:
        """A lite suite's subset (``clipbench lite``), then ``--limit``; a limit at least the split's size leaves
        it whole (a full run, not a variant)."""
        split = self._lite_subset(split)
        limited = limit_split(split, self.options.limit, self.options.seed)
        self._limited = self._limited or limited is not split
        return limited

    def features(self, model: ImageTextModel, split: SplitData, projected: bool = True, also: Sequence = ()):
        """The split's features; under torchrun every rank extracts a slice and only rank 0 gets them (the
        others end the task here, ``NotScoringRank``). ``also``: splits the task may ask for after this
        one; when the extraction is sharded every rank extracts its share of them first, since the other
        ranks leave the task at this call (the scorer gets them, cached, when it asks)."""
        if self.dist.enabled:
            o = self.options
            for other in also:
                with self._serving(), self.meter.extraction():
                    distributed.extract_features_sharded(
                        model, other, self.store, self.dist, projected=projected, precision=o.precision,
                        batch_size=o.batch_size, workers=o.workers, progress=self.progress, decode=o.decode)
        feats = self._served_features(model, split, projected)
        if feats is None:
            raise NotScoringRank
        return feats

    def _served_features(self, model: ImageTextModel, split: SplitData, projected: bool):
        o = self.options
        with self._serving(), self.meter.extraction():
            if self.dist.enabled:
                feats = distributed.extract_features_sharded(
                    model, split, self.store, self.dist, projected=projected, precision=o.precision,
                    batch_size=o.batch_size, workers=o.workers, progress=self.progress, decode=o.decode)
            else:
                feats = extract_features(model, split, self.store, projected=projected, precision=o.precision,
                                         batch_size=o.batch_size, workers=o.workers, progress=self.progress,
                                         decode=o.decode)
        if feats is not None and getattr(feats, "provenance", None):
            self._provenance.append(feats.provenance)
        return feats

    def text_classifier(self, model: ImageTextModel, class_prompts: Sequence[Sequence[str]]):
        from clipbench.features.text_classifier import text_classifier

        o = self.options
        with self.meter.phase("text"):
            return text_classifier(model, class_prompts, self.paths.text_dir, batch_size=o.batch_size,
                                   precision=o.precision)

    def text_features(self, model: ImageTextModel, texts: Sequence[str]):
        """Unnormalised float32 [len(texts), D] features of the exact ``texts`` (cached, verified)."""
        from clipbench.features.text_store import text_features

        o = self.options
        with self._serving():
            return text_features(model, texts, self.paths.text_dir, batch_size=o.batch_size, precision=o.precision)
