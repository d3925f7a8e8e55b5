"""Results-dir writes and symlinks, and temporary files left by killed writers (issue 27)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time

import pytest

from clipbench.foundations import fileio
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import (
    append_line_locked,
    atomic_open,
    atomic_write_bytes,
    check_writable,
    sweep_stale_temps,
)
from clipbench.results.records import append_record, write_leaderboards


def _record():
    return {"schema_version": 1, "model": "m", "dataset": "d", "task": "zeroshot", "primary_metric": "top1",
            "metrics": {"top1": 50.0}, "timestamp": "2026-01-01T00:00:00+00:00"}


def test_a_symlinked_results_file_is_refused_and_its_target_untouched(tmp_path):
    results, outside = tmp_path / "results", tmp_path / "elsewhere.jsonl"
    results.mkdir()
    outside.write_text("precious\n")
    (results / "results.jsonl").symlink_to(outside)
    with pytest.raises(ClipbenchError, match="symlink"):
        append_record(results, _record())
    with pytest.raises(ClipbenchError, match="symlink"):  # found before any work, by the output check
        check_writable(results / "results.jsonl", append=True)
    assert outside.read_text() == "precious\n"


def test_a_symlinked_lock_file_is_refused(tmp_path):
    outside = tmp_path / "precious"
    outside.write_text("keep me")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / ".results.jsonl.lock").symlink_to(outside)
    with pytest.raises(ClipbenchError, match="symlink"):
        append_record(tmp_path / "results", _record())
    assert outside.read_text() == "keep me"


def test_a_symlinked_folder_leaving_the_results_dir_is_refused(tmp_path):
    results, outside = tmp_path / "results", tmp_path / "outside"
    results.mkdir()
    outside.mkdir()
    (results / "samples").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ClipbenchError, match="leads outside"):
        atomic_write_bytes(results / "samples" / "abc.parquet", b"x", within=results)
    with pytest.raises(ClipbenchError, match="leads outside"):
        append_line_locked(results / "samples" / "log.jsonl", "{}", within=results)
    with pytest.raises(ClipbenchError, match="leads outside"):
        check_writable(results / "samples" / "probe.parquet", within=results)
    assert list(outside.iterdir()) == []
    # a link that stays inside is fine, and so is a results dir that is itself a link
    (results / "real").mkdir()
    (results / "inner").symlink_to(results / "real", target_is_directory=True)
    atomic_write_bytes(results / "inner" / "a.bin", b"y", within=results)
    assert (results / "real" / "a.bin").read_bytes() == b"y"
    (tmp_path / "link").symlink_to(results, target_is_directory=True)
    append_record(tmp_path / "link", _record())
    write_leaderboards(tmp_path / "link")
    assert (results / "leaderboard.csv").is_file()


def test_leaderboards_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    results, outside = tmp_path / "results", tmp_path / "victim.csv"
    results.mkdir()
    outside.write_text("victim")
    append_record(results, _record())
    (results / "leaderboard.csv").symlink_to(outside)
    write_leaderboards(results)
    assert outside.read_text() == "victim" and not (results / "leaderboard.csv").is_symlink()


def _temp(folder, name, age_s):
    path = folder / f".{name}.ab3_x9kq.tmp"
    path.write_bytes(b"partial")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_the_next_write_sweeps_temporary_files_of_killed_writers(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "_SWEPT", set())  # a fresh process
    samples = tmp_path / "samples"
    samples.mkdir()
    stale = _temp(samples, "0123abcd.parquet", 3600)
    fresh = _temp(samples, "4567ef01.parquet", 0)  # may belong to a writer that has just started
    live = _temp(samples, "89ab2345.parquet", 3600)  # an old one still held by a live writer
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    other = samples / "keep.tmp"
    other.write_text("not ours")
    try:
        atomic_write_bytes(samples / "new.parquet", b"data")
    finally:
        os.close(fd)
    assert not stale.exists() and fresh.exists() and live.exists() and other.exists()
    assert (samples / "new.parquet").read_bytes() == b"data"


@pytest.mark.subprocess
def test_a_kill_mid_write_leaves_a_temp_that_the_next_process_sweeps(tmp_path):
    folder = tmp_path / "samples"
    code = (f"import os, time\nfrom clipbench.foundations.fileio import atomic_open\n"
            f"with atomic_open({str(folder / 'x.parquet')!r}) as fh:\n"
            f"    fh.write(b'half'); fh.flush(); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert proc.stdout.readline().strip() == "writing"
        temps = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert len(temps) == 1
        assert sweep_stale_temps(folder) == 0  # young, and locked by its writer
        os.utime(temps[0], (0, 0))
        assert sweep_stale_temps(folder) == 0  # old, but its writer is alive
    finally:
        proc.kill()
        proc.wait()
    assert sweep_stale_temps(folder) == 1 and not list(folder.iterdir())


def test_atomic_open_still_leaves_nothing_on_failure_and_publishes_whole_files(tmp_path):
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "f.json") as fh:
        fh.write(b"{")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    atomic_write_bytes(tmp_path / "f.json", json.dumps({"a": 1}).encode())
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_symlinked_samples_folder_is_refused_before_work_and_at_write(tmp_path):
    """Per-sample files stay inside the results dir: a ``samples/`` link leading out is one line, up front
    (``check_results_dir``) and at the write itself, and nothing lands outside."""
    import numpy as np

    from clipbench.engine.plan import check_results_dir
    from clipbench.foundations.errors import ClipbenchError
    from clipbench.results.samples import write_sample_table
    from clipbench.scoring.samples import build_kind_table

    results, outside = tmp_path / "results", tmp_path / "elsewhere"
    results.mkdir()
    outside.mkdir()
    (results / "samples").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ClipbenchError, match="leads outside"):
        check_results_dir(results)
    record = {"record_id": "r1", "model": "m", "dataset": "d", "task": "zeroshot", "dataset_fingerprint": "f"}
    with pytest.raises(ClipbenchError, match="leads outside"):
        table = build_kind_table("classification", {"scores": np.eye(3, dtype=np.float32), "labels": np.arange(3),
                                                    "score_kind": "logits"})
        write_sample_table(results, record, table, "classification")
    assert list(outside.iterdir()) == []
