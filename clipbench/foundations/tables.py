"""Rows of dicts as a terminal table, JSON or CSV: the one formatter behind `--format table|json|csv`.

Scripts read ``json`` (a list of objects, values as given) or ``csv`` (a header row, then one line
per row; a cell a spreadsheet would run as a formula is quoted by ``escaping.csv_cell``); people
read ``table`` (aligned columns, lists comma-joined, ``-`` for missing values).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from typing import IO

from clipbench.foundations.escaping import csv_cell, csv_value, plain_text

FORMATS = ("table", "json", "csv")


def columns_of(rows: Sequence[dict]) -> list[str]:
    """Column order: the first row's keys, then any new keys of later rows in order of appearance."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _csv_field(text: str) -> str:
    """RFC 4180 quoting, as ``csv.writer`` does it, except that a lone CR is quoted too (the csv module leaves
    it bare when the line ends in LF, and every reader then starts a new row there)."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A CSV document (LF line ends) whose cells no spreadsheet runs as formulas (``escaping.csv_cell``)."""
    lines = [",".join(_csv_field(csv_cell(str(cell))) for cell in row) for row in [list(columns), *rows]]
    return "".join(line + "\n" for line in lines)


def csv_records(fh: IO[str]) -> list[dict]:
    """The rows of a CSV that ``csv_text`` wrote (a header row, then one dict per line), its formula quoting
    undone; a short row's missing cells are None, as ``csv.DictReader`` gives them."""
    return [{k: csv_value(v) if isinstance(v, str) else v for k, v in row.items()} for row in csv.DictReader(fh)]


def render(rows: Sequence[dict], fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    columns = list(columns) if columns is not None else columns_of(rows)
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=2, default=str)
    if fmt == "csv":
        body = [["" if row.get(c) is None else _cell(row.get(c)) for c in columns] for row in rows]
        return csv_text(columns, body).rstrip("\n")
    if not rows:
        return "(none)"
    table = [[plain_text(_cell(r.get(c))) for c in columns] for r in rows]  # no escape sequence reaches a terminal
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(lines)


def fmt_params(value) -> str:
    """A parameter count as people write it: ``102.0 M``, ``1.2 B``, ``850 k`` (never ``102007137``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    for scale, unit in ((1e9, "B"), (1e6, "M")):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value / 1e3:.0f} k" if value >= 1e3 else f"{value:.0f}"
