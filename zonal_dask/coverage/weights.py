"""Geometries to weighted pixels for one chunk: exactextract's coverage rules.

A cell's coverage fraction is the share of its area a polygon covers; it
depends on the polygon and the cell only, never on where a chunk ends. The
compiled kernel (``fractions.coverage``) computes it exactly for every
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

from . import fraction_kernel, line_walk

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

    @property
    def cell_size(self) -> tuple[float, float]:
        """A cell's width and height in the CRS's units."""
        return abs(self.transform[0]), abs(self.transform[4])

    @property
    def spherical(self) -> bool:
        """The weights are areas on the sphere: they depend on the rows."""
        return self.kind.startswith("area_spherical")

    def weights(
        self, fractions: np.ndarray, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """The claims that count and their weights (float32 arithmetic).

        ``fractions`` are exact, ``rows`` the claims' rows in the grid (for
        ``spherical`` rules only). Returns a boolean mask of the claims that
        count (None when all do) and the weight of each of those, as float64.
        """
        f = fractions.astype(np.float32)
        keep: np.ndarray | None = f >= np.float32(self.min_fraction or FLT_MIN)
        if keep is not None and keep.all():
            keep = None  # no copies of a piece's claims
        if keep is not None:
            f = f[keep]
            rows = None if rows is None else rows[keep]
        a, _, _, _, e, top = self.transform
        if self.kind == "fraction":
            c = f
        elif self.kind == "none":
            c = np.ones_like(f)
        elif self.kind == "area_cartesian":
            c = f * np.float32(abs(a) * abs(e))
        else:
            if rows is None:
                raise ValueError("areas on the sphere need the claims' rows")
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
    raster_shape: tuple[int, int] | None = None,
    cell_size: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the chunk each zone covers, with the fraction it covers
    (for a line: its length in the cell, exactextract's measure).

    ``geometries`` are (Multi)Polygons and (Multi)LineStrings in the oriented
    pixel space of ``burn.to_pixel_space``, ``offset`` the chunk's (row,
    column) and ``shape`` its size; lines need ``raster_shape`` (the whole
    grid's) and ``cell_size`` (a cell's width and height in the CRS's units).

    Returns
    -------
    pixels, zones, fractions
        int64 flat pixel index in the chunk (row-major, as the raster block),
        int32 local zone (position in ``geometries``), float64 exact fraction
        in (0, 1] (a line's length: a float32 value), by zone then pixel.
    """
    linear = np.isin(shapely.get_type_id(geometries), LINE_TYPES)
    if not linear.any():
        return _polygon_fractions(geometries, offset, shape, orient)
    if raster_shape is None:
        raise ValueError("lines' lengths need the raster's shape")
    lines = np.flatnonzero(linear)
    polygons = np.flatnonzero(~linear)
    pixels, zones, lengths = line_lengths(
        geometries[lines], offset, shape, orient, raster_shape, cell_size
    )
    if polygons.size == 0:
        return pixels, lines[zones].astype(np.int32), lengths
    p_pixels, p_zones, fractions = _polygon_fractions(
        geometries[polygons], offset, shape, orient
    )
    pixels = np.concatenate([p_pixels, pixels])
    zones = np.concatenate([polygons[p_zones], lines[zones]]).astype(np.int32)
    order = np.lexsort((pixels, zones))
    return pixels[order], zones[order], np.concatenate([fractions, lengths])[order]


# shapely's type ids of LineString and MultiLineString
LINE_TYPES = (1, 5)


def line_lengths(
    geometries: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    orient: tuple[int, int],
    raster_shape: tuple[int, int],
    cell_size: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the chunk each (Multi)LineString passes through, with its
    length inside the cell, as exactextract measures it (``line_walk``)."""
    parts, part_zone = shapely.get_parts(geometries, return_index=True)
    xy, part_of = shapely.get_coordinates(parts, return_index=True)
    counts = np.bincount(part_of, minlength=len(parts))
    part_starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    per_zone = np.bincount(part_zone, minlength=len(geometries))
    zone_parts = np.concatenate([[0], np.cumsum(per_zone)]).astype(np.int64)
    rows, cols = raster_shape
    flip_x, flip_y = orient
    xs, ys = sorted((0, flip_x * cols)), sorted((0, flip_y * rows))
    pixels, zones, lengths = line_walk.line_lengths(
        np.ascontiguousarray(xy[:, 0], np.float64),
        np.ascontiguousarray(xy[:, 1], np.float64),
        part_starts,
        zone_parts,
        np.array([xs[0], ys[0], xs[1], ys[1]], np.float64),
        np.array([*offset, *shape], np.int64),
        np.array(orient, np.int64),
        np.array(cell_size, np.float64),
    )
    return pixels, zones.astype(np.int32), lengths


def pooled_limit(
    geometries: np.ndarray, zone_of_part: np.ndarray, n_zones: int
) -> np.ndarray:
    """The most a cell's pooled weight may be, per zone: 1 for polygons (a
    fraction), none for lines (a length). A zone's parts are all lines or all
    polygons (``pooling.require_one_kind``)."""
    linear = np.zeros(n_zones, bool)
    linear[zone_of_part] = np.isin(shapely.get_type_id(geometries), LINE_TYPES)
    return np.where(linear, np.inf, 1.0)


def _polygon_fractions(
    geometries: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    orient: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    pixels, zones, fractions = fraction_kernel.coverage(
        flip_x * xy[:, 0],
        flip_y * xy[:, 1],
        ring_starts,
        ring_sign,
        zone_rings,
        np.array([*offset, *shape], np.int64),
        NOISE,
    )
    return pixels, zones.astype(np.int32), fractions
