"""The one label builder: zones on a raster's grid to a ``LabelSource``.

Every way of summarising vector zones builds its labels here: a direct call
(``labels/inputs.py``), a ``ZonePlan`` (``labels/plan.py``) and each grid of a
time series (``series/zonal_series.py``, through ``label_source``). One
function per zone kind would repeat the same steps, so the kinds branch only
where they differ: polygons, lines and points are burnt under the centre or
all-touched rule (``polygon_source``), or weighted by the cells they cover
(``coverage_source``); ``group_by`` pools parts of zones; ``small="touched"``
wraps the polygon source. A label raster is its own source
(``labels/label_raster.py``) and is not built here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pyproj
import xarray as xr

from ..coverage.weights import LINE_TYPES, CoverageRule
from ..errors import CRSError, StatisticError
from ..io.grid import TARGET_CHUNK_PIXELS, grid_chunks
from ..request import Request
from ..run.kernels import kernels_for, prepare_in_background
from ..statistics.table import classes_by_group
from ..zones.read import LINEAR, POLYGONAL, require_type_ids, zones_on_grid
from .chunk_tasks import ChunkTask, plan_chunks
from .coverage_source import coverage_source
from .groups import pool_zones, require_one_kind, zone_fields
from .sources import LabelSource, polygon_source, touched_fallback

# the options that decide a zone's pixels: a ZonePlan is made with them and
# fixes them for every call that uses it
LABEL_OPTIONS = (
    "zone_id",
    "layer",
    "assume_same_crs",
    "zones_crs",
    "all_touched",
    "coverage",
    "min_coverage_frac",
    "group_by",
    "small",
)


class Built(NamedTuple):
    """A label source and the chunk tasks it was made of."""

    source: LabelSource
    tasks: list[ChunkTask]


def build_labels(
    zones: Any,
    array: xr.DataArray,
    request: Request,
    name: str,
    raster_name: str,
    *,
    every_field: bool = False,
) -> Built:
    """The zones' labels on the grid and chunks of ``array``, under the
    request's ``LABEL_OPTIONS``.

    ``every_field`` computes the value groups and the ``outside`` field
    whatever the statistics (a ``ZonePlan`` serves statistics asked later).
    """
    # numba loads (or first compiles) the burner or coverage kernels while
    # the zones are read
    prepare_in_background([f for f in kernels_for(request) if f != "moments"], [])
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
        groups=every_field
        or request.needs_values
        or classes_by_group(request.columns, array.dtype),
        outside=request.needs_outside,
    )
    if every_field and "outside" not in fields:
        try:
            fields.update(
                zone_fields(pixel, tasks, TARGET_CHUNK_PIXELS, outside=True)[1]
            )
        except StatisticError:  # groups clipped when reprojected: refused if asked
            pass
    if request.coverage is not None:
        require_type_ids(
            pixel.arrays.types,
            name,
            POLYGONAL | LINEAR,
            "coverage weighting needs polygon or line zones, as exactextract "
            "(points take the pixel-centre or all-touched rule)",
        )
        if np.isin(pixel.arrays.types, LINE_TYPES).any():
            prepare_in_background(["line_lengths"], [])
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
    return Built(source, tasks)


def check_spherical(rule: CoverageRule, array: xr.DataArray, name: str) -> None:
    """Spherical areas need longitude/latitude cells: refuse a projected CRS."""
    crs = array.rio.crs
    if rule.kind.startswith("area_spherical") and crs is not None:
        if not pyproj.CRS.from_user_input(crs).is_geographic:
            raise CRSError(
                f"{name}: coverage={rule.kind!r} needs a longitude/latitude raster, "
                f"not {crs}; use 'area_cartesian' for areas in the CRS's units"
            )
