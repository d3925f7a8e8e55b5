"""Babel-ImageNet (Geigle, Timofte & Glavaš 2023, arXiv:2306.08658, github.com/gregor-ge/Babel-ImageNet): ImageNet's
classes named in about 100 languages through BabelNet, each language with the subset of the 1000 classes it has
names for; zero-shot on the ImageNet-1k val images of those classes, labelled by position in the subset.

Not bundled: the labels are "a processed version of BabelNet v5.2 ... made available with the BabelNet
Non-Commercial License" (the repository's README; its code is MIT), which clipbench's own licence cannot carry. Put
the two published files in ``<data-root>/babel_imagenet/``:

- ``babel_imagenet.json``: ``{"DE": [[class indices in ImageNet-1k order], [label per index]], ...}`` keyed by
  upper-case ISO 639-1 codes (the repository's ``data/``; CLIP_benchmark 1.6.2 ships the same file, 93 languages,
  in ``clip_benchmark/datasets/``);
- ``nllb_dist13b_prompts.json``: ``{"DE": [80 templates with "{}"], ...}``, OpenAI's 80 ImageNet templates
  machine-translated with NLLB-1.3B-distilled (the file Babel-ImageNet's ``--prompts nllb_dist13b_prompts`` and
  CLIP_benchmark's ``babel_imagenet`` read). A language the file lacks (CLIP_benchmark's copy lacks br, fy, la)
  uses Babel-ImageNet's ``label`` prompt, the class name alone.

The images are ImageNet-1k's, read from ``<data-root>/imagenet1k/`` (``imagenet.py``). ``--language`` picks the
language (``datasets.languages`` asks ``texts_in``); English is Babel-ImageNet's own English labels.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import Dataset, SplitData, SubsetSplit
from clipbench.datasets.imagenet import _IMAGENET_MANUAL, ImageNet1kAdapter, imagenet_wnids
from clipbench.datasets.prompts import packaged_prompts, parse_prompt_doc
from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)

LABELS_FILE = "babel_imagenet.json"
PROMPTS_FILE = "nllb_dist13b_prompts.json"
#: the languages of the published file (CLIP_benchmark 1.6.2's copy): what the docs list before a file is placed
PUBLISHED_LANGUAGES = (
    "en", "af", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "eo", "es",
    "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "hu", "hy", "id", "is", "it",
    "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms",
    "my", "ne", "nl", "no", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "so", "sq",
    "sr", "su", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk", "ur", "uz", "vi", "xh", "yi", "zh")
_PLACE = (f"put Babel-ImageNet's {LABELS_FILE} and {PROMPTS_FILE} (github.com/gregor-ge/Babel-ImageNet, data/; "
          "CLIP_benchmark ships the same files) into <data-root>/babel_imagenet/")
_ORIGIN = ("Babel-ImageNet (github.com/gregor-ge/Babel-ImageNet; Geigle et al. 2023): labels from BabelNet v5.2 "
           "(BabelNet Non-Commercial License), templates NLLB-1.3B-distilled translations of OpenAI's 80")


def _read_json(path: Path) -> dict:
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"babel_imagenet: {path} not found ({exc.strerror or exc})") from exc
    return _parsed(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _parsed(path: str, mtime_ns: int, size: int) -> dict:
    """One parse per file version (a run of every language reads the file once)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"babel_imagenet: {path} is not a readable UTF-8 JSON file ({exc})") from exc
    if not isinstance(doc, dict):
        raise DataError(f"babel_imagenet: {path} must map language codes to entries")
    return {str(k).upper(): v for k, v in doc.items()}


class _Relabelled(Dataset):
    def __init__(self, inner: Dataset, labels: np.ndarray) -> None:
        self.inner, self.labels = inner, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.inner[index][0], int(self.labels[index])


class ClassSubsetSplit(SubsetSplit):
    """The samples of ``classes`` (labels of ``parent``), labelled by their class's position in ``classes``."""

    def __init__(self, parent: SplitData, classes, spec: str) -> None:
        classes = np.asarray(classes, dtype=np.int64)
        parent_labels = np.asarray(parent.labels, dtype=np.int64)
        position = np.full(int(max(classes.max(), parent_labels.max(initial=0))) + 1, -1, dtype=np.int64)
        position[classes] = np.arange(len(classes))
        indices = np.flatnonzero(position[parent_labels] >= 0)
        super().__init__(parent, indices, spec)
        self._labels = position[parent_labels[indices]]

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _Relabelled(super().torch_dataset(transform), self._labels)


@dataclass
class BabelImageNetAdapter(ImageNet1kAdapter):
    """ImageNet-1k val in one Babel-ImageNet language: ``classes`` are that language's ImageNet classes."""

    label_folder: str = "babel_imagenet"
    classes: tuple[int, ...] = ()

    def labels_root(self, data_root) -> Path:
        return Path(data_root).expanduser() / self.label_folder

    def is_present(self, data_root) -> bool:
        try:
            return super().is_present(data_root) and (self.labels_root(data_root) / LABELS_FILE).is_file()
        except OSError:
            return False

    def languages_at(self, data_root=None) -> tuple[str, ...]:
        """The languages of the placed labels file (English first), else the published file's."""
        if data_root is not None and (self.labels_root(data_root) / LABELS_FILE).is_file():
            codes = sorted(code.lower() for code in _read_json(self.labels_root(data_root) / LABELS_FILE))
            return tuple(sorted(codes, key=lambda c: c != "en"))
        return PUBLISHED_LANGUAGES

    def texts_in(self, language: str, data_root) -> BabelImageNetAdapter:
        """This adapter in ``language``: its classes, labels and templates from the files under ``data_root``."""
        path = self.labels_root(data_root) / LABELS_FILE
        if not path.is_file():
            raise DataError(f"{self.name}: {path} not found; {_PLACE.replace('<data-root>', str(data_root))} (its "
                            f"labels are BabelNet's, under a non-commercial licence, so clipbench does not bundle them)")
        entry = _read_json(path).get(language.upper())
        if entry is None:
            raise DataError(f"{self.name} has no labels in {language} in {path} (its languages: "
                            f"{', '.join(self.languages_at(data_root))})")
        classes, names = _checked_entry(entry, f"{path} [{language.upper()}]")
        prompts_path = self.labels_root(data_root) / PROMPTS_FILE
        templates = _read_json(prompts_path).get(language.upper()) if prompts_path.is_file() else None
        if templates is None:
            log.info("%s: no %s templates in %s; the class name alone is the prompt (Babel-ImageNet's 'label')",
                     self.name, language, prompts_path)
            templates = ["{}"]
        where = f"{prompts_path} [{language.upper()}]"
        if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
            raise DataError(f"{where}: expected a list of templates")
        prompts = parse_prompt_doc({"classnames": names, "templates": [t.replace("{}", "{c}") for t in templates]},
                                   where)
        return dataclasses.replace(self, language=language, classnames=list(prompts.classnames),
                                   templates=list(prompts.templates), per_class_prompts=None, classes=classes)

    def load_split(self, split: str, data_root) -> SplitData:
        imagenet = dataclasses.replace(self, classnames=list(packaged_prompts("imagenet1k").classnames), classes=())
        full = super(BabelImageNetAdapter, imagenet).load_split(split, data_root)  # all 1000 classes
        if not self.classes:
            return full
        digest = hashlib.sha256(np.asarray(self.classes, np.int64).tobytes()).hexdigest()[:12]
        return ClassSubsetSplit(full, self.classes, f"babel:{self.language}:{len(self.classes)}classes:{digest}")


def _checked_entry(entry, where: str) -> tuple[tuple[int, ...], list[str]]:
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list) and isinstance(entry[1], list)):
        raise DataError(f"{where}: expected [class indices, labels]")
    classes, names = entry
    if len(classes) != len(names) or len(classes) < 2:
        raise DataError(f"{where}: {len(classes)} class indices for {len(names)} labels (need as many, at least 2)")
    if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 1000 for c in classes) \
            or len(set(classes)) != len(classes):
        raise DataError(f"{where}: class indices must be distinct ImageNet-1k labels 0..999")
    return tuple(classes), [str(n) for n in names]


def babel_imagenet_adapter() -> BabelImageNetAdapter:
    prompts = packaged_prompts("imagenet1k")
    return BabelImageNetAdapter(
        name="babel_imagenet", splits=("val",), folder="imagenet1k", expected="val", subdirs=("val",),
        keys=imagenet_wnids(), data_name="imagenet1k", classnames=list(prompts.classnames),
        templates=list(prompts.templates), origin=_ORIGIN,
        description="ImageNet-1k val in Babel-ImageNet's ~100 languages (--language; each its own class subset)",
        manual=f"{_IMAGENET_MANUAL}; and {_PLACE}")
