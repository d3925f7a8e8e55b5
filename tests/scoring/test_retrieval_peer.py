"""Peer agreement: clipbench's zeroshot_retrieval equals CLIP_benchmark's ``zeroshot_retrieval.evaluate``.

Same weights (a random-weight small ViT, 64 px, built by OpenAI's reference code and loaded by
clipbench from its state dict; the real sizes' parity is tests/models/test_models_arch.py), same images, captions and preprocessing (OpenAI's ``_transform``),
recall@1/5/10 in both directions. CLIP_benchmark calls image->text ``text_retrieval_recall@k`` and
text->image ``image_retrieval_recall@k`` and reports fractions (clipbench: percent).
"""

from __future__ import annotations

import json

import pytest
import torch
from _datasets_fixtures import collate_images_and_texts, rendered_shapes
from _models_fixtures import SMALL_CONFIGS, clip, make_reference
from clip_benchmark.metrics import zeroshot_retrieval

from clipbench import api

pytestmark = pytest.mark.peer

N_IMAGES, CAPTIONS_PER_IMAGE, KS = 16, 2, (1, 5, 10)


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, paths, captions, transform):
        self.paths, self.captions, self.transform = paths, captions, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), self.captions[i]


@pytest.mark.slow
def test_recall_at_k_equals_clip_benchmark(tmp_path):
    paths, captions = rendered_shapes(tmp_path / "images", N_IMAGES, seed=7)
    captions = [caps[:CAPTIONS_PER_IMAGE] for caps in captions]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"image": p, "captions": c}) for p, c in zip(paths, captions, strict=True)),
                     encoding="utf-8")

    reference = make_reference(SMALL_CONFIGS["small-vit"], seed=3)
    weights = tmp_path / "small-vit-random.pt"
    torch.save(reference.state_dict(), weights)

    (ours,) = api.run(model=str(weights), suite="smoke-retrieval", datasets=[f"pairs:{pairs}"], bootstrap=0,
                      data_root=tmp_path, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                      progress=False, batch_size=8)

    loader = torch.utils.data.DataLoader(_Pairs(paths, captions, clip.clip._transform(SMALL_CONFIGS["small-vit"][1])), batch_size=8,
                                         collate_fn=collate_images_and_texts)
    theirs = zeroshot_retrieval.evaluate(reference, loader, lambda texts: clip.tokenize(texts), "cpu", amp=False,
                                         recall_k_list=list(KS))
    assert ours["n_samples"] == N_IMAGES and ours["zeroshot_retrieval"]["n_captions"] == N_IMAGES * CAPTIONS_PER_IMAGE
    for k in KS:
        assert ours["metrics"][f"i2t_recall@{k}"] == pytest.approx(100 * theirs[f"text_retrieval_recall@{k}"], abs=1e-4)
        assert ours["metrics"][f"t2i_recall@{k}"] == pytest.approx(100 * theirs[f"image_retrieval_recall@{k}"], abs=1e-4)
    # the comparison is not vacuous: the random model ranks some but not all correctly at k=1
    assert 0 < ours["metrics"]["t2i_recall@1"] < 100 or 0 < ours["metrics"]["i2t_recall@1"] < 100
