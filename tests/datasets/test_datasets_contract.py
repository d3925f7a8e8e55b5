"""Every registered adapter keeps its contract; prompts match CLIP's published data; digits works offline."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.cli import main
from clipbench.datasets import (
    DATASETS,
    PRIMARY_METRICS,
    describe_datasets,
    get_dataset,
    probe_splits,
    with_prompts,
)
from clipbench.foundations.errors import DataError, UnknownNameError

#: classes each dataset defines (the label space its on-disk labels use)
LABEL_SPACE = {
    "digits": 10, "cifar10": 10, "cifar100": 100, "stl10": 10, "food101": 101, "flowers102": 102, "oxford_pets": 37,
    "stanford_cars": 196, "fgvc_aircraft": 100, "dtd": 47, "eurosat": 10, "gtsrb": 43, "country211": 211,
    "sun397": 397, "caltech101": 102, "mnist": 10, "fer2013": 7, "rendered_sst2": 2, "pcam": 2,
    "imagenet1k": 1000, "imagenet1k_7t": 1000, "imagenet_v2": 1000, "imagenet_sketch": 1000,
    "imagenet_a": 200, "imagenet_r": 200,
    # issue 29 (tests/datasets/test_benchmark_sets.py loads each from a fake copy)
    "clevr_count": 8, "clevr_distance": 6, "kitti_distance": 4, "dsprites_location": 32, "dsprites_orientation": 40,
    "smallnorb_azimuth": 18, "smallnorb_elevation": 9, "dmlab": 6, "diabetic_retinopathy": 5, "svhn": 10,
    "resisc45": 45, "imagenet_o": 200, "objectnet": 113, "birdsnap": 500,
}
LABEL_SPACE.update({"voc2007": 20, "hateful_memes": 2, "iwildcam": 182, "camelyon17": 2, "fmow": 62,  # issue 29
                    "dollar_street": 58, "geode": 40, "fairface": 2, "fairface_race": 7, "fairface_age": 9,
                    "utkface": 2, "utkface_race": 5, "utkface_age": 9, "ucf101": 101,
                    "kinetics700": 700})
LABEL_SPACE["babel_imagenet"] = 1000  # issue 30: ImageNet's; each language scores its own subset (test_babel_imagenet)
LABEL_SPACE["imagenet_w"] = 1000  # issue 29: ImageNet val with imagenet_w's watermark (tests/features/test_imagenet_w.py)
MEAN_PER_CLASS = {"fgvc_aircraft", "oxford_pets", "caltech101", "flowers102"}
#: datasets scored by a metric of ``clipbench.scoring.targets`` (issue 29)
OWN_METRIC = {"voc2007": "mean_average_precision_11pt", "hateful_memes": "roc_auc", "iwildcam": "macro_f1",
              "fmow": "worst_group_top1", "dollar_street": "worst_group_top5", "geode": "worst_group_top1",
              "kinetics700": "mean_top1_top5"}


def _classification_names() -> list[str]:
    return sorted(n for n, a in DATASETS.items() if getattr(a, "kind", "classification") == "classification")


def test_every_registered_adapter_is_listed_here():
    assert _classification_names() == sorted(LABEL_SPACE)


@pytest.mark.parametrize("name", sorted(LABEL_SPACE))
def test_adapter_contract(name):
    adapter = get_dataset(name)
    assert adapter.name == name
    assert len(adapter.classnames) == LABEL_SPACE[name]
    assert adapter.templates and all("{c}" in t and t.format(c="x") for t in adapter.templates)
    prompts = adapter.class_prompts()
    assert len(prompts) == len(adapter.classnames) and all(p and all(isinstance(s, str) for s in p) for p in prompts)
    assert all(adapter.classnames[i] in " ".join(prompts[i]) for i in range(len(prompts)))
    assert adapter.primary_metric in PRIMARY_METRICS
    assert adapter.primary_metric == OWN_METRIC.get(name, "mean_per_class_recall" if name in MEAN_PER_CLASS else "top1")
    assert adapter.splits and set(adapter.splits) <= {"train", "val", "test"}
    assert adapter.evaluation_split in adapter.splits
    assert adapter.origin  # every prompt set says where it comes from


def test_clip_published_prompts_spot_checks():
    imagenet = get_dataset("imagenet1k")
    assert len(imagenet.templates) == 80 and imagenet.templates[0] == "a bad photo of a {c}."
    assert get_dataset("imagenet1k_7t").templates == [
        "itap of a {c}.", "a bad photo of the {c}.", "a origami {c}.", "a photo of the large {c}.",
        "a {c} in a video game.", "art of the {c}.", "a photo of the small {c}.",
    ]
    assert imagenet.keys[0] == "n01440764" and imagenet.classnames[:3] == ["tench", "goldfish", "great white shark"]
    assert get_dataset("mnist").templates == ['a photo of the number: "{c}".']
    assert get_dataset("cifar10").templates[0] == "a photo of a {c}." and len(get_dataset("cifar10").templates) == 18
    assert get_dataset("caltech101").classnames[:3] == ["background", "off-center face", "centered face"]
    assert get_dataset("gtsrb").class_prompts()[14][0] == 'a zoomed in photo of a "stop" traffic sign.'
    # CLIP's FER2013 classes with several names get every template for every name
    assert len(get_dataset("fer2013").class_prompts()[5]) == 3 * 6
    # reordered to the on-disk label order, names unchanged
    assert get_dataset("oxford_pets").classnames[:6] == [
        "Abyssinian", "american bulldog", "american pit bull terrier", "basset hound", "beagle", "Bengal"]
    assert get_dataset("eurosat").classnames[0] == "annual crop land"


def test_registry_lookup_aliases_and_unknown_names():
    assert get_dataset("Oxford-Pets") is get_dataset("pets")
    with pytest.raises(UnknownNameError, match="did you mean cifar10"):
        get_dataset("cifar-1O")
    with pytest.raises(ValueError, match="already registered"):
        DATASETS.register("CIFAR10", get_dataset("cifar10"))


def test_digits_offline_fixed_split():
    adapter = get_dataset("digits")
    train, test = adapter.load_split("train", None), adapter.load_split("test", None)
    assert (len(train), len(test)) == (1000, 797)
    assert np.bincount(train.labels).tolist() == [100] * 10
    assert np.bincount(test.labels).tolist() == [78, 82, 77, 83, 81, 82, 81, 79, 74, 80]
    assert train.fingerprint == adapter.load_split("train", None).fingerprint != test.fingerprint
    image, label = test.torch_dataset(lambda im: im)[0]
    assert image.size == (32, 32) and image.mode == "RGB" and label == int(test.labels[0])
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.asarray(image)[::4, ::4, 0]  # undo the 4x nearest upscale
    matches = np.flatnonzero((np.rint(bunch.images * 255 / 16) == pixels).all(axis=(1, 2)) & (bunch.target == label))
    assert len(matches) >= 1  # a real digit from scikit-learn, with its own label
    assert adapter.class_prompts()[7][0] == "a photo of the number seven."


def test_digits_are_read_from_scikit_learns_file_as_load_digits_reads_it():
    """clipbench reads the bundled CSV itself (importing scikit-learn costs a warm run 1.8 s): same arrays."""
    from sklearn.datasets import load_digits

    from clipbench.datasets.digits import digits_file, read_digits

    ink, labels = read_digits(digits_file())
    bunch = load_digits()
    np.testing.assert_array_equal(ink, bunch.images)
    np.testing.assert_array_equal(labels, bunch.target)


def test_probe_carves_stratified_seeded_val_from_train():
    train, val, test = probe_splits(get_dataset("digits"), "/nonexistent")
    assert (len(train), len(val), len(test)) == (800, 200, 797)
    assert np.bincount(val.labels).tolist() == [20] * 10
    assert val.subset_spec == "probe-val:seed=0:frac=0.2" and train.subset_spec == "probe-train:seed=0:frac=0.2"
    assert set(train.fingerprint) and train.fingerprint != val.fingerprint
    again = probe_splits(get_dataset("digits"), "/nonexistent")[1]
    np.testing.assert_array_equal(again.indices, val.indices)
    other = probe_splits(get_dataset("digits"), "/nonexistent", seed=1)[1]
    assert other.fingerprint != val.fingerprint
    assert val.torch_dataset(lambda im: im)[0][1] == val.labels[0]


def test_custom_prompt_file(tmp_path):
    (tmp_path / "p.yaml").write_text("templates: ['a sketch of the digit {c}.']\n")
    adapter = get_dataset("digits", prompts=tmp_path / "p.yaml")
    assert adapter.class_prompts()[0] == ["a sketch of the digit zero."]
    (tmp_path / "p.json").write_text('{"classnames": ["0","1","2","3","4","5","6","7","8","9"]}')
    assert with_prompts(get_dataset("digits"), tmp_path / "p.json").class_prompts()[3][0] == "a photo of the number 3."
    (tmp_path / "bad.json").write_text('{"classnames": ["a", "b"]}')
    with pytest.raises(DataError, match="2 classnames but digits has 10 classes"):
        get_dataset("digits", prompts=tmp_path / "bad.json")
    (tmp_path / "bad.yaml").write_text("templates: ['no placeholder']\n")
    with pytest.raises(DataError, match=r"does not contain \{c\}"):
        get_dataset("digits", prompts=tmp_path / "bad.yaml")


def test_describe_datasets(tmp_path):
    (tmp_path / "imagenet1k" / "val").mkdir(parents=True)
    rows = {r["name"]: r for r in describe_datasets(tmp_path) if r["name"] in _classification_names()}
    assert set(rows) == set(LABEL_SPACE)
    assert rows["imagenet1k"]["present"] and rows["digits"]["present"] and not rows["cifar10"]["present"]
    assert rows["cifar10"] == {"name": "cifar10", "classes": 10, "templates": 18, "splits": "train,test",
                               "metric": "top1", "present": False, "download": "clipbench download cifar10"}
    assert rows["fer2013"]["templates"] == 18


def test_cli_download_errors_are_one_line(tmp_path, capsys):
    assert main(["download", "imagenet1k", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be downloaded automatically" in err and str(tmp_path) in err
    assert main(["download", "cifar10", "--data-root", str(tmp_path), "--offline"]) == 2
    assert "offline mode is on" in capsys.readouterr().err
    assert main(["download", "digits", "--data-root", str(tmp_path)]) == 0
    assert main(["download", "nonsense-name"]) == 2


def test_packaged_prompt_files_read_the_same_with_libyaml_and_pure_python():
    from importlib import resources

    import yaml

    from clipbench.datasets.prompts import FAST_SAFE_LOADER

    files = sorted(p for p in resources.files("clipbench").joinpath("prompts").iterdir() if p.name.endswith(".yaml"))
    assert len(files) >= 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=FAST_SAFE_LOADER) == yaml.safe_load(text), path.name  # noqa: S506
