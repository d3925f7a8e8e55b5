"""Crash-safe file primitives every writer in clipbench uses.

The rule: a file under its final name is complete. Writers write to a temporary name in the same
directory, fsync, then ``os.replace`` (atomic on POSIX), then fsync the directory. Readers that
need more than existence (features, checkpoints) also check a recorded size and SHA-256.

Inside a results dir (``within=``) a write never leaves it through a symlink: appends open with
``O_NOFOLLOW``, and the folder written into must resolve inside the results dir. A writer holds an
``flock`` on its temporary file; the first write into a folder in each process sweeps the temporary
files that killed writers left there (``sweep_stale_temps``).

Published files get the mode an ordinary ``open(path, "w")`` would give (0666 minus the umask) and
directories 0777 minus the umask, so a teammate can read a shared results dir or cache: mkstemp
and mkdtemp create 0600 / 0700, which is right for the temporary name but not for the final one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from filelock import FileLock, Timeout

from clipbench.foundations.errors import ClipbenchError

try:  # a writer's lock on its temporary file tells the sweeper it is alive; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # atomic_open's: ".<name>." + mkstemp's 8 chars + ".tmp"
_STALE_AFTER_S = 60.0  # a temporary file this old and unlocked belongs to a killed writer
_SWEPT: set[str] = set()  # folders swept by this process


def sha256_file(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows opening a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` is a set-and-get)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What a plain ``open(path, "w")`` creates: 0666 minus the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """What a plain ``mkdir`` creates: 0777 minus the umask."""
    return 0o777 & ~current_umask()


def make_temp_dir(prefix: str, dir: str | os.PathLike) -> Path:  # noqa: A002 - mkdtemp's own name
    """``tempfile.mkdtemp`` for a folder that will be renamed into place: given the ordinary directory mode."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    os.chmod(path, dir_mode())
    return path


def _friendly_os_error(exc: OSError, path: Path) -> ClipbenchError:
    if exc.errno == errno.ENOSPC:
        return ClipbenchError(f"no space left on device while writing {path}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ClipbenchError(f"cannot write {path}: {exc.strerror}")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # a file sits where a directory is needed
        blocker = next((p for p in Path(exc.filename or path).parents if p.exists() and not p.is_dir()), None)
        if blocker is None and Path(exc.filename or path).is_file():
            blocker = Path(exc.filename or path)
        if blocker is not None:
            return ClipbenchError(f"cannot write {path}: {blocker} is a file, expected a directory")
    return ClipbenchError(f"cannot write {path}: {exc}")


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path``, after checking that the folder it is written into resolves inside ``root`` (a symlinked
    ``samples/`` or results file pointing elsewhere is refused with one line)."""
    path = Path(path)
    base, folder = Path(root).resolve(), path.parent.resolve()
    if folder != base and base not in folder.parents:
        raise ClipbenchError(f"refusing to write {path}: {path.parent} leads outside {root} (a symlink?); "
                             "remove the link or write to another results dir")
    return path


def _lock_fd(fd: int) -> bool:
    """Take a non-blocking exclusive flock on ``fd``; False when another open file holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep_stale_temps(folder: str | os.PathLike) -> int:
    """Delete the temporary files of ``atomic_open`` writers that were killed: named like one, older than a
    minute and locked by nobody (a live writer holds an flock on its file). Returns how many went."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not _TEMP_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < _STALE_AFTER_S:
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    if _lock_fd(fd):
                        os.unlink(entry.path)
                        removed += 1
                finally:
                    os.close(fd)
    if removed:
        log.info("removed %d temporary file(s) of interrupted writes in %s", removed, folder)
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _SWEPT:
        _SWEPT.add(key)
        sweep_stale_temps(folder)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb",
                within: str | os.PathLike | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path``; on clean exit fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched. Disk-full and
    permission errors become a one-line ``ClipbenchError``; so does a folder that leads outside
    ``within`` (see ``inside``).
    """
    if "w" not in mode:
        raise ValueError("atomic_open is for writing")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if within is not None:
            inside(within, path)
        _sweep_once(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _friendly_os_error(exc, path) from exc
    try:
        _lock_fd(fd)  # alive: sweep_stale_temps leaves it alone
        os.fchmod(fd, file_mode())  # mkstemp made it 0600; the published file must be readable like any other
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # before the close drops the lock
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _friendly_os_error(exc, path) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete temporary siblings that ``atomic_open(path)`` left behind when its process was killed.

    Only call this while holding the lock that guards writers of ``path`` (no live writer then).
    Returns how many were removed; a killed multi-GB download would otherwise stay on disk forever.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")  # mkstemp's 8 random chars
    removed = 0
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            if pattern.match(candidate.name):
                with contextlib.suppress(OSError):
                    candidate.unlink()
                    removed += 1
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes, within: str | os.PathLike | None = None) -> None:
    with atomic_open(path, "wb", within=within) as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, within: str | os.PathLike | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), within=within)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_with(path: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> None:
    """Atomically write whatever ``writer(fh)`` produces (e.g. ``torch.save(obj, fh)``)."""
    with atomic_open(path, "wb") as fh:
        writer(fh)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_line_locked(path: str | os.PathLike, line: str, within: str | os.PathLike | None = None) -> None:
    """Append one complete line to a JSONL file under a file lock, fsynced.

    A crash can at worst leave a final line without its newline; readers skip such a line. The file
    is opened with ``O_NOFOLLOW`` (a symlink in its place is refused), inside ``within`` if given.
    """
    path = Path(path)
    if "\n" in line:
        raise ValueError("a record must be a single line")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if within is not None:
            inside(within, path)
        with file_lock(path):
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise ClipbenchError(f"refusing to append to {path}: it is a symlink (replace it with the "
                                         "file itself)") from exc
                raise
            try:
                before = os.fstat(fd).st_size
                try:
                    # If a previous writer died mid-line, start on a fresh line so this record stays whole.
                    if before > 0 and os.pread(fd, 1, before - 1) != b"\n":
                        _write_all(fd, b"\n")
                    _write_all(fd, line.encode("utf-8") + b"\n")
                    os.fsync(fd)
                except OSError:  # e.g. disk full: take back whatever part of the line got in
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, before)
                    raise
            finally:
                os.close(fd)
    except OSError as exc:
        raise _friendly_os_error(exc, path) from exc


def check_writable(path: str | os.PathLike, append: bool = False,
                   within: str | os.PathLike | None = None) -> None:
    """Fail now, in one line, if ``path`` could not be written later (a directory in its place, a read-only
    folder or file, a symlink an append would refuse, a folder leading outside ``within``): a run checks
    every output path before hours of work, not after them."""
    path = Path(path)
    if path.is_dir():
        raise ClipbenchError(f"cannot write {path}: it is a directory, expected a file (remove or rename it)")
    if append and path.is_symlink():
        raise ClipbenchError(f"refusing to append to {path}: it is a symlink (replace it with the file itself)")
    ensure_dir(path.parent)
    if within is not None:
        inside(within, path)
    if not os.access(path.parent, os.W_OK | os.X_OK):  # atomic writes create a sibling and rename it
        raise ClipbenchError(f"cannot write {path}: {path.parent} is not writable")
    if append and path.exists() and not os.access(path, os.W_OK):
        raise ClipbenchError(f"cannot write {path}: the file is not writable")


def ensure_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p`` whose failures (a file in the way, read-only or full disk) are a one-line ``ClipbenchError``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _friendly_os_error(exc, path) from exc
    return path


class _FriendlyFileLock(FileLock):
    """A ``FileLock`` whose acquisition failures (read-only or full disk, a file in the way) are one line."""

    def acquire(self, *args: Any, **kwargs: Any):
        try:
            return super().acquire(*args, **kwargs)
        except Timeout:
            raise
        except OSError as exc:
            raise _friendly_os_error(exc, Path(self.lock_file)) from exc


def file_lock(path: str | os.PathLike, timeout: float = -1) -> FileLock:
    """An inter-process lock guarding ``path`` (the lock file sits beside it as ``.name.lock``).

    Creating or taking the lock on an unwritable location raises a one-line ``ClipbenchError``.
    """
    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _friendly_os_error(exc, lock_path) from exc
    if lock_path.is_symlink():  # taking the lock truncates the file: never one elsewhere
        raise ClipbenchError(f"refusing to lock {path}: {lock_path} is a symlink (remove it)")
    return _FriendlyFileLock(str(lock_path), timeout=timeout)
