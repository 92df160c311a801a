"""Zones into the raster's CRS, exact where the raster is.

Reprojecting a layer vertex by vertex (``GeoDataFrame.to_crs``) goes wrong in
three ways: zones far from the raster leave the target projection's domain
(infinite coordinates), straight edges stay straight where the true edge is
curved (a lon/lat box over a UTM raster), and a zone crossing the antimeridian,
taken to longitudes, spans the globe. ``to_raster_crs`` does, in order:

1. clip: the raster's extent widened by ``MARGIN`` pixels is taken to the
   zones' CRS with densified edges (its footprint there); zones reaching beyond
   it are clipped to it, so what is cut lies beyond the raster and whatever
   leaves the target's domain is gone;
2. densify: edges are split until the true curve passes within ``TOLERANCE``
   pixel of every transformed (straight) edge at its midpoint;
3. longitudes (a geographic raster): each ring's longitudes are made
   continuous, a ring around a pole is closed through it, and each zone is
   placed onto the raster's longitudes modulo 360: a zone crossing ±180 is
   split there for a -180..180 raster, and zones at -180..0 land on a 0..360
   raster.

Coordinates outside a geographic CRS's range (metres declared as degrees) are
a ``CRSError``, never an empty result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from .errors import CRSError, plain

# Zones are clipped this many pixels beyond the raster: the cut never touches
# a pixel, whatever the pixel rule.
MARGIN = 4
# A transformed edge may pass this far (in pixels) from the true curve.
TOLERANCE = 1e-3
_MAX_ROUNDS = 12
# A geographic CRS's valid longitudes (-180..180 and 0..360 are both used, and
# zones crossing 180 or 360 reach beyond) and latitudes, with room for rounding.
_LON, _LAT = 540.0, 90.0
_SLACK = 1e-6


@dataclass(frozen=True)
class Target:
    """The raster's side: CRS, extent and the smaller pixel side, in CRS units."""

    crs: CRS
    bounds: tuple[float, float, float, float]
    pixel: float

    def region(self, margin: float) -> tuple[float, float, float, float]:
        """The extent widened by ``margin`` pixels."""
        xmin, ymin, xmax, ymax = self.bounds
        m = margin * self.pixel
        return xmin - m, ymin - m, xmax + m, ymax + m


def crs_name(crs: CRS) -> str:
    """How messages name a CRS: its authority code, else its name."""
    code = crs.to_authority()
    return ":".join(code) if code else crs.name


def parse_crs(value: Any, name: str) -> CRS:
    """A CRS from anything pyproj reads (``"EPSG:4326"``, WKT, PROJ), or a
    ``CRSError`` naming the option."""
    try:
        return CRS.from_user_input(value)
    except Exception as err:  # pyproj raises its own CRSError, and TypeError
        raise CRSError(f"{name}: not a CRS: {value!r} ({err})") from None


def check_range(
    geometries: np.ndarray, crs: CRS | None, names: Any, source: str
) -> None:
    """Refuse coordinates a geographic CRS cannot hold, naming the first zone.

    ``names`` names the zones (a ``pandas.Index``). Metres in a file whose
    ``.prj`` says WGS 84 land here instead of giving empty results.
    """
    if crs is None or not crs.is_geographic or geometries.size == 0:
        return
    bounds = shapely.bounds(geometries)
    with np.errstate(invalid="ignore"):
        bad = (np.abs(bounds[:, [0, 2]]) > _LON + _SLACK).any(axis=1)
        bad |= (np.abs(bounds[:, [1, 3]]) > _LAT + _SLACK).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        xmin, ymin, xmax, ymax = bounds[i]
        raise CRSError(
            f"{source}: zone {plain(names[i])!r} has coordinates "
            f"x {xmin:.6g}..{xmax:.6g}, y {ymin:.6g}..{ymax:.6g}, outside the "
            f"longitudes and latitudes of its declared CRS {crs_name(crs)}: "
            "set the right CRS with zones_crs= (--zones-crs), or pass "
            "assume_same_crs=True (--assume-same-crs) to take the coordinates "
            "as the raster's"
        )


def to_raster_crs(
    geometries: np.ndarray,
    zones_crs: CRS | None,
    target: Target,
    names: Any,
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The zones in the raster's CRS, and the share of the clipped ones beyond it.

    Parameters
    ----------
    geometries
        Valid polygons in ``zones_crs`` (None for a null or empty zone).
    zones_crs
        Their CRS; None when they are taken to be in the raster's.
    target
        The raster's CRS and extent.
    names, source
        Name the zones and their file in error messages.

    Returns
    -------
    geometries, outside
        The zones in ``target.crs``; for a zone clipped on the way, the share
        of its area beyond the raster (measured in the zones' CRS), NaN for the
        others (measure them in the raster's).
    """
    outside = np.full(len(geometries), np.nan)
    present = np.flatnonzero(geometries != None)  # noqa: E711
    out = geometries.copy()
    if zones_crs is not None and not zones_crs.equals(target.crs):
        to_raster = Transformer.from_crs(zones_crs, target.crs, always_xy=True)
        to_zones = Transformer.from_crs(target.crs, zones_crs, always_xy=True)
        footprint = _footprints(target, to_zones, to_raster, zones_crs.is_geographic)
        work = out[present]
        if footprint is not None:
            work, share = _clip(work, *footprint)
            outside[present] = share
        moved, off = transform(
            work,
            to_raster,
            target.pixel * TOLERANCE,
            target.crs.is_geographic,
            inverse=to_zones,
        )
        broken = off | ~np.isfinite(shapely.bounds(moved)).all(axis=1)
        broken &= moved != None  # noqa: E711
        if broken.any():
            i = int(present[np.flatnonzero(broken)[0]])
            raise CRSError(
                f"{source}: zone {plain(names[i])!r} cannot be reprojected from "
                f"{crs_name(zones_crs)} to the raster's {crs_name(target.crs)} "
                f"(it leaves that projection's domain or crosses its edge); clip "
                f"the zones to the raster's area first"
            )
        out[present] = moved
    if target.crs.is_geographic:
        out[present] = wrap_longitudes(out[present], target.bounds[0])
    return _repair(out, target.pixel), outside


def _footprints(
    target: Target, to_zones: Transformer, to_raster: Transformer, geographic: bool
) -> tuple[Any, Any] | None:
    """The raster's extent widened by ``MARGIN`` pixels, and exactly, in the
    zones' CRS; None when the widened extent leaves the zones' CRS's domain."""
    scale = _zones_units_per_pixel(target, to_zones, geographic)
    if scale is None:
        return None
    shapes = []
    for margin in (MARGIN, 0):
        box = np.array([shapely.box(*target.region(margin))], dtype=object)
        moved, off = transform(
            box, to_zones, TOLERANCE * scale, geographic, inverse=to_raster
        )
        moved = moved[0]
        if off[0] or moved is None or not np.isfinite(shapely.bounds(moved)).all():
            return None
        if not moved.is_valid:  # the extent folds over itself there
            return None
        if geographic:
            moved = _all_longitudes(moved, widened=margin > 0)
        shapely.prepare(moved)
        shapes.append(moved)
    return shapes[0], shapes[1]


def _all_longitudes(footprint: Any, widened: bool) -> Any:
    """A footprint in longitudes, for zones using -180..180 or 0..360.

    Its copies 360 degrees apart, or, for clipping around a pole, the band of
    latitudes it spans: copies spanning 360 degrees meet along a meridian only
    up to rounding, and would cut a zone there.
    """
    west, south, east, north = footprint.bounds
    if widened and east - west >= 360.0 - _SLACK:
        return shapely.box(-3 * 180.0, south, 3 * 180.0, north)
    return shapely.union_all([_shift(footprint, 360.0 * k) for k in (-1, 0, 1)])


def _zones_units_per_pixel(
    target: Target, to_zones: Transformer, geographic: bool
) -> float | None:
    """The smallest length of a pixel step in the zones' CRS, over a 5 x 5
    sample of the widened extent; None when a sample point leaves its domain."""
    xmin, ymin, xmax, ymax = target.region(MARGIN)
    grid_x, grid_y = np.meshgrid(np.linspace(xmin, xmax, 5), np.linspace(ymin, ymax, 5))
    x, y = grid_x.ravel(), grid_y.ravel()
    steps = []
    base = np.column_stack(to_zones.transform(x, y, errcheck=False))
    for dx, dy in ((target.pixel, 0.0), (0.0, target.pixel)):
        moved = np.column_stack(to_zones.transform(x + dx, y + dy, errcheck=False))
        with np.errstate(invalid="ignore"):
            delta = moved - base
            if geographic:
                delta[:, 0] = _wrap180(delta[:, 0])
            steps.append(np.hypot(delta[:, 0], delta[:, 1]))
    lengths = np.concatenate(steps)
    if not np.isfinite(lengths).all() or not (lengths > 0).all():
        return None
    return float(lengths.min())


def _clip(
    geometries: np.ndarray, widened: Any, exact: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Zones reaching beyond ``widened`` clipped to it (None when nothing is
    left), and for those the share of their area beyond ``exact``."""
    share = np.full(len(geometries), np.nan)
    beyond = np.flatnonzero(~shapely.contains_properly(widened, geometries))
    if beyond.size == 0:
        return geometries, share
    out = geometries.copy()
    cut = geometries[beyond]
    area = shapely.area(cut)
    with np.errstate(invalid="ignore", divide="ignore"):
        share[beyond] = 1 - shapely.area(shapely.intersection(cut, exact)) / area
    share[beyond] = np.where(area > 0, np.clip(share[beyond], 0, 1), np.nan)
    clipped = shapely.intersection(cut, widened)
    out[beyond] = [_polygonal(g) for g in clipped]
    return out, share


def _polygonal(geometry: Any) -> Any:
    """The polygonal part of an intersection or a repair, None when empty."""
    if geometry is None or geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [
        p
        for p in shapely.get_parts(geometry)
        if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty
    ]
    return shapely.union_all(parts) if parts else None


def _repair(geometries: np.ndarray, pixel: float) -> np.ndarray:
    """Make valid what reprojection left invalid: not the input's fault, so no
    warning.

    Edges that were distinct in the zones' CRS can fall onto one line in the
    raster's (the two sides of a cut at ±180 over a polar raster) and, through
    rounding, enclose slivers: holes thinner than ``TOLERANCE`` pixel are
    dropped, so a pixel centre on that line stays inside.
    """
    invalid = np.flatnonzero(
        (geometries != None) & ~shapely.is_valid(geometries)  # noqa: E711
    )
    out = geometries.copy()
    smallest = (TOLERANCE * pixel) ** 2
    for i in invalid:
        fixed = _polygonal(shapely.make_valid(out[i]))
        if fixed is not None:
            parts = [
                shapely.Polygon(
                    p.exterior,
                    [h for h in p.interiors if shapely.Polygon(h).area > smallest],
                )
                for p in shapely.get_parts(fixed)
            ]
            fixed = _polygonal(shapely.make_valid(shapely.union_all(parts)))
        out[i] = fixed
    return out


def _shift(geometry: Any, dx: float) -> Any:
    """``geometry`` moved by ``dx`` along x."""
    return shapely.transform(geometry, lambda xy: xy + np.array([dx, 0.0]))


def _wrap180(dlon: np.ndarray) -> np.ndarray:
    """Longitude differences brought into [-180, 180)."""
    return dlon - 360.0 * np.floor((dlon + 180.0) / 360.0)


@dataclass
class _Rings:
    """Coordinates of polygons with their rings: which ring (and which part,
    and whether exterior) each coordinate belongs to, and its zone."""

    xy: np.ndarray
    ring: np.ndarray
    zone: np.ndarray
    ring_part: np.ndarray
    ring_exterior: np.ndarray

    @classmethod
    def of(cls, geometries: np.ndarray) -> _Rings:
        parts, part_zone = shapely.get_parts(geometries, return_index=True)
        rings, ring_part = shapely.get_rings(parts, return_index=True)
        counts = shapely.get_num_coordinates(rings)
        exterior = np.ones(len(rings), bool)
        exterior[1:] = ring_part[1:] != ring_part[:-1]
        ring = np.repeat(np.arange(len(rings)), counts)
        xy = shapely.get_coordinates(geometries)
        return cls(xy, ring, part_zone[ring_part][ring], ring_part, exterior)

    @property
    def starts(self) -> np.ndarray:
        """Index of each ring's first coordinate."""
        return np.flatnonzero(np.diff(self.ring, prepend=-1) != 0)


def transform(
    geometries: np.ndarray,
    transformer: Transformer,
    tolerance: float,
    geographic: bool,
    *,
    inverse: Transformer | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reproject polygons, densifying edges to ``tolerance`` (target units).

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
        rings = _Rings.of(work)
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
        around = np.abs(moved[ends, 0] - moved[starts, 0]) > 180.0
        polar = np.unique(rings.zone[starts[around]])
        moved[ends[around]] = moved[starts[around]]  # closed; redone below
    out = shapely.set_coordinates(work.copy(), moved)
    for z in polar:
        out[z] = _through_pole(work[z], transformer, inverse)
    return out, off


def _forward(rings: _Rings, transformer: Transformer, geographic: bool) -> np.ndarray:
    x, y = transformer.transform(rings.xy[:, 0], rings.xy[:, 1], errcheck=False)
    moved = np.column_stack((x, y))
    if geographic:
        moved[:, 0] = _continuous_longitudes(moved[:, 0], rings)
    return moved


def _continuous_longitudes(lon: np.ndarray, rings: _Rings) -> np.ndarray:
    """Each ring's longitudes without jumps of 360, each hole moved by a
    multiple of 360 next to its polygon's exterior."""
    if lon.size == 0 or not np.isfinite(lon).all():
        return lon
    starts = rings.starts
    step = np.empty_like(lon)
    step[0] = 0.0
    step[1:] = _wrap180(np.diff(lon))
    step[starts] = 0.0
    total = np.cumsum(step)
    first = np.repeat(starts, np.diff(np.append(starts, lon.size)))
    out = lon[first] + total - total[first]
    # a ring's last point is its first (the steps' sum is 0 or 360 up to rounding)
    ends = np.append(starts[1:], lon.size) - 1
    out[ends] = out[starts] + 360.0 * np.round((out[ends] - out[starts]) / 360.0)
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
    rings: _Rings,
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
            ux, px = _wrap180(ux), _wrap180(px)
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
            lon = np.concatenate(([x[0]], x[0] + np.cumsum(_wrap180(np.diff(x)))))
            coords = np.column_stack((lon, y))
            if abs(lon[-1] - lon[0]) > 180.0:
                pole = _encircled_pole(shapely.Polygon(ring), y, inverse)
                closing = [(lon[-1], pole), (lon[0], pole), tuple(coords[0])]
                coords = np.vstack((coords, closing))
            shape = _polygonal(shapely.make_valid(shapely.Polygon(coords)))
            # rings around a pole span 360 degrees: compare them modulo 360
            shapes.append(wrap_longitudes(np.array([shape], dtype=object), -180.0)[0])
        polygons.append(shapely.difference(shapes[0], shapely.union_all(shapes[1:])))
    return _polygonal(shapely.union_all(polygons))


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
    Area is kept, so the share of a zone beyond the raster is too.
    """
    east = west + 360.0
    bounds = shapely.bounds(geometries)
    with np.errstate(invalid="ignore"):
        inside = (bounds[:, 0] >= west) & (bounds[:, 2] <= east)
    out = geometries.copy()
    for i in np.flatnonzero(~inside & (geometries != None)):  # noqa: E711
        xmin, ymin, xmax, ymax = bounds[i]
        pieces = []
        for k in range(
            int(np.floor((xmin - west) / 360.0)),
            int(np.floor((xmax - west) / 360.0)) + 1,
        ):
            strip = shapely.box(west + 360.0 * k, ymin - 1, east + 360.0 * k, ymax + 1)
            piece = _polygonal(shapely.intersection(geometries[i], strip))
            if piece is not None:
                pieces.append(_shift(piece, -360.0 * k))
        out[i] = _polygonal(shapely.union_all(pieces)) if pieces else None
    return out
