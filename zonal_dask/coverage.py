"""Geometries to weighted pixels for one chunk: exactextract's coverage rules.

A cell's coverage fraction is the share of its area a polygon covers; it
depends on the polygon and the cell only, never on where a chunk ends. The
compiled kernel (``coverage_kernel.coverage``) computes it exactly for every
cell of a chunk each zone meets, from the zone's whole rings, with the same
arithmetic whatever the chunking, so a cell gets the same bits in any chunk.
The fractions are then stored as float32 and turned into each claim's weight
by exactextract's ``coverage_weight`` rules (``CoverageRule``): the fraction,
1, or the covered area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from . import coverage_kernel

# exactextract's default threshold: the smallest normal float32, so that every
# cell with a positive fraction counts
FLT_MIN = float(np.finfo(np.float32).tiny)
# Fractions this small are rounding noise of the summed edge contributions
# (about 1e-13 of a cell), not coverage.
NOISE = 1e-10
# exactextract's sphere (raster_area.h): the WGS 84 equatorial radius
EARTH_RADIUS = 6378137.0


@dataclass(frozen=True)
class CoverageRule:
    """How a cell's coverage fraction becomes its weight, as exactextract does.

    ``kind`` is one of ``stats.COVERAGE_KINDS``; ``min_fraction`` the
    smallest fraction that counts (float32 comparison, at least
    ``FLT_MIN``); ``transform`` the grid's (a, b, c, d, e, f), for the areas.
    """

    kind: str = "fraction"
    min_fraction: float | None = None
    transform: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)

    def weights(
        self, fractions: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The claims that count and their weights (float32 arithmetic).

        ``fractions`` are exact, ``rows`` the claims' rows in the grid.
        Returns a boolean mask of the claims that count and the weight of
        each of those, as float64.
        """
        f = fractions.astype(np.float32)
        keep = f >= np.float32(self.min_fraction or FLT_MIN)
        f, rows = f[keep], rows[keep]
        a, _, _, _, e, top = self.transform
        if self.kind == "fraction":
            c = f
        elif self.kind == "none":
            c = np.ones_like(f)
        elif self.kind == "area_cartesian":
            c = f * np.float32(abs(a) * abs(e))
        else:
            unit = 1.0 if self.kind == "area_spherical_m2" else 1e-6
            c = f * spherical_area(top + (rows + 0.5) * e, abs(a), abs(e), unit)
        return keep, c.astype(np.float64)


def spherical_area(
    center_y: np.ndarray, dx: float, dy: float, unit: float = 1.0
) -> np.ndarray:
    """float32 areas of lon/lat cells ``dx`` by ``dy`` degrees centred at
    latitudes ``center_y``, on exactextract's sphere, times ``unit``."""
    rad = math.pi / 180
    y = np.asarray(center_y, np.float64)
    band = np.abs(np.sin((y - 0.5 * dy) * rad) - np.sin((y + 0.5 * dy) * rad))
    return (EARTH_RADIUS * EARTH_RADIUS * rad * band * dx * unit).astype(np.float32)


def coverage_fractions(
    geometries: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    orient: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the chunk each zone covers, with the fraction it covers.

    ``geometries`` are (Multi)Polygons in the oriented pixel space of
    ``burn.to_pixel_space``, ``offset`` the chunk's (row, column) and
    ``shape`` its size.

    Returns
    -------
    pixels, zones, fractions
        int64 flat pixel index in the chunk (row-major, as the raster block),
        int32 local zone (position in ``geometries``), float64 exact fraction
        in (0, 1], by zone then pixel.
    """
    parts, part_zone = shapely.get_parts(geometries, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    counts = np.bincount(ring_of, minlength=len(rings))
    ring_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # get_rings gives each polygon's exterior first, then its holes
    exterior = np.diff(ring_part, prepend=-1) != 0
    ring_sign = np.where(exterior, 1.0, -1.0)
    per_zone = np.bincount(part_zone[ring_part], minlength=len(geometries))
    zone_rings = np.concatenate([[0], np.cumsum(per_zone)]).astype(np.int64)
    flip_x, flip_y = orient
    pixels, zones, fractions = coverage_kernel.coverage(
        flip_x * xy[:, 0],
        flip_y * xy[:, 1],
        ring_starts,
        ring_sign,
        zone_rings,
        np.array([*offset, *shape], np.int64),
        NOISE,
    )
    return pixels, zones.astype(np.int32), fractions
