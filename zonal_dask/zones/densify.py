"""Zones reprojected edge by edge, and what ``zones/reproject.py`` and ``zones/read.py``
need of zones of every kind (polygons, lines, points).

``transform`` densifies each zone until its transformed edges are within a
tolerance of the true curves; with a geographic target it makes longitudes
continuous, closes rings around a pole through it, and ``wrap_longitudes``
places zones onto a raster's longitudes modulo 360. A polygon's rings are
closed paths; a line is an open path; a point a path of one coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from ..burn.prepare import POLYGON
from ..burn.rules import flatten

_MAX_ROUNDS = 12


def same_kind(geometry: Any, dimension: int) -> Any:
    """The parts of ``geometry`` (an intersection, a repair) of ``dimension``
    (2 polygons, 1 lines, 0 points) as one geometry, None when there are none.

    Polygons are unioned; lines and points are gathered as they are (a union
    would split lines where they cross, and move the vertices GDAL joins).
    """
    if geometry is None or geometry.is_empty:
        return None
    collection = shapely.get_type_id(geometry) == 7
    if not collection and shapely.get_dimensions(geometry) == dimension:
        return geometry
    parts = shapely.get_parts(geometry)
    parts = parts[shapely.get_dimensions(parts) == dimension]
    parts = parts[~shapely.is_empty(parts)]
    if parts.size == 0:
        return None
    if dimension == 2:
        return shapely.union_all(parts)
    if parts.size == 1:
        return parts[0]
    single = shapely.get_parts(parts)
    gather = shapely.multilinestrings if dimension == 1 else shapely.multipoints
    return gather(single)


def size(geometries: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Area of polygons, length of lines with coordinates scaled by ``scale``,
    number of points (NaN for None)."""
    dimension = shapely.get_dimensions(geometries)
    out = np.where(dimension == 0, shapely.get_num_coordinates(geometries), np.nan)
    out[dimension == 2] = shapely.area(geometries[dimension == 2])
    lines = geometries[dimension == 1]
    out[dimension == 1] = shapely.length(
        shapely.transform(lines, lambda xy: xy * scale)
    )
    return out


def shift(geometry: Any, dx: float) -> Any:
    """``geometry`` moved by ``dx`` along x."""
    return shapely.transform(geometry, lambda xy: xy + np.array([dx, 0.0]))


def wrap180(dlon: np.ndarray) -> np.ndarray:
    """Longitude differences brought into [-180, 180)."""
    return dlon - 360.0 * np.floor((dlon + 180.0) / 360.0)


@dataclass
class _Paths:
    """Coordinates of zones by path (a polygon's rings, a line, a point):
    the path (``ring``) and zone of each coordinate; each path's part, whether
    it is its part's first (a polygon's exterior) and whether it is closed."""

    xy: np.ndarray
    ring: np.ndarray
    zone: np.ndarray
    ring_part: np.ndarray
    ring_exterior: np.ndarray
    closed: np.ndarray

    @classmethod
    def of(cls, geometries: np.ndarray) -> _Paths:
        flat = flatten(geometries)
        n_parts, n_paths = len(flat.part_kind), len(flat.path_coords) - 1
        part_zone = np.repeat(np.arange(len(geometries)), np.diff(flat.zone_parts))
        ring_part = np.repeat(np.arange(n_parts), np.diff(flat.part_paths))
        ring = np.repeat(np.arange(n_paths), np.diff(flat.path_coords))
        exterior = np.arange(n_paths) == flat.part_paths[ring_part]
        closed = flat.part_kind[ring_part] == POLYGON
        zone = part_zone[ring_part][ring]
        return cls(flat.xy, ring, zone, ring_part, exterior, closed)

    @property
    def starts(self) -> np.ndarray:
        """Index of each path's first coordinate."""
        return np.flatnonzero(np.diff(self.ring, prepend=-1) != 0)


def transform(
    geometries: np.ndarray,
    transformer: Transformer,
    tolerance: float,
    geographic: bool,
    *,
    inverse: Transformer | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reproject zones (polygons, lines, points), densifying edges to
    ``tolerance`` (target units).

    Edges are split (``shapely.segmentize``, per zone) until the transformed
    midpoint of every edge lies within ``tolerance`` of the straight edge
    between its transformed ends. With a geographic target, ring longitudes
    are made continuous and aligned within each polygon; a ring around a pole
    is closed through the pole (``inverse`` maps the poles back, to tell which
    the zone holds).

    Returns the geometries and, per zone, whether some edge is still beyond
    ``tolerance`` (it crosses a cut of the target projection, where no
    densifying helps). Non-finite coordinates are left for the caller to
    refuse.
    """
    off = np.zeros(len(geometries), bool)
    if not (geometries != None).any():  # noqa: E711
        return geometries, off
    work = geometries.copy()
    limit = np.full(len(geometries), np.inf)
    budget = max(16 * shapely.get_num_coordinates(work).sum(), 1 << 20)
    worst = np.inf
    for round_ in range(_MAX_ROUNDS + 1):
        rings = _Paths.of(work)
        moved = _forward(rings, transformer, geographic)
        needed, deviation = _split_lengths(
            rings, moved, transformer, tolerance, geographic, len(work)
        )
        off = np.isfinite(needed)
        # a smooth curve's deviation falls by 4 when its edges are halved; one
        # that does not fall is a jump (a cut of the projection): stop there
        if not off.any() or round_ == _MAX_ROUNDS or deviation > worst / 2:
            break
        worst = deviation
        limit = np.minimum(limit, needed)
        added = np.sum(shapely.length(work[off]) / limit[off])
        if len(moved) + added > budget:
            break
        work[off] = shapely.segmentize(work[off], limit[off])
    polar = np.empty(0, np.int64)
    if geographic and len(moved):
        starts = rings.starts
        ends = np.append(starts[1:], len(moved)) - 1
        around = rings.closed & (np.abs(moved[ends, 0] - moved[starts, 0]) > 180.0)
        polar = np.unique(rings.zone[starts[around]])
        moved[ends[around]] = moved[starts[around]]  # closed; redone below
    out = shapely.set_coordinates(work.copy(), moved)
    for z in polar:
        out[z] = _through_pole(work[z], transformer, inverse)
    return out, off


def _forward(rings: _Paths, transformer: Transformer, geographic: bool) -> np.ndarray:
    x, y = transformer.transform(rings.xy[:, 0], rings.xy[:, 1], errcheck=False)
    moved = np.column_stack((x, y))
    if geographic:
        moved[:, 0] = _continuous_longitudes(moved[:, 0], rings)
    return moved


def _continuous_longitudes(lon: np.ndarray, rings: _Paths) -> np.ndarray:
    """Each ring's longitudes without jumps of 360, each hole moved by a
    multiple of 360 next to its polygon's exterior."""
    if lon.size == 0 or not np.isfinite(lon).all():
        return lon
    starts = rings.starts
    step = np.empty_like(lon)
    step[0] = 0.0
    step[1:] = wrap180(np.diff(lon))
    step[starts] = 0.0
    total = np.cumsum(step)
    first = np.repeat(starts, np.diff(np.append(starts, lon.size)))
    out = lon[first] + total - total[first]
    # a ring's last point is its first (the steps' sum is 0 or 360 up to rounding)
    ends = np.append(starts[1:], lon.size) - 1
    ring_starts, ring_ends = starts[rings.closed], ends[rings.closed]
    out[ring_ends] = out[ring_starts] + 360.0 * np.round(
        (out[ring_ends] - out[ring_starts]) / 360.0
    )
    # align each ring's middle with its part's exterior ring's middle
    low = np.minimum.reduceat(out, starts)
    high = np.maximum.reduceat(out, starts)
    middle = (low + high) / 2
    exterior_of_part = np.flatnonzero(rings.ring_exterior)
    part_index = np.cumsum(rings.ring_exterior) - 1
    reference = middle[exterior_of_part][part_index]
    shift = 360.0 * np.round((middle - reference) / 360.0)
    return out - shift[rings.ring]


def _split_lengths(
    rings: _Paths,
    moved: np.ndarray,
    transformer: Transformer,
    tolerance: float,
    geographic: bool,
    n: int,
) -> tuple[np.ndarray, float]:
    """Per zone, the edge length (source units) that brings every edge within
    ``tolerance`` of the curve, inf for zones within it already or whose
    transform failed (the caller refuses non-finite coordinates); and the
    largest deviation."""
    needed = np.full(n, np.inf)
    same = rings.ring[1:] == rings.ring[:-1]
    a, b = rings.xy[:-1][same], rings.xy[1:][same]
    if a.size == 0:
        return needed, 0.0
    middle = (a + b) / 2
    x, y = transformer.transform(middle[:, 0], middle[:, 1], errcheck=False)
    start, end = moved[:-1][same], moved[1:][same]
    with np.errstate(invalid="ignore", divide="ignore"):
        # the transformed midpoint's distance to the chord (not to the chord's
        # midpoint: a meridian in Mercator is straight in degrees, though its
        # midpoint is not the chord's)
        ux, uy = end[:, 0] - start[:, 0], end[:, 1] - start[:, 1]
        px, py = x - start[:, 0], y - start[:, 1]
        if geographic:
            ux, px = wrap180(ux), wrap180(px)
        along = np.clip((px * ux + py * uy) / (ux * ux + uy * uy), 0.0, 1.0)
        along = np.where(np.isfinite(along), along, 0.0)  # a zero-length chord
        deviation = np.hypot(px - along * ux, py - along * uy)
        bad = np.isfinite(deviation) & (deviation > tolerance)
    if not bad.any():
        return needed, 0.0
    length = np.hypot(*(b - a).T)[bad]
    pieces = np.clip(np.ceil(np.sqrt(deviation[bad] / tolerance)), 2, 1024)
    zone = rings.zone[:-1][same][bad]
    np.minimum.at(needed, zone, length / pieces)
    return needed, float(deviation[bad].max())


def _through_pole(
    geometry: Any, transformer: Transformer, inverse: Transformer | None
) -> Any:
    """A polygon around a pole, in longitudes: each ring around the pole is
    closed along the pole's latitude (rare: done zone by zone)."""
    polygons = []
    for part in shapely.get_parts(geometry):
        shapes = []
        for ring in (part.exterior, *part.interiors):
            xy = np.asarray(ring.coords)
            x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
            lon = np.concatenate(([x[0]], x[0] + np.cumsum(wrap180(np.diff(x)))))
            coords = np.column_stack((lon, y))
            if abs(lon[-1] - lon[0]) > 180.0:
                pole = _encircled_pole(shapely.Polygon(ring), y, inverse)
                closing = [(lon[-1], pole), (lon[0], pole), tuple(coords[0])]
                coords = np.vstack((coords, closing))
            shape = same_kind(shapely.make_valid(shapely.Polygon(coords)), 2)
            # rings around a pole span 360 degrees: compare them modulo 360
            shapes.append(wrap_longitudes(np.array([shape], dtype=object), -180.0)[0])
        polygons.append(shapely.difference(shapes[0], shapely.union_all(shapes[1:])))
    return same_kind(shapely.union_all(polygons), 2)


def _encircled_pole(
    inside: Any, latitudes: np.ndarray, inverse: Transformer | None
) -> float:
    """The latitude of the pole a ring encircles (90 or -90): the pole whose
    place in the source CRS the ring holds, else the nearer one."""
    if inverse is not None:
        held = []
        for lat in (90.0, -90.0):
            x, y = inverse.transform(0.0, lat, errcheck=False)
            point = shapely.Point(x, y)
            if np.isfinite([x, y]).all() and abs(x) + abs(y) < 1e15:
                held.append(lat) if inside.covers(point) else None
        if len(held) == 1:
            return held[0]
    return 90.0 if np.mean(latitudes) >= 0 else -90.0


def wrap_longitudes(geometries: np.ndarray, west: float) -> np.ndarray:
    """Zones in longitudes placed onto ``west .. west + 360`` (a raster's
    longitudes), modulo 360.

    A zone within those longitudes is kept; any other is cut into its parts
    over the strips ``west + 360 k .. west + 360 (k + 1)``, each moved back by
    ``360 k``: a zone over 170..190 gives 170..180 and -180..-170 for a
    -180..180 raster, and -10..10 gives 0..10 and 350..360 for a 0..360 one.
    Area and length are kept, so the share of a zone beyond the raster is too.
    """
    east = west + 360.0
    bounds = shapely.bounds(geometries)
    with np.errstate(invalid="ignore"):
        inside = (bounds[:, 0] >= west) & (bounds[:, 2] <= east)
    out = geometries.copy()
    for i in np.flatnonzero(~inside & (geometries != None)):  # noqa: E711
        xmin, ymin, xmax, ymax = bounds[i]
        dimension = shapely.get_dimensions(geometries[i])
        pieces = []
        for k in range(
            int(np.floor((xmin - west) / 360.0)),
            int(np.floor((xmax - west) / 360.0)) + 1,
        ):
            strip = shapely.box(west + 360.0 * k, ymin - 1, east + 360.0 * k, ymax + 1)
            piece = same_kind(shapely.intersection(geometries[i], strip), dimension)
            if piece is not None:
                pieces.append(shift(piece, -360.0 * k))
        out[i] = same_kind(shapely.GeometryCollection(pieces), dimension)
    return out
