"""Datasets of three kinds (classification, image-text, choices): registered adapters (the CLIP
paper's datasets, ImageNet and its variants, Karpathy's caption sets, the compositional benchmarks),
user data (the prefixes of ``registry.SPECS``), prompts as data, probe splits, downloads.

Public entry points: ``get_dataset``, ``describe_datasets``, ``load_split``, ``probe_splits``, ``download_dataset``,
``DATASETS``, ``register_dataset``, ``load_prompt_file``, ``with_prompts``.
"""

from __future__ import annotations

from clipbench.datasets.base import (
    CLASSIFICATION,
    PRIMARY_METRICS,
    ClassificationAdapter,
    DatasetAdapter,
    SplitData,
)
from clipbench.datasets.download import Archive, download_dataset
from clipbench.datasets.prompts import load_prompt_file, packaged_prompts, with_prompts
from clipbench.datasets.registry import DATASETS, describe_datasets, get_dataset, register_dataset
from clipbench.datasets.splits import load_split, probe_splits, stratified_indices

__all__ = [
    "CLASSIFICATION", "DATASETS", "PRIMARY_METRICS", "Archive", "ClassificationAdapter", "DatasetAdapter", "SplitData", "describe_datasets",
    "download_dataset", "get_dataset", "load_prompt_file", "load_split", "packaged_prompts", "probe_splits",
    "register_dataset", "stratified_indices", "with_prompts",
]
