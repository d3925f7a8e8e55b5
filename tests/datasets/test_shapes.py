"""The generated shapes set: deterministic, written atomically, and its captions say what the pixels show."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from clipbench.datasets import get_dataset, shapes


def _digest(folder) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


@pytest.mark.slow
def test_generation_is_deterministic_and_atomic(tmp_path):
    a = shapes.ensure_generated(tmp_path / "a")
    b = shapes.ensure_generated(tmp_path / "b")
    assert (a / shapes.MARKER).is_file() and _digest(a) == _digest(b)
    leftovers = [p.name for p in (tmp_path / "a").iterdir() if p.name not in (a.name, f".{a.name}.lock")]
    assert leftovers == []  # no staging folder left behind
    split = get_dataset("shapes").load_split("test", tmp_path / "a")
    assert len(split) == 300 and split.n_captions == 900 and all(len(c) == 3 for c in split.captions)
    assert len(get_dataset("shapes").load_split("train", tmp_path / "a")) == 2000
    assert split.fingerprint == get_dataset("shapes").load_split("test", tmp_path / "b").fingerprint
    # a folder without its completion marker (an interrupted generation) is rebuilt, not trusted
    (a / shapes.MARKER).unlink()
    (a / "test" / "000000.png").write_bytes(b"garbage")
    assert _digest(shapes.ensure_generated(tmp_path / "a")) == _digest(b)


def _object_colour(pixels: np.ndarray, half: str) -> str:
    """The named colour closest to the mean non-background pixel of one half of the image."""
    h, w, _ = pixels.shape
    region = {"left": pixels[:, : w // 2], "right": pixels[:, w // 2:], "top": pixels[: h // 2],
              "bottom": pixels[h // 2:]}[half].reshape(-1, 3).astype(float)
    ink = region[np.abs(region - shapes.BACKGROUND).sum(axis=1) > 150]
    mean = ink.mean(axis=0)
    return min(shapes.COLOURS, key=lambda c: np.abs(np.array(shapes.COLOURS[c]) - mean).sum())


@pytest.mark.parametrize("seed", range(5))
def test_captions_describe_the_image(seed):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        image, captions = shapes.render_sample(rng)
        assert isinstance(image, Image.Image) and image.size == (32, 32) and len(captions) == 3
        words = captions[0].split()
        first_colour, relation = words[2], " ".join(words[4:-4])
        second_colour = words[-2]
        halves = ("left", "right") if relation == "to the left of" else ("top", "bottom")
        assert relation in ("to the left of", "above")
        pixels = np.asarray(image)
        assert _object_colour(pixels, halves[0]) == first_colour
        assert _object_colour(pixels, halves[1]) == second_colour
        inverse = "to the right of" if relation == "to the left of" else "below"
        assert f" {inverse} " in captions[1] and " and " in captions[2]
        big = {"small": 0, "large": 0}
        for size in (words[1], words[-3]):
            big[size] += 1
        assert sum(big.values()) == 2
