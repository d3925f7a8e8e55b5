"""Fake copies of the CLIP paper's classic datasets, ImageNet and its shifts, and Karpathy's caption sets, in
the on-disk layouts clipbench reads (torchvision's dataset classes, the CIFAR python batches, the ImageNet
folder layouts, Karpathy's split JSON): ``WRITERS[name](data_root, n_per_class)`` writes
``<data_root>/<name>/...`` as the download or the manual instructions leave it, with ``n_per_class`` tiny
images in every class of the evaluation split, and returns the number of evaluation samples written.

Only what the adapter reads for its evaluation split is written (plus files torchvision's class requires to
exist). Class folders are named after the real ones where clipbench's classnames are those names, else
synthetic names in the same sort order (Caltech-101, Country211).
Fakes are smaller than the real sets: load them with ``--allow-count-mismatch`` (or ``relaxed_counts``).
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests._datasets_fixtures import cifar10_tree


@functools.cache
def _encoded(seed: int, fmt: str, size: int = 8) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".ppm": "PPM"}


def put(path: Path, seed: int) -> Path:
    """A tiny image at ``path`` in the format its extension names (16 distinct images, encoded once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_encoded(seed % 16, _FORMATS[path.suffix.lower()]))
    return path


def _classnames(name: str) -> list[str]:
    from clipbench.datasets import get_dataset

    return list(get_dataset(name).classnames)


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("/", "_")


def _folders(root: Path, names: list[str], per_class: int, ext: str = ".jpg", prefix: str = "") -> int:
    for c, name in enumerate(names):
        for i in range(per_class):
            put(root / name / f"{prefix}{c:03d}_{i:04d}{ext}", c + i)
    return len(names) * per_class


def _carved_from(n_test: int) -> int:
    """Images per class from which clipbench's 20% stratified carve (``datasets.splits``) takes ``n_test``."""
    from clipbench.datasets.splits import stratified_indices

    return next(m for m in range(n_test + 1, 5 * n_test + 2)
                if len(stratified_indices(np.zeros(m), fraction=0.2)[1]) == n_test)


def _synthetic(n: int) -> list[str]:
    return [f"class_{i:03d}" for i in range(n)]


# -- torchvision layouts -------------------------------------------------------------------------------------

def write_cifar10(root: Path, n_per_class: int) -> int:
    """cifar10/cifar-10-batches-py (tests._datasets_fixtures.cifar10_tree; random labels)."""
    return len(cifar10_tree(root / "cifar10", train_per_batch=2, n_test=10 * n_per_class)["test"])


def write_cifar100(root: Path, n_per_class: int) -> int:
    """cifar100/cifar-100-python/{train,test,meta}: pickled dicts with ``data`` (N, 3072) and ``fine_labels``."""
    folder = root / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, labels in (("train", np.arange(100)), ("test", np.repeat(np.arange(100), n_per_class))):
        batch = {"filenames": [f"{i}.png" for i in range(len(labels))], "fine_labels": [int(x) for x in labels],
                 "coarse_labels": [int(x) // 5 for x in labels], "data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)}
        (folder / split).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [_slug(c) for c in _classnames("cifar100")],
                                                "coarse_label_names": [f"super{i}" for i in range(20)]}))
    return 100 * n_per_class


def write_stl10(root: Path, n_per_class: int) -> int:
    """stl10/stl10_binary/{train,test}_{X,y}.bin + unlabeled_X.bin: uint8 (N, 3, 96, 96) images, labels 1..10."""
    folder = root / "stl10" / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 1), ("test", n_per_class), ("unlabeled", 0)):
        labels = np.repeat(np.arange(1, 11, dtype=np.uint8), n)
        (folder / f"{split}_X.bin").write_bytes(rng.integers(0, 256, len(labels) * 3 * 96 * 96, dtype=np.uint8).tobytes())
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes(labels.tobytes())
    (folder / "class_names.txt").write_text("\n".join(_classnames("stl10")) + "\n")
    return 10 * n_per_class


def write_food101(root: Path, n_per_class: int) -> int:
    """food101/food-101/images/<class>/<id>.jpg + meta/test.json {class: ["<class>/<id>"]}."""
    base = root / "food101" / "food-101"
    meta = {}
    for c, name in enumerate(_slug(n) for n in _classnames("food101")):
        meta[name] = [f"{name}/{c * 100 + i}" for i in range(n_per_class)]
        for i, rel in enumerate(meta[name]):
            put(base / "images" / f"{rel}.jpg", c + i)
    (base / "meta").mkdir(parents=True, exist_ok=True)
    (base / "meta" / "test.json").write_text(json.dumps(meta))
    return 101 * n_per_class


def write_flowers102(root: Path, n_per_class: int) -> int:
    """flowers102/flowers-102/jpg/image_NNNNN.jpg + imagelabels.mat (labels 1..102) + setid.mat (trnid/valid/tstid)."""
    from scipy.io import savemat

    base = root / "flowers102" / "flowers-102"
    labels = np.repeat(np.arange(1, 103), n_per_class + 1)  # one train image per class, the rest test
    for i in range(len(labels)):
        put(base / "jpg" / f"image_{i + 1:05d}.jpg", i)
    ids = np.arange(1, len(labels) + 1)
    train = ids[:: n_per_class + 1]
    savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    savemat(base / "setid.mat", {"trnid": train[None, :], "valid": train[None, :],
                                 "tstid": np.setdiff1d(ids, train)[None, :]})
    return 102 * n_per_class


def write_oxford_pets(root: Path, n_per_class: int) -> int:
    """oxford_pets/oxford-iiit-pet/images/<Breed>_<n>.jpg + annotations/test.txt ("<id> <class> <species> <breed>")."""
    base = root / "oxford_pets" / "oxford-iiit-pet"
    lines = []
    for c, name in enumerate(_classnames("oxford_pets")):
        for i in range(n_per_class):
            image_id = f"{_slug(name)}_{i + 1}"
            put(base / "images" / f"{image_id}.jpg", c + i)
            lines.append(f"{image_id} {c + 1} {1 + (c % 2)} {c + 1}")
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    (base / "annotations" / "test.txt").write_text("\n".join(lines) + "\n")
    return 37 * n_per_class


def _annotations(fnames: list[str], classes: list[int]) -> np.ndarray:
    out = np.zeros(len(fnames), dtype=[(f, "O") for f in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")])
    for i, (fname, cls) in enumerate(zip(fnames, classes, strict=True)):
        out[i] = (1, 1, 7, 7, cls, fname)
    return out


def write_stanford_cars(root: Path, n_per_class: int) -> int:
    """stanford_cars/stanford_cars/devkit/cars_meta.mat (class_names) + cars_test_annos_withlabels.mat
    (annotations: fname, class 1..196, bbox) + cars_test/NNNNN.jpg."""
    from scipy.io import savemat

    base = root / "stanford_cars" / "stanford_cars"
    names = _classnames("stanford_cars")
    classes = [c + 1 for c in range(len(names)) for _ in range(n_per_class)]
    fnames = [f"{i + 1:05d}.jpg" for i in range(len(classes))]
    for i, fname in enumerate(fnames):
        put(base / "cars_test" / fname, i)
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(names, dtype=object)[None, :]})
    savemat(base / "cars_test_annos_withlabels.mat", {"annotations": _annotations(fnames, classes)[None, :]})
    return len(classes)


def write_fgvc_aircraft(root: Path, n_per_class: int) -> int:
    """fgvc_aircraft/fgvc-aircraft-2013b/data/variants.txt + images_variant_test.txt ("<id> <variant>") + images/<id>.jpg."""
    data = root / "fgvc_aircraft" / "fgvc-aircraft-2013b" / "data"
    names = _classnames("fgvc_aircraft")
    lines = []
    for c, name in enumerate(names):
        for i in range(n_per_class):
            image_id = f"{1000000 + c * 100 + i}"
            put(data / "images" / f"{image_id}.jpg", c + i)
            lines.append(f"{image_id} {name}")
    (data / "variants.txt").write_text("\n".join(names) + "\n")
    (data / "images_variant_test.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def write_dtd(root: Path, n_per_class: int) -> int:
    """dtd/dtd/dtd/images/<texture>/<texture>_NNNN.jpg + labels/test1.txt ("<texture>/<file>")."""
    base = root / "dtd" / "dtd" / "dtd"
    lines = []
    for c, name in enumerate(_classnames("dtd")):
        for i in range(n_per_class):
            put(base / "images" / name / f"{name}_{i + 1:04d}.jpg", c + i)
            lines.append(f"{name}/{name}_{i + 1:04d}.jpg")
    (base / "labels").mkdir(parents=True, exist_ok=True)
    (base / "labels" / "test1.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


EUROSAT_FOLDERS = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture", "PermanentCrop",
                   "Residential", "River", "SeaLake"]  # the release's folders (clipbench/prompts/eurosat.yaml's origin)


def write_eurosat(root: Path, n_per_class: int) -> int:
    """eurosat/eurosat/2750/<Class>/<Class>_N.jpg; clipbench carves 20% of each class as test."""
    for c, name in enumerate(EUROSAT_FOLDERS):
        for i in range(_carved_from(n_per_class)):
            put(root / "eurosat" / "eurosat" / "2750" / name / f"{name}_{i + 1}.jpg", c + i)
    return 10 * n_per_class


def write_gtsrb(root: Path, n_per_class: int) -> int:
    """gtsrb/gtsrb/GTSRB/Final_Test/Images/NNNNN.ppm + GT-final_test.csv (";"-separated, ClassId 0..42)."""
    base = root / "gtsrb" / "gtsrb"
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for n, c in enumerate(c for c in range(43) for _ in range(n_per_class)):
        put(base / "GTSRB" / "Final_Test" / "Images" / f"{n:05d}.ppm", n)
        rows.append(f"{n:05d}.ppm;8;8;1;1;7;7;{c}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return 43 * n_per_class


def write_country211(root: Path, n_per_class: int) -> int:
    """country211/country211/test/<code>/<id>.jpg: 211 folders (synthetic two-letter codes in the real sort order)."""
    codes = [f"{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(211)]
    return _folders(root / "country211" / "country211" / "test", codes, n_per_class)


def write_sun397(root: Path, n_per_class: int) -> int:
    """sun397/SUN397/ClassName.txt ("/a/abbey") + SUN397/<letter>/<class>/sun_*.jpg; clipbench carves 20% as test."""
    base = root / "sun397" / "SUN397"
    keys = [f"/{name[0]}/{_slug(name)}" for name in _classnames("sun397")]
    for c, key in enumerate(keys):
        for i in range(_carved_from(n_per_class)):
            put(base / key[1:] / f"sun_{c:03d}{i:04d}.jpg", c + i)
    (base / "ClassName.txt").write_text("\n".join(keys) + "\n")
    return 397 * n_per_class


def write_caltech101(root: Path, n_per_class: int, test_classes: int = 102) -> int:
    """caltech101/101_ObjectCategories/<class>/image_NNNN.jpg, 102 folders (BACKGROUND_Google first); clipbench
    takes 30 per class for train, so 30 + ``n_per_class`` images in each of the first ``test_classes`` classes
    (fewer: fewer files, and only those classes in the test split), one train image in the others."""
    names = ["BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes"] + _synthetic(97)
    base = root / "caltech101" / "101_ObjectCategories"
    _folders(base, names[:test_classes], 30 + n_per_class, prefix="image_")
    _folders(base, names[test_classes:], 1, prefix="image_")
    return test_classes * n_per_class


def _idx(path: Path, magic: int, array: np.ndarray) -> None:
    path.write_bytes(struct.pack(">" + "i" * (1 + array.ndim), magic, *array.shape) + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_per_class: int) -> int:
    """mnist/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (IDX files, 28x28 images)."""
    raw = root / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 1), ("t10k", n_per_class)):
        labels = np.repeat(np.arange(10), n)
        _idx(raw / f"{prefix}-images-idx3-ubyte", 2051, rng.integers(0, 256, (len(labels), 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, labels)
    return 10 * n_per_class


def write_rendered_sst2(root: Path, n_per_class: int) -> int:
    """rendered_sst2/rendered-sst2/test/{negative,positive}/*.png."""
    return _folders(root / "rendered_sst2" / "rendered-sst2" / "test", ["negative", "positive"], n_per_class, ".png")


def write_pcam(root: Path, n_per_class: int) -> int:
    """pcam/pcam/camelyonpatch_level_2_split_test_{x,y}.h5: x (N, 96, 96, 3) uint8, y (N, 1, 1, 1) uint8."""
    import h5py

    base = root / "pcam" / "pcam"
    base.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(2, dtype=np.uint8), n_per_class)
    with h5py.File(base / "camelyonpatch_level_2_split_test_x.h5", "w") as fh:
        fh["x"] = np.random.default_rng(0).integers(0, 256, (len(labels), 96, 96, 3), dtype=np.uint8)
    with h5py.File(base / "camelyonpatch_level_2_split_test_y.h5", "w") as fh:
        fh["y"] = labels[:, None, None, None]
    return len(labels)


# -- ImageNet and its shifts -----------------------------------------------------------------------------------

def _wnids(name: str) -> list[str]:
    from clipbench.datasets import packaged_prompts

    return list(packaged_prompts(name, require_classnames=False).raw["wnids"])


def write_imagenet1k(root: Path, n_per_class: int) -> int:
    """imagenet1k/val/<wnid>/ILSVRC2012_val_NNNNNNNN.JPEG for the 1000 wnids."""
    return _folders(root / "imagenet1k" / "val", _wnids("imagenet1k"), n_per_class, ".JPEG", "ILSVRC2012_val_")


def write_imagenet_sketch(root: Path, n_per_class: int) -> int:
    """imagenet_sketch/sketch/<wnid>/sketch_N.JPEG."""
    return _folders(root / "imagenet_sketch" / "sketch", _wnids("imagenet1k"), n_per_class, ".JPEG", "sketch_")


def write_imagenet_v2(root: Path, n_per_class: int) -> int:
    """imagenet_v2/imagenetv2-matched-frequency-format-val/<0..999>/<hash>.jpeg."""
    return _folders(root / "imagenet_v2" / "imagenetv2-matched-frequency-format-val", [str(i) for i in range(1000)],
                    n_per_class, ".jpeg")


def write_imagenet_a(root: Path, n_per_class: int) -> int:
    """imagenet_a/imagenet-a/<wnid>/*.jpg for its 200 wnids."""
    return _folders(root / "imagenet_a" / "imagenet-a", _wnids("imagenet_a"), n_per_class)


def write_imagenet_r(root: Path, n_per_class: int) -> int:
    """imagenet_r/imagenet-r/<wnid>/*.jpg for its 200 wnids."""
    return _folders(root / "imagenet_r" / "imagenet-r", _wnids("imagenet_r"), n_per_class)


# -- Karpathy's caption splits ---------------------------------------------------------------------------------

def _karpathy(folder: Path, json_name: str, image_dir: str, n_images: int, coco: bool = False) -> int:
    entries = []
    for i in range(n_images):
        filename = f"COCO_val2014_{i:012d}.jpg" if coco else f"{1000 + i}.jpg"
        put(folder / image_dir / filename, i)
        entry = {"filename": filename, "split": "test", "imgid": i,
                 "sentences": [{"raw": f"a photo number {i} seen {k} ways.", "tokens": []} for k in range(5)]}
        entries.append({"filepath": image_dir, **entry} if coco else entry)
    (folder / json_name).write_text(json.dumps({"images": entries, "dataset": folder.name}))
    return n_images


def write_flickr30k(root: Path, n_per_class: int) -> int:
    """flickr30k/flickr30k-images/*.jpg + dataset_flickr30k.json; ``n_per_class`` x 4 test images, 5 captions each."""
    return _karpathy(root / "flickr30k", "dataset_flickr30k.json", "flickr30k-images", 4 * n_per_class)


def write_mscoco_captions(root: Path, n_per_class: int) -> int:
    """mscoco_captions/val2014/COCO_val2014_*.jpg + dataset_coco.json (entries with ``filepath``)."""
    return _karpathy(root / "mscoco_captions", "dataset_coco.json", "val2014", 4 * n_per_class, coco=True)


#: dataset name -> writer(data_root, n_per_class) -> number of evaluation samples
WRITERS: dict[str, Callable[[Path, int], int]] = {
    "caltech101": write_caltech101, "cifar10": write_cifar10, "cifar100": write_cifar100,
    "country211": write_country211, "dtd": write_dtd, "eurosat": write_eurosat, "fgvc_aircraft": write_fgvc_aircraft,
    "food101": write_food101, "gtsrb": write_gtsrb, "imagenet1k": write_imagenet1k,
    "imagenet_sketch": write_imagenet_sketch, "imagenet_v2": write_imagenet_v2, "imagenet_a": write_imagenet_a,
    "imagenet_r": write_imagenet_r, "mnist": write_mnist, "flowers102": write_flowers102,
    "oxford_pets": write_oxford_pets, "pcam": write_pcam, "rendered_sst2": write_rendered_sst2,
    "stanford_cars": write_stanford_cars, "stl10": write_stl10, "sun397": write_sun397,
    "flickr30k": write_flickr30k, "mscoco_captions": write_mscoco_captions,
}
