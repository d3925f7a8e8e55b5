"""Babel-ImageNet: its published label and prompt files (placed by hand, not bundled: BabelNet's non-commercial
licence) read per language, each language scored on the ImageNet val images of its own classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _multilingual_fixtures import make_fake_babel_imagenet

from clipbench.datasets import get_dataset
from clipbench.datasets.babel_imagenet import PUBLISHED_LANGUAGES
from clipbench.datasets.imagenet import imagenet_wnids
from clipbench.datasets.languages import dataset_languages, in_language, plan_languages
from clipbench.datasets.splits import load_split
from clipbench.foundations.errors import DataError


def test_each_language_scores_the_images_of_its_own_classes(tmp_path):
    make_fake_babel_imagenet(tmp_path)
    base = get_dataset("babel_imagenet")
    assert base.is_present(tmp_path) and dataset_languages(base, tmp_path) == ("en", "de", "fy", "zh")
    assert dataset_languages(base) == PUBLISHED_LANGUAGES and len(PUBLISHED_LANGUAGES) == 93  # the docs' list
    en, de, zh, fy = plan_languages(base, ("en", "de", "cn", "fy"), tmp_path)
    assert de.classnames == ["Goldfisch", "Weißer Hai", "Hahn"] and de.class_prompts()[1] == ["ein Foto von einem  Weißer Hai ."]
    assert zh.language == "zh" and zh.class_prompts()[2] == ["一张公鸡的照片。"]
    assert fy.class_prompts() == [["goudfisk"], ["wite haai"]]  # no translated templates: the label alone
    assert len(en.classnames) == 1000 and en.class_prompts()[3] == ["a photo of a class 3.", "a bad photo of the class 3."]
    split = load_split(de, "val", tmp_path)
    # classes 1, 2, 7 have images (2 each), labelled 0, 1, 2 by their place in the German subset
    assert split.labels.tolist() == [0, 0, 1, 1, 2, 2] and len(split.torch_dataset(lambda image: image)) == 6
    assert [label for _, label in split.torch_dataset(lambda image: image)] == [0, 0, 1, 1, 2, 2]
    paths = [split.parent.paths[i] for i in split.indices]
    assert all(f"/{imagenet_wnids()[c]}/" in p for c, p in zip((1, 1, 2, 2, 7, 7), paths, strict=True))
    zh_split = load_split(zh, "val", tmp_path)  # class 9 has no images here; 0, 5, 7 do
    assert zh_split.labels.tolist() == [0, 0, 1, 1, 2, 2] and zh_split.fingerprint != split.fingerprint
    limited = zh_split.subset(np.array([5, 0]), "limit=2")
    assert [label for _, label in limited.torch_dataset(lambda image: image)] == [2, 0]
    assert len(load_split(en, "val", tmp_path)) == 10


def test_babel_files_missing_or_malformed_are_one_line(tmp_path):
    base = get_dataset("babel_imagenet")
    with pytest.raises(DataError, match=r"babel_imagenet.json not found; put Babel-ImageNet.s .*gregor-ge/Babel-ImageNet.*does not bundle"):
        in_language(base, "de", tmp_path)
    make_fake_babel_imagenet(tmp_path)
    with pytest.raises(DataError, match="has no labels in ko .*its languages: en, de, fy, zh"):
        in_language(base, "ko", tmp_path)
    for bad, why in (([[1, 2], ["one"]], "2 class indices for 1 labels"), ([[1, 1000], ["a", "b"]], "0..999"),
                     ([[3, 3], ["a", "b"]], "distinct"), ({"x": 1}, r"expected \[class indices, labels\]")):
        (tmp_path / "babel_imagenet" / "babel_imagenet.json").write_text(json.dumps({"DE": bad}), encoding="utf-8")
        with pytest.raises(DataError, match=why):
            in_language(base, "de", tmp_path)


@pytest.mark.peer
def test_babel_imagenet_reads_clip_benchmarks_published_files(tmp_path):
    """CLIP_benchmark 1.6.2 ships Babel-ImageNet's two files; clipbench reads them (placed under the data root)
    into the classes, names and templates CLIP_benchmark's builder hands its ImageNet subset."""
    import shutil
    from importlib import resources

    import clip_benchmark.datasets as cb

    folder = tmp_path / "babel_imagenet"
    folder.mkdir()
    for name in ("babel_imagenet.json", "nllb_dist13b_prompts.json"):
        shutil.copyfile(str(resources.files(cb).joinpath(name)), folder / name)
    labels = json.loads((folder / "babel_imagenet.json").read_text(encoding="utf-8"))
    prompts = json.loads((folder / "nllb_dist13b_prompts.json").read_text(encoding="utf-8"))
    base = get_dataset("babel_imagenet")
    assert dataset_languages(base, tmp_path) == PUBLISHED_LANGUAGES
    for code in ("de", "zh", "ar", "om"):
        ours = in_language(base, code, tmp_path)
        idxs, names = labels[code.upper()]
        assert list(ours.classes) == idxs and ours.classnames == names
        assert ours.templates == [t.replace("{}", "{c}") for t in prompts[code.upper()]]  # as CLIP_benchmark's builder
