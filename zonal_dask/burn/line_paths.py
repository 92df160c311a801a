"""GDAL's line algorithms, compiled: every pixel a path crosses, or Bresenham's.

GDAL 3.10 (``alg/llrasterize.cpp``) burns a line by Bresenham's algorithm
between the pixels of its vertices (``GDALdllImageLine``), or, with
``ALL_TOUCHED``, by walking it through every pixel it crosses
(``GDALdllImageLineAllTouched``), the walk that also burns a polygon's rings.
Written anew here from GDAL's description and source, with the same
floating-point operations in the same order, computing over the whole raster
and keeping what falls in the chunk, as ``burn/scanline.py`` does.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit
from .spans import c_int, put, reserve

# GDAL's tolerance for ring edges along pixel boundaries in ALL_TOUCHED mode
# (llrasterize.cpp, EPSILON_INTERSECT_ONLY).
_EPS_INTERSECT = 1e-4


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
