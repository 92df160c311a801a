"""Invalid polygons repaired as GEOS repairs them, keeping their area.

A bow-tie or self-intersecting ring is made valid by ``shapely.make_valid``
and only its polygonal parts are kept; lines and points are burnt as they
are, as GDAL burns them. ``zones.validity`` spares most zones this check.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import shapely

POLYGONAL = {"Polygon", "MultiPolygon"}


def is_valid(geometries: np.ndarray) -> np.ndarray:
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


def make_valid(geometries: np.ndarray, source: str, stacklevel: int = 3) -> np.ndarray:
    """Repair invalid polygons (bow-ties, self-intersections), keeping their area.

    Lines and points are burnt as they are, as GDAL burns them.
    """
    polygonal = np.isin(shapely.get_type_id(geometries), (3, 6))
    invalid = np.flatnonzero(~is_valid(geometries) & polygonal)
    if invalid.size == 0:
        return geometries
    warnings.warn(
        f"{source}: {invalid.size} invalid geometries repaired with make_valid",
        stacklevel=stacklevel,
    )
    out = geometries.copy()
    for i in invalid:
        fixed = shapely.make_valid(out[i])
        parts = [p for p in shapely.get_parts(fixed) if p.geom_type in POLYGONAL]
        out[i] = shapely.union_all(parts) if parts else None
    return out
