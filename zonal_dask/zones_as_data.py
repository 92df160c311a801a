"""``zonal_pixels`` and ``rasterize_zones``: the zones' pixels as data, a long
table of (zone, pixel) rows or a lazy label raster, from the same label
sources as ``zonal_stats`` (``api.py``, which exports both).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias, cast

import geopandas as gpd
import xarray as xr

from .errors import RasterError, source_name
from .io.grid import ChunksLike, grid_chunks
from .io.python_inputs import features_frame, is_feature_like
from .labels.inputs import Raster, Zones, grid_fields, label_source, route_of
from .labels.label_raster import label_array
from .labels.plan import ZonePlan
from .reduce.graph import zonal_graph
from .reduce.pixels import PixelSpec, pixel_frame
from .request import Request
from .run import scheduler
from .run.process_state import planning
from .zones.reproject import crs_text

# what the engine reads (labels/inputs.py), and what the API also takes
# (io/python_inputs.py)
ZonesLike: TypeAlias = Zones | gpd.GeoSeries | Mapping[str, Any] | Iterable[Any]


def zonal_pixels(
    zones: ZonesLike,
    raster: Raster,
    *,
    band: int = 1,
    nodata: float | None = None,
    raw: bool = False,
    zone_id: str | None = None,
    all_touched: bool = False,
    coverage: str | None = None,
    weights: str | os.PathLike[str] | xr.DataArray | None = None,
    default_value: float | None = None,
    default_weight: float | None = None,
    min_coverage_frac: float | None = None,
    group_by: str | None = None,
    chunks: ChunksLike = None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
    zones_crs: Any = None,
    small: str = "nan",
) -> Any:
    """Every pixel of every zone, as a long table: one row per (zone, pixel).

    The rows are the pixels the statistics of ``zonal_stats`` with the same
    options read: a pixel counts in as many zones as claim it, nodata and NaN
    pixels are left out (unless ``default_value``); with ``small="touched"``
    a zone that claims no pixel has the rows of the pixels it touches (which
    zones those are is computed first, a pass over the raster that counts).
    Parameters as in ``zonal_stats``.

    Returns
    -------
    dask.dataframe.DataFrame
        Columns: the zone (named as ``zonal_stats``' index: ``fid``, the
        ``zone_id`` or ``group_by`` column, or ``zone`` for a label raster),
        ``values`` (the raster's dtype), ``coverage`` (float32: the weight of
        the pixel under ``coverage``, 1 without), ``weights`` (with a weights
        raster), ``cell_id`` (``row * width + column`` in the raster, as
        exactextract numbers it), ``center_x``, ``center_y``. One partition
        per chunk holding zones, by zone then pixel row by row; a zone's rows
        are spread over the partitions of the chunks it meets.
    """
    options = dict(locals())  # every keyword argument is a Request field
    del options["zones"], options["raster"]
    if band is None:
        raise RasterError("zonal_pixels: one band at a time (band=None is not offered)")
    options["zones_crs"] = crs_text(zones_crs)
    zones, options["assume_same_crs"], name = adapt_zones(zones, assume_same_crs)
    request = Request.build(
        route_of(zones),
        ["count"],
        plan=zones.options if isinstance(zones, ZonePlan) else None,
        **options,
    )
    with planning():
        inputs = label_source(cast(Zones, zones), raster, request, name)
        array, source = inputs.array, inputs.source
        fallback = None
        if source.fallback:  # the zones that take their stand-ins, as finalized
            fallback = zonal_graph(
                array.data,
                source,
                request.columns,
                inputs.nodata,
                weights=inputs.weights,
                default_value=request.default_value,
                grid=grid_fields(array),  # 2-D: one band, no planes
            )
    small_zones = None
    if fallback is not None:
        small_zones = scheduler.compute(fallback)["small"].to_numpy(bool)
    index = source.index
    spec = PixelSpec(
        column="zone" if index is None else str(index.name),
        names=None,
        origin=(0, 0),
        transform=tuple(array.rio.transform())[:6],
        grid=inputs.grid,
        nodata=inputs.nodata,
        default_value=request.default_value,
        dtype=str(array.dtype),
        weighted=inputs.weights is not None,
    )
    return pixel_frame(array.data, source, spec, inputs.weights, small_zones)


def rasterize_zones(
    zones: str
    | os.PathLike[str]
    | gpd.GeoDataFrame
    | Mapping[str, Any]
    | Iterable[Any],
    raster: Raster,
    *,
    band: int = 1,
    zone_id: str | None = None,
    all_touched: bool = False,
    chunks: ChunksLike = None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
    zones_crs: Any = None,
) -> xr.DataArray:
    """The zones as a lazy label raster on the raster's grid and chunks.

    Each pixel holds the 0-based position of its zone in the input, or -1.
    Where zones overlap, a single label cannot say it all: the pixel holds the
    highest position, while ``zonal_stats`` counts the pixel for every zone.
    Parameters as in ``zonal_stats``.

    Returns
    -------
    xarray.DataArray
        int32, dims and coordinates of the raster band, dask-backed.
    """
    zones, assume_same_crs, name = adapt_zones(zones, assume_same_crs)
    request = Request.build(
        "polygons",
        ["count"],
        chunks=chunks,
        band=band,
        zone_id=zone_id,
        layer=layer,
        assume_same_crs=assume_same_crs,
        zones_crs=crs_text(zones_crs),
        all_touched=all_touched,
    )
    with planning():
        inputs = label_source(cast(Zones, zones), raster, request, name)
    labels = label_array(inputs.source, grid_chunks(inputs.array))
    array = inputs.array
    out = xr.DataArray(labels, dims=array.dims, coords=array.coords, name="zone")
    return out.rio.write_nodata(-1)


def adapt_zones(zones: Any, assume_same_crs: bool) -> tuple[Any, bool, str]:
    """GeoJSON-like zones as a GeoDataFrame (taken in the raster's CRS when
    they declare none), whether to assume the CRS, and the zones' name."""
    if isinstance(zones, ZonePlan) or not is_feature_like(zones):
        return zones, assume_same_crs, source_name(zones)
    frame = features_frame(zones)
    return frame, assume_same_crs or frame.crs is None, "features"
