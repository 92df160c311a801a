"""Checks of the inputs that would otherwise give a silently wrong answer.

Each check raises a ``ZonalError`` subclass whose message names the file and
the value at fault in one line, or warns when the input is harmless but
probably not what the user meant.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS

from .errors import CRSError, NodataError, OutputError, TransformError


def check_crs(
    zones_crs: CRS | None,
    raster_crs: CRS | None,
    *,
    zones: str,
    raster: str,
    assume_same_crs: bool = False,
) -> None:
    """Refuse zones or a raster without a CRS, unless told they share one.

    Without a CRS on one side, nothing says the coordinates are comparable:
    guessing gives plausible numbers for the wrong places.
    """
    if assume_same_crs:
        return
    missing = [
        name for name, crs in ((zones, zones_crs), (raster, raster_crs)) if not crs
    ]
    if missing:
        raise CRSError(
            f"{' and '.join(missing)}: no CRS; set one, or pass assume_same_crs=True "
            f"(--assume-same-crs) if the zones and the raster share coordinates"
        )


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


def check_nodata(nodata: float | None, dtype: np.dtype, source: str) -> None:
    """Refuse an explicit nodata value no pixel of ``dtype`` can hold.

    An integer raster holds neither ``1.5``, ``inf`` nor ``300`` (for uint8): such
    a value would silently exclude nothing. NaN is accepted for any dtype (NaN
    pixels are always left out, and integer rasters have none); ``inf`` and
    ``-inf`` are valid nodata for float rasters. A float value that the dtype
    only holds rounded (``0.1`` in float32) is compared after the same rounding
    GDAL applies.
    """
    if nodata is None or np.isnan(nodata):
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
            f"{source}: nodata {nodata!r} is not a value of dtype {dtype}"
        )


def check_writable(path: Path) -> None:
    """Refuse an output whose directory the process cannot write into."""
    if path.parent.is_dir() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: directory {path.parent} is not writable")


def resolve_nodata(
    override: float | None, array: xr.DataArray, source: str
) -> float | None:
    """The nodata value to use: the override (checked) or the raster's own.

    The raster's own value is only warned about when its dtype cannot hold it
    (rioxarray itself refuses to convert it; such a value matches no pixel).
    """
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
    return own
