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

from ..errors import CRSError, plain
from .densify import same_kind, shift, size, transform, wrap180, wrap_longitudes

# Zones are clipped this many pixels beyond the raster: the cut never touches
# a pixel, whatever the pixel rule.
MARGIN = 4
# A transformed edge may pass this far (in pixels) from the true curve.
TOLERANCE = 1e-3
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


def crs_text(crs: Any) -> str | None:
    """A CRS option as text a request can hold (pyproj and rasterio CRSs
    become WKT); checked when the zones are read."""
    if crs is None or isinstance(crs, str):
        return crs
    to_wkt = getattr(crs, "to_wkt", None)
    return to_wkt() if callable(to_wkt) else str(crs)


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
    check_bounds(shapely.bounds(geometries), crs, names, source)


def check_bounds(bounds: np.ndarray, crs: CRS | None, names: Any, source: str) -> None:
    """``check_range`` on the zones' bounds ((n, 4), NaN for empty zones)."""
    if crs is None or not crs.is_geographic or bounds.size == 0:
        return
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
        Valid polygons, lines and points in ``zones_crs`` (None for a null or
        empty zone).
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
        of it beyond the raster (area, length or points, measured in the
        zones' CRS), NaN for the others (measure them in the raster's).
    """
    outside = np.full(len(geometries), np.nan)
    present = np.flatnonzero(geometries != None)  # noqa: E711
    out = geometries.copy()
    moving = zones_crs is not None and not zones_crs.equals(target.crs)
    if not moving and not target.crs.is_geographic:
        return out, outside  # nothing moves: the zones are valid already
    if zones_crs is not None and moving:
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
    return shapely.union_all([shift(footprint, 360.0 * k) for k in (-1, 0, 1)])


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
                delta[:, 0] = wrap180(delta[:, 0])
            steps.append(np.hypot(delta[:, 0], delta[:, 1]))
    lengths = np.concatenate(steps)
    if not np.isfinite(lengths).all() or not (lengths > 0).all():
        return None
    return float(lengths.min())


def _clip(
    geometries: np.ndarray, widened: Any, exact: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Zones reaching beyond ``widened`` clipped to it (None when nothing is
    left), and for those the share of them beyond ``exact``: of a polygon's
    area, a line's length, a multipoint's points."""
    share = np.full(len(geometries), np.nan)
    beyond = np.flatnonzero(~shapely.contains_properly(widened, geometries))
    if beyond.size == 0:
        return geometries, share
    out = geometries.copy()
    cut = geometries[beyond]
    whole = size(cut)
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.nan_to_num(size(shapely.intersection(cut, exact)))
        share[beyond] = 1 - inside / whole
    share[beyond] = np.where(whole > 0, np.clip(share[beyond], 0, 1), np.nan)
    clipped = shapely.intersection(cut, widened)
    dimension = shapely.get_dimensions(cut)
    out[beyond] = [same_kind(g, d) for g, d in zip(clipped, dimension, strict=True)]
    return out, share


def _repair(geometries: np.ndarray, pixel: float) -> np.ndarray:
    """Make valid what reprojection left invalid: not the input's fault, so no
    warning.

    Edges that were distinct in the zones' CRS can fall onto one line in the
    raster's (the two sides of a cut at ±180 over a polar raster) and, through
    rounding, enclose slivers: holes thinner than ``TOLERANCE`` pixel are
    dropped, so a pixel centre on that line stays inside.
    """
    polygonal = shapely.get_dimensions(geometries) == 2
    invalid = np.flatnonzero(polygonal & ~shapely.is_valid(geometries))
    out = geometries.copy()
    smallest = (TOLERANCE * pixel) ** 2
    for i in invalid:
        fixed = same_kind(shapely.make_valid(out[i]), 2)
        if fixed is not None:
            parts = [
                shapely.Polygon(
                    p.exterior,
                    [h for h in p.interiors if shapely.Polygon(h).area > smallest],
                )
                for p in shapely.get_parts(fixed)
            ]
            fixed = same_kind(shapely.make_valid(shapely.union_all(parts)), 2)
        out[i] = fixed
    return out
