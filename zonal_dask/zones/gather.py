"""Some zones of flat arrays gathered into flat arrays of their own, compiled.

``ZoneArrays.take`` with NumPy builds an index array of every part, path and
coordinate taken (``repeat``, ``arange``) and gathers through them: a
million zones' 8.4 million coordinates cost about 0.2-0.4 s, and planning
takes every zone once for the shards and each chunk task again where it
runs. One compiled pass counts, a second copies, and neither holds Python's
lock.
"""

from __future__ import annotations

import numpy as np

from ..precompiled import njit


@njit(cache=True, nogil=True)
def _take(
    zone_parts, part_kind, part_paths, path_coords, xy, zones
):  # pragma: no cover
    """``burn.Flat`` arrays of zones ``zones`` (positions, in that order)."""
    n_parts = n_paths = n_coords = 0
    for z in zones:
        p0, p1 = zone_parts[z], zone_parts[z + 1]
        n_parts += p1 - p0
        n_paths += part_paths[p1] - part_paths[p0]
        n_coords += path_coords[part_paths[p1]] - path_coords[part_paths[p0]]
    out_zone_parts = np.empty(zones.size + 1, np.int64)
    out_part_kind = np.empty(n_parts, np.int64)
    out_part_paths = np.empty(n_parts + 1, np.int64)
    out_path_coords = np.empty(n_paths + 1, np.int64)
    out_xy = np.empty((n_coords, 2), np.float64)
    parts = paths = coords = 0
    for k in range(zones.size):
        z = zones[k]
        out_zone_parts[k] = parts
        for p in range(zone_parts[z], zone_parts[z + 1]):
            out_part_kind[parts] = part_kind[p]
            out_part_paths[parts] = paths
            parts += 1
            for q in range(part_paths[p], part_paths[p + 1]):
                out_path_coords[paths] = coords
                paths += 1
                for c in range(path_coords[q], path_coords[q + 1]):
                    out_xy[coords, 0] = xy[c, 0]
                    out_xy[coords, 1] = xy[c, 1]
                    coords += 1
    out_zone_parts[zones.size] = parts
    out_part_paths[n_parts] = paths
    out_path_coords[n_paths] = coords
    return out_zone_parts, out_part_kind, out_part_paths, out_path_coords, out_xy


def take_flat(
    zone_parts: np.ndarray,
    part_kind: np.ndarray,
    part_paths: np.ndarray,
    path_coords: np.ndarray,
    xy: np.ndarray,
    zones: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """The ``burn.Flat`` fields of zones ``zones`` (positions) of the
    ``burn.Flat`` arrays given, in that order."""
    return _take(
        *(
            np.ascontiguousarray(a, np.int64)
            for a in (zone_parts, part_kind, part_paths, path_coords)
        ),
        np.ascontiguousarray(xy, np.float64).reshape(-1, 2),
        np.ascontiguousarray(zones, np.int64),
    )
