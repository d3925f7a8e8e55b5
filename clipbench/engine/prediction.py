"""Zero-shot labels for one image, as in CLIP's README: ``clipbench.predict("cat.jpg", labels=[...])``.

The classifier is the CLIP paper's: each prompt's text embedding is normalised, a class's prompts
are averaged and renormalised, and probabilities are softmax(100 x cosine similarity), the
zero-shot benchmark's logits (``clipbench.scoring.similarity.zeroshot_logits``). Labels
come from ``labels`` or from a dataset's classnames and prompt templates. As in CLIP's README,
``labels`` are the texts themselves ("a diagram", "a dog"); a ``template`` such as
"a photo of a {c}." wraps each one.

(The module is ``prediction`` rather than ``predict`` so that importing it cannot shadow the
function ``clipbench.predict`` with a module of the same name.)
"""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from clipbench.datasets.images import open_rgb
from clipbench.features.text_classifier import build_text_classifier
from clipbench.foundations.config import hf_offline, resolve_offline
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.images import to_rgb
from clipbench.models.base import ImageTextModel
from clipbench.scoring.similarity import top_k, zeroshot_logits

log = logging.getLogger(__name__)

DEFAULT_MODEL = "clipbench-tiny"
#: a template for callers who want one; ``labels`` are used as given when no template is passed
PHOTO_TEMPLATE = "a photo of a {c}."


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float


def format_predictions(results: Sequence[Prediction]) -> str:
    """CLIP README's style: labels right-aligned (at least 16 wide), a colon, the percentage.

    ``           snake: 65.31%``
    """
    width = max([16, *(len(r.label) for r in results)])
    return "\n".join(f"{r.label:>{width}s}: {100 * r.probability:.2f}%" for r in results)


def read_image(source: str | os.PathLike | Image.Image) -> Image.Image:
    """A PIL RGB image from a path (JPEG, PNG, WebP, anything PIL reads) or an image; one-line errors
    (an image over the decompression-bomb limit among them, as in a run)."""
    if isinstance(source, Image.Image):
        return to_rgb(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise ClipbenchError(f"image not found: {path}")
    if not path.is_file():
        raise ClipbenchError(f"not an image file: {path} is a directory")
    return open_rgb(path)  # run's decode: a full decode now, PIL's pixel limit from CLIPBENCH_MAX_IMAGE_PIXELS


def check_template(template: str) -> str:
    """A prompt template with exactly the placeholder ``{c}`` (the label); anything else is a one-line error."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:  # a lone "{" or "}"
        raise ClipbenchError(f"template {template!r} is not a valid prompt template ({exc}); "
                             "write {{ and }} for literal braces") from exc
    others = sorted({name for name in fields if name != "c"})
    if others:
        raise ClipbenchError(f"template {template!r} has placeholder(s) {', '.join('{' + n + '}' for n in others)}; "
                             "only {c} (the label) is filled in; write {{ and }} for literal braces")
    if "c" not in fields:
        raise ClipbenchError(f"template must contain '{{c}}' where the label goes, got {template!r}")
    return template


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    """``"cat, dog"`` or ``["cat", "dog"]`` -> ["cat", "dog"]; empty labels and duplicates are errors."""
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    cleaned = [str(item).strip() for item in items]
    if not cleaned or any(not item for item in cleaned):
        raise ClipbenchError(f"labels must be a non-empty comma-separated list without empty entries, got {labels!r}")
    duplicates = sorted({item for item in cleaned if cleaned.count(item) > 1})
    if duplicates:
        raise ClipbenchError(f"duplicate labels: {', '.join(duplicates)}")
    return cleaned


def dataset_prompts(name: str, language: str = "en") -> tuple[list[str], list[list[str]]]:
    """A dataset's classnames and per-class prompts (its own templates, as zero-shot evaluation uses), in
    ``language`` (``clipbench.datasets.languages``)."""
    from clipbench.datasets import get_dataset
    from clipbench.datasets.languages import in_language

    adapter = get_dataset(name)
    if adapter.kind != "classification":
        raise ClipbenchError(f"{name} is an {adapter.kind} dataset; predict's labels come from a classification dataset")
    adapter = in_language(adapter, language)
    return list(adapter.classnames), adapter.class_prompts()


def predict(
    image: str | os.PathLike | Image.Image,
    labels: str | Sequence[str] | None = None,
    dataset: str | None = None,
    model: str | ImageTextModel = DEFAULT_MODEL,
    top: int = 5,
    template: str | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
    offline: bool = False,
    language: str = "en",
) -> list[Prediction]:
    """The ``top`` most likely labels for ``image``, most likely first (probabilities over all labels sum to 1).

    ``labels`` are the prompts as given, unless ``template`` (with ``{c}``) wraps each one; ``language`` picks
    the ``dataset``'s classnames and templates in that language (docs/multilingual.md).
    """
    if (labels is None) == (dataset is None):
        raise ClipbenchError("give either labels (e.g. labels='cat,dog') or a dataset name for its classes, not both")
    if top < 1:
        raise ClipbenchError(f"top must be at least 1, got {top}")
    if labels is not None and language != "en":
        raise ClipbenchError("--language picks a --dataset's classnames and templates; --labels are used as given")
    if template is not None:
        check_template(template)
    pil = read_image(image)  # fail on a bad image before spending time on the model
    if labels is not None:
        names = parse_labels(labels)
        prompts = [[template.format(c=name) if template is not None else name] for name in names]
    else:
        names, prompts = dataset_prompts(dataset, language)
    if len(names) < 2:  # a softmax over one label is 100% whatever the image shows
        raise ClipbenchError(f"predict needs at least 2 labels to choose between, got {len(names)} ({', '.join(names)}); "
                             f"with one, it is 100% for any image")
    if isinstance(model, ImageTextModel):
        clip_model = model.to(device)
    else:
        from clipbench.models import load_model

        with hf_offline(resolve_offline(offline)):
            clip_model = load_model(model, device=device, cache_dir=cache_dir, offline=offline)
    classifier = build_text_classifier(clip_model, prompts)
    with torch.inference_mode():
        pixels = clip_model.preprocess(pil).unsqueeze(0).to(clip_model.device)
        feats = clip_model.encode_image(pixels)
    logits = zeroshot_logits(feats, classifier)  # the benchmark's own: 100 x cosine, in float32
    probs = torch.from_numpy(logits).softmax(dim=-1)
    best = top_k(probs, min(top, len(names)))[0]  # ties: the earlier label first
    return [Prediction(names[i], float(probs[0, i])) for i in best.tolist()]
