"""Text tables (``.csv``, ``.txt``/``.tsv``) formatted a column at a time.

The text is the one ``pandas.DataFrame.to_csv`` writes (with ``na_rep=""``),
byte for byte: floats as numpy prints them (the shortest text that reads back
as the same number, ``1.0``, ``1e+16``, ``-0.0``, ``inf``), an undefined value
as an empty field, a field holding the separator, a quote or a line break
quoted with its quotes doubled, and a row of one empty field as ``""``.
pandas formats floats one at a time and hands each row to the ``csv`` module
(7 s for a million zones); here each column becomes one Arrow string array
(Arrow's float to text gives the same digits; only its layout differs, and
the values whose layout differs are formatted by numpy), rows are joined by
Arrow, and the text goes to the file a block of rows at a time. Columns of
other dtypes (dates, categoricals, nullable or mixed columns) leave the whole
table to pandas, which is the definition of the text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# an undefined value (a zone without valid pixels) in a text table
EMPTY = ""
LINE_END = os.linesep  # as pandas ends rows
# the fields formatted at once: bounds the text held to a few MB whatever the
# table's width (50,000 rows of 7 columns to CSV: 21 MB above the table in one
# block, 14 MB in blocks of 18,724 rows, as fast; a million rows: 63, 21 MB)
CELLS_PER_BLOCK = 1 << 17
# numpy prints a float64 positionally only within [1e-4, 1e16)
POSITIONAL = (1e-4, 1e16)
TEXT = pa.large_string()


def write_delimited(frame: pd.DataFrame, path: str, *, sep: str, index: bool) -> None:
    """Write ``frame`` as ``frame.to_csv(path, sep=sep, index=index,
    na_rep="")`` writes it, faster where every column is a plain number,
    boolean or string column."""
    fields = _fields(frame, index)
    if fields is None:
        frame.to_csv(path, sep=sep, index=index, na_rep=EMPTY, lineterminator=LINE_END)
        return
    labels, columns = fields
    rows = len(frame)
    block_rows = max(1, CELLS_PER_BLOCK // len(columns))
    # Arrow's kernels release the GIL: a block's columns are formatted at once
    threads = min(len(columns), os.cpu_count() or 1)
    with open(path, "wb") as out, ThreadPoolExecutor(threads) as pool:
        header = [_quoted(pa.array([str(label)], TEXT), sep) for label in labels]
        out.write(_lines(header, sep))
        for start in range(0, rows, block_rows):
            block = slice(start, min(start + block_rows, rows))
            parts = [column[block] for column in columns]
            texts = list(pool.map(_column_text, parts, [sep] * len(parts)))
            out.write(_lines(texts, sep))


def _fields(
    frame: pd.DataFrame, index: bool
) -> (
    tuple[list[Any], list[np.ndarray[Any, Any] | pd.api.extensions.ExtensionArray]]
    | None
):
    """The header labels and the columns written (index levels first), or
    None where some column's text is left to pandas."""
    if isinstance(frame.columns, pd.MultiIndex):
        return None
    labels: list[Any] = []
    columns: list[Any] = []
    if index:
        for level, name in enumerate(frame.index.names):
            labels.append("" if name is None else name)
            columns.append(frame.index.get_level_values(level))
    for position, label in enumerate(frame.columns):
        labels.append(label)
        columns.append(frame.iloc[:, position])
    columns = [_plain(column) for column in columns]
    if not columns or any(column is None for column in columns):
        return None
    return labels, columns


def _plain(column: pd.Series | pd.Index) -> Any:
    """The column as a numpy array or a pandas string array, or None for a
    dtype whose text pandas alone defines."""
    if isinstance(column.dtype, pd.StringDtype):
        return column.array
    if not isinstance(column.dtype, np.dtype) or column.dtype.kind not in "fiubO":
        return None
    values = column.to_numpy()
    if (
        values.dtype.kind == "O"
        and pd.api.types.infer_dtype(values, skipna=False) != "string"
    ):
        return None
    return values


def _column_text(values: Any, sep: str) -> pa.Array:
    """One column's fields, as text without nulls."""
    if isinstance(values.dtype, pd.StringDtype) or values.dtype.kind == "O":
        return _quoted(
            pc.fill_null(pa.array(values, TEXT, from_pandas=True), EMPTY), sep
        )
    if values.dtype.kind == "b":
        return pc.if_else(pa.array(values), "True", "False").cast(TEXT)
    if values.dtype.kind in "iu":
        return pc.cast(pa.array(values), TEXT)
    if values.dtype == np.float64:
        return pc.fill_null(float_text(values), EMPTY)
    # other float widths, as pandas prints them (numpy's shortest text of the width)
    text = values.astype(str).astype(object)
    text[np.isnan(values)] = EMPTY
    return pa.array(text, TEXT)


def float_text(values: np.ndarray[Any, Any]) -> pa.Array:
    """float64 values as numpy's ``astype(str)`` prints them; NaN as null.

    Arrow prints the same shortest round-trip digits as numpy, in another
    layout: ``1`` for ``1.0``, exponents from 1e15 up and none down to 1e-6.
    Values numpy prints positionally and Arrow without an exponent differ at
    most by the missing ``.0``; the few others are printed by numpy.
    """
    nan = np.isnan(values)
    text = pc.cast(pa.array(values, mask=nan), TEXT)
    magnitude = np.abs(values)
    finite = np.isfinite(values)
    low, high = POSITIONAL
    by_numpy = finite & (magnitude != 0) & ((magnitude < low) | (magnitude >= high))
    by_numpy |= _has(text, "e")
    whole = finite & ~by_numpy & ~_has(text, ".")
    if whole.any():
        dotted = pc.binary_join_element_wise(
            text, pa.scalar(".0", TEXT), pa.scalar("", TEXT)
        )
        text = pc.if_else(pa.array(whole), dotted, text)
    if by_numpy.any():
        printed = pa.array(values[by_numpy].astype(str), TEXT)
        text = pc.replace_with_mask(text, pa.array(by_numpy), printed)
    return text


def _has(text: pa.Array, part: str) -> np.ndarray[Any, Any]:
    """Whether each text holds ``part`` (False for nulls)."""
    return np.asarray(pc.fill_null(pc.match_substring(text, part), False))


def _quoted(text: pa.Array, sep: str) -> pa.Array:
    """Fields holding the separator, a quote or a line end in quotes, their
    quotes doubled (the ``csv`` module's minimal quoting)."""
    special = np.zeros(len(text), bool)
    for char in {sep, '"', *LINE_END}:
        special |= _has(text, char)
    if not special.any():
        return text
    doubled = pc.replace_substring(text, '"', '""')
    quote = pa.scalar('"', TEXT)
    wrapped = pc.binary_join_element_wise(quote, doubled, quote, pa.scalar("", TEXT))
    return pc.if_else(pa.array(special), wrapped, text)


def _lines(texts: Sequence[pa.Array], sep: str) -> bytes | memoryview:
    """The rows' bytes: fields joined by ``sep``, each row ended."""
    if len(texts) == 1:  # the csv module quotes a row of one empty field
        texts = [pc.if_else(pc.equal(texts[0], ""), '""', texts[0]).cast(TEXT)]
    end = pa.scalar(LINE_END, TEXT)
    rows = pc.binary_join_element_wise(*texts, pa.scalar(sep, TEXT))
    lines = pc.binary_join_element_wise(rows, pa.scalar("", TEXT), end)
    offsets = np.frombuffer(lines.buffers()[1], np.int64)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[first:last]
