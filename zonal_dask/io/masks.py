"""What GDAL declares about a raster's pixels besides their values.

* **Masks.** GDAL gives every band a mask: all valid, its nodata value, a
  per-dataset mask (an internal or ``.msk`` mask, as ``gdal_translate -mask``
  or JPEG-compressed imagery write), or an alpha band. The nodata value is
  zonal_dask's own business (``nodata.resolve_nodata``); a per-dataset mask
  or an alpha band is honoured as GDAL's readers honour it: a pixel whose mask
  is 0 is invalid (counted in ``nodata_count``), any other mask value (partial
  alpha included) is valid. The masks are read by the workers, window by
  window, beside the values (``rasterio``'s ``read_masks``), and the masked
  pixels become NaN: a masked raster is read as float (float64 for integers,
  exact up to 2**53; a 64-bit integer pixel beyond that is refused when read).
* **Georeferencing.** Ground control points or RPCs instead of a geotransform
  are refused: read as a grid they would be a unit grid at the origin.
* **Scale and offset.** A band declaring a scale or an offset (GDAL's
  metadata, as MODIS, NetCDF and HDF products carry; a DataArray's
  ``scale_factor``/``add_offset`` attributes) is read as exactextract, GDAL
  and rioxarray's ``mask_and_scale`` read it: pixels whose stored value is
  nodata are left out, the others become ``stored * scale + offset`` in
  float64. ``raw=True`` keeps the stored values.
* **Data types.** float16 is widened to float32 and booleans to uint8 (numba's
  kernels take neither); complex and non-numeric values are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from dask.base import tokenize
from rasterio.enums import MaskFlags
from rasterio.windows import Window

from ..errors import RasterError, TransformError

_EXACT = 2**53


def check_georeferencing(src: rasterio.DatasetReader, path: str) -> None:
    """Refuse a raster georeferenced by GCPs or RPCs rather than a geotransform."""
    if not src.transform.is_identity:
        return
    kind = "ground control points" if src.gcps[0] else "RPCs" if src.rpcs else None
    if kind:
        raise TransformError(
            f"{path}: georeferenced by {kind}, not by a geotransform; warp it to "
            f"a grid first (gdalwarp)"
        )


def declares_mask(src: rasterio.DatasetReader, bands: Sequence[int]) -> bool:
    """Whether GDAL masks some of ``bands`` beyond their nodata value (a
    per-dataset mask or an alpha band)."""
    flags = src.mask_flag_enums
    return any(
        MaskFlags.per_dataset in flags[b - 1] or MaskFlags.alpha in flags[b - 1]
        for b in bands
    )


# each plane's (scale, offset), or None when the values are as stored
Scaling = tuple[tuple[float, ...], tuple[float, ...]]


def declared_scaling(
    src: rasterio.DatasetReader, bands: Sequence[int]
) -> Scaling | None:
    """The scale and offset GDAL declares for each of ``bands``, or None when
    every band has scale 1 and offset 0."""
    scales = tuple(float(src.scales[b - 1]) for b in bands)
    offsets = tuple(float(src.offsets[b - 1]) for b in bands)
    return None if _identity(scales, offsets) else (scales, offsets)


def attribute_scaling(
    array: xr.DataArray, band: int | None, source: str
) -> Scaling | None:
    """The ``scale_factor`` and ``add_offset`` (or rioxarray's per-band
    ``scales`` and ``offsets``) a DataArray's attributes declare: values not
    yet decoded, as ``rioxarray.open_rasterio`` gives them by default; one
    pair per plane of ``array`` (``band`` of them when one was taken), or
    None."""
    scale = array.attrs.get("scale_factor", array.attrs.get("scales", 1.0))
    offset = array.attrs.get("add_offset", array.attrs.get("offsets", 0.0))
    planes = array.shape[0] if array.ndim == 3 else 1
    found = []
    for name, value in (("scale", scale), ("offset", offset)):
        values = np.atleast_1d(np.asarray(value, np.float64))
        if array.ndim == 2 and band is not None and 1 < values.size >= band:
            values = values[band - 1 : band]  # a band taken from a stack
        if values.ndim != 1 or values.size not in (1, planes):
            raise RasterError(
                f"{source}: {values.size} {name} values for {planes} planes"
            )
        found.append(tuple(float(v) for v in np.broadcast_to(values, (planes,))))
    scales, offsets = found
    return None if _identity(scales, offsets) else (scales, offsets)


def _identity(scales: Sequence[float], offsets: Sequence[float]) -> bool:
    return all(s == 1 for s in scales) and all(o == 0 for o in offsets)


def apply_scaling(
    array: xr.DataArray, scaling: Scaling, nodata: float | None
) -> xr.DataArray:
    """``array`` of stored values as the values they stand for: pixels equal
    to ``nodata`` (a stored value) or NaN become NaN, the others
    ``stored * scale + offset`` in float64, each plane with its own pair.
    The result's nodata is NaN."""
    values = array.data
    scales, offsets = (np.asarray(v, np.float64) for v in scaling)
    if values.ndim == 3:
        planes = (values.chunks[0], (1,), (1,))
        scale: da.Array | float = da.from_array(scales.reshape(-1, 1, 1), planes)
        offset: da.Array | float = da.from_array(offsets.reshape(-1, 1, 1), planes)
    else:
        scale, offset = scales[0], offsets[0]
    scaled = da.map_blocks(
        _scaled,
        values,
        scale,
        offset,
        nodata=nodata,
        dtype=np.float64,
        meta=np.empty((0,) * values.ndim, np.float64),
    )
    attrs = {
        k: v
        for k, v in array.attrs.items()
        if k not in ("scale_factor", "add_offset", "scales", "offsets", "_FillValue")
    }
    out = array.copy(data=scaled)
    out.attrs = attrs
    out.encoding = {}
    return out.rio.write_nodata(np.nan, encoded=False)


def _scaled(
    values: np.ndarray,
    scale: np.ndarray | float,
    offset: np.ndarray | float,
    nodata: float | None,
) -> np.ndarray:
    invalid = np.zeros(values.shape, bool)
    if values.dtype.kind == "f":
        invalid |= np.isnan(values)
    if nodata is not None and not np.isnan(nodata):
        invalid = invalid | (values == nodata)
    out = values.astype(np.float64) * scale + offset
    out[invalid] = np.nan
    return out


def usable_dtype(array: xr.DataArray, source: str) -> xr.DataArray:
    """``array`` in a dtype the kernels take: float16 widened to float32,
    booleans to uint8; complex and non-numeric values refused."""
    dtype = array.dtype
    if dtype.kind == "c":
        raise RasterError(
            f"{source}: complex values ({dtype}); summarise their real part, "
            f"imaginary part or modulus instead"
        )
    if dtype == np.float16:
        return array.astype(np.float32, keep_attrs=True)
    if dtype == np.bool_:
        return array.astype(np.uint8, keep_attrs=True)
    if dtype.kind not in "iuf":
        raise RasterError(f"{source}: values of dtype {dtype} are not numbers")
    return array


def masked_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a masked raster is read in: a float that has NaN."""
    if dtype.kind == "f":
        return np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    return np.dtype(np.float64)


def apply_mask(array: xr.DataArray, path: str, bands: Sequence[int]) -> xr.DataArray:
    """``array`` (as ``raster.open_raster`` opened ``path``) with the pixels
    GDAL's mask marks invalid set to NaN, each chunk's mask read by the task
    that reads its values."""
    values = array.data
    usable_dtype(array, path)  # refuse complex before anything is read
    dtype = masked_dtype(array.dtype)
    masks = _mask_array(path, values.chunks, bands, values.ndim == 3)
    masked = da.map_blocks(
        _masked,
        values,
        masks,
        dtype=dtype,
        path=path,
        meta=np.empty((0,) * values.ndim, dtype),
    )
    return array.copy(data=masked)


def _mask_array(
    path: str, chunks: tuple[tuple[int, ...], ...], bands: Sequence[int], planes: bool
) -> da.Array:
    """GDAL's masks of ``bands`` as a lazy uint8 array with ``chunks``."""
    name = f"zonal-mask-{tokenize(path, chunks, tuple(bands))}"
    row_edges = np.cumsum((0, *chunks[-2]))
    col_edges = np.cumsum((0, *chunks[-1]))
    plane_edges = np.cumsum((0, *chunks[0])) if planes else np.array([0, 1])
    dsk = {}
    for p in range(len(plane_edges) - 1):
        these = list(bands[plane_edges[p] : plane_edges[p + 1]])
        for i in range(len(row_edges) - 1):
            for j in range(len(col_edges) - 1):
                window = (
                    int(row_edges[i]),
                    int(col_edges[j]),
                    int(row_edges[i + 1] - row_edges[i]),
                    int(col_edges[j + 1] - col_edges[j]),
                )
                key = (name, p, i, j) if planes else (name, i, j)
                dsk[key] = (read_mask, path, these, window, planes)
    return da.Array(dsk, name, chunks, dtype=np.uint8)


def read_mask(
    path: str, bands: list[int], window: tuple[int, int, int, int], planes: bool
) -> np.ndarray:
    """GDAL's mask of ``bands`` over ``window`` (row, col, rows, cols)."""
    row, col, rows, cols = window
    with rasterio.open(path) as src:
        mask = src.read_masks(bands, window=Window(col, row, cols, rows))
    return mask if planes else mask[0]


def _masked(values: np.ndarray, mask: np.ndarray, path: str) -> np.ndarray:
    out = values.astype(masked_dtype(values.dtype))
    if values.dtype.itemsize == 8 and values.dtype.kind in "iu":
        valid = values[mask != 0]
        if valid.size and (valid.max() > _EXACT or valid.min() < -_EXACT):
            raise RasterError(
                f"{path}: a masked 64-bit integer raster is read as float64, "
                f"and it holds values beyond 2**53 that float64 cannot tell apart"
            )
    out[mask == 0] = np.nan
    return out
