"""Geometry collections as zones: their parts, by dimension.

``gpd.overlay``, ``clip`` and ``shapely.make_valid`` give GeometryCollections.
A collection whose parts share one dimension is the zone those parts make:
polygons their union (a MultiPolygon: overlapping parts count once), lines a
MultiLineString, points a MultiPoint. A collection mixing dimensions (a
polygon and a line, say) is refused naming the feature: which parts the user
means is theirs to say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from ..errors import GeometryTypeError, plain

_COLLECTION = 7
_KINDS = {0: "points", 1: "lines", 2: "polygons"}


def collection_parts(
    geometries: np.ndarray, index: pd.Index, source: str
) -> np.ndarray:
    """``geometries`` with each GeometryCollection replaced by the zone its
    parts make (None when it has none), mixed dimensions refused."""
    collections = np.flatnonzero(shapely.get_type_id(geometries) == _COLLECTION)
    if collections.size == 0:
        return geometries
    out = geometries.copy()
    for i in collections:
        parts = _flat_parts(geometries[i])
        dimensions = sorted({int(shapely.get_dimensions(p)) for p in parts})
        if len(dimensions) > 1:
            kinds = " and ".join(_KINDS[d] for d in dimensions)
            raise GeometryTypeError(
                f"{source}: feature {plain(index[i])!r} is a GeometryCollection of "
                f"{kinds}; keep the parts it stands for (for polygons: "
                f"shapely.get_parts and those of type Polygon)"
            )
        out[i] = _zone_of(parts, dimensions[0]) if parts else None
    return out


def _flat_parts(collection: shapely.Geometry) -> list[shapely.Geometry]:
    """The non-empty simple parts of a collection, nested ones opened."""
    parts = []
    pending = list(shapely.get_parts(collection))
    while pending:
        part = pending.pop(0)
        if shapely.is_empty(part):
            continue
        if shapely.get_type_id(part) in (4, 5, 6, _COLLECTION):
            pending[:0] = list(shapely.get_parts(part))
        else:
            parts.append(part)
    return parts


def _zone_of(parts: list[shapely.Geometry], dimension: int) -> shapely.Geometry:
    if dimension == 2:
        return shapely.union_all(parts)
    if dimension == 1:
        return shapely.multilinestrings(parts)
    return shapely.multipoints(parts)
