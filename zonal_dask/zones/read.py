"""Zones ready to burn: read, in the raster's CRS, valid, named, in pixel space.

``zones_on_grid`` takes zones as given (a path pyogrio reads, or a
GeoDataFrame) to ``PixelZones`` (``zones.pixel``): one zone per input
feature, in input order, in the raster's oriented pixel space, with the index
that names the rows. A layer read whole through Arrow that needs no
reprojection is checked on flat arrays and never becomes shapely objects
(``zones.table``); any other goes through GeoPandas and shapely here.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..burn.rules import orientation, pixel_xy
from ..errors import (
    CRSError,
    GeometryTypeError,
    IdFieldError,
    NoOverlapWarning,
    plain,
)
from ..run.process_state import release_freed_memory
from .arrays import ZoneArrays
from .arrow_read import ZoneTable
from .collections import collection_parts
from .pixel import PixelZones
from .repair import is_valid as _is_valid  # noqa: F401 - tests read it here
from .repair import make_valid
from .reproject import (
    Target,
    check_bounds,
    check_range,
    crs_name,
    parse_crs,
    to_raster_crs,
)
from .source import read_source, read_zones, read_zones_and_wkb, reading
from .table import table_arrays

if TYPE_CHECKING:
    import xarray as xr

# Layers of this many zones or more are checked on flat arrays, smaller ones
# through shapely: the compiled validity check costs seconds to compile on a
# machine's first run, GEOS checks 20,000 zones in tens of milliseconds.
ARRAYS_FROM = 20_000

__all__ = ["PixelZones", "read_zones", "read_zones_and_wkb", "zones_on_grid"]


POLYGONAL = {"Polygon", "MultiPolygon"}
LINEAR = {"LineString", "MultiLineString"}
# what burn/rules.py burns: GDAL's rules for polygons, lines and points
BURNT = POLYGONAL | LINEAR | {"Point", "MultiPoint"}
# shapely's type ids, named as GeoPandas names them in messages
GEOMETRY_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def prepare_zones(
    frame: gpd.GeoDataFrame,
    target: Target | None,
    *,
    zone_id: str | None = None,
    source: str = "zones",
    assume_same_crs: bool = False,
    group_by: str | None = None,
) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """Validate, index and reproject the zones.

    Returns the geometries in the raster's CRS (None for a null or empty
    geometry, which yields a row with count 0), the index naming them, and
    for zones clipped to the raster's surroundings on the way the share of
    them beyond the raster (NaN for the others; ``zones/reproject.py``).

    Parameters
    ----------
    frame
        The zones. Its index names the rows unless ``zone_id`` is given.
    target
        The raster's CRS and extent; None when the raster has no CRS (the
        zones' coordinates are then taken as they are).
    zone_id
        A column whose (unique) values name the rows instead of the index.
    group_by
        A column whose values (repeated or not) name the rows instead: the
        features sharing one are pooled (``pooling.pool_zones``).
    source
        How to name the zones in error messages (their path, usually).
    assume_same_crs
        Take the zones' coordinates as the raster's, whatever CRS they declare.
    """
    index = _zone_index(frame, group_by or zone_id, source, unique=not group_by)
    geometries = np.asarray(frame.geometry.values, dtype=object)
    geometries = np.where(shapely.is_empty(geometries), np.array(None), geometries)
    geometries = collection_parts(geometries, index, source)
    require_types(geometries, source, BURNT, "zones must be polygons, lines or points")
    geometries = make_valid(geometries, source)
    declared = None if assume_same_crs or frame.crs is None else CRS(frame.crs)
    check_range(geometries, declared, index, source)
    outside = np.full(len(geometries), np.nan)
    if target is not None:
        geometries, outside = to_raster_crs(geometries, declared, target, index, source)
    return geometries, index, outside


def _zone_index(
    frame: pd.DataFrame,
    zone_id: str | None,
    source: str,
    unique: bool = True,
    geometry: str | None = None,
) -> pd.Index:
    """The index naming the zones: ``frame``'s, or ``zone_id``'s values
    (``geometry`` names the geometry column, not a field; a GeoDataFrame's
    by default)."""
    if zone_id is None:
        return frame.index.rename(frame.index.name or "fid")
    if geometry is None:
        geometry = frame.geometry.name
    if zone_id not in frame.columns or zone_id == geometry:
        fields = ", ".join(c for c in frame.columns if c != geometry)
        raise IdFieldError(f"{source}: no field {zone_id!r}; fields are: {fields}")
    index = pd.Index(frame[zone_id], name=zone_id)
    if unique and index.has_duplicates:
        dup = plain(index[index.duplicated()][0])
        raise IdFieldError(f"{source}: field {zone_id!r} repeats the value {dup!r}")
    return index


def require_types(
    geometries: np.ndarray, source: str, allowed: set[str], what: str
) -> None:
    """Refuse geometry types outside ``allowed``, naming those found."""
    present = geometries[geometries != None]  # noqa: E711
    require_type_ids(shapely.get_type_id(present), source, allowed, what)


def require_type_ids(
    type_ids: np.ndarray, source: str, allowed: set[str], what: str
) -> None:
    """``require_types`` on shapely's type ids (-1, no geometry, is allowed)."""
    types = {GEOMETRY_NAMES[t] for t in np.unique(type_ids) if t >= 0}
    bad = sorted(types - allowed)
    if bad:
        raise GeometryTypeError(f"{source}: {what}, found {', '.join(bad)}")


def zones_on_grid(
    zones: str | os.PathLike[str] | gpd.GeoDataFrame,
    array: xr.DataArray,
    *,
    zone_id: str | None = None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
    zones_crs: Any = None,
    source: str = "zones",
    raster: str = "raster",
    group_by: str | None = None,
) -> PixelZones:
    """Read the zones, check and align their CRS with ``array``'s, name them,
    and move them to its pixel space.

    ``zones_crs`` replaces the CRS the zones declare (a wrong ``.prj``);
    ``source`` and ``raster`` name the two inputs in error messages; with
    ``group_by`` each feature is named by its group (not unique).
    """
    read = read_source(zones, layer)
    crs = read.crs if isinstance(read, ZoneTable) else read[0].crs
    if zones_crs is not None:
        crs = parse_crs(zones_crs, "zones_crs")
    check_crs(
        crs, array.rio.crs, zones=source, raster=raster, assume_same_crs=assume_same_crs
    )
    transform = array.rio.transform()
    shape = (int(array.shape[-2]), int(array.shape[-1]))
    target = raster_target(array.rio.crs, transform, shape, raster)
    declared = None if assume_same_crs or not crs else CRS(crs)
    pixel_size = (abs(transform.a), abs(transform.e))
    grid = (shape, orientation(transform), pixel_size)
    on_arrays = None
    if (
        isinstance(read, ZoneTable)
        and len(read.frame) >= ARRAYS_FROM
        and _stays(declared, target)
    ):
        on_arrays = _on_arrays(
            read,
            os.fspath(zones),
            declared,
            transform,
            grid,
            group_by or zone_id,
            not group_by,
            source,
        )
    if on_arrays is not None:
        del read  # the WKB: the arrays hold the zones from here
        release_freed_memory()
        zones_at, extent = on_arrays
    else:
        zones_at, extent = _through_shapely(
            read,
            crs,
            target,
            transform,
            grid,
            zones,
            zone_id,
            group_by,
            source,
            assume_same_crs,
        )
    if np.isfinite(extent).all() and not zones_at.any_meets():
        warn_no_overlap(source, (crs, extent), raster, array)
    return zones_at


def _on_arrays(
    table: ZoneTable,
    path: str,
    declared: CRS | None,
    transform: Any,
    grid: tuple[tuple[int, int], tuple[int, int], tuple[float, float]],
    name_by: str | None,
    unique: bool,
    source: str,
) -> tuple[PixelZones, np.ndarray] | None:
    """``zones_on_grid`` without shapely objects (``zones.table``), for zones
    that stay in their CRS; and their extent in it. None when the compiled
    pass does not read their WKB."""
    index = _zone_index(table.frame, name_by, source, unique, "geometry")
    arrays = table_arrays(table, path, source)
    if arrays is None:
        return None
    if declared is not None and declared.is_geographic:
        # in the zones' CRS (a wrapper of their own: bounds are kept)
        bounds = ZoneArrays(arrays.flat, arrays.types).bounds()
        check_bounds(bounds, declared, index, source)
    extent = _extent(arrays.flat.xy)
    pixel_xy(arrays.flat.xy, transform)
    outside = np.full(len(arrays), np.nan)
    zones_at = PixelZones(
        None, index, *grid, outside=outside, transform=transform, known=arrays
    )
    return zones_at, extent


def _extent(xy: np.ndarray) -> np.ndarray:
    """The extent of the coordinates ``xy`` ((n, 2); NaN when there are none)."""
    if xy.size == 0:
        return np.full(4, np.nan)
    # column by column: numpy reduces an (n, 2) array along its rows ten
    # times slower (0.45 s for a million zones' 8.4 million coordinates)
    x, y = xy[:, 0], xy[:, 1]
    return np.array(
        [np.fmin.reduce(x), np.fmin.reduce(y), np.fmax.reduce(x), np.fmax.reduce(y)]
    )


def _stays(declared: CRS | None, target: Target | None) -> bool:
    """Whether zones in ``declared`` need no reprojection to ``target``
    (``reproject.to_raster_crs`` leaves them as they are)."""
    if target is None:
        return True
    same = declared is None or declared.equals(target.crs)
    return same and not target.crs.is_geographic


def _through_shapely(
    read: ZoneTable | tuple[gpd.GeoDataFrame, Any],
    crs: Any,
    target: Target | None,
    transform: Any,
    grid: tuple[tuple[int, int], tuple[int, int], tuple[float, float]],
    zones: Any,
    zone_id: str | None,
    group_by: str | None,
    source: str,
    assume_same_crs: bool,
) -> tuple[PixelZones, np.ndarray]:
    """``zones_on_grid`` through a GeoDataFrame: the zones as shapely
    geometries, reprojected where they must be; and their extent as read."""
    if isinstance(read, ZoneTable):
        with reading(os.fspath(zones)):
            frame, wkb = read.to_frame(), read.wkb()
        del read
    else:
        frame, wkb = read
    frame = frame.set_crs(crs, allow_override=True) if crs != frame.crs else frame
    as_read = np.asarray(frame.geometry.values, dtype=object)
    geometries, index, outside = prepare_zones(
        frame,
        target,
        zone_id=zone_id,
        source=source,
        assume_same_crs=assume_same_crs,
        group_by=group_by,
    )
    bounds = shapely.bounds(as_read)  # their corners, as coordinates
    extent = _extent(np.concatenate([bounds[:, :2], bounds[:, 2:]]))
    del frame  # only the geometries are needed from here: free the rest
    arrays = ZoneArrays.of(geometries, transform, wkb, as_read)
    del wkb, as_read
    release_freed_memory()
    zones_at = PixelZones(
        geometries, index, *grid, outside=outside, transform=transform, known=arrays
    )
    return zones_at, extent


def warn_no_overlap(
    source: str, extent: tuple[Any, np.ndarray], raster: str, array: xr.DataArray
) -> None:
    """Say in one line that no zone meets the raster, naming both extents and
    CRSs (``NoOverlapWarning``)."""

    def named(crs: Any) -> str:
        return "no CRS" if not crs else crs_name(CRS.from_user_input(crs))

    def shown(bounds: Any) -> str:
        return "(" + ", ".join(f"{float(b):.6g}" for b in bounds) + ")"

    warnings.warn(
        NoOverlapWarning(
            f"no zone of {source} meets {raster}: the zones' extent "
            f"{shown(extent[1])} in {named(extent[0])}, the raster's "
            f"{shown(array.rio.bounds())} in {named(array.rio.crs)}; every row is "
            f"empty (a wrong CRS? zones_crs=, --zones-crs)"
        ),
        stacklevel=2,
    )


def raster_target(
    crs: Any, transform: Any, shape: tuple[int, int], raster: str
) -> Target | None:
    """The raster's CRS and extent for ``reproject.to_raster_crs`` (None
    without a CRS); a geographic raster beyond the poles is a ``CRSError``."""
    if not crs:
        return None
    crs = CRS.from_user_input(crs)
    x0, y0 = transform.c, transform.f
    x1, y1 = transform @ (shape[1], shape[0])
    bounds = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    pixel = min(abs(transform.a), abs(transform.e))
    if crs.is_geographic and max(abs(bounds[1]), abs(bounds[3])) > 90 + pixel:
        raise CRSError(
            f"{raster}: extent y {bounds[1]:.6g}..{bounds[3]:.6g} is beyond the "
            f"latitudes of its CRS {crs_name(crs)}: its CRS is wrong"
        )
    return Target(crs, bounds, pixel)


def check_crs(
    zones_crs: CRS | None,
    raster_crs: CRS | None,
    *,
    zones: str,
    raster: str,
    assume_same_crs: bool = False,
) -> None:
    """Refuse zones or a raster without a CRS, unless told they share one.

    Without a CRS on one side, nothing says the coordinates are comparable:
    guessing gives plausible numbers for the wrong places.
    """
    if assume_same_crs:
        return
    missing = [
        name for name, crs in ((zones, zones_crs), (raster, raster_crs)) if not crs
    ]
    if missing:
        raise CRSError(
            f"{' and '.join(missing)}: no CRS; set one, or pass assume_same_crs=True "
            f"(--assume-same-crs) if the zones and the raster share coordinates"
        )
