"""Reading rasters and zones, writing tables.

Rasters open lazily through rioxarray: the dask tasks hold the path and a
window, so whichever worker runs a task reads its pixels itself.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rioxarray
import xarray as xr

from .checks import check_transform, check_writable
from .errors import LayerError, OutputError, RasterError, ZonesError

# Chunks of about this many pixels, unless the raster is so large that the
# graph would exceed about MAX_CHUNKS tasks (DESIGN.md: scheduler overhead).
TARGET_CHUNK_PIXELS = 2048 * 2048
MAX_CHUNKS = 20_000

TABLE_FORMATS = (".txt", ".tsv", ".csv", ".parquet")


def _is_remote(path: str) -> bool:
    return "://" in path or path.startswith("/vsi")


def open_raster(
    raster: str | os.PathLike | xr.DataArray,
    *,
    band: int = 1,
    chunks: int | tuple[int, int] | Mapping[str, int] | None = None,
) -> xr.DataArray:
    """Open one band of a raster as a lazy, chunked 2-D ``(y, x)`` DataArray.

    Parameters
    ----------
    raster
        A path or GDAL-readable URL, or a DataArray with a CRS and transform
        (a ``band`` dimension, if present, is selected by ``band``).
    band
        1-based band number.
    chunks
        Chunk size in pixels: an int (square), ``(rows, cols)``, or a mapping
        with ``y`` and ``x``. By default a multiple of the file's internal
        tiles of about ``TARGET_CHUNK_PIXELS`` pixels.

    Returns
    -------
    xarray.DataArray
        Backed by dask, with ``rio`` CRS, transform and nodata.
    """
    if isinstance(raster, xr.DataArray):
        return _from_dataarray(raster, band, chunks)
    path = os.fspath(raster)
    if not _is_remote(path) and not os.path.exists(path):
        raise RasterError(f"{path}: no such file")
    try:
        with rasterio.open(path) as src:
            count, shape, block = src.count, src.shape, src.block_shapes[0]
            transform = src.transform
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(f"{path}: not a raster GDAL can read ({err})") from None
    _check_band(band, count, path)
    check_transform(transform, path)
    rows, cols = _normalize_chunks(chunks) or choose_chunks(shape, block)
    array = rioxarray.open_rasterio(
        path, chunks={"band": 1, "y": rows, "x": cols}, lock=False, masked=False
    )
    return array.isel(band=band - 1)


def _from_dataarray(
    array: xr.DataArray, band: int, chunks: int | tuple[int, int] | Mapping | None
) -> xr.DataArray:
    if "band" in array.dims:
        _check_band(band, array.sizes["band"], "DataArray")
        array = array.isel(band=band - 1)
    if array.ndim != 2:
        raise RasterError(
            f"DataArray: expected dimensions (y, x) after band selection, "
            f"got {array.dims}"
        )
    if array.rio.transform() is None:
        raise RasterError("DataArray: no transform (set it with rio.write_transform)")
    check_transform(array.rio.transform(), "DataArray")
    requested = _normalize_chunks(chunks)
    if requested is None and array.chunks is None:
        requested = choose_chunks(array.shape, (1, 1))
    if requested is not None:
        array = array.chunk(
            {array.rio.y_dim: requested[0], array.rio.x_dim: requested[1]}
        )
    return array


def _check_band(band: int, count: int, source: str) -> None:
    if not isinstance(band, (int, np.integer)) or not 1 <= band <= count:
        raise RasterError(f"{source}: band {band} out of range 1..{count}")


def _normalize_chunks(
    chunks: int | tuple[int, int] | Mapping[str, int] | None,
) -> tuple[int, int] | None:
    if chunks is None:
        return None
    if isinstance(chunks, Mapping):
        rows, cols = chunks["y"], chunks["x"]
    elif isinstance(chunks, (int, np.integer)):
        rows = cols = chunks
    else:
        rows, cols = chunks
    if int(rows) < 1 or int(cols) < 1:
        raise ValueError(f"chunks must be positive, got {chunks!r}")
    return int(rows), int(cols)


def choose_chunks(
    shape: tuple[int, int], block: tuple[int, int], target: int | None = None
) -> tuple[int, int]:
    """Chunk shape: whole internal blocks, about ``target`` pixels each.

    The target grows with the raster so that the graph stays under
    ``MAX_CHUNKS`` chunk tasks. Striped files (blocks as wide as the raster)
    get full-width chunks of whole strips.
    """
    height, width = shape
    target = target or max(TARGET_CHUNK_PIXELS, math.ceil(height * width / MAX_CHUNKS))
    block_rows, block_cols = max(1, block[0]), max(1, block[1])
    if block_cols >= width:
        cols = width
    else:
        side = math.isqrt(target)
        cols = max(1, round(side / block_cols)) * block_cols
    rows = max(1, round(target / cols / block_rows)) * block_rows
    return min(rows, height), min(cols, width)


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
    if not _is_remote(path) and not os.path.exists(path):
        raise ZonesError(f"{path}: no such file")
    try:
        if path.lower().endswith((".parquet", ".geoparquet")):
            frame = gpd.read_parquet(path)
        else:
            layer = _choose_layer(path, layer)
            frame = gpd.read_file(
                path, engine="pyogrio", fid_as_index=True, layer=layer
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


def write_table(
    table: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Write a table atomically; the format follows the extension.

    ``.txt`` and ``.tsv`` are tab-separated with the index as the last column
    (the classic recipe's layout), ``.csv`` has the index first, ``.parquet``
    keeps dtypes. The table goes to a temporary file in the same directory that
    is renamed into place, so a crash leaves the old file or none, never half.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise OutputError(
            f"{path}: unknown output format {suffix or '(none)'!r}; "
            f"use one of {', '.join(TABLE_FORMATS)}"
        )
    check_output(path, overwrite=overwrite)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        os.close(fd)
        _WRITERS[suffix](table, tmp)
        if not overwrite and path.exists():
            raise OutputError(f"{path}: exists (use --overwrite to replace it)")
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a read-only or vanished directory
        raise OutputError(
            f"{path}: cannot write ({err.strerror or err}); nothing written"
        ) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_output(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Refuse an output that exists (unless ``overwrite``) or has no directory."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: directory {path.parent} does not exist")
    check_writable(path)


def _write_tsv(table: pd.DataFrame, tmp: str) -> None:
    classic = table.reset_index()
    classic = classic[[*table.columns, table.index.name]]
    classic.to_csv(tmp, sep="\t", index=False, na_rep="nan")


def _write_csv(table: pd.DataFrame, tmp: str) -> None:
    table.to_csv(tmp)


def _write_parquet(table: pd.DataFrame, tmp: str) -> None:
    table.to_parquet(tmp)


_WRITERS: dict[str, Any] = {
    ".txt": _write_tsv,
    ".tsv": _write_tsv,
    ".csv": _write_csv,
    ".parquet": _write_parquet,
}
