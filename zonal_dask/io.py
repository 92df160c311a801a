"""Reading rasters and zones, writing tables.

Rasters open lazily through rioxarray: the dask tasks hold the path and a
window, so whichever worker runs a task reads its pixels itself.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

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
# 1024² rather than DESIGN's 2048²: as fast on 4000² x 50,000 zones and 30%
# less peak memory (benchmarks/peers); more chunks also keep 2 threads busy.
TARGET_CHUNK_PIXELS = 1024 * 1024
MAX_CHUNKS = 20_000
# GDAL keeps decoded blocks in a cache of 5% of RAM by default; a pass that
# reads each block once fills it with blocks nobody reads again: 16000² peaked
# at 1.6 GB with it, 0.63 GB with 64 MB, 0.57 GB with 16 MB, in the same time.
GDAL_CACHE_MB = 16

TABLE_FORMATS = (".txt", ".tsv", ".csv", ".parquet")
# Formats that carry the features: GDAL driver for each (None: GeoParquet).
FEATURE_FORMATS: dict[str, str | None] = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".fgb": "FlatGeobuf",
    ".parquet": None,
}


def _is_remote(path: str) -> bool:
    return "://" in path or path.startswith("/vsi")


def bounded_block_cache() -> rasterio.Env:
    """GDAL's block cache held to ``GDAL_CACHE_MB`` while the raster is read."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20)


def open_raster(
    raster: str | os.PathLike | xr.DataArray,
    *,
    band: int | None = 1,
    chunks: int | tuple[int, int] | Mapping[str, int] | None = None,
) -> xr.DataArray:
    """Open a raster as a lazy, chunked DataArray.

    Parameters
    ----------
    raster
        A path or GDAL-readable URL, or a DataArray with a CRS and transform.
    band
        1-based band number, giving a 2-D ``(y, x)`` array; None keeps every
        band (or a DataArray's extra dimension, such as time) as a 3-D
        ``(band, y, x)`` array.
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
    if band is not None:
        _check_band(band, count, path)
    check_transform(transform, path)
    rows, cols = _normalize_chunks(chunks) or choose_chunks(shape, block)
    bands = 1 if band is not None else _plane_chunk(rows, cols)
    array = rioxarray.open_rasterio(
        path, chunks={"band": bands, "y": rows, "x": cols}, lock=False, masked=False
    )
    array = cast(xr.DataArray, array)
    return array if band is None else array.isel(band=band - 1)


LABEL_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")


def is_label_raster(zones: object) -> bool:
    """Zones given as a raster: a DataArray, or a path with a raster suffix."""
    if isinstance(zones, xr.DataArray):
        return True
    return isinstance(zones, (str, os.PathLike)) and os.fspath(zones).lower().endswith(
        LABEL_RASTER_SUFFIXES
    )


def open_label_raster(
    zones: str | os.PathLike | xr.DataArray, *, like: xr.DataArray
) -> xr.DataArray:
    """Open an integer label raster on ``like``'s grid, with ``like``'s chunks."""
    source = "label DataArray" if isinstance(zones, xr.DataArray) else os.fspath(zones)
    labels = open_raster(zones, band=1)
    if not np.issubdtype(labels.dtype, np.integer):
        raise RasterError(
            f"{source}: a label raster needs integers, not {labels.dtype}"
        )
    have, want = labels.rio.transform(), like.rio.transform()
    # a millionth of a pixel: transforms rebuilt from coordinates differ by rounding
    same = have.almost_equals(want, precision=1e-6 * min(abs(want.a), abs(want.e)))
    if labels.shape[-2:] != like.shape[-2:] or not same:
        differs = f"shape {labels.shape[-2:]}, transform {tuple(have)[:6]}"
        expected = f"{like.shape[-2:]}, {tuple(want)[:6]}"
        raise RasterError(
            f"{source}: not on the raster's grid ({differs} != {expected})"
        )
    if labels.rio.crs and like.rio.crs and labels.rio.crs != like.rio.crs:
        raise RasterError(f"{source}: CRS {labels.rio.crs} differs from the raster's")
    y, x = labels.rio.y_dim, labels.rio.x_dim
    rows, cols = grid_chunks(like)
    return labels.chunk({y: rows, x: cols})


def _plane_chunk(rows: int, cols: int) -> int:
    """Bands or time steps per chunk, so a chunk holds about the target pixels."""
    return max(1, TARGET_CHUNK_PIXELS // (rows * cols))


def _from_dataarray(
    array: xr.DataArray,
    band: int | None,
    chunks: int | tuple[int, int] | Mapping | None,
) -> xr.DataArray:
    if "band" in array.dims and band is not None:
        _check_band(band, array.sizes["band"], "DataArray")
        array = array.isel(band=band - 1)
    if array.rio.transform() is None:
        raise RasterError("DataArray: no transform (set it with rio.write_transform)")
    check_transform(array.rio.transform(), "DataArray")
    y, x = array.rio.y_dim, array.rio.x_dim
    if array.ndim == 3:
        (plane,) = (d for d in array.dims if d not in (y, x))
        array = array.transpose(plane, y, x)
    elif array.ndim != 2:
        raise RasterError(
            f"DataArray: expected dimensions (y, x) or (band or time, y, x), "
            f"got {array.dims}"
        )
    requested = _normalize_chunks(chunks)
    if requested is None and array.chunks is None:
        requested = choose_chunks(array.shape[-2:], (1, 1))
    if requested is not None:
        spec = {y: requested[0], x: requested[1]}
        if array.ndim == 3 and array.chunks is None:
            spec[array.dims[0]] = _plane_chunk(*requested)
        array = array.chunk(spec)
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


def grid_chunks(array: xr.DataArray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``(rows, cols)`` chunk sizes of a DataArray ``open_raster`` made."""
    if array.chunks is None or len(array.chunks) < 2:
        raise ValueError(f"expected a chunked array, got chunks {array.chunks}")
    return array.chunks[-2], array.chunks[-1]


def choose_chunks(
    shape: tuple[int, ...], block: tuple[int, int], target: int | None = None
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
    return replace_atomically(
        path, lambda tmp: _WRITERS[suffix](table, tmp), overwrite=overwrite
    )


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
    classic = classic[[*table.columns, *table.index.names]]
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


def write_features(
    frame: gpd.GeoDataFrame, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write features with their attributes atomically; the format follows the
    extension: ``.gpkg``, ``.geojson``, ``.fgb`` or ``.parquet`` (GeoParquet).

    The features keep their CRS, their order (FlatGeobuf is written without a
    spatial index, which would reorder them) and a named index as a field
    (``fid`` becomes the GeoPackage's feature id). They are written into a
    temporary directory beside ``path`` and renamed into place, so a crash
    leaves the old file or none, never half.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FEATURE_FORMATS:
        raise OutputError(
            f"{path}: cannot write features to {suffix or '(none)'!r}; "
            f"use one of {', '.join(FEATURE_FORMATS)}"
        )
    driver = FEATURE_FORMATS[suffix]
    if driver == "GeoJSON" and frame.crs and not frame.crs.to_authority():
        raise OutputError(
            f"{path}: GeoJSON can only name a CRS by its code, and the zones' CRS "
            f"has none; write .gpkg, .fgb or .parquet instead"
        )

    def write(tmp: str) -> None:
        if driver is None:
            frame.to_parquet(tmp)
        else:
            options = {"SPATIAL_INDEX": "NO"} if driver == "FlatGeobuf" else {}
            frame.to_file(
                tmp, driver=driver, engine="pyogrio", layer=path.stem, **options
            )

    return replace_atomically(path, write, overwrite=overwrite)


def replace_atomically(
    path: str | os.PathLike[str],
    write: Callable[[str], object],
    *,
    overwrite: bool = False,
) -> Path:
    """Call ``write(tmp)`` on a path of the same name in a temporary directory
    beside ``path``, then rename the file into place.

    Writers that pick a driver or format from the name (GDAL, matplotlib) see
    the real extension; a crash leaves the old file or none, never half.
    """
    path = Path(path)
    check_output(path, overwrite=overwrite)
    tmpdir = None
    try:
        tmpdir = tempfile.mkdtemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        tmp = os.path.join(tmpdir, path.name)
        write(tmp)
        if not overwrite and path.exists():
            raise OutputError(f"{path}: exists (use --overwrite to replace it)")
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a read-only or vanished directory
        raise OutputError(
            f"{path}: cannot write ({err.strerror or err}); nothing written"
        ) from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return path
