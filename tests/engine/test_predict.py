"""`clipbench predict`: zero-shot top-k for one image, checked against an independent computation."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
from _backends_fixtures import TINY_VIT, make_openclip_checkpoint, random_image, register_tiny_openclip_archs

from clipbench.cli import main
from clipbench.engine.prediction import Prediction, predict
from clipbench.foundations.errors import ClipbenchError

LABELS = ["cat", "dog", "car", "airplane"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight native checkpoint (OpenAI key names), standing in for clipbench-tiny."""
    root = tmp_path_factory.mktemp("predict")
    register_tiny_openclip_archs(root / "configs")
    return make_openclip_checkpoint(TINY_VIT, root / "tiny.pt", seed=3)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    out = {}
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")):
        path = root / f"img.{ext}"
        random_image(90, 70, seed=5).save(path, format=fmt)
        out[ext] = path
    return out


def _reference_probs(checkpoint: Path, image: Path, texts: list[str]) -> torch.Tensor:
    """softmax(100 x cosine) against exactly ``texts``, computed with open_clip on the same weights."""
    import open_clip
    from PIL import Image

    model = open_clip.create_model(TINY_VIT, pretrained=None)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    preprocess = open_clip.image_transform(64, is_train=False)
    with torch.no_grad():
        img = model.encode_image(preprocess(Image.open(image).convert("RGB")).unsqueeze(0))
        txt = model.encode_text(open_clip.tokenize(texts))
    img, txt = img / img.norm(dim=-1, keepdim=True), txt / txt.norm(dim=-1, keepdim=True)
    return (100 * img @ txt.T).softmax(dim=-1)[0]


@pytest.mark.peer
@pytest.mark.parametrize("ext", ["png", "jpg", "webp"])
def test_predict_gives_labels_from_the_list_with_probabilities_summing_to_one(tiny_model, images, ext):
    results = predict(images[ext], labels=LABELS, model=str(tiny_model), top=len(LABELS))
    assert all(isinstance(r, Prediction) for r in results)
    assert sorted(r.label for r in results) == sorted(LABELS)
    probs = [r.probability for r in results]
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    expected = _reference_probs(tiny_model, images[ext], LABELS)
    for r in results:
        assert r.probability == pytest.approx(float(expected[LABELS.index(r.label)]), abs=1e-4)


@pytest.mark.peer
def test_labels_are_the_prompts_as_given_unless_a_template_wraps_them(tiny_model, images):
    texts = ["a diagram", "a dog", "a cat"]
    as_given = predict(images["png"], labels=",".join(texts), model=str(tiny_model), top=3)
    expected = _reference_probs(tiny_model, images["png"], texts)  # "a dog", not "a photo of a a dog."
    assert sorted(r.label for r in as_given) == sorted(texts)
    for r in as_given:
        assert r.probability == pytest.approx(float(expected[texts.index(r.label)]), abs=1e-4)
    wrapped = predict(images["png"], labels=LABELS, model=str(tiny_model), top=4, template="a photo of a {c}.")
    expected = _reference_probs(tiny_model, images["png"], [f"a photo of a {c}." for c in LABELS])
    for r in wrapped:
        assert r.probability == pytest.approx(float(expected[LABELS.index(r.label)]), abs=1e-4)


def test_top_k_and_comma_separated_labels(tiny_model, images):
    results = predict(images["png"], labels="cat, dog ,car", model=str(tiny_model), top=2)
    assert len(results) == 2 and {r.label for r in results} <= {"cat", "dog", "car"}
    assert len(predict(images["png"], labels="cat,dog", model=str(tiny_model), top=10)) == 2


def test_public_api_name_is_the_function(tiny_model, images):
    import clipbench

    assert callable(clipbench.predict)
    assert clipbench.predict(images["png"], labels=LABELS, model=str(tiny_model), top=1)[0].label in LABELS


@pytest.mark.peer
def test_cli_prints_top_k_in_clip_readme_style(tiny_model, images, capsys):
    labels = ["a diagram", "a dog", "a cat"]
    code = main(["predict", str(images["jpg"]), "--model", str(tiny_model), "--labels", ",".join(labels), "--top", "3"])
    out = capsys.readouterr().out
    assert code == 0
    header, blank, *lines = out.rstrip("\n").splitlines()
    assert header.startswith("Top predictions for") and blank == "" and len(lines) == 3
    # CLIP's README: f"{label:>16s}: {100 * value.item():.2f}%"
    rows = [re.fullmatch(r"( *)(\S.*): (\d+\.\d\d)%", line) for line in lines]
    assert all(rows), lines
    assert {m[2] for m in rows} == set(labels)
    assert {len(m[1]) + len(m[2]) for m in rows} == {16}  # right-aligned to one column
    assert sum(float(m[3]) for m in rows) == pytest.approx(100.0, abs=0.05)
    expected = _reference_probs(tiny_model, images["jpg"], labels)
    for m in rows:
        assert float(m[3]) == pytest.approx(100 * float(expected[labels.index(m[2])]), abs=0.006)


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "directory"])
def test_unreadable_image_exits_2_with_one_line(tiny_model, tmp_path, images, capsys, kind):
    path = tmp_path / "bad.jpg"
    if kind == "text":
        path.write_text("this is not an image")
    elif kind == "truncated":
        path.write_bytes(images["jpg"].read_bytes()[:200])
    elif kind == "directory":
        path.mkdir()
    code = main(["predict", str(path), "--model", str(tiny_model), "--labels", "cat,dog"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(path) in err and "Traceback" not in err


def test_missing_backend_extra_exits_2_with_install_hint(images, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    code = main(["predict", str(images["png"]), "--model", "openclip:ViT-B-32/openai", "--labels", "cat,dog"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'clipbench[openclip]'" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"labels": "cat,,dog"}, "without empty entries"),
        ({"labels": "cat,cat"}, "duplicate labels: cat"),
        ({"labels": "cat", "dataset": "cifar10"}, "either labels"),
        ({}, "either labels"),
        ({"labels": "cat", "top": 0}, "at least 1"),
        ({"labels": "cat", "template": "a photo"}, "must contain"),
    ],
)
def test_bad_arguments_are_clear_errors(images, kwargs, message):
    with pytest.raises(ClipbenchError, match=message):
        predict(images["png"], model="unused-because-arguments-fail-first", **kwargs)


def test_docs_say_what_the_default_model_was_trained_on_with_its_measured_accuracy():
    page = (Path(__file__).resolve().parents[2] / "docs" / "search.md").read_text(encoding="utf-8")
    section = page.split("## Predict one image")[1].split("\n## ")[0]
    assert "scikit-learn's 8×8 handwritten digits" in section and "out of distribution" in section
    claimed = re.search(r"\((\d+)% zero-shot top-1 on the digits test split\)", section)
    baseline = (Path(__file__).resolve().parents[2] / "results" / "baseline.csv").read_text().splitlines()
    measured = next(float(line.split(",")[5]) for line in baseline
                    if line.startswith("clipbench-tiny,digits,zeroshot,,top1,"))
    assert claimed and int(claimed[1]) == round(measured)
