"""``wds:PATTERN``: a classification or image-text set stored as webdataset tar shards.

This is the format of CLIP_benchmark's converted sets and of DataComp/LAION (img2dataset) shards.
A sample is the tar members sharing one key (``dir/key.jpg``, ``dir/key.cls``). Members are
grouped and named by webdataset's own rules (``webdataset.tariterators.base_plus_ext``, lower-cased
extensions). Samples come in the order of the shards as the pattern expands
(``webdataset.shardlists.expand_urls``: braces, ``::`` lists) and of the members inside each
shard. That order is fixed, so sample ``i`` is the same image in every run and process, and the
feature store's index ranges, resume and torchrun slices work exactly as for a folder.

Why a map-style index rather than webdataset's streaming pipeline: extraction asks for index
ranges (a killed run resumes at its first missing shard of features; torchrun ranks take slices),
and the store needs every label (and retrieval every caption) before the first batch. One pass
over the tar headers (``scan_shards``, shared by both kinds) records, per sample, where its image
bytes lie (shard, offset, size) and reads its small members:

* a label: ``.cls`` (an integer; it wins over a ``.json`` label) or ``.json`` (an integer, or a
  ``label``/``cls``/``target`` field, with an optional ``classname``/``class_name``);
* captions: ``.txt``, one caption per non-empty line (as ``captions:DIR`` reads its ``.txt``
  files and CLIP_benchmark writes retrieval shards; a DataComp/LAION ``.txt`` is one line, so one
  caption), else ``.json`` ``caption`` (a string) or ``captions`` (a list of strings). A caption
  that itself spans lines must come from ``.json``.

The kind follows from the samples: every sample labelled -> classification (captions, if any,
are ignored); every sample captioned -> image-text (``zeroshot_retrieval``; labels are the image
indices, as for every image-text split). A set mixing labelled-only and captioned-only samples,
or a sample with neither, is a one-line error. Item ``i`` then seeks and reads just its image
bytes. Only uncompressed ``.tar`` shards can be read this way; compressed ones are refused.

Fingerprint (every kind's, ``SplitData.fingerprint``): the data identity is a manifest of the shard
files (path, size, mtime, ctime, inode; SHA-256 of every byte with ``--verify-data``) plus a digest
of the indexed members (key, shard, offset, size) of the samples it covers; an image-text split's
targets are its caption lists.

Classnames (classification): ``classnames.txt`` beside the (first) shard, one per line in label
order; otherwise ``classname``/``class_name`` fields of the ``.json`` members; a ``prompts.yaml``
there may give classnames and templates (as for ``folder:``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipbench.datasets.base import CLASSIFICATION, ClassificationAdapter, Dataset, DatasetAdapter, SplitData
from clipbench.datasets.identity import files_identity
from clipbench.datasets.image_text import KIND as IMAGE_TEXT
from clipbench.datasets.image_text import Captions, ImageTextAdapter, caption_lines, image_text_fields
from clipbench.datasets.images import decode_bytes, transformed
from clipbench.datasets.user_data import DEFAULT_TEMPLATES, apply_prompt_file, read_classnames_file
from clipbench.foundations.errors import DataError

#: Image extensions, in the order one is picked when a sample has several.
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "ppm", "pgm", "bmp", "tif", "tiff")
JSON_LABEL_FIELDS = ("label", "cls", "target")
JSON_NAME_FIELDS = ("classname", "class_name")
JSON_CAPTION_FIELDS = ("caption", "captions")
#: leading bytes of compressed files (gzip, bzip2, xz, zstd), to name the problem of an unreadable ``.tar``
_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


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


def _compression(shard: Path) -> str | None:
    """The compression a shard's leading bytes show, to explain why tarfile could not read it."""
    try:
        with open(shard, "rb") as fh:
            head = fh.read(6)
    except OSError:
        return None
    return next((name for magic, name in _COMPRESSED_MAGIC.items() if head.startswith(magic)), None)


@dataclass(slots=True)
class _Sample:
    """What one pass over the headers knows of a sample; ``label`` / ``captions`` resolve the precedence."""

    key: str
    image: tuple[int, int, int] | None = None  # (shard index, offset, size)
    image_ext: str | None = None
    cls: int | None = None  # from .cls
    json_label: int | None = None
    classname: str | None = None
    txt: list[str] | None = None  # the .txt lines
    json_captions: list[str] | None = None
    npy: bytes | None = None  # a small .npy member (DataComp's per-sample metadata), parsed by its reader

    @property
    def label(self) -> int | None:
        return self.cls if self.cls is not None else self.json_label

    @property
    def captions(self) -> list[str] | None:
        return self.txt or self.json_captions or None


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_cls(sample: _Sample, data: bytes, where: str) -> None:
    try:
        sample.cls = int(data.decode("utf-8").strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: unreadable .cls label ({exc})") from exc


def _read_json(sample: _Sample, data: bytes, where: str) -> None:
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: unreadable .json ({exc})") from exc
    if _int(meta):
        sample.json_label = meta
    if not isinstance(meta, dict):
        return
    label = next((meta[n] for n in JSON_LABEL_FIELDS if _int(meta.get(n))), None)
    if label is not None:
        sample.json_label = label
        sample.classname = next((meta[n] for n in JSON_NAME_FIELDS if isinstance(meta.get(n), str)), None)
    for name in JSON_CAPTION_FIELDS:
        value = meta.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(f"{where}: .json {name!r} must be a string or a list of strings, got "
                            f"{type(value).__name__}")
        sample.json_captions = [v.strip() for v in value if v.strip()]
        break


def _read_txt(sample: _Sample, data: bytes, where: str) -> None:
    try:
        sample.txt = caption_lines(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: .txt caption is not UTF-8 text") from exc


#: the largest .npy member kept (per-sample metadata: a few integers); larger ones are not read
NPY_MAX_BYTES = 4096


def _read_npy(sample: _Sample, data: bytes, where: str) -> None:
    sample.npy = data  # kept as bytes: only a reader that expects metadata parses it (never with pickle)


_READERS = {"cls": _read_cls, "json": _read_json, "txt": _read_txt, "npy": _read_npy}


def scan_shards(shards: list[Path], what: str) -> list[_Sample]:
    """One pass over the shards' tar headers: each sample's image location, label and captions, in stream order."""
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
                    if ext in IMAGE_EXTS and (current.image_ext is None
                                              or IMAGE_EXTS.index(ext) < IMAGE_EXTS.index(current.image_ext)):
                        current.image, current.image_ext = (s, member.offset_data, member.size), ext
                    elif ext in _READERS and (ext != "npy" or member.size <= NPY_MAX_BYTES):
                        _READERS[ext](current, tar.extractfile(member).read(), f"{shard}:{member.name}")
        except (tarfile.TarError, OSError) as exc:
            if compressed := _compression(shard):
                raise DataError(f"{what}: shard {shard} is {compressed}-compressed (compressed shards cannot be read "
                                "by index; unpack them)") from exc
            raise DataError(f"{what}: shard {shard} is not a readable tar file ({type(exc).__name__}: {exc})") from exc
    if not samples:
        raise DataError(f"{what}: the shards hold no samples")
    return samples


def sample_kind(samples: list[_Sample], what: str) -> str:
    """``classification`` when every sample has a label, ``image_text`` when every one has captions; else DataError."""
    label_only = caption_only = None
    for sample in samples:
        if sample.image is None:
            raise DataError(f"{what}: sample {sample.key!r} has no image (." + ", .".join(IMAGE_EXTS[:3]) + ", ...)")
        has_label, has_captions = sample.label is not None, sample.captions is not None
        if not has_label and not has_captions:
            raise DataError(f"{what}: sample {sample.key!r} has neither a label (.cls, or .json "
                            f"{'/'.join(JSON_LABEL_FIELDS)}) nor a caption (.txt, or .json "
                            f"{'/'.join(JSON_CAPTION_FIELDS)})")
        label_only = label_only or (sample if has_label and not has_captions else None)
        caption_only = caption_only or (sample if has_captions and not has_label else None)
    if label_only is not None and caption_only is not None:
        raise DataError(f"{what}: the shards mix classification and image-text samples ({label_only.key!r} has a "
                        f"label and no caption, {caption_only.key!r} captions and no label); one wds: set is one kind")
    return IMAGE_TEXT if label_only is None and caption_only is not None else CLASSIFICATION


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
            data = self._read(index)
        except FileNotFoundError as exc:
            raise DataError(f"shard of {where} is missing (expected a readable .tar)") from exc
        return (transformed(self.transform, where, lambda: data, lambda: decode_bytes(data, where)),
                int(self.labels[index]))


class ShardSplit(SplitData):
    """Samples of a list of shards (in stream order, or a subset of it), labels known up front."""

    def __init__(self, dataset_name: str, split: str, shards: Sequence[str | os.PathLike], keys: list[str],
                 places: np.ndarray, labels: np.ndarray) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.shards = [os.fspath(p) for p in shards]
        self.keys = list(keys)
        self.places = np.asarray(places, dtype=np.int64).reshape(-1, 3)
        self._labels = np.asarray(labels, dtype=np.int64)

    @classmethod
    def from_samples(cls, dataset_name: str, split: str, shards: list[Path], samples: list[_Sample]) -> ShardSplit:
        return cls(dataset_name, split, shards, [s.key for s in samples], [s.image for s in samples],
                   [s.label for s in samples])

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def data_identity(self, indices: np.ndarray | None, verify_data: bool) -> dict:
        """The shard files' identity (manifest, or bytes with ``verify_data``) plus the indexed members of these
        samples: key, shard, offset and size each, so a subset covers just its own members."""
        identity = files_identity(None, self.shards, verify_data)
        idx = np.arange(len(self.keys)) if indices is None else np.asarray(indices, dtype=np.int64)
        members = hashlib.sha256(np.ascontiguousarray(self.places[idx]).tobytes())
        members.update("\0".join(self.keys[int(i)] for i in idx).encode("utf-8"))
        return {**identity, "kind": "wds", "n_samples": int(len(idx)), "members_sha256": members.hexdigest()}

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _ShardImages(self.shards, self.places, self.keys, self._labels, transform)


class ShardImageTextSplit(Captions, ShardSplit):
    """Images of shards with each image's captions; labels are the image indices (0..N-1)."""

    def __init__(self, dataset_name: str, split: str, shards: Sequence[str | os.PathLike], keys: list[str],
                 places: np.ndarray, captions: Sequence[Sequence[str]]) -> None:
        super().__init__(dataset_name, split, shards, keys, places, np.arange(len(keys), dtype=np.int64))
        self.captions = [list(c) for c in captions]
        if len(self.captions) != len(self.keys):
            raise ValueError("one caption list per image")

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Images at ``indices`` with their captions (re-indexed 0..k-1)."""
        idx = [int(i) for i in indices]
        return self.derived(ShardImageTextSplit(self.dataset_name, self.split, self.shards,
                                                [self.keys[i] for i in idx], self.places[idx],
                                                [self.captions[i] for i in idx]), spec)


def _one_split(name: str, split: str) -> None:
    if split != "test":
        raise DataError(f"{name} has no split {split!r} (a wds: pattern is one split: test)")


@dataclass
class WebDatasetAdapter(ClassificationAdapter):
    """``wds:PATTERN`` of labelled samples as one ``test`` split; ``from_pattern`` builds it (or the image-text one)."""

    pattern: str = ""
    shards: list[Path] = field(default_factory=list)
    samples: list[_Sample] = field(default_factory=list, repr=False)

    @classmethod
    def from_pattern(cls, pattern: str, name: str | None = None) -> DatasetAdapter:
        """A classification adapter when the samples carry labels, a ``WebDatasetImageTextAdapter`` for captions."""
        name = name or f"wds:{pattern}"
        shards = expand_pattern(pattern)
        samples = scan_shards(shards, name)
        if sample_kind(samples, name) == IMAGE_TEXT:
            return WebDatasetImageTextAdapter(
                **image_text_fields(name, ("test",), f"webdataset image-caption shards {pattern}"),
                pattern=pattern, shards=shards, samples=samples)
        for sample in samples:
            if sample.label < 0:
                raise DataError(f"{name}: sample {sample.key!r} has a negative label {sample.label}")
        n_classes = max(s.label for s in samples) + 1
        folder = shards[0].parent
        names = read_classnames_file(folder)
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
        return apply_prompt_file(adapter, folder)

    def is_present(self, data_root: Path | None = None) -> bool:
        return all(p.is_file() for p in self.shards)

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        _one_split(self.name, split)
        return ShardSplit.from_samples(self.name, split, self.shards, self.samples)


@dataclass
class WebDatasetImageTextAdapter(ImageTextAdapter):
    """``wds:PATTERN`` of captioned samples as one ``test`` split (built by ``WebDatasetAdapter.from_pattern``)."""

    pattern: str = ""
    shards: list[Path] = field(default_factory=list)
    samples: list[_Sample] = field(default_factory=list, repr=False)

    def is_present(self, data_root: Path | None = None) -> bool:
        return all(p.is_file() for p in self.shards)

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        _one_split(self.name, split)
        s = self.samples
        return ShardImageTextSplit(self.name, split, self.shards, [x.key for x in s], [x.image for x in s],
                                   [x.captions for x in s])
