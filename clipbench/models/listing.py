"""``describe_models``: what ``clipbench list models`` prints, without loading any weights."""

from __future__ import annotations

import logging
import os

from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import sha256_file
from clipbench.models.checkpoints import CheckpointInfo
from clipbench.models.download import recorded_as_verified
from clipbench.models.registry import MODELS

log = logging.getLogger(__name__)


def _facts_from_file(info: CheckpointInfo) -> dict[str, object]:
    """Resolution, embed dim, family and parameter count read off a packaged checkpoint's shapes
    (only for one registered without them: the built-in ones carry their facts, so listing needs no torch)."""
    import torch

    from clipbench.models.architecture import CLIP
    from clipbench.models.build import clean_state_dict, infer_config
    from clipbench.models.checkpoint_file import read_state_dict

    try:
        config = infer_config(clean_state_dict(read_state_dict(info.package_path()), info.name), info.name)
    except ClipbenchError as exc:
        log.warning("cannot describe %s: %s", info.name, exc)
        return {}
    with torch.device("meta"):
        params = sum(p.numel() for p in CLIP(config).parameters())
    return {
        "resolution": config.image_resolution,
        "embed_dim": config.embed_dim,
        "family": config.family,
        "params": params,
    }


def describe_models(cache_dir: str | os.PathLike | None = None) -> list[dict[str, object]]:
    """One dict per registered checkpoint: name, aliases, resolution, embed_dim, family, params,
    image_gflops, source ("download"/"package"), path, cached (a local copy exists) and verified
    (its SHA-256 has been checked; a file placed by hand is verified on first load)."""
    paths = Paths.resolve(cache_dir=cache_dir)
    rows = []
    for name, info in MODELS.items():
        row: dict[str, object] = {
            "name": name,
            "aliases": list(info.aliases),
            "resolution": info.resolution,
            "embed_dim": info.embed_dim,
            "family": info.family,
            "params": info.params,
            "image_gflops": info.image_gflops,
        }
        if info.url is not None:
            path = paths.checkpoints_dir / info.filename
            row.update(
                source="download",
                path=str(path),
                cached=path.is_file(),
                verified=path.is_file() and recorded_as_verified(path, info.sha256),
            )
        else:
            path = info.package_path()
            # packaged checkpoints are small: hash them here rather than trust a sidecar
            present = path.is_file()
            row.update(
                source="package",
                path=str(path),
                cached=present,
                verified=present and sha256_file(path) == info.sha256,
            )
            if path.is_file() and None in (info.resolution, info.embed_dim, info.family, info.params):
                row.update({k: v for k, v in _facts_from_file(info).items() if row.get(k) is None})
        rows.append(row)
    return rows
