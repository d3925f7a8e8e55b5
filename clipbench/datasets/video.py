"""UCF101 as the CLIP paper evaluated it: one frame per clip, the middle one, classified as an image.

Frame rule: the middle frame of each clip (frame ``n // 2``, 0-based, of the ``n`` frames its video packets
hold; one packet per frame for UCF101's MPEG-4 AVIs); the
rule is part of the split's ``source`` (``{"frames": "middle"}``), so it is in every record's data
identity and in the fingerprint. Clips are decoded with PyAV (``pip install av``; the ``video``
extra), which bundles FFmpeg.

Layout (the official ``UCF101.rar`` and ``UCF101TrainTestSplits-RecognitionTask.zip``, unpacked in
``<data-root>/ucf101/``)::

    ucf101/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
    ucf101/ucfTrainTestlist/classInd.txt, trainlist01.txt, testlist01.txt

Split 1 (the CLIP paper's): train 9,537 clips, test 3,783; labels follow ``classInd.txt`` (the order of
CLIP's prompt file).

Kinetics-700 (``kinetics700``): torchvision's ``Kinetics`` layout (``<data-root>/kinetics700/val/<class
folder>/<youtube id>_<start>_<end>.mp4``, class folders named by torchvision's rule, ``kinetics_folder``),
the validation clips as the test split, labels in the order of CLIP's prompt file; scored by the mean of
top-1 and top-5 (the CLIP paper's metric). The copy's size is not checked: clips still on YouTube vary.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import Dataset, SplitData
from clipbench.datasets.images import FileSplit
from clipbench.datasets.local import LocalAdapter, prompt_fields
from clipbench.foundations.errors import DataError

FRAME_RULE = {"frames": "middle", "decoder": "pyav"}
#: the largest frame decoded (a hostile file could declare any size)
MAX_FRAME_PIXELS = 4096 * 4096
_CLIP = re.compile(r"^([A-Za-z]{1,40})/(v_[A-Za-z0-9_]{1,80}\.avi)$")
_LISTS = {"train": "trainlist01.txt", "test": "testlist01.txt"}


def middle_frame(path: str):
    """The middle decoded frame of a video file as an RGB PIL image (a ``DataError`` naming the file otherwise)."""
    try:
        import av
    except ImportError as exc:
        raise DataError("video sets need PyAV to decode their clips: pip install 'clipbench[video]' (or av)") from exc
    try:
        with av.open(path) as container:  # pass 1: count the frames from the packets, decoding none
            stream = container.streams.video[0]
            if (stream.codec_context.width or 0) * (stream.codec_context.height or 0) > MAX_FRAME_PIXELS:
                raise DataError(f"video file {path}: frames over {MAX_FRAME_PIXELS} pixels")
            n = sum(1 for packet in container.demux(stream) if packet.size)
        chosen = None
        with av.open(path) as container:  # pass 2: decode up to the middle frame
            for i, frame in enumerate(container.decode(video=0)):
                chosen = frame
                if i >= n // 2:
                    break
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        raise DataError(f"video file {path} cannot be decoded ({type(exc).__name__}: {exc})") from exc
    if chosen is None:
        raise DataError(f"video file {path} has no video frames")
    return chosen.to_image().convert("RGB")


class _FrameDataset(Dataset):
    def __init__(self, paths: Sequence[str], labels: np.ndarray, transform: Callable) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.transform(middle_frame(self.paths[index])), int(self.labels[index])


class VideoFrameSplit(FileSplit):
    """Video files, each seen as its middle frame (``FRAME_RULE``)."""

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _FrameDataset(self.paths, self.labels, transform)


def _lines(path: Path, where: str) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{where}: cannot read {path} ({exc})") from exc


@dataclass
class UCF101Adapter(LocalAdapter):
    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        lists = root / "ucfTrainTestlist"
        index = {}
        for line in _lines(lists / "classInd.txt", where):
            number, _, folder = line.partition(" ")
            index[folder.strip()] = int(number) - 1 if number.isdigit() else -1
        if sorted(index.values()) != list(range(len(self.classnames))):
            raise DataError(f"{where}: {lists / 'classInd.txt'} must number the {len(self.classnames)} classes 1..N")
        paths, labels = [], []
        for line in _lines(lists / _LISTS[split], where):
            match = _CLIP.match(line.split()[0])
            if match is None or match.group(1) not in index:
                raise DataError(f"{where}: {_LISTS[split]} lists {line[:80]!r}, not <Class>/v_<...>.avi of a known class")
            paths.append(root / "UCF-101" / match.group(1) / match.group(2))
            labels.append(index[match.group(1)])
        return VideoFrameSplit(self.name, split, [os.fspath(p) for p in paths], labels, root=root,
                               source=dict(FRAME_RULE))


def kinetics_folder(label: str) -> str:
    """The class folder torchvision's ``Kinetics`` gives a label (``_make_ds_structure``)."""
    return label.replace(" ", "_").replace("'", "").replace("(", "").replace(")", "")


_VIDEO_FILE = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(mp4|avi)$")


@dataclass
class KineticsAdapter(LocalAdapter):
    """Kinetics-700 in torchvision's ``Kinetics`` layout: ``kinetics700/<split>/<class folder>/<id>.mp4``."""

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        where = f"{self.name} {split}"
        folder = root / ("val" if split == "test" else split)
        index = {kinetics_folder(name): i for i, name in enumerate(self.classnames)}
        paths, labels = [], []
        try:
            classes = sorted(p for p in folder.iterdir() if p.is_dir())
            for class_dir in classes:
                if class_dir.name not in index:
                    raise DataError(f"{where}: class folder {class_dir.name[:80]!r} is not one of Kinetics-700's")
                for video in sorted(class_dir.iterdir()):
                    if _VIDEO_FILE.match(video.name):
                        paths.append(os.fspath(video))
                        labels.append(index[class_dir.name])
        except OSError as exc:
            raise DataError(f"{where}: cannot list {folder} ({exc})") from exc
        if not paths:
            raise DataError(f"{where}: no .mp4 clips under {folder}")
        return VideoFrameSplit(self.name, split, paths, labels, root=root, source=dict(FRAME_RULE))


def video_adapters() -> list[LocalAdapter]:
    return [UCF101Adapter(
        name="ucf101", splits=("train", "test"), primary_metric="top1", folder="ucf101",
        expected="ucfTrainTestlist/testlist01.txt", expected_count=3783, count_note="testlist01",
        description="UCF101 (split 1): 101 actions, the middle frame of each clip, top-1 (needs PyAV: pip install av)",
        manual="unpack UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip (crcv.ucf.edu/data/UCF101.php) into "
               "<data-root>/ucf101/ so that <data-root>/ucf101/UCF-101/ and <data-root>/ucf101/ucfTrainTestlist/ exist",
        **prompt_fields("ucf101")),
        KineticsAdapter(
            name="kinetics700", splits=("train", "test"), primary_metric="mean_top1_top5", folder="kinetics700",
            expected="val", count_note="",
            # 0 on purpose: Kinetics is a list of YouTube clips and the ones still online shrink over time, so every
            # copy of the validation set has its own size (none is the published one)
            expected_count=0,
            description="Kinetics-700 (validation clips as test): 700 actions, the middle frame of each clip, the mean "
                        "of top-1 and top-5 (the CLIP paper's metric; needs PyAV)",
            manual="download Kinetics-700 with torchvision (torchvision.datasets.Kinetics(<data-root>/kinetics700, "
                   "frames_per_clip=1, num_classes='700', split='val', download=True)) so that "
                   "<data-root>/kinetics700/val/<class>/<clip>.mp4 exist; clips still on YouTube vary, so no count is "
                   "checked",
            **prompt_fields("kinetics700"))]
