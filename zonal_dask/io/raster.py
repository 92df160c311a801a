"""Rasters: opened lazily, chunked along their tiles, on one checked grid.

Rasters open lazily through rioxarray: the dask tasks hold the path and a
window, so whichever worker runs a task reads its pixels itself. The grid and
its chunks are ``io/grid.py``'s (``Grid`` is the one rule for "the same
grid"), the nodata value ``io/nodata.py``'s, masks and scales ``io/masks.py``'s.
"""

from __future__ import annotations

import os
import warnings
from typing import cast

import numpy as np
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from rasterio.enums import Interleaving

from ..errors import GridError, RasterError
from .grid import (
    TRANSFORM_TOLERANCE,
    ChunksLike,
    Grid,
    check_transform,
    choose_chunks,
    grid_chunks,
    normalize_chunks,
    plane_chunk,
)
from .location import is_remote
from .masks import (
    apply_mask,
    apply_scaling,
    attribute_scaling,
    check_georeferencing,
    declared_scaling,
    declares_mask,
    usable_dtype,
)
from .nodata import check_nodata, mark_scaled, resolve_nodata

# Bands of a pixel-interleaved file read by one task: one decode of each tile
# serves them all; a chunk of 1024² x 16 float64 bands is 128 MB.
MAX_INTERLEAVED_BANDS = 16


def open_raster(
    raster: str | os.PathLike | xr.DataArray,
    *,
    band: int | None = 1,
    chunks: ChunksLike = None,
    nodata: float | None = None,
    raw: bool = False,
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
    nodata
        The nodata value the run will use instead of the raster's own: checked
        against the file's own dtype before any conversion (``io/masks.py``).
    raw
        Keep the stored values of a band declaring a scale or an offset
        instead of applying them.

    Returns
    -------
    xarray.DataArray
        Backed by dask, with ``rio`` CRS, transform and nodata. Pixels GDAL's
        mask marks invalid (a per-dataset mask, an alpha band) are NaN, float16
        is widened to float32; a declared scale and offset are applied, the
        stored nodata value becoming NaN (``io/masks.py``).
    """
    if isinstance(raster, xr.DataArray):
        array = usable_dtype(_from_dataarray(raster, band, chunks), "DataArray")
        scaling = None if raw else attribute_scaling(array, band, "DataArray")
        if scaling is None:
            return array
        stored = resolve_nodata(nodata, array, "DataArray")
        return mark_scaled(apply_scaling(array, scaling, stored))
    path = os.fspath(raster)
    if not is_remote(path) and not os.path.exists(path):
        raise RasterError(f"{path}: no such file")
    if not is_remote(path):  # the tasks' workers resolve nothing against their cwd
        path = os.path.abspath(path)
    try:
        with rasterio.open(path) as src:
            count, shape, block = src.count, src.shape, src.block_shapes[0]
            transform, interleaved = src.transform, src.interleaving
            if band is not None:
                _check_band(band, count, path)
            bands = list(range(1, count + 1)) if band is None else [band]
            check_georeferencing(src, path)
            masked = declares_mask(src, bands)
            scaling = None if raw else declared_scaling(src, bands)
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(f"{path}: not a raster GDAL can read ({err})") from None
    check_transform(transform, path)
    rows, cols = normalize_chunks(chunks) or choose_chunks(shape, block)
    planes = 1
    if band is None:
        planes = plane_chunk(rows, cols)
        if interleaved == Interleaving.pixel:
            # a pixel-interleaved tile holds every band: read them together, or
            # each band's read decodes the whole tile again (10 bands: 3.2x slower)
            planes = max(planes, min(count, MAX_INTERLEAVED_BANDS))
    with warnings.catch_warnings():
        # bands with different scales: declared_scaling reads each band's
        warnings.filterwarnings("ignore", "(Scales|Offsets) differ across bands")
        opened = rioxarray.open_rasterio(
            path,
            chunks={"band": planes, "y": rows, "x": cols},
            lock=False,
            masked=False,
        )
    array = cast(xr.DataArray, opened)
    array = array if band is None else array.isel(band=band - 1)
    # the nodata value is a stored value: read before masking and scaling
    stored = None if scaling is None else resolve_nodata(nodata, array, path)
    if masked:
        check_nodata(nodata, array.dtype, path)
        array = apply_mask(array, path, bands)
    else:
        array = usable_dtype(array, path)
    if scaling is None:
        return array
    return mark_scaled(apply_scaling(array, scaling, stored))


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
    """Open an integer label raster on ``like``'s grid, with ``like``'s chunks.

    Pixels GDAL's mask marks invalid hold no zone: they come as NaN (the
    labels are then float64, exact up to 2**53).
    """
    source = "label DataArray" if isinstance(zones, xr.DataArray) else os.fspath(zones)
    labels = open_raster(zones, band=1, raw=True)  # labels as stored
    stored = labels.dtype
    if not isinstance(zones, xr.DataArray):
        with rasterio.open(source) as src:
            stored = np.dtype(src.dtypes[0])
    if not np.issubdtype(stored, np.integer):
        raise RasterError(f"{source}: a label raster needs integers, not {stored}")
    differences = Grid.of(like).differences(Grid.of(labels))
    if differences:
        raise GridError(f"{source}: not on the raster's grid: {'; '.join(differences)}")
    rows, cols = grid_chunks(like)
    return labels.chunk({labels.rio.y_dim: rows, labels.rio.x_dim: cols})


# Dimension names taken for x and y when rioxarray finds none.
_X_NAMES = ("x", "lon", "longitude", "long")
_Y_NAMES = ("y", "lat", "latitude")


def _from_dataarray(
    array: xr.DataArray,
    band: int | None,
    chunks: ChunksLike,
) -> xr.DataArray:
    array = _spatial_last(array)
    if "band" in array.dims and band is not None:
        _check_band(band, array.sizes["band"], "DataArray")
        array = array.isel(band=band - 1)
    if array.ndim not in (2, 3):
        raise RasterError(
            f"DataArray: expected dimensions (y, x) or (band or time, y, x), "
            f"got {array.dims}"
        )
    transform = array.rio.transform()
    check_transform(transform, "DataArray")
    _check_coordinates(array, transform)
    y, x = array.dims[-2:]
    requested = normalize_chunks(chunks)
    if requested is None and array.chunks is None:
        requested = choose_chunks(array.shape[-2:], (1, 1))
    if requested is not None:
        spec = {y: requested[0], x: requested[1]}
        if array.ndim == 3 and array.chunks is None:
            spec[array.dims[0]] = plane_chunk(*requested)
        array = array.chunk(spec)
    return array


def _spatial_last(array: xr.DataArray) -> xr.DataArray:
    """``array`` with its spatial dimensions named ``y`` and ``x`` and last,
    whatever their order or names (``lat``/``lon``, ``latitude``/...)."""
    try:
        y, x = array.rio.y_dim, array.rio.x_dim
    except rioxarray.exceptions.MissingSpatialDimensionError:
        by_name = {str(d).lower(): d for d in array.dims}
        found = [
            next((by_name[n] for n in names if n in by_name), None)
            for names in (_Y_NAMES, _X_NAMES)
        ]
        if None in found:
            raise RasterError(
                f"DataArray: cannot tell its y and x among dimensions "
                f"{tuple(array.dims)}; name them y and x (or lat and lon)"
            ) from None
        y, x = found
    crs = array.rio.crs
    array = array.rename({y: "y", x: "x"}) if (y, x) != ("y", "x") else array
    others = [d for d in array.dims if d not in ("y", "x")]
    array = array.transpose(*others, "y", "x").rio.set_spatial_dims("x", "y")
    return array if crs is None or array.rio.crs else array.rio.write_crs(crs)


def _check_coordinates(array: xr.DataArray, transform: Affine) -> None:
    """Refuse x or y coordinates that are not the pixel centres of the
    transform (uneven spacing: a Gaussian grid, a stale transform)."""
    for dim, size, origin, step in (
        ("x", array.shape[-1], transform.c, transform.a),
        ("y", array.shape[-2], transform.f, transform.e),
    ):
        if dim not in array.coords or array[dim].ndim != 1:
            continue
        actual = np.asarray(array[dim].values, np.float64)
        expected = origin + step * (np.arange(size) + 0.5)
        if not np.allclose(
            actual, expected, rtol=0, atol=TRANSFORM_TOLERANCE * abs(step)
        ):
            raise RasterError(
                f"DataArray: its {dim} coordinates are not the evenly spaced "
                f"pixel centres of its transform {tuple(transform)[:6]}; "
                f"resample it onto a regular grid first"
            )


def _check_band(band: int, count: int, source: str) -> None:
    if not isinstance(band, (int, np.integer)) or not 1 <= band <= count:
        raise RasterError(f"{source}: band {band} out of range 1..{count}")
