"""report.html from the report's blocks: every text is HTML-escaped; numbers, hashes and dates get their own
cell style."""

from __future__ import annotations

import html
import re

from clipbench.results.report.blocks import Block

_CELL_KINDS = (
    ("hash", re.compile(r"((\S+: )?[0-9a-f]{12,}(\n|$))+")),  # hashes and "dataset: fingerprint" lines
    ("num", re.compile(r"[-+]?(\d[\d.]*( \[[^\]]*\])?( \*)?|–)")),  # 62.0 [61.5, 62.5], 57.3 *, +0.4
    ("date", re.compile(r"\d{4}-\d\d-\d\d( to \d{4}-\d\d-\d\d)?")),
)


def _html_cell(cell: str) -> str:
    """Numbers right-aligned on one line, hashes in monospace (wrapping anywhere), text left; a line per item."""
    kind = next((k for k, pattern in _CELL_KINDS if pattern.fullmatch(cell)), "text")
    return f"<td class='{kind}'>" + "<br>".join(html.escape(part) for part in cell.split("\n")) + "</td>"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        "td.num{text-align:right;white-space:nowrap}td.date{white-space:nowrap}"
        "td.hash{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all;max-width:34em}"
        "figure{margin:1em 0}img{max-width:100%}"
        "figcaption{color:#555;font-size:13px}p.missing{color:#8a5a00;font-style:italic}"
        "code{font-size:13px}")


def render_html(source: str, counts: str, blocks: list[Block]) -> str:
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>clipbench report</title>",
             f"<style>{_CSS}</style></head><body>", "<h1>clipbench report</h1>",
             f"<p>Source: <code>{html.escape(source)}</code> — {html.escape(counts)}</p>"]
    for block in blocks:
        parts += [f"<h2>{html.escape(block.heading)}</h2>", _html_table(block.header, block.rows)]
        if block.note:
            parts.append(f"<p>{html.escape(block.note)}</p>")
        for caption, name in block.figures:
            parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for line in block.missing:
            parts.append(f"<p class='missing'>{html.escape(line)}</p>")
        if block.links:
            parts.append("<ul>" + "".join(f"<li><a href='{html.escape(target)}'>{html.escape(text)}</a></li>"
                                          for text, target in block.links) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
