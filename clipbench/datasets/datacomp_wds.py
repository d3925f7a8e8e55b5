"""Dollar Street and GeoDE as DataComp evaluates them: its own webdataset copies, whose classnames, prompt
templates and per-sample group metadata ship with the data.

Layout (DataComp's ``download_evalsets.py`` writes it: ``<data-root>/wds_<task>_test/`` from
``huggingface.co/datasets/djghosh/wds_<task>_test``)::

    wds_dollar_street_test/classnames.txt                        one classname a line, in label order
    wds_dollar_street_test/zeroshot_classification_templates.txt one template a line, with {c}
    wds_dollar_street_test/test/nshards.txt                      the number of shards
    wds_dollar_street_test/test/<i>.tar                          <key>.<image>, <key>.cls, <key>.npy

The ``.npy`` member of a sample holds its metadata as integers, in the order of DataComp's
evaluators (``eval_utils/fairness_eval.py``): Dollar Street ``[income_ds, income_meta, region]``,
GeoDE ``[region, country]``; it is read without pickle. Groups are named by their codes.

* ``dollar_street``: 58 classes, 3,503 images; the top-5 accuracy of the worst ``income_ds`` group
  (``acc_top5_wg``, DataComp's main metric).
* ``geode``: 40 classes, 12,488 images; the top-1 accuracy of the worst ``region`` (``acc_wg``).

The classnames and templates are the copy's own (DataComp's): they are read, and their count
checked, when a split loads, before the text classifier is built; until then the adapter holds
numbered placeholders (``clipbench list datasets`` shows the class count). A ``--prompts`` file's
classnames or templates take precedence over the copy's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.datasets.local import LocalAdapter
from clipbench.datasets.target_splits import codes_of
from clipbench.datasets.user_data import read_classnames_file
from clipbench.datasets.webdataset_source import ShardSplit, scan_shards
from clipbench.foundations.errors import DataError

TEMPLATES_FILE = "zeroshot_classification_templates.txt"
_MAX_SHARDS = 10000


class GroupedShardSplit(ShardSplit):
    """Webdataset samples with named group variables (``SplitData.sample_groups``)."""

    def __init__(self, dataset_name, split, shards, keys, places, labels, groups: dict) -> None:
        super().__init__(dataset_name, split, shards, keys, places, labels)
        self._groups = groups

    @property
    def sample_groups(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        return self._groups

    def sample_names(self) -> list[str]:
        """``test/<shard>.tar:<key>``: where a person finds sample i."""
        return [f"test/{Path(self.shards[int(s)]).name}:{key}" for s, key in zip(self.places[:, 0], self.keys,
                                                                               strict=True)]


def read_metadata(data: bytes | None, where: str) -> np.ndarray:
    """One sample's ``.npy`` metadata as int64 (a DataError for a missing, pickled or non-numeric one)."""
    if data is None:
        raise DataError(f"{where}: no .npy metadata member (DataComp's copies have one per sample)")
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where}: unreadable .npy metadata ({exc})") from exc
    if values.dtype.kind not in "iuf" or values.ndim > 1:
        raise DataError(f"{where}: .npy metadata must be a vector of numbers, got {values.dtype} {values.shape}")
    return values.astype(np.int64).ravel()


def read_templates(folder: Path, where: str) -> list[str]:
    path = folder / TEMPLATES_FILE
    try:
        templates = [t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: cannot read {path} ({exc})") from exc
    if not templates or not all("{c}" in t for t in templates):
        raise DataError(f"{where}: {path} must hold templates with {{c}}, one a line")
    return templates


@dataclass
class DataCompWdsAdapter(LocalAdapter):
    """One of DataComp's webdataset evaluation copies with group metadata (see the module docstring)."""

    #: the ``.npy`` metadata fields, in order; the ones named in ``group_fields`` become group variables
    metadata_fields: tuple[str, ...] = ()
    group_fields: tuple[str, ...] = ()
    n_classes: int = 0

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        try:
            n_shards = int((root / "test" / "nshards.txt").read_text().strip())
        except (OSError, ValueError) as exc:
            raise DataError(f"{where}: cannot read {root / 'test' / 'nshards.txt'} ({exc})") from exc
        if not 1 <= n_shards <= _MAX_SHARDS:
            raise DataError(f"{where}: nshards.txt says {n_shards} shards")
        shards = [root / "test" / f"{i}.tar" for i in range(n_shards)]
        samples = scan_shards(shards, where)
        names = read_classnames_file(root)
        if names is None or len(names) != self.n_classes:
            raise DataError(f"{where}: {root / 'classnames.txt'} must list {self.n_classes} classnames "
                            f"(found {0 if names is None else len(names)})")
        placeholder = _placeholders(self.n_classes)  # a --prompts file's names and templates win over the copy's
        if self.classnames == placeholder["classnames"]:
            self.classnames, self.per_class_prompts = names, None
        if self.templates == placeholder["templates"]:
            self.templates = read_templates(root, where)
        labels = np.asarray([-1 if s.label is None else s.label for s in samples], np.int64)
        if labels.min() < 0 or labels.max() >= self.n_classes:
            raise DataError(f"{where}: every sample needs a .cls label in 0..{self.n_classes - 1}")
        meta = [read_metadata(s.npy, f"{where}: sample {s.key!r}") for s in samples]
        if any(m.shape[0] < len(self.metadata_fields) for m in meta):
            raise DataError(f"{where}: .npy metadata must hold {', '.join(self.metadata_fields)}")
        table = np.stack([m[:len(self.metadata_fields)] for m in meta])
        groups = {f: codes_of([str(v) for v in table[:, self.metadata_fields.index(f)]],
                              [str(v) for v in sorted(set(table[:, self.metadata_fields.index(f)].tolist()))])
                  for f in self.group_fields}
        if any(s.image is None for s in samples):
            raise DataError(f"{where}: a sample has no image member")
        return GroupedShardSplit(self.name, split, shards, [s.key for s in samples], [s.image for s in samples],
                                 labels, groups)


def _manual(task: str) -> str:
    folder = f"wds_{task}_test"
    return (f"run DataComp's download_evalsets.py <data-root> (mlfoundations/datacomp), or fetch "
            f"huggingface.co/datasets/djghosh/{folder} into <data-root>/{folder}/ (classnames.txt, "
            f"{TEMPLATES_FILE}, test/nshards.txt, test/<i>.tar)")


def _placeholders(n: int) -> dict:
    return {"classnames": [f"class {i}" for i in range(n)], "templates": ["a photo of a {c}."],
            "origin": "DataComp's copy itself: classnames.txt and zeroshot_classification_templates.txt of "
                      "huggingface.co/datasets/djghosh/wds_<task>_test, read when a split loads"}


def datacomp_wds_adapters() -> list[DataCompWdsAdapter]:
    return [
        DataCompWdsAdapter(
            name="dollar_street", splits=("test",), primary_metric="worst_group_top5",
            folder="wds_dollar_street_test", expected="test/nshards.txt", expected_count=3503, count_note="DataComp's copy",
            metadata_fields=("income_ds", "income_meta", "region"), group_fields=("income_ds", "region"),
            group_by="income_ds", n_classes=58, manual=_manual("dollar_street"),
            description="Dollar Street (DataComp's copy): 58 classes, top-5 accuracy of the worst income group",
            **_placeholders(58)),
        DataCompWdsAdapter(
            name="geode", splits=("test",), primary_metric="worst_group_top1",
            folder="wds_geode_test", expected="test/nshards.txt", expected_count=12488, count_note="DataComp's copy",
            metadata_fields=("region", "country"), group_fields=("region", "country"), group_by="region",
            n_classes=40, manual=_manual("geode"),
            description="GeoDE (DataComp's copy): 40 classes, top-1 accuracy of the worst region",
            **_placeholders(40)),
    ]
