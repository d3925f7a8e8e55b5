"""The CLIP paper's Birdsnap (Table 9): 500 North American bird species, read from the official release.

Birdsnap ships only image URLs: ``birdsnap.tgz`` holds ``species.txt``, ``test_images.txt`` and
``get_birdsnap.py``, which downloads the images into ``download/images/<species>/<file>.jpg``. The test
split is the files ``test_images.txt`` lists (one ``<species>/<file>`` path a line, after a ``path``
header), the train split every other image. URLs rot, so copies differ in size (the paper had 2,149
test images): no count is checked, and the record's data identity names the files scored. Species
folders are matched to the paper's classnames by their letters and digits ("Allen's_Hummingbird" is
"Allens Hummingbird").
"""

from __future__ import annotations

import re
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.images import FileSplit, images_in, list_class_folders
from clipbench.datasets.local import prompt_fields
from clipbench.datasets.mirror import MirrorAdapter
from clipbench.foundations.errors import DataError


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def _test_paths(listing: Path) -> set[str]:
    try:
        lines = [ln.strip() for ln in listing.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"birdsnap: cannot read {listing} ({exc})") from exc
    return {ln.split("\t")[0] for ln in lines if ln.split("\t")[0].lower() != "path"}


def _birdsnap_native(adapter: MirrorAdapter, split: str, root: Path) -> SplitData:
    images = root / "download" / "images"
    listing = root / "test_images.txt"
    if not listing.is_file():
        raise DataError(f"{adapter.name}: {listing} not found (it comes with birdsnap.tgz); {adapter.how_to_get()}")
    test = _test_paths(listing)
    index = {_key(c): i for i, c in enumerate(adapter.classnames)}
    paths, labels = [], []
    for folder in list_class_folders(images, adapter.name):
        label = index.get(_key(folder.name))
        if label is None:
            raise DataError(f"{adapter.name}: {folder} is not one of Birdsnap's 500 species")
        for file in images_in(folder):
            if (file.relative_to(images).as_posix() in test) == (split == "test"):
                paths.append(file)
                labels.append(label)
    if not paths:
        raise DataError(f"{adapter.name} {split}: no images of this split under {images} (test_images.txt lists "
                        f"{len(test)}); run get_birdsnap.py first")
    return FileSplit(adapter.name, split, paths, labels, root=root)


def clip_paper_extra_adapters() -> list[MirrorAdapter]:
    return [MirrorAdapter(
        name="birdsnap", splits=("train", "test"), folder="birdsnap", expected="download/images",
        native=_birdsnap_native, **prompt_fields("birdsnap"),
        manual="download birdsnap.tgz (thomasberg.org, Birdsnap dataset), extract it into <data-root>/birdsnap/ and run "
               "its get_birdsnap.py there, so that test_images.txt and download/images/<species>/*.jpg exist "
               "(images whose URL is gone are missing: the paper scored 2,149 test images)",
        description="Birdsnap (CLIP paper Table 9): 500 bird species, images from the release's URLs")]
