"""Fake copies, in their real on-disk layouts, of the datasets whose metrics need more than the label vector
(issue 29: multi-label, ROC AUC, groups): ``WRITERS[name](root, n_per_class)`` writes dataset ``name``
under the data root ``root``. Fakes are smaller than the real sets, so loading them needs the count
check relaxed (``relaxed_counts``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from _datasets_fixtures import write_image

from clipbench.datasets import get_dataset

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def write_voc2007(root: Path, n_per_class: int) -> None:
    """VOCdevkit/VOC2007 with ``n_per_class`` images per class in each of trainval and test; every third image
    also shows the next class (a second, difficult object), so the targets are multi-label."""
    base = root / "voc2007" / "VOCdevkit" / "VOC2007"
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    n = 0
    for split in ("trainval", "test"):
        ids = []
        for c, name in enumerate(VOC_CLASSES):
            for i in range(n_per_class):
                image_id = f"{n:06d}"
                n += 1
                ids.append(image_id)
                write_image(base / "JPEGImages" / f"{image_id}.jpg", n, fmt="JPEG")
                objects = [(name, 0)] + ([(VOC_CLASSES[(c + 1) % 20], 1)] if i % 3 == 2 else [])
                xml = "".join(f"<object><name>{o}</name><difficult>{d}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
                              f"<xmax>7</xmax><ymax>7</ymax></bndbox></object>" for o, d in objects)
                (base / "Annotations").mkdir(exist_ok=True)
                (base / "Annotations" / f"{image_id}.xml").write_text(
                    f"<annotation><filename>{image_id}.jpg</filename>{xml}</annotation>")
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")


def write_hateful_memes(root: Path, n_per_class: int) -> None:
    """img/<id>.png and train.jsonl / dev_seen.jsonl with ``n_per_class`` memes of each label."""
    folder = root / "hateful_memes"
    n = 0
    for name in ("train.jsonl", "dev_seen.jsonl"):
        lines = []
        for i in range(2 * n_per_class):
            n += 1
            write_image(folder / "img" / f"{n:05d}.png", n)
            lines.append(json.dumps({"id": n, "img": f"img/{n:05d}.png", "label": i % 2, "text": "a meme"}))
        (folder / name).write_text("\n".join(lines) + "\n")


WRITERS = {
    "voc2007": write_voc2007,
    "hateful_memes": write_hateful_memes,
}


@contextlib.contextmanager
def relaxed_counts(names=None) -> Iterator[None]:
    """The registered adapters ``names`` (default: every one of ``WRITERS``) without their expected sample
    counts, for as long as the block runs (fakes are smaller than the real sets)."""
    adapters = [get_dataset(name) for name in (names or WRITERS)]
    saved = [a.expected_counts for a in adapters]
    try:
        for a in adapters:
            a.expected_counts = {}
        yield
    finally:
        for a, counts in zip(adapters, saved, strict=True):
            a.expected_counts = counts
