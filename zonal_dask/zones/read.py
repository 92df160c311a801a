"""Zones ready to burn: read, in the raster's CRS, valid, named, in pixel space.

``zones_on_grid`` takes zones as given (a path pyogrio reads, or a
GeoDataFrame) to ``PixelZones``: one geometry per input feature, in input
order, in the raster's oriented pixel space (``burn.to_pixel_space``), with the
index that names the rows. What is known of a zone before any pixel is read
lives here too: the share of it beyond the raster, and its value group.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from ..burn.rules import orientation, to_pixel_space
from ..errors import (
    CRSError,
    GeometryTypeError,
    IdFieldError,
    LayerError,
    NoOverlapWarning,
    ZonesError,
    plain,
)
from ..io.raster import is_remote
from ..labels.chunk_tasks import ChunkTask
from ..run.process_state import release_freed_memory
from .arrays import ZoneArrays
from .arrow_read import parquet_wkb, read_keeping_wkb
from .collections import collection_parts
from .densify import size
from .reproject import Target, check_range, crs_name, parse_crs, to_raster_crs

if TYPE_CHECKING:
    import xarray as xr
    from affine import Affine


def read_zones(
    zones: str | os.PathLike | gpd.GeoDataFrame, layer: str | int | None = None
) -> gpd.GeoDataFrame:
    """Read zones from any file pyogrio reads, indexed by the source's FID.

    A file with several layers needs ``layer`` (a name or 0-based position).
    A GeoDataFrame is returned as is.
    """
    return read_zones_and_wkb(zones, layer)[0]


def read_zones_and_wkb(
    zones: str | os.PathLike | gpd.GeoDataFrame, layer: str | int | None = None
) -> tuple[gpd.GeoDataFrame, tuple[np.ndarray, np.ndarray] | None]:
    """``read_zones``, and the geometries' WKB as read (buffer and offsets)
    when the reader kept it (``zones.arrow_read``), else None."""
    if isinstance(zones, gpd.GeoDataFrame):
        return zones, None
    path = os.fspath(zones)
    if not is_remote(path) and not os.path.exists(path):
        raise ZonesError(f"{path}: no such file")
    wkb = None
    try:
        if path.lower().endswith((".parquet", ".geoparquet")):
            frame = gpd.read_parquet(path)
            wkb = parquet_wkb(path, frame)
        else:
            layer = _choose_layer(path, layer)
            frame, wkb = _read_vector(path, layer)
    except ZonesError:
        raise
    except Exception as err:  # pyogrio, pyarrow and GDAL raise many types
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ZonesError(f"{path}: cannot read zones ({message})") from None
    if frame.index.name is None:
        frame.index.name = "fid"
    return frame, wkb


def _read_vector(
    path: str, layer: str | int | None
) -> tuple[gpd.GeoDataFrame, tuple[np.ndarray, np.ndarray] | None]:
    """A vector layer indexed by its FIDs, in file order.

    GDAL takes a GeoJSON feature's FID from its top-level ``id``, else from an
    integer ``id`` property, which it also keeps as a field. The Arrow reader
    (a third faster on 50,000 polygons) cannot hold both under one name, so
    such a file is read without it; and where GDAL had to invent FIDs for
    ``id`` properties it could not take (repeated or negative values), the
    rows are named by position instead, with a warning.
    """
    try:
        return read_keeping_wkb(path, layer) or (
            gpd.read_file(
                path, engine="pyogrio", fid_as_index=True, layer=layer, use_arrow=True
            ),
            None,
        )
    except ValueError as err:
        if "1-dimensional" not in str(err):
            raise
    with warnings.catch_warnings():  # GDAL's own word for it: ours follows
        warnings.filterwarnings("ignore", "Several features with id")
        frame = gpd.read_file(path, engine="pyogrio", fid_as_index=True, layer=layer)
    if "id" in frame.columns and not np.array_equal(frame.index, frame["id"]):
        warnings.warn(
            f"{path}: its 'id' properties are not unique non-negative integers, "
            f"so rows are named by position (0, 1, ...); zone_id= names them "
            f"by a field",
            stacklevel=4,
        )
        frame.index = pd.RangeIndex(len(frame), name=frame.index.name)
    return frame, None


def _choose_layer(path: str, layer: str | int | None) -> str | int | None:
    """The layer to read: the only one, or the one asked for by name or position."""
    import pyogrio

    try:
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception:  # not a vector file: let read_file give its own message
        return layer
    if not names:
        raise LayerError(f"{path}: no layers")
    if layer is None:
        if len(names) > 1:
            raise LayerError(
                f"{path}: {len(names)} layers, choose one with layer= (--layer): "
                + ", ".join(names)
            )
        return None
    if isinstance(layer, str) and layer not in names:
        raise LayerError(f"{path}: no layer {layer!r}; layers are: {', '.join(names)}")
    if isinstance(layer, int) and not 0 <= layer < len(names):
        raise LayerError(
            f"{path}: no layer {layer} (0-based); layers are: {', '.join(names)}"
        )
    return layer


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
    geometries = _make_valid(geometries, source)
    declared = None if assume_same_crs or frame.crs is None else CRS(frame.crs)
    check_range(geometries, declared, index, source)
    outside = np.full(len(geometries), np.nan)
    if target is not None:
        geometries, outside = to_raster_crs(geometries, declared, target, index, source)
    return geometries, index, outside


def _zone_index(
    frame: gpd.GeoDataFrame, zone_id: str | None, source: str, unique: bool = True
) -> pd.Index:
    if zone_id is None:
        return frame.index.rename(frame.index.name or "fid")
    if zone_id not in frame.columns or zone_id == frame.geometry.name:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name)
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
    types = {GEOMETRY_NAMES[t] for t in np.unique(shapely.get_type_id(present))}
    bad = sorted(types - allowed)
    if bad:
        raise GeometryTypeError(f"{source}: {what}, found {', '.join(bad)}")


def _is_valid(geometries: np.ndarray) -> np.ndarray:
    """``shapely.is_valid`` on all cores: GEOS checks without the GIL, and a
    million zones take a second of one core."""
    parts = min(os.cpu_count() or 1, max(1, len(geometries) // 50_000))
    if parts == 1:
        return shapely.is_valid(geometries)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(parts) as pool:
        return np.concatenate(
            list(pool.map(shapely.is_valid, np.array_split(geometries, parts)))
        )


def _make_valid(geometries: np.ndarray, source: str) -> np.ndarray:
    """Repair invalid polygons (bow-ties, self-intersections), keeping their area.

    Lines and points are burnt as they are, as GDAL burns them.
    """
    polygonal = np.isin(shapely.get_type_id(geometries), (3, 6))
    invalid = np.flatnonzero(~_is_valid(geometries) & polygonal)
    if invalid.size == 0:
        return geometries
    warnings.warn(
        f"{source}: {invalid.size} invalid geometries repaired with make_valid",
        stacklevel=3,
    )
    out = geometries.copy()
    for i in invalid:
        fixed = shapely.make_valid(out[i])
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in POLYGONAL]
        out[i] = shapely.union_all(parts) if parts else None
    return out


@dataclass(frozen=True)
class PixelZones:
    """Zones in a raster's oriented pixel space, one per input feature.

    ``source_geometries[i]`` is zone ``i`` (None for a null or empty
    geometry) in the raster's CRS, moved to pixel space by ``transform``
    (None: they are in pixel space already): as flat arrays for the burner
    (``arrays``, one affine on one array) and, only for the stages that ask,
    as shapely geometries (``geometries``). ``index`` names the zones,
    ``shape`` and ``orient`` are the raster's (``burn.orientation``),
    ``pixel_size`` its pixels' width and height in the CRS (lines' lengths
    are measured there); ``outside`` holds, for zones
    clipped when they were reprojected, the share of them beyond the raster
    (NaN for the others). With ``zone_of``, the geometries are parts of the
    zones instead (``pooling.pool_zones``): part ``i`` of zone ``zone_of[i]``.
    """

    source_geometries: np.ndarray
    index: pd.Index
    shape: tuple[int, int]
    orient: tuple[int, int]
    pixel_size: tuple[float, float] = (1.0, 1.0)
    outside: np.ndarray | None = None
    zone_of: np.ndarray | None = None
    transform: Affine | None = None
    known: ZoneArrays | None = None

    @cached_property
    def arrays(self) -> ZoneArrays:
        """The zones in pixel space as flat arrays (``zones.arrays``; made
        when they were read, ``known``)."""
        if self.known is not None:
            return self.known
        return ZoneArrays.of(self.source_geometries, self.transform)

    @cached_property
    def geometries(self) -> np.ndarray:
        """The zones in pixel space as shapely geometries (copies them all:
        for areas, overlaps and coverage, not for burning)."""
        if self.transform is None:
            return self.source_geometries
        return to_pixel_space(self.source_geometries, self.transform)

    @cached_property
    def _inside(self) -> np.ndarray:
        """Each zone clipped to the raster (outside fractions and value groups
        both measure it: clipped once)."""
        xs = sorted((0, self.orient[0] * self.shape[1]))
        ys = sorted((0, self.orient[1] * self.shape[0]))
        return shapely.intersection(
            self.geometries, shapely.box(xs[0], ys[0], xs[1], ys[1])
        )

    def any_meets(self) -> bool:
        """Whether any zone's bounding box meets the raster (a zone none of
        whose box does holds no pixel under any rule)."""
        xs = sorted((0, self.orient[0] * self.shape[1]))
        ys = sorted((0, self.orient[1] * self.shape[0]))
        b = self.arrays.bounds()  # NaN for None and empty
        meets = (b[:, 0] <= xs[1]) & (b[:, 2] >= xs[0])
        return bool((meets & (b[:, 1] <= ys[1]) & (b[:, 3] >= ys[0])).any())

    def areas_inside(self, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """Size of each zone inside the raster (0 for none): the area of a
        polygon in pixels, the length of a line in pixels scaled by ``scale``,
        the number of points."""
        return np.nan_to_num(size(self._inside, scale))

    def outside_fraction(self) -> np.ndarray:
        """Share of each zone beyond the raster, by area, length in the CRS
        or number of points (NaN for empty zones)."""
        area = np.nan_to_num(size(self.geometries, self.pixel_size))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = 1 - self.areas_inside(self.pixel_size) / area
        # a zone inside the raster gives a rounding residue, not a share
        share = np.where(area > 0, np.where(np.abs(share) < 1e-9, 0.0, share), np.nan)
        if self.outside is None:
            return share
        return np.where(np.isnan(self.outside), share, self.outside)

    def groups(self, tasks: Sequence[ChunkTask], target: int) -> np.ndarray:
        """Value groups: nearby zones, about ``target`` pixels per group.

        Zones are taken in the order of the first chunk they meet, so a group
        spans few chunks and its task holds about ``target`` values (or one
        zone's, when that zone alone is bigger).
        """
        n = len(self.source_geometries)
        first = np.full(n, len(tasks))
        for k, t in enumerate(tasks):
            first[t.zones] = np.minimum(first[t.zones], k)
        pixels = self.areas_inside()
        order = np.lexsort((np.arange(n), first))
        cumulative = np.cumsum(pixels[order])
        groups = np.empty(n, np.int64)
        groups[order] = ((cumulative - pixels[order]) // max(target, 1)).astype(
            np.int64
        )
        return groups


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
    frame, wkb = read_zones_and_wkb(zones, layer)
    read = np.asarray(frame.geometry.values, dtype=object)
    if zones_crs is not None:
        frame = frame.set_crs(parse_crs(zones_crs, "zones_crs"), allow_override=True)
    check_crs(
        frame.crs,
        array.rio.crs,
        zones=source,
        raster=raster,
        assume_same_crs=assume_same_crs,
    )
    transform = array.rio.transform()
    shape = (int(array.shape[-2]), int(array.shape[-1]))
    target = raster_target(array.rio.crs, transform, shape, raster)
    geometries, index, outside = prepare_zones(
        frame,
        target,
        zone_id=zone_id,
        source=source,
        assume_same_crs=assume_same_crs,
        group_by=group_by,
    )
    declared, bounds = frame.crs, frame.geometry.total_bounds  # NaN: all empty
    del frame  # only the geometries are needed from here: free the rest
    arrays = ZoneArrays.of(geometries, transform, wkb, read)
    del wkb, read
    release_freed_memory()
    pixel_size = (abs(transform.a), abs(transform.e))
    zones = PixelZones(
        geometries,
        index,
        shape,
        orientation(transform),
        pixel_size,
        outside,
        transform=transform,
        known=arrays,
    )
    if np.isfinite(bounds).all() and not zones.any_meets():
        warn_no_overlap(source, (declared, bounds), raster, array)
    return zones


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
