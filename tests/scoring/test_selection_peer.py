"""Peer agreement: clipbench's image_caption_selection equals CLIP_benchmark's ``image_caption_selection.evaluate``.

Same weights (the packaged clipbench-shapes, an OpenAI-format state dict: OpenAI's reference code
builds it, clipbench loads it by name; the real sizes' parity is tests/models/test_models_arch.py), same images (shapes renders), captions and preprocessing (OpenAI's
``_transform``). SugarCrepe-style items (one image, positive + one hard negative): CLIP_benchmark's
``text_acc`` = clipbench's accuracy. Winoground-style groups (2 images x 2 captions): its
``text_acc`` / ``image_acc`` / ``acc`` = clipbench's ``text_score`` / ``image_score`` / ``group_score``.
CLIP_benchmark reports fractions (clipbench: percent).
"""

from __future__ import annotations

import json

import pytest
import torch
from _datasets_fixtures import collate_images_and_texts, rendered_shapes
from _models_fixtures import clip
from clip_benchmark.metrics import image_caption_selection

from clipbench import api
from clipbench.datasets.shapes import compositional_items
from clipbench.models import MODELS

pytestmark = pytest.mark.peer

N_ITEMS, N_GROUPS = 24, 8


class _Items(torch.utils.data.Dataset):
    """(images [nim, C, H, W] or [C, H, W], captions) per instance, as CLIP_benchmark's loaders yield them."""

    def __init__(self, instances, transform):
        self.instances, self.transform = instances, transform

    def __len__(self):
        return len(self.instances)

    def __getitem__(self, i):
        from PIL import Image

        paths, captions = self.instances[i]
        images = []
        for path in paths:
            with Image.open(path) as img:
                images.append(self.transform(img.convert("RGB")))
        return (images[0] if len(images) == 1 else torch.stack(images)), captions


@pytest.mark.slow
def test_selection_equals_clip_benchmark(tmp_path):
    paths, captions = rendered_shapes(tmp_path / "images", N_ITEMS + 2 * N_GROUPS, seed=11)
    # SugarCrepe-style: image i's caption vs one generated hard negative (subsets in turn)
    generated = compositional_items(captions[:N_ITEMS])
    sugar = [generated[k] for k in range(0, len(generated), max(1, len(generated) // N_ITEMS))][:N_ITEMS]
    rows = [{"image": paths[i], "positive": pos, "negatives": [neg], "subset": "sugar"} for i, pos, neg, _ in sugar]
    groups = []
    for g in range(N_GROUPS):
        a, b = N_ITEMS + 2 * g, N_ITEMS + 2 * g + 1
        ca, cb = captions[a][0], captions[b][0]
        rows.append({"image": paths[a], "positive": ca, "negatives": [cb], "subset": "wino", "group": str(g)})
        rows.append({"image": paths[b], "positive": cb, "negatives": [ca], "subset": "wino", "group": str(g)})
        groups.append(([paths[a], paths[b]], [ca, cb]))
    file = tmp_path / "items.jsonl"
    file.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")

    # clipbench-shapes: trained on shapes renders and their captions, so it tells some hard negatives
    # apart and not others (a random small tower gives every image nearly the same features)
    weights = MODELS.get("clipbench-shapes").package_path()
    reference = clip.model.build_model(torch.load(weights, weights_only=True)).float().eval()
    (ours,) = api.run(model="clipbench-shapes", suite="smoke-compositional", datasets=[f"choices:{file}"], bootstrap=0,
                      data_root=tmp_path, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                      progress=False, batch_size=8)

    def theirs(instances):
        loader = torch.utils.data.DataLoader(_Items(instances, clip.clip._transform(reference.visual.input_resolution)), batch_size=8,
                                             collate_fn=collate_images_and_texts)
        return image_caption_selection.evaluate(reference, loader, lambda texts: clip.tokenize(texts), "cpu",
                                                amp=False)

    sugar_theirs = theirs([([paths[i]], [pos, neg]) for i, pos, neg, _ in sugar])
    wino_theirs = theirs(groups)
    m = ours["metrics"]
    assert ours["n_samples"] == N_ITEMS + 2 * N_GROUPS and ours["image_caption_selection"]["n_groups"] == N_GROUPS and ours["image_caption_selection"]["n_ties"] == 0
    assert m["acc/sugar"] == pytest.approx(100 * sugar_theirs["text_acc"], abs=1e-4)
    assert m["text_score"] == pytest.approx(100 * wino_theirs["text_acc"], abs=1e-4)
    assert m["image_score"] == pytest.approx(100 * wino_theirs["image_acc"], abs=1e-4)
    assert m["group_score"] == pytest.approx(100 * wino_theirs["acc"], abs=1e-4)
    # not vacuous: the random model gets some but not all items right
    assert 0 < m["acc/sugar"] < 100 and 0 < m["acc/wino"] < 100
    assert 0 < m["text_score"] < 100 and 0 < m["image_score"] < 100, m
