"""Each zone's pixels in a chunk, as GDAL prepares and burns its geometry.

The compiled half of ``burn/rules.py``: GDAL (``alg/gdalrasterize.cpp``) turns every
ring clockwise (``OGRLinearRing::isClockwise``), takes a line's vertices last
to first and burns each part of a multi-geometry on its own, then calls the
algorithms of ``burn/scanline.py``; ``burn_claims`` does the same for every zone of
a chunk and gathers the pixels into label planes and sparse claims.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit
from .line_paths import line, line_all_touched
from .scanline import fill_polygon
from .spans import c_int, put, reserve

# Kinds of parts, as burn/rules.py flattens geometries.
POLYGON, LINE, POINT = 0, 1, 2
# OGRLinearRing::isClockwise's tolerance for a pivot's neighbours.
_EPS_PIVOT = 1e-5


@njit(cache=True, nogil=True)
def is_clockwise(x, y):  # pragma: no cover - numba
    """OGRLinearRing::isClockwise of a closed ring, in the CRS's orientation:
    the turn at the lowest rightmost vertex, or the signed area when that
    vertex is ambiguous or its neighbours nearly coincide with it."""
    n = x.size
    if n < 2:
        return True
    fallback = False
    v = 0
    for i in range(1, n - 1):
        if y[i] < y[v] or (y[i] == y[v] and x[i] > x[v]):
            v = i
            fallback = False
        elif y[i] == y[v] and x[i] == x[v]:
            fallback = True
    before = v - 1 if v > 0 else n - 2
    if abs(x[before] - x[v]) < _EPS_PIVOT and abs(y[before] - y[v]) < _EPS_PIVOT:
        fallback = True
    dx0, dy0 = x[before] - x[v], y[before] - y[v]
    after = v + 1 if v + 1 < n - 1 else 0
    if abs(x[after] - x[v]) < _EPS_PIVOT and abs(y[after] - y[v]) < _EPS_PIVOT:
        fallback = True
    dx1, dy1 = x[after] - x[v], y[after] - y[v]
    cross = dx1 * dy0 - dx0 * dy1
    if not fallback:
        if cross > 0:
            return False
        if cross < 0:
            return True
    total = x[0] * (y[1] - y[n - 1])
    for i in range(1, n - 1):
        total += x[i] * (y[i + 1] - y[i - 1])
    total += x[n - 1] * (y[0] - y[n - 2])
    return total < 0


@njit(cache=True, nogil=True)
def _part_pixels(
    spans, n, kind, xy, coords, paths, flip, shape, window, touched
):  # pragma: no cover - numba
    """The spans of one part (a polygon's rings, a line, or a point), as GDAL
    prepares and burns it; ``paths`` are its ranges of rows of ``xy``."""
    height, width = shape
    if kind == POINT:
        i = coords[paths[0]]
        col = c_int(np.floor(flip[0] * xy[i, 0]))
        row = c_int(np.floor(flip[1] * xy[i, 1]))
        if 0 <= col < width and 0 <= row < height:
            spans = reserve(spans, n, 1)
            n = put(spans, n, row, col, col, window)
        return spans, n
    start, end = coords[paths[0]], coords[paths[-1]]
    px = np.empty(end - start)
    py = np.empty(end - start)
    ring_ends = np.empty(paths.size - 1, np.int64)
    for k in range(paths.size - 1):
        a, b = coords[paths[k]], coords[paths[k + 1]]
        # GDAL turns every ring clockwise (in the CRS, whose orientation the
        # oriented pixel space keeps) and takes a line's vertices backwards
        backwards = kind == LINE or not is_clockwise(xy[a:b, 0], xy[a:b, 1])
        for i in range(a, b):
            source = a + b - 1 - i if backwards else i
            px[i - start] = flip[0] * xy[source, 0]
            py[i - start] = flip[1] * xy[source, 1]
        ring_ends[k] = b - start
    if kind == LINE:
        if touched:
            return line_all_touched(
                spans, n, px, py, height, width, window, kind == POLYGON
            )
        return line(spans, n, px, py, shape, window)
    if touched:
        a = 0
        for k in range(ring_ends.size):
            b = ring_ends[k]
            spans, n = line_all_touched(
                spans, n, px[a:b], py[a:b], height, width, window, kind == POLYGON
            )
            a = b
    return fill_polygon(spans, n, px, py, ring_ends, height, width, window)


@njit(cache=True, nogil=True)
def _disjoint(spans, n):  # pragma: no cover - numba
    """Sort spans (row, first, last) by row and column and merge those that
    overlap or abut, in place; return how many remain."""
    ordered = True
    for s in range(1, n):
        if spans[s, 0] < spans[s - 1, 0] or (
            spans[s, 0] == spans[s - 1, 0] and spans[s, 1] <= spans[s - 1, 2] + 1
        ):
            ordered = False
            break
    if ordered:  # the usual polygon: one span per row, in order
        return n
    # counting sort by row, then by first column within each (short) row
    low, high = spans[0, 0], spans[0, 0]
    for s in range(1, n):
        low = min(low, spans[s, 0])
        high = max(high, spans[s, 0])
    starts = np.zeros(high - low + 2, np.int64)
    for s in range(n):
        starts[spans[s, 0] - low + 1] += 1
    starts = np.cumsum(starts)
    by_row = np.empty((n, 3), np.int64)
    filled = starts[:-1].copy()
    for s in range(n):
        r = spans[s, 0] - low
        by_row[filled[r], 0] = spans[s, 0]
        by_row[filled[r], 1] = spans[s, 1]
        by_row[filled[r], 2] = spans[s, 2]
        filled[r] += 1
    m = 0
    for r in range(high - low + 1):
        a, b = starts[r], starts[r + 1]
        for s in range(a + 1, b):  # insertion sort by first column
            first, last = by_row[s, 1], by_row[s, 2]
            t = s
            while t > a and by_row[t - 1, 1] > first:
                by_row[t, 1], by_row[t, 2] = by_row[t - 1, 1], by_row[t - 1, 2]
                t -= 1
            by_row[t, 1], by_row[t, 2] = first, last
        for s in range(a, b):
            row, first, last = by_row[s, 0], by_row[s, 1], by_row[s, 2]
            if s > a and first <= spans[m - 1, 2] + 1:
                spans[m - 1, 2] = max(spans[m - 1, 2], last)
            else:
                spans[m, 0], spans[m, 1], spans[m, 2] = row, first, last
                m += 1
    return m


@njit(cache=True, nogil=True)
def burn_claims(
    zone_parts,
    part_kind,
    part_paths,
    path_coords,
    xy,
    flip,
    shape,
    window,
    all_touched,
    zone_plane,
    n_planes,
    first_zone,
    budget,
):  # pragma: no cover - numba
    """Each zone's pixels in a chunk, as label planes and sparse claims.

    Zone ``z`` is parts ``zone_parts[z]`` to ``zone_parts[z + 1]``; part ``p``
    (of kind ``part_kind[p]``) is paths ``part_paths[p]`` to
    ``part_paths[p + 1]``; path ``q`` is rows ``path_coords[q]`` to
    ``path_coords[q + 1]`` of ``xy``, in oriented pixel space (``flip`` turns
    it into columns and rows). A zone claims each pixel once, into plane
    ``zone_plane[z]`` if that pixel of the plane is free, else as a sparse
    claim. Zones are burnt from ``first_zone`` on; once the sparse claims pass
    ``budget``, the next zone is left for another call.

    Returns
    -------
    labels
        int32 (n_planes, rows, cols): a zone claiming the pixel, or -1.
    pixels, zones
        int64 flat pixel and int32 zone of each further claim.
    next_zone
        The first zone not burnt (the number of zones when all are).
    """
    row0, col0, rows, cols = window
    labels = np.full((n_planes, rows * cols), -1, np.int32)
    pixels = np.empty(1024, np.int64)
    zones = np.empty(1024, np.int32)
    spans = np.empty((256, 3), np.int64)
    n_extra = 0
    n_zones = zone_parts.size - 1
    z = first_zone
    while z < n_zones and (z == first_zone or n_extra <= budget):
        # int64, not the literal 0: numba would compile _part_pixels for both
        n = np.int64(0)
        for part in range(zone_parts[z], zone_parts[z + 1]):
            paths = part_paths[part : part + 2]
            paths = np.arange(paths[0], paths[1] + 1)
            spans, n = _part_pixels(
                spans,
                n,
                part_kind[part],
                xy,
                path_coords,
                paths,
                flip,
                shape,
                window,
                all_touched,
            )
        n = _disjoint(spans, n)  # a zone claims each pixel once
        plane = labels[zone_plane[z]]
        for s in range(n):
            base = (spans[s, 0] - row0) * cols - col0
            need = n_extra + spans[s, 2] - spans[s, 1] + 1
            if need > pixels.size:
                size = max(2 * pixels.size, need)
                grown_p, grown_z = np.empty(size, np.int64), np.empty(size, np.int32)
                for e in range(n_extra):
                    grown_p[e], grown_z[e] = pixels[e], zones[e]
                pixels, zones = grown_p, grown_z
            for p in range(base + spans[s, 1], base + spans[s, 2] + 1):
                if plane[p] < 0:
                    plane[p] = z
                else:
                    pixels[n_extra] = p
                    zones[n_extra] = z
                    n_extra += 1
        z += 1
    return (
        labels.reshape(n_planes, rows, cols),
        pixels[:n_extra].copy(),
        zones[:n_extra].copy(),
        z,
    )
