"""What a feature-store entry is: its key (everything that changes the numbers), its shards and its contents.

Provenance: each shard records how it was extracted (batch size, precision, device, torch threads,
clipbench and torch versions); the manifest merges them (a value that differs between shards, e.g.
after a resume under another torch, becomes the sorted list of its values) and ``load`` returns it
as ``FeatureSet.provenance`` so every record that scores the features can say what they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np

#: Bump when the on-disk layout or the meaning of stored features changes; old entries are then ignored.
#: 2: split fingerprints cover the data (file manifests, content hashes), batch size and device type
#: joined the key, shards carry their provenance.
#: 3: shards hold features only; labels come from the split (``load(key, labels)``).
STORE_SCHEMA = 3

#: image features (projected or not) and text features (``clipbench.features.text_store``)
FEATURE_KINDS = ("projected", "pre_projection", "text")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class FeatureKey:
    """Everything that decides the stored numbers. Two runs with equal keys may share features."""

    model_identity: str
    features: str  # "projected" | "pre_projection"
    preprocess_id: str
    dataset: str
    split: str
    split_fingerprint: str  # covers the data itself, subset (carved val, --limit), size and labels
    n_samples: int
    precision: str
    #: batch size and device type move float bits (batched kernels), so a cached entry is exactly what
    #: the same command would compute from scratch
    batch_size: int = 256
    device: str = "cpu"  # device type: cpu, cuda, mps
    schema: int = STORE_SCHEMA

    def __post_init__(self) -> None:
        if self.features not in FEATURE_KINDS:
            raise ValueError(f"features must be one of {FEATURE_KINDS}, got {self.features!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def digest(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    @property
    def dirname(self) -> str:
        readable = re.sub(r"[^A-Za-z0-9_.]+", "_", f"{self.dataset}-{self.split}").strip("_")[:60]
        return f"{readable}-{self.digest}"


@dataclass(frozen=True)
class ShardInfo:
    """One complete shard: samples [start, end) of the split, and the file's recorded size and hash."""

    start: int
    end: int
    size: int
    sha256: str
    dim: int
    #: how the shard was extracted (see ``provenance``); None in shards written without it
    provenance: dict | None = None

    @property
    def filename(self) -> str:
        return shard_name(self.start, self.end)


def shard_name(start: int, end: int) -> str:
    return f"{start:010d}-{end:010d}.npz"


@dataclass
class FeatureSet:
    """Features [N, D] float32 and labels [N] int64 of one split, in the split's order.

    ``labels`` are the split's own (attached by whoever loads with the split in hand, see
    ``FeatureStore.load``); None only for features loaded without a split (the search index).

    ``provenance``: how they were extracted (batch_size, precision, device, torch_threads,
    clipbench and torch versions), merged over the entry's shards; records copy it.
    """

    features: np.ndarray
    labels: np.ndarray | None
    key: FeatureKey | None = None
    provenance: dict = field(default_factory=dict)


def merge_provenance(parts: list[dict | None]) -> dict:
    """One dict for many shards: a field all shards agree on keeps its value, else the sorted distinct values."""
    merged: dict = {}
    fields = sorted({k for p in parts if p for k in p})
    for name in fields:
        values = {json.dumps((p or {}).get(name), sort_keys=True) for p in parts}
        decoded = sorted((json.loads(v) for v in values), key=lambda v: json.dumps(v, sort_keys=True))
        merged[name] = decoded[0] if len(decoded) == 1 else decoded
    return merged


# ---------------------------------------------------------------------------------------------
