"""Zones ready to burn: read, in the raster's CRS, valid, named, in pixel space.

``zones_on_grid`` takes zones as given (a path pyogrio reads, or a
GeoDataFrame) to ``PixelZones``: one geometry per input feature, in input
order, in the raster's oriented pixel space (``burn.to_pixel_space``), with the
index that names the rows. What is known of a zone before any pixel is read
lives here too: the share of its area beyond the raster, and its value group.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .burn import orientation, reach, to_pixel_space
from .errors import CRSError, GeometryTypeError, IdFieldError, LayerError, ZonesError
from .raster import is_remote
from .runtime import release_freed_memory

if TYPE_CHECKING:
    import xarray as xr


def read_zones(
    zones: str | os.PathLike | gpd.GeoDataFrame, layer: str | int | None = None
) -> gpd.GeoDataFrame:
    """Read zones from any file pyogrio reads, indexed by the source's FID.

    A file with several layers needs ``layer`` (a name or 0-based position).
    A GeoDataFrame is returned as is.
    """
    if isinstance(zones, gpd.GeoDataFrame):
        return zones
    path = os.fspath(zones)
    if not is_remote(path) and not os.path.exists(path):
        raise ZonesError(f"{path}: no such file")
    try:
        if path.lower().endswith((".parquet", ".geoparquet")):
            frame = gpd.read_parquet(path)
        else:
            layer = _choose_layer(path, layer)
            # Arrow: a third faster on 50,000 polygons, same frame.
            frame = gpd.read_file(
                path, engine="pyogrio", fid_as_index=True, layer=layer, use_arrow=True
            )
    except ZonesError:
        raise
    except Exception as err:  # pyogrio, pyarrow and GDAL raise many types
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ZonesError(f"{path}: cannot read zones ({message})") from None
    if frame.index.name is None:
        frame.index.name = "fid"
    return frame


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
# what burn.py burns: GDAL's rules for polygons, lines and points
BURNT = POLYGONAL | {"LineString", "MultiLineString", "Point", "MultiPoint"}
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
    crs: CRS | None,
    *,
    zone_id: str | None = None,
    source: str = "zones",
) -> tuple[np.ndarray, pd.Index]:
    """Reproject, validate and index the zones.

    Returns the geometries in the raster's CRS (None for a null or empty
    geometry, which yields a row with count 0) and the index naming them.

    Parameters
    ----------
    frame
        The zones. Its index names the rows unless ``zone_id`` is given.
    crs
        The raster's CRS; the zones are reprojected to it when both are known
        and differ.
    zone_id
        A column whose (unique) values name the rows instead of the index.
    source
        How to name the zones in error messages (their path, usually).
    """
    index = _zone_index(frame, zone_id, source)
    if crs is not None and frame.crs is not None and not CRS(frame.crs).equals(crs):
        frame = frame.to_crs(crs)
    geometries = np.asarray(frame.geometry.values, dtype=object)
    geometries = np.where(shapely.is_empty(geometries), np.array(None), geometries)
    require_types(
        geometries,
        source,
        BURNT,
        "zones must be polygons, lines or points (split collections into parts)",
    )
    return _make_valid(geometries, source), index


def _zone_index(frame: gpd.GeoDataFrame, zone_id: str | None, source: str) -> pd.Index:
    if zone_id is None:
        return frame.index.rename(frame.index.name or "fid")
    if zone_id not in frame.columns or zone_id == frame.geometry.name:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise IdFieldError(f"{source}: no field {zone_id!r}; fields are: {fields}")
    index = pd.Index(frame[zone_id], name=zone_id)
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        dup = dup.item() if isinstance(dup, np.generic) else dup  # 1, not np.int64(1)
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


def _make_valid(geometries: np.ndarray, source: str) -> np.ndarray:
    """Repair invalid polygons (bow-ties, self-intersections), keeping their area.

    Lines and points are burnt as they are, as GDAL burns them.
    """
    polygonal = np.isin(shapely.get_type_id(geometries), (3, 6))
    invalid = np.flatnonzero(~shapely.is_valid(geometries) & polygonal)
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


def _size(geometries: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Area of polygons, length of lines with coordinates scaled by ``scale``,
    number of points (NaN for None)."""
    dimension = shapely.get_dimensions(geometries)
    size = np.where(dimension == 0, shapely.get_num_coordinates(geometries), np.nan)
    size[dimension == 2] = shapely.area(geometries[dimension == 2])
    lines = geometries[dimension == 1]
    size[dimension == 1] = shapely.length(
        shapely.transform(lines, lambda xy: xy * scale)
    )
    return size


@dataclass(frozen=True)
class PixelZones:
    """Zones in a raster's oriented pixel space, one per input feature.

    ``geometries[i]`` is zone ``i`` (None for a null or empty geometry),
    ``index`` names the zones, ``shape`` and ``orient`` are the raster's
    (``burn.orientation``), ``pixel_size`` its pixels' width and height in the
    CRS (lines' lengths are measured there).
    """

    geometries: np.ndarray
    index: pd.Index
    shape: tuple[int, int]
    orient: tuple[int, int]
    pixel_size: tuple[float, float] = (1.0, 1.0)

    def areas_inside(self, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """Size of each zone inside the raster (0 for none): the area of a
        polygon in pixels, the length of a line in pixels scaled by ``scale``,
        the number of points."""
        xs = sorted((0, self.orient[0] * self.shape[1]))
        ys = sorted((0, self.orient[1] * self.shape[0]))
        inside = shapely.intersection(
            self.geometries, shapely.box(xs[0], ys[0], xs[1], ys[1])
        )
        return np.nan_to_num(_size(inside, scale))

    def outside_fraction(self) -> np.ndarray:
        """Share of each zone beyond the raster, by area, length in the CRS
        or number of points (NaN for empty zones)."""
        area = np.nan_to_num(_size(self.geometries, self.pixel_size))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = 1 - self.areas_inside(self.pixel_size) / area
        # a zone inside the raster gives a rounding residue, not a share
        return np.where(area > 0, np.where(np.abs(share) < 1e-9, 0.0, share), np.nan)

    def groups(self, tasks: Sequence[ChunkTask], target: int) -> np.ndarray:
        """Value groups: nearby zones, about ``target`` pixels per group.

        Zones are taken in the order of the first chunk they meet, so a group
        spans few chunks and its task holds about ``target`` values (or one
        zone's, when that zone alone is bigger).
        """
        n = len(self.geometries)
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
    source: str = "zones",
    raster: str = "raster",
) -> PixelZones:
    """Read the zones, check and align their CRS with ``array``'s, name them,
    and move them to its pixel space.

    ``source`` and ``raster`` name the two inputs in error messages.
    """
    frame = read_zones(zones, layer)
    check_crs(
        frame.crs,
        array.rio.crs,
        zones=source,
        raster=raster,
        assume_same_crs=assume_same_crs,
    )
    geometries, index = prepare_zones(
        frame, array.rio.crs, zone_id=zone_id, source=source
    )
    del frame  # only the pixel-space copy is needed from here: free the rest
    transform = array.rio.transform()
    pixel = to_pixel_space(geometries, transform)
    del geometries
    release_freed_memory()
    shape = (int(array.shape[-2]), int(array.shape[-1]))
    pixel_size = (abs(transform.a), abs(transform.e))
    return PixelZones(pixel, index, shape, orientation(transform), pixel_size)


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


@dataclass(frozen=True)
class ChunkTask:
    """One chunk's place in the grid and the zones (in pixel space) that meet it.

    ``raster_shape`` is the whole grid's (GDAL's pixel rules depend on it at
    the raster's edges); None for tasks that read stored labels.
    """

    block: tuple[int, int]
    offset: tuple[int, int]
    shape: tuple[int, int]
    zones: np.ndarray
    geometries: np.ndarray
    orientation: tuple[int, int]
    layers: np.ndarray | None = None
    raster_shape: tuple[int, int] | None = None

    @classmethod
    def whole(
        cls,
        geometries: np.ndarray,
        shape: tuple[int, int],
        orient: tuple[int, int] = (1, -1),
        layers: np.ndarray | None = None,
    ) -> ChunkTask:
        """One chunk that is the whole grid, holding zones 0..n-1."""
        zones = np.arange(len(geometries), dtype=np.int64)
        return cls((0, 0), (0, 0), shape, zones, geometries, orient, layers, shape)


def plan_chunks(
    pixel_geometries: np.ndarray,
    chunks: tuple[Sequence[int], Sequence[int]],
    orient: tuple[int, int],
    layers: np.ndarray | None = None,
) -> list[ChunkTask]:
    """Give each chunk of the grid the zones that may claim its pixels: those
    within ``burn.reach`` pixels of it (a spatial index).

    Chunks that no zone comes near get no task, so their pixels are never read.
    """
    row_edges = np.cumsum((0, *chunks[0]))
    col_edges = np.cumsum((0, *chunks[1]))
    n_rows, n_cols = len(chunks[0]), len(chunks[1])
    ii, jj = np.divmod(np.arange(n_rows * n_cols), n_cols)
    flip_x, flip_y = orient
    xs = flip_x * col_edges[jj], flip_x * col_edges[jj + 1]
    ys = flip_y * row_edges[ii], flip_y * row_edges[ii + 1]
    low, high = (np.minimum(*xs), np.minimum(*ys)), (np.maximum(*xs), np.maximum(*ys))
    tree = shapely.STRtree(pixel_geometries)
    reaches = reach(pixel_geometries)
    found = []
    for margin in np.unique(reaches):  # the zones that reach that far
        boxes = shapely.box(*(a - margin for a in low), *(b + margin for b in high))
        chunk_index, zone_index = tree.query(boxes, predicate="intersects")
        keep = reaches[zone_index] == margin
        found.append((chunk_index[keep], zone_index[keep]))
    chunk_index = np.concatenate([c for c, _ in found] or [np.empty(0, np.int64)])
    zone_index = np.concatenate([z for _, z in found] or [np.empty(0, np.int64)])
    if chunk_index.size == 0:  # no zones, or none meets the raster
        return []
    order = np.lexsort((zone_index, chunk_index))
    chunk_index, zone_index = chunk_index[order], zone_index[order]
    starts = np.flatnonzero(np.diff(chunk_index, prepend=-1))
    tasks = []
    for chunk, zones in zip(
        chunk_index[starts], np.split(zone_index, starts[1:]), strict=True
    ):
        i, j = int(ii[chunk]), int(jj[chunk])
        tasks.append(
            ChunkTask(
                block=(i, j),
                offset=(int(row_edges[i]), int(col_edges[j])),
                shape=(int(chunks[0][i]), int(chunks[1][j])),
                zones=zones.astype(np.int64),
                geometries=pixel_geometries[zones],
                orientation=orient,
                layers=None if layers is None else layers[zones],
                raster_shape=(int(row_edges[-1]), int(col_edges[-1])),
            )
        )
    return tasks


def tasks_token(tasks: Sequence[ChunkTask]) -> str:
    """A deterministic digest of the chunk tasks (grid places and geometries)."""
    digest = hashlib.sha1()
    for t in tasks:
        digest.update(
            np.asarray(
                t.block + t.offset + t.shape + t.orientation + (t.raster_shape or ())
            ).tobytes()
        )
        digest.update(t.zones.tobytes())
        if t.layers is not None:
            digest.update(t.layers.astype(np.int64).tobytes())
        # WKB delimits itself: the joined bytes name the geometries
        digest.update(b"".join(shapely.to_wkb(t.geometries)))
    return digest.hexdigest()
