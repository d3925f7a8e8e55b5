"""Karpathy's caption splits of Flickr30k, Flickr8k and MSCOCO: the image-text kind's placed-by-hand sets.

Images plus Karpathy's split JSON (``dataset_flickr30k.json``, ``dataset_flickr8k.json``,
``dataset_coco.json``: ``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}``);
Karpathy's ``restval`` images count as ``train``. ``clipbench download NAME`` says where they go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.image_text import SPLIT_ALIASES, ImageTextAdapter, ImageTextSplit, image_text_fields
from clipbench.datasets.local import DataFolder
from clipbench.foundations.errors import DataError


@dataclass
class KarpathyAdapter(DataFolder, ImageTextAdapter):
    """Images under ``<data-root>/<folder>/<one of image_dirs>/`` and Karpathy's split JSON beside them."""

    json_name: str = ""
    #: candidate image folders (the first that exists is used); COCO's entries carry their own ``filepath``
    image_dirs: tuple[str, ...] = ()

    def is_present(self, data_root: str | Path) -> bool:
        try:
            return (self.root(data_root) / self.json_name).is_file() and self._image_root(data_root) is not None
        except OSError:
            return False

    def _image_root(self, data_root: str | Path) -> Path | None:
        base = self.root(data_root)
        for sub in self.image_dirs:
            if (base / sub).is_dir():
                return base / sub
        return None

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        base = self.root(data_root)
        json_path = base / self.json_name
        if not json_path.is_file():
            raise DataError(f"{self.name}: {json_path} not found; {self.manual_for(data_root)}")
        image_root = self._image_root(data_root)
        if image_root is None:
            raise DataError(f"{self.name}: none of {', '.join(str(base / d) for d in self.image_dirs)} exists; "
                            f"{self.manual_for(data_root)}")
        try:
            entries = json.loads(json_path.read_text(encoding="utf-8"))["images"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise DataError(f"{json_path} is not a Karpathy split file ({type(exc).__name__}); expected "
                            '{"images": [{"filename", "split", "sentences": [{"raw"}]}]}') from exc
        paths, captions = [], []
        for entry in entries:
            try:
                if SPLIT_ALIASES.get(str(entry["split"]), entry["split"]) != split:
                    continue
                parts = [entry["filepath"], entry["filename"]] if entry.get("filepath") else [entry["filename"]]
                sentences = [s["raw"].strip() for s in entry["sentences"]]
            except (KeyError, TypeError, AttributeError) as exc:
                raise DataError(f"{json_path}: an image entry lacks {exc} (expected filename, split and "
                                "sentences with raw)") from exc
            paths.append(str(image_root.joinpath(*parts)))
            captions.append(sentences)
        if not paths:
            raise DataError(f"{self.name}: {json_path} lists no {split!r} images")
        return ImageTextSplit(self.name, split, paths, captions, root=image_root)


_KARPATHY = "Andrej Karpathy's splits (cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip)"


def karpathy_adapters() -> list[KarpathyAdapter]:
    """flickr30k, flickr8k and mscoco_captions with Karpathy's train/val/test splits."""
    splits = ("train", "val", "test")
    return [
        KarpathyAdapter(**image_text_fields(
            "flickr30k", splits, "Flickr30k images with Karpathy's split (test: 1,000 images x 5 captions)",
            folder="flickr30k", json_name="dataset_flickr30k.json", image_dirs=("flickr30k-images", "images", "Images"),
            origin=_KARPATHY,
            manual="Flickr30k's images need the request form at shannon.cs.illinois.edu/DenotationGraph/, so they "
                   "cannot be downloaded for you: extract flickr30k-images.tar.gz so that <data-root>/flickr30k/"
                   f"flickr30k-images/*.jpg exist, and put dataset_flickr30k.json from {_KARPATHY} at "
                   "<data-root>/flickr30k/dataset_flickr30k.json")),
        KarpathyAdapter(**image_text_fields(
            "flickr8k", splits, "Flickr8k images with Karpathy's split (test: 1,000 images x 5 captions)",
            folder="flickr8k", json_name="dataset_flickr8k.json",
            image_dirs=("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images"), origin=_KARPATHY,
            manual="Flickr8k's images come from a request form (or the Flickr8k_Dataset.zip mirrors), so they cannot "
                   "be downloaded for you: extract them so that <data-root>/flickr8k/Flicker8k_Dataset/*.jpg (or "
                   f"Images/*.jpg) exist, and put dataset_flickr8k.json from {_KARPATHY} at "
                   "<data-root>/flickr8k/dataset_flickr8k.json")),
        KarpathyAdapter(**image_text_fields(
            "mscoco_captions", splits, "MSCOCO 2014 images with Karpathy's split (test: 5,000 images, ~25k captions)",
            folder="mscoco_captions", json_name="dataset_coco.json", image_dirs=(".",), origin=_KARPATHY,
            manual="download the COCO 2014 images from images.cocodataset.org/zips/train2014.zip and val2014.zip "
                   "(Karpathy's test and val images are all in val2014) and extract them so that "
                   "<data-root>/mscoco_captions/val2014/*.jpg and train2014/*.jpg exist, and put dataset_coco.json "
                   f"from {_KARPATHY} at <data-root>/mscoco_captions/dataset_coco.json")),
    ]
