"""`--decode gpu`: PIL's resize reproduced on tensors, the engine path (on the CPU, through the test hook), its errors.

No GPU here: nvjpeg itself never runs in this suite. On the CPU the pipeline decodes with
libjpeg-turbo through torchvision.io, the decoder PIL uses, so these tests pin everything but
nvjpeg's own IDCT: the pass order and rounding of the resize, the crop, the normalisation, the
JPEG / non-JPEG routing, the cache key, the record and the one-line errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeModel, write_tiny_clip
from PIL import Image, ImageFilter

from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.datasets.images import open_rgb, read_bytes
from clipbench.features import FeatureStore, extract_features
from clipbench.features.image_pipeline import ENV_DECODE_ON_CPU, GpuPipeline, clip_resize_crop, image_pipeline
from clipbench.foundations.errors import ClipbenchError, DataError
from clipbench.models import load_model
from clipbench.models.preprocess import CLIP_STD, clip_preprocess
from clipbench.results.records import read_records

#: landscape, portrait, over twice as tall as wide (Pillow reduces it vertically first), upscaled, exact size
SIZES = [(300, 225), (225, 300), (90, 260), (70, 50), (224, 300)]


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(2))


def level_differences(ours: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """|difference| in 8-bit levels of two CLIP-normalised images."""
    return ((ours - reference) * torch.tensor(CLIP_STD).view(3, 1, 1) * 255).abs()


@pytest.mark.parametrize("resolution", [32, 224])
def test_the_resize_is_pils_to_within_one_level(resolution):
    pipeline = GpuPipeline(resolution, "cpu")
    for seed, size in enumerate(SIZES):
        image = photo(size, seed)
        ours = pipeline.to_device([pipeline.transform(image)], torch.device("cpu"))[0]
        levels = level_differences(ours, clip_preprocess(resolution)(image))
        assert ours.shape == (3, resolution, resolution)
        assert levels.max() < 1.01 and (levels > 0.5).float().mean() < 2e-3, (size, resolution)


def test_the_pass_order_follows_the_installed_pillow():
    """A tall image resized in the other order differs in ~10% of values: the order is chosen, not luck."""
    image = photo((90, 260), 7)
    pixels = torch.from_numpy(np.asarray(image)).permute(2, 0, 1)
    reference = torch.from_numpy(np.asarray(image.resize((32, 92), Image.BICUBIC))).permute(2, 0, 1).float()
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    horizontal_first = pixels.float()
    for size in ((260, 32), (92, 32)):
        horizontal_first = F.resize(horizontal_first, list(size), interpolation=InterpolationMode.BICUBIC,
                                    antialias=True).round().clamp(0, 255)
    chosen = clip_resize_crop(pixels, 32)  # the centre 32 of the 92 rows
    top = 30
    assert (chosen != reference[:, top:top + 32]).float().mean() < 2e-3
    assert (horizontal_first[:, top:top + 32] != reference[:, top:top + 32]).float().mean() > 0.02


def test_jpegs_travel_encoded_and_decode_to_pils_pixels(tmp_path):
    pipeline = GpuPipeline(32, "cpu")
    jpeg, png = tmp_path / "a.jpg", tmp_path / "b.png"
    photo((120, 90), 1).save(jpeg, quality=85)
    photo((120, 90), 2).convert("L").save(png)
    samples = [pipeline.transform.from_encoded(read_bytes(p), str(p), lambda p=p: open_rgb(p)) for p in (jpeg, png)]
    assert [s.kind for s in samples] == ["jpeg", "pixels"]
    decoded = pipeline._decoded(samples, torch.device("cpu"))
    for image, path in zip(decoded, (jpeg, png), strict=True):  # libjpeg-turbo = PIL's decoder; PNG decoded by PIL itself
        assert torch.equal(image, torch.from_numpy(np.asarray(open_rgb(path))).permute(2, 0, 1))


def test_decode_gpu_through_the_engine(tmp_path, monkeypatch):
    """Own cache entry and preprocess id, the record says so, workers included; features within 1e-3 of PIL's."""
    monkeypatch.setenv(ENV_DECODE_ON_CPU, "1")
    folder = tmp_path / "data"
    for c, name in enumerate(("cat", "dog", "red_fox")):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            photo(SIZES[(c + i) % len(SIZES)], 10 * c + i).save(folder / name / f"{i}.jpg", quality=90)
    photo((64, 48), 99).save(folder / "dog" / "9.png")
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    records = {}
    for decode, workers in (("pil", "0"), ("gpu", "1")):
        res = tmp_path / f"res-{decode}"
        assert main(["run", "--model", str(ckpt), "--suite", "zeroshot", "--dataset", f"folder:{folder}",
                     "--device", "cpu", "--no-progress", "--bootstrap", "0", "--workers", workers, "--decode", decode,
                     "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(res)]) == 0
        (records[decode],) = read_records(res)
    pil, gpu = records["pil"], records["gpu"]
    assert gpu["preprocess_id"] == pil["preprocess_id"] + ":decode-libjpeg-turbo:resize-torch-twopass-cpu"
    assert gpu["extraction"]["decode"] == "gpu" and pil["extraction"]["decode"] == "pil"
    model, split = load_model(ckpt), get_dataset(f"folder:{folder}").load_split("test")
    store = FeatureStore(tmp_path / "cache" / "features")
    feats = {d: extract_features(model, split, store, decode=d, progress=False).features for d in ("pil", "gpu")}
    assert len(list((tmp_path / "cache" / "features").glob("*/manifest.json"))) == 2
    a, b = feats["pil"], feats["gpu"]
    assert not np.array_equal(a, b) and np.abs(a - b).max() <= 1e-3 * np.abs(a).max()


def test_decode_gpu_needs_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ENV_DECODE_ON_CPU, raising=False)
    code = main(["run", "--suite", "smoke", "--device", "cpu", "--decode", "gpu", "--results-dir", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--decode gpu decodes and resizes on a CUDA device" in err


def test_decode_gpu_refuses_other_preprocessing_and_unreadable_jpegs(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DECODE_ON_CPU, "1")
    with pytest.raises(ClipbenchError, match="reproduces CLIP's own preprocessing"):
        image_pipeline(FakeModel(), "gpu")
    bad = tmp_path / "data" / "cat" / "0.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # JPEG magic, no image
    (tmp_path / "data" / "dog").mkdir()
    photo((40, 40), 0).save(tmp_path / "data" / "dog" / "1.jpg")
    model = load_model(write_tiny_clip(tmp_path / "tiny.pt"))
    split = get_dataset(f"folder:{tmp_path / 'data'}").load_split("test")
    with pytest.raises(DataError, match=r"corrupt image .*0\.jpg"):
        extract_features(model, split, FeatureStore(tmp_path / "f"), decode="gpu", progress=False)


def test_wds_shards_hand_their_jpeg_bytes_to_the_device_decoder(tmp_path, monkeypatch):
    """`wds:` samples go through the same encoded path as files: the folder's features under --decode gpu."""
    import webdataset as wds

    monkeypatch.setenv(ENV_DECODE_ON_CPU, "1")
    folder = tmp_path / "data"
    items = []
    for label, name in enumerate(("cat", "dog")):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            path = folder / name / f"{i}.jpg"
            photo(SIZES[(label + i) % len(SIZES)], 20 * label + i).save(path, quality=90)
            items.append((f"{name}/{i}", label, path))
    (tmp_path / "classnames.txt").write_text("cat\ndog\n")
    with wds.TarWriter(str(tmp_path / "val-000000.tar")) as sink:
        for key, label, path in items:
            sink.write({"__key__": key, "jpg": path.read_bytes(), "cls": str(label).encode()})
    model = load_model(write_tiny_clip(tmp_path / "tiny.pt"))
    feats = {}
    for spec in (f"wds:{tmp_path / 'val-000000.tar'}", f"folder:{folder}"):
        split = get_dataset(spec).load_split("test")
        assert split.torch_dataset(GpuPipeline(32, "cpu").transform)[0][0].kind == "jpeg"
        feats[spec[:3]] = extract_features(model, split, FeatureStore(tmp_path / spec[:3]), decode="gpu",
                                           progress=False).features
    np.testing.assert_array_equal(feats["wds"], feats["fol"])


def test_jpegs_for_the_device_decoder_get_pils_decompression_bomb_check(tmp_path, monkeypatch, caplog):
    """A JPEG nvjpeg would decode is checked against PIL's pixel limit first (header only): refused over
    twice the limit and logged once over it, as on the reference path."""
    from clipbench.datasets import images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    monkeypatch.setattr(images, "_large_image_logged", False)
    path = tmp_path / "big.jpg"
    photo((120, 100), 3).save(path, quality=80)  # 12,000 pixels
    transform = GpuPipeline(32, "cpu").transform
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "5000")
    for reference in (False, True):
        with pytest.raises(DataError, match=r"big\.jpg is too large: 12,000 pixels .*decompression-bomb"):
            open_rgb(path) if reference else transform.from_encoded(read_bytes(path), str(path), lambda: open_rgb(path))
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "10000")
    with caplog.at_level("WARNING", logger="clipbench"):
        sample = transform.from_encoded(read_bytes(path), str(path), lambda: open_rgb(path))
        transform.from_encoded(read_bytes(path), str(path), lambda: open_rgb(path))
    assert sample.kind == "jpeg"
    assert sum("large image" in r.getMessage() for r in caplog.records) == 1 and "12,000 pixels" in caplog.text
