"""The adapter base for datasets that live in one folder under the data root."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clipbench.datasets.base import ClassificationAdapter
from clipbench.datasets.download import Archive
from clipbench.datasets.prompts import packaged_prompts
from clipbench.foundations.errors import DataError


def require_data_root(data_root: str | Path) -> Path:
    data_root = Path(data_root).expanduser()
    if not data_root.is_dir():
        raise DataError(
            f"data root {data_root} does not exist (expected a folder with one sub-folder per dataset; "
            f"set --data-root or CLIPBENCH_DATA)"
        )
    return data_root


@dataclass
class DataFolder:
    """Where a dataset of any kind lives (``<data-root>/<folder>``) and how it gets there: the
    ``downloads`` `clipbench download` fetches, or the ``manual`` steps (``<data-root>`` in them is
    replaced by the real one)."""

    folder: str = ""
    downloads: tuple[Archive, ...] = ()
    #: what to place where, for data that cannot be downloaded automatically
    manual: str = ""

    def root(self, data_root: str | Path) -> Path:
        return Path(data_root).expanduser() / self.folder

    def manual_for(self, data_root: str | Path) -> str:
        return self.manual.replace("<data-root>", str(data_root))


@dataclass
class LocalAdapter(DataFolder, ClassificationAdapter):
    """A classification dataset in ``<data-root>/<folder>``; ``expected`` (relative) exists once the data is
    there."""

    expected: str = ""
    #: where the classnames and templates come from
    origin: str = ""
    #: the published size of the evaluation split (0: not fixed) and what it is; ``datasets.counts`` checks it
    #: before any model loads
    expected_count: int = 0
    count_note: str = ""
    #: the packaged prompt files whose classnames (in other languages too) this set shares, e.g. imagenet1k, and
    #: which of their classes it has, in its label order (empty: all of them); ``datasets.languages`` reads both
    prompts_of: str = field(default="", kw_only=True)
    prompt_classes: tuple[int, ...] = field(default=(), kw_only=True)

    def is_present(self, data_root: str | Path) -> bool:
        try:
            return (self.root(data_root) / self.expected).exists()
        except OSError:
            return False

    def how_to_get(self, data_root: str | Path | None = None) -> str:
        """How the data gets there: the download command, or what to place where (with the real data root)."""
        if self.downloads:
            return f"run `clipbench download {self.name}`"
        return self.manual_for(data_root) if data_root is not None else self.manual

    def data_source(self, data_root: str | Path) -> dict | None:
        """The verified archives (URL, MD5) the data was extracted from, when `clipbench download` placed it."""
        from clipbench.datasets.identity import archives_of

        archives = archives_of(self.root(data_root))
        return {"archives": archives} if archives else None


    def require(self, data_root: str | Path) -> Path:
        """The dataset folder, or a one-line DataError saying what is missing and how to get it."""
        data_root = require_data_root(data_root)
        if not self.is_present(data_root):
            raise DataError(f"{self.name}: {self.root(data_root) / self.expected} not found; {self.how_to_get(data_root)}")
        return self.root(data_root)


def prompt_fields(prompt_file: str) -> dict:
    """classnames / templates / per_class_prompts / origin from a packaged prompt file."""
    prompts = packaged_prompts(prompt_file)
    return {
        "classnames": list(prompts.classnames),
        "templates": list(prompts.templates),
        "per_class_prompts": prompts.per_class_prompts(),
        "origin": prompts.origin,
    }
