"""Image-text adapters on files in their real on-disk layouts: Karpathy JSON (Flickr30k/8k, COCO), pairs csv/tsv/jsonl,
caption folders; fingerprints, subsets, manual-download messages."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from _datasets_fixtures import write_image

from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.datasets.image_text import ImageTextSplit, split_captions
from clipbench.foundations.errors import DataError
from clipbench.models.preprocess import clip_preprocess


def karpathy_json(path: Path, entries: list[dict]) -> None:
    """Karpathy's caption_datasets layout: one entry per image, sentences with raw text and tokens."""
    images = []
    for i, e in enumerate(entries):
        sentences = [{"tokens": s.lower().split(), "raw": s, "imgid": i, "sentid": 10 * i + j}
                     for j, s in enumerate(e["captions"])]
        entry = {"filename": e["filename"], "imgid": i, "split": e["split"], "sentences": sentences,
                 "sentids": [s["sentid"] for s in sentences]}
        if "filepath" in e:
            entry["filepath"] = e["filepath"]
            entry["cocoid"] = 1000 + i
        images.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "dataset": path.stem.replace("dataset_", "")}), encoding="utf-8")


def flickr_tree(root: Path, folder: str, json_name: str, image_dir: str) -> list[dict]:
    entries = [
        {"filename": "1000092795.jpg", "split": "train", "captions": ["Two young guys with shaggy hair .", "a b"]},
        {"filename": "10002456.jpg", "split": "test", "captions": [f"test caption {j} ." for j in range(5)]},
        {"filename": "1000268201.jpg", "split": "val", "captions": ["a child in a pink dress ."]},
        {"filename": "1000344755.jpg", "split": "test", "captions": ["  a man on a ladder .  ", "x"]},
    ]
    for i, e in enumerate(entries):
        write_image(root / folder / image_dir / e["filename"], i, fmt="JPEG")
    karpathy_json(root / folder / json_name, entries)
    return entries


@pytest.mark.parametrize("name,json_name,image_dir", [
    ("flickr30k", "dataset_flickr30k.json", "flickr30k-images"),
    ("flickr8k", "dataset_flickr8k.json", "Flicker8k_Dataset"),
    ("flickr8k", "dataset_flickr8k.json", "Images"),
])
def test_flickr_karpathy_layout(tmp_path, name, json_name, image_dir):
    flickr_tree(tmp_path, name, json_name, image_dir)
    adapter = get_dataset(name)
    assert adapter.kind == "image_text" and adapter.primary_metric == "mean_recall"
    assert adapter.is_present(tmp_path) and adapter.evaluation_split == "test"
    test = adapter.load_split("test", tmp_path)
    assert isinstance(test, ImageTextSplit) and len(test) == 2
    assert [Path(p).name for p in test.paths] == ["10002456.jpg", "1000344755.jpg"]
    assert test.captions[0] == [f"test caption {j} ." for j in range(5)]
    assert test.captions[1] == ["a man on a ladder .", "x"]
    assert test.labels.tolist() == [0, 1] and test.n_captions == 7
    texts, owner = test.flat_captions()
    assert len(texts) == 7 and owner.tolist() == [0] * 5 + [1] * 2
    image, label = test.torch_dataset(clip_preprocess(16))[1]
    assert tuple(image.shape) == (3, 16, 16) and label == 1
    assert len(adapter.load_split("train", tmp_path)) == 1 and len(adapter.load_split("val", tmp_path)) == 1


def test_mscoco_karpathy_layout_with_filepath_and_restval(tmp_path):
    root = tmp_path / "mscoco_captions"
    entries = [
        {"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "split": "test",
         "captions": ["A man with a red helmet on a small moped on a dirt road."] * 2 + ["another"]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000522418.jpg", "split": "restval",
         "captions": ["A woman wearing a net on her head cutting a cake."]},
        {"filepath": "train2014", "filename": "COCO_train2014_000000057870.jpg", "split": "train",
         "captions": ["A restaurant has modern wooden tables and chairs."]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000184613.jpg", "split": "val", "captions": ["v"]},
    ]
    for i, e in enumerate(entries):
        write_image(root / e["filepath"] / e["filename"], i, fmt="JPEG")
    karpathy_json(root / "dataset_coco.json", entries)
    adapter = get_dataset("mscoco_captions")
    test = adapter.load_split("test", tmp_path)
    assert test.paths == [str(root / "val2014" / "COCO_val2014_000000391895.jpg")]
    assert len(test.captions[0]) == 3  # duplicate captions are kept as given
    train = adapter.load_split("train", tmp_path)  # Karpathy's restval joins train
    assert sorted(Path(p).name for p in train.paths) == ["COCO_train2014_000000057870.jpg",
                                                        "COCO_val2014_000000522418.jpg"]


def test_karpathy_errors_and_manual_download_message(tmp_path, capsys):
    adapter = get_dataset("flickr30k")
    assert not adapter.is_present(tmp_path)
    with pytest.raises(DataError, match="dataset_flickr30k.json not found.*request form"):
        adapter.load_split("test", tmp_path)
    assert main(["download", "flickr30k", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "flickr30k-images" in err and "dataset_flickr30k.json" in err
    assert main(["download", "mscoco_captions", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "val2014.zip" in err and "dataset_coco.json" in err
    flickr_tree(tmp_path, "flickr30k", "dataset_flickr30k.json", "flickr30k-images")
    os.remove(tmp_path / "flickr30k" / "flickr30k-images" / "10002456.jpg")
    split = adapter.load_split("test", tmp_path)
    with pytest.raises(DataError, match="10002456.jpg is missing"):
        split.fingerprint  # noqa: B018 - the manifest stats every image
    (tmp_path / "flickr30k" / "dataset_flickr30k.json").write_text("{not json")
    with pytest.raises(DataError, match="not a Karpathy split file"):
        adapter.load_split("test", tmp_path)
    with pytest.raises(DataError, match="no split 'dev'"):
        adapter.load_split("dev", tmp_path)


def _verified(split):
    split.verify_data = True  # as --verify-data sets it
    return split


def test_fingerprint_covers_images_and_captions(tmp_path):
    paths = [str(write_image(tmp_path / f"{i}.png", i)) for i in range(3)]
    captions = [["a"], ["b", "c"], ["d"]]
    base = ImageTextSplit("x", "test", paths, captions, root=tmp_path).fingerprint
    assert ImageTextSplit("x", "test", paths, captions, root=tmp_path).fingerprint == base
    assert ImageTextSplit("x", "test", paths, [["a"], ["b", "C"], ["d"]], root=tmp_path).fingerprint != base
    assert ImageTextSplit("x", "test", paths, [["a"], ["c", "b"], ["d"]], root=tmp_path).fingerprint != base
    write_image(tmp_path / "1.png", 99, size=9)  # a different image under the same name
    assert ImageTextSplit("x", "test", paths, captions, root=tmp_path).fingerprint != base
    hashed = _verified(ImageTextSplit("x", "test", paths, captions, root=tmp_path)).fingerprint
    os.utime(paths[0], (1, 1))  # content hashing ignores mtimes
    assert _verified(ImageTextSplit("x", "test", paths, captions, root=tmp_path)).fingerprint == hashed
    with pytest.raises(DataError, match="has no caption"):
        ImageTextSplit("x", "test", paths, [["a"], [], ["d"]])


def test_subset_keeps_each_images_captions(tmp_path):
    paths = [str(write_image(tmp_path / f"{i}.png", i)) for i in range(4)]
    split = ImageTextSplit("x", "test", paths, [["a"], ["b1", "b2"], ["c"], ["d"]], root=tmp_path)
    sub = split.subset([1, 3], "limit=2")
    assert split_captions(sub) == [["b1", "b2"], ["d"]] and sub.labels.tolist() == [0, 1]
    assert sub.paths == [paths[1], paths[3]] and sub.fingerprint != split.fingerprint
    assert sub.subset([1], "again").subset_spec == "limit=2|again"


def test_pairs_csv_grouped_by_image_with_list_cells_and_splits(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(tmp_path / "imgs" / name, len(name), fmt="JPEG")
    with open(tmp_path / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "caption", "split"])
        writer.writerow(["imgs/a.jpg", "a red car", "test"])
        writer.writerow(["imgs/b.jpg", '["a dog", "a brown dog, running"]', "test"])
        writer.writerow(["imgs/a.jpg", "a car, parked", "test"])
        writer.writerow(["imgs/c.jpg", "training only", "train"])
    adapter = get_dataset(f"pairs:{tmp_path / 'pairs.csv'}")
    assert adapter.kind == "image_text" and adapter.splits == ("train", "test")
    test = adapter.load_split("test")
    assert [Path(p).name for p in test.paths] == ["a.jpg", "b.jpg"]
    assert test.captions == [["a red car", "a car, parked"], ["a dog", "a brown dog, running"]]
    assert len(adapter.load_split("train")) == 1


def test_pairs_tsv_and_jsonl(tmp_path):
    for name in ("x.png", "y.png"):
        write_image(tmp_path / name, len(name))
    (tmp_path / "p.tsv").write_text("filepath\ttext\nx.png\tone, with comma\ny.png\ttwo\nx.png\tthree\n",
                                    encoding="utf-8")
    tsv = get_dataset(f"pairs:{tmp_path / 'p.tsv'}").load_split("test")
    assert tsv.captions == [["one, with comma", "three"], ["two"]]
    rows = [{"image": "x.png", "captions": ["first", "second"]}, {"image": str(tmp_path / "y.png"), "caption": "z"}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="row 2: a caption must be a string"):  # row 2 lacks the "captions" column
        get_dataset(f"pairs:{tmp_path / 'p.jsonl'}")
    rows[1] = {"image": str(tmp_path / "y.png"), "captions": "z"}
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    jsonl = get_dataset(f"pairs:{tmp_path / 'p.jsonl'}").load_split("test")
    assert jsonl.captions == [["first", "second"], ["z"]] and jsonl.paths[1] == str(tmp_path / "y.png")
    (tmp_path / "bad.jsonl").write_text('{"image": "x.png", "caption": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad.jsonl:2 is not a JSON object"):
        get_dataset(f"pairs:{tmp_path / 'bad.jsonl'}")
    (tmp_path / "nocap.csv").write_text("image,label\nx.png,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="no caption column"):
        get_dataset(f"pairs:{tmp_path / 'nocap.csv'}")
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"pairs:{tmp_path / 'missing.csv'}")


def test_caption_folder(tmp_path):
    write_image(tmp_path / "a" / "cat.jpg", 1, fmt="JPEG")
    (tmp_path / "a" / "cat.txt").write_text("a cat\n\na sleeping cat\n", encoding="utf-8")
    write_image(tmp_path / "dog.png", 2)
    (tmp_path / "dog.txt").write_text("a dog", encoding="utf-8")
    adapter = get_dataset(f"captions:{tmp_path}")
    split = adapter.load_split("test")
    assert [Path(p).name for p in split.paths] == ["cat.jpg", "dog.png"]
    assert split.captions == [["a cat", "a sleeping cat"], ["a dog"]]
    write_image(tmp_path / "bird.png", 3)
    with pytest.raises(DataError, match="bird.png has no bird.txt"):
        adapter.load_split("test")


def test_image_text_datasets_are_refused_by_classification_tasks(tmp_path):
    from clipbench.engine.runner import check_task_fits
    from clipbench.tasks.registry import get_task

    shapes, digits = get_dataset("shapes"), get_dataset("digits")
    with pytest.raises(Exception, match="zeroshot does not apply to shapes .*image_text"):
        check_task_fits([get_task("zeroshot")], [shapes])
    with pytest.raises(Exception, match="zeroshot_retrieval does not apply to digits"):
        check_task_fits([get_task("zeroshot_retrieval")], [digits])
    assert get_task("zeroshot_retrieval").accepts(shapes) and not get_task("zeroshot_retrieval").accepts(digits)


def test_hf_save_to_disk_with_caption_lists(tmp_path):
    """A Hugging Face ``save_to_disk`` copy with an Image column and a list-of-strings caption column (the layout
    of e.g. nlphuji/flickr30k's ``caption`` field)."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Sequence(datasets.Value("string")),
                                  "img_id": datasets.Value("string")})

    def part(n: int, offset: int):
        files = [str(write_image(tmp_path / "src" / f"{offset + i}.png", offset + i)) for i in range(n)]
        return datasets.Dataset.from_dict({"image": files, "img_id": [str(offset + i) for i in range(n)],
                                           "caption": [[f"picture {offset + i}", f"photo {offset + i}"][: 1 + i % 2]
                                                       for i in range(n)]}, features=features)

    path = tmp_path / "saved"
    datasets.DatasetDict({"train": part(3, 0), "test": part(4, 100)}).save_to_disk(str(path))
    adapter = get_dataset(f"hf:{path}")
    assert adapter.kind == "image_text" and adapter.splits == ("train", "test") and adapter.evaluation_split == "test"
    test = adapter.load_split("test")
    assert test.captions == [["picture 100"], ["picture 101", "photo 101"], ["picture 102"], ["picture 103", "photo 103"]]
    image, label = test.torch_dataset(clip_preprocess(16))[3]
    assert tuple(image.shape) == (3, 16, 16) and label == 3 and test.labels.tolist() == [0, 1, 2, 3]
    again = get_dataset(f"hf:{path}").load_split("test")
    assert again.fingerprint == test.fingerprint != adapter.load_split("train").fingerprint
    sub = test.subset([1, 3], "limit=2")
    assert sub.captions == [test.captions[1], test.captions[3]] and sub.fingerprint != test.fingerprint
    assert len(sub.torch_dataset(clip_preprocess(16))) == 2
    from clipbench import api

    (record,) = api.run(suite="smoke-retrieval", datasets=[f"hf:{path}"], bootstrap=0, data_root=tmp_path,
                        cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False)
    assert record["n_samples"] == 4 and record["zeroshot_retrieval"]["n_captions"] == 6 and record["dataset_fingerprint"] == test.fingerprint
    # a labelled HF dataset still goes to the classification adapter
    labelled = datasets.Dataset.from_dict({"image": [str(tmp_path / "src" / "0.png"), str(tmp_path / "src" / "1.png")],
                                           "label": [0, 1]},  # two classes: one class is refused for classification
                                          features=datasets.Features({"image": datasets.Image(),
                                                                      "label": datasets.ClassLabel(names=["a", "b"])}))
    labelled.save_to_disk(str(tmp_path / "labelled"))
    assert getattr(get_dataset(f"hf:{tmp_path / 'labelled'}"), "kind", "classification") == "classification"
