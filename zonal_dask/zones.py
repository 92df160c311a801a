"""Zones ready to rasterize: raster CRS, valid polygons, one index per feature."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .errors import GeometryTypeError, IdFieldError

_POLYGONAL = {"Polygon", "MultiPolygon"}
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


@dataclass(frozen=True)
class Zones:
    """Zone geometries in the raster's CRS, and the index that names them.

    ``geometries[i]`` is zone ``i``; ``None`` for a null or empty geometry,
    which yields a row with count 0.
    """

    geometries: np.ndarray
    index: pd.Index


def prepare_zones(
    frame: gpd.GeoDataFrame,
    crs: CRS | None,
    *,
    zone_id: str | None = None,
    source: str = "zones",
) -> Zones:
    """Reproject, validate and index the zones.

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
    _check_types(geometries, source)
    return Zones(_make_valid(geometries, source), index)


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


def _check_types(geometries: np.ndarray, source: str) -> None:
    present = geometries[geometries != None]  # noqa: E711
    types = {GEOMETRY_NAMES[t] for t in np.unique(shapely.get_type_id(present))}
    bad = sorted(types - _POLYGONAL)
    if bad:
        raise GeometryTypeError(
            f"{source}: zones must be Polygon or MultiPolygon, found {', '.join(bad)}"
            " (buffer points and lines into polygons first)"
        )


def _make_valid(geometries: np.ndarray, source: str) -> np.ndarray:
    """Repair invalid polygons (bow-ties, self-intersections), keeping their area."""
    invalid = np.flatnonzero(~shapely.is_valid(geometries) & (geometries != None))  # noqa: E711
    if invalid.size == 0:
        return geometries
    warnings.warn(
        f"{source}: {invalid.size} invalid geometries repaired with make_valid",
        stacklevel=3,
    )
    out = geometries.copy()
    for i in invalid:
        fixed = shapely.make_valid(out[i])
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in _POLYGONAL]
        out[i] = shapely.union_all(parts) if parts else None
    return out
