"""Thumbnails for the per-sample browser, made once and cached beside the pages.

A record's images come from its dataset under ``data_root``, loaded as the run loaded it (the registry's
adapter, the record's split) and used only if the split's fingerprint equals the record's, so a
thumbnail always shows the sample the record scored. Each is a ``THUMB_PX`` px JPEG at
``browser/thumbs/<dataset>-<fingerprint[:12]>/<index>.jpg``; one that exists is never redrawn, and
records on the same split (zero-shot and the probe) share them. A split of at most ``ALL_UP_TO``
samples gets a thumbnail for every sample; a larger one (ImageNet's 50,000) for the samples the page
shows first: the most confident errors and the samples two runs disagree on.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

THUMB_PX = 64
ALL_UP_TO = 5000


def _open(record: dict, data_root: Path | None):
    """The record's split as a dataset of PIL images, or None (not there, or other data than the record's)."""
    from clipbench.datasets import get_dataset, load_split

    try:
        split = load_split(get_dataset(str(record.get("dataset"))), str(record.get("split")), data_root)
        if split.fingerprint != record.get("dataset_fingerprint"):
            log.warning("no thumbnails for %s: the data under %s is not the data the record scored (fingerprint "
                        "%s, record %s)", record.get("dataset"), data_root, split.fingerprint,
                        record.get("dataset_fingerprint"))
            return None
        return split.torch_dataset(lambda image: image)
    except (ClipbenchError, OSError, KeyError, ValueError) as exc:
        log.warning("no thumbnails for %s: %s", record.get("dataset"), exc)
        return None


def thumbnail_maker(data_root: str | os.PathLike | None, browser_dir: Path) -> Callable[[dict, Iterable[int]], dict]:
    """``make(record, wanted)`` -> {sample index: thumbnail path relative to ``browser_dir``}."""
    root = Path(data_root) if data_root is not None else None
    opened: dict[tuple, object] = {}

    def make(record: dict, wanted: Iterable[int]) -> dict[int, str]:
        key = (record.get("dataset"), record.get("split"), record.get("dataset_fingerprint"))
        if key not in opened:
            opened[key] = _open(record, root)
        images = opened[key]
        if images is None:
            return {}
        folder = f"thumbs/{file_slug(record['dataset'])}-{file_slug(str(record['dataset_fingerprint'])[:12])}"
        indices = range(len(images)) if len(images) <= ALL_UP_TO else sorted(set(wanted))
        made = {}
        for index in indices:
            if not 0 <= index < len(images):
                continue
            rel = f"{folder}/{index}.jpg"
            if not (browser_dir / rel).is_file():
                image = images[index][0].convert("RGB")
                image.thumbnail((THUMB_PX, THUMB_PX))
                if max(image.size) < THUMB_PX:  # small images (digits' 32 px) are scaled up, pixels kept sharp
                    scale = max(1, THUMB_PX // max(image.size))
                    image = image.resize((image.width * scale, image.height * scale), resample=0)
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=85)
                atomic_write_bytes(browser_dir / rel, buffer.getvalue(), within=browser_dir)
            made[index] = rel
        return made

    return make
