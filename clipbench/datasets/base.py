"""The interface every dataset adapter presents: facts about the dataset plus split loaders.

An adapter never knows about models: it hands the engine (image, label) pairs through whatever
transform the engine passes in.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from clipbench.foundations.errors import DataError

PRIMARY_METRICS = ("top1", "mean_per_class_recall")
#: the metrics of multi-label, binary, grouped and choice sets (``clipbench.scoring.targets``; names agreed
#: with the dataset adapters of issue 29): the zero-shot task scores them; the linear probe and k-NN,
#: which keep per-sample top-1 outcomes only, score such a set by top-1 (``single_label_metric``)
TARGET_METRICS = ("mean_average_precision_11pt", "mean_average_precision", "roc_auc", "mean_top1_top5",
                  "worst_group_top1", "worst_group_top5", "macro_f1", "jaccard")
PRIMARY_METRICS += TARGET_METRICS
#: the kind of a split or adapter that carries class labels (the others: ``image_text``, ``choices``)
CLASSIFICATION = "classification"
#: every dataset kind, each with its split and adapter (``image_text.py``, ``choices.py``); a task names the
#: kinds it scores in ``Task.dataset_kinds`` (checked against this by the contract tests)
DATASET_KINDS = (CLASSIFICATION, "image_text", "choices")
DATASET_KINDS += ("associations",)  # issue 29: WinoGAViL (``winogavil.py``), scored by the association task


class Dataset:
    """A map-style dataset: ``len()`` and item ``i``. torch's DataLoader takes any such object, so the
    adapters need not import torch (``clipbench list datasets`` starts without it)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int):
        raise NotImplementedError


class SplitData(abc.ABC):
    """One split (or a deterministic subset of one) of one dataset, with its labels known up front."""

    dataset_name: str
    split: str
    #: what the split's targets are; the tasks that accept a dataset name the kinds they score
    kind: str = CLASSIFICATION

    @property
    @abc.abstractmethod
    def labels(self) -> np.ndarray:
        """int64 label per sample, in the order ``torch_dataset`` yields them."""

    @abc.abstractmethod
    def torch_dataset(self, transform: Callable) -> Dataset:
        """A map-style Dataset whose item i is (transform(PIL RGB image i), int label i).

        Splits that read encoded image files hand a transform with ``from_encoded`` the file's bytes
        instead (``datasets.images.transformed``), so ``--decode gpu`` can decode JPEGs on the device.
        """

    #: Describes any subsetting (carved val split, --limit); part of the fingerprint.
    subset_spec: str = ""
    #: Hash every byte of the data into the fingerprint (``--verify-data``) instead of a stat manifest.
    #: Set it with ``datasets.load_split(..., verify_data=True)``; subsets inherit it when created.
    verify_data: bool = False
    #: Extra facts about where the data came from that join the fingerprint (verified archive MD5s,
    #: a Hugging Face revision); set by the adapter.
    source: dict | None = None
    #: A step the model's own preprocessing runs on this split's pixels after its resize and crop and before its
    #: normalisation (ImageNet-W's watermark, ``datasets.imagenet_w``): a picklable callable float [3, H, W] in
    #: [0, 1] -> the same, with a ``name`` that changes whenever its pixels could. Set it with ``overlaid``,
    #: which also names it in ``source`` (so in the fingerprint); ``features.pixel_overlay`` composes it.
    pixel_overlay: Callable | None = None

    def overlaid(self, overlay: Callable) -> SplitData:
        """This split, its pixels passed through ``overlay`` inside the model's preprocessing (see ``pixel_overlay``)."""
        self.pixel_overlay = overlay
        self.source = {**(self.source or {}), "pixel_overlay": str(overlay.name)}
        self.__dict__.pop("_identity_cache", None)
        self.__dict__.pop("_fingerprints", None)
        return self

    def __len__(self) -> int:
        return int(len(self.labels))

    def data_identity(self, indices: np.ndarray | None, verify_data: bool) -> dict:
        """Fingerprint inputs of the data behind samples ``indices`` (all when None); see ``datasets.identity``.

        Adapters whose splits know their files or pixels override this; the default (a split class
        that does not) fingerprints the labels only, as clipbench did before it looked at data.
        """
        return {"kind": "labels-only", "root": None, "n_files": 0, "manifest_sha256": None, "content_sha256": None}

    @property
    def fingerprint_inputs(self) -> dict:
        """What the fingerprint knows about the data (root, n_files, manifest_sha256, content_sha256, ...):
        computed once per split object, for records to copy so a reader can tell two copies of a dataset apart."""
        cache = self.__dict__.setdefault("_identity_cache", {})
        if self.verify_data not in cache:
            inputs = dict(self.data_identity(None, self.verify_data))
            if self.source:
                inputs["source"] = self.source
            cache[self.verify_data] = inputs
        return dict(cache[self.verify_data])

    @property
    def multilabel(self) -> np.ndarray | None:
        """bool [N, C]: which classes each sample shows, for multi-label sets (VOC2007); None otherwise.
        ``labels`` then holds each sample's lowest positive class."""
        return None

    @property
    def sample_groups(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        """Named group variables of the samples: ``{variable: (int64 codes [N], group names)}`` (regions,
        income groups, demographics), for group metrics and group tables; empty for most sets."""
        return {}

    def extra_targets_digest(self) -> str | None:
        """SHA-256 of ``multilabel`` and ``sample_groups``, None without them (part of the fingerprint)."""
        multilabel, groups = self.multilabel, self.sample_groups
        if multilabel is None and not groups:
            return None
        h = hashlib.sha256()
        if multilabel is not None:
            h.update(b"multilabel" + str(multilabel.shape).encode() + np.ascontiguousarray(multilabel, bool).tobytes())
        for variable in sorted(groups):
            codes, names = groups[variable]
            h.update(json.dumps([variable, list(names)]).encode())
            h.update(np.ascontiguousarray(codes, np.int64).tobytes())
        return h.hexdigest()

    def sample_names(self) -> list[str] | None:
        """What a person opens to see sample i: its file, relative to the dataset's folder where it lies
        under it (lm-eval's ``--log_samples`` keeps the document the same way); None when samples have no
        file (pixels in memory). Per-sample files carry it as their ``item`` column."""
        return None

    def targets_digest(self) -> str | None:
        """SHA-256 of what the kind scores against besides the labels: captions (image-text), candidate
        texts (choices); None for classification, whose targets are the labels themselves."""
        return None

    @property
    def fingerprint(self) -> str:
        """Stable id of exactly these samples, the one for every kind: name, split, subset, size, labels,
        the data's identity (``fingerprint_inputs``) and the kind's ``targets_digest``.

        With a content hash (``verify_data``) the key depends on the bytes only, so identical copies
        under other roots or with other timestamps share it; otherwise the root and the manifest join.
        """
        cache = self.__dict__.setdefault("_fingerprints", {})
        if self.verify_data in cache:
            return cache[self.verify_data]
        labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        data = self.fingerprint_inputs
        if data.get("content_sha256"):
            data = {k: v for k, v in data.items() if k not in ("root", "manifest_sha256")}
        fields = {"dataset": self.dataset_name, "split": self.split, "subset": self.subset_spec,
                  "n": int(labels.shape[0]), "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                  "data": data}
        if self.kind != CLASSIFICATION:  # classification keys keep the payload they always had
            fields.update(kind=self.kind, targets_sha256=self.targets_digest())
        extra = self.extra_targets_digest()
        if extra is not None:  # multi-label indicators and group codes (absent: the payload is unchanged)
            fields["extra_targets_sha256"] = extra
        cache[self.verify_data] = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
        return cache[self.verify_data]

    def derived(self, sub: SplitData, spec: str) -> SplitData:
        """``sub``, a subset of this split built by a kind's own ``subset``, named by ``spec`` and hashed
        the way this split is (``verify_data``, ``source``)."""
        sub.subset_spec = f"{self.subset_spec}|{spec}" if self.subset_spec else spec
        sub.verify_data, sub.source, sub.pixel_overlay = self.verify_data, self.source, self.pixel_overlay
        return sub

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """A deterministic subset (by position); ``spec`` names it, e.g. 'val:seed=0:frac=0.2'."""
        return SubsetSplit(self, np.asarray(indices, dtype=np.int64), spec)


class SubsetSplit(SplitData):
    """Samples ``indices`` of ``parent``; its fingerprint covers only those samples' data, so a changed
    file re-encodes just the subsets (probe train or val) that contain it."""

    def __init__(self, parent: SplitData, indices: np.ndarray, spec: str) -> None:
        self.parent = parent
        self.indices = indices
        self.dataset_name = parent.dataset_name
        self.split = parent.split
        self.subset_spec = f"{parent.subset_spec}|{spec}" if parent.subset_spec else spec
        self.verify_data = parent.verify_data
        self.source = parent.source
        self.pixel_overlay = parent.pixel_overlay
        self.kind = parent.kind

    @property
    def labels(self) -> np.ndarray:
        return self.parent.labels[self.indices]

    @property
    def multilabel(self) -> np.ndarray | None:
        parent = self.parent.multilabel
        return None if parent is None else parent[self.indices]

    @property
    def sample_groups(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        return {k: (codes[self.indices], names) for k, (codes, names) in self.parent.sample_groups.items()}

    def torch_dataset(self, transform: Callable) -> Dataset:
        from torch.utils.data import Subset

        return Subset(self.parent.torch_dataset(transform), self.indices.tolist())

    def sample_names(self) -> list[str] | None:
        names = self.parent.sample_names()
        return None if names is None else [names[int(i)] for i in self.indices]

    def data_identity(self, indices: np.ndarray | None, verify_data: bool) -> dict:
        return self.parent.data_identity(self.indices if indices is None else self.indices[indices], verify_data)


@dataclass
class DatasetAdapter(abc.ABC):
    """Facts (splits, metric) and split loaders for one dataset of one ``kind``; what a kind adds (the
    classes and prompts of classification) lives in that kind's adapter."""

    #: the kind of the splits it loads (``SplitData.kind``); the tasks that accept it name the kinds they score
    kind: ClassVar[str] = CLASSIFICATION
    name: str
    splits: tuple[str, ...]  # e.g. ("train", "test") or ("train", "val", "test")
    primary_metric: str = "top1"
    description: str = ""
    #: the language of the texts the tasks encode (class prompts, captions); ``datasets.languages`` switches it
    language: str = field(default="en", kw_only=True)

    @abc.abstractmethod
    def load_split(self, split: str, data_root: Path) -> SplitData:
        """Load ``split`` from under ``data_root``; raise DataError with a one-line message if absent."""

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")

    @property
    def evaluation_split(self) -> str:
        """The split scores are reported on: ``test``, else ``val`` (ImageNet); never a training split."""
        for name in ("test", "val"):
            if name in self.splits:
                return name
        raise DataError(f"{self.name} has no test or val split to evaluate on (splits: {', '.join(self.splits)})")

    def is_present(self, data_root: Path) -> bool:
        """Whether the data appears to be on disk (for `clipbench list datasets`)."""
        return False


@dataclass
class ClassificationAdapter(DatasetAdapter):
    """A dataset of labelled images: its classnames (in label order) and the prompts zero-shot encodes."""

    classnames: list[str] = field(kw_only=True)
    templates: list[str] = field(kw_only=True)  # format strings with "{c}"
    #: Optional per-class prompt lists that replace ``templates`` (e.g. CLIP's hand-written prompts).
    per_class_prompts: dict[str, list[str]] | None = field(default=None, kw_only=True)
    #: Multi-label sets (each split has ``multilabel``): zero-shot only, scored by average precision.
    multilabel: bool = field(default=False, kw_only=True)
    #: The group variable of the worst-group metrics (a key of the splits' ``sample_groups``), and its groups that
    #: never count as the worst (DataComp's FMoW leaves out the region "Other").
    group_by: str = field(default="", kw_only=True)
    group_excluded: tuple[str, ...] = field(default=(), kw_only=True)
    #: the user's prompt file (a ``datasets.prompts.PromptSet``) applied by ``with_prompts``, if any: another
    #: ``--language`` keeps its texts (``datasets.languages``)
    user_prompts: Any = field(default=None, kw_only=True, repr=False, compare=False)

    @property
    def single_label_metric(self) -> str:
        """The metric a task that scores per-sample top-1 outcomes only reports (the linear probe, k-NN):
        the primary metric where it is one of those, else top-1."""
        return "top1" if self.primary_metric in TARGET_METRICS else self.primary_metric

    def class_prompts(self) -> list[list[str]]:
        """The prompts for each class, in label order: what the zero-shot classifier encodes."""
        if self.per_class_prompts is not None:
            return [list(self.per_class_prompts[c]) for c in self.classnames]
        return [[t.format(c=c) for t in self.templates] for c in self.classnames]
