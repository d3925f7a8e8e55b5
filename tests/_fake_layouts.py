"""Fake copies of issue 29's datasets (the VTAB sets, ImageNet-O, ObjectNet, Birdsnap) in their real on-disk
layouts: ``WRITERS[name](data_root, n_per_class)`` writes ``<data_root>/<folder>/...`` as the download or the
manual instructions leave it, with ``n_per_class`` tiny images in each class of the evaluation split, and
returns the number of evaluation samples written.

- the webdataset copies CLIP_benchmark publishes (``test/0.tar``, ``1.tar``: ``NNNNNN.png`` + ``.cls``,
  ``classnames.txt``, ``nshards.txt``), for the sets held that way;
- the official layouts where clipbench reads them: NWPU-RESISC45's class folders, torchvision's SVHN
  ``test_32x32.mat``, ImageNet-O's wnid folders, ObjectNet 1.0's ``objectnet-1.0/images/<folder>/``,
  Birdsnap's ``test_images.txt`` + ``download/images/<species>/``.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests._datasets_fixtures import write_image


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_mirror(folder: Path, classnames: list[str], n_per_class: int, split: str = "test", per_shard: int = 7) -> int:
    """CLIP_benchmark's webdataset copy: ``folder/<split>/{0..k}.tar`` with ``per_shard`` samples each."""
    labels = [c for c in range(len(classnames)) for _ in range(n_per_class)]
    out = folder / split
    out.mkdir(parents=True, exist_ok=True)
    shards = [labels[i:i + per_shard] for i in range(0, len(labels), per_shard)]
    for s, chunk in enumerate(shards):
        with tarfile.open(out / f"{s}.tar", "w") as tar:
            for j, label in enumerate(chunk):
                key = f"s{s:03d}_{j:05d}"
                _add(tar, f"{key}.webp" if j % 2 else f"{key}.png", _png(s * 1000 + j))
                _add(tar, f"{key}.cls", str(label).encode())
    (out / "nshards.txt").write_text(str(len(shards)))
    (folder / "classnames.txt").write_text("\n".join(classnames) + "\n")
    return len(labels)


def _mirror_writer(name: str) -> Callable[[Path, int], int]:
    def write(root: Path, n_per_class: int) -> int:
        from clipbench.datasets import get_dataset

        return write_mirror(root / name, list(get_dataset(name).classnames), n_per_class)

    return write


def write_resisc45(root: Path, n_per_class: int) -> int:
    """NWPU-RESISC45/<class_folder>/<class>_NNN.jpg; clipbench carves 20% of each class as test."""
    from clipbench.datasets import get_dataset

    for c, name in enumerate(get_dataset("resisc45").classnames):
        folder = root / "resisc45" / "NWPU-RESISC45" / name.replace(" ", "_")
        for i in range(5 * n_per_class):
            write_image(folder / f"{name.replace(' ', '_')}_{i:03d}.jpg", c * 100 + i)
    return 45 * n_per_class


def write_svhn(root: Path, n_per_class: int) -> int:
    """torchvision's SVHN ``test_32x32.mat``: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0."""
    from scipy.io import savemat

    digits = np.repeat(np.arange(10), n_per_class)
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, len(digits)), dtype=np.uint8)
    (root / "svhn").mkdir(parents=True, exist_ok=True)
    savemat(root / "svhn" / "test_32x32.mat", {"X": x, "y": np.where(digits == 0, 10, digits)[:, None]})
    return len(digits)


def write_imagenet_o(root: Path, n_per_class: int) -> int:
    from clipbench.datasets import packaged_prompts

    wnids = packaged_prompts("imagenet_o", require_classnames=False).raw["wnids"]
    for c, wnid in enumerate(wnids):
        for i in range(n_per_class):
            write_image(root / "imagenet_o" / "imagenet-o" / wnid / f"{wnid}_{i}.jpg", c * 10 + i)
    return len(wnids) * n_per_class


def write_objectnet(root: Path, n_per_class: int) -> int:
    """objectnet-1.0/images/<folder>/*.png for the 113 mapped folders, plus one unmapped folder it must ignore."""
    from clipbench.datasets import packaged_prompts

    base = root / "objectnet" / "objectnet-1.0" / "images"
    folders = packaged_prompts("objectnet").raw["folders"]
    for c, folder in enumerate(folders):
        for i in range(n_per_class):
            write_image(base / folder / f"{c:03d}{i:02d}.png", c * 10 + i)
    write_image(base / "zz_not_in_imagenet" / "x.png", 999)
    (root / "objectnet" / "objectnet-1.0" / "mappings").mkdir(parents=True, exist_ok=True)
    return len(folders) * n_per_class


def write_birdsnap(root: Path, n_per_class: int) -> int:
    """download/images/<Species_Dir>/*.jpg (plus one train image of the first species) + test_images.txt."""
    from clipbench.datasets import get_dataset

    base = root / "birdsnap"
    test = ["path"]
    for c, name in enumerate(get_dataset("birdsnap").classnames):
        species = name.replace(" ", "_")
        for i in range(n_per_class + (c == 0)):
            write_image(base / "download" / "images" / species / f"{i:03d}.jpg", c * 10 + i)
            if i < n_per_class:
                test.append(f"{species}/{i:03d}.jpg")
    (base / "test_images.txt").write_text("\n".join(test) + "\n")
    return 500 * n_per_class


MIRRORED = ("clevr_count", "clevr_distance", "kitti_distance", "dsprites_location", "dsprites_orientation",
            "smallnorb_azimuth", "smallnorb_elevation", "dmlab", "diabetic_retinopathy")

#: dataset name -> writer(data_root, n_per_class) -> number of evaluation samples
WRITERS: dict[str, Callable[[Path, int], int]] = {
    **{name: _mirror_writer(name) for name in MIRRORED},
    "svhn": write_svhn,
    "resisc45": write_resisc45,
    "imagenet_o": write_imagenet_o,
    "objectnet": write_objectnet,
    "birdsnap": write_birdsnap,
}
