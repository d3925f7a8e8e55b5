"""The choices dataset kind: choices:FILE.jsonl, SugarCrepe in its on-disk layout, shapes_compositional's
generated negatives, fingerprints, one-line errors, and Winoground-style groups end to end."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from clipbench import api
from clipbench.datasets import get_dataset
from clipbench.datasets.choices_files import ChoicesFileAdapter
from clipbench.datasets.compositional import SUGARCREPE_SUBSETS
from clipbench.datasets.download import download_dataset
from clipbench.datasets.shapes import COMPOSITIONAL_SUBSETS, compositional_items, parse_caption
from clipbench.foundations.errors import DataError


def _image(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def _write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_choices_file_reads_items_relative_to_the_file(tmp_path):
    _image(tmp_path / "img" / "a.png", "red")
    _image(tmp_path / "img" / "b.png", "blue")
    file = _write_jsonl(tmp_path / "items.jsonl", [
        {"image": "img/a.png", "positive": "a red square", "negatives": ["a blue square", "a green square"],
         "subset": "colour"},
        {"image": "img/b.png", "positive": "a blue square", "negatives": ["a red square"]},
    ])
    adapter = get_dataset(f"choices:{file}")
    assert adapter.kind == "choices" and adapter.splits == ("test",) and adapter.primary_metric == "accuracy"
    split = adapter.load_split("test")
    assert len(split) == 2 and split.labels.tolist() == [0, 1]
    assert split.paths == [str((tmp_path / "img" / n).resolve()) for n in ("a.png", "b.png")]
    assert split.candidates(0) == ["a red square", "a blue square", "a green square"]
    assert split.subsets == ["colour", "all"] and split.groups == [None, None]
    sub = split.subset([1], "limit=1")
    assert sub.positives == ["a blue square"] and sub.fingerprint != split.fingerprint


def test_a_subset_keeps_groups_whole(tmp_path):
    for n in "abcd":
        _image(tmp_path / f"{n}.png", "red")
    rows = [{"image": "a.png", "positive": "A", "negatives": ["B"], "group": "1"},
            {"image": "b.png", "positive": "B", "negatives": ["A"], "group": "1"},
            {"image": "c.png", "positive": "C", "negatives": ["x"]},
            {"image": "d.png", "positive": "D", "negatives": ["y"]}]
    split = get_dataset(f"choices:{_write_jsonl(tmp_path / 'g.jsonl', rows)}").load_split("test")
    assert split.subset([1, 3], "limit=2").positives == ["A", "B", "D"]
    assert split.subset([2], "limit=1").positives == ["C"]


def test_fingerprint_follows_texts_and_images(tmp_path):
    img = _image(tmp_path / "a.png", "red")
    rows = [{"image": "a.png", "positive": "a red square", "negatives": ["a blue square"]}]
    base = ChoicesFileAdapter.from_path(_write_jsonl(tmp_path / "x.jsonl", rows)).load_split("test").fingerprint
    again = ChoicesFileAdapter.from_path(tmp_path / "x.jsonl").load_split("test").fingerprint
    assert base == again
    rows[0]["negatives"] = ["a green square"]
    edited = ChoicesFileAdapter.from_path(_write_jsonl(tmp_path / "x.jsonl", rows)).load_split("test").fingerprint
    assert edited != base
    Image.new("RGB", (9, 9), "red").save(img)
    os.utime(img, ns=(1, 1))
    replaced = ChoicesFileAdapter.from_path(tmp_path / "x.jsonl").load_split("test").fingerprint
    assert replaced != edited


@pytest.mark.parametrize("row, message", [
    ({"positive": "p", "negatives": ["n"]}, '"image" must be a non-empty path'),
    ({"image": "a.png", "negatives": ["n"]}, '"positive" must be a non-empty caption'),
    ({"image": "a.png", "positive": "p", "negatives": []}, '"negatives" must be a non-empty list'),
    ({"image": "a.png", "positive": "p", "negatives": [3]}, '"negatives" must be a non-empty list'),
    ({"image": "a.png", "positive": "p", "negatives": ["n"], "subset": ""}, '"subset" must be a non-empty'),
])
def test_bad_rows_are_one_line_errors(tmp_path, row, message):
    file = _write_jsonl(tmp_path / "bad.jsonl", [row])
    with pytest.raises(DataError, match=message):
        get_dataset(f"choices:{file}").load_split("test")


def test_missing_file_and_missing_image(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"choices:{tmp_path / 'nope.jsonl'}")
    file = _write_jsonl(tmp_path / "x.jsonl", [{"image": "gone.png", "positive": "p", "negatives": ["n"]}])
    with pytest.raises(DataError, match="gone.png is missing"):
        _ = get_dataset(f"choices:{file}").load_split("test").fingerprint


# ------------------------------------------------------------------------------ SugarCrepe


def _sugarcrepe_tree(root):
    """SugarCrepe's layout: <root>/sugarcrepe/<subset>.json (ids need not be contiguous) + val2017/*.jpg."""
    base = root / "sugarcrepe"
    for k, subset in enumerate(SUGARCREPE_SUBSETS):
        entries = {}
        for j in range(2):
            filename = f"{k * 10 + j:012d}.jpg"
            _image(base / "val2017" / filename, (k * 30, j * 100, 50))
            entries[str(k * 7 + j * 3)] = {"filename": filename, "caption": f"{subset} true {j}",
                                           "negative_caption": f"{subset} false {j}"}
        (base / f"{subset}.json").write_text(json.dumps(entries), encoding="utf-8")
    return base


def test_sugarcrepe_on_disk_layout(tmp_path):
    adapter = get_dataset("sugarcrepe")
    assert not adapter.is_present(tmp_path)
    with pytest.raises(DataError, match="cannot be downloaded automatically.*replace_obj.json"):
        download_dataset(adapter, tmp_path)
    with pytest.raises(DataError, match="val2017"):
        adapter.load_split("test", tmp_path)
    base = _sugarcrepe_tree(tmp_path)
    assert adapter.is_present(tmp_path)
    split = adapter.load_split("test", tmp_path)
    assert len(split) == 14 and list(dict.fromkeys(split.subsets)) == list(SUGARCREPE_SUBSETS)
    assert split.candidates(0) == ["replace_obj true 0", "replace_obj false 0"]
    assert split.paths[3] == str(base / "val2017" / f"{11:012d}.jpg")
    (base / "swap_att.json").write_text('{"0": {"filename": "x.jpg"}}', encoding="utf-8")
    with pytest.raises(DataError, match="swap_att.json is not a SugarCrepe file"):
        adapter.load_split("test", tmp_path)


# ------------------------------------------------------------------------------ shapes_compositional


def test_shapes_negatives_are_the_promised_edits():
    caps = [["a large red circle to the left of a small blue square"], ["a small green triangle above a small green circle"]]
    items = compositional_items(caps)
    by = {(i, s): n for i, _, n, s in items}
    assert by[0, "swap_colour"] == "a large blue circle to the left of a small red square"
    assert by[0, "swap_shape"] == "a large red square to the left of a small blue circle"
    assert by[0, "swap_size"] == "a small red circle to the left of a large blue square"
    assert by[0, "swap_relation"] == "a large red circle to the right of a small blue square"
    assert by[1, "swap_relation"] == "a small green triangle below a small green circle"
    assert (1, "swap_colour") not in by and (1, "swap_size") not in by  # same colour / size: no negative
    for _i, positive, negative, subset in items:
        first, _, second = parse_caption(positive)
        assert negative != positive and subset in COMPOSITIONAL_SUBSETS
        if subset.startswith("replace_"):
            new_first, _, new_second = parse_caption(negative)
            changed = [a != b for a, b in ((first, new_first), (second, new_second))]
            assert sum(changed) == 1
    assert compositional_items(caps) == items  # deterministic


def test_shapes_compositional_dataset(tmp_path):
    split = get_dataset("shapes_compositional").load_split("test", tmp_path)
    shapes = get_dataset("shapes").load_split("test", tmp_path)
    assert set(split.subsets) == set(COMPOSITIONAL_SUBSETS) and 300 * 3 < len(split) <= 300 * 6
    assert all(p in shapes.paths for p in split.paths[:50])
    assert sum(s == "swap_relation" for s in split.subsets) == 300
    assert split.fingerprint == get_dataset("shapes_compositional").load_split("test", tmp_path).fingerprint


# ------------------------------------------------------------------------------ groups end to end


def test_winoground_style_groups_end_to_end(tmp_path):
    """Two shapes images per group, each with its own caption vs the other's: text/image/group scores recorded."""
    shapes = get_dataset("shapes").load_split("test", tmp_path)
    rows = []
    for g in range(20):
        a, b = 2 * g, 2 * g + 1
        ca, cb = shapes.captions[a][0], shapes.captions[b][0]
        rows.append({"image": shapes.paths[a], "positive": ca, "negatives": [cb], "group": f"g{g}", "subset": "wino"})
        rows.append({"image": shapes.paths[b], "positive": cb, "negatives": [ca], "group": f"g{g}", "subset": "wino"})
    file = _write_jsonl(tmp_path / "wino.jsonl", rows)
    (r,) = api.run(suite="smoke-compositional", datasets=[f"choices:{file}"], data_root=tmp_path,
                   cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False, bootstrap=0)
    m = r["metrics"]
    assert r["image_caption_selection"]["n_groups"] == 20 and r["n_samples"] == 40
    assert {"text_score", "image_score", "group_score"} <= set(m)
    assert m["group_score"] <= min(m["text_score"], m["image_score"])
    assert m["text_score"] <= m["accuracy"]  # a group's text score needs both of its items right
    assert m["text_score"] > 50 and r["image_caption_selection"]["chance"]["group_score"] == pytest.approx(100 / 6)  # unrelated captions: easy


# ------------------------------------------------------------------------------ Winoground


def _winoground_copy(root, shapes, n=6):
    """A datasets.save_to_disk folder with Winoground's columns (id, image_0/1, caption_0/1, collapsed_tag)."""
    import datasets

    feats = datasets.Features({"id": datasets.Value("int32"), "image_0": datasets.Image(), "image_1": datasets.Image(),
                               "caption_0": datasets.Value("string"), "caption_1": datasets.Value("string"),
                               "tag": datasets.Value("string"), "collapsed_tag": datasets.Value("string")})
    rows = {k: [] for k in feats}
    for r in range(n):
        for j in range(2):
            rows[f"image_{j}"].append(Image.open(shapes.paths[2 * r + j]).convert("RGB"))
            rows[f"caption_{j}"].append(shapes.captions[2 * r + j][0])
        rows["id"].append(100 + r)
        rows["tag"].append("Noun")
        rows["collapsed_tag"].append("Object" if r % 2 else "Relation")
    datasets.Dataset.from_dict(rows, features=feats).save_to_disk(str(root / "winoground"))


def test_winoground_save_to_disk_layout(tmp_path):
    adapter = get_dataset("winoground")
    with pytest.raises(DataError, match="gated on Hugging Face.*save_to_disk"):
        adapter.load_split("test", tmp_path)
    shapes = get_dataset("shapes").load_split("test", tmp_path)
    _winoground_copy(tmp_path, shapes)
    assert adapter.is_present(tmp_path)
    split = adapter.load_split("test", tmp_path)
    assert len(split) == 12 and split.groups[:4] == ["100", "100", "101", "101"]
    assert split.candidates(0) == [shapes.captions[0][0], shapes.captions[1][0]]
    assert split.candidates(1) == [shapes.captions[1][0], shapes.captions[0][0]]
    assert split.subsets[:4] == ["Relation", "Relation", "Object", "Object"]
    image, index = split.torch_dataset(lambda im: im.size)[3]
    assert index == 3 and image == (32, 32)
    sub = split.subset([3, 4], "limit=2")  # items of rows 1 and 2: both rows, whole
    assert sub.groups == ["101", "101", "102", "102"] and sub.fingerprint != split.fingerprint
    (r,) = api.run(suite="smoke-compositional", datasets=["winoground"], data_root=tmp_path,
                   cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False, bootstrap=0)
    assert r["image_caption_selection"]["n_groups"] == 6 and {"text_score", "image_score", "group_score"} <= set(r["metrics"])
    assert set(r["image_caption_selection"]["per_subset"]) == {"Relation", "Object"}
    assert r["image_caption_selection"]["per_subset"]["Object"]["n_groups"] == 3 and "group_score" in r["image_caption_selection"]["per_subset"]["Relation"]


# ------------------------------------------------------------------------------ ARO


def test_aro_vg_layout_crops_each_box(tmp_path):
    """ARO's layout: <root>/aro/visual_genome_{relation,attribution}.json (a list) + images/*.jpg."""
    adapter = get_dataset("aro_vg_relation")
    with pytest.raises(DataError, match="ARO is placed by hand.*vgr_vga_images.zip"):
        adapter.load_split("test", tmp_path)
    base = tmp_path / "aro"
    img = Image.new("RGB", (40, 30), "black")
    img.paste((255, 0, 0), (10, 5, 30, 25))  # a red region exactly at the box
    (base / "images").mkdir(parents=True)
    img.save(base / "images" / "2316491.jpg", quality=100)
    rel = [{"image_id": "2316491", "image_path": "2316491.jpg", "bbox_x": 10, "bbox_y": 5, "bbox_w": 20,
            "bbox_h": 20, "true_caption": "the horse is eating the grass",
            "false_caption": "the grass is eating the horse", "relation_name": "eating"}]
    att = [{**rel[0], "true_caption": "the red door and the white car", "false_caption": "the white door and the red car",
            "attributes": ["red", "white"]}]
    (base / "visual_genome_relation.json").write_text(json.dumps(rel), encoding="utf-8")
    assert adapter.is_present(tmp_path) and not get_dataset("aro_vg_attribution").is_present(tmp_path)
    (base / "visual_genome_attribution.json").write_text(json.dumps(att), encoding="utf-8")
    split = adapter.load_split("test", tmp_path)
    assert split.candidates(0) == ["the horse is eating the grass", "the grass is eating the horse"]
    assert split.subsets == ["vg_relation"] and split.boxes == [(10.0, 5.0, 30.0, 25.0)]
    crop, index = split.torch_dataset(lambda im: im)[0]
    assert index == 0 and crop.size == (20, 20)
    assert all(abs(a - b) <= 8 for a, b in zip(crop.getpixel((10, 10)), (255, 0, 0), strict=True))  # inside the box
    attribution = get_dataset("aro_vg_attribution").load_split("test", tmp_path)
    assert attribution.positives == ["the red door and the white car"] and attribution.fingerprint != split.fingerprint
    assert split.subset([0], "limit=1").boxes == split.boxes
    (r,) = api.run(suite="smoke-compositional", datasets=["aro_vg_relation"], data_root=tmp_path,
                   cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False, bootstrap=0)
    assert r["n_samples"] == 1 and list(r["image_caption_selection"]["per_subset"]) == ["vg_relation"] and r["image_caption_selection"]["chance"]["accuracy"] == 50.0
    (base / "visual_genome_relation.json").write_text(json.dumps([{"image_path": "x.jpg"}]), encoding="utf-8")
    with pytest.raises(DataError, match="is not an ARO file"):
        adapter.load_split("test", tmp_path)
