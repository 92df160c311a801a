"""What GDAL declares about a raster's pixels besides their values.

* **Masks.** GDAL gives every band a mask: all valid, its nodata value, a
  per-dataset mask (an internal or ``.msk`` mask, as ``gdal_translate -mask``
  or JPEG-compressed imagery write), or an alpha band. The nodata value is
  zonal_dask's own business (``raster.resolve_nodata``); a per-dataset mask
  or an alpha band is honoured as GDAL's readers honour it: a pixel whose mask
  is 0 is invalid (counted in ``nodata_count``), any other mask value (partial
  alpha included) is valid. The masks are read by the workers, window by
  window, beside the values (``rasterio``'s ``read_masks``), and the masked
  pixels become NaN: a masked raster is read as float (float64 for integers,
  exact up to 2**53; a 64-bit integer pixel beyond that is refused when read).
* **Georeferencing.** Ground control points or RPCs instead of a geotransform
  are refused: read as a grid they would be a unit grid at the origin.
* **Scale and offset.** Statistics are of the stored values, as GDAL reads them
  and as rasterstats and exactextract report them; a band declaring a scale
  or an offset gets a warning saying so.
* **Data types.** float16 is widened to float32 and booleans to uint8 (numba's
  kernels take neither); complex and non-numeric values are refused.
"""

from __future__ import annotations

import warnings
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


def declares_mask(src: rasterio.DatasetReader, bands: Sequence[int], path: str) -> bool:
    """Whether GDAL masks some of ``bands`` beyond their nodata value (a
    per-dataset mask or an alpha band); warns about a scale or an offset."""
    flags = src.mask_flag_enums
    for b in bands:
        scale, offset = src.scales[b - 1], src.offsets[b - 1]
        if scale != 1 or offset != 0:
            warnings.warn(
                f"{path}: band {b} declares scale {scale:g} and offset {offset:g}; "
                f"the statistics are of the stored values (apply them yourself)",
                stacklevel=4,
            )
            break
    return any(
        MaskFlags.per_dataset in flags[b - 1] or MaskFlags.alpha in flags[b - 1]
        for b in bands
    )


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
