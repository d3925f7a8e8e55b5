"""What a primary metric hides, as each task declares it (``Task.detail_table``, gathered by
``clipbench.tasks.details``): the report draws the tables and their figures and names no task."""

from __future__ import annotations

from pathlib import Path

from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_bytes
from clipbench.results.records import record_variant
from clipbench.results.report.blocks import Block, bars_table


def detail_blocks(records: list[dict], names: dict[str, str], families: dict[str, str], out: Path,
                  plots) -> tuple[list[Block], list[Path]]:
    """The tasks' detail tables over the latest default-variant records, with their bar charts written
    into ``out`` (file names made safe: they come from record fields)."""
    from clipbench.results.records import latest_records
    from clipbench.tasks.details import task_detail_blocks

    latest = [r for r in latest_records(records) if not record_variant(r)]
    colours = {names.get(m, m): f for m, f in families.items()}
    blocks, written = [], []
    for table in task_detail_blocks(latest, names):
        block = Block(table.title, table.header, table.rows, table.note)
        for fig in table.figures:
            file = file_slug(fig.file)
            atomic_write_bytes(out / file, plots.grouped_bars(
                bars_table(fig.cells), {m: colours.get(m, "other") for m in fig.cells}, fig.title, fig.ylabel),
                within=out)
            block.figures.append((fig.caption, file))
            written.append(out / file)
        blocks.append(block)
    return blocks, written
