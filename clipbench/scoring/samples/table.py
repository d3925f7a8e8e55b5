"""Arrow columns in and out of the per-sample kinds, and the plain-text tables of their error analysis."""

from __future__ import annotations

import numpy as np


def column_array(column, dtype) -> np.ndarray:
    return column.to_numpy().astype(dtype)


def fixed_width(column) -> np.ndarray:
    """A FixedSizeList column as a [rows, width] array."""
    flat = column.combine_chunks()
    return flat.flatten().to_numpy(zero_copy_only=False).reshape(-1, flat.type.list_size)


def arrow_column(values: np.ndarray):
    """A pyarrow array of a 1-D int64, float32 or bool numpy array, built on its buffer.

    ``pa.array`` would do the same, but pyarrow 26 checks its input against pandas' types and so
    imports pandas (0.3-0.6 s), which nothing else in a run needs.
    """
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, data])
    types = {np.dtype(np.int64): pa.int64(), np.dtype(np.float32): pa.float32()}
    return pa.Array.from_buffers(types[values.dtype], len(values), [None, pa.py_buffer(values)])


def text_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Aligned, indented plain-text rows (the first is the header; ``clipbench.foundations.tables``)."""
    from clipbench.foundations.tables import render

    header, body = rows[0], rows[1:]
    if not body:
        return ["  (none)"]
    return ["  " + line for line in render([dict(zip(header, r, strict=True)) for r in body], "table").splitlines()]


#: the column a kind's table numbers split samples by (retrieval: ``image``; the other kinds: ``index``)
ITEM_KEYS = ("image", "index")


def with_items(table, names: list[str] | None):
    """``table`` with an ``item`` column: the name (file) of the split sample each row is about, so an error
    can be opened (lm-eval's ``--log_samples`` keeps the document). Unchanged when the split has no names."""
    import pyarrow as pa

    key = next((k for k in ITEM_KEYS if k in table.column_names), None)
    if names is None or key is None or "item" in table.column_names or not table.num_rows:
        return table
    index = table.column(key).to_numpy(zero_copy_only=False)
    if index.min() < 0 or index.max() >= len(names):
        return table
    return table.append_column("item", pa.array([names[int(i)] for i in index], type=pa.string()))


def item_names(table) -> list[str | None] | None:
    """The ``item`` column of a per-sample table (None in files written before it existed)."""
    return table.column("item").to_pylist() if "item" in table.column_names else None
