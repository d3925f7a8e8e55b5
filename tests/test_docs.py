"""The docs stay navigable and true: generated pages are current, links resolve, and the README's
counts, task table and guarantees match the code and the tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clipbench import docs_gen
from clipbench.datasets.registry import DATASETS
from clipbench.suites import builtin_suite_names

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted([README, *(ROOT / "docs").rglob("*.md")])
TEST_COMMAND = "pip install -e '.[test]' && python -m pytest -q"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.*?) *$")


def _prose(path: Path) -> list[str]:
    """The page's lines outside fenced code blocks (links in code are examples, not links)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation other than - and _ dropped, spaces as -."""
    return {re.sub(r"[^\w\- ]", "", m[1].lower()).replace(" ", "-")
            for m in map(HEADING.match, _prose(path)) if m}


@pytest.mark.parametrize("page", docs_gen.PAGES)
def test_generated_pages_are_current(page):
    expected = docs_gen.generate()[page]
    committed = (ROOT / page).read_text(encoding="utf-8") if (ROOT / page).is_file() else ""
    assert committed == expected, f"{page} is stale: run `{docs_gen.REGENERATE}` and commit the result"


def test_the_check_mode_names_a_stale_page(tmp_path, capsys):
    for page in docs_gen.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("old\n", encoding="utf-8")
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 1
    assert "docs/cli.md is stale" in capsys.readouterr().err
    assert docs_gen.main(["--root", str(tmp_path)]) == 0 and docs_gen.stale(tmp_path) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(page):
    broken = []
    for line in _prose(page):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(target)
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_readme_is_short_and_keeps_the_ci_test_command():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert TEST_COMMAND in text
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")  # CI runs what the README says


def test_readme_counts_are_the_registries():
    text = " ".join(README.read_text(encoding="utf-8").split())
    kinds = {getattr(adapter, "kind", "classification") for _, adapter in DATASETS.items()}
    assert f"{len(DATASETS)} registered datasets in {len(kinds)} kinds" in text
    assert f"{len(docs_gen.shipped_tasks())} tasks and {len(builtin_suite_names())} built-in suites" in text
    for suite in builtin_suite_names():
        assert f"`{suite}`" in text, f"the README's list of suites lacks {suite}"


@pytest.mark.parametrize("name", docs_gen.shipped_tasks())
def test_every_task_has_a_page_linked_from_the_readme_that_names_its_options(name):
    page = ROOT / "docs" / "tasks" / f"{name}.md"
    assert page.is_file(), f"task {name} has no docs/tasks/{name}.md"
    assert f"(docs/tasks/{name}.md)" in README.read_text(encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    missing = [o.name for o in docs_gen.shipped_tasks()[name].options if o.flag not in text and o.name not in text]
    assert not missing, f"docs/tasks/{name}.md does not explain option(s) {missing}"


def test_every_guarantee_names_tests_that_exist():
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    guarantees = [g for g in re.split(r"\n- ", text.split("\n## ")[0])[1:] if g.startswith("**")]
    assert len(guarantees) >= 10
    for guarantee in guarantees:
        assert "tests/" in guarantee, f"guarantee without a test: {guarantee[:60]}"
    named = re.findall(r"(tests/(?:\w+/)?\w+\.py)::(\w+)", text)
    assert named
    for file, test in named:
        source = ROOT / file
        assert source.is_file() and re.search(rf"^def {test}\(", source.read_text(encoding="utf-8"), re.M), \
            f"docs/guarantees.md names {file}::{test}, which does not exist"
