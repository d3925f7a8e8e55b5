"""The report's analyses after the task sections: views across datasets (any source), and, from a
results.jsonl, effective robustness, calibration and the per-sample browser (docs/analyses.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipbench.results.report.blocks import Block


def analysis_blocks(frame: pd.DataFrame, records: list[dict] | None, results_dir: Path, names: dict[str, str],
                    families: dict[str, str], facts: dict[str, dict], out: Path,
                    thumbnails=None) -> tuple[list[Block], list[Path]]:
    """``records``: results.jsonl's records (None for a leaderboard.csv); ``results_dir``: where their per-sample
    files are; ``thumbnails``: see ``browser.browser_block`` (None: the per-sample pages show no images)."""
    from clipbench.results.records import latest_records, record_variant
    from clipbench.results.report.browser import browser_block
    from clipbench.results.report.calibration_section import calibration_block
    from clipbench.results.report.robustness_section import robustness_block
    from clipbench.results.report.views_section import views_blocks

    blocks, written = views_blocks(frame, names, facts), []
    if records is not None:
        latest = [r for r in latest_records(records) if not record_variant(r)]
        for block, files in (robustness_block(latest, results_dir, names, families, out),
                             calibration_block(latest, names, out),
                             browser_block(records, results_dir, names, out, thumbnails)):
            if block is not None:
                blocks.append(block)
                written += files
    return blocks, written
