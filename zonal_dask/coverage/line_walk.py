"""The compiled walk of a line through the cells of a grid, as exactextract
walks it, and nothing else.

exactextract weighs a cell under a line by the length of the line inside the
cell (in the CRS's units). It finds those lengths by walking each line from
its first vertex, cell to cell: a cell takes vertices while they are inside
it or on its border, and the line leaves it where it crosses the border
toward a vertex outside (computed from the segment's original vertices);
the walk then enters the neighbour across that side. A segment running along
a cell border therefore counts in the cell the walk is in. The first cell
is the one containing the first vertex, a vertex on a border going to the
cell east (larger x) or south (smaller y) of it, except on the east and
south edges of the line's own grid (its bounding box snapped out to cells).

This module walks in the oriented pixel space of ``burn.to_pixel_space``
(cells are unit squares, the axes point as the CRS's), one part at a time in
the part's own terms, so a cell gets the same length in every chunking; it
keeps the cells of the chunk's window inside the raster. Each part's cell
lengths are summed in float64 then stored as float32, and a zone's parts are
added in float32 in their order, as exactextract's float matrix does.

Two cases exactextract 0.3 gets wrong are not copied (the lengths are given):
a part whose box within the raster is flat (a straight horizontal or vertical
line) gets no cell there, and a line coming back to the point where its visit
of a cell began is taken for a closed ring, losing the rest of the line or
failing (docs/exactextract-semantics.md).
"""

from __future__ import annotations

import math

import numpy as np

from ..precompiled import njit

# exit sides, as exactextract's Side
NONE, LEFT, RIGHT, BOTTOM, TOP = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _grid_end(lo, hi, raster_hi):  # pragma: no cover - numba
    """The far edge of the line's grid along an axis (exactextract's
    ``shrink_to_fit``): its box [lo, hi] snapped out to whole cells, where
    a far side on a cell edge ends there unless that leaves one cell."""
    first = math.floor(lo)
    last = math.floor(hi)
    if hi == raster_hi:
        last = raster_hi - 1
    n = last - first + 1
    if n > 2 and first + n - 1 >= hi:
        n -= 1
    return first + n


@njit(cache=True, nogil=True)
def _crossing(x1, y1, x2, y2, xmin, ymin, xmax, ymax):  # pragma: no cover - numba
    """Where the segment from (x1, y1) to (x2, y2), outside the cell ahead,
    leaves the cell: (side, x, y), exactextract's ``Box::crossing``."""
    if x1 == x2:
        if y2 >= ymax:
            return TOP, x1, ymax
        return BOTTOM, x1, ymin
    if y1 == y2:
        if x2 >= xmax:
            return RIGHT, xmax, y1
        return LEFT, xmin, y1
    m = abs((y2 - y1) / (x2 - x1))
    if y2 > y1:
        if x2 > x1:
            y = y1 + m * (xmax - x1)
            if y < ymax:
                return RIGHT, xmax, min(max(y, ymin), ymax)
            x = x1 + (ymax - y1) / m
            return TOP, min(max(x, xmin), xmax), ymax
        y = y1 + m * (x1 - xmin)
        if y < ymax:
            return LEFT, xmin, min(max(y, ymin), ymax)
        x = x1 - (ymax - y1) / m
        return TOP, min(max(x, xmin), xmax), ymax
    if x2 > x1:
        y = y1 - m * (xmax - x1)
        if y > ymin:
            return RIGHT, xmax, min(max(y, ymin), ymax)
        x = x1 + (y1 - ymin) / m
        return BOTTOM, min(max(x, xmin), xmax), ymin
    y = y1 - m * (x1 - xmin)
    if y > ymin:
        return LEFT, xmin, min(max(y, ymin), ymax)
    x = x1 - (y1 - ymin) / m
    return BOTTOM, min(max(x, xmin), xmax), ymin


@njit(cache=True, nogil=True)
def _side_of(x, y, cx, cy):  # pragma: no cover - numba
    """The side of cell (cx, cy) a point on its border lies on."""
    if x == cx:
        return LEFT
    if x == cx + 1.0:
        return RIGHT
    if y == cy:
        return BOTTOM
    if y == cy + 1.0:
        return TOP
    return NONE


@njit(cache=True, nogil=True)
def walk(xs, ys, sx, sy, start_x, start_y):  # pragma: no cover - numba
    """The cells one line visits and the length of each visit.

    ``xs``, ``ys`` are its vertices (oriented pixel space), ``sx``, ``sy``
    the size of a cell in the CRS's units (lengths are measured there),
    ``start_x``, ``start_y`` the lower-left corner of its first cell.
    Returns the cells' lower-left corners and the visits' lengths, in the
    order walked (a cell may be visited several times).
    """
    n = xs.size
    # each visit takes a vertex or moves one cell along a segment: more visits
    # than that would be a walk lost to rounding, never an answer
    bound = n
    for k in range(n - 1):
        bound += 2 * (abs(xs[k + 1] - xs[k]) + abs(ys[k + 1] - ys[k])) + 8
    cap = 16
    out_x = np.empty(cap, np.int64)
    out_y = np.empty(cap, np.int64)
    out_len = np.empty(cap, np.float64)
    n_out = 0
    cx, cy = float(start_x), float(start_y)
    pos = 0
    have_exit, ex, ey = False, 0.0, 0.0
    while pos < n:
        # one visit (exactextract's traversal) of cell (cx, cy)
        empty, lx, ly, length, side = True, 0.0, 0.0, 0.0, NONE
        while pos < n:
            if have_exit:
                nx, ny = ex, ey
            else:
                nx, ny = xs[pos], ys[pos]
            if empty:
                lx, ly, empty = nx, ny, False
            elif cx <= nx <= cx + 1.0 and cy <= ny <= cy + 1.0:
                length += math.hypot((nx - lx) * sx, (ny - ly) * sy)
                lx, ly = nx, ny
            else:
                px, py = (xs[pos - 1], ys[pos - 1]) if pos > 0 else (lx, ly)
                side, qx, qy = _crossing(px, py, nx, ny, cx, cy, cx + 1.0, cy + 1.0)
                length += math.hypot((qx - lx) * sx, (qy - ly) * sy)
                lx, ly = qx, qy
                if qx != nx or qy != ny:
                    have_exit, ex, ey = True, qx, qy
                break
            if have_exit:
                have_exit = False
            else:
                pos += 1
        if side == NONE and not empty:
            side = _side_of(lx, ly, cx, cy)  # ends on the border: leaves there
        if n_out == cap:
            if n_out > bound:
                raise RuntimeError("a line's walk through the cells got lost")
            cap *= 2
            out_x, out_y, out_len = _grow(out_x, out_y, out_len, cap)
        out_x[n_out], out_y[n_out], out_len[n_out] = cx, cy, length
        n_out += 1
        if side == LEFT:
            cx -= 1.0
        elif side == RIGHT:
            cx += 1.0
        elif side == BOTTOM:
            cy -= 1.0
        elif side == TOP:
            cy += 1.0
    return out_x[:n_out], out_y[:n_out], out_len[:n_out]


@njit(cache=True, nogil=True)
def _grow(a, b, c, capacity):  # pragma: no cover - numba
    a2 = np.empty(capacity, a.dtype)
    b2 = np.empty(capacity, b.dtype)
    c2 = np.empty(capacity, c.dtype)
    # loops, not slice copies (see fraction_kernel._grown)
    for i in range(a.size):
        a2[i], b2[i], c2[i] = a[i], b[i], c[i]
    return a2, b2, c2


@njit(cache=True, nogil=True)
def line_lengths(
    xs, ys, part_starts, zone_parts, raster, window, flips, scale
):  # pragma: no cover - numba
    """The length of each zone's lines in each cell of a chunk.

    Parameters
    ----------
    xs, ys : 1-D float64
        Every part's vertices, oriented pixel space.
    part_starts : 1-D int64
        Where each part's vertices start, and one past the last part's end.
    zone_parts : 1-D int64
        Where each zone's parts start, and one past the last zone's end.
    raster : 1-D float64 (xmin, ymin, xmax, ymax)
        The raster's extent in oriented pixel space.
    window : 1-D int64 (row, col, rows, cols)
        The chunk.
    flips : 1-D int64 (flip_x, flip_y)
        The orientation (oriented = flip * pixel).
    scale : 1-D float64 (sx, sy)
        A cell's width and height in the CRS's units.

    Returns
    -------
    pixels, zones, lengths
        int64 flat pixel index in the chunk, int64 zone, float64 length (a
        float32 value) of every cell with a length, by zone then pixel.
    """
    row_off, col_off, rows, cols = window[0], window[1], window[2], window[3]
    rx0, ry0, rx1, ry1 = raster[0], raster[1], raster[2], raster[3]
    n_zones = zone_parts.size - 1
    total_pixels = np.empty(0, np.int64)
    total_zones = np.empty(0, np.int64)
    total_lengths = np.empty(0, np.float64)
    for z in range(n_zones):
        keys = np.empty(0, np.int64)
        values = np.empty(0, np.float32)
        for p in range(zone_parts[z], zone_parts[z + 1]):
            a, b = part_starts[p], part_starts[p + 1]
            if b - a < 2:
                continue
            x, y = xs[a:b], ys[a:b]
            bx0, bx1, by0, by1 = x.min(), x.max(), y.min(), y.max()
            cx0, cx1 = max(bx0, rx0), min(bx1, rx1)
            cy0, cy1 = max(by0, ry0), min(by1, ry1)
            if cx0 > cx1 or cy0 > cy1:
                continue  # beyond the raster
            # the first cell: floor, a border going east / south, but the
            # line's grid's east and south edges keep their own cell
            x_end = _grid_end(cx0, cx1, rx1)
            y_end = -_grid_end(-cy1, -cy0, -ry0)
            sx0 = x_end - 1 if x[0] == x_end else math.floor(x[0])
            sy0 = y_end if y[0] == y_end else math.ceil(y[0]) - 1
            wx, wy, wl = walk(x, y, scale[0], scale[1], sx0, sy0)
            if (
                x_end - math.floor(cx0) == 1
                and y_end + 1 == math.ceil(cy1)
                and math.floor(cx0) <= bx0
                and bx1 <= math.floor(cx0) + 1
                and y_end <= by0
                and by1 <= y_end + 1
            ):
                # within one cell: exactextract takes the whole length
                total = 0.0
                for k in range(b - a - 1):
                    total += math.hypot(
                        (x[k + 1] - x[k]) * scale[0], (y[k + 1] - y[k]) * scale[1]
                    )
                wx, wy, wl = wx[:1], wy[:1], np.full(1, total)
            col = wx if flips[0] == 1 else -wx - 1
            row = wy if flips[1] == 1 else -wy - 1
            inside = (
                (row >= row_off)
                & (row < row_off + rows)
                & (col >= col_off)
                & (col < col_off + cols)
            )
            if not inside.any():
                continue
            key = (row[inside] - row_off) * cols + col[inside] - col_off
            order = np.argsort(key, kind="mergesort")
            key, length = key[order], wl[inside][order]
            part_keys = np.empty(key.size, np.int64)
            part_values = np.empty(key.size, np.float32)
            m, sums = -1, 0.0
            for k in range(key.size):
                if m < 0 or key[k] != part_keys[m]:
                    m += 1
                    part_keys[m] = key[k]
                    sums = length[k]
                else:
                    sums += length[k]
                part_values[m] = sums
            keys = np.concatenate((keys, part_keys[: m + 1]))
            values = np.concatenate((values, part_values[: m + 1]))
        if keys.size == 0:
            continue
        order = np.argsort(keys, kind="mergesort")
        keys, values = keys[order], values[order]
        zone_keys = np.empty(keys.size, np.int64)
        zone_values = np.empty(keys.size, np.float32)
        m = -1
        for k in range(keys.size):
            if m < 0 or keys[k] != zone_keys[m]:
                m += 1
                zone_keys[m] = keys[k]
                zone_values[m] = values[k]
            else:
                zone_values[m] += values[k]
        total_pixels = np.concatenate((total_pixels, zone_keys[: m + 1]))
        total_zones = np.concatenate((total_zones, np.full(m + 1, z, np.int64)))
        total_lengths = np.concatenate(
            (total_lengths, zone_values[: m + 1].astype(np.float64))
        )
    return total_pixels, total_zones, total_lengths
