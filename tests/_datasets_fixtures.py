"""Fake datasets in their real on-disk formats, and a loopback HTTP server to download them from."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import pickle
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int, size: int = 8, fmt: str | None = None) -> Path:
    """A small deterministic RGB image (content depends on ``seed``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def class_tree(root: Path, counts: dict[str, int], ext: str = ".png", seed: int = 0) -> dict[str, list[Path]]:
    """``root/<class>/<i>.png`` with ``counts[class]`` images each."""
    out = {}
    for c, (name, n) in enumerate(counts.items()):
        out[name] = [write_image(root / name / f"img_{i:03d}{ext}", seed * 1000 + c * 100 + i) for i in range(n)]
    return out


def cifar10_tree(dest: Path, train_per_batch: int = 4, n_test: int = 6) -> dict[str, np.ndarray]:
    """``dest/cifar-10-batches-py`` with the official file names and pickle layout (tiny sizes)."""
    folder = dest / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = {"train": [], "test": []}

    def batch(name: str, n: int, split: str) -> None:
        lab = [int(x) for x in rng.integers(0, 10, n)]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({"batch_label": name, "labels": lab, "data": data, "filenames": [f"{i}.png" for i in range(n)]}, fh)
        labels[split] += lab

    for i in range(1, 6):
        batch(f"data_batch_{i}", train_per_batch, "train")
    batch("test_batch", n_test, "test")
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
                     "num_cases_per_batch": train_per_batch, "num_vis": 3072}, fh)
    return {k: np.asarray(v, dtype=np.int64) for k, v in labels.items()}


def cifar10_archive(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """``cifar-10-python.tar.gz`` like the official one; returns (md5, labels)."""
    staging = path.parent / "cifar-src"
    labels = cifar10_tree(staging)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return hashlib.md5(path.read_bytes()).hexdigest(), labels


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def rendered_shapes(folder: Path, n: int, seed: int, size: int = 96) -> tuple[list[str], list[list[str]]]:
    """``n`` shapes-set images rendered with a seeded generator and saved as PNGs, with their captions."""
    from clipbench.datasets.shapes import render_sample

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, captions = [], []
    for i in range(n):
        image, caps = render_sample(rng)
        path = folder / f"{i:02d}.png"
        image.resize((size, size)).save(path)
        paths.append(str(path))
        captions.append(caps)
    return paths, captions


def collate_images_and_texts(batch):
    """A DataLoader collate for (image tensor, captions) items, as CLIP_benchmark's loaders yield them."""
    import torch

    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]
