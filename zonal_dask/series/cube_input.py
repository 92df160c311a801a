"""An xarray cube as time steps: a DataArray or Dataset with a time dimension
(Zarr, NetCDF, odc-stac, stackstac), or the path of a ``.zarr`` or ``.nc``
cube; a Dataset gives several variables at once.

Each variable is checked as a single raster is (its first step), sorted in
time, and, unless ``raw``, its ``scale_factor``/``add_offset`` not yet
decoded (a cube opened with ``mask_and_scale=False``) applied as xarray
decodes them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import RasterError, SeriesError
from ..io.grid import ChunksLike
from ..io.location import is_remote
from ..io.masks import apply_scaling
from ..io.nodata import check_nodata, mark_scaled
from ..io.raster import open_raster
from .steps import Series, Step, show_time, time_dim

CUBE_SUFFIXES = (".zarr", ".nc", ".nc4", ".netcdf")


def is_cube_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) and os.fspath(source).rstrip(
        "/"
    ).lower().endswith(CUBE_SUFFIXES)


def _open_cube_path(path: str, raw: bool = False) -> xr.Dataset:
    if not is_remote(path) and not os.path.exists(path):
        raise RasterError(f"{path}: no such file")
    decode: dict[str, Any] = {"decode_coords": "all", "mask_and_scale": not raw}
    try:
        if path.rstrip("/").lower().endswith(".zarr"):
            with warnings.catch_warnings():  # stores with or without .zmetadata
                warnings.filterwarnings("ignore", "Failed to open Zarr store")
                return xr.open_zarr(path, **decode)
        return xr.open_dataset(path, chunks={}, **decode)
    except Exception as err:  # each backend raises its own types
        raise RasterError(f"{path}: cannot open as a cube ({err})") from None


def from_cube(
    source: Any,
    band: int | None,
    chunks: ChunksLike,
    variables: Sequence[str] | None,
    raw: bool = False,
    nodata: float | None = None,
) -> Series:
    name = os.fspath(source) if is_cube_path(source) else type(source).__name__
    cube = _open_cube_path(name, raw) if is_cube_path(source) else source
    if isinstance(cube, xr.DataArray):
        cube = cube.to_dataset(name=cube.name or "value")
    found = [str(v) for v, a in cube.data_vars.items() if _is_raster(a)]
    chosen = list(variables) if variables else found
    for variable in chosen:
        if variable not in found:
            raise SeriesError(
                f"{name}: no variable {variable!r} with (time, y, x) dimensions; "
                f"it has: {', '.join(found) or 'none'}"
            )
    if not chosen:
        raise SeriesError(f"{name}: no variable with a time and two spatial dimensions")
    if not raw:
        cube = cube.assign(
            {v: _decoded(cube[v], f"{name}: {v}", nodata) for v in chosen}
        )
    first = cube[chosen[0]]
    time = time_dim(first)
    if any(time_dim(cube[v]) != time for v in chosen):
        raise SeriesError(
            f"{name}: the variables do not share the time dimension {time}"
        )
    times = (
        cube[time].to_numpy() if time in cube.coords else np.arange(cube.sizes[time])
    )
    steps = [Step(t, f"{name}[{time}={show_time(t)}]") for t in times]
    if len({*times.tolist()}) != len(times):
        raise SeriesError(f"{name}: repeated values of {time}")
    for variable in chosen:  # the spatial checks of a single raster
        open_raster(cube[variable].isel({time: 0}), band=band, chunks=chunks)
    order = np.argsort(times, kind="stable")
    if (order != np.arange(len(order))).any():
        cube = cube.isel({time: order})
        steps = [steps[i] for i in order]
    return Series(steps, band=band, variables=chosen, cube=cube, kind="xarray")


def _decoded(array: xr.DataArray, name: str, nodata: float | None) -> xr.DataArray:
    """A variable's stored values as those they stand for (``stored * scale +
    offset``, float64, its stored nodata NaN), when its attributes declare a
    scale or an offset not yet decoded; refused when bands declare different
    ones (rioxarray's ``scales``/``offsets``), which a step cannot tell apart."""
    pairs = []
    for one, each, neutral in (
        ("scale_factor", "scales", 1.0),
        ("add_offset", "offsets", 0.0),
    ):
        found = array.attrs.get(one, array.attrs.get(each, neutral))
        values = {float(v) for v in np.atleast_1d(found)}
        if len(values) > 1:
            raise SeriesError(
                f"{name}: its bands declare different {each} {sorted(values)}: "
                f"decode it first (mask_and_scale=True) or give raw=True (--raw)"
            )
        pairs.append(values.pop() if values else neutral)
    scale, offset = pairs
    if scale == 1 and offset == 0:
        return array
    if nodata is not None:
        check_nodata(nodata, array.dtype, name, "nodata")
    stored = nodata
    if stored is None:
        stored = array.attrs.get("_FillValue", array.encoding.get("_FillValue"))
    if array.chunks is None:
        array = array.chunk()
    planes = array.shape[0] if array.ndim == 3 else 1
    scaling = ((scale,) * planes, (offset,) * planes)
    return mark_scaled(apply_scaling(array, scaling, stored))


def _is_raster(array: xr.DataArray) -> bool:
    try:
        y, x = array.rio.y_dim, array.rio.x_dim
    except Exception:  # rioxarray raises when it finds no spatial dims
        return False
    others = [d for d in array.dims if d not in (y, x, "band")]
    return len(others) == 1
