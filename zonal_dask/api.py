"""``zonal_stats``: every route through the same steps.

request -> label source -> graph -> compute -> finish. The route (polygons, a
label raster, a ``ZonePlan``) decides only which label source the graph
reads; validation (``request.py``), the graph (``reduce/graph.py``), the final
step (``reduce/finalize.py``), the scheduler and the run's process state
(``run/process_state.py``) are the same for all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from .statistics.table import DEFAULT_STATS
from .zones.read_ahead import reading_ahead

# The engine (GeoPandas, dask, xarray, rasterio, numba) is imported inside
# the functions: ``zonal_stats`` starts reading the zones first, so that the
# read overlaps those imports (``zones.read_ahead``).
if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import xarray as xr
    from dask.delayed import Delayed

    from .io.grid import ChunksLike
    from .labels.inputs import Raster, Zones
    from .request import RasterKind, Request
    from .run.progress import ProgressLike
    from .statistics.names import StatsLike
    from .zones_as_data import ZonesLike, rasterize_zones, zonal_pixels

    # what the engine reads (labels/inputs.py), and what the API also takes
    # (io/python_inputs.py)
    RasterLike: TypeAlias = Raster | np.ndarray
    # what zonal_stats hands on to each raster's call besides its options
    WeightsLike: TypeAlias = str | os.PathLike[str] | xr.DataArray

__all__ = ["rasterize_zones", "request_for", "zonal_pixels", "zonal_stats"]

_GIVEN = ("zones", "raster", "stats")


def zonal_stats(
    zones: ZonesLike,
    raster: RasterLike | Sequence[RasterLike],
    stats: StatsLike = DEFAULT_STATS,
    *,
    band: int | None = 1,
    nodata: float | None = None,
    raw: bool = False,
    zone_id: str | None = None,
    all_touched: bool = False,
    categorical: bool = False,
    coverage: str | None = None,
    weights: WeightsLike | Sequence[WeightsLike] | None = None,
    default_value: float | None = None,
    default_weight: float | None = None,
    min_coverage_frac: float | None = None,
    grid_compat_tol: float | None = None,
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
    gdal_options: Mapping[str, Any] | None = None,
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
        ``affine``. A list of them is exactextract's list of rasters: each
        raster's statistics in columns ``{name}_{statistic}`` (the file's
        name without extension, a DataArray's ``name``; with ``band=None``
        each band, ``{name}_band_{i}``), statistic by statistic, one run per
        raster; a time series is ``zonal_series``'s.
    stats
        Names from ``zonal_dask.STATISTICS`` (or their aliases) and quantiles
        (``p90``, ``percentile_90``, ``quantile(q=0.9)``), in the order of the
        output columns; or a mapping from column name to a statistic name or a
        function of a zone's valid values (1-D float64), or of ``(values,
        coverage)`` or ``(values, coverage, weights)`` (exactextract's custom
        operations: each cell's value, weight and weights raster's value, in
        ascending value order; any result; in a list, named by its name). exactextract's
        ``"total=sum"`` names a column, and its operation arguments
        (``"mean(coverage_weight=none)"``) set the call's options when every
        operation carries the same.
    band
        1-based band to summarise; None for every band of a multi-band file,
        or to keep a DataArray's extra dimension (time, say): the result is
        then an ``xarray.Dataset`` with dimensions (zone, band or time), and
        ``to_dataframe()`` gives the long table.
    nodata
        Value to treat as nodata instead of the raster's own (a stored value,
        before any scale and offset).
    raw
        Summarise the stored values of a raster declaring a scale or an offset
        (GDAL's metadata; a DataArray's ``scale_factor``/``add_offset``
        attributes). By default they are applied as exactextract, GDAL and
        rioxarray's ``mask_and_scale`` do: ``stored * scale + offset``, in
        float64, the weights raster's too.
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
        ``coverage="fraction"`` (the older spelling). A list pairs with the
        rasters band to band as exactextract's (one weights raster for every
        raster, one raster with every weights raster, or as many of each):
        weighted statistics' columns are ``{raster}_{weights}_{statistic}``.
    default_value
        The value of nodata and NaN pixels, which then count, instead of being
        left out. NaN (float rasters only) counts them as NaN values, as
        exactextract: their zones' sum, mean and moments are NaN, min and max
        those of the other values; order and class statistics are refused.
    default_weight
        The weight of pixels whose weight is nodata, NaN or beyond the weights
        raster. Without it, such a pixel makes its zone's weighted statistics
        NaN (as exactextract).
    min_coverage_frac
        With coverage weighting, pixels covered less than this fraction (0 to
        1) do not count.
    grid_compat_tol
        With a weights raster on another grid: how far (a share of the finer
        cell) the cell sizes may be from whole multiples of each other and the
        origins from whole cells apart, as exactextract's ``grid_compat_tol``
        (None: its default, 0.001).
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
    gdal_options
        GDAL and AWS configuration options for this run (``{"AWS_REGION":
        "eu-west-1", "GDAL_HTTP_MAX_RETRY": 3}``), as ``rasterio.Env(**options)``
        or GDAL's ``--config KEY VALUE``: given to GDAL on this machine and on
        every worker of a cluster while the run lasts, and removed after
        (``docs/deployment.md``). A lazy result (``compute=False``) computed
        later needs them in a ``rasterio.Env`` where it is computed.
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
    given = dict(locals())
    # the zones read on a thread while the engine is imported, the raster
    # and the kernels opened
    with reading_ahead(zones, layer):
        import numpy as np

        from .io.python_inputs import array_raster
        from .labels.inputs import route_of
        from .labels.plan import ZonePlan
        from .raster_list import is_several, zonal_stats_of_each
        from .request import Request
        from .run.process_state import options_given
        from .run_request import run_request
        from .zones.reproject import crs_text
        from .zones_as_data import adapt_zones

        if is_several(raster, weights):  # exactextract's lists: columns per raster
            options = {k: v for k, v in given.items() if k not in _GIVEN}
            return zonal_stats_of_each(zonal_stats, zones, raster, stats, options)
        zones, assume_same_crs, name = adapt_zones(zones, assume_same_crs)
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
            grid_compat_tol=grid_compat_tol,
            group_by=group_by,
            chunks=chunks,
            checkpoint=checkpoint,
            include_cols=include_cols,
            gdal_options=gdal_options,
            band=band,
            nodata=nodata,
            raw=raw,
            zone_id=zone_id,
            layer=layer,
            assume_same_crs=assume_same_crs,
            zones_crs=crs_text(zones_crs),
            all_touched=all_touched,
            small=small,
            split_every=split_every,
            geometry=geometry,
            prefix=prefix,
            plan=zones.options if isinstance(zones, ZonePlan) else None,
            raster_kind=kind,
            affine=affine,
            progress=progress,
        )
        zones, raster = cast("Zones", zones), cast("Raster", raster)  # adapted
        with options_given(request.gdal_options):
            return run_request(request, zones, raster, name, compute)


def request_for(
    zones: ZonesLike, stats: StatsLike = DEFAULT_STATS, **options: Any
) -> Request:
    """The validated ``Request`` of ``zonal_stats(zones, <a raster path>,
    stats, **options)``, reading nothing: the command line checks its options
    with it before it starts a scheduler."""
    from .labels.inputs import route_of
    from .request import Request

    options.pop("compute", None)
    return Request.build(route_of(zones), stats, **options)


def _raster_kind(raster: Any) -> RasterKind:
    import numpy as np
    import xarray as xr

    if isinstance(raster, np.ndarray):
        return "ndarray"
    return "DataArray" if isinstance(raster, xr.DataArray) else "path"


def __getattr__(name: str) -> Any:
    # the API's other entry points, from the engine's modules when first used
    if name in ("rasterize_zones", "zonal_pixels"):
        from . import zones_as_data

        return getattr(zones_as_data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
