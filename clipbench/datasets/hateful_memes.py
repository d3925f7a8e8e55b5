"""Hateful Memes (Facebook AI's challenge set) as the CLIP paper evaluated it: two classes, ROC AUC.

Layout (the challenge's download, unpacked into ``<data-root>/hateful_memes/``)::

    hateful_memes/img/<id>.png
    hateful_memes/train.jsonl        8,500 lines {"id", "img": "img/<id>.png", "label": 0|1, "text"}
    hateful_memes/dev_seen.jsonl     500 lines: the CLIP paper's evaluation set (its Table 9: 8,500 / 500)

The ``test`` split is ``dev_seen.jsonl`` (the paper's 500); ``test_seen.jsonl`` and the unseen sets are
not read. Only the image and its label are used (the meme's text is in the image). Label 1 (hateful)
is the positive class of the ROC AUC, scored on the margin of the "hatespeech meme" logit over the
"meme" one (``clipbench.scoring.targets``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.images import FileSplit
from clipbench.datasets.local import LocalAdapter, prompt_fields
from clipbench.foundations.errors import DataError

_SPLIT_FILES = {"train": "train.jsonl", "test": "dev_seen.jsonl"}
#: the image member of a line: a plain file name under img/ (the paths come from an untrusted file)
_IMAGE = re.compile(r"^img/[A-Za-z0-9_-]{1,64}\.(png|jpg|jpeg)$")


def read_jsonl_items(path: Path, where: str) -> list[dict]:
    """The JSON objects of a .jsonl file, one a line; a line that is not one is a ``DataError`` naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: cannot read {path} ({exc})") from exc
    items = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: {path} line {number} is not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise DataError(f"{where}: {path} line {number} is not a JSON object")
        items.append(item)
    return items


@dataclass
class HatefulMemesAdapter(LocalAdapter):
    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        items = read_jsonl_items(root / _SPLIT_FILES[split], where)
        self.check_count(split, len(items), root)
        paths, labels = [], []
        for number, item in enumerate(items, 1):
            image, label = item.get("img"), item.get("label")
            if not isinstance(image, str) or not _IMAGE.match(image):
                raise DataError(f"{where}: {_SPLIT_FILES[split]} line {number}: 'img' must be img/<id>.png, got "
                                f"{str(image)[:80]!r}")
            if label not in (0, 1) or isinstance(label, bool):
                raise DataError(f"{where}: {_SPLIT_FILES[split]} line {number}: 'label' must be 0 or 1")
            paths.append(root / image)
            labels.append(label)
        return FileSplit(self.name, split, paths, labels, root=root)


def hateful_memes_adapters() -> list[HatefulMemesAdapter]:
    return [HatefulMemesAdapter(
        name="hateful_memes", splits=("train", "test"), primary_metric="roc_auc", folder="hateful_memes",
        expected="dev_seen.jsonl", expected_counts={"train": 8500, "test": 500},
        description="Hateful Memes: 2 classes, ROC AUC on dev_seen (the CLIP paper's 500); k-NN and the linear "
                    "probe report top-1",
        manual="request the Hateful Memes data from Facebook AI (hatefulmemeschallenge.com, licence agreement) and "
               "unpack it so that <data-root>/hateful_memes/img/ and <data-root>/hateful_memes/{train,dev_seen}.jsonl "
               "exist",
        **prompt_fields("hateful_memes"))]
