"""GDAL's rasterization algorithms, compiled: the same pixels, off the GIL.

GDAL 3.10 (``alg/llrasterize.cpp``) burns a polygon by scanlines through pixel
centres (``GDALdllImageFilledPolygon``), with ``ALL_TOUCHED`` also walking
every ring through the pixels it crosses (``GDALdllImageLineAllTouched``, in
``burn/line_paths.py`` with the lines' algorithms). Written anew here from GDAL's
description and source, with the same floating-point operations in the same
order and the same C integer conversions. ``burn/prepare.py`` prepares geometries
as GDAL does and gathers each zone's pixels.

Everything is in the raster's pixel space (column, row). GDAL's rules depend
on the window it burns, at its edges: every routine here computes as GDAL does
over the whole raster, ``(height, width)``, in one window, and keeps only what
falls in the chunk, ``(row0, col0, rows, cols)``. So a chunk's pixels never
depend on the chunking. The routines emit the pixels as spans
``(row, first column, last column)`` inside the chunk into a growing array,
and return it with its new length (``burn/spans.py``).
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit
from .spans import INT_MIN, c_int, put, reserve

INT_MAX = 2**31 - 1


@njit(cache=True, nogil=True, inline="always")
def _minus_one(a):  # pragma: no cover - numba
    """``a - 1`` in C's 32-bit int, wrapping as the hardware does."""
    return INT_MAX if a == INT_MIN else a - 1


@njit(cache=True, nogil=True, inline="always")
def _scanline(spans, n, row, first, last, width, window):  # pragma: no cover
    """GDAL's gvBurnScanline: an empty span is nothing, the rest is clipped."""
    if first > last:
        return n
    return put(spans, n, row, max(first, 0), min(last, width - 1), window)


@njit(cache=True, nogil=True, inline="always")
def _row_range(lo, hi, first, last):  # pragma: no cover - numba
    """Candidate rows y for ``lo <= y + 0.5 < hi``, within first..last (the
    caller tests each exactly)."""
    a = max(np.floor(lo - 0.5), first - 1.0)
    b = min(np.ceil(hi - 0.5), last + 1.0)
    return int(max(a, first)), int(min(b, last))


@njit(cache=True, nogil=True)
def _sort_keys(keys, k, n_rows):  # pragma: no cover - numba
    """Sort the crossings ``keys[:k]`` (``row << 32 | column code``, rows
    ``0 .. n_rows - 1``) in place: counted into rows, then each row's few
    crossings sorted. Linear in ``k`` but for crowded rows, and it compiles
    in a fraction of a second where numba's generic ``np.sort`` takes
    seconds."""
    starts = np.zeros(n_rows + 1, np.int64)
    for i in range(k):
        starts[(keys[i] >> 32) + 1] += 1
    for r in range(n_rows):
        starts[r + 1] += starts[r]
    at = starts.copy()
    by_row = np.empty(k, np.int64)
    for i in range(k):
        r = keys[i] >> 32
        by_row[at[r]] = keys[i]
        at[r] += 1
    for r in range(n_rows):
        lo, hi = starts[r], starts[r + 1]
        if hi - lo > 16:
            _heapsort(by_row, lo, hi)
            continue
        for i in range(lo + 1, hi):  # insertion sort: usually two crossings
            value = by_row[i]
            j = i
            while j > lo and by_row[j - 1] > value:
                by_row[j] = by_row[j - 1]
                j -= 1
            by_row[j] = value
    for i in range(k):
        keys[i] = by_row[i]


@njit(cache=True, nogil=True)
def _heapsort(keys, lo, hi):  # pragma: no cover - numba
    """Sort ``keys[lo:hi]`` in place (a crowded row's crossings)."""
    n = hi - lo
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(keys, lo, start, n)
    for end in range(n - 1, 0, -1):
        keys[lo], keys[lo + end] = keys[lo + end], keys[lo]
        _sift_down(keys, lo, 0, end)


@njit(cache=True, nogil=True, inline="always")
def _sift_down(keys, lo, root, end):  # pragma: no cover - numba
    """Move ``keys[lo + root]`` down the max-heap ``keys[lo:lo + end]``."""
    value = keys[lo + root]
    while True:
        child = 2 * root + 1
        if child >= end:
            break
        if child + 1 < end and keys[lo + child + 1] > keys[lo + child]:
            child += 1
        if keys[lo + child] <= value:
            break
        keys[lo + root] = keys[lo + child]
        root = child
    keys[lo + root] = value


@njit(cache=True, nogil=True)
def fill_polygon(
    spans, n, px, py, ring_ends, height, width, window
):  # pragma: no cover - numba
    """GDALdllImageFilledPolygon: the pixels whose centre the polygon holds.

    ``px, py``: the rings' vertices (pixel space, each ring closed and
    clockwise as GDAL turns it), ring ``k`` ending before ``ring_ends[k]``.
    A scanline through row centres ``y + 0.5`` crosses each edge with
    ``y1 <= y + 0.5 < y2``; crossings round to the nearest pixel edge and
    pair up into spans; a horizontal edge on a centre line traversed
    leftwards (a lower edge, GDAL's rings being clockwise) is burnt as well.
    """
    count = px.size
    if count == 0:
        return spans, n
    low, high = py[0], py[0]
    for i in range(1, count):
        low = min(low, py[i])
        high = max(high, py[i])
    row0, _, rows, _ = window
    first = max(c_int(low), 0, row0)
    last = min(c_int(high), height - 1, row0 + rows - 1)
    if first > last:
        return spans, n
    max_x = width - 1
    # each vertex's predecessor: its edge runs from there (rings are closed)
    before = np.arange(-1, count - 1)
    start = 0
    for end in ring_ends:
        before[start] = end - 1
        start = end
    total = 0
    for i in range(count):
        y1, y2 = py[before[i]], py[i]
        if y1 != y2:
            a, b = _row_range(min(y1, y2), max(y1, y2), first, last)
            total += max(0, b - a + 1)
    # every (row, crossing) pair, as one sortable key; a span per pair of
    # crossings or horizontal edge
    keys = np.empty(total, np.int64)
    spans = reserve(spans, n, total // 2 + count + 1)
    k = np.int64(0)  # not the literal 0, which numba would compile _sort_keys for
    for i in range(count):
        j = before[i]
        y1, y2 = py[j], py[i]
        if y1 == y2:
            # a lower horizontal edge exactly on a centre line
            if px[j] > px[i]:
                row = np.floor(y1 - 0.5)
                if row + 0.5 == y1 and first <= row <= last:
                    x1 = c_int(np.floor(px[i] + 0.5))
                    x2 = c_int(np.floor(px[j] + 0.5))
                    if x1 <= max_x and x2 > 0:
                        n = _scanline(
                            spans, n, int(row), x1, _minus_one(x2), width, window
                        )
            continue
        if y1 < y2:
            x1, x2 = px[j], px[i]
        else:
            y1, y2 = y2, y1
            x1, x2 = px[i], px[j]
        a, b = _row_range(y1, y2, first, last)
        for row in range(a, b + 1):
            dy = row + 0.5
            if dy < y2 and dy >= y1:
                cross = (dy - y1) * (x2 - x1) / (y2 - y1) + x1
                x = c_int(np.floor(cross + 0.5))
                keys[k] = ((row - first) << 32) | (x - INT_MIN)
                k += 1
    _sort_keys(keys, k, last - first + 1)
    i = 0
    while i < k:
        row = keys[i] >> 32
        j = i
        while j < k and (keys[j] >> 32) == row:
            j += 1
        # crossings i..j-1 of this row, in order, taken in pairs
        for m in range(i, j - 1, 2):
            a = (keys[m] & 0xFFFFFFFF) + INT_MIN
            b = (keys[m + 1] & 0xFFFFFFFF) + INT_MIN
            if a <= max_x and b > 0:
                n = _scanline(spans, n, first + row, a, _minus_one(b), width, window)
        i = j
    return spans, n
