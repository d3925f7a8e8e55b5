"""PASCAL VOC 2007 as the CLIP paper evaluated it: multi-label classification of whole images, scored by
11-point interpolated mean average precision (``clipbench.scoring.multilabel``).

Layout (torchvision's ``VOCDetection`` and the two official archives, unpacked into
``<data-root>/voc2007/``)::

    voc2007/VOCdevkit/VOC2007/Annotations/<id>.xml       one per image; <object><name> per object
    voc2007/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt, test.txt   image ids, one a line
    voc2007/VOCdevkit/VOC2007/JPEGImages/<id>.jpg

An image's classes are the names of its annotated objects, ``difficult`` ones included
(CLIP_benchmark's ``voc2007_multilabel``, ``PASCALVoc2007``, does the same). Class order is the
CLIP paper's prompt file (``prompts/voc2007.yaml``), not VOC's alphabetical one; the label vector
holds each image's lowest positive class in that order. The linear probe and k-NN refuse the set
(a multi-label target is not one class).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.datasets.download import Archive
from clipbench.datasets.local import LocalAdapter, prompt_fields
from clipbench.datasets.target_splits import MultiLabelFileSplit
from clipbench.foundations.errors import DataError

#: an image id as VOC writes them (guards the paths built from the untrusted id lists)
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_BASE = Path("VOCdevkit") / "VOC2007"
#: which id list each split reads
_SPLIT_FILES = {"train": "trainval.txt", "test": "test.txt"}


def parse_annotation_names(data: bytes, where: str) -> list[str]:
    """The ``<object><name>`` texts of one VOC annotation file; a DTD or an entity (which XML parsers expand)
    is refused, as is anything that is not XML."""
    import xml.etree.ElementTree as ET

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise DataError(f"{where}: refusing an annotation with a DTD or entity declaration")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(f"{where}: not a VOC annotation ({exc})") from exc
    return [(obj.findtext("name") or "").strip() for obj in root.iter("object")]


@dataclass
class VOC2007Adapter(LocalAdapter):
    """VOC 2007 classification: 20 classes, trainval (5,011 images) and test (4,952)."""

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        base = root / _BASE
        list_file = base / "ImageSets" / "Main" / _SPLIT_FILES[split]
        try:
            ids = [line.strip().split()[0] for line in list_file.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.name} {split}: cannot read {list_file} ({exc}); {self.how_to_get(data_root)}") from exc
        bad = next((i for i in ids if not _ID.match(i)), None)
        if bad is not None:
            raise DataError(f"{self.name} {split}: {list_file} lists {bad[:80]!r}, which is not a VOC image id")
        index = {name: c for c, name in enumerate(self.classnames)}
        targets = np.zeros((len(ids), len(self.classnames)), bool)
        for row, image_id in enumerate(ids):
            xml = base / "Annotations" / f"{image_id}.xml"
            try:
                data = xml.read_bytes()
            except OSError as exc:
                raise DataError(f"{self.name} {split}: annotation {xml} is missing or unreadable ({exc})") from exc
            for name in parse_annotation_names(data, str(xml)):
                if name not in index:
                    raise DataError(f"{self.name} {split}: {xml} names class {name[:80]!r}, not one of VOC's 20")
                targets[row, index[name]] = True
            if not targets[row].any():
                raise DataError(f"{self.name} {split}: {xml} has no object of the 20 classes")
        paths = [base / "JPEGImages" / f"{image_id}.jpg" for image_id in ids]
        return MultiLabelFileSplit(self.name, split, paths, targets, root)


def voc_adapters() -> list[VOC2007Adapter]:
    return [VOC2007Adapter(
        name="voc2007", splits=("train", "test"), primary_metric="mean_average_precision_11pt", folder="voc2007",
        expected=str(_BASE / "ImageSets" / "Main" / "test.txt"), multilabel=True,
        expected_count=4952, count_note="VOC 2007's test images",
        description="PASCAL VOC 2007 classification: 20 classes, multi-label, 11-point mAP (the CLIP paper's metric; "
                    "zero-shot only)",
        downloads=(Archive("https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
                           "c52e279531787c972589f7e41ab4ae64"),
                   Archive("https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
                           "b6e924de25625d8de591ea690078ad9f")),
        manual="unpack VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar (torchvision's VOCDetection URLs) into "
               "<data-root>/voc2007/ so that <data-root>/voc2007/VOCdevkit/VOC2007/{Annotations,ImageSets,JPEGImages} "
               "exist",
        **prompt_fields("voc2007"))]
