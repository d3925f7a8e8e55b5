"""Train ``clipbench-tiny``: a small CLIP learned from scratch on the digits shipped with scikit-learn.

Why it exists: pretrained CLIP weights and public datasets cannot be downloaded on an offline
machine, yet the first command a user runs and every CI run need a real model on real data. This
trains one with CLIP's own recipe, small enough to ship inside the package:

* architecture: ``clipbench.models.architecture.CLIP`` (the same code that runs OpenAI's
  checkpoints), a 2-layer ViT (32 px input, 4 px patches) and a 2-layer text transformer, width 64
  (one 64-channel head, OpenAI's convention), OpenAI's 49408-token vocabulary and 77-token context
  so ``clipbench.tokenize`` and the ordinary loader work unchanged;
* data: the digits adapter's *train* split (the smoke suite scores the test split, never seen
  here), pixels through the model's own preprocessing (``clip_preprocess(32)``), optionally
  randomly shifted (``max_shift``; off in the shipped recipe);
* captions: each image is paired with one of the digits adapter's prompts for its class, chosen at
  random ("a photo of the number seven.", ...);
* loss: the symmetric cross-entropy over the batch's image-text cosine-similarity matrix with a
  learned temperature (``logit_scale``, initialised at ln(1/0.07), clamped at ln 100), as in the
  CLIP paper; AdamW, linear warm-up then cosine decay;
* determinism: one seeded generator drives initialisation, shuffling, captions and shifts; the run
  uses deterministic kernels and a fixed thread count, so the same seed gives the same weights.

The result is written as an OpenAI-format state dict in fp16 (like OpenAI's released files).

The same code trains ``clipbench-shapes`` (``--dataset shapes``, ``RECIPES["shapes"]``) on the train
split of clipbench's generated shapes set: there every image is its own group whose captions are
its three captions (one drawn per image per step), 8 epochs of batch 64 on one thread (256 steps,
about 23 s of CPU; one thread because two threads on a busy machine spin far more than they gain).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import atomic_write_bytes, sha256_bytes
from clipbench.foundations.progress import progress_bar
from clipbench.models.architecture import CLIP, ClipConfig
from clipbench.models.preprocess import clip_preprocess
from clipbench.models.tokenizer import tokenize
from clipbench.training.settings import (  # noqa: F401  (re-exported: the settings live torch-free)
    RECIPES,
    SHAPES_EPOCHS,
    TRAIN_DATASET,
    TRAIN_DATASETS,
    TrainSettings,
    recipe,
    settings_with,
)

log = logging.getLogger(__name__)

#: The architecture of ``clipbench-tiny`` (about 3.4 M parameters, 6.8 MB in fp16; the 49408 x 64
#: token embedding is most of it).
TINY_CONFIG = ClipConfig(
    embed_dim=64,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=4,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=2,
)

@dataclass
class TrainResult:
    """The trained weights (fp16 OpenAI-format state dict) and how the loss went."""

    state_dict: dict[str, torch.Tensor]
    settings: TrainSettings
    steps: int
    epoch_losses: list[float]


@contextlib.contextmanager
def deterministic_cpu(threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for the duration, restoring the caller's settings."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_deterministic, warn_only=old_warn_only)
        torch.set_num_threads(old_threads)


def init_parameters(model: CLIP, generator: torch.Generator) -> None:
    """OpenAI's initialisation for a CLIP trained from scratch, drawn from ``generator``.

    ``CLIP``'s constructor only allocates (it is built to receive checkpoints), so every tensor is
    set here: normal(0.02) token embedding, normal(0.01) text positions, width^-0.5 scaled ViT
    embeddings and projections, depth-scaled residual projections, unit LayerNorms, zero biases
    and a temperature of 0.07.
    """

    def normal_(tensor: torch.Tensor, std: float) -> None:
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

    cfg = model.config
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".bias") or name.endswith("in_proj_bias"):
                param.zero_()
            elif ".ln_" in name or name.startswith(("ln_final", "visual.ln_")):
                param.fill_(1.0)
        normal_(model.token_embedding.weight, 0.02)
        normal_(model.positional_embedding, 0.01)
        normal_(model.text_projection, cfg.transformer_width**-0.5)
        model.logit_scale.fill_(math.log(1 / 0.07))

        visual = model.visual
        scale = cfg.vision_width**-0.5
        normal_(visual.conv1.weight, (3 * cfg.vision_patch_size**2) ** -0.5)
        normal_(visual.class_embedding, scale)
        normal_(visual.positional_embedding, scale)
        normal_(visual.proj, scale)

        for tower in (model.transformer, visual.transformer):
            width, layers = tower.width, len(tower.resblocks)
            proj_std = width**-0.5 * (2 * layers) ** -0.5
            for block in tower.resblocks:
                normal_(block.attn.in_proj_weight, width**-0.5)
                normal_(block.attn.out_proj.weight, proj_std)
                normal_(block.mlp.c_fc.weight, (2 * width) ** -0.5)
                normal_(block.mlp.c_proj.weight, proj_std)


def _parameter_groups(model: CLIP, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: not on embeddings, gains, biases or the temperature (as in CLIP)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = param.ndim >= 2 and "embedding" not in name
        (decay if is_matrix else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def load_training_data(data_root: str | os.PathLike | None = None, dataset: str = TRAIN_DATASET
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images [N, 3, R, R] preprocessed, labels [N], caption tokens [groups, captions, 77]) of ``dataset``'s train split.

    digits: a label is a class and its group the class's prompts. shapes (image-text): every image is
    its own group (label i = image i) and its captions are the group.
    """
    from clipbench.datasets import get_dataset
    from clipbench.foundations.config import resolve_data_root

    if dataset not in TRAIN_DATASETS:
        raise ClipbenchError(f"train-tiny: unknown dataset {dataset!r}; expected one of {', '.join(TRAIN_DATASETS)}")
    adapter = get_dataset(dataset)
    split = adapter.load_split("train", resolve_data_root(data_root))
    items = split.torch_dataset(clip_preprocess(TINY_CONFIG.image_resolution))
    images = torch.stack([items[i][0] for i in range(len(items))])
    labels = torch.as_tensor(split.labels, dtype=torch.long)
    prompts = split.captions if getattr(adapter, "kind", "classification") == "image_text" else adapter.class_prompts()
    per_class = {len(p) for p in prompts}
    if len(per_class) != 1:
        raise ClipbenchError(f"{dataset}: every class needs the same number of prompts, got {sorted(per_class)}")
    flat = [text for class_prompts in prompts for text in class_prompts]
    tokens = tokenize(flat, context_length=TINY_CONFIG.context_length).view(len(prompts), -1, TINY_CONFIG.context_length)
    return images, labels, tokens


def _shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random offset in [-max_shift, max_shift]^2, repeating the border."""
    if max_shift == 0:
        return images
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)])


def compact_vocabulary(embedding: torch.nn.Embedding, used: torch.Tensor, tokens: torch.Tensor
                       ) -> tuple[torch.nn.Embedding, torch.Tensor]:
    """The rows of ``embedding`` that ``tokens`` use (``used``: their sorted ids) as their own table, and
    ``tokens`` renumbered into it. Why: the captions use a few hundred of the 49,408 tokens, and AdamW
    spent most of each step on rows whose gradient is always zero (no weight decay on embeddings, so
    they never move: their update is exactly 0). The renumbering keeps the order of ids, so the
    end-of-text token is still each caption's largest id, and the used rows see the same arithmetic:
    the trained weights are the bytes the full table gives (tests/models/test_tiny_training.py)."""
    compact = torch.nn.Embedding(len(used), embedding.embedding_dim, dtype=embedding.weight.dtype)
    with torch.no_grad():
        compact.weight.copy_(embedding.weight[used])
    return compact, torch.searchsorted(used, tokens)


def contrastive_loss(model: CLIP, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy: image i should pick caption i among the batch, and vice versa."""
    logits_per_image, logits_per_text = model(images, tokens)
    targets = torch.arange(images.shape[0])
    return (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets)) / 2


def train(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_tokens: torch.Tensor,
    settings: TrainSettings = TrainSettings(),
    config: ClipConfig = TINY_CONFIG,
    progress: bool = True,
    full_vocabulary: bool = False,
) -> TrainResult:
    """Train a CLIP of ``config`` on (images, labels) with captions drawn from ``class_tokens``.
    ``full_vocabulary``: update the whole token table every step (slower, the same bytes: ``compact_vocabulary``)."""
    with deterministic_cpu(settings.threads):
        generator = torch.Generator().manual_seed(settings.seed)
        model = CLIP(config)
        init_parameters(model, generator)
        full_embedding, used_tokens = model.token_embedding, torch.unique(class_tokens)
        if not full_vocabulary:
            model.token_embedding, class_tokens = compact_vocabulary(full_embedding, used_tokens, class_tokens)
        model.train()
        # foreach: the multi-tensor update, 13% faster on the CPU and bit-identical to the per-tensor loop
        # (the shipped checkpoints retrain to the same bytes); not fused, whose arithmetic differs
        optimizer = torch.optim.AdamW(
            _parameter_groups(model, settings.weight_decay), lr=settings.lr, betas=(0.9, 0.98), eps=1e-6,
            foreach=True,
        )
        n = images.shape[0]
        steps_per_epoch = math.ceil(n / settings.batch_size)
        total = steps_per_epoch * settings.epochs
        if settings.max_steps is not None:
            total = min(total, settings.max_steps)
        warmup = max(1, min(settings.warmup_epochs * steps_per_epoch, total))

        def lr_factor(step: int) -> float:
            return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / total))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        max_log_scale = math.log(100)
        epoch_losses: list[float] = []
        step = 0
        with progress_bar(total=total, desc="train-tiny", unit="step", disable=not progress) as bar:
            while step < total:
                order = torch.randperm(n, generator=generator)
                losses = []
                for start in range(0, n, settings.batch_size):
                    if step >= total:
                        break
                    batch = order[start : start + settings.batch_size]
                    batch_labels = labels[batch]
                    prompt = torch.randint(class_tokens.shape[1], (len(batch),), generator=generator)
                    batch_images = _shift(images[batch], settings.max_shift, generator)
                    loss = contrastive_loss(model, batch_images, class_tokens[batch_labels, prompt])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    with torch.no_grad():
                        model.logit_scale.clamp_(0, max_log_scale)
                    losses.append(loss.item())
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                epoch_losses.append(sum(losses) / len(losses))
                log.info("epoch %d: mean loss %.4f", len(epoch_losses), epoch_losses[-1])
        if not full_vocabulary:
            with torch.no_grad():
                full_embedding.weight[used_tokens] = model.token_embedding.weight
            model.token_embedding = full_embedding
    state_dict = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    return TrainResult(state_dict=state_dict, settings=settings, steps=step, epoch_losses=epoch_losses)


def checkpoint_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    """The ``torch.save`` archive of ``state_dict``; the same tensors always give the same bytes."""
    buffer = io.BytesIO()
    torch.save(dict(state_dict), buffer)
    return buffer.getvalue()


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> str:
    """Write ``state_dict`` atomically to ``path``; returns the file's SHA-256."""
    data = checkpoint_bytes(state_dict)
    atomic_write_bytes(Path(path), data)
    return sha256_bytes(data)


def train_tiny(
    out: str | os.PathLike | None = None,
    settings: TrainSettings | None = None,
    data_root: str | os.PathLike | None = None,
    progress: bool = True,
    dataset: str = TRAIN_DATASET,
) -> tuple[TrainResult, str | None]:
    """Train a tiny CLIP on ``dataset``'s train split (``clipbench-tiny``: digits, ``clipbench-shapes``: shapes)
    with that dataset's recipe unless ``settings`` are given; write it to ``out`` if given. Returns (result, sha256)."""
    settings = settings if settings is not None else recipe(dataset)
    images, labels, tokens = load_training_data(data_root, dataset)
    log.info("training on %d %s images, %d captions per group", len(labels), dataset, tokens.shape[1])
    result = train(images, labels, tokens, settings, progress=progress)
    sha = save_checkpoint(result.state_dict, out) if out is not None else None
    return result, sha

