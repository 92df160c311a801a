"""Inputs given as Python objects, as rasterstats and exactextract take them.

Zones: GeoJSON-like mappings (a FeatureCollection, a Feature, a geometry),
objects with ``__geo_interface__`` (shapely geometries, fiona features), a
GeoSeries, or a sequence of any of these, become a GeoDataFrame: one row per
feature in the order given, numbered from 0 (``fid``), the properties as
columns. They carry no CRS (GeoJSON's old ``crs`` member excepted), so their
coordinates are taken in the raster's, as rasterstats takes them.

Raster: a NumPy array (2-D, or 3-D with bands first) and its affine transform
(rasterstats' ``affine=``) become a DataArray on that grid; a masked array's
masked pixels become NaN, so they are left out like nodata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely.geometry
import xarray as xr
from affine import Affine

from ..errors import RasterError, ZonesError

GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


def is_feature_like(zones: object) -> bool:
    """Zones given as GeoJSON-like objects rather than a path or a frame."""
    if isinstance(zones, (str, bytes, gpd.GeoDataFrame, xr.DataArray)):
        return False
    if isinstance(zones, (Mapping, gpd.GeoSeries)) or hasattr(
        zones, "__geo_interface__"
    ):
        return True
    return isinstance(zones, (list, tuple)) or (
        isinstance(zones, Iterable) and not hasattr(zones, "__fspath__")
    )


def features_frame(zones: Any) -> gpd.GeoDataFrame:
    """The features as a GeoDataFrame indexed 0..N-1 (``fid``).

    Raises
    ------
    ZonesError
        If an item is neither a feature nor a geometry, naming its position.
    """
    if isinstance(zones, gpd.GeoSeries):
        frame = gpd.GeoDataFrame(geometry=zones.reset_index(drop=True))
        return frame.rename_axis("fid")
    crs = None
    mapping = _interface(zones)
    if isinstance(mapping, Mapping) and mapping.get("type") == "FeatureCollection":
        crs = _declared_crs(mapping)
        items = list(mapping.get("features", []))
    elif isinstance(mapping, Mapping):
        items = [mapping]
    else:
        items = list(zones)
    geometries, properties = [], []
    for i, item in enumerate(items):
        geometry, props = _feature(_interface(item), i)
        geometries.append(geometry)
        properties.append(props)
    frame = gpd.GeoDataFrame(
        pd.DataFrame.from_records(properties, index=pd.RangeIndex(len(items))),
        geometry=geometries,
        crs=crs,
    )
    return frame.rename_axis("fid")


def _interface(item: Any) -> Any:
    interface = getattr(item, "__geo_interface__", None)
    return item if interface is None else interface


def _feature(item: Any, i: int) -> tuple[Any, dict]:
    """(shapely geometry or None, properties) of a Feature or a geometry."""
    if not isinstance(item, Mapping):
        raise ZonesError(
            f"zones: item {i} is a {type(item).__name__}, not a GeoJSON-like "
            "feature or geometry"
        )
    kind = item.get("type")
    if kind == "Feature":
        geometry = _interface(item.get("geometry"))
        props = dict(item.get("properties") or {})
    elif kind in GEOMETRY_TYPES:
        geometry, props = item, {}
    else:
        raise ZonesError(
            f"zones: item {i} has type {kind!r}, not a Feature or a geometry"
        )
    if geometry is None:
        return None, props
    try:
        return shapely.geometry.shape(geometry), props
    except Exception as err:  # shapely raises several types for bad coordinates
        raise ZonesError(f"zones: item {i}: invalid geometry ({err})") from None


def _declared_crs(collection: Mapping) -> str | None:
    """A FeatureCollection's ``crs`` member (GeoJSON 2008), if it names one."""
    crs = collection.get("crs")
    if isinstance(crs, Mapping) and crs.get("type") == "name":
        name = (crs.get("properties") or {}).get("name")
        return str(name) if name else None
    return None


def array_raster(array: np.ndarray, affine: Any) -> xr.DataArray:
    """A NumPy array on the grid of ``affine`` as a DataArray, without a CRS.

    Parameters
    ----------
    array
        2-D ``(rows, columns)``, or 3-D ``(bands, rows, columns)``.
    affine
        An ``affine.Affine``, or its first six coefficients in its order
        ``(a, b, c, d, e, f)`` (not GDAL's geotransform order).
    """
    transform = affine if isinstance(affine, Affine) else Affine(*tuple(affine)[:6])
    if np.ma.isMaskedArray(array):
        data = np.ma.getdata(array)
        kind = np.result_type(data.dtype, np.float32)
        array = np.where(np.ma.getmaskarray(array), np.nan, data.astype(kind))
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise RasterError(
            f"ndarray: expected 2 dimensions (rows, columns) or 3 (bands, rows, "
            f"columns), got shape {array.shape}"
        )
    rows, cols = array.shape[-2:]
    x = transform.c + transform.a * (np.arange(cols) + 0.5)
    y = transform.f + transform.e * (np.arange(rows) + 0.5)
    dims: tuple[str, ...] = ("y", "x")
    coords: dict[str, Any] = {"y": y, "x": x}
    if array.ndim == 3:
        dims = ("band", *dims)
        coords["band"] = np.arange(1, array.shape[0] + 1)
    out = xr.DataArray(array, dims=dims, coords=coords)
    return out.rio.write_transform(transform)
