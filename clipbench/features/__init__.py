"""Image features: batched extraction (``extraction``) and the on-disk, verified, resumable store (``store``)."""

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
from clipbench.features.store import (
    STORE_SCHEMA,
    FeatureKey,
    FeatureSet,
    FeatureStore,
    ShardInfo,
    merge_provenance,
)

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
