"""Provenance and cost in every record (git commit + dirty flag, --tag, throughput, phases, peak memory)
and `clipbench history` with its trend and throughput plots."""

from __future__ import annotations

import json
import subprocess

import pytest

import clipbench
from clipbench.cli import main
from clipbench.results.history import format_history, git_state, history_points, throughput_points
from clipbench.results.plots import throughput_plot, trend_plot
from clipbench.results.records import read_records
from clipbench.suites import parse_suite

SUITE = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                     "options": {"bootstrap": 50, "offline": True, "threads": 1}}, "t", "hist", check_dataset=None)
PNG = b"\x89PNG\r\n\x1a\n"


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory):
    """Three tagged runs (the first extracts, the later ones hit the feature cache) in one results dir."""
    root = tmp_path_factory.mktemp("history")
    for tag in ("before", "after", None):
        clipbench.run("clipbench-tiny", suite=SUITE, cache_dir=root / "cache", results_dir=root / "res",
                      device="cpu", progress=False, tag=tag)
    return root


def test_records_carry_tag_and_cost(history_dir):
    first, second, third = read_records(history_dir / "res")
    assert [r["tag"] for r in (first, second, third)] == ["before", "after", None]
    cost = first["cost"]
    assert cost["device_name"].startswith("cpu")
    assert set(cost["phase_s"]) == {"load", "data", "text", "image", "task"}
    assert all(v is not None and v >= 0 for v in cost["phase_s"].values()) and cost["phase_s"]["image"] > 0
    assert cost["images_extracted"] == 797
    assert cost["images_per_s_encoder"] >= cost["images_per_s_end_to_end"] > 0
    assert cost["peak_memory_kind"] == "process_max_rss" and cost["peak_memory_bytes"] > 50 * 2 ** 20
    # the later runs found every feature in the cache: nothing extracted, so no throughput to claim
    assert second["cost"]["images_extracted"] == 0 and second["cost"]["images_per_s_end_to_end"] is None


def test_git_commit_and_dirty_flag_of_the_working_directory(history_dir, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "model.py").write_text("x = 1\n")
    _git(repo, "add", "model.py")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)
    common = {"suite": SUITE, "cache_dir": history_dir / "cache", "device": "cpu", "progress": False}
    (record,) = clipbench.run("clipbench-tiny", results_dir=tmp_path / "res", **common)
    assert record["git"] == {"commit": head, "dirty": False}
    (repo / "untracked.txt").write_text("not part of the commit\n")
    assert git_state(str(repo)) == {"commit": head, "dirty": False}  # untracked files do not count
    (repo / "model.py").write_text("x = 2\n")
    (record,) = clipbench.run("clipbench-tiny", results_dir=tmp_path / "res", **common)
    assert record["git"] == {"commit": head, "dirty": True}
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (record,) = clipbench.run("clipbench-tiny", results_dir=tmp_path / "res2", **common)
    assert record["git"] is None


def test_history_lists_each_row_over_time_with_tags(history_dir, capsys):
    res = history_dir / "res"
    points = history_points(res)
    assert [p.tag for p in points] == ["before", "after", None]
    assert all(p.ci_low <= p.value <= p.ci_high for p in points)
    assert main(["history", str(res), "--model", "clipbench-tiny", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "clipbench-tiny / digits / zeroshot (top1)"
    assert len(out) == 4 and out[1].rstrip().endswith("before") and out[2].rstrip().endswith("after")
    assert "+0.00" in out[2]  # the change against the previous run
    assert main(["history", str(res), "--model", "ViT-B/32"]) == 0
    assert capsys.readouterr().out.strip() == "no records match"


def test_history_text_marks_dirty_commits_and_changes(tmp_path):
    lines = []
    for i, (value, dirty, tag) in enumerate(((70.0, False, "v1"), (68.5, True, None), (71.25, False, "v2"))):
        lines.append(json.dumps({"model": "m", "dataset": "d", "task": "zeroshot", "metrics": {"top1": value},
                                 "primary_metric": "top1", "timestamp": f"2026-01-0{i + 1}T00:00:00+00:00",
                                 "ci95": {"low": value - 2, "high": value + 2}, "tag": tag,
                                 "git": {"commit": f"{i}" * 40, "dirty": dirty}}))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    text = format_history(history_points(tmp_path)).splitlines()
    assert "70.00 [68.00, 72.00]" in text[1] and text[1].endswith("0000000000       v1")
    assert "-1.50" in text[2] and "1111111111+dirty" in text[2]
    assert "+2.75" in text[3] and text[3].endswith("v2")


def test_trend_and_throughput_plots_are_pngs(history_dir, tmp_path, capsys):
    res = history_dir / "res"
    assert trend_plot(history_points(res)).startswith(PNG)
    rows = throughput_points(res)
    assert len(rows) == 1 and rows[0]["x"] == read_records(res)[0]["cost"]["images_per_s_end_to_end"]
    assert throughput_plot(rows).startswith(PNG)
    trend, speed = tmp_path / "trend.png", tmp_path / "speed.png"
    assert main(["history", str(res), "--plot", str(trend), "--throughput-plot", str(speed)]) == 0
    assert trend.read_bytes().startswith(PNG) and speed.read_bytes().startswith(PNG)
    assert main(["history", str(res), "--task", "linear_probe", "--throughput-plot", str(speed)]) == 2
    assert "no matching record has a measured throughput" in capsys.readouterr().err


def test_report_has_a_history_and_cost_section(history_dir, tmp_path):
    from clipbench.results.report import build_report

    report = build_report(history_dir / "res", out_dir=tmp_path / "report")
    md = report.markdown.read_text()
    assert "## History and cost" in md
    names = {p.name for p in report.images}
    assert {"trend.png", "throughput.png"} <= names
    assert (tmp_path / "report" / "trend.png").read_bytes().startswith(PNG)
