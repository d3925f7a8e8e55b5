"""Benchmark sets held as CLIP_benchmark's / DataComp's webdataset copies, or in their official layout.

Many of the VTAB, DataComp and CLIP-paper sets reach people as the webdataset copies that
CLIP_benchmark publishes on Hugging Face (``clip-benchmark/wds_<name>``) and that DataComp's
``download_evalsets.py`` fetches (``djghosh/wds_<name>_test``). Both unpack to one layout::

    <data-root>/<folder>/test/0.tar, 1.tar, ... (nshards.txt)     <- the samples: NNN.webp/png + NNN.cls
    <data-root>/<folder>/train/...                                 <- where the copy has a train split
    <data-root>/<folder>/classnames.txt, zeroshot_classification_templates.txt

``MirrorAdapter`` reads that layout (labels from the ``.cls`` members, shards in numeric order), and,
where the set also has a public folder layout of its own (RESISC45's class folders, SVHN's .mat files,
ObjectNet's release), reads that through ``native``. The classnames and templates are clipbench's
prompt file for the set (the CLIP paper's where it has one, else CLIP_benchmark's), whose class count the
labels must fit. ``expected_count`` is the published size of the evaluation split (``datasets.counts``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.local import LocalAdapter, require_data_root
from clipbench.foundations.errors import DataError

#: the Hugging Face dataset repos of CLIP_benchmark's webdataset copies
CB_MIRROR = "clip-benchmark/wds_{}"


def mirror_shards(folder: Path) -> list[Path]:
    """``folder``'s ``N.tar`` shards in numeric order (the order the copy was written in); [] when none."""
    if not folder.is_dir():
        return []
    shards = [p for p in folder.iterdir() if p.suffix == ".tar" and p.is_file()]
    return sorted(shards, key=lambda p: (int(p.stem) if p.stem.isdigit() else 1 << 62, p.name))


def mirror_instructions(repo: str, folder: str) -> str:
    return (f"download CLIP_benchmark's webdataset copy into <data-root>/{folder}: `huggingface-cli download "
            f"--repo-type dataset {repo} --local-dir <data-root>/{folder}` (it holds test/0.tar, ... and "
            "classnames.txt; DataComp's download_evalsets.py copy has the same layout)")


@dataclass
class MirrorAdapter(LocalAdapter):
    """A set read from its webdataset copy (``<folder>/<split>/*.tar``) or, when ``native`` is set and its
    ``expected`` marker exists, from the official layout by ``native(adapter, split, folder)``."""

    #: the Hugging Face repo of the webdataset copy
    mirror: str = ""
    #: reads the official layout: (adapter, split, dataset folder) -> SplitData
    native: Callable[..., SplitData] | None = None
    #: published size of the evaluation split (0: not fixed); checked before any model loads
    expected_count: int = 0
    #: what the published count is, for the count error
    count_note: str = ""

    def _mirror_dir(self, data_root, split: str) -> Path:
        return self.root(data_root) / split

    def is_present(self, data_root) -> bool:
        try:
            if mirror_shards(self._mirror_dir(data_root, self.evaluation_split)):
                return True
            return self.native is not None and bool(self.expected) and (self.root(data_root) / self.expected).exists()
        except OSError:
            return False

    def how_to_get(self, data_root=None) -> str:
        if self.downloads:
            return f"run `clipbench download {self.name}`"
        text = self.manual or mirror_instructions(self.mirror, self.folder)
        return text.replace("<data-root>", str(data_root)) if data_root is not None else text

    def require(self, data_root) -> Path:
        require_data_root(data_root)
        if not self.is_present(data_root):
            raise DataError(f"{self.name}: no copy under {self.root(data_root)} (neither webdataset shards in "
                            f"{self._mirror_dir(data_root, self.evaluation_split)} nor the official layout); "
                            f"{self.how_to_get(data_root)}")
        return self.root(data_root)

    def load_split(self, split: str, data_root) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        shards = mirror_shards(root / split)
        if shards:
            return self._from_shards(split, shards)
        if self.native is None or not (root / self.expected).exists():
            raise DataError(f"{self.name} {split}: no webdataset shards in {root / split}; {self.how_to_get(data_root)}")
        return self.native(self, split, root)

    def _from_shards(self, split: str, shards: list[Path]) -> SplitData:
        from clipbench.datasets.webdataset_source import ShardSplit, sample_kind, scan_shards

        what = f"{self.name} {split}"
        samples = scan_shards(shards, what)
        if sample_kind(samples, what) != "classification":
            raise DataError(f"{what}: the shards in {shards[0].parent} hold captions, not class labels")
        bad = next((s for s in samples if not 0 <= s.label < len(self.classnames)), None)
        if bad is not None:
            raise DataError(f"{what}: sample {bad.key!r} in {shards[0].parent} has label {bad.label}, outside "
                            f"0..{len(self.classnames) - 1} ({len(self.classnames)} classes); is this {self.name}'s copy?")
        return ShardSplit.from_samples(self.name, split, shards, samples)


def folder_key(name: str) -> str:
    """A class folder name compared with a classname: lower case, ``_``/``-``/spaces alike."""
    return re.sub(r"[\s_-]+", " ", name).strip().casefold()
