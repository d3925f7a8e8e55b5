"""Fetch a dataset's archives, verify each MD5 *before* extracting, and publish the folder atomically.

Steps for ``download_dataset``: download every archive into ``<data-root>/.downloads/`` (streamed
into a temporary file that only gets its final name when its MD5 matches); extract all of them
into a hidden staging folder beside the dataset folder; write a completion marker into it; rename
the staging folder to its final name. A crash at any point leaves either nothing under the final
name or a complete, marked folder: a half-extracted directory is never mistaken for data.
Datasets that cannot be fetched (ImageNet, Kaggle or Google-Drive hosted ones) raise a one-line
error that says what to place where.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import logging
import os
import shutil
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from clipbench.foundations.errors import DataError, OfflineError
from clipbench.foundations.fileio import (
    atomic_write_json,
    file_lock,
    fsync_dir,
    make_temp_dir,
    remove_stale_temps,
)
from clipbench.foundations.http_download import download_verified
from clipbench.foundations.progress import progress_bar

log = logging.getLogger(__name__)

MARKER = ".clipbench-complete.json"
_CHUNK = 1 << 20
#: what one archive may unpack to, at most, whatever it declares (a bomb never fills the disk)
MAX_EXTRACT_BYTES = 1 << 40
#: unpacked size over archive size allowed when the dataset does not declare its unpacked size; image
#: archives unpack to about their own size, raw-pixel ones (MNIST, STL-10) to a few times it
MAX_RATIO = 20


@dataclass(frozen=True)
class Archive:
    """One file to fetch: where from, its MD5 (as the dataset's authors publish it), what to do with it."""

    url: str
    md5: str
    #: sub-folder of the dataset folder to extract (or copy) into
    subdir: str = ""
    #: False: place the file as-is (e.g. a .mat label file); True: unpack .tar*/.tgz/.zip/.gz
    extract: bool = True
    #: bytes the archive unpacks to, where the dataset's authors say (0: unknown; ``MAX_RATIO`` x the archive)
    unpacked_bytes: int = 0

    def extract_limit(self, path: Path) -> int:
        """The most bytes extracting ``path`` (this archive, downloaded) may write."""
        known = self.unpacked_bytes + (self.unpacked_bytes >> 4) if self.unpacked_bytes else 0
        return min(MAX_EXTRACT_BYTES, known or MAX_RATIO * max(path.stat().st_size, _CHUNK))

    @property
    def filename(self) -> str:
        return Path(urlparse(self.url).path).name


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch_archive(archive: Archive, downloads_dir: Path) -> Path:
    """A local copy of ``archive`` with the right MD5 (reused if already downloaded)."""
    target = downloads_dir / archive.filename
    if target.is_file():
        if md5_file(target) == archive.md5:
            return target
        log.warning("%s does not have MD5 %s; downloading it again", target, archive.md5)
        target.unlink()
    download_verified(archive.url, target, "md5", archive.md5, discarded="the file was discarded and nothing was extracted")
    return target


def _inside(dest: Path, name: str) -> bool:
    resolved = (dest / name).resolve()
    return resolved == dest.resolve() or dest.resolve() in resolved.parents


def _too_big(path: Path, limit: int) -> DataError:
    return DataError(f"archive {path} unpacks to more than {limit:,} bytes, more than the dataset can hold; "
                     "extraction stopped (a damaged or hostile archive)")


def _counted_members(tar: tarfile.TarFile, path: Path, limit: int):
    """The tar's members in order, stopping with ``_too_big`` once their declared sizes pass ``limit``."""
    total = 0
    for member in tar:
        total += member.size
        if total > limit:
            raise _too_big(path, limit)
        yield member


def _copy_limited(src, out, path: Path, limit: int) -> None:
    written = 0
    while block := src.read(_CHUNK):
        written += len(block)
        if written > limit:
            raise _too_big(path, limit)
        out.write(block)


def extract_archive(path: Path, dest: Path, limit: int = MAX_EXTRACT_BYTES) -> None:
    """Unpack ``path`` into ``dest``, refusing members that would land outside it and stopping before
    more than ``limit`` bytes are written."""
    dest.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
            with tarfile.open(path) as tar:
                tar.extractall(dest, members=_counted_members(tar, path, limit), filter="data")
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                bad = [m for m in zf.namelist() if not _inside(dest, m)]
                if bad:
                    raise DataError(f"archive {path} has a member outside its folder: {bad[0]}")
                links = [m.filename for m in zf.infolist() if (m.external_attr >> 16) & 0o170000 == 0o120000]
                if links:  # a dataset holds files; a link could point anywhere once followed
                    raise DataError(f"archive {path} has a symlink member ({links[0]}); datasets are unpacked "
                                    "from regular files only")
                if sum(m.file_size for m in zf.infolist()) > limit:  # zipfile writes no more than declared
                    raise _too_big(path, limit)
                zf.extractall(dest)
        elif name.endswith(".gz"):
            with gzip.open(path, "rb") as src, open(dest / path.name[:-3], "wb") as out:
                _copy_limited(src, out, path, limit)
        else:
            raise DataError(f"cannot extract {path}: expected a .tar.gz, .tgz, .tar, .zip or .gz archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"archive {path} is damaged ({type(exc).__name__}: {exc}); expected a readable archive") from exc
    except OSError as exc:  # a full disk, a read-only data root, a member in a file's place
        raise DataError(f"cannot unpack {path} into {dest}: {exc.strerror or exc}"
                        f"{' (the disk is full)' if exc.errno == errno.ENOSPC else ''}") from exc


def _place(archive: Archive, path: Path, staging: Path) -> None:
    dest = staging / archive.subdir
    if archive.extract:
        extract_archive(path, dest, archive.extract_limit(path))
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / path.name)


def _remove_leftovers(adapter, data_root: Path, downloads_dir: Path) -> None:
    """Partial downloads and staging folders of a killed run (the caller holds the dataset's lock)."""
    for archive in adapter.downloads:
        remove_stale_temps(downloads_dir / archive.filename)
    for staging in data_root.glob(f".{adapter.folder}.partial-*"):
        log.info("removing %s left by an interrupted extraction", staging)
        shutil.rmtree(staging, ignore_errors=True)


def is_marked_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def download_dataset(
    adapter, data_root: str | os.PathLike, offline: bool = False, keep_archives: bool = False
) -> Path | None:
    """Make ``adapter``'s data present under ``data_root`` (see the module docstring); returns its folder.

    ``adapter`` needs ``name``, ``is_present`` and ``local.DataFolder``'s ``folder``, ``downloads``
    (Archives) and ``manual_for`` (what to place where when ``downloads`` is empty). Adapters whose data needs no folder under the
    data root (bundled digits, ``folder:``/``csv:``/``hf:`` data) return None when present.
    """
    data_root = Path(data_root).expanduser()
    if not hasattr(adapter, "folder"):
        if adapter.is_present(data_root):
            return None
        raise DataError(f"{adapter.name} has nothing to download (it reads data you point it at)")
    if data_root.exists() and not data_root.is_dir():
        raise DataError(f"data root {data_root} is a file, not a folder (set --data-root or CLIPBENCH_DATA to a folder "
                        f"that holds, or will hold, one sub-folder per dataset)")
    target = data_root / adapter.folder
    if is_marked_complete(target) or adapter.is_present(data_root):
        log.info("%s is already present in %s", adapter.name, target)
        return target
    if not adapter.downloads:
        raise DataError(
            f"{adapter.name} cannot be downloaded automatically: {adapter.manual_for(data_root)}"
        )
    if offline:
        urls = ", ".join(a.url for a in adapter.downloads)
        raise OfflineError(f"{adapter.name} is not in {target} and offline mode is on; download {urls} and run "
                           f"`clipbench download {adapter.name}` on a machine with network access, or place the data there")
    try:
        data_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data root {data_root}: {exc.strerror or exc} (set --data-root or "
                        f"CLIPBENCH_DATA to a folder you can write)") from exc
    with file_lock(target):
        if is_marked_complete(target) or adapter.is_present(data_root):
            return target
        if target.exists() and any(target.iterdir()):
            raise DataError(f"{target} exists but is incomplete (no {MARKER}); remove it and run the download again")
        downloads_dir = data_root / ".downloads"
        _remove_leftovers(adapter, data_root, downloads_dir)
        files = [fetch_archive(a, downloads_dir) for a in adapter.downloads]  # every MD5 checked before any extraction
        staging = make_temp_dir(f".{adapter.folder}.partial-", data_root)  # 0777 - umask, not 0700
        try:
            for archive, path in progress_bar(list(zip(adapter.downloads, files, strict=True)), desc=f"extracting {adapter.name}", leave=False):
                log.info("extracting %s into %s", path, staging)
                _place(archive, path, staging)
            atomic_write_json(staging / MARKER, {
                "dataset": adapter.name,
                "archives": [{"url": a.url, "md5": a.md5} for a in adapter.downloads],
                "completed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            })
            with contextlib.suppress(FileNotFoundError):
                target.rmdir()  # an empty leftover folder
            os.replace(staging, target)
            fsync_dir(data_root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if not keep_archives:
            for path in files:
                with contextlib.suppress(OSError):
                    path.unlink()
    return target


def describe_download(adapter) -> str:
    """One line for listings: how the data gets onto disk."""
    if adapter.downloads:
        return "clipbench download " + adapter.name
    return adapter.manual or "place the data by hand"

