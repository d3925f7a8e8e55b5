"""``--solver sklearn_exact`` on the CLI: the converged scikit-learn probe, with its own record and variant."""

from __future__ import annotations

import json

import pytest

from clipbench.cli import main


@pytest.mark.slow
def test_cli_solver_sklearn_exact_runs_the_converged_reference_and_says_so(tmp_path, capsys):
    argv = ["run", "--suite", "ci", "--dataset", "digits", "--offline", "--no-progress", "--workers", "0",
            "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "res"),
            "--format", "json", "--limit", "200"]
    assert main([*argv, "--solver", "sklearn_exact"]) == 0
    assert main(argv) == 0  # the default (torch) probe on the same cached features
    capsys.readouterr()
    records = [json.loads(line) for line in (tmp_path / "res" / "results.jsonl").read_text().splitlines()]
    exact, default = [r for r in records if r["task"] == "linear_probe"]
    assert exact["linear_probe"]["solver"] == "sklearn_exact" and default["linear_probe"]["solver"] == "torch"
    assert "newton-cholesky" in exact["linear_probe"]["convergence"]["method"] and exact["linear_probe"]["convergence"]["all_converged"]
    assert all(fit["criterion"] == "newton-cholesky" for fit in exact["linear_probe"]["convergence"]["sweep"])
    # the converged reference and the exact default solve the same problems: same choice, same top-1
    assert exact["C"] == default["C"] and exact["metrics"]["top1"] == default["metrics"]["top1"]


def test_cli_rejects_an_unknown_solver_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--suite", "ci", "--dataset", "digits", "--offline", "--solver", "lbfgs",
              "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "res")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "sklearn_exact" in err and len(err.strip().splitlines()) == 1
