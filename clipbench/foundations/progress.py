"""Progress for slow loops: a tqdm bar on a terminal, a periodic one-line message in a log.

In CI logs and ``nohup`` files a carriage-return bar becomes one endless line (or hundreds of
partial ones), so when stderr is not a terminal the same bar is written as a plain line every
``CLIPBENCH_PROGRESS_INTERVAL`` seconds (default 30) and once at the end: ``extract digits/test:
512/797 img [00:04<00:02]``; a loop shorter than the interval prints nothing. Everything goes to stderr, never to the results on stdout.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

DEFAULT_INTERVAL_S = 30.0


class _LineWriter:
    """A file for tqdm that turns each redraw into one complete line (no carriage returns), and stays
    silent for the first ``interval`` seconds, so a loop that ends sooner leaves no progress lines."""

    def __init__(self, stream, interval: float) -> None:
        self.stream, self.interval = stream, interval
        self.started = time.monotonic()

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        if line and time.monotonic() - self.started >= self.interval:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("CLIPBENCH_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def progress_bar(*args: Any, **kwargs: Any):
    """``tqdm(...)`` with the same arguments; in a non-interactive log a periodic plain line instead."""
    from tqdm import tqdm

    stream = kwargs.pop("file", None) or sys.stderr
    if kwargs.get("disable") or stream.isatty():
        return tqdm(*args, file=stream, **kwargs)
    interval = _interval()
    kwargs.update(file=_LineWriter(stream, interval), mininterval=interval, maxinterval=max(interval, 1.0), ascii=True,
                  dynamic_ncols=False, ncols=100, leave=True)
    return tqdm(*args, **kwargs)
