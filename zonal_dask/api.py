"""``zonal_stats`` and ``rasterize_zones``: every route through the same steps.

request -> label source -> graph -> compute -> finish. The route (polygons, a
label raster, a ``ZonePlan``) decides only which label source the graph
reads; validation (``request.py``), the graph (``reduce/graph.py``), the final
step (``reduce/finalize.py``), the scheduler and the run's process state
(``run/process_state.py``) are the same for all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from dask.delayed import Delayed

from .errors import RasterError, source_name
from .io.features import finish, finish_lazily, read_features
from .io.python_inputs import array_raster, features_frame, is_feature_like
from .io.raster import ChunksLike, grid_chunks, is_label_raster
from .labels.inputs import Raster, Zones, grid_fields, label_source, route_of
from .labels.label_raster import label_array
from .labels.plan import ZonePlan
from .reduce.graph import zonal_graph
from .reduce.pixels import PixelSpec, pixel_frame
from .request import RasterKind, Request
from .run import scheduler
from .run.checkpoint import Checkpoint, run_identity
from .run.process_state import run_scope
from .run.progress import ProgressLike, reporter
from .run.reach import Reach
from .statistics.table import DEFAULT_STATS, StatsLike

# what the engine reads (labels/inputs.py), and what the API also takes
# (io/python_inputs.py)
ZonesLike: TypeAlias = Zones | gpd.GeoSeries | Mapping[str, Any] | Iterable[Any]
RasterLike: TypeAlias = Raster | np.ndarray


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
    zones_crs: Any = None,
    checkpoint: str | os.PathLike | None = None,
    include_cols: str | Sequence[str] | None = None,
    affine: Any = None,
    progress: ProgressLike = False,
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
        raster's CRS when the two differ. Or GeoJSON-like features (a
        FeatureCollection, a list of Features or geometries, objects with
        ``__geo_interface__`` such as shapely geometries), rows numbered from
        0, taken in the raster's CRS as rasterstats takes them. Or an integer
        label raster on the raster's grid (a DataArray, or a
        ``.tif``/``.tiff``/``.vrt`` path): each label value is a zone, its
        nodata is no zone, and the rows are the label values found, sorted,
        in a ``zone`` index.
        Or a ``ZonePlan`` (``zonal_dask.ZonePlan``): its stored labels are used
        for any raster on its grid, with its zone names, chunks and pixel rule.
    raster
        A path or GDAL-readable URL, opened lazily, or an xarray.DataArray
        (chunked or not) with a CRS and transform, or a NumPy array with
        ``affine``.
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
        Take the zones' coordinates as the raster's, whatever CRS either
        declares (as rasterstats does); zones or a raster without a CRS need
        it. Without it, a missing CRS is a ``CRSError``, and zones in another
        CRS are reprojected to the raster's.
    zones_crs
        The zones' true CRS (``"EPSG:32618"``, WKT, anything pyproj reads),
        replacing the one their file declares (a wrong ``.prj``).
    checkpoint
        A directory where each chunk's partial results are saved as they
        complete (on a cluster: a directory every worker can write). Running
        again with the same inputs and options computes only the chunks
        missing there; other inputs are refused with a ``CheckpointError``.
        The directory is kept after the run (the command line removes it once
        its output is written): ``zonal_dask.run.checkpoint.remove_checkpoint``
        removes it.
    include_cols
        Columns of the zones to put before the statistics (exactextract's
        ``include_cols``); with ``band=None``, coordinates along ``zone``.
    affine
        The transform of a NumPy array given as ``raster`` (rasterstats'
        ``affine``): an ``affine.Affine`` or its six coefficients. The array
        has no CRS: zones with one need ``assume_same_crs=True``.
    progress
        ``True`` draws a progress bar on standard error; a function is called
        with ``(fraction, message)`` as the tasks complete (exactextract's
        ``progress``), at most ten times a second and once at the end.

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
    zones, assume_same_crs, name = _adapt_zones(zones, assume_same_crs)
    if isinstance(raster, np.ndarray) and affine is not None:
        raster = array_raster(raster, affine)
        kind = "ndarray"
    else:
        kind = _raster_kind(raster)
    request = Request.build(
        route_of(zones),
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
        include_cols=include_cols,
        band=band,
        nodata=nodata,
        zone_id=zone_id,
        layer=layer,
        assume_same_crs=assume_same_crs,
        zones_crs=_crs_text(zones_crs),
        all_touched=all_touched,
        small=small,
        split_every=split_every,
        geometry=geometry,
        prefix=prefix,
        plan_all_touched=zones.all_touched if isinstance(zones, ZonePlan) else None,
        raster_kind=kind,
        affine=affine,
        progress=progress,
    )
    zones, raster = cast(Zones, zones), cast(Raster, raster)  # adapted above
    with run_scope():
        frame = carried = None
        if request.geometry or request.include_cols:
            columns = [f"{prefix or ''}{c.name}" for c in request.columns]
            frame = read_features(
                zones, columns, name, layer, request.include_cols, request.geometry
            )
        inputs = label_source(zones if frame is None else frame, raster, request, name)
        array, source = inputs.array, inputs.source
        if request.include_cols and not request.geometry:
            assert frame is not None
            carried, frame = pd.DataFrame(frame[list(request.include_cols)]), None
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
            grid=grid_fields(array),
            **_planes(array),
        )
        if not compute:
            if frame is None and carried is None and not prefix:
                return lazy
            return finish_lazily(lazy, frame, prefix, name, carried)
        table = scheduler.compute(
            lazy,
            report=reporter(request.progress),
            reach=worker_reach(zones, raster, request.weights, request.checkpoint),
            dtype=array.dtype,
        )
    return finish(table, frame, prefix, name, carried)


def worker_reach(
    zones: Any, raster: Any, weights: Any = None, checkpoint: Any = None
) -> Reach:
    """What the workers read (the rasters, a label raster) and where they
    write (a checkpoint): checked on a cluster before the graph is sent."""
    label_raster = zones if is_label_raster(zones) else None
    plan = zones.path if isinstance(zones, ZonePlan) else None
    return Reach.of([raster, weights, label_raster, plan], [checkpoint])


def request_for(
    zones: ZonesLike, stats: StatsLike = DEFAULT_STATS, **options: Any
) -> Request:
    """The validated ``Request`` of ``zonal_stats(zones, <a raster path>,
    stats, **options)``, reading nothing: the command line checks its options
    with it before it starts a scheduler."""
    options.pop("compute", None)
    return Request.build(route_of(zones), stats, **options)


def zonal_pixels(
    zones: ZonesLike,
    raster: Raster,
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
    zones_crs: Any = None,
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
    options["zones_crs"] = _crs_text(zones_crs)
    zones, options["assume_same_crs"], name = _adapt_zones(zones, assume_same_crs)
    request = Request.build(
        route_of(zones),
        ["count"],
        plan_all_touched=zones.all_touched if isinstance(zones, ZonePlan) else None,
        **options,
    )
    if band is None:
        raise RasterError("zonal_pixels: one band at a time (band=None is not offered)")
    with run_scope():
        inputs = label_source(cast(Zones, zones), raster, request, name)
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
    zones, assume_same_crs, name = _adapt_zones(zones, assume_same_crs)
    request = Request.build(
        "polygons",
        ["count"],
        chunks=chunks,
        band=band,
        zone_id=zone_id,
        layer=layer,
        assume_same_crs=assume_same_crs,
        zones_crs=_crs_text(zones_crs),
        all_touched=all_touched,
    )
    with run_scope():
        inputs = label_source(cast(Zones, zones), raster, request, name)
    labels = label_array(inputs.source, grid_chunks(inputs.array))
    array = inputs.array
    out = xr.DataArray(labels, dims=array.dims, coords=array.coords, name="zone")
    return out.rio.write_nodata(-1)


def _adapt_zones(zones: Any, assume_same_crs: bool) -> tuple[Any, bool, str]:
    """GeoJSON-like zones as a GeoDataFrame (taken in the raster's CRS when
    they declare none), whether to assume the CRS, and the zones' name."""
    if isinstance(zones, ZonePlan) or not is_feature_like(zones):
        return zones, assume_same_crs, source_name(zones)
    frame = features_frame(zones)
    return frame, assume_same_crs or frame.crs is None, "features"


def _raster_kind(raster: Any) -> RasterKind:
    if isinstance(raster, np.ndarray):
        return "ndarray"
    return "DataArray" if isinstance(raster, xr.DataArray) else "path"


def _crs_text(crs: Any) -> str | None:
    """A CRS option as text a request can hold (pyproj and rasterio CRSs
    become WKT); checked when the zones are read."""
    if crs is None or isinstance(crs, str):
        return crs
    to_wkt = getattr(crs, "to_wkt", None)
    return to_wkt() if callable(to_wkt) else str(crs)


def _planes(array: xr.DataArray) -> dict[str, Any]:
    """The extra dimension's name and coordinates, for a 3-D raster."""
    if array.ndim == 2:
        return {}
    dim = array.dims[0]
    coords = array[dim].to_numpy() if dim in array.coords else None
    return {"plane_dim": dim, "plane_coords": coords}
