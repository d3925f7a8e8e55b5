"""Image features: batched extraction (``extraction``), the on-disk, verified, resumable store (``store``) and its
entries' keys (``key``)."""

from __future__ import annotations

from clipbench.features.extraction import (
    FORWARD_STATS,
    NonFiniteFeaturesError,
    autocast_context,
    extract_features,
    extract_range,
    extraction_provenance,
    feature_key,
)
from clipbench.features.key import STORE_SCHEMA, FeatureKey, FeatureSet, ShardInfo, merge_provenance
from clipbench.features.store import FeatureStore

__all__ = [
    "FORWARD_STATS",
    "STORE_SCHEMA",
    "FeatureKey",
    "FeatureSet",
    "FeatureStore",
    "NonFiniteFeaturesError",
    "ShardInfo",
    "autocast_context",
    "extract_features",
    "extract_range",
    "extraction_provenance",
    "feature_key",
    "merge_provenance",
]
