"""The VTAB sets clipbench lacked (CLIP_benchmark's ``vtab`` collection, DataComp's ``vtab/...`` tasks).

The structured sets (CLEVR, KITTI, dSprites, smallNORB, DMLab) and Diabetic Retinopathy exist only as
TFDS builds with VTAB's splits; people hold them as CLIP_benchmark's webdataset copies
(``clip-benchmark/wds_vtab-<task>``), which ``MirrorAdapter`` reads. RESISC45 and SVHN also read their
own public layouts: NWPU-RESISC45's class folders (VTAB's test split is 20% of the 31,500 images,
6,300; clipbench carves the same count, stratified and seeded, since TFDS's file order cannot be
reproduced from the folders) and SVHN's ``test_32x32.mat`` (read with scipy, no checksum needed).

Counts (``expected_count``, the evaluation split): VTAB's test splits as CLIP_benchmark and DataComp's
``tasklist.yml`` (``size``) give them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.datasets.download import Archive
from clipbench.datasets.images import ArraySplit, FileSplit, images_in, list_class_folders
from clipbench.datasets.local import prompt_fields
from clipbench.datasets.mirror import CB_MIRROR, MirrorAdapter, folder_key, mirror_instructions
from clipbench.datasets.splits import stratified_indices
from clipbench.foundations.errors import DataError

#: clipbench name -> (CLIP_benchmark's vtab task, test size, splits of the webdataset copy)
VTAB_SETS = {
    "clevr_count": ("clevr_count_all", 15_000),
    "clevr_distance": ("clevr_closest_object_distance", 15_000),
    "kitti_distance": ("kitti_closest_vehicle_distance", 711),
    "dsprites_location": ("dsprites_label_x_position", 73_728),
    "dsprites_orientation": ("dsprites_label_orientation", 73_728),
    "smallnorb_azimuth": ("smallnorb_label_azimuth", 12_150),
    "smallnorb_elevation": ("smallnorb_label_elevation", 12_150),
    "dmlab": ("dmlab", 22_735),
    "diabetic_retinopathy": ("diabetic_retinopathy", 42_670),
    "svhn": ("svhn", 26_032),
    "resisc45": ("resisc45", 6_300),
}

#: the fraction and seed of the stratified test split carved from RESISC45's class folders
RESISC45_CARVE = (0.2, 0)


def _resisc45_native(adapter: MirrorAdapter, split: str, root: Path) -> SplitData:
    """``NWPU-RESISC45/<class>/*.jpg``: class folders matched to the classnames by name."""
    base = root / "NWPU-RESISC45"
    index = {folder_key(c): i for i, c in enumerate(adapter.classnames)}
    paths, labels = [], []
    for folder in list_class_folders(base, adapter.name):
        label = index.get(folder_key(folder.name))
        if label is None:
            raise DataError(f"{adapter.name}: {folder} is not one of the 45 RESISC45 classes (expected folders such as "
                            "airplane, baseball_diamond, ...)")
        files = images_in(folder)
        paths += files
        labels += [label] * len(files)
    if len(set(labels)) != len(adapter.classnames):
        raise DataError(f"{adapter.name}: {base} has {len(set(labels))} class folders, expected {len(adapter.classnames)}")
    whole = FileSplit(adapter.name, split, paths, labels, root=root)
    fraction, seed = RESISC45_CARVE
    train_idx, test_idx = stratified_indices(whole.labels, fraction=fraction, seed=seed)
    return whole.subset(train_idx if split == "train" else test_idx, f"{split}:carve:seed={seed}:test_frac={fraction:g}")


def _svhn_native(adapter: MirrorAdapter, split: str, root: Path) -> SplitData:
    """The official (and torchvision's) SVHN layout: ``<folder>/{train,test}_32x32.mat`` with ``X`` (32, 32, 3, N)
    and ``y`` (N, 1), where 10 stands for the digit 0."""
    path = root / f"{split}_32x32.mat"
    try:
        from scipy.io import loadmat

        mat = loadmat(path, variable_names=("X", "y"))
        images, digits = np.transpose(mat["X"], (3, 0, 1, 2)), np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
        raise DataError(f"{adapter.name} {split}: cannot read {path} ({exc})") from exc
    if images.shape[1:] != (32, 32, 3) or len(images) != len(digits) or not np.isin(digits, range(1, 11)).all():
        raise DataError(f"{adapter.name} {split}: {path} is not SVHN's format (X 32x32x3xN, y in 1..10)")
    return ArraySplit(adapter.name, split, images, digits % 10)


_NATIVE = {
    "resisc45": (_resisc45_native, "NWPU-RESISC45",
                 "extract NWPU-RESISC45.rar (the official release; CLIP_benchmark links its OneDrive copy) so that "
                 "<data-root>/resisc45/NWPU-RESISC45/<class>/*.jpg exist, or "),
    "svhn": (_svhn_native, "test_32x32.mat",
             "download http://ufldl.stanford.edu/housenumbers/{train,test}_32x32.mat into <data-root>/svhn/ "
             "(torchvision's SVHN layout), or "),
}


#: public files with published MD5s (SVHN's, as torchvision lists them): `clipbench download` fetches these
DOWNLOADS = {"svhn": tuple(Archive(f"http://ufldl.stanford.edu/housenumbers/{split}_32x32.mat", md5, extract=False)
                           for split, md5 in (("train", "e26dedcc434d2e4c54c9b2d4a06d8373"),
                                              ("test", "eb5a983be6a315427106f1b164d9cef3")))}


def vtab_adapters() -> list[MirrorAdapter]:
    adapters = []
    for name, (task, n_test) in VTAB_SETS.items():
        repo = CB_MIRROR.format(f"vtab-{task}")
        native, expected, manual = _NATIVE.get(name, (None, "", ""))
        adapters.append(MirrorAdapter(
            name=name, splits=("train", "test"), folder=name, expected=expected, mirror=repo, native=native,
            downloads=DOWNLOADS.get(name, ()), manual=manual + mirror_instructions(repo, name),
            expected_count=n_test, count_note=f"VTAB's {task} test split", **prompt_fields(name),
            description=f"VTAB {task} (CLIP_benchmark vtab/{task})"))
    return adapters


def vtab_aliases() -> dict[str, tuple[str, ...]]:
    """Our name -> the spellings CLIP_benchmark (``vtab/<task>``, ``wds/vtab/<task>``) and DataComp use."""
    return {name: tuple(dict.fromkeys((f"vtab/{task}", f"wds/vtab/{task}", *((task,) if task != name else ()))))
            for name, (task, _) in VTAB_SETS.items()}
