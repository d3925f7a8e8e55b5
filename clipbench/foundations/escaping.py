"""One escaping rule per output format, for text that comes from a results file, a data root or a user.

Names (model paths, datasets, tags, metric names) are untrusted: they must never run as markup,
break a table, inject a spreadsheet formula or pick where a file is written. Every writer of
Markdown, CSV or a file name derived from a record goes through the matching function here:

* ``markdown_text``: backslash-escapes what would make Markdown markup (raw HTML, emphasis, code
  spans, links, table cells) and shows line breaks as ``\\n``, so the rendered text reads as the name
  was written, cannot run and cannot add a row or a heading;
* ``csv_cell`` / ``csv_value``: OWASP's rule (a text cell that starts with ``=``, ``+``, ``-``, ``@``,
  tab or CR gets a leading ``'``), a number is left as it is (``-3.5`` stays a number), and
  ``csv_value`` undoes it, so clipbench's own readers get back exactly what was written;
* ``file_slug``: a name for a file derived from a field: plain names are kept, anything else becomes
  a safe slug plus a short hash of the original (no separators, no leading dot, bounded length), so it
  always lands inside the output folder and two fields never share a file;
* ``plain_text``: for a terminal or a text line, control characters (an ANSI escape, a line break)
  show as ``\\xNN`` / ``\\n`` instead of acting (``markdown_text`` uses the same rule).

HTML is escaped by ``html.escape`` where it is written (``results/report/render_html.py``).
"""

from __future__ import annotations

import hashlib
import re

# ---------------------------------------------------------------- Markdown

_ENTITY = re.compile(r"&#?\w+;")
_TAG_START = re.compile(r"[A-Za-z/!?]")  # what can follow "<" in raw HTML or an autolink
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROLS = {"\n": "\\n", "\r": "\\r", "\t": " "}


def _inert_delimiter(text: str, i: int) -> bool:
    """Whether ``text[i]`` (``*``, ``_`` or ``~``) can neither open nor close emphasis (CommonMark's flanking
    rules): whitespace or an edge on both sides, or ``_`` inside a word (``linear_probe``)."""
    before, after = text[i - 1:i], text[i + 1:i + 2]
    if (not before or before.isspace()) and (not after or after.isspace()):
        return True
    return text[i] == "_" and before.isalnum() and after.isalnum()


def markdown_text(value: object) -> str:
    """``value`` as inert Markdown text: renders as written, on one line, in or out of a table cell.

    Backslash-escapes ``\\``, backticks, ``|``, a ``<`` that could open a tag or an autolink, an
    entity-like ``&``, ``](`` and every ``*``, ``_`` or ``~`` that could delimit emphasis (so
    ``linear_probe``, ``57.3 *`` and ``p < 0.001`` stay as they are); line breaks and other control
    characters show as ``\\n``, ``\\r``, ``\\xNN``. Lines of a report never start
    with such text, so it cannot start a heading, list, quote or link definition either.
    """
    text = str(value)
    out = []
    for i, c in enumerate(text):
        if (c in "\\`|" or (c == "<" and _TAG_START.match(text, i + 1)) or (c == "&" and _ENTITY.match(text, i))
                or (c == "]" and text[i + 1:i + 2] == "(")):
            out.append("\\" + c)
        elif c in "*_~":
            out.append(c if _inert_delimiter(text, i) else "\\" + c)
        else:
            out.append(plain_text(c))
    return "".join(out)


def plain_text(value: object) -> str:
    """``value`` for a terminal or a plain-text line: control characters (an ANSI escape, a line break) show
    as ``\\n``, ``\\r``, ``\\xNN`` instead of acting."""
    return _CONTROL.sub(lambda m: _CONTROLS.get(m[0], f"\\x{ord(m[0]):02x}"), str(value))


# ---------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _formula_like(text: str) -> bool:
    return text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text)


def csv_cell(text: str) -> str:
    """A CSV cell no spreadsheet evaluates: ``=cmd()`` -> ``'=cmd()``; a leading ``'`` is doubled so that
    ``csv_value`` can always undo the rule; numbers (``-3.5``, ``+1e-3``) are left as they are."""
    return "'" + text if _formula_like(text) or text.startswith("'") else text


def csv_value(cell: str) -> str:
    """The text ``csv_cell`` was given (a cell of a file written before the rule reads as it is)."""
    if cell.startswith("'") and (_formula_like(cell[1:]) or cell[1:].startswith("'")):
        return cell[1:]
    return cell


# ---------------------------------------------------------------- file names

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_.-]+")


def file_slug(value: object) -> str:
    """A file-name part for ``value``: itself when plain (letters, digits, ``_.-``, no ``..``, at most 64
    characters), else a slug of it plus 8 hex digits of its SHA-256."""
    text = str(value)
    if _PLAIN_NAME.fullmatch(text) and ".." not in text:
        return text
    slug = _UNSAFE_RUN.sub("_", text).replace("..", "_").strip("._-")[:48]
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest
