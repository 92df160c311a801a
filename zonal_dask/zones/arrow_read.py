"""Reading a vector layer through Arrow, keeping its geometries' WKB.

The burner reads zones as flat arrays (``zones.arrays``), flattened from WKB;
GDAL's Arrow reader hands the WKB over as one buffer, so keeping it spares
writing every geometry to WKB again (``shapely.to_wkb``, a Python object per
zone); ``read_table`` reads it without making any shapely object at all
(``zones.table``). Files with fields this reader would convert differently from
GeoPandas (dates, JSON) are left to GeoPandas (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .wkb import wkb_of_arrow, wkb_pieces


@dataclass(frozen=True)
class ZoneTable:
    """A layer as read through Arrow, before any shapely object: its fields
    indexed by the FIDs (``frame``), its CRS (None without one) and its
    geometries' WKB as one Arrow binary array (``storage``)."""

    frame: pd.DataFrame
    crs: CRS | None
    storage: Any

    def wkb(self) -> tuple[np.ndarray, np.ndarray]:
        """The geometries' WKB as one buffer and its offsets."""
        return wkb_of_arrow(self.storage)

    def wkb_pieces(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The geometries' WKB as the reader's chunks hold it (no copy)."""
        return wkb_pieces(self.storage)

    def wkb_of(self, zones: np.ndarray) -> list[bytes]:
        """The WKB of zones ``zones`` (positions), one bytes object each."""
        return list(self.storage.take(zones).to_numpy(zero_copy_only=False))

    def to_frame(self) -> gpd.GeoDataFrame:
        """The layer as ``geopandas.read_file(..., use_arrow=True,
        fid_as_index=True)`` reads it."""
        geometry = _geometries(self.storage)
        return gpd.GeoDataFrame(self.frame, geometry=geometry, crs=self.crs)


def read_table(path: str, layer: str | int | None) -> ZoneTable | None:
    """The layer as a ``ZoneTable``; None when GeoPandas should read it."""
    from pyogrio.raw import read_arrow

    from .read_ahead import take

    meta, table = take(path, layer) or read_arrow(path, layer=layer, return_fids=True)
    simple = all(d is None or not d.startswith("datetime") for d in meta["dtypes"])
    if not simple or "OFSTJSON" in meta["ogr_subtypes"] or not meta["fid_column"]:
        return None
    name = meta["geometry_name"] or "wkb_geometry"
    if name not in table.column_names:
        return None
    column = table.column(name)
    frame = table.drop_columns([name]).to_pandas(self_destruct=True)
    del table
    if meta["fid_column"] not in frame.columns:
        return None
    frame = frame.set_index(meta["fid_column"])
    frame.index.names = ["fid"]
    crs = CRS.from_user_input(meta["crs"]) if meta["crs"] else None
    return ZoneTable(frame, crs, _storage(column))


def read_keeping_wkb(
    path: str, layer: str | int | None
) -> tuple[gpd.GeoDataFrame, tuple[np.ndarray, np.ndarray]] | None:
    """The layer as ``geopandas.read_file(..., use_arrow=True,
    fid_as_index=True)`` reads it, and its geometries' WKB (buffer, offsets);
    None when GeoPandas should read it."""
    table = read_table(path, layer)
    if table is None:
        return None
    return table.to_frame(), table.wkb()


def _storage(column: Any) -> Any:
    """A (chunked) Arrow binary array of a WKB column, extension types
    unwrapped; chunks are not joined (that would copy every byte)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        chunks = [_storage(c) for c in column.chunks]
        return pa.chunked_array(chunks, chunks[0].type if chunks else pa.binary())
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    return column


def _geometries(wkb: Any, step: int = 65_536) -> np.ndarray:
    """Shapely geometries of a WKB column, a slice at a time: the bytes
    objects ``from_wkb`` needs never exist for the whole column at once."""
    out = np.empty(len(wkb), object)
    for start in range(0, len(wkb), step):
        part = wkb.slice(start, step).to_numpy(zero_copy_only=False)
        out[start : start + len(part)] = shapely.from_wkb(part)
    return out


def parquet_wkb(
    path: str, frame: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray] | None:
    """The WKB of ``frame``'s geometries as GeoParquet ``path`` stores them
    (``frame`` read from it), or None unless they are stored as WKB."""
    import json

    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    try:
        geo = json.loads(metadata[b"geo"])
        name = geo["primary_column"]
        encoding = geo["columns"][name].get("encoding", "WKB")
    except (KeyError, ValueError, TypeError):
        return None
    if encoding.upper() != "WKB" or frame.geometry.name != name:
        return None
    column = pq.read_table(path, columns=[name]).column(name)
    if len(column) != len(frame):
        return None
    return wkb_of_arrow(column)
