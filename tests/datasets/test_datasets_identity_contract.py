"""One data identity for every dataset kind and source (registry-wide contract).

Each source writes a tiny dataset in its real on-disk format; one image's bytes are replaced in
place by other bytes of the same size and the mtime is restored (``rsync -t``, ``cp -p``), or two
same-size, same-mtime images are swapped. The rule is the same for every kind:

* with ``--verify-data`` the key is the bytes': any changed image changes it, and restoring the
  bytes gives the old key back (identical copies share cache entries);
* without it the manifest (path, size, mtime, ctime, inode) decides: a rewrite changes ctime and a
  move changes inodes, so both change the key too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _datasets_fixtures import class_tree
from _engine_fixtures import FakeModel
from PIL import Image

from clipbench.datasets import get_dataset, load_split
from clipbench.datasets.compositional import SUGARCREPE_SUBSETS
from clipbench.datasets.registry import SPECS
from clipbench.features import FORWARD_STATS, FeatureStore, extract_features


@dataclass
class Source:
    spec: str  # what get_dataset is given
    kind: str
    data_root: Path | None
    holder: Path  # the file that holds one image's bytes (the image itself, a shard, an Arrow file)
    image: bytes  # that image's encoded bytes, as stored in ``holder``
    swap: tuple[Path, Path] | None = None  # two image files of the same size, for the move test
    split: str = "test"


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _same_size_png(size: int, avoid: bytes) -> bytes:
    """Other pixels whose PNG has exactly ``size`` bytes."""
    for seed in range(10_000, 10_500):
        data = _png(seed)
        if len(data) == size and data != avoid:
            return data
    raise AssertionError(f"no {size}-byte PNG found")


def _images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        (folder / f"{i}.png").write_bytes(_png(seed + i))
        out.append(folder / f"{i}.png")
    return out


def _file_source(spec: str, kind: str, data_root: Path | None, files: list[Path]) -> Source:
    return Source(spec, kind, data_root, files[0], files[0].read_bytes(), (files[0], files[1]))


def _folder(tmp: Path) -> Source:
    tree = class_tree(tmp / "ds", {"cat": 2, "dog": 2})
    return _file_source(f"folder:{tmp / 'ds'}", "classification", None, tree["cat"] + tree["dog"])


def _csv(tmp: Path) -> Source:
    files = _images(tmp / "img", 4)
    with open(tmp / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("image", "label"), *((f"img/{p.name}", "ab"[i % 2]) for i, p in enumerate(files))])
    return _file_source(f"csv:{tmp / 'labels.csv'}", "classification", None, files)


def _pairs(tmp: Path) -> Source:
    files = _images(tmp / "img", 3)
    with open(tmp / "pairs.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("image", "caption"), *((f"img/{p.name}", f"photo {i}") for i, p in enumerate(files))])
    return _file_source(f"pairs:{tmp / 'pairs.csv'}", "image_text", None, files)


def _captions(tmp: Path) -> Source:
    files = _images(tmp / "caps", 3)
    for i, p in enumerate(files):
        p.with_suffix(".txt").write_text(f"photo {i}\nanother {i}\n")
    return _file_source(f"captions:{tmp / 'caps'}", "image_text", None, files)


def _karpathy(tmp: Path) -> Source:
    files = _images(tmp / "flickr30k" / "flickr30k-images", 3)
    entries = [{"filename": p.name, "split": "test", "sentences": [{"raw": f"photo {i}"}]} for i, p in enumerate(files)]
    (tmp / "flickr30k" / "dataset_flickr30k.json").write_text(json.dumps({"images": entries}))
    return _file_source("flickr30k", "image_text", tmp, files)


def _sugarcrepe(tmp: Path) -> Source:
    files = _images(tmp / "sugarcrepe" / "val2017", 2)
    for subset in SUGARCREPE_SUBSETS:
        rows = {str(i): {"filename": p.name, "caption": f"a {subset} {i}", "negative_caption": f"no {subset} {i}"}
                for i, p in enumerate(files)}
        (tmp / "sugarcrepe" / f"{subset}.json").write_text(json.dumps(rows))
    return _file_source("sugarcrepe", "choices", tmp, files)


def _aro_vg(tmp: Path) -> Source:
    files = _images(tmp / "aro" / "images", 2)
    rows = [{"image_path": p.name, "bbox_x": 0, "bbox_y": 0, "bbox_w": 4, "bbox_h": 4, "true_caption": f"a {i}",
             "false_caption": f"b {i}"} for i, p in enumerate(files)]
    (tmp / "aro" / "visual_genome_relation.json").write_text(json.dumps(rows))
    return _file_source("aro_vg_relation", "choices", tmp, files)


def _choices(tmp: Path) -> Source:
    files = _images(tmp / "img", 2)
    rows = [{"image": f"img/{p.name}", "positive": f"a {i}", "negatives": [f"b {i}"]} for i, p in enumerate(files)]
    (tmp / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return _file_source(f"choices:{tmp / 'items.jsonl'}", "choices", None, files)


def _shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _wds(tmp: Path, captioned: bool) -> Source:
    images = [_png(i) for i in range(3)]
    extra = [(".txt", f"photo {i}".encode()) if captioned else (".cls", str(i % 2).encode()) for i in range(3)]
    _shard(tmp / "shards" / "0.tar", [m for i, img in enumerate(images)
                                      for m in ((f"{i:06d}.png", img), (f"{i:06d}{extra[i][0]}", extra[i][1]))])
    (tmp / "shards" / "classnames.txt").write_text("a\nb\n")
    return Source(f"wds:{tmp / 'shards' / '0.tar'}", "image_text" if captioned else "classification", None,
                  tmp / "shards" / "0.tar", images[0])


def _arrow(folder: Path, image: bytes) -> Path:
    """The Arrow file of a save_to_disk folder that holds ``image``'s bytes."""
    return next(p for p in sorted(folder.rglob("*.arrow")) if image in p.read_bytes())


def _hf(tmp: Path, captioned: bool) -> Source:
    import datasets

    images = [_png(i) for i in range(4)]
    if captioned:
        feats = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
        rows = {"image": [{"bytes": b, "path": None} for b in images], "caption": [f"photo {i}" for i in range(4)]}
    else:
        feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
        rows = {"image": [{"bytes": b, "path": None} for b in images], "label": [0, 1, 0, 1]}
    datasets.Dataset.from_dict(rows, features=feats).save_to_disk(str(tmp / "saved"))
    return Source(f"hf:{tmp / 'saved'}", "image_text" if captioned else "classification", None,
                  _arrow(tmp / "saved", images[0]), images[0])


def _winoground(tmp: Path) -> Source:
    import datasets

    images = [_png(i) for i in range(4)]
    feats = datasets.Features({"id": datasets.Value("int32"), "image_0": datasets.Image(), "image_1": datasets.Image(),
                               "caption_0": datasets.Value("string"), "caption_1": datasets.Value("string"),
                               "collapsed_tag": datasets.Value("string")})
    rows = {"id": [0, 1], "image_0": [{"bytes": images[0], "path": None}, {"bytes": images[2], "path": None}],
            "image_1": [{"bytes": images[1], "path": None}, {"bytes": images[3], "path": None}],
            "caption_0": ["a b", "c d"], "caption_1": ["b a", "d c"], "collapsed_tag": ["Object", "Relation"]}
    datasets.Dataset.from_dict(rows, features=feats).save_to_disk(str(tmp / "winoground"))
    return Source("winoground", "choices", tmp, _arrow(tmp / "winoground", images[0]), images[0])


SOURCES: dict[str, Callable[[Path], Source]] = {
    "folder": _folder, "csv": _csv, "hf-classification": lambda t: _hf(t, False),
    "hf-captions": lambda t: _hf(t, True), "wds-classification": lambda t: _wds(t, False),
    "wds-captions": lambda t: _wds(t, True), "pairs": _pairs, "captions": _captions, "karpathy": _karpathy,
    "sugarcrepe": _sugarcrepe, "aro_vg": _aro_vg, "winoground": _winoground, "choices": _choices,
}
FILE_SOURCES = [name for name in SOURCES if name.split("-")[0] not in ("hf", "wds", "winoground")]


def test_every_spec_prefix_of_the_registry_has_a_source_here():
    assert set(SPECS) <= {name.split("-")[0] for name in SOURCES}


def _fingerprint(src: Source, verify: bool) -> str:
    """The key a run computes: a fresh adapter and split, the way the engine loads them."""
    adapter = get_dataset(src.spec)
    split = load_split(adapter, src.split, src.data_root, verify_data=verify)
    assert adapter.kind == split.kind == src.kind
    # the record's data_identity says what the key hashed: the bytes exactly when --verify-data asked for them
    assert (split.fingerprint_inputs["content_sha256"] is not None) == verify
    return split.fingerprint


def _after_next_ctime_tick(path: Path) -> None:
    """Wait until a write would get a later ctime than ``path``'s (file times come from a coarse clock)."""
    probe = path.with_name(".ctime-probe")
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > path.stat().st_ctime_ns:
            probe.unlink()
            return
        time.sleep(0.001)


def _overwrite_keep_mtime(holder: Path, old: bytes, new: bytes) -> None:
    """``old``'s bytes inside ``holder`` become ``new`` (same length), in place; mtime restored."""
    assert len(old) == len(new)
    before = holder.stat()
    offset = holder.read_bytes().find(old)
    assert offset >= 0
    _after_next_ctime_tick(holder)
    with open(holder, "r+b") as fh:
        fh.seek(offset)
        fh.write(new)
    os.utime(holder, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = holder.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


@pytest.mark.parametrize("name", SOURCES)
def test_an_image_replaced_with_the_same_size_and_mtime_changes_the_key(tmp_path, name):
    src = SOURCES[name](tmp_path)
    before = {verify: _fingerprint(src, verify) for verify in (False, True)}
    new = _same_size_png(len(src.image), src.image)
    _overwrite_keep_mtime(src.holder, src.image, new)
    after = {verify: _fingerprint(src, verify) for verify in (False, True)}
    assert after[True] != before[True]  # --verify-data: the bytes changed
    assert after[False] != before[False]  # the manifest rule: the rewrite changed ctime
    _overwrite_keep_mtime(src.holder, new, src.image)  # the old bytes back
    assert _fingerprint(src, True) == before[True]  # the content key is the bytes' alone
    assert _fingerprint(src, False) not in (before[False], after[False])


@pytest.mark.parametrize("name", FILE_SOURCES)
def test_two_same_size_same_mtime_images_swapped_change_the_key(tmp_path, name):
    src = SOURCES[name](tmp_path)
    a, b = src.swap
    if a.stat().st_size != b.stat().st_size:
        b.write_bytes(_same_size_png(a.stat().st_size, a.read_bytes()))
    stamp = a.stat().st_mtime_ns
    for p in (a, b):
        os.utime(p, ns=(stamp, stamp))
    before = {verify: _fingerprint(src, verify) for verify in (False, True)}
    tmp = a.with_name("swap.tmp")
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    after = {verify: _fingerprint(src, verify) for verify in (False, True)}
    assert after[True] != before[True]  # other bytes at each path
    assert after[False] != before[False]  # the inodes moved with the files


def test_a_caption_set_reencodes_an_image_replaced_with_the_same_size_and_mtime(tmp_path):
    src = _pairs(tmp_path)
    store = FeatureStore(tmp_path / "cache")

    def encode(verify: bool) -> tuple[str, np.ndarray, int]:
        split = load_split(get_dataset(src.spec), "test", None, verify_data=verify)
        FORWARD_STATS.reset()
        features = extract_features(FakeModel(), split, store, batch_size=2, progress=False).features
        return split.fingerprint, features, FORWARD_STATS.samples

    first = {verify: encode(verify) for verify in (False, True)}
    assert [first[v][2] for v in (False, True)] == [3, 3]
    assert [encode(v)[2] for v in (False, True)] == [0, 0]  # unchanged: served from the cache
    _overwrite_keep_mtime(src.holder, src.image, _same_size_png(len(src.image), src.image))
    for verify in (False, True):
        key, features, encoded = encode(verify)
        assert key != first[verify][0] and encoded == 3  # a new key, so the images are encoded again
        assert not np.array_equal(features[0], first[verify][1][0])
        np.testing.assert_array_equal(features[1:], first[verify][1][1:])
        fresh = extract_features(FakeModel(), load_split(get_dataset(src.spec), "test", None, verify_data=verify),
                                 FeatureStore(tmp_path / f"fresh{verify}"), batch_size=2, progress=False)
        np.testing.assert_array_equal(features, fresh.features)
