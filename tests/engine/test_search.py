"""Folder image search: results equal a brute-force NumPy ranking, reruns encode only what is new, bad input is one line.

The images are generated "product photos" (a coloured shape on a light background, varying sizes)
and the model is clipbench-tiny, so each test takes seconds on a CPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from _engine_fixtures import write_tiny_clip
from PIL import Image, ImageDraw

import clipbench
from clipbench.cli import main
from clipbench.datasets.images import open_rgb
from clipbench.engine.search import FolderIndex, build_index, search
from clipbench.engine.vector_search import exact_search, vector_search
from clipbench.features.extraction import FORWARD_STATS

TEXTS = ["a red square box", "a photo of a blue round bottle", "green shoes"]


def product_image(path, seed: int) -> None:
    """A coloured ellipse or rectangle on a light background, like a catalogue photo."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(40, 120))
    image = Image.new("RGB", (size, int(size * rng.uniform(0.7, 1.3))), tuple(int(v) for v in rng.integers(190, 256, 3)))
    draw = ImageDraw.Draw(image)
    box = [size // 5, size // 5, size - size // 5, size - size // 4]
    (draw.ellipse if seed % 2 else draw.rectangle)(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def product_folder(root, n: int, start: int = 0):
    for i in range(start, start + n):
        product_image(root / ("bags" if i % 3 else "shoes") / f"item_{i:03d}.png", seed=i)
    return root


@pytest.fixture(scope="module")
def tiny():
    return clipbench.load_model("clipbench-tiny")


def brute_force(model, paths, queries, k):
    """Rank by cosine similarity with every vector computed here, one image at a time (no index, no store)."""
    with torch.inference_mode():
        feats = torch.cat([model.encode_image(model.preprocess(open_rgb(p)).unsqueeze(0)) for p in paths])
        qs = []
        for q in queries:
            if os.path.isfile(q):
                qs.append(model.encode_image(model.preprocess(open_rgb(q)).unsqueeze(0)))
            else:
                qs.append(model.encode_text(model.tokenize([q])))
    feats = torch.nn.functional.normalize(feats, dim=-1).numpy()
    qs = torch.nn.functional.normalize(torch.cat(qs), dim=-1).numpy()
    scores = qs @ feats.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(str(paths[i]), float(scores[r, i])) for i in row] for r, row in enumerate(order)]


@pytest.mark.parametrize("backend,approx", [("exact", None), ("faiss", None), ("faiss", "hnsw")])
def test_search_equals_numpy_brute_force(tmp_path, tiny, backend, approx):
    folder = product_folder(tmp_path / "shop", 23)
    report = build_index(folder, tiny, progress=False)
    assert report.n_images == report.n_encoded == 23
    product_image(tmp_path / "query.png", seed=1000)
    queries = [*TEXTS, str(tmp_path / "query.png"), str(folder / "bags" / "item_004.png")]
    paths = sorted(folder.rglob("*.png"))
    expected = brute_force(tiny, paths, queries, k=6)
    # block_rows=5: the exact search merges five blocks of rows
    results = search(queries, folder, top=6, model=tiny, backend=backend, approx=approx, block_rows=5)
    for result, want in zip(results, expected, strict=True):
        assert [h.path for h in result.hits] == [p for p, _ in want]
        np.testing.assert_allclose([h.score for h in result.hits], [s for _, s in want], rtol=0, atol=1e-5)
        assert [h.rank for h in result.hits] == list(range(1, 7))
    assert results[-1].hits[0].path == str(folder / "bags" / "item_004.png")  # an indexed image finds itself
    assert [r.kind for r in results] == ["text"] * 3 + ["image"] * 2
    assert results[0].backend == {"exact": "exact", "faiss": "faiss-flat"}[backend] if approx is None \
        else results[0].backend == "faiss-hnsw"
    if approx:  # 23 images: HNSW's search visits all of them, so it is exact here and its recall says so
        assert results[0].recall == 1.0 and results[0].recall_queries == len(queries) + 23


def test_exact_blocks_and_faiss_flat_equal_a_full_sort():
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((1000, 16)).astype(np.float32)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    full = queries @ rows.T
    want = np.argsort(-full, axis=1, kind="stable")[:, :10]
    for block in (1000, 64, 7):
        scores, idx = exact_search(rows, queries, 10, block_rows=block)
        np.testing.assert_array_equal(idx, want)
        np.testing.assert_array_equal(scores, np.take_along_axis(full, want, 1))
    scores, idx, info = vector_search(rows, queries, 10, backend="faiss")
    assert info == {"backend": "faiss-flat"}
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(scores, np.take_along_axis(full, want, 1), rtol=1e-5, atol=1e-5)


def test_approximate_recall_is_measured_against_exact_search():
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((4000, 32)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    queries = rows[:50] + 0.5 * rng.standard_normal((50, 32)).astype(np.float32)
    want = np.argsort(-(queries @ rows.T), axis=1, kind="stable")[:, :10]
    _, idx, info = vector_search(rows, queries, 10, approx="ivf", recall_sample=0)
    measured = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, want, strict=True)])
    assert info["backend"] == "faiss-ivf" and info["recall_queries"] == 50
    assert info["recall"] == pytest.approx(measured)
    assert 0.2 < info["recall"] < 1.0  # IVF probing a quarter of its lists misses some true neighbours


def test_adding_10_images_encodes_exactly_10(tmp_path, tiny):
    folder = product_folder(tmp_path / "shop", 20)
    assert build_index(folder, tiny, progress=False).n_encoded == 20
    FORWARD_STATS.reset()
    again = build_index(folder, tiny, progress=False)
    assert FORWARD_STATS.samples == 0 and again.n_reused == 20

    product_folder(folder, 10, start=20)
    FORWARD_STATS.reset()
    report = build_index(folder, tiny, progress=False, batch_size=4)
    assert FORWARD_STATS.samples == 10 and report.n_encoded == 10
    assert (report.n_images, report.n_reused, report.n_removed, report.n_changed) == (30, 20, 0, 0)

    changed = folder / "bags" / "item_001.png"
    product_image(changed, seed=555)
    os.utime(changed, ns=(1, 1_000_000_000))  # a different mtime whatever the clock's resolution
    (folder / "shoes" / "item_003.png").unlink()
    FORWARD_STATS.reset()
    report = build_index(folder, tiny, progress=False)
    assert FORWARD_STATS.samples == 1
    assert (report.n_images, report.n_encoded, report.n_removed, report.n_changed) == (29, 1, 1, 1)

    # the incrementally maintained index holds exactly what a fresh build of the folder holds
    fresh = build_index(folder, tiny, tmp_path / "fresh-index", progress=False)
    assert fresh.n_encoded == 29
    inc, ref = FolderIndex.open(folder), FolderIndex.open(tmp_path / "fresh-index")
    assert inc.paths == ref.paths == [str(p) for p in sorted(folder.rglob("*.png"))]
    np.testing.assert_allclose(inc.embeddings, ref.embeddings, rtol=0, atol=1e-6)


def test_cli_index_and_search_count_forwards_across_runs(tmp_path, capsys, monkeypatch):
    folder = product_folder(tmp_path / "shop", 12)
    log = tmp_path / "forwards.log"
    monkeypatch.setenv("CLIPBENCH_TEST_FORWARD_LOG", str(log))
    base = ["index", str(folder), "--device", "cpu", "--no-progress"]
    assert main([*base, "--model", "clipbench-tiny"]) == 0
    assert sum(int(n) for n in log.read_text().split()) == 12
    product_folder(folder, 10, start=12)
    log.unlink()
    assert main(base) == 0  # the index remembers its model
    assert sum(int(n) for n in log.read_text().split()) == 10
    out = capsys.readouterr().out
    assert "22 images" in out and "10 embedded, 12 reused" in out
    assert main(["search", "a red square box", "--index", str(folder), "--top", "3", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Top 3 for text 'a red square box' (exact):" and len(lines) == 4
    ranked = [line.split() for line in lines[1:]]
    assert [r[0] for r in ranked] == ["1", "2", "3"] and all(os.path.isfile(r[2]) for r in ranked)
    scores = [float(r[1]) for r in ranked]
    assert scores == sorted(scores, reverse=True)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    (base / "empty" / "sub").mkdir(parents=True)
    (base / "empty" / "notes.txt").write_text("no images here")
    product_folder(base / "broken", 4)
    (base / "broken" / "bags" / "item_999.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    product_folder(base / "indexed", 4)
    assert main(["index", str(base / "indexed"), "--model", "clipbench-tiny", "--device", "cpu", "--no-progress"]) == 0
    write_tiny_clip(base / "other.pt")
    return base


CASES = {
    "empty folder": (lambda b: ["index", b / "empty", "--model", "clipbench-tiny"], "no images under"),
    "missing folder": (lambda b: ["index", b / "nope", "--model", "clipbench-tiny"], "does not exist"),
    "unreadable image": (lambda b: ["index", b / "broken", "--model", "clipbench-tiny"],
                         f"corrupt image {os.sep}"),
    "query with another model": (lambda b: ["search", "a red bag", "--index", b / "indexed", "--model", b / "other.pt"],
                                 "model mismatch: the index at"),
    "reindex with another model": (lambda b: ["index", b / "indexed", "--model", b / "other.pt"],
                                   "model mismatch"),
    "no index": (lambda b: ["search", "a red bag", "--index", b / "empty"], "no index at"),
    "missing query image": (lambda b: ["search", "missing.jpg", "--index", b / "indexed"],
                            "query image missing.jpg does not exist"),
    "approximate with exact backend": (lambda b: ["search", "a bag", "--index", b / "indexed", "--backend", "exact",
                                                  "--approx", "hnsw"], "needs the faiss backend"),
    "top zero": (lambda b: ["search", "a bag", "--index", b / "indexed", "--top", "0"], "--top must be positive"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2(bad_inputs, capsys, case):
    build, fragment = CASES[case]
    argv = [str(a) for a in build(bad_inputs)]
    capsys.readouterr()
    code = main([*argv, "--device", "cpu", *(["--no-progress"] if argv[0] == "index" else [])])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("clipbench: error:") and err.count("\n") == 1, err
    assert fragment in err and "Traceback" not in err
    if case == "unreadable image":
        assert "item_999.png" in err
