"""The search index keys each file on the image cache's manifest rule (path, size, mtime, ctime, inode),
with content hashes under --verify: a file replaced in place by bytes of the same size with its mtime
restored is re-embedded by `index` and flagged by `search`."""

from __future__ import annotations

import json
import os

import pytest
from _guards_fixtures import one_line_exit_2
from PIL import Image

import clipbench
from clipbench.cli import main
from clipbench.engine.search import FolderIndex, build_index, search
from clipbench.engine.search_files import INDEX_DIRNAME, MANIFEST, FileEntry, identify
from clipbench.features.extraction import FORWARD_STATS


@pytest.fixture(scope="module")
def tiny():
    return clipbench.load_model("clipbench-tiny")


def solid(path, colour) -> None:
    """A 48x48 BMP: the same byte size whatever the colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 48), colour).save(path, format="BMP")


def folder_of(root, n: int = 6):
    for i in range(n):
        solid(root / f"img_{i}.bmp", (40 * i, 200 - 30 * i, 90))
    return root


def replace_keeping_size_and_mtime(path, colour) -> None:
    """`cp -p` of other bytes of the same size: size and mtime as before, only ctime moves."""
    before = path.stat()
    solid(path, colour)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_same_size_restored_mtime_is_re_embedded_and_flagged(tmp_path, tiny):
    folder = folder_of(tmp_path / "photos")
    build_index(folder, tiny, progress=False)
    replace_keeping_size_and_mtime(folder / "img_2.bmp", (255, 255, 255))
    hits = search("a white square", folder, top=6, model=tiny).hits
    flagged = {os.path.basename(h.path) for h in hits if h.changed}
    assert flagged == {"img_2.bmp"}
    FORWARD_STATS.reset()
    report = build_index(folder, tiny, progress=False)
    assert (FORWARD_STATS.samples, report.n_changed, report.n_reused) == (1, 1, 5)
    assert not any(h.changed for h in search("a white square", folder, top=6, model=tiny).hits)


def forge_stamp(folder, name: str) -> None:
    """Rewrite the index so that ``name``'s recorded stamp is the file's current one (as if its ctime
    had been set back too): only its content hash still tells."""
    manifest_path = folder / INDEX_DIRNAME / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    for chunk in manifest["chunks"]:
        for row in chunk["files"]:
            if row[0] == name:
                st = (folder / name).stat()
                row[3] = identify(folder, FileEntry(name, st.st_size, st.st_mtime_ns), False).stamp
    manifest_path.write_text(json.dumps(manifest))


def test_verify_decides_by_content(tmp_path, tiny):
    folder = folder_of(tmp_path / "photos")
    build_index(folder, tiny, progress=False, verify=True)
    os.utime(folder / "img_1.bmp", ns=(1, 2_000_000_000))  # touched, same bytes
    FORWARD_STATS.reset()
    assert build_index(folder, tiny, progress=False, verify=True).n_reused == 6 and FORWARD_STATS.samples == 0

    replace_keeping_size_and_mtime(folder / "img_4.bmp", (0, 0, 0))
    forge_stamp(folder, "img_4.bmp")
    hits = search("a black square", folder, top=6, model=tiny).hits
    assert not any(h.changed for h in hits)  # the stamp was forged: the manifest rule cannot see it
    hits = search("a black square", folder, top=6, model=tiny, verify=True).hits
    assert {os.path.basename(h.path) for h in hits if h.changed} == {"img_4.bmp"}
    FORWARD_STATS.reset()
    assert build_index(folder, tiny, progress=False, verify=True).n_changed == 1 and FORWARD_STATS.samples == 1


def test_cli_verify_flags_and_needs_hashes(tmp_path, capsys):
    folder = folder_of(tmp_path / "photos")
    base = ["--device", "cpu"]
    assert main(["index", str(folder), "--model", "clipbench-tiny", "--no-progress", *base]) == 0
    err = one_line_exit_2(capsys, ["search", "a red square", "--index", folder, "--verify", *base])
    assert "no content hashes" in err and "--verify" in err
    assert main(["index", str(folder), "--verify", "--no-progress", *base]) == 0
    replace_keeping_size_and_mtime(folder / "img_0.bmp", (1, 2, 3))
    capsys.readouterr()
    assert main(["search", "a red square", "--index", str(folder), "--top", "6", "--verify", *base]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "changed since indexing" in line][0].split()[2].endswith("img_0.bmp")


def test_schema_1_index_stays_readable(tmp_path, tiny):
    folder = folder_of(tmp_path / "photos")
    build_index(folder, tiny, progress=False)
    manifest_path = folder / INDEX_DIRNAME / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["schema"] = 1
    for chunk in manifest["chunks"]:
        chunk["files"] = [row[:3] for row in chunk["files"]]
    manifest_path.write_text(json.dumps(manifest))
    opened = FolderIndex.open(folder)
    assert not any(h.changed for h in opened.search(["a red square"], tiny, top=6)[0].hits)
    assert build_index(folder, tiny, progress=False).n_changed == 6  # upgraded: its rows are identified anew
    assert all(e.stamp for e in FolderIndex.open(folder).entries)
