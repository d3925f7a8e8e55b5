"""Multilingual test material, built on the spot and offline: a SentencePiece-style (Unigram) tokenizer trained
with the ``tokenizers`` library on a few sentences in several scripts, tiny random models that use it (an
open_clip model with an XLM-R text tower in a local folder, and a transformers CLIPModel folder), and fake
Crossmodal-3600 / XTD10 folders in their published layouts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

#: captions per language for the fake sets: Latin, CJK without spaces, right-to-left Arabic, Cyrillic, ...
CAPTIONS = {
    "en": ["a red circle on a white wall", "two dogs run on the beach", "a bowl of green apples"],
    "zh": ["白色墙上的红色圆圈", "两只狗在海滩上奔跑", "一碗青苹果"],
    "ja": ["白い壁の赤い丸", "浜辺を走る二匹の犬", "青りんごの入ったボウル"],
    "ar": ["دائرة حمراء على جدار أبيض", "كلبان يركضان على الشاطئ", "وعاء من التفاح الأخضر"],
    "de": ["ein roter Kreis an einer weißen Wand", "zwei Hunde rennen am Strand", "eine Schüssel grüner Äpfel"],
    "ru": ["красный круг на белой стене", "две собаки бегут по пляжу", "миска зелёных яблок"],
}


def train_tokenizer(directory: Path, extra_texts=()) -> object:
    """A Unigram tokenizer (XLM-R's special tokens and ids: <s>=0 <pad>=1 </s>=2 <unk>=3) saved in
    ``directory`` as a transformers fast tokenizer; returns the ``tokenizers.Tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    corpus = [c for caps in CAPTIONS.values() for c in caps] + list(extra_texts)
    tok.train_from_iterator(corpus * 3, trainers.UnigramTrainer(vocab_size=400, special_tokens=specials,
                                                                unk_token="<unk>", show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return tok


def make_xlmr_openclip(directory: Path, context_length: int = 32, seed: int = 0) -> tuple[Path, Path, object]:
    """(open_clip config JSON, checkpoint, tokenizer): an open_clip model shaped like ``xlm-roberta-base-ViT-B-32``
    (HF XLM-R text tower, mean pooling, linear projection) but tiny, its text tower and tokenizer in a local folder."""
    import open_clip
    import torch
    from transformers import XLMRobertaConfig

    text_dir = directory / "xlmr-tiny"
    tok = train_tokenizer(text_dir)
    XLMRobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=context_length + 4, type_vocab_size=1,
                     pad_token_id=1, bos_token_id=0, eos_token_id=2).save_pretrained(text_dir)
    config = directory / "cbtest-xlmr-tiny-ViT.json"
    config.write_text(json.dumps({
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"hf_model_name": str(text_dir), "hf_tokenizer_name": str(text_dir), "hf_pooler_type": "mean_pooler",
                     "hf_proj_type": "linear", "context_length": context_length},
    }), encoding="utf-8")
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(config.stem, pretrained=None, pretrained_hf=False)
    checkpoint = directory / "xlmr-tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint, tok


def make_hf_multilingual_clip(directory: Path, context_length: int = 32, seed: int = 0) -> tuple[Path, object]:
    """A transformers CLIPModel folder (save_pretrained) whose tokenizer is the trained Unigram one."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    tok = train_tokenizer(directory)
    config = CLIPConfig(
        text_config=dict(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=context_length, bos_token_id=0,
                         eos_token_id=2, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        projection_dim=16,
    )
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory, tok


def _image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)


def make_fake_xm3600(data_root: Path, n_images: int = 3, languages=None) -> Path:
    """``<data-root>/xm3600/captions.jsonl`` + ``images/<key>.jpg``: every one of the 36 languages, two captions
    each (the first is scored); the six of ``CAPTIONS`` in their scripts, the others tagged copies of English."""
    from clipbench.datasets.multilingual import XM3600_LANGUAGES

    base = data_root / "xm3600"
    lines = []
    for i in range(n_images):
        key = f"{i:016x}"
        _image(base / "images" / f"{key}.jpg", i)
        item = {"image/key": key, "image/locale": "en"}
        for lang in languages or XM3600_LANGUAGES:
            first = CAPTIONS[lang][i % 3] if lang in CAPTIONS else f"{CAPTIONS['en'][i % 3]} ({lang})"
            item[lang] = {"caption": [f"{first} {i}", f"second caption {i}"], "caption/tokenized": [first]}
        lines.append(json.dumps(item, ensure_ascii=False))
    (base / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return base


def make_fake_xtd10(data_root: Path, n_images: int = 3) -> Path:
    """XTD10's layout as its repository has it: ``XTD10/``, ``MIC/`` (de, fr) and ``STAIR/`` (jp) folders."""
    from clipbench.datasets.multilingual import XTD10_LANGUAGES

    base = data_root / "xtd10"
    names = [f"COCO_val2014_{i:012d}.jpg" for i in range(n_images)]
    for i, name in enumerate(names):
        _image(base / "images" / name, i)
    (base / "test_image_names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    for lang in XTD10_LANGUAGES:
        folder = {"de": "MIC", "fr": "MIC", "ja": "STAIR"}.get(lang, "XTD10")
        code = "jp" if lang == "ja" else lang
        caps = [(CAPTIONS[lang][i % 3] if lang in CAPTIONS else f"{CAPTIONS['en'][i % 3]} ({lang})") + f" {i}"
                for i in range(n_images)]
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / f"test_1kcaptions_{code}.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
    return base


def make_fake_flores_set(data_root: Path, name: str = "xtd200", n_images: int = 3) -> Path:
    """NLLB-CLIP's XTD200 / Flickr30k-200 layout: the image list (``test_image_names.txt`` / ``filenames.txt``)
    and one ``<FLORES code>.txt`` per language (English as ``eng_Latn.txt``), under ``<data-root>/<name>/``."""
    from clipbench.datasets.flores import FLORES200_CODES

    base = data_root / name
    names = ([f"COCO_train2014_{i:012d}.jpg" for i in range(n_images)] if name == "xtd200"
             else [f"{1000092795 + i}.jpg" for i in range(n_images)])
    for i, file in enumerate(names):
        _image(base / "images" / file, i)
    index = "test_image_names.txt" if name == "xtd200" else "filenames.txt"
    (base / index).write_text("\n".join(names) + "\n", encoding="utf-8")
    scripts = {"eng_Latn": "en", "zho_Hans": "zh", "jpn_Jpan": "ja", "arb_Arab": "ar", "deu_Latn": "de",
               "rus_Cyrl": "ru"}
    for code in FLORES200_CODES:
        lang = scripts.get(code)
        caps = [(CAPTIONS[lang][i % 3] if lang else f"{CAPTIONS['en'][i % 3]} ({code})") + f" {i}"
                for i in range(n_images)]
        (base / f"{code}.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
    return base


def make_fake_babel_imagenet(root: Path, labels=None, prompts=None) -> None:
    """ImageNet val folders for classes 0, 1, 2, 5 and 7 (two images each) and Babel-ImageNet's two files in their
    published format (``{"DE": [[class indices], [labels]]}``, ``{"DE": [templates with "{}"]}``) under
    ``<root>/babel_imagenet/``: German names classes 1, 2, 7, Chinese 0, 5, 7, 9 (9 has no images), Frisian has
    no translated templates."""
    from _fake_layouts_classic import put

    from clipbench.datasets.imagenet import imagenet_wnids

    wnids = imagenet_wnids()
    for c in (0, 1, 2, 5, 7):
        for i in range(2):
            put(root / "imagenet1k" / "val" / wnids[c] / f"ILSVRC2012_val_{c:05d}{i}.JPEG", c + i)
    labels = labels or {"EN": [list(range(1000)), [f"class {i}" for i in range(1000)]],
                        "DE": [[1, 2, 7], ["Goldfisch", "Weißer Hai", "Hahn"]],
                        "ZH": [[0, 5, 7, 9], ["丁鱥", "电鳐", "公鸡", "鸵鸟"]],
                        "FY": [[1, 2], ["goudfisk", "wite haai"]]}
    prompts = prompts or {"EN": ["a photo of a {}.", "a bad photo of the {}."], "DE": ["ein Foto von einem  {} ."],
                          "ZH": ["一张{}的照片。"]}
    folder = root / "babel_imagenet"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "babel_imagenet.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    (folder / "nllb_dist13b_prompts.json").write_text(json.dumps(prompts, ensure_ascii=False), encoding="utf-8")
