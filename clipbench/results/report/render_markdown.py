"""report.md from the report's blocks: every text goes through ``markdown_text``, so no name runs or breaks a table."""

from __future__ import annotations

from clipbench.foundations.escaping import markdown_text
from clipbench.results.report.blocks import Block


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a cell's line breaks (several items) become "; "."""
    def cell(text: str) -> str:
        return "; ".join(markdown_text(part) for part in str(text).split("\n"))

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(source: str, counts: str, blocks: list[Block]) -> str:
    parts = ["# clipbench report", "", f"Source: {markdown_text(source)} — {markdown_text(counts)}", ""]
    for block in blocks:
        parts += [f"## {markdown_text(block.heading)}", "", md_table(block.header, block.rows), ""]
        if block.note:
            parts += [markdown_text(block.note), ""]
        for caption, name in block.figures:
            text = markdown_text(caption)
            parts += [f"![{text}]({markdown_text(name)})", "", f"*{text}*", ""]
        for line in block.missing:
            parts += [f"*{markdown_text(line)}*", ""]
        parts += [f"- [{markdown_text(text)}]({markdown_text(target)})" for text, target in block.links]
        parts += [""] if block.links else []
    return "\n".join(parts)
