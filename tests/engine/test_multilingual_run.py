"""``clipbench run --suite multilingual`` offline: a tiny multilingual model (its tokenizer trained on the spot),
digits' prompts in every packaged language and a fake Crossmodal-3600 in 36, one record per language plus the
mean; non-Latin captions (Chinese, right-to-left Arabic, Japanese without spaces) intact through results.jsonl,
the per-sample files, ``clipbench samples``, the leaderboards and the report; ``compare`` matches like with like."""

from __future__ import annotations

import csv
import json

import pytest
from _multilingual_fixtures import CAPTIONS, make_fake_xm3600, make_hf_multilingual_clip

from clipbench import api
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.datasets.languages import dataset_languages
from clipbench.results.records import read_records, record_variant

pytestmark = pytest.mark.slow  # two runs over 45 (model, dataset, language) records: ~5 s


@pytest.fixture(scope="module")
def multilingual_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml")
    folder, _ = make_hf_multilingual_clip(root / "model")
    make_fake_xm3600(root / "data", 3)
    common = ["--model", f"hf:{folder}", "--data-root", str(root / "data"), "--cache-dir", str(root / "cache"),
              "--limit", "40", "--bootstrap", "20", "--workers", "0", "--threads", "1", "--offline"]
    with pytest.MonkeyPatch.context() as mp:  # ~600 files of scratch data: durability is not what this tests
        mp.setattr("os.fsync", lambda fd: None)
        assert main(["run", "--suite", "multilingual", "--results-dir", str(root / "all"), *common]) == 0
        assert main(["run", "--suite", "multilingual", "--language", "zh,en", "--results-dir", str(root / "two"),
                     *common]) == 0
    return root


def test_one_record_per_language_plus_the_mean(multilingual_run):
    records = read_records(multilingual_run / "all")
    by = {(r["dataset"], r["language"]): r for r in records}
    digits_langs = dataset_languages(get_dataset("digits"))
    assert len(digits_langs) >= 6 and len(records) == len(digits_langs) + 1 + 36 + 1
    assert {lang for d, lang in by if d == "xm3600"} == {*dataset_languages(get_dataset("xm3600")), "mean"}
    assert record_variant(by["xm3600", "en"]) == "" and record_variant(by["xm3600", "ar"]) == "lang=ar"
    assert record_variant(by["digits", "zh"]) == "limit=40,lang=zh"
    mean = by["xm3600", "mean"]
    per = [by["xm3600", lang]["metrics"]["mean_recall"] for lang in dataset_languages(get_dataset("xm3600"))]
    assert mean["metrics"]["mean_recall"] == pytest.approx(sum(per) / 36)
    assert mean["ci95"] is None and "samples" not in mean and record_variant(mean).startswith("lang=mean(36:")
    # the same images in every language: one fingerprint, one image-feature extraction
    assert len({by["xm3600", lang]["dataset_fingerprint"] for lang in ("en", "zh", "ar")}) == 1
    assert by["digits", "ja"]["prompt_hash"] != by["digits", "en"]["prompt_hash"]


def test_non_latin_captions_round_trip(multilingual_run, capsys):
    results = multilingual_run / "all"
    lines = (results / "results.jsonl").read_text(encoding="utf-8").splitlines()
    records = {(r["dataset"], r["language"]): r for r in map(json.loads, lines)}
    for lang in ("zh", "ar", "ja"):
        record = records["xm3600", lang]
        capsys.readouterr()
        assert main(["samples", record["record_id"], "--results", str(results), "--format", "csv"]) == 0
        shown = capsys.readouterr().out
        for i in range(3):
            assert f"{CAPTIONS[lang][i]} {i}" in shown  # CJK without spaces, Arabic right to left, intact
        assert main(["samples", record["record_id"][:12], "--results", str(results)]) == 0
        assert CAPTIONS[lang][0] in capsys.readouterr().out
    with open(results / "leaderboard.csv", encoding="utf-8", newline="") as fh:
        variants = {row["variant"] for row in csv.DictReader(fh) if row["dataset"] == "xm3600"}
    assert {"", "lang=zh", "lang=ar", "lang=ja"} <= variants
    pivot = (results / "leaderboard_pivot.csv").read_text(encoding="utf-8")
    assert "limit=40,lang=ar" in pivot
    report = api.report(results, out_dir=multilingual_run / "report")
    html = report.html.read_text(encoding="utf-8")
    assert "lang=ar" in html and "lang=ja" in html and "xm3600" in html
    # the cross-lingual view: each language against English on the same images, paired
    markdown = report.markdown.read_text(encoding="utf-8")
    section = markdown.split("## Cross-lingual")[1].split("\n## ")[0]
    assert "Cross-lingual" in html and section.count("(bootstrap)") == 35 and section.count("(mcnemar)") >= 5
    ar = next(line for line in section.splitlines() if "| xm3600 | zeroshot_retrieval | ar |" in line)
    delta = records["xm3600", "ar"]["metrics"]["mean_recall"] - records["xm3600", "en"]["metrics"]["mean_recall"]
    assert f"| {delta:+.1f} [" in ar
    for lang in ("zh", "ar", "ja"):  # the captions themselves, intact in the HTML
        assert f"{CAPTIONS[lang][0]} 0" in html


def test_compare_matches_like_with_like(multilingual_run):
    comparison = api.compare(multilingual_run / "two", multilingual_run / "all")
    rows = {(r.dataset, r.variant): r for r in comparison.rows}
    for key in (("xm3600", ""), ("xm3600", "lang=zh"), ("digits", "limit=40,lang=zh"), ("digits", "limit=40")):
        assert rows[key].status == "ok" and rows[key].delta == 0  # the same language on both sides
    assert rows["xm3600", "lang=mean(zh+en)"].status == "new"  # a mean over other languages is another row
    assert rows["xm3600", "lang=ar"].status == "MISSING"


@pytest.mark.subprocess
@pytest.mark.browser
def test_the_captions_read_back_from_chromiums_dom(multilingual_run, tmp_path):
    """Chromium opens report.html from disk as a user would; the text it decoded is the captions, not mojibake."""
    import re

    from _browser_fixtures import run_chromium

    report = api.report(multilingual_run / "all", out_dir=tmp_path / "report")
    probe = report.out_dir / "probe.html"
    probe.write_text(report.html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    dom = run_chromium(tmp_path, "--dump-dom", probe.as_uri()).stdout
    match = re.search(r'data-cells="([^"]*)"', dom)
    assert match, "the page's load event did not fire in Chromium"
    cells = json.loads(match[1].replace("&quot;", '"').replace("&amp;", "&"))
    for lang in ("zh", "ar", "ja"):
        assert f"{CAPTIONS[lang][0]} 0" in cells


_PROBE = """<script>
window.addEventListener("load", () => {
  const cells = [...document.querySelectorAll("td")].map(td => td.innerText);
  document.body.setAttribute("data-cells", JSON.stringify(cells));
});
</script>"""
