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


@dataclass
class HatefulMemesAdapter(LocalAdapter):
    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        from clipbench.datasets.caption_files import _read_rows  # the one .jsonl reader of data files

        try:
            items = _read_rows(root / _SPLIT_FILES[split])
        except OSError as exc:
            raise DataError(f"{where}: cannot read {root / _SPLIT_FILES[split]} ({exc})") from exc
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
        expected="dev_seen.jsonl", expected_count=500, count_note="dev_seen, the CLIP paper's 500 memes",
        description="Hateful Memes: 2 classes, ROC AUC on dev_seen (the CLIP paper's 500); k-NN and the linear "
                    "probe report top-1",
        manual="request the Hateful Memes data from Facebook AI (hatefulmemeschallenge.com, licence agreement) and "
               "unpack it so that <data-root>/hateful_memes/img/ and <data-root>/hateful_memes/{train,dev_seen}.jsonl "
               "exist",
        **prompt_fields("hateful_memes"))]
