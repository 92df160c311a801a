"""GDAL's rasterization algorithms, compiled: the same pixels, off the GIL.

GDAL 3.10 (``alg/llrasterize.cpp``) burns a polygon by scanlines through pixel
centres (``GDALdllImageFilledPolygon``), with ``ALL_TOUCHED`` also walking
every ring through the pixels it crosses (``GDALdllImageLineAllTouched``); a
line by Bresenham's algorithm between the pixels of its vertices
(``GDALdllImageLine``) or by the same walk. Written anew here from GDAL's
description and source, with the same floating-point operations in the same
order and the same C integer conversions. ``burn/prepare.py`` prepares geometries
as GDAL does and gathers each zone's pixels.

Everything is in the raster's pixel space (column, row). GDAL's rules depend
on the window it burns, at its edges: every routine here computes as GDAL does
over the whole raster, ``(height, width)``, in one window, and keeps only what
falls in the chunk, ``(row0, col0, rows, cols)``. So a chunk's pixels never
depend on the chunking. The routines emit the pixels as spans
``(row, first column, last column)`` inside the chunk into a growing array,
and return it with its new length.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
# GDAL's tolerance for ring edges along pixel boundaries in ALL_TOUCHED mode
# (llrasterize.cpp, EPSILON_INTERSECT_ONLY).
_EPS_INTERSECT = 1e-4


@njit(cache=True, nogil=True, inline="always")
def c_int(v):  # pragma: no cover - numba
    """C's ``(int)`` of a double, as x86-64 computes it: truncation toward
    zero, and INT_MIN for NaN and anything out of the int range."""
    if v != v or v >= 2147483648.0 or v < -2147483648.0:
        return INT_MIN
    return int(v)


@njit(cache=True, nogil=True, inline="always")
def _minus_one(a):  # pragma: no cover - numba
    """``a - 1`` in C's 32-bit int, wrapping as the hardware does."""
    return INT_MAX if a == INT_MIN else a - 1


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


@njit(cache=True, nogil=True, inline="always")
def _near_integer(v):  # pragma: no cover - numba
    return abs(v - np.floor(v + 0.5)) < _EPS_INTERSECT


@njit(cache=True, nogil=True)
def line_all_touched(
    spans, n, px, py, height, width, window, intersect_only
):  # pragma: no cover - numba
    """GDALdllImageLineAllTouched: every pixel a path passes through.

    Each segment is taken left to right; nearly vertical and nearly
    horizontal ones burn a column or row of pixels, with
    ``intersect_only`` (a polygon's rings) skipping those that lie along
    pixel boundaries; the others step from pixel edge to pixel edge, after
    being clipped to the raster as GDAL clips them.
    """
    row0, col0, rows, cols = window
    h, w = float(height), float(width)
    for s in range(1, px.size):
        x, y, x_end, y_end = px[s - 1], py[s - 1], px[s], py[s]
        if (
            (y < 0 and y_end < 0)
            or (y > h and y_end > h)
            or (x < 0 and x_end < 0)
            or (x > w and x_end > w)
        ):
            continue
        # nothing of this segment can reach the chunk
        if (
            max(x, x_end) < col0
            or min(x, x_end) >= col0 + cols
            or max(y, y_end) < row0 - 1
            or min(y, y_end) >= row0 + rows + 1
        ):
            continue
        # a segment's pixels in the chunk: a monotone staircase through it
        spans = reserve(spans, n, rows + cols + 1)
        if x > x_end:
            x, x_end = x_end, x
            y, y_end = y_end, y
        if np.floor(x) == np.floor(x_end) or abs(x - x_end) < 0.01:
            if intersect_only and _near_integer(x) and _near_integer(x_end):
                continue
            if y_end < y:
                y, y_end = y_end, y
            col = c_int(np.floor(x_end))
            first = c_int(np.floor(y))
            last = c_int(np.floor(y_end - _EPS_INTERSECT))
            if col < 0 or col >= width:
                continue
            first = max(first, 0)
            last = min(last, height - 1)
            for row in range(max(first, row0), min(last, row0 + rows - 1) + 1):
                n = put(spans, n, row, col, col, window)
            continue
        if np.floor(y) == np.floor(y_end) or abs(y - y_end) < 0.01:
            if intersect_only and _near_integer(y) and _near_integer(y_end):
                continue
            first = c_int(np.floor(x))
            row = c_int(np.floor(y))
            last = c_int(np.floor(x_end - _EPS_INTERSECT))
            if row < 0 or row >= height:
                continue
            n = put(spans, n, row, max(first, 0), min(last, width - 1), window)
            continue
        slope = (y_end - y) / (x_end - x)
        if x_end > w:
            y_end -= (x_end - w) * slope
            x_end = w
        if x < 0.0:
            y += (0.0 - x) * slope
            x = 0.0
        if y_end > y:
            if y < 0.0:
                x += (0.0 - y) / slope
                y = 0.0
            if y_end >= h:
                x_end += (y_end - h) / slope
                if x_end > w:
                    x_end = w
        else:
            if y >= h:
                x += (h - y) / slope
                y = h
            if y_end < 0.0:
                x_end -= (y_end - 0) / slope
        last_row, last_col = -1, -1
        while x >= 0.0 and x < x_end:
            col = c_int(np.floor(x))
            row = c_int(np.floor(y))
            # a pixel once, as the staircase the reservation counts
            if row >= 0 and row < height and (row != last_row or col != last_col):
                n = put(spans, n, row, col, col, window)
                last_row, last_col = row, col
            step_x = np.floor(x + 1.0) - x
            step_y = step_x * slope
            if c_int(np.floor(y + step_y)) == row:
                x += step_x
                y += step_y
            elif slope < 0:
                step_y = row - y
                if step_y > -0.000000001:
                    step_y = -0.000000001
                step_x = step_y / slope
                x += step_x
                y += step_y
            else:
                step_y = (row + 1) - y
                if step_y < 0.000000001:
                    step_y = 0.000000001
                step_x = step_y / slope
                x += step_x
                y += step_y
    return spans, n


@njit(cache=True, nogil=True, inline="always")
def _bresenham(
    spans, n, a, b, delta_a, delta_b, step_a, step_b, swapped, shape, window
):  # pragma: no cover - numba
    """GDALdllImageLine's loop along the major axis ``a`` (x, or y when
    ``swapped``), its error term deciding each step along ``b``."""
    error_b = delta_b << 1
    error_a = error_b - (delta_a << 1)
    error = error_b - delta_a
    height, width = shape
    for _ in range(delta_a + 1):
        col, row = (b, a) if swapped else (a, b)
        if 0 <= col < width and 0 <= row < height:
            n = put(spans, n, row, col, col, window)
        a += step_a
        if error > 0:
            b += step_b
            error += error_a
        else:
            error += error_b
    return n


@njit(cache=True, nogil=True)
def line(spans, n, px, py, shape, window):  # pragma: no cover - numba
    """GDALdllImageLine: Bresenham's line between the pixels of the vertices."""
    row0, col0, rows, cols = window
    for s in range(1, px.size):
        ix = c_int(np.floor(px[s - 1]))
        iy = c_int(np.floor(py[s - 1]))
        ix1 = c_int(np.floor(px[s]))
        iy1 = c_int(np.floor(py[s]))
        if (
            max(ix, ix1) < col0
            or min(ix, ix1) >= col0 + cols
            or max(iy, iy1) < row0
            or min(iy, iy1) >= row0 + rows
        ):
            continue
        delta_x, delta_y = abs(ix1 - ix), abs(iy1 - iy)
        step_x = -1 if ix > ix1 else 1
        step_y = -1 if iy > iy1 else 1
        spans = reserve(spans, n, rows + cols + 1)  # a staircase in the chunk
        if delta_x >= delta_y:  # step along x
            n = _bresenham(
                spans, n, ix, iy, delta_x, delta_y, step_x, step_y, False, shape, window
            )
        else:  # along y
            n = _bresenham(
                spans, n, iy, ix, delta_y, delta_x, step_y, step_x, True, shape, window
            )
    return spans, n
