"""``wds:PATTERN``: a classification set stored as webdataset tar shards (CLIP_benchmark's and DataComp's format).

A sample is the tar members sharing one key (``dir/key.jpg``, ``dir/key.cls``), grouped and named
by webdataset's own rules (``webdataset.tariterators.base_plus_ext``, lower-cased extensions), in
the order of the shards as the pattern expands (``webdataset.shardlists.expand_urls``: braces,
``::`` lists) and of the members inside each shard. That order is fixed, so sample ``i`` is the
same image in every run and process, and the feature store's index ranges, resume and torchrun
slices work exactly as for a folder.

Why a map-style index rather than webdataset's streaming pipeline: extraction asks for index
ranges (a killed run resumes at its first missing shard of features; torchrun ranks take slices),
and the store needs every label before the first batch. One pass over the tar headers records,
per sample, where its image bytes lie (shard, offset, size) and reads its label: ``.cls`` (an
integer) or ``.json`` (``label``/``cls``/``target``). Item ``i`` then seeks and reads just those
bytes. Only uncompressed ``.tar`` shards can be read this way; compressed ones are refused.

Classnames: ``classnames.txt`` beside the (first) shard, one per line in label order; otherwise
``classname``/``class_name`` fields of the ``.json`` members; a ``prompts.yaml`` there may give
classnames and templates (as for ``folder:``).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.images import DECODE_ERRORS
from clipbench.errors import DataError

#: Image extensions, in the order one is picked when a sample has several.
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "ppm", "pgm", "bmp", "tif", "tiff")
JSON_LABEL_FIELDS = ("label", "cls", "target")
JSON_NAME_FIELDS = ("classname", "class_name")
DEFAULT_TEMPLATES = ["a photo of a {c}."]


def expand_pattern(pattern: str) -> list[Path]:
    """The shard files of ``pattern`` in webdataset's order; DataError for a missing or compressed shard."""
    from webdataset.shardlists import expand_urls

    shards = [Path(os.path.expanduser(u.removeprefix("file:"))) for u in expand_urls(pattern)]
    if not shards:
        raise DataError(f"wds:{pattern} names no shards")
    for shard in shards:
        if not shard.is_file():
            raise DataError(f"wds:{pattern}: shard {shard} does not exist (expected webdataset .tar shards)")
        if shard.suffix != ".tar":
            raise DataError(f"wds:{pattern}: shard {shard} is not an uncompressed .tar (compressed shards cannot "
                            "be read by index; unpack them)")
    return shards


@dataclass
class _Sample:
    key: str
    image: tuple[int, int, int] | None = None  # (shard index, offset, size)
    image_ext: str | None = None
    label: int | None = None
    classname: str | None = None


def _label_of(ext: str, data: bytes, where: str) -> tuple[int, str | None]:
    try:
        if ext == "cls":
            return int(data.decode("utf-8").strip()), None
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: unreadable .{ext} label ({exc})") from exc
    if isinstance(meta, int):
        return meta, None
    for name in JSON_LABEL_FIELDS:
        if isinstance(meta, dict) and isinstance(meta.get(name), int):
            names = [meta[n] for n in JSON_NAME_FIELDS if isinstance(meta.get(n), str)]
            return meta[name], (names[0] if names else None)
    raise DataError(f"{where}: .json has no integer {' / '.join(JSON_LABEL_FIELDS)} field")


def index_shards(shards: list[Path], what: str) -> list[_Sample]:
    """One pass over the shards' tar headers: each sample's image location and label, in stream order."""
    from webdataset.tariterators import base_plus_ext

    samples: list[_Sample] = []
    for s, shard in enumerate(shards):
        current: _Sample | None = None
        try:
            with tarfile.open(shard, mode="r:") as tar:
                for member in tar:
                    if not member.isreg() or member.name.startswith("__") or "/__" in member.name:
                        continue
                    key, ext = base_plus_ext(member.name)
                    if key is None:
                        continue
                    ext = ext.lower()
                    if current is None or key != current.key:  # webdataset's grouping: consecutive equal keys
                        current = _Sample(key)
                        samples.append(current)
                    where = f"{shard}:{member.name}"
                    if ext in IMAGE_EXTS and (current.image_ext is None
                                              or IMAGE_EXTS.index(ext) < IMAGE_EXTS.index(current.image_ext)):
                        current.image, current.image_ext = (s, member.offset_data, member.size), ext
                    elif ext in ("cls", "json") and (current.label is None or ext == "cls"):
                        data = tar.extractfile(member).read()
                        current.label, name = _label_of(ext, data, where)
                        current.classname = current.classname or name
        except (tarfile.TarError, OSError) as exc:
            raise DataError(f"{what}: shard {shard} is not a readable tar file ({type(exc).__name__}: {exc})") from exc
    for sample in samples:
        if sample.image is None or sample.label is None:
            missing = "image (." + ", .".join(IMAGE_EXTS[:3]) + ", ...)" if sample.image is None else ".cls or .json label"
            raise DataError(f"{what}: sample {sample.key!r} has no {missing}")
        if sample.label < 0:
            raise DataError(f"{what}: sample {sample.key!r} has a negative label {sample.label}")
    if not samples:
        raise DataError(f"{what}: the shards hold no samples")
    return samples


class _ShardImages(Dataset):
    """Item i: the image bytes at sample i's recorded place, decoded, transformed; file handles per process."""

    def __init__(self, shards: list[str], places: np.ndarray, keys: list[str], labels: np.ndarray,
                 transform: Callable) -> None:
        self.shards, self.places, self.keys, self.labels, self.transform = shards, places, keys, labels, transform
        self._files: dict[int, io.BufferedReader] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:  # open files stay behind; each worker opens its own
        return {**self.__dict__, "_files": {}}

    def __len__(self) -> int:
        return len(self.labels)

    def _read(self, index: int) -> bytes:
        if self._pid != os.getpid():  # forked worker: never share a file offset with the parent
            self._files, self._pid = {}, os.getpid()
        shard, offset, size = (int(v) for v in self.places[index])
        handle = self._files.get(shard)
        if handle is None:
            handle = self._files[shard] = open(self.shards[shard], "rb")  # kept open for the next item
        handle.seek(offset)
        data = handle.read(size)
        if len(data) != size:
            raise DataError(f"{self.shards[shard]}: sample {self.keys[index]!r} is truncated (shard changed or cut short)")
        return data

    def __getitem__(self, index: int):
        where = f"{self.shards[int(self.places[index][0])]}:{self.keys[index]}"
        try:
            with Image.open(io.BytesIO(self._read(index))) as img:
                img.load()
                image = img.convert("RGB")
        except FileNotFoundError as exc:
            raise DataError(f"shard of {where} is missing (expected a readable .tar)") from exc
        except DECODE_ERRORS as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"corrupt image {where}: cannot decode it ({type(exc).__name__}); expected a readable "
                            "image") from exc
        return self.transform(image), int(self.labels[index])


class ShardSplit(SplitData):
    """The samples of a list of shards, in stream order, labels known up front."""

    def __init__(self, dataset_name: str, split: str, shards: list[Path], samples: list[_Sample]) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.shards = [os.fspath(p) for p in shards]
        self.keys = [s.key for s in samples]
        self.places = np.asarray([s.image for s in samples], dtype=np.int64)
        self._labels = np.asarray([s.label for s in samples], dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _ShardImages(self.shards, self.places, self.keys, self._labels, transform)


@dataclass
class WebDatasetAdapter(DatasetAdapter):
    """``wds:PATTERN`` as one ``test`` split; built by ``WebDatasetAdapter.from_pattern``."""

    pattern: str = ""
    shards: list[Path] = field(default_factory=list)
    samples: list[_Sample] = field(default_factory=list, repr=False)

    @classmethod
    def from_pattern(cls, pattern: str, name: str | None = None) -> DatasetAdapter:
        from clipbench.datasets.generic import _apply_prompt_file, _read_classnames_file

        name = name or f"wds:{pattern}"
        shards = expand_pattern(pattern)
        samples = index_shards(shards, name)
        n_classes = max(s.label for s in samples) + 1
        folder = shards[0].parent
        names = _read_classnames_file(folder)
        if names is None:
            found = {s.label: s.classname for s in samples if s.classname}
            if len(found) < n_classes:
                raise DataError(f"{name}: no classnames (expected {folder / 'classnames.txt'}, one name per line in "
                                "label order, or classname fields in the .json members)")
            names = [found[i] for i in range(n_classes)]
        if len(names) < n_classes:
            raise DataError(f"{name}: labels go up to {n_classes - 1} but {folder / 'classnames.txt'} has "
                            f"{len(names)} names")
        adapter = cls(name=name, classnames=names, templates=list(DEFAULT_TEMPLATES), splits=("test",),
                      pattern=pattern, shards=shards, samples=samples)
        return _apply_prompt_file(adapter, folder)

    def is_present(self, data_root: Path | None = None) -> bool:
        return all(p.is_file() for p in self.shards)

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        if split != "test":
            raise DataError(f"{self.name} has no split {split!r} (a wds: pattern is one split: test)")
        return ShardSplit(self.name, split, self.shards, self.samples)
