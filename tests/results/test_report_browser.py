"""report.html in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run).

The page is opened as a user would open it (file://, images next to it). A copy of the page gets a
few lines of script that write, once the page has loaded, each image's decoded width into the DOM,
which `--dump-dom` then prints: an image that failed to load has a natural width of 0.
"""

from __future__ import annotations

import json
import re

import pytest
from _browser_fixtures import run_chromium as _run_chromium
from PIL import Image

from clipbench.results.report import build_report

pytestmark = [pytest.mark.subprocess, pytest.mark.browser]

_PROBE = """<script>
window.addEventListener("load", () => {
  const seen = [...document.images].map(i => [i.getAttribute("src"), i.complete, i.naturalWidth, i.naturalHeight]);
  document.body.setAttribute("data-probe", JSON.stringify(seen));
});
</script>"""


def _record(model, family, dataset, value, task="zeroshot", **extra):
    return {
        "schema_version": 1, "timestamp": "2026-11-23T12:00:00+00:00", "model": model, "model_family": family,
        "model_identity": "NativeClipModel:" + "1" * 64, "weights_sha256": "1" * 64, "dataset": dataset,
        "split": "test", "dataset_fingerprint": "fp", "n_samples": 500, "task": task, "primary_metric": "top1",
        "metrics": {"top1": value}, "ci95": {"low": value - 1, "high": value + 1}, "precision": "fp32",
        "limit": None, "versions": {"clipbench": "0.1.0"}, **extra,
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    records = []
    for model, family, base in (("RN50", "ResNet", 60.0), ("ViT-B/32", "ViT", 66.0), ("/ckpts/mine.pt", "ViT", 55.0)):
        for i, dataset in enumerate(("cifar10", "cifar100", "digits")):
            records.append(_record(model, family, dataset, base - 10 * i))
            records.append(_record(model, family, dataset, base + 5 - 10 * i, task="linear_probe"))
    records.append(_record("RN50", "ResNet", "cifar10", 40.0, limit=50))
    (root / "results").mkdir()
    (root / "results" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return build_report(root / "results", out_dir=root / "report")


def test_every_image_loads_and_the_tables_are_in_the_dom(report, tmp_path):
    page = report.html.read_text()
    probe = report.out_dir / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE + "</body>"))
    dom = _run_chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    match = re.search(r'data-probe="([^"]*)"', dom)
    assert match, "the page's load event did not fire in Chromium"
    images = json.loads(match[1].replace("&quot;", '"').replace("&amp;", "&"))
    expected = sorted(p.name for p in report.images)
    assert sorted(src for src, *_ in images) == expected and len(expected) == 5  # + the classification views
    for src, complete, width, height in images:
        with Image.open(report.out_dir / src) as img:
            assert complete and (width, height) == img.size, f"{src} did not load in Chromium"
    tables = re.findall(r"<h2>([^<]+)</h2>\s*<table>", dom)
    assert tables == ["Models", "Zero-shot classification", "Linear probe", "Classification views per model",
                      "History and cost", "Suite averages", "Zero-shot against linear probe", "Average rank across datasets",
                      "Mean per task type", "Accuracy against compute", "Published numbers", "Provenance"]
    assert dom.count("<tr>") >= 3 + 1 + 4 + 4 + 4  # header rows plus model rows (the variant row included)


def test_screenshot_shows_the_page(report, tmp_path):
    shot = tmp_path / "report.png"
    _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", report.html.as_uri())
    with Image.open(shot) as img:
        assert img.size == (1280, 2400)
        rgb = img.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 500  # text, tables and the plots' colours, not a blank or error page
    # the plots' family colours (blues for ResNet, oranges for ViT) were painted
    assert any(b > 150 and r < 100 for _, (r, g, b) in colours)
    assert any(r > 200 and 60 < g < 180 and b < 80 for _, (r, g, b) in colours)
