"""Which zones GEOS must look at: polygons proven valid on flat arrays, compiled.

``shapely.is_valid`` needs a shapely object per zone and a GEOS call each; a
million zones spend seconds there although nearly all are valid. ``needs_geos``
proves validity on the flattened coordinates (``burn.Flat``) for the common
case and sends only the rest to GEOS, which repairs or refuses them exactly as
before.

A polygon of one convex ring (the same turn at every vertex, one turn
around) is valid as soon as its ring is sound. Any other polygon or
multipolygon is proven valid when every ring has at least four
finite coordinates and is closed, no two segments of the zone meet at all
except consecutive ones of a ring at their shared vertex (which must turn: no
spike, no repeated vertex), every hole lies inside its shell and in no other
hole, and no part lies inside another (outside that part's holes). Rings that
never touch bound a connected interior, so such a zone is valid under the OGC
rules GEOS checks. Every orientation is decided by Shewchuk's filtered
determinant: where floating point cannot tell the sign for certain (collinear
or nearly so, touching, coordinates too small or too large), the zone is left
to GEOS rather than guessed. A line with a single coordinate (which GEOS will
not build) goes to GEOS too, to be refused as it is today.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from ..burn.prepare import LINE, POLYGON
from ..precompiled import njit

if TYPE_CHECKING:  # the build compiles this module without shapely
    from ..burn.rules import Flat

# Shewchuk's bound for the filtered orientation determinant (epsilon = 2**-53)
_EPS = 2.0**-53
_CCW_BOUND = (3.0 + 16.0 * _EPS) * _EPS
# differences or products below these might have lost their sign to underflow
_TINY_DIFF = 1e-140
_TINY_SUM = 1e-280
# a zone with more parts than this is left to GEOS (pairwise containment)
_MAX_PARTS = 64
# zones per thread, at least, when a layer is checked on several
_ZONES_PER_THREAD = 50_000
# up to this many segments a zone's are tested pair by pair, not swept
_FEW_SEGMENTS = 48


@njit(cache=True, nogil=True)
def _orient(ax, ay, bx, by, cx, cy):  # pragma: no cover - numba
    """The sign of the turn a -> b -> c (1 left, -1 right), or 0 when it is
    zero or not certain in floating point."""
    acx, bcx, acy, bcy = ax - cx, bx - cx, ay - cy, by - cy
    for d in (acx, bcx, acy, bcy):
        if d != 0.0 and abs(d) < _TINY_DIFF:
            return 0
    left, right = acx * bcy, acy * bcx
    det = left - right
    if not np.isfinite(det):
        return 0
    if left > 0.0:
        if right <= 0.0:
            return 1
        total = left + right
    elif left < 0.0:
        if right >= 0.0:
            return -1
        total = -left - right
    else:
        return 0 if right == 0.0 else (-1 if right > 0.0 else 1)
    if total < _TINY_SUM:
        return 0
    bound = _CCW_BOUND * total
    if det >= bound and det > 0.0:
        return 1
    if -det >= bound and det < 0.0:
        return -1
    return 0


@njit(cache=True, nogil=True)
def _rings_sound(xy, path_coords, first, last):  # pragma: no cover - numba
    """Whether paths first..last-1 are closed rings of four or more finite
    coordinates turning at every vertex: 0 if not, 1 if so, 2 if so and the
    one ring turns the same way at every vertex."""
    same = last - first == 1
    for q in range(first, last):
        a, b = path_coords[q], path_coords[q + 1]
        n = b - a
        if n < 4:
            return 0
        if xy[a, 0] != xy[b - 1, 0] or xy[a, 1] != xy[b - 1, 1]:
            return 0
        for k in range(a, b):
            if not (np.isfinite(xy[k, 0]) and np.isfinite(xy[k, 1])):
                return 0
        side = 0
        for k in range(n - 1):  # the turn at vertex k+1 (the last wraps to 1)
            i, j = a + k, a + k + 1
            m = a + k + 2 if k + 2 < n else a + 1
            turn = _orient(xy[i, 0], xy[i, 1], xy[j, 0], xy[j, 1], xy[m, 0], xy[m, 1])
            if turn == 0:
                return 0
            if side != 0 and turn != side:
                same = False
            side = turn
    return 2 if same else 1


@njit(cache=True, nogil=True)
def _once_around(xy, a, b):  # pragma: no cover - numba
    """Whether the edges of the closed ring rows a..b-1 change their x
    direction twice: a ring turning the same way at every vertex then goes
    once around, and is convex (simple without testing its segments)."""
    changes = 0
    last = 0.0
    first = 0.0
    for k in range(a, b - 1):
        dx = xy[k + 1, 0] - xy[k, 0]
        if dx == 0.0:
            continue
        if first == 0.0:
            first = dx
        elif (dx > 0.0) != (last > 0.0):
            changes += 1
        last = dx
    if first != 0.0 and (first > 0.0) != (last > 0.0):
        changes += 1  # around the closing vertex
    return changes == 2


@njit(cache=True, nogil=True)
def _apart(xy, p, q, adjacent):  # pragma: no cover - numba
    """Whether segments from rows p and q of ``xy`` certainly do not meet
    (``adjacent``: consecutive in a ring, they may share their vertex)."""
    px0, py0, px1, py1 = xy[p, 0], xy[p, 1], xy[p + 1, 0], xy[p + 1, 1]
    qx0, qy0, qx1, qy1 = xy[q, 0], xy[q, 1], xy[q + 1, 0], xy[q + 1, 1]
    if max(qx0, qx1) < min(px0, px1) or min(qx0, qx1) > max(px0, px1):
        return True
    if max(qy0, qy1) < min(py0, py1) or min(qy0, qy1) > max(py0, py1):
        return True
    if adjacent:
        return True  # they turn at their vertex (``_rings_sound``)
    o1 = _orient(px0, py0, px1, py1, qx0, qy0)
    o2 = _orient(px0, py0, px1, py1, qx1, qy1)
    o3 = _orient(qx0, qy0, qx1, qy1, px0, py0)
    o4 = _orient(qx0, qy0, qx1, qy1, px1, py1)
    if o1 == 0 or o2 == 0 or o3 == 0 or o4 == 0:
        return False
    return o1 == o2 or o3 == o4


@njit(cache=True, nogil=True)
def _segments_apart(xy, path_coords, first, last):  # pragma: no cover - numba
    """Whether no two segments of paths first..last-1 meet, but for
    consecutive ones of a ring at their vertex: every pair for a few
    segments, a sweep along x for more."""
    total = 0
    for q in range(first, last):
        total += path_coords[q + 1] - path_coords[q] - 1
    if total <= _FEW_SEGMENTS:
        for r in range(first, last):
            a, b = path_coords[r], path_coords[r + 1] - 1
            for p in range(a, b):
                for q in range(p + 1, b):  # the same ring
                    if not _apart(xy, p, q, q == p + 1 or (p == a and q == b - 1)):
                        return False
                for r2 in range(r + 1, last):
                    for q in range(path_coords[r2], path_coords[r2 + 1] - 1):
                        if not _apart(xy, p, q, False):
                            return False
        return True
    start = np.empty(total, np.int64)  # the segment's first coordinate row
    ring = np.empty(total, np.int64)
    low = np.empty(total)
    s = 0
    for q in range(first, last):
        for k in range(path_coords[q], path_coords[q + 1] - 1):
            start[s], ring[s] = k, q
            low[s] = min(xy[k, 0], xy[k + 1, 0])
            s += 1
    order = np.argsort(low, kind="mergesort")
    for oi in range(total):
        i = order[oi]
        p, r = start[i], ring[i]
        high = max(xy[p, 0], xy[p + 1, 0])
        last_row = path_coords[r + 1] - 2  # the ring's last segment
        for oj in range(oi + 1, total):
            j = order[oj]
            if low[j] > high:
                break
            q = start[j]
            adjacent = ring[j] == r and (
                abs(q - p) == 1
                or (min(p, q) == path_coords[r] and max(p, q) == last_row)
            )
            if not _apart(xy, p, q, adjacent):
                return False
    return True


@njit(cache=True, nogil=True)
def _inside(xy, a, b, x, y):  # pragma: no cover - numba
    """Whether (x, y) is inside the ring rows a..b-1 (1, 0 outside), or -1
    when floating point cannot tell; the point is on none of its edges."""
    inside = False
    for k in range(a, b - 1):
        x0, y0, x1, y1 = xy[k, 0], xy[k, 1], xy[k + 1, 0], xy[k + 1, 1]
        if (y0 > y) == (y1 > y):
            continue
        turn = _orient(x0, y0, x1, y1, x, y)
        if turn == 0:
            return -1
        if (turn > 0) == (y1 > y0):  # the edge crosses the ray x+ of the point
            inside = not inside
    return 1 if inside else 0


@njit(cache=True, nogil=True)
def _in_polygon(xy, path_coords, paths, x, y):  # pragma: no cover - numba
    """Whether (x, y) is in the polygon whose rings are ``paths`` (inside its
    shell, in none of its holes), or -1 when that cannot be told."""
    where = _inside(xy, path_coords[paths[0]], path_coords[paths[0] + 1], x, y)
    if where != 1:
        return where
    for h in range(paths[0] + 1, paths[1]):
        hole = _inside(xy, path_coords[h], path_coords[h + 1], x, y)
        if hole != 0:
            return -1 if hole < 0 else 0
    return 1


@njit(cache=True, nogil=True)
def _polygonal_proven(p0, p1, part_paths, path_coords, xy):  # pragma: no cover
    """Whether the polygon parts p0..p1-1 form a valid zone."""
    first, last = part_paths[p0], part_paths[p1]
    sound = _rings_sound(xy, path_coords, first, last)
    if sound == 0:
        return False
    if sound == 2 and _once_around(xy, path_coords[first], path_coords[last]):
        return True  # one convex ring: nothing else to test
    if not _segments_apart(xy, path_coords, first, last):
        return False
    for p in range(p0, p1):
        shell = path_coords[part_paths[p]]
        for h in range(part_paths[p] + 1, part_paths[p + 1]):
            a = path_coords[h]
            if (
                _inside(xy, shell, path_coords[part_paths[p] + 1], xy[a, 0], xy[a, 1])
                != 1
            ):
                return False
            for other in range(part_paths[p] + 1, part_paths[p + 1]):
                if other == h:
                    continue
                b, c = path_coords[other], path_coords[other + 1]
                if _inside(xy, b, c, xy[a, 0], xy[a, 1]) != 0:
                    return False
    for i in range(p0, p1):
        a = path_coords[part_paths[i]]
        for j in range(p0, p1):
            if i == j:
                continue
            rings = part_paths[j : j + 2]
            if _in_polygon(xy, path_coords, rings, xy[a, 0], xy[a, 1]) != 0:
                return False
    return True


@njit(cache=True, nogil=True)
def _needs_geos(
    zone_parts, part_kind, part_paths, path_coords, xy, out, z0, z1
):  # pragma: no cover
    for z in range(z0, z1):
        p0, p1 = zone_parts[z], zone_parts[z + 1]
        if p1 == p0:
            continue
        if part_kind[p0] == LINE:
            for q in range(part_paths[p0], part_paths[p1]):
                if path_coords[q + 1] - path_coords[q] == 1:
                    out[z] = True
            continue
        if part_kind[p0] != POLYGON:
            continue
        if p1 - p0 > _MAX_PARTS:
            out[z] = True
            continue
        out[z] = not _polygonal_proven(p0, p1, part_paths, path_coords, xy)


def needs_geos(flat: Flat) -> np.ndarray:
    """Whether each zone must be checked (and maybe repaired, or refused) by
    GEOS: a polygonal zone not proven valid here, a one-coordinate line.
    ``flat`` holds the coordinates as read (any CRS). Large layers are
    checked on all cores (the compiled check holds no GIL)."""
    n = flat.zone_parts.size - 1
    out = np.zeros(n, np.bool_)
    arrays = (
        flat.zone_parts,
        flat.part_kind,
        flat.part_paths,
        flat.path_coords,
        flat.xy,
    )
    pieces = min(os.cpu_count() or 1, max(1, n // _ZONES_PER_THREAD))
    edges = np.linspace(0, n, pieces + 1).astype(np.int64)
    if pieces == 1:
        _needs_geos(*arrays, out, 0, n)
        return out
    check: Callable[[int, int], None] = partial(_needs_geos, *arrays, out)
    with ThreadPoolExecutor(pieces) as pool:
        done = [
            pool.submit(check, int(a), int(b)) for a, b in itertools.pairwise(edges)
        ]
        for future in done:
            future.result()
    return out
