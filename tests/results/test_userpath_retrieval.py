"""Degenerate retrieval is refused or flagged as degenerate classification is: with k at least the image count,
text->image recall@k is 100 by construction."""

from __future__ import annotations

import pytest
from PIL import Image

from clipbench import api
from clipbench.foundations.errors import ClipbenchError


def _pairs(folder, n: int) -> str:
    rows = ["image,caption"]
    for i in range(n):
        Image.new("RGB", (32, 32), (40 * i, 90, 200 - 40 * i)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,shape number {i}")
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return f"pairs:{folder / 'pairs.csv'}"


def _run(tmp_path, dataset: str, **options):
    return api.run("clipbench-shapes", suite="smoke-retrieval", datasets=[dataset], cache_dir=tmp_path / "cache",
                   results_dir=tmp_path / "results", progress=False, bootstrap=20, **options)


def test_one_image_is_refused_naming_the_dataset_the_image_count_and_k(tmp_path):
    dataset = _pairs(tmp_path, 1)
    with pytest.raises(ClipbenchError, match=r"pairs:.*pairs\.csv has 1 image and recall@k is asked for k = 1, 5, 10"):
        _run(tmp_path, dataset)
    assert not (tmp_path / "results" / "results.jsonl").exists()  # no 100.00 [100, 100] on record


def test_a_k_beyond_the_image_count_is_flagged_in_the_record(tmp_path, caplog):
    (record,) = _run(tmp_path, _pairs(tmp_path, 3))
    assert record["notes"] == [f"{record['dataset']} has 3 images: text->image recall@5/10 is 100% by construction "
                               "(k >= the image count), and mean_recall includes it"]
    assert record["metrics"]["t2i_recall@5"] == 100.0 and "by construction" in caplog.text
    with pytest.raises(ClipbenchError, match="has 3 images and recall@k is asked for k = 5"):
        _run(tmp_path, record["dataset"], recall_k=[5])
