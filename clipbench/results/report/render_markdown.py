"""report.md from the report's blocks."""

from __future__ import annotations

from clipbench.results.report.blocks import Block


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a cell's line breaks (several items) become "; "."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(c.replace("\n", "; ") for c in r) + " |" for r in rows]
    return "\n".join(lines)

def render_markdown(source: str, counts: str, blocks: list[Block]) -> str:
    parts = ["# clipbench report", "", f"Source: `{source}` — {counts}", ""]
    for block in blocks:
        parts += [f"## {block.heading}", "", md_table(block.header, block.rows), ""]
        if block.note:
            parts += [block.note, ""]
        for caption, name in block.figures:
            parts += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        for line in block.missing:
            parts += [f"*{line}*", ""]
    return "\n".join(parts)
