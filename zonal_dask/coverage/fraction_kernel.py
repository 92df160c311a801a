"""The compiled kernel of exact coverage fractions, and nothing else.

Along a vertical line, the part of a row of cells inside a ring is the signed
sum, over the ring's edges crossing the line, of the part of the row below
each edge (the winding number). Integrated over a cell's width that is, for
each edge, its exact mean of ``clamp(row + 1 - y(x), 0, 1)`` over the cell's
column for the rows the edge crosses, and the whole width for every row below
it: those are added once per column and summed down the column, as font
rasterizers accumulate coverage. The result is the area of the cell inside the
polygon, exact up to rounding.

A cell's fraction does not depend on the chunk it is computed in: each zone
is worked in coordinates relative to its own bounding box, its edges are
visited in the same order in every chunk, and the contributions of the rows
above a chunk are added row by row in the order the whole raster adds them,
so every chunking gives the same bits.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit


@njit(cache=True, nogil=True)
def _mean_clamp(t0, t1):  # pragma: no cover - numba
    """The mean of clamp(t, 0, 1) for t linear from t0 to t1."""
    lo, hi = min(t0, t1), max(t0, t1)
    if hi <= 0.0:
        return 0.0
    if lo >= 1.0:
        return 1.0
    span = hi - lo
    if span <= 0.0:
        return lo
    below = -lo / span if lo < 0.0 else 0.0
    above = (hi - 1.0) / span if hi > 1.0 else 0.0
    middle = 1.0 - below - above
    return above + middle * 0.5 * (max(lo, 0.0) + min(hi, 1.0))


@njit(cache=True, nogil=True)
def _grown(array, capacity):  # pragma: no cover - numba
    out = np.empty(capacity, array.dtype)
    # a loop, not a slice copy: numba compiles a slice copy's shape-mismatch
    # message (string formatting, seconds) on a first run
    for i in range(array.size):
        out[i] = array[i]
    return out


@njit(cache=True, nogil=True)
def coverage(
    cols_xy, rows_xy, ring_starts, ring_sign, zone_rings, window, tolerance
):  # pragma: no cover - numba
    """The fraction of each cell of a chunk that each zone covers, exactly.

    Parameters
    ----------
    cols_xy, rows_xy : 1-D float64
        The vertices of every ring in the raster's pixel coordinates (column
        and row from its top left corner: cell ``(r, c)`` is
        ``[c, c + 1] x [r, r + 1]``).
    ring_starts : 1-D int64
        Where each ring's vertices start, and one past the last ring's end;
        each ring is closed (its last vertex repeats its first).
    ring_sign : 1-D float64
        +1 for an exterior ring, -1 for a hole, whatever its orientation.
    zone_rings : 1-D int64
        Where each zone's rings start, and one past the last zone's end.
    window : 1-D int64 (row, col, rows, cols)
        The chunk: its first cell and its size.
    tolerance : float
        Fractions up to this are the arithmetic's noise, not coverage.

    Returns
    -------
    pixels, zones, fractions
        int64 flat pixel index in the chunk (row-major), int64 zone, float64
        fraction in (tolerance, 1] of every covered cell, by zone then pixel.
    """
    row_off, col_off, rows, cols = window[0], window[1], window[2], window[3]
    n_zones = zone_rings.size - 1
    # each zone's frame and its part of the chunk, first: the outputs are
    # sized once (at most every cell of every zone's part) and the scratch
    # arrays are allocated once for the largest part
    frames = np.zeros((n_zones, 7), np.int64)  # x0, y0, y1, c0, c1, r0, r1
    capacity, largest = 0, 0
    for z in range(n_zones):
        first = ring_starts[zone_rings[z]]
        last = ring_starts[zone_rings[z + 1]]
        if last <= first:
            continue
        x0 = int(np.floor(cols_xy[first:last].min()))
        y0 = int(np.floor(rows_xy[first:last].min()))
        y1 = int(np.ceil(rows_xy[first:last].max()))
        c0 = max(x0, col_off) - x0
        c1 = min(int(np.ceil(cols_xy[first:last].max())), col_off + cols) - x0
        r0 = max(y0, row_off) - y0
        r1 = min(y1, row_off + rows) - y0
        # element by element: a row assigned a tuple compiles numba's
        # shape-mismatch message (seconds) on a first run
        for f, v in enumerate((x0, y0, y1, c0, c1, r0, r1)):
            frames[z, f] = v
        if c1 > c0 and r1 > r0:
            capacity += (c1 - c0) * (r1 - r0)
            largest = max(largest, (c1 - c0) * (r1 - r0))
    capacity = max(min(capacity, 4 * rows * cols), 16)
    out_pixels = np.empty(capacity, np.int64)
    out_zones = np.empty(capacity, np.int64)
    out_fractions = np.empty(capacity, np.float64)
    n_out = 0
    partial_buffer = np.empty(largest)
    below_buffer = np.empty(largest)
    # full-width contributions to rows above the chunk: (column, row, value)
    above_col = np.empty(16, np.int64)
    above_row = np.empty(16, np.int64)
    above_value = np.empty(16, np.float64)
    for z in range(n_zones):
        x0, y0, y1, c0, c1, r0, r1 = frames[z]
        if c1 <= c0 or r1 <= r0:
            continue
        top = max(y0, 0)  # rows above the raster add up in its first row
        height, width = r1 - r0, c1 - c0
        partial = partial_buffer[: height * width].reshape(height, width)
        below = below_buffer[: height * width].reshape(height, width)
        partial[:] = 0.0
        below[:] = 0.0
        n_above = 0
        for ring in range(zone_rings[z], zone_rings[z + 1]):
            start, end = ring_starts[ring], ring_starts[ring + 1] - 1
            twice_area = 0.0  # shoelace: positive when the ring turns clockwise
            for k in range(start, end):
                twice_area += (cols_xy[k] - x0) * (rows_xy[k + 1] - y0) - (
                    cols_xy[k + 1] - x0
                ) * (rows_xy[k] - y0)
            if twice_area == 0.0:
                continue
            sign = ring_sign[ring] if twice_area > 0.0 else -ring_sign[ring]
            for k in range(start, end):
                xa, ya = cols_xy[k] - x0, rows_xy[k] - y0
                xb, yb = cols_xy[k + 1] - x0, rows_xy[k + 1] - y0
                if xa == xb:
                    continue  # vertical: no width
                sigma = sign if xb > xa else -sign
                if xa > xb:
                    xa, ya, xb, yb = xb, yb, xa, ya
                slope = (yb - ya) / (xb - xa)
                for j in range(max(int(np.floor(xa)), c0), min(int(np.ceil(xb)), c1)):
                    u0 = max(xa, float(j))
                    u1 = min(xb, float(j + 1))
                    w = u1 - u0
                    if w <= 0.0:
                        continue
                    v0 = ya if u0 == xa else ya + (u0 - xa) * slope
                    v1 = yb if u1 == xb else ya + (u1 - xa) * slope
                    full = max(int(np.ceil(max(v0, v1))), top - y0)
                    lowest = max(int(np.floor(min(v0, v1))), r0)
                    for i in range(lowest, min(full, r1)):
                        partial[i - r0, j - c0] += (
                            sigma * w * _mean_clamp(i + 1.0 - v0, i + 1.0 - v1)
                        )
                    if full >= r1:
                        continue
                    if full >= r0:
                        below[full - r0, j - c0] += sigma * w
                        continue
                    if n_above == above_col.size:
                        above_col = _grown(above_col, 2 * n_above)
                        above_row = _grown(above_row, 2 * n_above)
                        above_value = _grown(above_value, 2 * n_above)
                    above_col[n_above] = j - c0
                    above_row[n_above] = full
                    above_value[n_above] = sigma * w
                    n_above += 1
        if n_above:
            # each row's contributions in edge order, the rows in order, as
            # the prefix sum over the whole frame would add them
            cells = np.empty(n_above, np.int64)
            for n in range(n_above):  # a loop: see frames above
                cells[n] = above_col[n] * (y1 - y0 + 1) + above_row[n]
            order = np.argsort(cells, kind="mergesort")
            covered = np.zeros(width)
            row_sum = 0.0
            for n in range(n_above):
                k = order[n]
                row_sum += above_value[k]
                nxt = order[n + 1] if n + 1 < n_above else -1
                if (
                    nxt < 0
                    or above_col[nxt] != above_col[k]
                    or above_row[nxt] != above_row[k]
                ):
                    covered[above_col[k]] += row_sum
                    row_sum = 0.0
            for j in range(width):
                below[0, j] += covered[j]
        for i in range(height):
            for j in range(width):
                if i > 0:
                    below[i, j] += below[i - 1, j]
                f = below[i, j] + partial[i, j]
                if f <= tolerance:
                    continue
                if n_out == capacity:
                    capacity *= 2
                    out_pixels = _grown(out_pixels, capacity)
                    out_zones = _grown(out_zones, capacity)
                    out_fractions = _grown(out_fractions, capacity)
                out_pixels[n_out] = (
                    (y0 + r0 + i - row_off) * cols + x0 + c0 + j - col_off
                )
                out_zones[n_out] = z
                out_fractions[n_out] = min(f, 1.0)
                n_out += 1
    return out_pixels[:n_out], out_zones[:n_out], out_fractions[:n_out]
