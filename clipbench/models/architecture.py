"""CLIP as an ``nn.Module`` whose parameter names are OpenAI's checkpoint keys.

Two image towers (the modified ResNet and the vision transformer) and one text transformer. The
module tree mirrors OpenAI's so that ``load_state_dict`` takes their files unchanged
(``visual.layer1.0.conv1.weight``, ``transformer.resblocks.3.attn.in_proj_weight``, ...), but the
computation is written for inference speed on CPU:

* attention runs batch-first through ``F.scaled_dot_product_attention`` (one fused kernel);
* the text causal mask is the kernel's ``is_causal`` flag, not a materialised [77, 77] matrix;
* the text tower only runs up to the last end-of-text token of the batch: with a causal mask a
  token never sees later positions, so the padding after it cannot change the pooled feature;
* the ResNet attention pool computes attention for the one query it returns (the mean token).

Pre-projection image features (``encode_image(x, projected=False)``):
  * ViT: ``ln_post`` of the class token, before ``proj`` (``I_f`` in the CLIP paper's Figure 3,
    what the paper's ViT linear probes used);
  * ResNet: the attention-pool output before its output projection ``attnpool.c_proj`` (the
    multi-head attention result of the mean token, width ``32 * vision_width``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClipConfig:
    """Every hyperparameter of an OpenAI CLIP model (names follow ``clip.model.CLIP``'s arguments)."""

    embed_dim: int
    image_resolution: int
    #: an int (ViT depth) or four per-stage block counts (ResNet)
    vision_layers: int | tuple[int, int, int, int]
    vision_width: int
    #: None for ResNets
    vision_patch_size: int | None
    context_length: int
    vocab_size: int
    transformer_width: int
    transformer_heads: int
    transformer_layers: int

    @property
    def family(self) -> str:
        return "ResNet" if isinstance(self.vision_layers, tuple) else "ViT"

    @property
    def vision_heads(self) -> int:
        """OpenAI fixes the head width at 64 channels (the ResNet pool works on 32 * width channels)."""
        if self.family == "ResNet":
            return self.vision_width * 32 // 64
        return self.vision_width // 64


class QuickGELU(nn.Module):
    """The sigmoid approximation of GELU that OpenAI trained with (not ``nn.GELU``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the activation dtype (as OpenAI's fp16 models expect)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return super().forward(x)
        return super().forward(x.float()).to(x.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention, batch-first, holding ``nn.MultiheadAttention``'s parameter names."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [N, heads, L, head_dim]
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, width))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)); x + mlp(ln_2(x)), MLP ratio 4 with QuickGELU."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = SelfAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(width, width * 4)),
                    ("gelu", QuickGELU()),
                    ("c_proj", nn.Linear(width * 4, width)),
                ]
            )
        )
        self.ln_2 = LayerNorm(width)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal=causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of blocks; ``causal`` selects the text tower's autoregressive mask."""

    def __init__(self, width: int, layers: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        self.width = width
        self.causal = causal
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, causal=self.causal)
        return x


class Bottleneck(nn.Module):
    """ResNet bottleneck whose stride is an average pool after the 3x3 conv (anti-aliased)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.downsample: nn.Sequential | None = None
        if stride > 1 or inplanes != out_planes:
            # key names "downsample.0" / "downsample.1" are OpenAI's; "-1" is their parameter-free pool
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity()),
                        ("0", nn.Conv2d(inplanes, out_planes, 1, bias=False)),
                        ("1", nn.BatchNorm2d(out_planes)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity, inplace=True)


def _building_on_meta() -> bool:
    """Whether modules are being created under ``torch.device("meta")`` (``models.build.build_model``)."""
    return torch.empty(()).is_meta


def _random(shape: tuple[int, ...], scaled) -> nn.Parameter:
    """A parameter ``scaled(torch.randn(shape))`` as OpenAI's code initialises it, or, on the meta device,
    only its shape: the checkpoint's tensors are assigned into it there, and torch runs meta ``randn``
    through Python references whose first use imports ``torch._dynamo`` (about a second of every model
    load)."""
    return nn.Parameter(torch.empty(shape) if _building_on_meta() else scaled(torch.randn(shape)))


class AttentionPool2d(nn.Module):
    """Pools a feature map with one attention query: the mean of the map (plus position)."""

    def __init__(self, spatial_dim: int, width: int, heads: int, output_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.positional_embedding = _random((spatial_dim**2 + 1, width), lambda x: x / width**0.5)
        self.k_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, output_dim)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] -> attention output of the mean token, before ``c_proj``: [N, C]."""
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [N, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        head_dim = c // self.heads
        q = self.q_proj(tokens[:, :1]).view(n, 1, self.heads, head_dim).transpose(1, 2)
        k = self.k_proj(tokens).view(n, -1, self.heads, head_dim).transpose(1, 2)
        v = self.v_proj(tokens).view(n, -1, self.heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # [N, heads, 1, head_dim]
        return out.reshape(n, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.pool(x))


class ModifiedResNet(nn.Module):
    """OpenAI's ResNet: 3-conv stem with average pool, anti-aliased strides, attention pooling."""

    def __init__(
        self, layers: tuple[int, int, int, int], output_dim: int, heads: int, input_resolution: int, width: int
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        half = width // 2
        self.conv1 = nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        stages = []
        for index, blocks in enumerate(layers):
            planes = width * 2**index
            stride = 1 if index == 0 else 2
            stage = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.conv1.weight.dtype)
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = F.relu(self.bn2(self.conv2(x)), inplace=True)
        x = F.relu(self.bn3(self.conv3(x)), inplace=True)
        x = self.avgpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor, projected: bool = True) -> torch.Tensor:
        pooled = self.attnpool.pool(self.trunk(x))
        return self.attnpool.c_proj(pooled) if projected else pooled


class VisionTransformer(nn.Module):
    """ViT: patch conv, class token, learned positions, ln_pre, blocks, ln_post on the class token, proj."""

    def __init__(
        self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int, output_dim: int
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        grid = input_resolution // patch_size
        self.class_embedding = _random((width,), lambda x: scale * x)
        self.positional_embedding = _random((grid**2 + 1, width), lambda x: scale * x)
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = _random((width, output_dim), lambda x: scale * x)

    def forward(self, x: torch.Tensor, projected: bool = True) -> torch.Tensor:
        x = self.conv1(x.to(self.conv1.weight.dtype)).flatten(2).transpose(1, 2)  # [N, grid**2, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        features = self.ln_post(x[:, 0])
        return features @ self.proj if projected else features


class CLIP(nn.Module):
    """Image tower + text tower + learned temperature, laid out like OpenAI's checkpoints."""

    def __init__(self, config: ClipConfig) -> None:
        super().__init__()
        self.config = config
        if config.family == "ResNet":
            self.visual: nn.Module = ModifiedResNet(
                layers=config.vision_layers,  # type: ignore[arg-type]
                output_dim=config.embed_dim,
                heads=config.vision_heads,
                input_resolution=config.image_resolution,
                width=config.vision_width,
            )
        else:
            if config.vision_patch_size is None:
                raise ValueError("a ViT config needs vision_patch_size")
            self.visual = VisionTransformer(
                input_resolution=config.image_resolution,
                patch_size=config.vision_patch_size,
                width=config.vision_width,
                layers=config.vision_layers,  # type: ignore[arg-type]
                heads=config.vision_heads,
                output_dim=config.embed_dim,
            )
        width = config.transformer_width
        self.transformer = Transformer(width, config.transformer_layers, config.transformer_heads, causal=True)
        meta = _building_on_meta()
        self.token_embedding = nn.Embedding(config.vocab_size, width,
                                            _weight=torch.empty(config.vocab_size, width) if meta else None)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, width))
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, config.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(0.0))
        if not meta:
            nn.init.normal_(self.positional_embedding, std=0.01)
            nn.init.normal_(self.text_projection, std=width**-0.5)

    @property
    def dtype(self) -> torch.dtype:
        return self.token_embedding.weight.dtype

    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        return self.visual(images.to(self.dtype), projected=projected)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.to(self.token_embedding.weight.device)
        eot = tokens.argmax(dim=-1)  # end-of-text has the largest id in CLIP's vocabulary
        length = int(eot.max()) + 1 if tokens.numel() else tokens.shape[-1]
        x = self.token_embedding(tokens[:, :length]) + self.positional_embedding[:length].to(self.dtype)
        x = self.transformer(x)
        pooled = self.ln_final(x[torch.arange(x.shape[0], device=x.device), eot])
        return pooled @ self.text_projection

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled cosine-similarity logits (image x text, text x image), as in OpenAI's model."""
        image = F.normalize(self.encode_image(images), dim=-1)
        text = F.normalize(self.encode_text(tokens), dim=-1)
        logits = self.logit_scale.exp() * image @ text.t()
        return logits, logits.t()
