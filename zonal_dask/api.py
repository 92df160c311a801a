"""``zonal_stats`` and ``rasterize_zones``: every route through the same steps.

request -> label source -> graph -> compute -> finish. The route (polygons, a
label raster, a ``ZonePlan``) decides only which label source the graph
reads; validation (``request.py``), the graph (``graph.py``), the final step
(``finalize.py``), the scheduler and the run's process state (``runtime.py``)
are the same for all.
"""

from __future__ import annotations

import os
from threading import Thread
from typing import Any, TypeAlias

import geopandas as gpd
import pandas as pd
import xarray as xr
from dask.delayed import Delayed

from . import cluster
from .checkpoint import Checkpoint, run_identity
from .chunktasks import plan_chunks
from .errors import source_name
from .features import finish, finish_lazily, read_features
from .graph import zonal_graph
from .labels import (
    LabelSource,
    coverage_source,
    label_array,
    label_raster_source,
    polygon_source,
    touched_fallback,
)
from .partials import warm_up
from .plan import ZonePlan
from .raster import (
    TARGET_CHUNK_PIXELS,
    ChunksLike,
    grid_chunks,
    is_label_raster,
    open_label_raster,
    open_raster,
    resolve_nodata,
)
from .request import Request, Route
from .runtime import run_scope
from .stats import DEFAULT_STATS, StatsLike
from .zones import POLYGONAL, require_types, zones_on_grid

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
    weights: str | None = None,
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
    weights
        ``"coverage"``: weight each pixel by the fraction of it the polygon
        covers, computed exactly by exactextract; ``count`` is then the sum of
        the fractions, ``sum`` the weighted sum, ``mean``, ``std`` and ``var``
        the weighted moments, as exactextract reports them.
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
        weights=weights,
        chunks=chunks,
        checkpoint=checkpoint,
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
    )
    name = source_name(zones)
    with run_scope():
        frame = None
        if request.geometry:
            columns = [f"{prefix or ''}{c.name}" for c in request.columns]
            frame = read_features(zones, columns, name, layer)
        array, source = label_source(
            zones if frame is None else frame, raster, request, name
        )
        wrap = None
        if request.checkpoint is not None:
            identity = run_identity(
                request.identity(), zones, raster, array, source.index, source.token
            )
            wrap = Checkpoint.open(request.checkpoint, identity).wrap
        lazy = zonal_graph(
            array.data,
            source,
            request.columns,
            resolve_nodata(request.nodata, array, source_name(raster)),
            split_every=request.split_every,
            wrap_chunk=wrap,
            **_planes(array),
        )
        if not compute:
            if frame is None and not prefix:
                return lazy
            return finish_lazily(lazy, frame, prefix, name)
        table = cluster.compute(lazy)
    return finish(table, frame, prefix, name)


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
        array, source = label_source(zones, raster, request, source_name(zones))
    labels = label_array(source, grid_chunks(array))
    out = xr.DataArray(labels, dims=array.dims, coords=array.coords, name="zone")
    return out.rio.write_nodata(-1)


def label_source(
    zones: ZonesLike, raster: RasterLike, request: Request, name: str
) -> tuple[xr.DataArray, LabelSource]:
    """Open the raster and give the zones' labels as a source, by route."""
    if isinstance(zones, ZonePlan):
        return zones.open(raster, request.band), zones.source()
    array = open_raster(
        raster, band=request.band, chunks=request.chunks, nodata=request.nodata
    )
    if request.route == "label raster":
        labels = open_label_raster(zones, like=array)
        return array, label_raster_source(labels.data, labels.rio.nodata)
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
        raster=source_name(raster),
    )
    tasks = plan_chunks(pixel.geometries, grid_chunks(array), pixel.orient)
    groups = pixel.groups(tasks, TARGET_CHUNK_PIXELS) if request.needs_values else None
    fields = {"outside": pixel.outside_fraction()} if request.needs_outside else {}
    if request.coverage is not None:
        require_types(
            pixel.geometries,
            name,
            POLYGONAL,
            "coverage weighting needs polygon zones (lines and points take the "
            "pixel-centre or all-touched rule)",
        )
        source = coverage_source(tasks, pixel.index, groups=groups, fields=fields)
    else:
        source = polygon_source(
            tasks, pixel.index, request.all_touched, groups=groups, fields=fields
        )
    if request.small == "touched":
        source = touched_fallback(source, tasks, len(pixel.index))
    return array, source


def _crs_text(crs: Any) -> str | None:
    """A CRS option as text a request can hold (pyproj and rasterio CRSs
    become WKT); checked when the zones are read."""
    if crs is None or isinstance(crs, str):
        return crs
    to_wkt = getattr(crs, "to_wkt", None)
    return to_wkt() if callable(to_wkt) else str(crs)


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
