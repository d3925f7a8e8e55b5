"""``clipbench.clip``: OpenAI's ``clip`` API on clipbench models.

CLIP's README examples (zero-shot "top predictions" and the scikit-learn linear probe) run with
``import clip`` changed to ``from clipbench import clip`` (and the model name, as ViT-B/32 cannot be
downloaded here), against a fake CIFAR-100 in its real on-disk format (``cifar-100-python/`` with
pickled ``train``/``test``/``meta``, read by torchvision's ``CIFAR100``; only torchvision's MD5 table
is pointed at the fake files). With clipbench-tiny they must agree with clipbench's own engine;
with a random-weight real-size ViT-B/32 the same example under the reference ``clip`` package must
give the same numbers (1e-5 relative).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from _backends_fixtures import (
    TINY_VIT,
    make_hf_clip_dir,
    make_openclip_checkpoint,
    register_tiny_openclip_archs,
)
from _models_fixtures import REAL_CONFIGS, make_reference, max_rel_error
from torchvision.datasets import CIFAR100

import clipbench
from clipbench import clip
from clipbench.datasets.local import prompt_fields
from clipbench.foundations.registry import Registry
from clipbench.models.checkpoints import CheckpointInfo

with warnings.catch_warnings():  # openai-clip imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import clip as reference_clip

TOLERANCE = 1e-5

# CLIP's README (openai/CLIP, "Zero-Shot Prediction"), verbatim but for the import line
ZERO_SHOT = '''
import os
from clipbench import clip
import torch
from torchvision.datasets import CIFAR100

# Load the model
device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load('ViT-B/32', device)

# Download the dataset
cifar100 = CIFAR100(root=os.path.expanduser("~/.cache"), download=True, train=False)

# Prepare the inputs
image, class_id = cifar100[3637]
image_input = preprocess(image).unsqueeze(0).to(device)
text_inputs = torch.cat([clip.tokenize(f"a photo of a {c}") for c in cifar100.classes]).to(device)

# Calculate features
with torch.no_grad():
    image_features = model.encode_image(image_input)
    text_features = model.encode_text(text_inputs)

# Pick the top 5 most similar labels for the image
image_features /= image_features.norm(dim=-1, keepdim=True)
text_features /= text_features.norm(dim=-1, keepdim=True)
similarity = (100.0 * image_features @ text_features.T).softmax(dim=-1)
values, indices = similarity[0].topk(5)

# Print the result
print("\\nTop predictions:\\n")
for value, index in zip(values, indices):
    print(f"{cifar100.classes[index]:>16s}: {100 * value.item():.2f}%")
'''

# CLIP's README ("Linear-probe evaluation"), verbatim but for the import line
LINEAR_PROBE = '''
import os
from clipbench import clip
import torch

import numpy as np
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader
from torchvision.datasets import CIFAR100
from tqdm import tqdm

# Load the model
device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load('ViT-B/32', device)

# Load the dataset
root = os.path.expanduser("~/.cache")
train = CIFAR100(root, download=True, train=True, transform=preprocess)
test = CIFAR100(root, download=True, train=False, transform=preprocess)


def get_features(dataset):
    all_features = []
    all_labels = []

    with torch.no_grad():
        for images, labels in tqdm(DataLoader(dataset, batch_size=100)):
            features = model.encode_image(images.to(device))

            all_features.append(features)
            all_labels.append(labels)

    return torch.cat(all_features).cpu().numpy(), torch.cat(all_labels).cpu().numpy()

# Calculate the image features
train_features, train_labels = get_features(train)
test_features, test_labels = get_features(test)

# Perform logistic regression
classifier = LogisticRegression(random_state=0, C=0.316, max_iter=1000, verbose=1)
classifier.fit(train_features, train_labels)

# Evaluate using the logistic regression classifier
predictions = classifier.predict(test_features)
accuracy = np.mean((test_labels == predictions).astype(float)) * 100.
print(f"Accuracy = {accuracy:.3f}")
'''

CLASSNAMES = [c.replace(" ", "_") for c in prompt_fields("cifar100")["classnames"]]


def write_cifar100(home, n_train: int, n_test: int, n_classes: int = 100, seed: int = 0) -> dict[str, str]:
    """``home/.cache/cifar-100-python/{train,test,meta}`` as in the official archive; returns their MD5s.

    Sample i has label ``i % n_classes`` (all 100 names are in the meta file either way); each class
    has its own colour plus noise, so a linear probe on real features can learn it.
    """
    folder = home / ".cache" / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (100, 3))

    def batch(name: str, n: int) -> None:
        labels = np.arange(n) % n_classes
        pixels = colours[labels][:, :, None, None] + rng.normal(0, 12, (n, 3, 32, 32))
        data = np.clip(pixels, 0, 255).astype(np.uint8).reshape(n, 3072)
        entry = {"filenames": [f"img_{i}.png" for i in range(n)], "batch_label": f"{name} batch",
                 "fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist(), "data": data}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))

    batch("train", n_train)
    batch("test", n_test)
    (folder / "meta").write_bytes(pickle.dumps(
        {"fine_label_names": CLASSNAMES, "coarse_label_names": [f"super_{i}" for i in range(20)]}, protocol=2))
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in ("train", "test", "meta")}


def trust_fake_cifar(monkeypatch, md5: dict[str, str]) -> None:
    """Point torchvision's integrity table at the fake files (its reading code is unchanged)."""
    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": md5["meta"]})


def run_example(source: str, model: str, package: str = "clipbench") -> tuple[dict, str]:
    """Execute a README example with ``model`` for 'ViT-B/32'; ``package="reference"`` runs it on OpenAI's clip."""
    source = source.replace("'ViT-B/32'", repr(model))
    if package == "reference":
        source = source.replace("from clipbench import clip", "import clip")
    namespace: dict = {"__name__": "readme_example"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(source, f"<README example, {package}>", "exec"), namespace)
    return namespace, out.getvalue()


def top_predictions(printed: str) -> list[tuple[str, float]]:
    lines = printed.split("Top predictions:", 1)[1].strip().splitlines()
    return [(name.strip(), float(pct.rstrip("%"))) for name, pct in (line.rsplit(": ", 1) for line in lines)]


@pytest.fixture
def zero_shot_home(tmp_path, monkeypatch):
    trust_fake_cifar(monkeypatch, write_cifar100(tmp_path, n_train=100, n_test=3640))
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


# ------------------------------------------------------------------------------------------ clipbench-tiny


def test_zero_shot_readme_example_runs_and_agrees_with_clipbench(zero_shot_home):
    namespace, printed = run_example(ZERO_SHOT, "clipbench-tiny")
    predictions = top_predictions(printed)
    assert len(predictions) == 5 and all(name in CLASSNAMES for name, _ in predictions)
    # the same numbers through clipbench's own model interface
    engine = clipbench.load_model("clipbench-tiny")
    image, _ = CIFAR100(zero_shot_home / ".cache", train=False)[3637]
    tokens = clipbench.tokenize([f"a photo of a {c}" for c in CLASSNAMES])
    image_f = torch.nn.functional.normalize(engine.encode_image(engine.preprocess(image).unsqueeze(0)), dim=-1)
    text_f = torch.nn.functional.normalize(engine.encode_text(tokens), dim=-1)
    similarity = (100.0 * image_f @ text_f.T).softmax(dim=-1)
    assert max_rel_error(similarity, namespace["similarity"]) <= TOLERANCE
    values, indices = similarity[0].topk(5)
    assert [name for name, _ in predictions] == [CLASSNAMES[i] for i in indices]
    assert [pct for _, pct in predictions] == [round(100 * v.item(), 2) for v in values]


def test_linear_probe_readme_example_runs_and_learns(tmp_path, monkeypatch, capsys):
    trust_fake_cifar(monkeypatch, write_cifar100(tmp_path, n_train=200, n_test=60, n_classes=20))
    monkeypatch.setenv("HOME", str(tmp_path))
    namespace, printed = run_example(LINEAR_PROBE, "clipbench-tiny")
    accuracy = float(re.search(r"Accuracy = ([0-9.]+)", printed).group(1))
    assert accuracy > 50.0, printed  # 20 classes: chance is 5%; the class colours are learnable
    assert namespace["train_features"].shape == (200, 64) and namespace["test_features"].shape == (60, 64)
    np.testing.assert_array_equal(namespace["test_labels"], np.arange(60) % 20)
    engine = clipbench.load_model("clipbench-tiny")
    first = torch.stack([namespace["test"][i][0] for i in range(8)])
    np.testing.assert_allclose(namespace["test_features"][:8], engine.encode_image(first).numpy(), rtol=0, atol=1e-5)


def test_model_surface_and_gradients():
    model, preprocess = clip.load("clipbench-tiny")
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not model.training and model.dtype == torch.float32
    assert (model.visual.input_resolution, model.context_length, model.vocab_size) == (32, 77, 49408)
    assert model.logit_scale.exp().item() == pytest.approx(clipbench.load_model("clipbench-tiny").module.logit_scale.exp().item())
    assert set(model.state_dict()) == set(clipbench.load_model("clipbench-tiny").module.state_dict())  # OpenAI keys
    images = torch.randn(2, 3, 32, 32, device=model.device)
    tokens = clip.tokenize(["a dog", "a cat", "a bird"])
    logits_per_image, logits_per_text = model(images, tokens)
    assert logits_per_image.shape == (2, 3) and torch.equal(logits_per_text, logits_per_image.t())
    logits_per_image.sum().backward()  # not inference tensors: scripts can fine-tune through the shim
    assert model.visual.conv1.weight.grad is not None and model.token_embedding.weight.grad is not None


@pytest.mark.peer
def test_available_models_tokenize_and_jit():
    assert clip.available_models()[:9] == reference_clip.available_models()
    assert "clipbench-tiny" in clip.available_models()
    texts = ["a photo of a dog.", "Hello, World! 3 CATS &amp; café", ""]
    assert torch.equal(clip.tokenize(texts), reference_clip.tokenize(texts))
    long_text = "word " * 100
    assert torch.equal(clip.tokenize(long_text, truncate=True), reference_clip.tokenize(long_text, truncate=True))
    with pytest.raises(RuntimeError, match="longer than the context length"):
        clip.tokenize(long_text)
    assert clip.tokenize("short", context_length=16).shape == (1, 16)
    eager, _ = clip.load("clipbench-tiny", device="cpu", jit=True)
    assert isinstance(eager, clip.CLIPModel)
    with pytest.raises(KeyError, match="ViT-B/16"):
        clip.load("ViT-B/61", device="cpu")


def test_download_root_reuses_a_verified_file_in_openai_layout(tmp_path, monkeypatch):
    packaged = clipbench.models.MODELS.get("clipbench-tiny").package_path()
    root = tmp_path / "openai-cache"
    root.mkdir()
    (root / "Tiny.pt").write_bytes(packaged.read_bytes())
    registry: Registry[CheckpointInfo] = Registry("model")
    sha = hashlib.sha256(packaged.read_bytes()).hexdigest()
    registry.register("Tiny", CheckpointInfo(name="Tiny", sha256=sha, url=f"https://127.0.0.1:9/{sha}/Tiny.pt"))
    monkeypatch.setattr(clip, "MODELS", registry)
    model, _ = clip.load("Tiny", device="cpu", download_root=root)  # no download: port 9 would refuse it
    assert model.backend.weights_sha256 == sha and model.name == "Tiny"


@pytest.mark.peer
def test_openclip_and_hf_models_load_with_their_own_logits(tmp_path):
    register_tiny_openclip_archs(tmp_path / "configs")
    specs = {"openclip": f"openclip:{TINY_VIT}@{make_openclip_checkpoint(TINY_VIT, tmp_path / 'oc.pt')}",
             "hf": f"hf:{make_hf_clip_dir(tmp_path / 'hf')}"}
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    tokens = clip.tokenize(["a photo of a dog", "a diagram", "3 cats"])
    for kind, spec in specs.items():
        model, preprocess = clip.load(spec, device="cpu", download_root=tmp_path / "cache")
        assert model.tokenizer_matches_clip and model.visual.input_resolution == 64
        assert (model.context_length, model.vocab_size, model.dtype) == (77, 49408, torch.float32)
        assert preprocess is model.backend.preprocess
        with torch.no_grad():
            logits_per_image, logits_per_text = model(images, tokens)
            if kind == "hf":  # transformers' own CLIPModel forward
                expected = model.inner(input_ids=tokens, pixel_values=images).logits_per_image
            else:  # open_clip's forward: normalised features and the exponentiated scale
                image_f, text_f, scale = model.inner(images, tokens)
                expected = scale * image_f @ text_f.t()
        assert max_rel_error(expected, logits_per_image) <= TOLERANCE, kind
        assert torch.equal(logits_per_text, logits_per_image.t())


# ------------------------------------------------------------------------------------------ ViT-B/32 vs reference


@pytest.fixture(scope="module")
def vit_b32(tmp_path_factory):
    """OpenAI's reference ViT-B/32 with random weights, its state dict on disk, and the zero-shot example run on it.

    The reference stays in memory (OpenAI's ``clip.load`` would round the weights through fp16);
    the example loads the file through ``clipbench.clip``.
    """
    base = tmp_path_factory.mktemp("vit-b32")
    reference = make_reference(REAL_CONFIGS["ViT-B/32"])
    path = base / "ViT-B-32.pt"
    torch.save(reference.state_dict(), path)
    with pytest.MonkeyPatch.context() as mp:
        trust_fake_cifar(mp, write_cifar100(base, n_train=10, n_test=3640))
        mp.setenv("HOME", str(base))
        mp.setenv("CLIPBENCH_CACHE", str(base / "cache"))
        namespace, printed = run_example(ZERO_SHOT, str(path))
    return reference, namespace, printed


@pytest.mark.peer
@pytest.mark.slow
def test_vit_b32_zero_shot_example_matches_reference(vit_b32):
    reference, ours, printed = vit_b32
    predicted = [CLASSNAMES.index(name) for name, _ in top_predictions(printed)]
    checked = sorted(set(predicted) | {0, 37, 99})  # the printed classes and a few others
    with torch.no_grad():
        image = reference.encode_image(ours["image_input"])
        text = reference.encode_text(reference_clip.tokenize([f"a photo of a {CLASSNAMES[i]}" for i in checked]))
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    assert torch.equal(ours["text_inputs"][checked], reference_clip.tokenize(
        [f"a photo of a {CLASSNAMES[i]}" for i in checked]).long())
    assert max_rel_error(image, ours["image_features"]) <= TOLERANCE
    assert max_rel_error(text, ours["text_features"][checked]) <= TOLERANCE
    assert predicted == ours["indices"].tolist()


@pytest.mark.peer
@pytest.mark.slow
def test_vit_b32_forward_logits_match_reference(vit_b32):
    reference, namespace, _ = vit_b32
    model = namespace["model"]
    assert isinstance(model, clip.CLIPModel)
    for attr in ("context_length", "vocab_size", "dtype"):
        assert getattr(model, attr) == getattr(reference, attr), attr
    assert model.visual.input_resolution == reference.visual.input_resolution == 224
    assert model.logit_scale.exp().item() == pytest.approx(reference.logit_scale.exp().item(), rel=1e-6)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    tokens = reference_clip.tokenize(["a diagram", "a photo of a dog", "a cat"])
    with torch.no_grad():
        ours, theirs = model(images, tokens), reference(images, tokens)
    assert ours[0].shape == (2, 3) and ours[1].shape == (3, 2)
    assert max_rel_error(theirs[0], ours[0]) <= TOLERANCE
    assert max_rel_error(theirs[1], ours[1]) <= TOLERANCE
