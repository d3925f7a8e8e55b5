"""Headless Chromium (Debian's `chromium`, installed by .ci/run) for the tests that open what clipbench writes
as a user's browser would: the HTML report, and Markdown rendered by markdown-it-py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.fail("headless Chromium is needed for this test: apt-get install -y chromium (.ci/run installs it)")


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)
