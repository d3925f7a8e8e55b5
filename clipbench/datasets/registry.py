"""``DATASETS``: the explicit registry of named dataset adapters, plus the spec parser and the listing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipbench.datasets.aro_order import aro_order_adapters
from clipbench.datasets.base import CLASSIFICATION, DatasetAdapter
from clipbench.datasets.benchmark_names import OTHER_SPELLINGS
from clipbench.datasets.caption_files import CaptionFolderAdapter, PairsAdapter
from clipbench.datasets.choices_files import ChoicesFileAdapter
from clipbench.datasets.class_files import CSVAdapter, FolderAdapter
from clipbench.datasets.clip_paper_extra import clip_paper_extra_adapters
from clipbench.datasets.compositional import (
    aro_adapters,
    shapes_compositional_adapter,
    sugarcrepe_adapter,
    winoground_adapter,
)
from clipbench.datasets.digits import digits_adapter
from clipbench.datasets.hf import HFAdapter
from clipbench.datasets.imagenet import imagenet_adapters
from clipbench.datasets.imagenet_variants import IMAGENET_VARIANT_ALIASES, imagenet_variant_adapters
from clipbench.datasets.karpathy import karpathy_adapters
from clipbench.datasets.multilingual import multilingual_adapters
from clipbench.datasets.shapes import shapes_adapter
from clipbench.datasets.torchvision_adapters import clip_paper_adapters
from clipbench.datasets.vtab import vtab_adapters, vtab_aliases
from clipbench.foundations.config import resolve_data_root
from clipbench.foundations.registry import Registry

DATASETS: Registry[DatasetAdapter] = Registry("dataset")



def register_dataset(adapter: DatasetAdapter, aliases: tuple[str, ...] = ()) -> DatasetAdapter:
    """Add an adapter under its name (duplicates, in any spelling, are rejected)."""
    return DATASETS.register(adapter.name, adapter, aliases)


register_dataset(digits_adapter())
_ALIASES = {"oxford_pets": ("pets", "oxford_iiit_pet"), "fgvc_aircraft": ("aircraft",), "dtd": ("describable_textures",),
            "stanford_cars": ("cars",), "flowers102": ("flowers",), "imagenet1k": ("imagenet",)}
for _adapter in (*clip_paper_adapters(), *imagenet_adapters(), shapes_adapter(), *karpathy_adapters(),
                 shapes_compositional_adapter(), sugarcrepe_adapter(), winoground_adapter(), *aro_adapters(),
                 *aro_order_adapters()):
    register_dataset(_adapter, _ALIASES.get(_adapter.name, ()))
for _adapter in multilingual_adapters():
    register_dataset(_adapter, {"xm3600": ("crossmodal3600",)}.get(_adapter.name, ()))
# issue 29: the VTAB, DataComp and CLIP-paper sets clipbench lacked, and DataComp's / CLIP_benchmark's spellings
_BENCHMARK_ALIASES = {**vtab_aliases(), **IMAGENET_VARIANT_ALIASES}
for _adapter in (*vtab_adapters(), *imagenet_variant_adapters(), *clip_paper_extra_adapters()):
    register_dataset(_adapter, _BENCHMARK_ALIASES.get(_adapter.name, ()))
for _name, _spellings in OTHER_SPELLINGS.items():
    if _name in DATASETS:  # names another part of the issue registers join when it is merged
        DATASETS.add_aliases(_name, [s for s in _spellings if s not in DATASETS or DATASETS.canonical(s) != _name])

from clipbench.datasets.group_sets import group_adapters  # noqa: E402  (issue 29: multi-label, binary, grouped sets)

for _adapter in group_adapters():
    register_dataset(_adapter)

from clipbench.datasets.babel_imagenet import babel_imagenet_adapter  # noqa: E402  (issue 30: Babel-ImageNet)

register_dataset(babel_imagenet_adapter())

from clipbench.datasets.imagenet_w import imagenet_w_adapter  # noqa: E402  (issue 29: ImageNet-W, on imagenet1k's images)

register_dataset(imagenet_w_adapter(DATASETS.get("imagenet1k")))


def _webdataset(pattern: str, name: str) -> DatasetAdapter:
    """``wds:PATTERN`` (webdataset tar shards); the module and its library load only when named."""
    from clipbench.datasets.webdataset_source import WebDatasetAdapter

    return WebDatasetAdapter.from_pattern(pattern, name=name)


#: ``get_dataset`` specs that name data on disk instead of a registered adapter: prefix -> builder(rest, name)
SPECS: dict[str, Callable[..., DatasetAdapter]] = {
    "folder": FolderAdapter.from_path,  # classification: one sub-folder per class
    "csv": CSVAdapter.from_path,  # classification: image path, label rows
    "hf": HFAdapter.from_spec,  # classification or image-text, by the dataset's columns
    "wds": _webdataset,  # classification or image-text, by the samples' members
    "pairs": PairsAdapter.from_path,  # image-text: image, caption rows
    "captions": CaptionFolderAdapter.from_path,  # image-text: x.jpg + x.txt
    "choices": ChoicesFileAdapter.from_path,  # choices: image, positive, negatives rows
}
SPEC_PREFIXES = tuple(SPECS)


def get_dataset(name: str, prompts: str | os.PathLike | None = None) -> DatasetAdapter:
    """A registered adapter by name/alias, or a spec of ``SPECS`` (``folder:PATH``, ``pairs:FILE``, ...).

    ``prompts``: a YAML/JSON file with custom ``classnames`` and/or ``templates`` for this run.
    """
    prefix, colon, rest = name.partition(":")
    if colon and prefix.lower() in SPECS:
        adapter = SPECS[prefix.lower()](rest, name=name)
    else:
        adapter = DATASETS.get(name)
    if prompts is not None:
        from clipbench.datasets.prompts import with_prompts

        adapter = with_prompts(adapter, prompts)
    return adapter


def describe_datasets(data_root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per registered dataset for ``clipbench list datasets``."""
    root = Path(resolve_data_root(data_root))
    rows = []
    for name, adapter in DATASETS.items():
        labelled = adapter.kind == CLASSIFICATION  # the other kinds have no classes or templates
        rows.append({
            "name": name,
            "classes": len(adapter.classnames) if labelled else 0,
            "templates": (0 if not labelled else len(adapter.templates) if adapter.per_class_prompts is None
                          else max(len(p) for p in adapter.class_prompts())),
            "splits": ",".join(adapter.splits),
            "metric": adapter.primary_metric,
            "present": bool(adapter.is_present(root)),
            "download": (f"clipbench download {name}" if getattr(adapter, "downloads", ()) else
                         "bundled" if name in ("digits", "shapes", "shapes_compositional") else "manual"),
        })
    return rows
