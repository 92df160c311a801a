"""Rasters: opened lazily, chunked along their tiles, on one checked grid.

Rasters open lazily through rioxarray: the dask tasks hold the path and a
window, so whichever worker runs a task reads its pixels itself. ``Grid`` is
the one rule for "the same grid" (label rasters, zone plans).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Interleaving

from ..errors import GridError, NodataError, RasterError, TransformError
from .masks import (
    apply_mask,
    apply_scaling,
    attribute_scaling,
    check_georeferencing,
    declared_scaling,
    declares_mask,
    usable_dtype,
)

# Chunks of about this many pixels, unless the raster is so large that the
# graph would exceed about MAX_CHUNKS tasks (scheduler overhead).
# 1024² rather than 2048²: as fast on 4000² x 50,000 zones and 30% less peak
# memory (benchmarks/peers); more chunks also keep 2 threads busy.
TARGET_CHUNK_PIXELS = 1024 * 1024
MAX_CHUNKS = 20_000
# Bands of a pixel-interleaved file read by one task: one decode of each tile
# serves them all; a chunk of 1024² x 16 float64 bands is 128 MB.
MAX_INTERLEAVED_BANDS = 16
# Transforms that differ by this fraction of a pixel are the same grid:
# transforms rebuilt from coordinates differ by rounding.
TRANSFORM_TOLERANCE = 1e-6

ChunksLike = int | tuple[int, int] | Mapping[str, int] | None


def is_remote(path: str) -> bool:
    """A URL or a GDAL virtual path, not a local file."""
    return "://" in path or path.startswith("/vsi")


@dataclass(frozen=True)
class Grid:
    """A raster grid: shape, transform, CRS and chunking."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS | None
    chunks: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def of(cls, array: xr.DataArray) -> Grid:
        crs = array.rio.crs
        rows, cols = grid_chunks(array)
        return cls(
            shape=(int(array.shape[-2]), int(array.shape[-1])),
            transform=array.rio.transform(),
            crs=None if crs is None else CRS.from_user_input(crs),
            chunks=(tuple(int(c) for c in rows), tuple(int(c) for c in cols)),
        )

    @property
    def chunk_size(self) -> tuple[int, int]:
        return self.chunks[0][0], self.chunks[1][0]

    def differences(self, other: Grid) -> list[str]:
        """What differs between two grids, in words (empty when the same).

        Chunks do not count: the same pixels, chunked otherwise, are the same
        grid. A missing CRS on either side does not count either.
        """
        found = []
        if self.shape != other.shape:
            found.append(f"shape {other.shape} instead of {self.shape}")
        pixel = min(abs(self.transform.a), abs(self.transform.e))
        if not np.allclose(
            tuple(self.transform)[:6],
            tuple(other.transform)[:6],
            rtol=0,
            atol=TRANSFORM_TOLERANCE * pixel,
        ):
            found.append(
                f"transform {tuple(other.transform)[:6]} instead of "
                f"{tuple(self.transform)[:6]}"
            )
        if self.crs and other.crs and self.crs != other.crs:
            found.append(f"CRS {_crs_name(other.crs)} instead of {_crs_name(self.crs)}")
        return found


def _crs_name(crs: CRS) -> str:
    return crs.to_string() or crs.to_wkt()[:60]


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
        planes = _plane_chunk(rows, cols)
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


# set on an array whose scale and offset were applied: its nodata (the
# override's too) was a stored value, applied with them
SCALED = "zonal_dask_scaled"


def mark_scaled(array: xr.DataArray) -> xr.DataArray:
    array.attrs[SCALED] = 1
    return array


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


def _plane_chunk(rows: int, cols: int) -> int:
    """Bands or time steps per chunk, so a chunk holds about the target pixels."""
    return max(1, TARGET_CHUNK_PIXELS // (rows * cols))


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
            spec[array.dims[0]] = _plane_chunk(*requested)
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


def normalize_chunks(chunks: ChunksLike) -> tuple[int, int] | None:
    """``chunks`` as (rows, cols), or None to choose them from the tiling."""
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


def check_transform(transform: Affine, source: str) -> None:
    """Refuse rotated, sheared or degenerate geotransforms, naming the transform."""
    coefficients = tuple(transform)[:6]
    if transform.b != 0 or transform.d != 0:
        raise TransformError(
            f"{source}: rotated or sheared geotransform {coefficients} is not "
            f"supported; warp the raster to a north-up grid (gdalwarp) first"
        )
    if (
        transform.a == 0
        or transform.e == 0
        or not all(map(math.isfinite, coefficients))
    ):
        raise TransformError(f"{source}: degenerate geotransform {coefficients}")


def is_nan(value: object) -> bool:
    """Whether a nodata value is NaN (integers, however big, never are)."""
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def check_nodata(
    nodata: float | None, dtype: np.dtype, source: str, what: str = "nodata"
) -> None:
    """Refuse an explicit nodata value no pixel of ``dtype`` can hold.

    An integer raster holds neither ``1.5``, ``inf`` nor ``300`` (for uint8): such
    a value would silently exclude nothing. NaN is accepted for any dtype (NaN
    pixels are always left out, and integer rasters have none); ``inf`` and
    ``-inf`` are valid nodata for float rasters. A float value that the dtype
    only holds rounded (``0.1`` in float32) is compared after the same rounding
    GDAL applies. ``what`` names the value in the message (``default_value``).
    """
    if nodata is None or is_nan(nodata):
        return
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        fits = math.isfinite(nodata) and nodata == int(nodata)
        fits = fits and info.min <= int(nodata) <= info.max
    elif np.issubdtype(dtype, np.floating):
        fits = not math.isfinite(nodata) or abs(nodata) <= np.finfo(dtype).max
    else:
        fits = True
    if not fits:
        raise NodataError(
            f"{source}: {what} {nodata!r} is not a value of dtype {dtype}"
        )


def resolve_nodata(
    override: float | None, array: xr.DataArray, source: str
) -> float | None:
    """The nodata value to use: the override (checked) or the raster's own;
    None for a scaled array (``open_raster`` applied it).

    The raster's own value is only warned about when its dtype cannot hold it
    (rioxarray itself refuses to convert it; such a value matches no pixel),
    and refused when it is a 64-bit integer GDAL could only hand over rounded.
    """
    if array.attrs.get(SCALED):
        return None  # applied with the scale: the stored nodata pixels are NaN
    if override is not None:
        check_nodata(override, array.dtype, source)
        return override
    try:
        own = array.rio.nodata
    except OverflowError:
        own = array.attrs.get("_FillValue", array.encoding.get("_FillValue"))
    try:
        check_nodata(own, array.dtype, source)
    except NodataError as err:
        warnings.warn(f"{err}; it matches no pixel and is ignored", stacklevel=3)
        return None
    if (
        own is not None
        and array.dtype.kind in "iu"
        and array.dtype.itemsize == 8
        and abs(int(own)) >= 2**53
    ):
        raise NodataError(
            f"{source}: nodata {int(own)} of a {array.dtype} raster is at or beyond "
            f"2**53, where GDAL hands it over rounded to float64: which pixels it "
            f"marks is unknown; give it exactly with nodata= (--nodata)"
        )
    return own
