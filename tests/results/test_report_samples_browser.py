"""The per-sample browser: its data against the per-sample files and compare's McNemar counts, and the page
driven with real clicks in headless Chromium (Selenium + Debian's chromium-driver), with screenshots kept
in $CLIPBENCH_TEST_ARTIFACTS (else the test's temporary folder)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from clipbench.foundations.escaping import markdown_text
from clipbench.results.report.browser import matrix_classes
from clipbench.results.samples import read_samples, write_sample_table
from clipbench.scoring.paired import paired_test
from clipbench.scoring.samples import build_kind_table
from clipbench.scoring.samples.table import with_items

N, C = 230, 5
CLASSES = ["cat", "dog", "<b>bird</b>", "fish", "frog"]
RNG = np.random.default_rng(5)
LABELS = RNG.integers(0, C, N)
OLD = RNG.normal(size=(N, C)) + 1.2 * np.eye(C)[LABELS]
NEW = OLD + RNG.normal(scale=0.6, size=(N, C))
I2T = np.array([1, 2, 1, 4, 1, 6])  # 6 images, 2 captions each
T2I = np.array([1, 3, 2, 2, 1, 1, 9, 5, 1, 1, 6, 1])
HOSTILE = "<img src=x onerror=alert(1)> \u202eevil"  # markup and an RTL override in a caption
MARGIN = np.array([0.3, -0.2, 0.1, -0.5, 0.0, 0.2, -0.1, np.nan])  # selection items (sort column; NaN last)
SUBSET = ["attr", "obj", "attr", "obj", "attr", "rel", "rel", "obj"]
INDEX = np.arange(8) * 3  # the items' positions in the split


def _record(record_id, timestamp, value):
    return {"schema_version": 2, "record_id": record_id, "timestamp": timestamp, "model": "RN50",
            "model_family": "ResNet", "model_identity": "NativeClipModel:" + "1" * 64, "weights_sha256": "1" * 64,
            "dataset": "cifar10", "split": "test", "dataset_fingerprint": "fp", "n_samples": N, "task": "zeroshot",
            "primary_metric": "top1", "metrics": {"top1": value}, "ci95": None, "precision": "fp32", "limit": None,
            "versions": {"clipbench": "0.1.0"}}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from clipbench.results.report import build_report

    root = tmp_path_factory.mktemp("samples-browser")
    results = root / "results"
    results.mkdir()
    records = []
    for rid, stamp, scores in (("old-run", "2026-11-20T12:00:00+00:00", OLD), ("new-run", "2026-11-23T12:00:00+00:00", NEW)):
        record = _record(rid, stamp, float(100 * (scores.argmax(1) == LABELS).mean()))
        table = build_kind_table("classification", {"scores": scores, "labels": LABELS, "score_kind": "logits"})
        record["samples"] = write_sample_table(results, record, table, "classification",
                                               {"score_kind": "logits", "classnames": CLASSES})
        records.append(record)
    retrieval = _record("ret-run", "2026-11-23T12:00:00+00:00", 50.0) | {"dataset": "shapes", "task": "zeroshot_retrieval",
                                                                        "primary_metric": "mean_recall"}
    table = build_kind_table("retrieval", {"i2t_rank": I2T, "t2i_rank": T2I, "text_image": np.arange(12) // 2,
                                           "captions": [f"caption <i>{i}</i>" for i in range(12)]})
    retrieval["samples"] = write_sample_table(results, retrieval, table, "retrieval", {"recall_k": [1, 5]})
    selection = _record("sel-run", "2026-11-23T12:00:00+00:00", 50.0) | {"dataset": "sugar_crepe",
                                                                        "task": "image_caption_selection"}
    table = with_items(build_kind_table("outcomes", {"index": INDEX, "subset": SUBSET, "outcomes": {
        "correct": MARGIN > 0, "margin": MARGIN.astype(np.float32), "negatives": np.ones(8, np.int64),
        "positive": np.array([HOSTILE if i == 3 else f"a <b>cat</b> {i}" for i in range(8)], dtype=object),
        "best_negative": np.array([f"a dog {i}" for i in range(8)], dtype=object)}}), [f"img{i}.jpg" for i in range(30)])
    selection["samples"] = write_sample_table(results, selection, table, "outcomes", {
        "metrics": {"accuracy": "correct"}, "sort_column": "margin", "unit": "items",
        "show_columns": ["positive", "best_negative"]})
    (results / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*records, retrieval, selection]))
    report = build_report(results, out_dir=root / "report")
    old, new = (read_samples(results, r) for r in records)
    return report, old, new


def _data(report, slug="RN50_cifar10_zeroshot") -> dict:
    text = (report.out_dir / "browser" / f"{slug}.js").read_text()
    return json.loads(text.removeprefix("window.CLIPBENCH_BROWSER = ").rstrip().removesuffix(";"))


def test_the_page_data_matches_the_samples_and_compare(built):
    report, old, new = built
    data = _data(report)
    assert data["record_id"] == "new-run" and data["other"]["record_id"] == "old-run"
    pred = NEW.argmax(1)
    expected = np.zeros((C, C), int)
    np.add.at(expected, (LABELS, pred), 1)
    assert data["matrix"]["all"] and np.array_equal(np.array(data["matrix"]["counts"]), expected)
    assert data["label"] == LABELS.tolist() and data["pred"] == pred.tolist()
    b, c = paired_test("top1", old, new).discordant  # what compare's McNemar test counts
    assert (data["other"]["b"], data["other"]["c"]) == (b, c) and b + c > 0
    wrong = np.flatnonzero(pred != LABELS)
    conf = np.exp(NEW.max(1)) / np.exp(NEW).sum(1)
    assert [e["index"] for e in data["errors"]][:3] == wrong[np.argsort(-conf[wrong])][:3].tolist()
    md = report.markdown.read_text()
    assert "## Per-sample browser" in md and f"]({markdown_text('browser/RN50_cifar10_zeroshot.html')})" in md
    assert "href='browser/RN50_cifar10_zeroshot.html'" in report.html.read_text()


def test_an_outcomes_page_lists_the_items_worst_first_with_their_texts(built):
    from clipbench.results.records import read_records
    from clipbench.results.report.browser import browser_block, outcomes_page_data

    report = built[0]
    results = report.out_dir.parent / "results"
    record = [r for r in read_records(results / "results.jsonl") if r["record_id"] == "sel-run"][0]
    data = outcomes_page_data(record, read_samples(results, record), {"RN50": "ResNet-50"}, {6: "thumbs/x/6.jpg"})
    assert data["title"] == "ResNet-50 · sugar_crepe · image_caption_selection" and data["sort"] == "margin"
    assert data["order"] == [3, 1, 6, 4, 2, 5, 0, 7]  # lowest margin first, the NaN last
    assert [c["name"] for c in data["columns"]] == ["positive", "best_negative", "margin", "correct", "negatives"]
    assert [c["type"] for c in data["columns"]] == ["text", "text", "number", "bool", "number"]
    assert data["flags"] == [3] and data["columns"][3]["values"] == (MARGIN > 0).astype(int).tolist()
    assert data["columns"][2]["values"][3] == -0.5 and data["columns"][2]["values"][7] is None
    assert data["subsets"] == ["attr", "obj", "rel"] and data["subset"] == [0, 1, 0, 1, 0, 2, 2, 1]
    assert data["index"] == INDEX.tolist() and data["item"] == [f"img{i}.jpg" for i in INDEX]
    assert data["summary"] == "8 items: accuracy 37.50" and data["thumbs"] == {"6": "thumbs/x/6.jpg"}
    assert data["group"] is None and data["columns"][0]["values"][3] == HOSTILE

    page = _data(report, "RN50_sugar_crepe_image_caption_selection")  # written by build_report
    assert page["columns"][0]["values"][3] == HOSTILE  # kept as data (JSON), set as text by the script
    assert "onerror" not in (report.out_dir / "browser" / "RN50_sugar_crepe_image_caption_selection.html").read_text()
    assert "href='browser/RN50_sugar_crepe_image_caption_selection.html'" in report.html.read_text()
    asked = []
    block, pages = browser_block([record], results, {}, report.out_dir.parent / "again",
                                 lambda r, wanted: asked.append(wanted) or {})
    assert [p.name for p in pages] == ["RN50_sugar_crepe_image_caption_selection.html"] and block.rows[0][3] == "8"
    assert asked == [INDEX[data["order"]].tolist()]  # thumbnails for the first page, worst first
    cues = results.parent / "cues"  # rows that number a task's items, not the split's images: no thumbnails
    table = build_kind_table("outcomes", {"index": np.arange(3), "outcomes": {"jaccard": np.array([0.5, 0.0, 1.0])}})
    cue = record | {"record_id": "cue-run", "task": "association"}
    cue["samples"] = write_sample_table(cues, cue, table, "outcomes", {"metrics": {"jaccard": "jaccard"},
                                                                       "sort_column": "jaccard", "index_is_sample": False})
    block, pages = browser_block([cue], cues, {}, cues / "report", lambda r, wanted: asked.append(wanted) or {})
    assert len(pages) == 1 and len(asked) == 1 and _data(SimpleNamespace(out_dir=cues / "report"),
                                                          "RN50_sugar_crepe_association")["order"] == [1, 0, 2]
    table = build_kind_table("outcomes", {"index": np.arange(2), "outcomes": {"text": np.array(["a", "b"], object)}})
    bad = cue | {"record_id": "bad-run", "task": "bad"}  # a hostile file: its metric and sort column hold text
    bad["samples"] = write_sample_table(cues, bad, table, "outcomes", {"metrics": {"m": "text"}, "sort_column": "text"})
    assert browser_block([bad], cues, {}, cues / "report2", None) == (None, [])


def test_the_heatmap_keeps_the_classes_with_the_most_errors():
    label = np.array([0, 0, 1, 2, 3, 3, 3, 4])
    pred = np.array([0, 1, 1, 2, 4, 4, 0, 4])  # errors: 0->1, 3->4 (twice), 3->0
    assert matrix_classes(label, pred, 5, limit=2) == [0, 3]  # 0: 2 errors, 3: 3, 4: 2 (ties to the lower)
    assert matrix_classes(label, pred, 5, limit=9) == [0, 1, 2, 3, 4]


def _driver(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("this test drives Chromium through Selenium: apt-get install -y chromium chromium-driver "
                    "(.ci/run installs both)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1300,1000"):
        options.add_argument(arg)
    options.binary_location = chromium
    return webdriver.Chrome(options=options, service=Service(driver_path))


def _shown(driver) -> list[int]:
    from selenium.webdriver.common.by import By

    return [int(r.get_attribute("data-index")) for r in driver.find_elements(By.CSS_SELECTOR, "#samples tr[data-index]")]


@pytest.mark.subprocess
@pytest.mark.browser
@pytest.mark.slow
def test_clicks_open_a_cells_samples_the_pages_and_the_disagreements(built, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    report, old, new = built
    shots = Path(os.environ.get("CLIPBENCH_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    pred = NEW.argmax(1)
    t, p = max(((a, b) for a in range(C) for b in range(C) if a != b), key=lambda k: ((LABELS == k[0]) & (pred == k[1])).sum())
    driver = _driver(tmp_path)
    try:
        driver.get((report.out_dir / "browser" / "RN50_cifar10_zeroshot.html").as_uri())
        assert driver.find_element(By.TAG_NAME, "h1").text == "RN50 · cifar10 · zeroshot"
        assert "<b>bird</b>" in driver.find_element(By.ID, "matrix").text  # a class name stays text
        driver.save_screenshot(str(shots / "browser-overview.png"))

        driver.find_element(By.ID, f"cell-{t}-{p}").click()  # a real click on one heatmap cell
        cell = np.flatnonzero((LABELS == t) & (pred == p))
        assert driver.find_element(By.ID, "count").text == f"{len(cell)} samples"
        assert _shown(driver) == cell.tolist()
        driver.save_screenshot(str(shots / "browser-cell.png"))

        driver.find_element(By.ID, "clear").click()
        assert driver.find_element(By.ID, "count").text == f"{N} samples"
        assert driver.find_element(By.ID, "page").text == "page 1 of 3" and _shown(driver) == list(range(100))
        driver.find_element(By.ID, "next").click()
        assert driver.find_element(By.ID, "page").text == "page 2 of 3" and _shown(driver) == list(range(100, 200))

        Select(driver.find_element(By.ID, "filter-class")).select_by_visible_text("<b>bird</b>")
        Select(driver.find_element(By.ID, "filter-correct")).select_by_value("wrong")
        assert _shown(driver) == np.flatnonzero((LABELS == 2) & (pred != 2)).tolist()

        driver.find_element(By.ID, "clear").click()
        b, c = paired_test("top1", old, new).discordant
        Select(driver.find_element(By.ID, "filter-agree")).select_by_value("discordant")
        assert driver.find_element(By.ID, "count").text == f"{b + c} samples"
        assert _shown(driver) == np.flatnonzero(old.correct != new.correct).tolist()[:100]
        driver.save_screenshot(str(shots / "browser-disagreement.png"))
        Select(driver.find_element(By.ID, "filter-agree")).select_by_value("b")
        assert driver.find_element(By.ID, "count").text == f"{b} samples"

        driver.get((report.out_dir / "browser" / "RN50_shapes_zeroshot_retrieval.html").as_uri())
        assert _shown(driver) == np.argsort(-T2I, kind="stable").tolist()  # worst rank first
        Select(driver.find_element(By.ID, "filter-miss")).select_by_value("1")
        assert driver.find_element(By.ID, "count").text == f"{(T2I > 1).sum()} captions"
        assert "caption <i>6</i>" in driver.find_element(By.ID, "samples").text  # text, not markup
        driver.save_screenshot(str(shots / "browser-retrieval.png"))

        driver.get((report.out_dir / "browser" / "RN50_sugar_crepe_image_caption_selection.html").as_uri())
        order = np.argsort(MARGIN, kind="stable")
        assert _shown(driver) == INDEX[order].tolist()  # worst margin first
        row = driver.find_element(By.CSS_SELECTOR, "#samples tr[data-index='9']")
        assert HOSTILE in row.get_attribute("textContent") and "img9.jpg" in row.text  # text, not markup
        assert not driver.find_elements(By.CSS_SELECTOR, "#samples img")
        Select(driver.find_element(By.ID, "filter-subset")).select_by_visible_text("obj")
        Select(driver.find_element(By.ID, "filter-outcome")).select_by_visible_text("correct: no")
        wanted = [i for i in order if SUBSET[i] == "obj" and not MARGIN[i] > 0]
        assert _shown(driver) == INDEX[wanted].tolist() and driver.find_element(By.ID, "count").text == "3 items"
        driver.save_screenshot(str(shots / "browser-outcomes.png"))
    finally:
        driver.quit()
    assert all((shots / f"browser-{v}.png").stat().st_size > 5000 for v in ("overview", "cell", "disagreement",
                                                                           "retrieval", "outcomes"))


def test_thumbnails_show_the_records_samples_once(tmp_path, monkeypatch, caplog):
    from PIL import Image

    from clipbench.datasets import get_dataset, load_split
    from clipbench.results.report import browser_thumbs

    split = load_split(get_dataset("digits"), "test", None)  # bundled: no data root needed
    record = {"dataset": "digits", "split": "test", "dataset_fingerprint": split.fingerprint}
    monkeypatch.setattr(browser_thumbs, "ALL_UP_TO", 10)  # 797 samples: only the wanted ones
    make = browser_thumbs.thumbnail_maker(None, tmp_path)
    made = make(record, [5, 700, 5, 9999])
    assert sorted(made) == [5, 700]
    image = split.torch_dataset(lambda im: im)[700][0]
    with Image.open(tmp_path / made[700]) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == browser_thumbs.THUMB_PX
        small = np.asarray(thumb.convert("L").resize(image.size)).astype(float)
    assert np.corrcoef(small.ravel(), np.asarray(image.convert("L")).astype(float).ravel())[0, 1] > 0.9
    stamp = (tmp_path / made[5]).stat().st_mtime_ns
    assert browser_thumbs.thumbnail_maker(None, tmp_path)(record, [5]) == {5: made[5]}
    assert (tmp_path / made[5]).stat().st_mtime_ns == stamp  # cached, not redrawn
    other = browser_thumbs.thumbnail_maker(None, tmp_path / "other")
    assert other(record | {"dataset_fingerprint": "another"}, [5]) == {} and "not the data" in caplog.text
