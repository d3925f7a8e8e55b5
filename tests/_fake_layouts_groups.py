"""Fake copies, in their real on-disk layouts, of the datasets whose metrics need more than the label vector
(issue 29: multi-label, ROC AUC, groups): ``WRITERS[name](root, n_per_class)`` writes dataset ``name``
under the data root ``root``. Fakes are smaller than the real sets, so loading them needs the count
check relaxed (``relaxed_counts``, or ``clipbench run --allow-count-mismatch``; ``relaxed_counts`` also
restores the classnames a DataComp copy sets)."""

from __future__ import annotations

import contextlib
import csv
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


def _csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_iwildcam(root: Path, n_per_class: int, n_classes: int = 182) -> None:
    """iwildcam_v2.0/metadata.csv + train/<filename>: ``n_per_class`` images of the first 4 classes per split
    (macro F1 counts the classes present), over 3 camera locations."""
    folder, rows = root / "iwildcam_v2.0", []
    for split in ("train", "test"):
        for y in range(4):
            for i in range(n_per_class):
                name = f"{split}-{y}-{i}.jpg"
                write_image(folder / "train" / name, len(rows), fmt="JPEG")
                rows.append({"split": split, "y": y, "filename": name, "location_remapped": len(rows) % 3,
                             "sequence_remapped": len(rows), "datetime": "2013-06-01 10:00:00.000"})
    _csv(folder / "metadata.csv", rows)


def write_camelyon17(root: Path, n_per_class: int) -> None:
    """camelyon17_v1.0/metadata.csv + patches/: hospital 0 (train) and hospital 2 (test), two slides each."""
    folder, rows = root / "camelyon17_v1.0", []
    for center in (0, 1, 2):
        for tumor in (0, 1):
            for i in range(n_per_class):
                patient, node, x, y = f"{center:03d}", i % 2, 100 * len(rows), 7
                stem = f"patient_{patient}_node_{node}"
                write_image(folder / "patches" / stem / f"patch_{stem}_x_{x}_y_{y}.png", len(rows))
                rows.append({"": len(rows), "patient": patient, "node": node, "x_coord": x, "y_coord": y,
                             "tumor": tumor, "slide": 10 * center + node, "center": center, "split": 0})
    _csv(folder / "metadata.csv", rows)


FMOW_REGIONS = {"USA": "Americas", "FRA": "Europe", "KEN": "Africa", "JPN": "Asia"}


def write_fmow(root: Path, n_per_class: int) -> None:
    """fmow_v1.1/rgb_metadata.csv, country_code_mapping.csv and images/rgb_img_<row>.png: 3 categories; train
    rows from 2010, test rows from 2016 (and a 2014 test row, OOD validation, that no split reads); the
    regions of 4 countries plus a code without one ("Other")."""
    folder, rows = root / "fmow_v1.1", []
    codes = [*FMOW_REGIONS, "XXX"]
    for split, year in (("train", 2010), ("test", 2016), ("test", 2014)):
        for category in ("airport", "barn", "zoo"):
            for i in range(n_per_class if year != 2014 else 1):
                write_image(folder / "images" / f"rgb_img_{len(rows)}.png", len(rows))
                rows.append({"split": split, "category": category, "country_code": codes[len(rows) % 5],
                             "timestamp": f"{year}-03-0{1 + i % 9}T10:00:00Z"})
    _csv(folder / "rgb_metadata.csv", rows)
    _csv(folder / "country_code_mapping.csv", [{"alpha-3": k, "region": v} for k, v in FMOW_REGIONS.items()])


def _datacomp_wds(root: Path, task: str, n_per_class: int, n_classes: int, metadata) -> None:
    """DataComp's wds_<task>_test/ copy: classnames.txt, the templates file, test/nshards.txt and two shards of
    <key>.jpg, <key>.cls, <key>.npy; ``n_per_class`` images of the first 3 classes, ``metadata(i)`` per sample."""
    import io
    import tarfile

    import numpy as np

    folder = root / f"wds_{task}_test"
    (folder / "test").mkdir(parents=True, exist_ok=True)
    (folder / "classnames.txt").write_text("\n".join(f"thing {c}" for c in range(n_classes)) + "\n")
    (folder / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\nan image of {c}.\n")
    (folder / "test" / "nshards.txt").write_text("2")
    samples = [(c, i) for c in range(3) for i in range(n_per_class)]
    for shard in range(2):
        with tarfile.open(folder / "test" / f"{shard}.tar", "w") as tar:
            for k, (c, _) in enumerate(samples):
                if k % 2 != shard:
                    continue
                image = write_image(folder / "tmp.jpg", k, fmt="JPEG").read_bytes()
                meta = io.BytesIO()
                np.save(meta, np.asarray(metadata(k), np.int64))
                for ext, data in (("jpg", image), ("cls", str(c).encode()), ("npy", meta.getvalue())):
                    info = tarfile.TarInfo(f"s{k:05d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (folder / "tmp.jpg").unlink()


def write_dollar_street(root: Path, n_per_class: int) -> None:
    _datacomp_wds(root, "dollar_street", n_per_class, 58, lambda k: [k % 4, 100 * k, k % 3])


def write_geode(root: Path, n_per_class: int) -> None:
    _datacomp_wds(root, "geode", n_per_class, 40, lambda k: [k % 6, k % 10])


FAIRFACE_RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
AGE_BINS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]


def write_fairface(root: Path, n_per_class: int) -> None:
    """fairface/fairface_label_{train,val}.csv and train/, val/: ``n_per_class`` faces of each gender per split,
    spread over the races and age groups."""
    folder = root / "fairface"
    for split in ("train", "val"):
        rows = []
        for i in range(2 * n_per_class):
            file = f"{split}/{i + 1}.jpg"
            write_image(folder / file, i, fmt="JPEG")
            rows.append({"file": file, "age": AGE_BINS[i % 9], "gender": ("Male", "Female")[i % 2],
                         "race": FAIRFACE_RACES[i % 7], "service_test": "True"})
        _csv(folder / f"fairface_label_{split}.csv", rows)


def write_utkface(root: Path, n_per_class: int) -> None:
    """utkface/UTKFace/<age>_<gender>_<race>_<date>.jpg.chip.jpg, plus one file whose name lacks a field (the
    release has a few; they carry no labels and are skipped)."""
    folder = root / "utkface" / "UTKFace"
    for i in range(2 * n_per_class):
        write_image(folder / f"{[1, 5, 15, 25, 35, 45, 55, 65, 80][i % 9]}_{i % 2}_{i % 5}_2017{i:010d}.jpg.chip.jpg",
                    i, fmt="JPEG")
    write_image(folder / "61_1_20170109150557335.jpg.chip.jpg", 99, fmt="JPEG")


WRITERS = {
    "voc2007": write_voc2007,
    "hateful_memes": write_hateful_memes,
    "iwildcam": write_iwildcam,
    "camelyon17": write_camelyon17,
    "fmow": write_fmow,
    "dollar_street": write_dollar_street,
    "geode": write_geode,
    "fairface": write_fairface,
    "fairface_race": write_fairface,
    "fairface_age": write_fairface,
    "utkface": write_utkface,
    "utkface_race": write_utkface,
    "utkface_age": write_utkface,
}


@contextlib.contextmanager
def relaxed_counts(names=None) -> Iterator[None]:
    """The registered adapters ``names`` (default: every one of ``WRITERS``) without their expected sample
    counts, for as long as the block runs (fakes are smaller than the real sets)."""
    adapters = [get_dataset(name) for name in (names or WRITERS)]
    fields = ("expected_count", "expected_items", "classnames", "templates", "per_class_prompts")  # DataComp's copies set the names
    saved = [{f: getattr(a, f) for f in fields if hasattr(a, f)} for a in adapters]
    try:
        for a in adapters:
            for count in ("expected_count", "expected_items"):
                if hasattr(a, count):
                    setattr(a, count, 0)
        yield
    finally:
        for a, values in zip(adapters, saved, strict=True):
            for f, value in values.items():
                setattr(a, f, value)


def write_winogavil(root: Path, n_per_class: int) -> None:
    """winogavil/winogavil_dataset.csv and images/<word>.png: ``n_per_class`` items with 5 candidates and as
    many with 10, sharing some words (a word is one image), 2 or 3 associations each."""
    folder = root / "winogavil"
    words = [f"word{i}" for i in range(11)] + ["teddy bear"] + [f"word{i}" for i in range(12, 15)]
    for i, w in enumerate(words):
        write_image(folder / "images" / f"{w}.png", i)
    rows = []
    for size in (5, 10):
        for i in range(n_per_class):
            cands = [words[(i + j) % len(words)] for j in range(size)]
            assoc = cands[:2 + i % 2]
            rows.append({"": len(rows), "candidates": json.dumps(cands), "cue": ("apple", "Sun", "tree")[i % 3],
                         "associations": json.dumps(assoc), "score_fool_the_ai": 0, "num_associations": len(assoc),
                         "num_candidates": size, "solvers_jaccard_mean": 1.0, "solvers_jaccard_std": 0.0,
                         "ID": len(rows)})
    _csv(folder / "winogavil_dataset.csv", rows)


WRITERS["winogavil"] = write_winogavil


def write_clip(path: Path) -> None:
    """A 5-frame 16x16 MPEG-4 clip whose frame i is grey level 50 i (the middle frame: level 100)."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for level in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 50 * level, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_kinetics700(root: Path, n_per_class: int) -> None:
    """kinetics700/val/<class folder>/<id>_<start>_<end>.mp4 (torchvision's layout) for 3 classes, one of them with
    the folder-name rule's punctuation ("passing American football (in game)")."""
    for label in ("abseiling", "passing_American_football_in_game", "yoga"):
        for i in range(n_per_class):
            write_clip(root / "kinetics700" / "val" / label / f"yt{label[:4]}{i:05d}_{10 * i:06d}_{10 * i + 10:06d}.mp4")


def write_ucf101(root: Path, n_per_class: int) -> None:
    """ucf101/UCF-101/<Class>/v_<Class>_gXX_cYY.avi (``write_clip``) and ucfTrainTestlist/ for the first 3
    classes."""
    folder = root / "ucf101"
    classes = ["ApplyEyeMakeup", "ApplyLipstick", "Archery"]
    (folder / "ucfTrainTestlist").mkdir(parents=True, exist_ok=True)
    names = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling"]  # classInd.txt numbers all 101
    (folder / "ucfTrainTestlist" / "classInd.txt").write_text(
        "\n".join(f"{i + 1} {n}" for i, n in enumerate(names + [f"Class{i}" for i in range(4, 101)])) + "\n")
    for list_name, groups in (("trainlist01.txt", (8, 9)), ("testlist01.txt", (1, 2))):
        lines = []
        for c in classes:
            for i in range(n_per_class):
                rel = f"{c}/v_{c}_g{groups[i % 2]:02d}_c{i + 1:02d}.avi"
                write_clip(folder / "UCF-101" / rel)
                lines.append(rel + (" 1" if list_name.startswith("train") else ""))
        (folder / "ucfTrainTestlist" / list_name).write_text("\n".join(lines) + "\n")


WRITERS["ucf101"] = write_ucf101
WRITERS["kinetics700"] = write_kinetics700
