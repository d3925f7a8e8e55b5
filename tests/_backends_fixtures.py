"""Small random-weight CLIP models in open_clip and Hugging Face formats, for backend tests.

The architectures are real (ViT, ModifiedResNet, CLIP text transformer with the full 49408-token
vocabulary, so the real BPE tokenizers apply) but narrow and shallow, so tests stay fast.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

TINY_VIT = "cbtest-ViT-tiny-quickgelu"
TINY_RN = "cbtest-RN-tiny-quickgelu"
TINY_VIT_GELU = "cbtest-ViT-tiny"  # same shapes as TINY_VIT, plain GELU (like open_clip's "ViT-B-16")

_TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2}
_ARCHS = {
    TINY_VIT: {
        "embed_dim": 64,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16},
        "text_cfg": _TEXT_CFG,
    },
    TINY_VIT_GELU: {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16},
        "text_cfg": _TEXT_CFG,
    },
    TINY_RN: {
        "embed_dim": 64,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
        "text_cfg": _TEXT_CFG,
    },
}


def register_tiny_openclip_archs(config_dir: Path) -> None:
    """Make the tiny architectures known to open_clip (its config registry is process-global)."""
    import open_clip

    config_dir.mkdir(parents=True, exist_ok=True)
    for name, cfg in _ARCHS.items():
        if open_clip.get_model_config(name) is None:
            path = config_dir / f"{name}.json"
            path.write_text(json.dumps(cfg))
            open_clip.add_model_config(path)


def make_openclip_checkpoint(arch: str, path: Path, seed: int = 0) -> Path:
    """Random weights for ``arch`` saved as a plain state dict (OpenAI key names)."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    with torch.no_grad():  # random but not degenerate: logit scale and BN stats as a trained model has
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    torch.save(model.state_dict(), path)
    return path


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| relative to max |b|: the tolerance measure for "same features"."""
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12))


def _bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def write_clip_tokenizer_files(directory: Path) -> None:
    """vocab.json + merges.txt equal to OpenAI CLIP's BPE (built from open_clip's bundled merges)."""
    import open_clip.tokenizer as oc_tok

    with gzip.open(oc_tok.default_bpe(), "rt", encoding="utf-8") as fh:
        merges = fh.read().split("\n")[1 : 49152 - 256 - 2 + 1]
    merge_pairs = [tuple(m.split()) for m in merges]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(p) for p in merge_pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def make_hf_clip_dir(directory: Path, seed: int = 0, hidden_act: str = "quick_gelu", image_size: int = 64) -> Path:
    """A tiny random transformers CLIPModel + tokenizer + image processor saved with save_pretrained."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, hidden_act=hidden_act,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
        vision_config=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=16, hidden_act=hidden_act),
        projection_dim=64,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    model.save_pretrained(directory)
    write_clip_tokenizer_files(directory)
    tokenizer = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token="<|endoftext|>")
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(directory)
    processor = CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    processor.save_pretrained(directory)
    return directory


def random_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    # smooth-ish content so resampling differences would show but nothing is pure noise
    base = rng.integers(0, 256, size=(max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    img = Image.fromarray(base, "RGB").resize((width, height), Image.BILINEAR)
    return img.convert(mode)
