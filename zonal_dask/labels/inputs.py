"""From the inputs to a label source: the raster (and a weights raster) opened
on their common grid, and each chunk's labels by route.

Every route gives the same ``Inputs``: the raster as a lazy DataArray on the
grid the statistics are computed on, the zones' ``LabelSource``, the nodata
value, and with a weights raster its lazy blocks on the same grid and chunks.
"""

from __future__ import annotations

import os
from threading import Thread
from typing import Any, NamedTuple, TypeAlias

import dask.array as da
import geopandas as gpd
import pyproj
import xarray as xr

from ..coverage.weights import CoverageRule
from ..errors import CRSError, source_name
from ..io.common_grid import CommonGrid, on_common_grid
from ..io.raster import (
    TARGET_CHUNK_PIXELS,
    check_nodata,
    grid_chunks,
    is_label_raster,
    open_label_raster,
    open_raster,
    resolve_nodata,
)
from ..reduce.moments import warm_up
from ..request import Request, Route
from ..run.process_state import release_freed_memory
from ..zones.read import LINEAR, POLYGONAL, require_types, zones_on_grid
from .chunk_tasks import plan_chunks
from .groups import pool_zones, require_one_kind, zone_fields
from .label_raster import label_raster_source
from .plan import ZonePlan
from .sources import (
    LabelSource,
    coverage_source,
    polygon_source,
    touched_fallback,
)

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


def label_source(zones: Zones, raster: Raster, request: Request, name: str) -> Inputs:
    """Open the raster (and the weights raster: both on their common grid) and
    give the zones' labels as a source, by route."""
    raster_name = source_name(raster)
    if isinstance(zones, ZonePlan):
        array, source = zones.open(raster, request.band), zones.source()
    else:
        array = open_raster(
            raster, band=request.band, chunks=request.chunks, nodata=request.nodata
        )
    nodata = resolve_nodata(request.nodata, array, raster_name)
    if request.default_value is not None:
        check_nodata(request.default_value, array.dtype, raster_name, "default_value")
    weights, grid = None, CommonGrid(width=int(array.shape[-1]))
    if request.weights is not None:
        array, weights, grid = on_common_grid(
            array,
            open_raster(request.weights, band=1),
            values_name=raster_name,
            weights_name=source_name(request.weights),
            default_weight=request.default_weight,
            default_value=request.default_value,
            chunks=request.chunks,
            same_grid=request.route != "polygons",
        )
    if isinstance(zones, ZonePlan):
        return Inputs(array, source, nodata, weights, grid)
    if request.route == "label raster":
        labels = open_label_raster(zones, like=array)
        source = label_raster_source(labels.data, labels.rio.nodata)
        return Inputs(array, source, nodata, weights, grid)
    # numba loads the kernels from its cache while the zones are read
    Thread(target=warm_up, args=(array.dtype,), daemon=True).start()
    pixel = zones_on_grid(
        zones,
        array,
        zone_id=request.zone_id,
        layer=request.layer,
        assume_same_crs=request.assume_same_crs,
        zones_crs=request.zones_crs,
        source=name,
        raster=raster_name,
        group_by=request.group_by,
    )
    if request.group_by is not None:
        if request.coverage is not None:
            require_one_kind(pixel.geometries, pixel.index, name)
        pixel = pool_zones(pixel, name)
    tasks = plan_chunks(pixel.arrays, grid_chunks(array), pixel.orient)
    groups, fields = zone_fields(
        pixel,
        tasks,
        TARGET_CHUNK_PIXELS,
        groups=request.needs_values,
        outside=request.needs_outside,
    )
    if request.coverage is not None:
        require_types(
            pixel.source_geometries,
            name,
            POLYGONAL | LINEAR,
            "coverage weighting needs polygon or line zones, as exactextract "
            "(points take the pixel-centre or all-touched rule)",
        )

        rule = CoverageRule(
            request.coverage,
            request.min_coverage_frac,
            tuple(array.rio.transform())[:6],
        )
        check_spherical(rule, array, raster_name)
        source = coverage_source(
            tasks,
            pixel.index,
            rule,
            groups=groups,
            fields=fields,
            zone_of=pixel.zone_of,
        )
    else:
        source = polygon_source(
            tasks,
            pixel.index,
            request.all_touched,
            groups=groups,
            fields=fields,
            zone_of=pixel.zone_of,
        )
    if request.small == "touched":
        source = touched_fallback(source, tasks, len(pixel.index))
    # the zones' geometries are no longer needed (the tasks read the shards):
    # hand their memory back before the chunks need it
    del pixel, tasks
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


def check_spherical(rule: CoverageRule, array: xr.DataArray, name: str) -> None:
    """Spherical areas need longitude/latitude cells: refuse a projected CRS."""
    crs = array.rio.crs
    if rule.kind.startswith("area_spherical") and crs is not None:
        if not pyproj.CRS.from_user_input(crs).is_geographic:
            raise CRSError(
                f"{name}: coverage={rule.kind!r} needs a longitude/latitude raster, "
                f"not {crs}; use 'area_cartesian' for areas in the CRS's units"
            )


def route_of(zones: Any) -> Route:
    if isinstance(zones, ZonePlan):
        return "plan"
    return "label raster" if is_label_raster(zones) else "polygons"
