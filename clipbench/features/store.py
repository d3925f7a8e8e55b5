"""The feature store: image features on disk, keyed by everything that changes the numbers.

Layout of one entry (a directory under ``Paths.features_dir``)::

    <dataset>-<split>-<digest>/
        key.json                       the FeatureKey, for humans and `clipbench cache list`
        about.json                     what the key's hashes stand for (model name, subset), for the listing only
        shards/0000000000-0000000512.npz   features [n, D] float32 of samples [a, b), nothing else
        shards/0000000000-0000000512.json  {"start", "end", "size", "sha256", "dim", "provenance"} of that file
        manifest.json                  the ordered shards covering [0, N) and their merged provenance:
                                       the entry is complete

Why shards by sample-index range: extraction writes one as soon as its samples are done, so an
interrupted run resumes from the complete ones; independent writers (torchrun ranks) can each fill
their own index range and one process assembles them in order. Every file is written atomically
(temporary name, fsync, rename) and carries its size and SHA-256 in a sidecar that is written
after it, so a shard counts only once both exist, and every read re-checks the checksum.

Labels are not stored: they belong to the split (``SplitData.labels``, known before any image is
read, and covered by the split fingerprint inside the key), not to the cache. An image-text split's
"labels" are image indices, a choices split's item indices. So ``load`` takes the caller's labels and
attaches them, and two splits that differ only in their labels are two keys, never one entry read
with the other's labels.

The entry's key and contents are in ``features.key``, the verified array files in ``features.arrays``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clipbench.features.arrays import read_verified_arrays, write_verified_arrays
from clipbench.features.key import (
    STORE_SCHEMA,
    FeatureKey,
    FeatureSet,
    ShardInfo,
    merge_provenance,
    shard_name,
)
from clipbench.foundations.config import Paths
from clipbench.foundations.errors import CacheCorruptError
from clipbench.foundations.fileio import atomic_write_json, file_lock, sha256_file

log = logging.getLogger(__name__)


def _sha256_matches(path: Path, sha256: str) -> bool:
    try:
        return sha256_file(path) == sha256
    except OSError:
        return False


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryInfo:
    """What `clipbench cache list` shows about one stored entry."""

    path: Path
    key: dict
    complete: bool
    n_shards: int
    size_bytes: int
    #: ``about.json``: the model's name and the split's subset spec (empty for entries written before it)
    about: dict = field(default_factory=dict)


class FeatureStore:
    """Image features on disk under ``root`` (normally ``Paths.features_dir``)."""

    def __init__(self, root: Paths | str | os.PathLike) -> None:
        self.root = Path(root.features_dir if isinstance(root, Paths) else root)

    # --- layout -----------------------------------------------------------------------------
    def entry_dir(self, key: FeatureKey) -> Path:
        return self.root / key.dirname

    def _shards_dir(self, key: FeatureKey) -> Path:
        return self.entry_dir(key) / "shards"

    def lock(self, key: FeatureKey, timeout: float = -1):
        """Inter-process lock for extracting/assembling ``key`` (one extractor per entry at a time)."""
        return file_lock(self.entry_dir(key), timeout=timeout)  # lock file sits beside the entry

    @staticmethod
    def _check_schema(key: FeatureKey) -> None:
        """Entries of another store schema are another layout: never read or extended, only listed and cleared."""
        if key.schema != STORE_SCHEMA:
            raise ValueError(f"feature-store key of schema {key.schema}; this clipbench reads and writes schema "
                             f"{STORE_SCHEMA} (clear old entries with `clipbench cache clear`)")

    def _ensure_entry(self, key: FeatureKey, about: dict | None = None) -> None:
        key_file = self.entry_dir(key) / "key.json"
        if not key_file.exists():
            atomic_write_json(key_file, asdict(key))
        about_file = self.entry_dir(key) / "about.json"
        if about and not about_file.exists():  # the key holds hashes only (weights, split fingerprint)
            atomic_write_json(about_file, about)

    # --- shards -----------------------------------------------------------------------------
    def write_shard(self, key: FeatureKey, start: int, end: int, features: np.ndarray,
                    provenance: dict | None = None, about: dict | None = None) -> ShardInfo:
        """Persist the features of samples [start, end): the data file first, then its sidecar (which makes
        it count). No labels: they are the split's (see the module docstring). ``about``: names for the
        listing (``{"model": ..., "subset": ...}``), written once per entry."""
        self._check_schema(key)
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != end - start:
            raise ValueError(f"shard [{start}, {end}) got features of shape {features.shape}")
        self._ensure_entry(key, about)
        path = self._shards_dir(key) / shard_name(start, end)
        meta = write_verified_arrays(path, features=features)
        info = ShardInfo(start, end, meta["size"], meta["sha256"], int(features.shape[1]), provenance)
        atomic_write_json(path.with_suffix(".json"), asdict(info))
        return info

    def remove_partial_files(self, key: FeatureKey) -> int:
        """Delete temporary files a killed writer left in the entry; only call while holding ``lock(key)``."""
        shards_dir = self._shards_dir(key)
        stale = list(shards_dir.glob(".*.tmp")) if shards_dir.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def completed_shards(self, key: FeatureKey, verify: bool = False,
                         within: tuple[int, int] | None = None) -> list[ShardInfo]:
        """Shards whose sidecar exists and whose file has the recorded size; with ``verify`` also the
        recorded SHA-256 (for shards inside ``within``, when given). Failing shards are discarded.

        Without ``verify`` checksums are checked on read; a manifest is only ever built (``assemble``,
        ``plan(verify=True)``) from verified shards, so a corrupt shard never re-enters one.
        """
        shards_dir = self._shards_dir(key)
        if not shards_dir.is_dir():
            return []
        found = []
        for sidecar in sorted(shards_dir.glob("*.json")):
            meta = _read_json(sidecar)
            try:
                info = ShardInfo(**meta) if meta else None
            except TypeError:
                info = None
            data = sidecar.with_suffix(".npz")
            if info is None or info.filename != data.name or not data.is_file() or data.stat().st_size != info.size:
                log.warning("feature shard %s is incomplete or damaged; it will be recomputed", data)
                self.discard_shard(key, data.name)
                continue
            inside = within is None or (info.start >= within[0] and info.end <= within[1])
            if verify and inside and not _sha256_matches(data, info.sha256):
                log.warning("feature shard %s fails its SHA-256 check (corrupted); it will be recomputed", data)
                self.discard_shard(key, data.name)
                continue
            found.append(info)
        return found

    def discard_shard(self, key: FeatureKey, filename: str) -> None:
        path = self._shards_dir(key) / filename
        for p in (path.with_suffix(".json"), path):  # sidecar first: without it the file never counts
            p.unlink(missing_ok=True)

    def plan(self, key: FeatureKey, start: int = 0, end: int | None = None,
             verify: bool = False) -> tuple[list[ShardInfo], list[tuple[int, int]]]:
        """Complete shards tiling [start, end) in order, and the gaps still to extract.

        ``verify``: re-hash the shards in the range first (what a manifest rebuild needs), so a
        corrupt one becomes a gap instead of being assembled.

        Greedy from ``start``: take the longest complete shard beginning at the cursor, else a gap
        up to the next shard start. Shards that overlap the chosen tiling are simply not used.
        """
        end = key.n_samples if end is None else end
        shards = [s for s in self.completed_shards(key, verify, (start, end)) if s.start >= start and s.end <= end]
        by_start: dict[int, ShardInfo] = {}
        for s in shards:
            if s.start not in by_start or s.end > by_start[s.start].end:
                by_start[s.start] = s
        cover, gaps, cursor = [], [], start
        while cursor < end:
            if cursor in by_start:
                cover.append(by_start[cursor])
                cursor = by_start[cursor].end
                continue
            later = [s for s in by_start if s > cursor]
            stop = min(later) if later else end
            gaps.append((cursor, stop))
            cursor = stop
        return cover, gaps

    # --- assembly and reading ---------------------------------------------------------------
    def assemble(self, key: FeatureKey) -> list[ShardInfo]:
        """Write the manifest once verified shards tile [0, N); raise ``CacheCorruptError`` if any range is
        missing (a shard failing its SHA-256 is discarded first, so its range is then missing)."""
        self._check_schema(key)
        cover, gaps = self.plan(key, verify=True)
        if gaps:
            raise CacheCorruptError(f"{self.entry_dir(key)}: samples {gaps} have no complete shard yet")
        dims = {s.dim for s in cover}
        if len(dims) > 1:
            raise CacheCorruptError(f"{self.entry_dir(key)}: shards disagree on the feature dimension {sorted(dims)}")
        manifest = {"key": asdict(key), "n_samples": key.n_samples, "dim": dims.pop() if dims else 0,
                    "provenance": merge_provenance([s.provenance for s in cover]),
                    "shards": [asdict(s) for s in cover]}
        atomic_write_json(self.entry_dir(key) / "manifest.json", manifest)
        return cover

    def is_complete(self, key: FeatureKey) -> bool:
        return (self.entry_dir(key) / "manifest.json").is_file()

    def load(self, key: FeatureKey, labels: np.ndarray | None = None) -> FeatureSet | None:
        """The assembled features, checksums verified; None if not assembled; ``CacheCorruptError`` if damaged.

        ``labels``: the split's labels (``split.labels`` of the split ``key`` was made from), attached
        as ``FeatureSet.labels``; the store keeps none. Without them the set's labels are None.
        The error's ``bad_shards`` attribute lists the shard files that failed, so the caller can
        discard exactly those and re-extract their ranges. A key of another store schema is a
        ``ValueError``: such an entry is never read.
        """
        self._check_schema(key)
        if labels is not None:
            labels = np.ascontiguousarray(labels, dtype=np.int64)
            if labels.shape != (key.n_samples,):
                raise ValueError(f"{key.dataset}/{key.split}: {labels.shape} labels for {key.n_samples} samples")
        manifest_path = self.entry_dir(key) / "manifest.json"
        if not manifest_path.is_file():
            return None
        manifest = _read_json(manifest_path)
        if not manifest or manifest.get("key") != asdict(key):
            err = CacheCorruptError(f"{manifest_path}: unreadable or for another key")
            err.bad_shards = []
            raise err
        feats, bad, problems = [], [], []
        for meta in manifest["shards"]:
            info = ShardInfo(**meta)
            try:
                arrays = read_verified_arrays(self._shards_dir(key) / info.filename, info.size, info.sha256)
            except CacheCorruptError as exc:
                bad.append(info.filename)
                problems.append(str(exc))
                continue
            if set(arrays) != {"features"} or arrays["features"].shape != (info.end - info.start, info.dim):
                bad.append(info.filename)
                problems.append(f"{info.filename}: holds {sorted(arrays)}, not features [{info.end - info.start}, "
                                f"{info.dim}] (another layout)")
                continue
            feats.append(arrays["features"])
        if bad:
            err = CacheCorruptError("; ".join(problems))
            err.bad_shards = bad
            raise err
        features = np.concatenate(feats) if feats else np.zeros((0, manifest["dim"]), np.float32)
        return FeatureSet(features, labels, key, dict(manifest.get("provenance") or {}))

    def load_or_fill(self, key: FeatureKey, labels: np.ndarray | None, fill: Callable[[], object],
                     what: str = "features") -> FeatureSet:
        """The entry of ``key``: loaded if complete and intact, else ``fill()`` (which writes the missing
        shards; it is called holding the entry's lock) and assembled.

        A damaged shard (size/checksum mismatch) is logged, discarded and recomputed; complete shards
        of an interrupted run are reused once their SHA-256 is re-checked (also when the manifest is
        gone). One extractor per entry: a second process waits for the lock, then loads its result.
        """
        cached = self._load_or_invalidate(key, labels, what)
        if cached is not None:
            return cached
        with self.lock(key):
            cached = self._load_or_invalidate(key, labels, what)  # another process may have finished meanwhile
            if cached is None:
                self.remove_partial_files(key)  # temporary files of a killed extractor (we hold the lock)
                for attempt in (1, 2):  # a shard damaged between its check and the assembly: recompute it once
                    fill()
                    try:
                        self.assemble(key)
                        cached = self.load(key, labels)
                        break
                    except CacheCorruptError as exc:
                        if attempt == 2:
                            raise
                        log.warning("cached %s damaged while assembling, recomputing: %s", what, exc)
                        self.invalidate(key, getattr(exc, "bad_shards", []))
        return cached

    def _load_or_invalidate(self, key: FeatureKey, labels: np.ndarray | None, what: str) -> FeatureSet | None:
        try:
            return self.load(key, labels)
        except CacheCorruptError as exc:
            log.warning("cached %s damaged, recomputing the affected shards: %s", what, exc)
            self.invalidate(key, getattr(exc, "bad_shards", []))
            return None

    def invalidate(self, key: FeatureKey, bad_shards: list[str] | None = None) -> None:
        """Drop the manifest (and the named shards) so the next extraction recomputes what is missing."""
        (self.entry_dir(key) / "manifest.json").unlink(missing_ok=True)
        for name in bad_shards or []:
            self.discard_shard(key, name)

    # --- listing and clearing ---------------------------------------------------------------
    def entries(self) -> list[EntryInfo]:
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(p for p in self.root.iterdir() if p.is_dir()):
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            out.append(EntryInfo(entry, _read_json(entry / "key.json") or {}, (entry / "manifest.json").is_file(),
                                 len(list((entry / "shards").glob("*.npz"))) if (entry / "shards").is_dir() else 0,
                                 size, _read_json(entry / "about.json") or {}))
        return out

    def clear(self, entry: EntryInfo | None = None) -> int:
        """Delete one entry (or all); returns bytes freed. Holds the entry's lock while deleting."""
        targets = [entry] if entry is not None else self.entries()
        freed = 0
        for e in targets:
            with file_lock(e.path):
                shutil.rmtree(e.path, ignore_errors=True)
            freed += e.size_bytes
        return freed
