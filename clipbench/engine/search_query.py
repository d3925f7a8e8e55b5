"""What a search query is: an image (a path or a PIL image) or a text, with one-line errors for paths
that name no image file (a missing file is said to be missing, not corrupt). Classifying only stats,
so every query is checked before the model loads; the image is decoded when it is embedded."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from clipbench.datasets.images import is_image_file, open_rgb
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.images import to_rgb


def _query_file(path: Path, given: str) -> Path:
    if not path.exists():
        raise ClipbenchError(f"query image {given} does not exist")
    if not path.is_file():
        raise ClipbenchError(f"query image {given} is not a file")
    return path


def query_image(payload: Path | Image.Image) -> Image.Image:
    """An image query's RGB pixels (a path is decoded as a run decodes, with one-line errors)."""
    return payload if isinstance(payload, Image.Image) else open_rgb(payload)


def classify_query(query, kind: str) -> tuple[str, str, object]:
    """("image" | "text", label, payload) for one query: a PIL image or an existing file's path, or the text."""
    if kind not in ("auto", "image", "text"):
        raise ClipbenchError(f"unknown query kind {kind!r}; expected auto, image or text")
    if isinstance(query, Image.Image):
        return "image", "<image>", to_rgb(query)
    if isinstance(query, Path) or kind == "image":
        return "image", str(query), _query_file(Path(query).expanduser(), str(query))
    text = str(query)
    if not text.strip():
        raise ClipbenchError("empty query: give an image path or some text")
    if kind == "text":
        return "text", text, text
    if Path(text).expanduser().is_file():
        return "image", text, _query_file(Path(text).expanduser(), text)
    if is_image_file(text) and not any(ch.isspace() for ch in text):
        raise ClipbenchError(f"query image {text} does not exist (to search for this text, pass --text)")
    return "text", text, text
