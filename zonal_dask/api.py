"""``zonal_stats``: validate the arguments, wire the stages, compute or not."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from threading import Thread
from typing import TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from dask.delayed import Delayed

from . import cluster
from .checkpoint import Checkpoint
from .checks import check_crs, resolve_nodata
from .errors import PlanError, StatisticError, ZonesError
from .geo import finish, finish_lazily, read_features
from .io import (
    TARGET_CHUNK_PIXELS,
    grid_chunks,
    is_label_raster,
    open_label_raster,
    open_raster,
    read_zones,
)
from .memory import freeze_gc_at_exit, gc_paused, release_freed_memory
from .plan import ZonePlan
from .rasterize import (
    ChunkTask,
    label_array,
    orientation,
    outside_fraction,
    overlap_layers,
    plan_chunks,
    to_pixel_space,
    zone_groups,
)
from .reduce import LabelSource, coverage_graph, warm_up, zonal_graph
from .stats import DEFAULT_STATS, STATISTICS, StatsLike, resolve
from .zones import prepare_zones

ZonesLike: TypeAlias = str | os.PathLike[str] | gpd.GeoDataFrame | xr.DataArray
RasterLike: TypeAlias = str | os.PathLike[str] | xr.DataArray
ChunksLike: TypeAlias = int | tuple[int, int] | Mapping[str, int] | None

freeze_gc_at_exit()
# outside_fraction costs an intersection per zone: computed only when asked.
OUTSIDE = STATISTICS["outside_fraction"].formula


@gc_paused()
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
        for any raster on its grid; ``zone_id`` and ``chunks`` are then the
        plan's.
    raster
        A path or GDAL-readable URL, opened lazily, or an xarray.DataArray
        (chunked or not) with a CRS and transform.
    stats
        Names from ``zonal_dask.STATISTICS`` or ``pNN`` percentiles, in the
        order of the output columns; or a mapping from column name to a
        statistic name or a function of a zone's valid values (1-D float64).
    band
        1-based band to summarise; None for every band of a multi-band file,
        or to keep a DataArray's extra dimension (time, say): the result is
        then an ``xarray.Dataset`` with dimensions (zone, band or time), and
        ``to_dataframe()`` gives the long table (not with ``categorical`` or
        ``small="touched"``).
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
        the name ``histogram`` among ``stats`` asks for the same.
    weights
        ``"coverage"``: weight each pixel by the fraction of it the polygon
        covers, computed exactly by exactextract; ``count`` is then the sum of
        the fractions, ``sum`` the weighted sum and ``mean`` their ratio (the
        only statistics available that way), as exactextract reports them.
    small
        What a polygon that holds no pixel centre gets: ``"nan"`` (count 0 and
        NaN, as rasterstats' None), or ``"touched"``: the pixels it touches, as
        with ``all_touched``, and a boolean ``small`` column marks those rows.
    chunks
        Raster chunk size in pixels (int, ``(rows, cols)`` or ``{"y", "x"}``).
        By default whole internal tiles, about 2048 x 2048 pixels.
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
    if isinstance(zones, ZonePlan):
        fixed = zone_id is not None or chunks is not None or layer is not None
        if fixed or weights or geometry or prefix or checkpoint is not None:
            raise PlanError(
                "zone_id, chunks and layer are fixed by the ZonePlan, and weights, "
                "geometry, prefix and checkpoint are not available with it"
            )
        if small != "nan" or all_touched != zones.all_touched:
            raise PlanError(
                f"the ZonePlan was made with all_touched={zones.all_touched} and "
                "small='nan'"
            )
        return zones.zonal_stats(
            raster,
            stats,
            band=band,
            nodata=nodata,
            categorical=categorical,
            compute=compute,
            split_every=split_every,
        )
    stats, categorical = _histogram(stats, categorical)
    statistics = resolve(stats)
    if small not in ("nan", "touched"):
        raise StatisticError(f"small must be 'nan' or 'touched', not {small!r}")
    if small == "touched" and (is_label_raster(zones) or weights or band is None):
        raise StatisticError(
            "small='touched' applies to polygons, one band, unweighted statistics"
        )
    source = "label raster" if is_label_raster(zones) else _source(zones)
    frame = None
    if geometry:
        if is_label_raster(zones) or band is None:
            raise ZonesError(
                f"{source}: geometry=True needs polygon zones and one band"
            )
        names = [f"{prefix or ''}{s.name}" for s in statistics]
        frame = read_features(zones, names, source, layer)
    if checkpoint is not None and (is_label_raster(zones) or weights or band is None):
        raise StatisticError(
            "checkpoint applies to polygons, one band, unweighted statistics"
        )
    if is_label_raster(zones):
        array = open_raster(raster, band=band, chunks=chunks)
        labels = open_label_raster(zones, like=array)
        lazy = zonal_graph(
            array.data,
            LabelSource.from_label_array(labels.data, labels.rio.nodata),
            resolve_nodata(nodata, array, _name(raster)),
            statistics,
            None,
            split_every=split_every,
            categorical=categorical,
            zone_groups=max(
                1, len(labels.data.chunks[-2]) * len(labels.data.chunks[-1])
            ),
            **_planes(array),
        )
    elif weights is not None:
        if weights != "coverage":
            raise StatisticError(f"unknown weights {weights!r}; use 'coverage'")
        plan = _plan(
            zones,
            raster,
            band,
            zone_id,
            chunks,
            frame=frame,
            layer=layer,
            assume_same_crs=assume_same_crs,
        )
        lazy = coverage_graph(
            plan.array.data,
            plan.tasks,
            resolve_nodata(nodata, plan.array, _name(raster)),
            statistics,
            plan.index,
            split_every=split_every,
        )
    else:
        plan = _plan(
            zones,
            raster,
            band,
            zone_id,
            chunks,
            all_touched,
            frame,
            layer=layer,
            assume_same_crs=assume_same_crs,
        )
        nodata = resolve_nodata(nodata, plan.array, _name(raster))
        store = None
        if checkpoint is not None:
            options = {
                "band": band,
                "nodata": nodata,
                "zone_id": zone_id,
                "layer": layer,
                "all_touched": all_touched,
                "small": small,
                "categorical": categorical,
            }
            store = Checkpoint.open(
                checkpoint,
                zones,
                raster,
                plan.array,
                plan.index,
                plan.tasks,
                statistics,
                options,
            )
        needs_values = any(s.kind == "values" for s in statistics)
        lazy = zonal_graph(
            plan.array.data,
            LabelSource.from_polygons(plan.tasks, all_touched, small),
            nodata,
            statistics,
            plan.index,
            split_every=split_every,
            wrap_chunk=None if store is None else store.wrap,
            outside=outside_fraction(plan.pixel_geometries, plan.shape, plan.orient)
            if any(s.formula is OUTSIDE for s in statistics)
            else None,
            categorical=categorical,
            zone_groups=plan.groups(TARGET_CHUNK_PIXELS) if needs_values else None,
            small=small,
            **_planes(plan.array),
        )
    if not compute:
        if frame is None and not prefix:
            return lazy
        return finish_lazily(lazy, frame, prefix, source)
    table = cluster.compute(lazy)
    return finish(table, frame, prefix, source)


def rasterize_zones(
    zones: ZonesLike,
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
    plan = _plan(
        zones,
        raster,
        band,
        zone_id,
        chunks,
        all_touched,
        layer=layer,
        assume_same_crs=assume_same_crs,
    )
    labels = label_array(plan.tasks, grid_chunks(plan.array), all_touched)
    dims, coords = plan.array.dims, plan.array.coords
    out = xr.DataArray(labels, dims=dims, coords=coords, name="zone")
    return out.rio.write_nodata(-1)


def _histogram(stats: StatsLike, categorical: bool) -> tuple[StatsLike, bool]:
    """``histogram`` among the names asks for the zone x class columns."""
    if isinstance(stats, Mapping):
        return stats, categorical
    names = stats.replace(",", " ").split() if isinstance(stats, str) else list(stats)
    if "histogram" not in names:
        return stats, categorical
    rest = [n for n in names if n != "histogram"]
    return rest or ["count"], True


def _planes(array: xr.DataArray) -> dict:
    """The extra dimension's name and coordinates, for a 3-D raster."""
    if array.ndim == 2:
        return {}
    dim = array.dims[0]
    coords = array[dim].to_numpy() if dim in array.coords else None
    return {"plane_dim": dim, "plane_coords": coords}


@dataclass(frozen=True)
class _Plan:
    array: xr.DataArray
    index: pd.Index
    pixel_geometries: np.ndarray
    orient: tuple[int, int]
    tasks: list[ChunkTask]

    @property
    def shape(self) -> tuple[int, int]:
        return self.array.shape[-2], self.array.shape[-1]

    def groups(self, target: int) -> np.ndarray:
        return zone_groups(
            self.pixel_geometries, self.tasks, self.shape, self.orient, target
        )


def _plan(
    zones: ZonesLike,
    raster: RasterLike,
    band: int | None,
    zone_id: str | None,
    chunks: ChunksLike,
    all_touched: bool = False,
    frame: gpd.GeoDataFrame | None = None,
    *,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
    global_layers: bool = False,
) -> _Plan:
    """Open the raster, prepare the zones and give each chunk its zones.

    ``frame`` is ``zones`` already read, so that a file is read only once.
    Overlap layers are chosen by each chunk's task unless ``global_layers``
    (a ``ZonePlan`` stores one layer count for all chunks).
    """
    array = open_raster(raster, band=band, chunks=chunks)
    Thread(target=warm_up, args=(array.dtype,), daemon=True).start()
    frame = read_zones(zones, layer) if frame is None else frame
    source = _source(zones)
    check_crs(
        frame.crs,
        array.rio.crs,
        zones=source,
        raster=_name(raster),
        assume_same_crs=assume_same_crs,
    )
    prepared = prepare_zones(frame, array.rio.crs, zone_id=zone_id, source=source)
    del frame  # only the pixel-space copy is needed from here: free the first
    transform = array.rio.transform()
    pixel_geometries = to_pixel_space(prepared.geometries, transform)
    orient = orientation(transform)
    layers = overlap_layers(pixel_geometries, all_touched) if global_layers else None
    tasks = plan_chunks(pixel_geometries, grid_chunks(array), orient, layers)
    index = prepared.index
    del prepared
    release_freed_memory()
    return _Plan(array, index, pixel_geometries, orient, tasks)


def _source(zones: ZonesLike) -> str:
    """How error messages name the zones."""
    if isinstance(zones, gpd.GeoDataFrame | xr.DataArray):
        return type(zones).__name__
    return os.fspath(zones)


def _name(raster: RasterLike) -> str:
    return "DataArray" if isinstance(raster, xr.DataArray) else os.fspath(raster)
