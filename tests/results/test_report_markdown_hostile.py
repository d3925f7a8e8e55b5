"""Hostile names in report.md and compare's Markdown (issue 27): rendered with markdown-it-py, then opened in
headless Chromium, a model, dataset or tag holding ``<svg onload=...>`` runs nothing, and a ``|`` or a line
break in a name neither breaks a table nor adds a heading."""

from __future__ import annotations

import json
import re

import pytest
from _browser_fixtures import run_chromium
from markdown_it import MarkdownIt

from clipbench.cli import main
from clipbench.foundations.escaping import markdown_text
from clipbench.results.report import build_report

# each payload, if it ran, would set document.title: Chromium's --dump-dom then shows <title>PWNED...</title>
MODEL = "<svg onload=\"document.title='PWNED-model'\">"
DATASET = "<img src=x onerror=\"document.title='PWNED-dataset'\">"
TAG = "<script>document.title='PWNED-tag'</script>"
BREAKER = "evil|cell\n# Injected heading"
LINK = "[click](javascript:document.title='PWNED-link')"


def _record(model, dataset, value, **extra):
    return {"schema_version": 1, "timestamp": "2026-11-23T12:00:00+00:00", "model": model, "model_family": "ViT",
            "dataset": dataset, "task": "zeroshot", "primary_metric": "top1", "metrics": {"top1": value},
            "ci95": {"low": value - 1, "high": value + 1}, "precision": "fp32", "limit": None, "n_samples": 10,
            **extra}


def _results(root, name, value):
    folder = root / name
    folder.mkdir()
    records = [_record(MODEL, DATASET, value, tag=TAG), _record(BREAKER, "cifar10", value, tag=TAG),
               _record(LINK, BREAKER, value), _record("RN50", "cifar10", value)]
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def _active_markup(dom: str) -> list[str]:
    """Elements that could run script: svg or script tags, event-handler attributes, javascript: links."""
    return re.findall(r"<(?:svg|script)\b|<[a-z][^>]*\son[a-z]+\s*=|href=\"javascript:", dom)


def report_images(root) -> list:
    return sorted((root / "report").glob("*.png"))


def _render(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    new, base = _results(root, "new", 60.0), _results(root, "base", 61.0)
    report = build_report(new, out_dir=root / "report")
    return root, report.markdown.read_text(), new, base


@pytest.mark.subprocess
@pytest.mark.browser
def test_report_markdown_runs_nothing_in_chromium(pages, tmp_path):
    root, markdown, *_ = pages
    assert "\n# Injected heading" not in markdown
    page = root / "report_md.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + _render(markdown)
                    + "</body></html>")
    dom = run_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "PWNED" not in "".join(re.findall(r"<title>.*?</title>", dom))
    assert not _active_markup(dom)
    assert set(re.findall(r'<img src="([^"]*)"', dom)) == {p.name for p in report_images(root)}
    assert "&lt;svg onload=\"document.title='PWNED-model'\"&gt;" in dom  # shown as written
    assert "<h1>Injected heading</h1>" not in dom and dom.count("<h1>") == 1


@pytest.mark.subprocess
@pytest.mark.browser
def test_compare_markdown_runs_nothing_in_chromium(pages, tmp_path, capsys):
    root, _, new, base = pages
    assert main(["compare", str(new), "--baseline", str(base), "--max-drop", "5"]) == 0
    markdown = capsys.readouterr().out
    html = _render(markdown)
    page = root / "compare_md.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + html + "</body></html>")
    dom = run_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert "PWNED" not in "".join(re.findall(r"<title>.*?</title>", dom))
    assert not _active_markup(dom) and "<img" not in dom and "<h1>" not in dom
    table = re.search(r"<table>.*?</table>", html, re.S)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert len(rows) == 1 + 4 and all(r.count("<td") == 9 for r in rows[1:])  # no cell split by a "|"


@pytest.mark.parametrize("name", [MODEL, DATASET, TAG, BREAKER, LINK, "**bold** _it_ ~~x~~", "a\\|b", "&lt;svg&gt;",
                                  "`code` <!-- c --> <http://x>", "linear_probe", "57.3 *", "p < 0.001"])
def test_markdown_text_renders_as_written_in_one_cell(name):
    html = _render("| a | b |\n|---|---|\n| " + markdown_text(name) + " | z |\n")
    cells = re.findall(r"<td>(.*?)</td>", html, re.S)
    assert len(cells) == 2 and cells[1] == "z"
    shown = cells[0].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    assert shown == name.replace("\n", "\\n")
