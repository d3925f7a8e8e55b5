"""Models whose tokenizer is not CLIP's: an open_clip model with an XLM-R text tower (open_clip's
``xlm-roberta-base-ViT-B-32`` shape, made tiny: the real config names the hub's xlm-roberta-base, which cannot be
built offline) and a transformers CLIPModel folder, each with a Unigram tokenizer trained on the spot. Texts go
through the model's own tokenizer (compared id for id with the ``tokenizers`` library), and the text cache key
names that tokenizer."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _multilingual_fixtures import CAPTIONS, make_hf_multilingual_clip, make_xlmr_openclip, train_tokenizer

import clipbench
from clipbench.features.text_store import text_features, text_key

TEXTS = [CAPTIONS["zh"][1], CAPTIONS["ar"][0], CAPTIONS["ja"][2], CAPTIONS["de"][1], CAPTIONS["ru"][2]]


def _library_ids(tok, texts, length, pad_id=1):
    out = []
    for text in texts:
        ids = tok.encode(text).ids
        assert len(ids) <= length
        out.append(ids + [pad_id] * (length - len(ids)))
    return out


@pytest.fixture(scope="module")
def xlmr_openclip(tmp_path_factory):
    return make_xlmr_openclip(tmp_path_factory.mktemp("xlmr"))


def test_openclip_config_json_with_a_local_xlmr_tower_uses_its_own_tokenizer(xlmr_openclip, tmp_path):
    config, checkpoint, tok = xlmr_openclip
    model = clipbench.load_model(f"openclip:{config}@{checkpoint}")
    ids = model.tokenize(TEXTS)
    assert ids.shape == (len(TEXTS), 32)
    assert ids.tolist() == _library_ids(tok, TEXTS, 32)
    assert model.tokenizer_id.startswith("hf-") and model.tokenizer_id != clipbench.load_model("clipbench-tiny").tokenizer_id
    feats = text_features(model, TEXTS, tmp_path / "text")  # cached through the model's own tokenizer
    np.testing.assert_allclose(feats, model.encode_text(ids).numpy(), rtol=1e-5, atol=1e-6)
    assert model.tokenizer_id in text_key(model, TEXTS).preprocess_id


def test_hf_folder_tokenizes_with_its_tokenizer_and_the_cache_key_names_it(tmp_path):
    folder, tok = make_hf_multilingual_clip(tmp_path / "m")
    model = clipbench.load_model(f"hf:{folder}")
    assert model.tokenize(TEXTS).tolist() == _library_ids(tok, TEXTS, 32)
    clip_model, _ = clipbench.clip.load(f"hf:{folder}", device="cpu")  # the clip API: the model's own ids too
    assert clip_model.tokenize(TEXTS).tolist() == _library_ids(tok, TEXTS, 32)
    # the same weights with another tokenizer: another text cache entry, never the first one's features
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (other / name).unlink(missing_ok=True)
    train_tokenizer(other, extra_texts=["uno dos tres", "quatre cinq six sept"])
    retok = clipbench.load_model(f"hf:{other}")
    assert retok.identity == model.identity and retok.tokenizer_id != model.tokenizer_id
    assert text_key(retok, TEXTS).digest != text_key(model, TEXTS).digest


def test_predict_encodes_labels_with_the_models_own_tokenizer(xlmr_openclip, tmp_path):
    import torch
    from PIL import Image

    from clipbench import api

    config, checkpoint, tok = xlmr_openclip
    model = clipbench.load_model(f"openclip:{config}@{checkpoint}")
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(image)
    labels = TEXTS[:3]  # Chinese, Arabic, Japanese
    preds = api.predict(str(image), labels=labels, model=model, top=3)
    with torch.no_grad():  # the same numbers from the tokenizers library's ids
        text = torch.nn.functional.normalize(model.encode_text(torch.tensor(_library_ids(tok, labels, 32))), dim=-1)
        img = torch.nn.functional.normalize(model.encode_image(model.preprocess(Image.open(image)).unsqueeze(0)), dim=-1)
        probs = (100 * img @ text.T).softmax(dim=-1)[0]
    assert sorted(p.label for p in preds) == sorted(labels)
    for p in preds:
        assert p.probability == pytest.approx(float(probs[labels.index(p.label)]), abs=1e-4)
