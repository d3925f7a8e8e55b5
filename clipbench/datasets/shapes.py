"""``shapes``: clipbench's own compositional image-caption set, rendered with PIL, so retrieval runs offline.

Each 32 x 32 image shows two objects on a dark background, side by side or one above the other.
An object has a shape (circle, square, triangle), a colour (red, green, blue, yellow) and a size
(small, large); the two objects of an image never share both shape and colour. Every image has
three captions that say so, e.g. for a large red circle left of a small blue square:

    "a large red circle to the left of a small blue square"
    "a small blue square to the right of a large red circle"
    "a large red circle and a small blue square"

so retrieval has to get attributes *and* the spatial relation right to tell close images apart.

Determinism: split ``s`` is drawn from ``numpy.random.default_rng([SEED, index of s])``; shapes are
drawn at 4x and downsampled with a box filter (PIL), so the same code and PIL give the same
pixels. ``train`` (2,000 images) trains ``clipbench-shapes``; ``test`` (300 images, 900 captions)
is what the suites score. The data is generated on first use into ``<data-root>/shapes-v<VERSION>/``
(staging folder + marker + rename, under a lock: never half-written) in a second or two.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clipbench.datasets.base import SplitData
from clipbench.datasets.image_text import ImageTextAdapter, ImageTextSplit, image_text_fields
from clipbench.foundations.errors import DataError
from clipbench.foundations.fileio import atomic_write_json, ensure_dir, file_lock, fsync_dir

VERSION = 1
SEED = 20240
SIZE = 32
SCALE = 4
SPLIT_SIZES = {"train": 2000, "test": 300}
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 50, 47), "green": (60, 180, 75), "blue": (60, 100, 235), "yellow": (240, 210, 40)}
#: radius in output pixels
SIZES = {"small": 3.5, "large": 6.5}
BACKGROUND = (28, 28, 28)
MARKER = ".clipbench-complete.json"
CAPTIONS_FILE = "captions.json"


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str

    def words(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"


def _draw(draw: ImageDraw.ImageDraw, obj: Obj, cx: float, cy: float) -> None:
    r = SIZES[obj.size] * SCALE
    cx, cy = cx * SCALE, cy * SCALE
    fill = COLOURS[obj.colour]
    if obj.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif obj.shape == "square":
        s = r * 0.9
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)


def _random_obj(rng: np.random.Generator) -> Obj:
    return Obj(SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))],
               list(SIZES)[rng.integers(len(SIZES))])


def render_sample(rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    """One image and its three captions, drawn from ``rng``."""
    first = _random_obj(rng)
    second = _random_obj(rng)
    while (second.shape, second.colour) == (first.shape, first.colour):
        second = _random_obj(rng)
    horizontal = bool(rng.integers(2))
    # first object in the left (or top) half, second in the right (or bottom) half
    a_main, b_main = rng.uniform(7.5, 10.5), rng.uniform(21.5, 24.5)
    a_cross, b_cross = rng.uniform(8.5, 23.5), rng.uniform(8.5, 23.5)
    image = Image.new("RGB", (SIZE * SCALE, SIZE * SCALE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    if horizontal:
        _draw(draw, first, a_main, a_cross)
        _draw(draw, second, b_main, b_cross)
        relation, inverse = "to the left of", "to the right of"
    else:
        _draw(draw, first, a_cross, a_main)
        _draw(draw, second, b_cross, b_main)
        relation, inverse = "above", "below"
    image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    captions = [f"a {first.words()} {relation} a {second.words()}",
                f"a {second.words()} {inverse} a {first.words()}",
                f"a {first.words()} and a {second.words()}"]
    return image, captions


def generate(dest: str | os.PathLike) -> dict[str, list[list[str]]]:
    """Render every split into ``dest`` (``<split>/<index>.png`` + ``captions.json``); returns the captions."""
    dest = Path(dest)
    captions: dict[str, list[list[str]]] = {}
    for split_index, (split, n) in enumerate(SPLIT_SIZES.items()):
        rng = np.random.default_rng([SEED, split_index])
        folder = dest / split
        folder.mkdir(parents=True, exist_ok=True)
        captions[split] = []
        for i in range(n):
            image, caps = render_sample(rng)
            image.save(folder / f"{i:06d}.png", format="PNG")
            captions[split].append(caps)
    (dest / CAPTIONS_FILE).write_text(json.dumps(captions, indent=1) + "\n", encoding="utf-8")
    return captions


def ensure_generated(data_root: str | os.PathLike) -> Path:
    """``<data-root>/shapes-v<VERSION>``, generated first if absent (atomically, under a lock)."""
    root = ensure_dir(Path(data_root).expanduser())
    target = root / f"shapes-v{VERSION}"
    if (target / MARKER).is_file():
        return target
    with file_lock(target):
        if (target / MARKER).is_file():
            return target
        if target.exists():  # no marker: an interrupted older layout; rebuild it
            shutil.rmtree(target)
        for stale in root.glob(f".{target.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=root))
        try:
            generate(staging)
            atomic_write_json(staging / MARKER, {"dataset": "shapes", "version": VERSION, "seed": SEED,
                                                 "splits": SPLIT_SIZES})
            os.replace(staging, target)
            fsync_dir(root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


@dataclass
class ShapesAdapter(ImageTextAdapter):
    def is_present(self, data_root: Path | None = None) -> bool:
        return True  # generated on first use

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        if data_root is None:
            from clipbench.foundations.config import resolve_data_root

            data_root = resolve_data_root()
        folder = ensure_generated(data_root)
        try:
            captions = json.loads((folder / CAPTIONS_FILE).read_text(encoding="utf-8"))[split]
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise DataError(f"shapes: {folder / CAPTIONS_FILE} is unreadable ({type(exc).__name__}); remove {folder} "
                            "and it is generated again") from exc
        paths = [str(folder / split / f"{i:06d}.png") for i in range(len(captions))]
        out = ImageTextSplit(self.name, split, paths, captions, root=folder)
        out.verify_data = True  # generated files are small: their bytes, whatever --verify-data says
        return out


def shapes_adapter() -> ShapesAdapter:
    return ShapesAdapter(**image_text_fields(
        "shapes", ("train", "test"),
        "clipbench's compositional shapes (PIL-rendered, generated offline): 300 test images x 3 captions",
        origin=f"clipbench.datasets.shapes v{VERSION}, seed {SEED}"))


# ------------------------------------------------------------------------------ compositional hard negatives

#: the subsets of ``shapes_compositional``, one hard negative each per test image (where it differs)
COMPOSITIONAL_SUBSETS = ("swap_colour", "swap_shape", "swap_size", "swap_relation", "replace_colour",
                         "replace_shape")
_INVERSE = {"to the left of": "to the right of", "above": "below"}


def parse_caption(caption: str) -> tuple[Obj, str, Obj]:
    """(first object, relation, second object) of a generated ``"a X <relation> a Y"`` caption."""
    for relation in _INVERSE:
        head, sep, tail = caption.partition(f" {relation} ")
        if sep and head.startswith("a ") and tail.startswith("a "):
            objs = [part[2:].split(" ") for part in (head, tail)]
            if all(len(o) == 3 for o in objs):
                (s1, c1, h1), (s2, c2, h2) = objs
                return Obj(h1, c1, s1), relation, Obj(h2, c2, s2)
    raise ValueError(f"not a shapes relation caption: {caption!r}")


def compositional_items(captions: list[list[str]], seed: int = SEED) -> list[tuple[int, str, str, str]]:
    """(image index, positive, hard negative, subset) for every image and subset, deterministically.

    The positive is the image's first caption (``"a X <relation> a Y"``). Negatives: swap the colours,
    shapes or sizes of the two objects (skipped where both objects share that attribute, as the caption
    would not change), invert the relation with the objects in place (``X to the right of Y``), or
    replace one object's colour or shape by another value (object and value drawn from
    ``default_rng([seed, 15, image index])``).
    """
    items = []
    for i, caps in enumerate(captions):
        first, relation, second = parse_caption(caps[0])
        rng = np.random.default_rng([seed, 15, i])

        def text(a: Obj, rel: str, b: Obj) -> str:
            return f"a {a.words()} {rel} a {b.words()}"

        negatives = {}
        if first.colour != second.colour:
            negatives["swap_colour"] = text(Obj(first.shape, second.colour, first.size), relation,
                                            Obj(second.shape, first.colour, second.size))
        if first.shape != second.shape:
            negatives["swap_shape"] = text(Obj(second.shape, first.colour, first.size), relation,
                                           Obj(first.shape, second.colour, second.size))
        if first.size != second.size:
            negatives["swap_size"] = text(Obj(first.shape, first.colour, second.size), relation,
                                          Obj(second.shape, second.colour, first.size))
        negatives["swap_relation"] = text(first, _INVERSE[relation], second)
        which = int(rng.integers(2))
        objs = [first, second]
        colour = [c for c in COLOURS if c != objs[which].colour][int(rng.integers(len(COLOURS) - 1))]
        changed = list(objs)
        changed[which] = Obj(objs[which].shape, colour, objs[which].size)
        negatives["replace_colour"] = text(changed[0], relation, changed[1])
        which = int(rng.integers(2))
        shape = [s for s in SHAPES if s != objs[which].shape][int(rng.integers(len(SHAPES) - 1))]
        changed = list(objs)
        changed[which] = Obj(shape, objs[which].colour, objs[which].size)
        negatives["replace_shape"] = text(changed[0], relation, changed[1])
        for subset in COMPOSITIONAL_SUBSETS:
            if subset in negatives:
                items.append((i, caps[0], negatives[subset], subset))
    return items
