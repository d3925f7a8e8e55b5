"""The checkpoints clipbench knows by name: where each comes from and the SHA-256 it must have.

Two kinds of entry, one type:
  * downloaded: ``url`` + ``sha256`` (OpenAI puts the file's SHA-256 in its URL path), fetched
    into the cache dir by ``clipbench.models.download``;
  * packaged: ``package_file`` (a path inside the installed ``clipbench`` package) + ``sha256``.

Architecture facts (resolution, embed dim, family, parameter count) are recorded for listings;
loading never trusts them, it reads the architecture off the checkpoint's tensor shapes.
GFLOPs: image tower, one image at the model's resolution, from open_clip's docs/model_profile.csv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

_SHA256 = re.compile(r"[0-9a-f]{64}")
_OPENAI_BASE = "https://openaipublic.azureedge.net/clip/models"


@dataclass(frozen=True)
class CheckpointInfo:
    """One named checkpoint. Exactly one of ``url`` and ``package_file`` is set."""

    name: str
    sha256: str
    url: str | None = None
    #: path relative to the ``clipbench`` package directory, e.g. "models/data/tiny.pt"
    package_file: str | None = None
    aliases: tuple[str, ...] = ()
    resolution: int | None = None
    embed_dim: int | None = None
    family: str | None = None
    params: int | None = None
    image_gflops: float | None = None

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"checkpoint {self.name!r}: sha256 must be 64 lower-case hex digits")
        if (self.url is None) == (self.package_file is None):
            raise ValueError(f"checkpoint {self.name!r}: give exactly one of url and package_file")

    @classmethod
    def packaged(cls, name: str, package_file: str, sha256: str, **facts: object) -> CheckpointInfo:
        """A checkpoint shipped inside the package (no download): ``CheckpointInfo.packaged("x", "models/data/x.pt", "<sha>")``."""
        return cls(name=name, sha256=sha256, package_file=package_file, **facts)  # type: ignore[arg-type]

    @property
    def filename(self) -> str:
        """File name in the cache (downloaded) or in the package (packaged)."""
        if self.url is not None:
            return Path(urlparse(self.url).path).name
        return Path(self.package_file or "").name

    def package_path(self) -> Path:
        """Where a packaged checkpoint lies on disk."""
        if self.package_file is None:
            raise ValueError(f"checkpoint {self.name!r} is downloaded, not packaged")
        return Path(str(resources.files("clipbench").joinpath(self.package_file)))


def _openai(
    name: str,
    sha256: str,
    file_stem: str,
    *,
    aliases: tuple[str, ...],
    resolution: int,
    embed_dim: int,
    params: int,
    image_gflops: float,
) -> CheckpointInfo:
    return CheckpointInfo(
        name=name,
        sha256=sha256,
        url=f"{_OPENAI_BASE}/{sha256}/{file_stem}.pt",
        aliases=aliases,
        resolution=resolution,
        embed_dim=embed_dim,
        family="ViT" if name.startswith("ViT") else "ResNet",
        params=params,
        image_gflops=image_gflops,
    )


#: OpenAI's nine released CLIP checkpoints (URLs as listed in openai/CLIP clip/clip.py). Aliases add
#: spellings the registry's case/separator folding does not already cover ("ViT-B-16", "vit_b_16"
#: and "vit-b-16" all fold to "ViT-B/16").
OPENAI_CHECKPOINTS: tuple[CheckpointInfo, ...] = (
    _openai(
        "RN50", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762", "RN50",
        aliases=("resnet50",), resolution=224, embed_dim=1024, params=102_007_137, image_gflops=12.22,
    ),
    _openai(
        "RN101", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599", "RN101",
        aliases=("resnet101",), resolution=224, embed_dim=512, params=119_688_033, image_gflops=19.54,
    ),
    _openai(
        "RN50x4", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd", "RN50x4",
        aliases=("resnet50x4",), resolution=288, embed_dim=640, params=178_300_601, image_gflops=42.56,
    ),
    _openai(
        "RN50x16", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa", "RN50x16",
        aliases=("resnet50x16",), resolution=384, embed_dim=768, params=290_979_217, image_gflops=149.39,
    ),
    _openai(
        "RN50x64", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c", "RN50x64",
        aliases=("resnet50x64",), resolution=448, embed_dim=1024, params=623_258_305, image_gflops=529.11,
    ),
    _openai(
        "ViT-B/32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32",
        aliases=("vit-b32",), resolution=224, embed_dim=512, params=151_277_313, image_gflops=8.82,
    ),
    _openai(
        "ViT-B/16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16",
        aliases=("vit-b16",), resolution=224, embed_dim=512, params=149_620_737, image_gflops=35.13,
    ),
    _openai(
        "ViT-L/14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14",
        aliases=("vit-l14",), resolution=224, embed_dim=768, params=427_616_513, image_gflops=162.03,
    ),
    _openai(
        "ViT-L/14@336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px",
        aliases=("ViT-L-14-336px", "ViT-L-14-336", "vit-l14@336px"), resolution=336, embed_dim=768,
        params=427_944_193, image_gflops=381.92,
    ),
)

#: Checkpoints shipped as package data; add one line per file, e.g.
#: ``CheckpointInfo.packaged("clipbench-tiny", "models/data/clipbench-tiny.pt", sha256="...")``.
PACKAGED_CHECKPOINTS: tuple[CheckpointInfo, ...] = (
    CheckpointInfo.packaged(
        "clipbench-tiny", "assets/clipbench-tiny.pt",
        sha256="3b5c882679a43326c3946f7cacde6777960cee006cfd16184fb0002349d393ec",
        resolution=32, embed_dim=64, family="ViT", params=3_382_849,
    ),
    CheckpointInfo.packaged(
        "clipbench-shapes", "assets/clipbench-shapes.pt",
        sha256="df63c9b916eb72fc122dbe6c40e7cd237744a281fd2c9ed4c6c93475cb2edad8",
        resolution=32, embed_dim=64, family="ViT", params=3_382_849,
    ),
)
