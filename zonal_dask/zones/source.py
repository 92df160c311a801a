"""Zones as read: any file pyogrio reads, a GeoParquet file, or a GeoDataFrame.

``read_source`` keeps what it can without shapely objects: a vector layer
the Arrow reader takes whole is a ``ZoneTable`` (fields, CRS, WKB), which
``zones.table`` checks on flat arrays; everything else is a GeoDataFrame (and
its WKB when the reader kept it). ``read_zones`` always gives the
GeoDataFrame.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import LayerError, ZonesError
from ..io.location import is_remote
from .arrow_read import ZoneTable, parquet_wkb, read_table

Frame = tuple[gpd.GeoDataFrame, tuple[np.ndarray, np.ndarray] | None]


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
) -> Frame:
    """``read_zones``, and the geometries' WKB as read (buffer and offsets)
    when the reader kept it (``zones.arrow_read``), else None."""
    read = read_source(zones, layer)
    if not isinstance(read, ZoneTable):
        return read
    with reading(os.fspath(zones)):
        return read.to_frame(), read.wkb()


def read_source(
    zones: str | os.PathLike | gpd.GeoDataFrame, layer: str | int | None = None
) -> ZoneTable | Frame:
    """The zones as a ``ZoneTable`` where the Arrow reader takes the layer
    whole, else as ``read_zones_and_wkb`` gives them."""
    if isinstance(zones, gpd.GeoDataFrame):
        return zones, None
    path = os.fspath(zones)
    if not is_remote(path) and not os.path.exists(path):
        raise ZonesError(f"{path}: no such file")
    wkb = None
    with reading(path):
        if path.lower().endswith((".parquet", ".geoparquet")):
            frame = gpd.read_parquet(path)
            wkb = parquet_wkb(path, frame)
        else:
            layer = _choose_layer(path, layer)
            read = _read_vector(path, layer)
            if isinstance(read, ZoneTable):
                return read
            frame, wkb = read
    if frame.index.name is None:
        frame.index.name = "fid"
    return frame, wkb


@contextmanager
def reading(path: str) -> Iterator[None]:
    """Any error reading ``path`` as one ``ZonesError`` line naming it."""
    try:
        yield
    except ZonesError:
        raise
    except Exception as err:  # pyogrio, pyarrow, GDAL and GEOS raise many types
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ZonesError(f"{path}: cannot read zones ({message})") from None


def _read_vector(path: str, layer: str | int | None) -> ZoneTable | Frame:
    """A vector layer indexed by its FIDs, in file order.

    GDAL takes a GeoJSON feature's FID from its top-level ``id``, else from an
    integer ``id`` property, which it also keeps as a field. The Arrow reader
    (a third faster on 50,000 polygons) cannot hold both under one name, so
    such a file is read without it; and where GDAL had to invent FIDs for
    ``id`` properties it could not take (repeated or negative values), the
    rows are named by position instead, with a warning.
    """
    try:
        return read_table(path, layer) or (
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
            stacklevel=5,
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
