"""Progress output: a periodic plain line (no carriage returns) when stderr is not a terminal."""

from __future__ import annotations

import io

from clipbench.foundations.progress import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_interactive_log_gets_whole_lines(monkeypatch):
    monkeypatch.setenv("CLIPBENCH_PROGRESS_INTERVAL", "0")
    log = io.StringIO()
    for _ in progress_bar(range(5), desc="extract digits/test", unit="img", file=log, leave=False):
        pass
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[-1].startswith("extract digits/test: 100%") and "5/5" in lines[-1]
    assert all(line.startswith("extract digits/test") for line in lines)


def test_terminal_keeps_the_redrawn_bar():
    tty = _Tty()
    for _ in progress_bar(range(3), desc="sweep", file=tty, mininterval=0):
        pass
    assert "\r" in tty.getvalue()


def test_disabled_bar_writes_nothing():
    log = io.StringIO()
    for _ in progress_bar(range(3), desc="quiet", file=log, disable=True):
        pass
    assert log.getvalue() == ""


def test_a_loop_shorter_than_the_interval_leaves_no_lines(monkeypatch):
    monkeypatch.setenv("CLIPBENCH_PROGRESS_INTERVAL", "60")
    log = io.StringIO()
    for _ in progress_bar(range(3), desc="quick", file=log):
        pass
    assert log.getvalue() == ""
