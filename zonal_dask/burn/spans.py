"""The growing array of spans the compiled burners write, and C's integers.

Every routine of ``burn/scanline.py`` and ``burn/line_paths.py`` emits the
pixels it burns as spans ``(row, first column, last column)`` inside the chunk
``(row0, col0, rows, cols)`` into a growing array, and returns it with its new
length; GDAL's arithmetic converts doubles to C's 32-bit ints as here.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit

INT_MIN = -(2**31)


@njit(cache=True, nogil=True, inline="always")
def c_int(v):  # pragma: no cover - numba
    """C's ``(int)`` of a double, as x86-64 computes it: truncation toward
    zero, and INT_MIN for NaN and anything out of the int range."""
    if v != v or v >= 2147483648.0 or v < -2147483648.0:
        return INT_MIN
    return int(v)


@njit(cache=True, nogil=True, inline="always")
def reserve(spans, n, extra):  # pragma: no cover - numba
    """``spans`` with room for ``extra`` more after the first ``n``. Callers
    reserve per segment or row, as many as it can put in the chunk, so the
    stepping loops write without checking."""
    if n + extra <= spans.shape[0]:
        return spans
    grown = np.empty((max(2 * spans.shape[0], n + extra), 3), np.int64)
    # a loop, not a slice copy: numba compiles its shape-mismatch message
    # (string formatting, seconds) for the slice
    for s in range(n):
        grown[s, 0], grown[s, 1], grown[s, 2] = spans[s, 0], spans[s, 1], spans[s, 2]
    return grown


@njit(cache=True, nogil=True, inline="always")
def put(spans, n, row, first, last, window):  # pragma: no cover - numba
    """Write the part of span (row, first..last) inside the chunk; return
    the new count (the room is reserved)."""
    row0, col0, rows, cols = window
    if row < row0 or row >= row0 + rows:
        return n
    first = max(first, col0)
    last = min(last, col0 + cols - 1)
    if first > last:
        return n
    if n >= spans.shape[0]:
        raise IndexError("more pixels than reserved")
    spans[n, 0] = row
    spans[n, 1] = first
    spans[n, 2] = last
    return n + 1
