"""Every `clipbench` command in the README is checked in CI (issue 28): each one parses with the real
argument parser and names models, datasets and suites that exist, and each one that can run offline
here runs, exactly as written, in a scratch folder; the smoke run must print the README's table
digit for digit. A new README command must be classified below, so the README and the tool cannot drift."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from clipbench.cli import build_parser, main
from clipbench.datasets.registry import DATASETS, SPEC_PREFIXES
from clipbench.models import MODELS
from clipbench.suites import builtin_suite_names

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: commands that need weights or datasets downloaded from the internet: parsed and checked, not run here
NEEDS_DOWNLOADS = ("download ", "run --model ViT-", "run --model RN50", "run --suite image_retrieval --dataset folder:/path")


def readme_commands() -> list[str]:
    """The `clipbench ...` commands of the README's indented code blocks (after `&&`, without `# comments`)."""
    commands = []
    for line in README.splitlines():
        if not line.startswith("    "):
            continue
        for part in line.strip().split("&&"):
            part = part.strip()
            if part.startswith("clipbench "):
                commands.append(re.sub(r"\s+#.*$", "", part))
    return list(dict.fromkeys(commands))


COMMANDS = readme_commands()
RUNNABLE = [c for c in COMMANDS if not c.removeprefix("clipbench ").startswith(NEEDS_DOWNLOADS)]


def _values(argv: list[str], flag: str) -> list[str]:
    return [v for i, a in enumerate(argv) if a == flag and i + 1 < len(argv) for v in argv[i + 1].split(",")]


def test_the_readme_has_commands_to_check():
    assert len(COMMANDS) >= 12 and "clipbench run --suite smoke" in COMMANDS
    assert "clipbench compare new-results --baseline baseline-results --max-drop 0.5" in RUNNABLE


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_parses_and_names_things_that_exist(command):
    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv)  # an unknown flag or a bad choice exits 2 here
    assert callable(args.func)
    for model in _values(argv, "--model"):
        assert model in MODELS, f"README command names an unknown model {model!r}"
    for dataset in _values(argv, "--dataset"):
        assert dataset in DATASETS or dataset.partition(":")[0] in SPEC_PREFIXES, dataset
    for suite in _values(argv, "--suite"):
        assert suite in builtin_suite_names() or suite.endswith(".yaml"), suite
    if argv[0] == "download":
        assert getattr(DATASETS.get(argv[1]), "downloads", ()), f"{argv[1]} has no download"


def _readme_table() -> list[list[str]]:
    rows = [line.split() for line in README.splitlines() if line.startswith("    clipbench-tiny  digits")]
    assert len(rows) == 2
    return rows


@pytest.mark.slow  # runs the quick start, report and CI gate as written (about 5 s)
def test_the_runnable_readme_commands_run_as_written(tmp_path, monkeypatch, capsys):
    """Quick start, then the CI gate (with `my_ci.yaml` a copy of the `ci` suite, as docs/ci-gate.md says)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLIPBENCH_CACHE", str(tmp_path / "cache"))
    shutil.copy(ROOT / "clipbench" / "suites" / "ci.yaml", tmp_path / "my_ci.yaml")
    ran = []
    for command in RUNNABLE:
        if command.startswith("clipbench compare"):  # the baseline is the run it gates, copied
            shutil.copytree(tmp_path / "new-results", tmp_path / "baseline-results", dirs_exist_ok=True)
        capsys.readouterr()
        code = main(shlex.split(command)[1:])
        out = capsys.readouterr().out
        assert code == 0, f"{command} exited {code}"
        if command == "clipbench run --suite smoke":
            printed = [line.split() for line in out.splitlines() if line.startswith("clipbench-tiny")]
            assert printed == _readme_table(), "the README's smoke table is not what `clipbench run --suite smoke` prints"
        ran.append(command)
    assert (tmp_path / "results" / "report" / "report.html").is_file()
    assert len(ran) == len(RUNNABLE) >= 7
