"""From the inputs to a label source: the raster (and a weights raster) opened
on their common grid, and each chunk's labels by route.

Every route gives the same ``Inputs``: the raster as a lazy DataArray on the
grid the statistics are computed on, the zones' ``LabelSource``, the nodata
value, and with a weights raster its lazy blocks on the same grid and chunks.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, TypeAlias

import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr

from ..errors import NodataError, StatisticError, source_name
from ..io.common_grid import TOLERANCE, CommonGrid, on_common_grid
from ..io.nodata import check_nodata, is_nan, resolve_nodata
from ..io.raster import is_label_raster, open_label_raster, open_raster
from ..request import Request, Route
from ..run.kernels import prepare_in_background
from ..run.process_state import release_freed_memory
from .build import build_labels
from .label_raster import label_raster_source
from .plan import ZonePlan
from .sources import LabelSource

# what the engine reads (``api.py`` adapts what else users give)
Zones: TypeAlias = str | os.PathLike[str] | gpd.GeoDataFrame | xr.DataArray | ZonePlan
Raster: TypeAlias = str | os.PathLike[str] | xr.DataArray


class Inputs(NamedTuple):
    """The raster (on the common grid), its labels, and what goes with them."""

    array: xr.DataArray
    source: LabelSource
    nodata: float | None
    weights: da.Array | None = None
    grid: CommonGrid = CommonGrid()


def check_default_value(request: Request, dtype: Any, raster_name: str) -> None:
    """Refuse a ``default_value`` no pixel of ``dtype`` can hold (NaN, 2.5 for
    an integer raster); NaN on a float raster counts the pixels with value
    NaN, as exactextract: statistics of a zone's values or classes would
    then have no meaning, and are refused."""
    value = request.default_value
    if is_nan(value) and np.dtype(dtype).kind != "f":
        raise NodataError(
            f"{raster_name}: default_value {value!r} is not a value of dtype {dtype}"
        )
    if is_nan(value):
        sorted_out = [
            c.name for c in request.columns if c.statistic.family != "moments"
        ]
        if sorted_out:
            raise NodataError(
                f"{raster_name}: default_value nan with {', '.join(sorted_out)}: "
                f"NaN values have no order nor class; give a number instead"
            )
    check_nodata(value, dtype, raster_name, "default_value")


def label_source(zones: Zones, raster: Raster, request: Request, name: str) -> Inputs:
    """Open the raster (and the weights raster: both on their common grid) and
    give the zones' labels as a source, by route."""
    raster_name = source_name(raster)
    if isinstance(zones, ZonePlan):
        array = zones.open(raster, request.band, nodata=request.nodata, raw=request.raw)
        source = zones.source()
    else:
        array = open_raster(
            raster,
            band=request.band,
            chunks=request.chunks,
            nodata=request.nodata,
            raw=request.raw,
        )
    nodata = resolve_nodata(request.nodata, array, raster_name)
    if request.default_value is not None:
        check_default_value(request, array.dtype, raster_name)
    weights, grid = None, CommonGrid(width=int(array.shape[-1]))
    if request.weights is not None:
        array, weights, grid = on_common_grid(
            array,
            open_raster(request.weights, band=1, raw=request.raw),
            values_name=raster_name,
            weights_name=source_name(request.weights),
            default_weight=request.default_weight,
            default_value=request.default_value,
            chunks=request.chunks,
            same_grid=request.route != "polygons",
            tolerance=(
                TOLERANCE
                if request.grid_compat_tol is None
                else request.grid_compat_tol
            ),
        )
    # numba loads (or first compiles) the moments kernel while the zones are
    # read (the burner's and coverage's: build_labels)
    prepare_in_background(["moments"], [array.dtype])
    if isinstance(zones, ZonePlan):
        if request.needs_outside and "outside" not in source.fields:
            raise StatisticError(
                "outside_fraction: this ZonePlan's groups were clipped to the "
                "raster's surroundings when reprojected, so the share of them "
                "beyond it is unknown; reproject the zones first"
            )
        return Inputs(array, source, nodata, weights, grid)
    if request.route == "label raster":
        labels = open_label_raster(zones, like=array)
        source = label_raster_source(labels.data, labels.rio.nodata)
        return Inputs(array, source, nodata, weights, grid)
    source = build_labels(zones, array, request, name, raster_name).source
    # the zones' geometries are no longer needed (the tasks read the shards):
    # hand their memory back before the chunks need it
    release_freed_memory()
    return Inputs(array, source, nodata, weights, grid)


def grid_fields(array: xr.DataArray) -> dict[str, Any]:
    """What the final step needs of the grid the statistics are computed on:
    its transform and width (the centres of cells), the raster's dtype (the
    type exactextract gives quantiles in)."""
    return {
        "transform": tuple(array.rio.transform())[:6],
        "width": int(array.shape[-1]),
        "dtype": str(array.dtype),
    }


def route_of(zones: Any) -> Route:
    if isinstance(zones, ZonePlan):
        return "plan"
    return "label raster" if is_label_raster(zones) else "polygons"
