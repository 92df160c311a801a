"""Nodata values: checked against the dtype that must hold them, the run's own
chosen (an override, or the raster's), none once a scale was applied.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from ..errors import NodataError

# set on an array whose scale and offset were applied: its nodata (the
# override's too) was a stored value, applied with them
SCALED = "zonal_dask_scaled"


def mark_scaled(array: xr.DataArray) -> xr.DataArray:
    array.attrs[SCALED] = 1
    return array


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
