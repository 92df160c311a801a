"""``zonal_stats``: validate the arguments, wire the stages, compute or not."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import dask
import geopandas as gpd
import pandas as pd
import xarray as xr
from dask.delayed import Delayed

from .checkpoint import Checkpoint
from .checks import check_crs, resolve_nodata
from .io import open_raster, read_zones
from .rasterize import (
    ChunkTask,
    label_array,
    orientation,
    plan_chunks,
    to_pixel_space,
)
from .reduce import zonal_graph
from .stats import DEFAULT_STATS, resolve
from .zones import Zones, prepare_zones

ZonesLike = str | os.PathLike | gpd.GeoDataFrame
RasterLike = str | os.PathLike | xr.DataArray


def zonal_stats(
    zones: ZonesLike,
    raster: RasterLike,
    stats: str | Iterable[str] = DEFAULT_STATS,
    *,
    band: int = 1,
    nodata: float | None = None,
    zone_id: str | None = None,
    chunks: int | tuple[int, int] | Mapping[str, int] | None = None,
    compute: bool = True,
    split_every: int = 8,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
    checkpoint: str | os.PathLike | None = None,
) -> pd.DataFrame | Delayed:
    """Statistics of the raster's pixels inside each zone.

    A pixel belongs to a zone when its centre lies inside the polygon (GDAL's
    default rule); a pixel inside several overlapping zones counts for each.
    Nodata and NaN pixels are left out; a zone with no valid pixel gets count 0
    and NaN for every other statistic.

    Parameters
    ----------
    zones
        Polygons: a path geopandas reads (Shapefile, GeoPackage, GeoJSON,
        FlatGeobuf, GeoParquet) or a GeoDataFrame. They are reprojected to the
        raster's CRS when the two differ.
    raster
        A path or GDAL-readable URL, opened lazily, or an xarray.DataArray
        (chunked or not) with a CRS and transform.
    stats
        Names from ``zonal_dask.stats.STATISTICS`` (``count min mean max std
        sum``), in the order of the output columns.
    band
        1-based band to summarise.
    nodata
        Value to treat as nodata instead of the raster's own.
    zone_id
        Column naming the rows (its values must be unique). By default the
        rows are named by the data source's FID, or a GeoDataFrame's index.
    chunks
        Raster chunk size in pixels (int, ``(rows, cols)`` or ``{"y", "x"}``).
        By default whole internal tiles, about 2048 x 2048 pixels.
    compute
        If False, return a ``dask.delayed.Delayed`` whose ``compute()`` (on any
        scheduler) gives the table.
    split_every
        How many partial results each merge task of the tree combines.
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
    pandas.DataFrame or dask.delayed.Delayed
        One row per input feature, in input order, one column per statistic.

    Examples
    --------
    >>> import zonal_dask as zd
    >>> df = zd.zonal_stats("borders.shp", "pop.tif")  # doctest: +SKIP
    >>> df = zd.zonal_stats(gdf, da, stats=["mean", "max"])  # doctest: +SKIP
    """
    statistics = resolve(stats)
    array, prepared, tasks = _plan(
        zones, raster, band, zone_id, chunks, layer, assume_same_crs
    )
    nodata = resolve_nodata(nodata, array, _name(raster))
    store = None
    if checkpoint is not None:
        options = {"band": band, "nodata": nodata, "zone_id": zone_id, "layer": layer}
        store = Checkpoint.open(
            checkpoint, zones, raster, array, prepared.index, tasks, statistics, options
        )
    lazy = zonal_graph(
        array.data,
        tasks,
        nodata,
        statistics,
        prepared.index,
        split_every=split_every,
        wrap_chunk=None if store is None else store.wrap,
    )
    if not compute:
        return lazy
    (table,) = dask.compute(lazy)
    return table


def rasterize_zones(
    zones: ZonesLike,
    raster: RasterLike,
    *,
    band: int = 1,
    zone_id: str | None = None,
    chunks: int | tuple[int, int] | Mapping[str, int] | None = None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
) -> xr.DataArray:
    """The zones as a lazy label raster on the raster's grid and chunks.

    Each pixel holds the 0-based position of its zone in the input (pixel-centre
    rule), or -1. Where zones overlap, a single label cannot say it all: the
    pixel holds the highest position, while ``zonal_stats`` counts the pixel for
    every zone. Parameters as in ``zonal_stats``.

    Returns
    -------
    xarray.DataArray
        int32, dims and coordinates of the raster band, dask-backed.
    """
    array, _, tasks = _plan(
        zones, raster, band, zone_id, chunks, layer, assume_same_crs
    )
    labels = label_array(tasks, array.chunks)
    out = xr.DataArray(labels, dims=array.dims, coords=array.coords, name="zone")
    return out.rio.write_nodata(-1)


def _plan(
    zones: ZonesLike,
    raster: RasterLike,
    band: int,
    zone_id: str | None,
    chunks: int | tuple[int, int] | Mapping[str, int] | None,
    layer: str | int | None = None,
    assume_same_crs: bool = False,
) -> tuple[xr.DataArray, Zones, list[ChunkTask]]:
    """Open the raster, prepare the zones and give each chunk its zones."""
    array = open_raster(raster, band=band, chunks=chunks)
    frame = read_zones(zones, layer)
    source = "GeoDataFrame" if isinstance(zones, gpd.GeoDataFrame) else os.fspath(zones)
    check_crs(
        frame.crs,
        array.rio.crs,
        zones=source,
        raster=_name(raster),
        assume_same_crs=assume_same_crs,
    )
    prepared = prepare_zones(frame, array.rio.crs, zone_id=zone_id, source=source)
    transform = array.rio.transform()
    pixel_geometries = to_pixel_space(prepared.geometries, transform)
    tasks = plan_chunks(pixel_geometries, array.chunks, orientation(transform))
    return array, prepared, tasks


def _name(raster: RasterLike) -> str:
    return "DataArray" if isinstance(raster, xr.DataArray) else os.fspath(raster)
