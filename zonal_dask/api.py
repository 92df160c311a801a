"""``zonal_stats``, ``zonal_pixels`` and ``rasterize_zones``: every route
through the same steps.

request -> label source -> graph -> compute -> finish. The route (polygons, a
label raster, a ``ZonePlan``) decides only which label source the graph
reads; validation (``request.py``), the graph (``graph.py``), the final step
(``finalize.py``), the scheduler and the run's process state (``runtime.py``)
are the same for all.
"""

from __future__ import annotations

import os
from threading import Thread
from typing import Any, NamedTuple, TypeAlias

import dask.array as da
import geopandas as gpd
import pandas as pd
import pyproj
import xarray as xr
from dask.delayed import Delayed

from . import cluster
from .checkpoint import Checkpoint, run_identity
from .coverage import CoverageRule
from .errors import CRSError, RasterError, source_name
from .features import finish, finish_lazily, read_features
from .graph import zonal_graph
from .grids import CommonGrid, on_common_grid
from .labels import (
    LabelSource,
    coverage_source,
    label_array,
    label_raster_source,
    polygon_source,
    touched_fallback,
)
from .partials import warm_up
from .pixels import PixelSpec, pixel_frame
from .plan import ZonePlan
from .pooling import pool_zones, zone_fields
from .raster import (
    TARGET_CHUNK_PIXELS,
    ChunksLike,
    check_nodata,
    grid_chunks,
    is_label_raster,
    open_label_raster,
    open_raster,
    resolve_nodata,
)
from .request import Request, Route
from .runtime import run_scope
from .stats import DEFAULT_STATS, StatsLike
from .zones import plan_chunks, zones_on_grid

ZonesLike: TypeAlias = (
    str | os.PathLike[str] | gpd.GeoDataFrame | xr.DataArray | ZonePlan
)
RasterLike: TypeAlias = str | os.PathLike[str] | xr.DataArray


def zonal_stats(
    zones: ZonesLike,
    raster: RasterLike,
    stats: StatsLike = DEFAULT_STATS,
    *,
    band: int | None = 1,
    nodata: float | None = None,
    zone_id: str | None = None,
    all_touched: bool = False,
    categorical: bool = False,
    coverage: str | None = None,
    weights: str | os.PathLike[str] | xr.DataArray | None = None,
    default_value: float | None = None,
    default_weight: float | None = None,
    min_coverage_frac: float | None = None,
    group_by: str | None = None,
    small: str = "nan",
    chunks: ChunksLike = None,
    compute: bool = True,
    split_every: int = 8,
    geometry: bool = False,
    prefix: str | None = None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
    checkpoint: str | os.PathLike | None = None,
) -> pd.DataFrame | gpd.GeoDataFrame | xr.Dataset | Delayed:
    """Statistics of the raster's pixels inside each zone.

    A pixel belongs to a zone when its centre lies inside the polygon (GDAL's
    default rule), or with ``all_touched`` when the polygon touches it at all;
    a pixel inside several overlapping zones counts for each. Nodata and NaN
    pixels are left out; a zone with no valid pixel gets count 0 and NaN for
    every other statistic.

    Parameters
    ----------
    zones
        Polygons: a path geopandas reads (Shapefile, GeoPackage, GeoJSON,
        FlatGeobuf, GeoParquet) or a GeoDataFrame. They are reprojected to the
        raster's CRS when the two differ. Or an integer label raster on the
        raster's grid (a DataArray, or a ``.tif``/``.tiff``/``.vrt`` path):
        each label value is a zone, its nodata is no zone, and the rows are
        the label values found, sorted, in a ``zone`` index.
        Or a ``ZonePlan`` (``zonal_dask.ZonePlan``): its stored labels are used
        for any raster on its grid, with its zone names, chunks and pixel rule.
    raster
        A path or GDAL-readable URL, opened lazily, or an xarray.DataArray
        (chunked or not) with a CRS and transform.
    stats
        Names from ``zonal_dask.STATISTICS`` (or their aliases) and quantiles
        (``p90``, ``percentile_90``, ``quantile(q=0.9)``), in the order of the
        output columns; or a mapping from column name to a statistic name or a
        function of a zone's valid values (1-D float64).
    band
        1-based band to summarise; None for every band of a multi-band file,
        or to keep a DataArray's extra dimension (time, say): the result is
        then an ``xarray.Dataset`` with dimensions (zone, band or time), and
        ``to_dataframe()`` gives the long table.
    nodata
        Value to treat as nodata instead of the raster's own.
    zone_id
        Column naming the rows (its values must be unique). By default the
        rows are named by the data source's FID, or a GeoDataFrame's index.
    all_touched
        Count every pixel a polygon touches, not only those whose centre it
        holds.
    categorical
        Add one column per raster value holding the zone's pixel count of that
        value (a zone x class table, for land cover and other class rasters);
        the statistic ``histogram`` asks for the same columns.
    coverage
        Weight each pixel a polygon touches as exactextract's
        ``coverage_weight`` does: ``"fraction"`` by the exact fraction of it
        the polygon covers, ``"none"`` by 1 (every touched pixel),
        ``"area_cartesian"`` by the covered area in the CRS's units,
        ``"area_spherical_m2"`` / ``"area_spherical_km2"`` by the covered area
        on a sphere (longitude/latitude rasters). Every statistic then has
        exactextract's meaning: ``count`` is the sum of the weights, ``mean``,
        ``std``, ``median``, ``pNN``, ``majority`` ... are weighted.
        None (default): the pixel-centre or all-touched rule, unweighted.
    weights
        A second raster (path, URL or DataArray) for the ``weighted_*``
        statistics and ``weighted_frac``, on the raster's grid or a
        compatible one (same CRS, cell sizes integer multiples of each other,
        origins whole cells apart); all statistics are then computed on the
        finer of the two grids, as exactextract does. ``"coverage"`` means
        ``coverage="fraction"`` (the older spelling).
    default_value
        The value of nodata and NaN pixels, which then count, instead of being
        left out.
    default_weight
        The weight of pixels whose weight is nodata, NaN or beyond the weights
        raster. Without it, such a pixel makes its zone's weighted statistics
        NaN (as exactextract).
    min_coverage_frac
        With coverage weighting, pixels covered less than this fraction (0 to
        1) do not count.
    group_by
        A column of the zones: the features sharing a value form one zone (a
        row named by the value, sorted), with the numbers of the dissolved
        zone, without dissolving.
    small
        What a polygon that holds no pixel centre gets: ``"nan"`` (count 0 and
        NaN, as rasterstats' None), or ``"touched"``: the pixels it touches, as
        with ``all_touched``, and a boolean ``small`` column marks those rows.
    chunks
        Raster chunk size in pixels (int, ``(rows, cols)`` or ``{"y", "x"}``).
        By default whole internal tiles, about 1024 x 1024 pixels.
    compute
        If False, return a ``dask.delayed.Delayed`` whose ``compute()`` (on any
        scheduler) gives the table.
    split_every
        How many partial results each merge task of the tree combines.
    geometry
        If True, return the input features (geometry in the zones' own CRS,
        every attribute, index and order kept) with the statistic columns
        added, as a GeoDataFrame. Polygon zones and one band only.
    prefix
        Text put before each statistic's column name (``"slope_"`` gives
        ``slope_mean``), as rasterstats' ``prefix``.
    layer
        The layer of a vector file that has several (name or 0-based position).
    assume_same_crs
        Accept zones or a raster without a CRS, taking the coordinates as the
        same. Without it, a missing CRS is a ``CRSError``.
    checkpoint
        A directory where each chunk's partial results are saved as they
        complete (on a cluster: a directory every worker can write). Running
        again with the same inputs and options computes only the chunks
        missing there; other inputs are refused with a ``CheckpointError``.

    Returns
    -------
    pandas.DataFrame, geopandas.GeoDataFrame, xarray.Dataset or Delayed
        One row per input feature, in input order, one column per statistic
        (after the zones' own columns when ``geometry=True``; a Dataset with
        ``band=None``).

    Examples
    --------
    >>> import zonal_dask as zd
    >>> df = zd.zonal_stats("borders.shp", "pop.tif")  # doctest: +SKIP
    >>> df = zd.zonal_stats(gdf, da, ["mean", "p90"], all_touched=True)  # doctest:+SKIP
    """
    route = _route(zones)
    request = Request.build(
        route,
        stats,
        categorical=categorical,
        coverage=coverage,
        weights=weights,
        default_value=default_value,
        default_weight=default_weight,
        min_coverage_frac=min_coverage_frac,
        group_by=group_by,
        chunks=chunks,
        checkpoint=checkpoint,
        band=band,
        nodata=nodata,
        zone_id=zone_id,
        layer=layer,
        assume_same_crs=assume_same_crs,
        all_touched=all_touched,
        small=small,
        split_every=split_every,
        geometry=geometry,
        prefix=prefix,
        plan_all_touched=zones.all_touched if isinstance(zones, ZonePlan) else None,
    )
    name = source_name(zones)
    with run_scope():
        frame = None
        if request.geometry:
            columns = [f"{prefix or ''}{c.name}" for c in request.columns]
            frame = read_features(zones, columns, name, layer)
        inputs = label_source(zones if frame is None else frame, raster, request, name)
        array, source = inputs.array, inputs.source
        wrap = None
        if request.checkpoint is not None:
            identity = run_identity(
                request.identity(),
                zones,
                raster,
                array,
                source.index,
                source.token,
                request.weights,
            )
            wrap = Checkpoint.open(request.checkpoint, identity).wrap
        lazy = zonal_graph(
            array.data,
            source,
            request.columns,
            inputs.nodata,
            split_every=request.split_every,
            wrap_chunk=wrap,
            weights=inputs.weights,
            default_value=request.default_value,
            grid={
                "transform": tuple(array.rio.transform())[:6],
                "width": int(array.shape[-1]),
                "dtype": str(array.dtype),
            },
            **_planes(array),
        )
        if not compute:
            if frame is None and not prefix:
                return lazy
            return finish_lazily(lazy, frame, prefix, name)
        table = cluster.compute(lazy)
    return finish(table, frame, prefix, name)


def zonal_pixels(
    zones: ZonesLike,
    raster: RasterLike,
    *,
    band: int = 1,
    nodata: float | None = None,
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
) -> Any:
    """Every pixel of every zone, as a long table: one row per (zone, pixel).

    The rows are the pixels the statistics of ``zonal_stats`` with the same
    options read: a pixel counts in as many zones as claim it, nodata and NaN
    pixels are left out (unless ``default_value``). Parameters as in
    ``zonal_stats``.

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
    request = Request.build(
        _route(zones),
        ["count"],
        plan_all_touched=zones.all_touched if isinstance(zones, ZonePlan) else None,
        **options,
    )
    if band is None:
        raise RasterError("zonal_pixels: one band at a time (band=None is not offered)")
    with run_scope():
        inputs = label_source(zones, raster, request, source_name(zones))
    array, source = inputs.array, inputs.source
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
    return pixel_frame(array.data, source, spec, inputs.weights)


def rasterize_zones(
    zones: str | os.PathLike[str] | gpd.GeoDataFrame,
    raster: RasterLike,
    *,
    band: int = 1,
    zone_id: str | None = None,
    all_touched: bool = False,
    chunks: ChunksLike = None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
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
    request = Request.build(
        "polygons",
        ["count"],
        chunks=chunks,
        band=band,
        zone_id=zone_id,
        layer=layer,
        assume_same_crs=assume_same_crs,
        all_touched=all_touched,
    )
    with run_scope():
        inputs = label_source(zones, raster, request, source_name(zones))
    array, source = inputs.array, inputs.source
    labels = label_array(source, grid_chunks(array))
    out = xr.DataArray(labels, dims=array.dims, coords=array.coords, name="zone")
    return out.rio.write_nodata(-1)


class Inputs(NamedTuple):
    """The raster (on the common grid), its labels, and what goes with them."""

    array: xr.DataArray
    source: LabelSource
    nodata: float | None
    weights: da.Array | None = None
    grid: CommonGrid = CommonGrid()


def label_source(
    zones: ZonesLike, raster: RasterLike, request: Request, name: str
) -> Inputs:
    """Open the raster (and the weights raster: both on their common grid) and
    give the zones' labels as a source, by route."""
    raster_name = source_name(raster)
    if isinstance(zones, ZonePlan):
        array, source = zones.open(raster, request.band), zones.source()
    else:
        array = open_raster(raster, band=request.band, chunks=request.chunks)
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
        source=name,
        raster=raster_name,
        group_by=request.group_by,
    )
    if request.group_by is not None:
        pixel = pool_zones(pixel, name)
    tasks = plan_chunks(pixel.geometries, grid_chunks(array), pixel.orient)
    groups, fields = zone_fields(
        pixel,
        tasks,
        TARGET_CHUNK_PIXELS,
        groups=request.needs_values,
        outside=request.needs_outside,
    )
    if request.coverage is not None:
        rule = CoverageRule(
            request.coverage,
            request.min_coverage_frac,
            tuple(array.rio.transform())[:6],
        )
        _check_spherical(rule, array, raster_name)
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
    return Inputs(array, source, nodata, weights, grid)


def _check_spherical(rule: CoverageRule, array: xr.DataArray, name: str) -> None:
    """Spherical areas need longitude/latitude cells: refuse a projected CRS."""
    crs = array.rio.crs
    if rule.kind.startswith("area_spherical") and crs is not None:
        if not pyproj.CRS.from_user_input(crs).is_geographic:
            raise CRSError(
                f"{name}: coverage={rule.kind!r} needs a longitude/latitude raster, "
                f"not {crs}; use 'area_cartesian' for areas in the CRS's units"
            )


def _route(zones: Any) -> Route:
    if isinstance(zones, ZonePlan):
        return "plan"
    return "label raster" if is_label_raster(zones) else "polygons"


def _planes(array: xr.DataArray) -> dict[str, Any]:
    """The extra dimension's name and coordinates, for a 3-D raster."""
    if array.ndim == 2:
        return {}
    dim = array.dims[0]
    coords = array[dim].to_numpy() if dim in array.coords else None
    return {"plane_dim": dim, "plane_coords": coords}
