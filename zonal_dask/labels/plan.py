"""A zone plan: the zones rasterized once, reused for every raster on one grid.

Time series and stacks of rasters on one grid are the common case. A
``ZonePlan`` is the label source a direct ``zonal_stats`` call would build
(``labels/build.py``, the same builder, with the same options: ``zone_id``,
``layer``, ``all_touched``, ``coverage``, ``group_by``, ``small``...), kept.
``save`` writes each chunk's ``ChunkLabels`` to a Zarr store (written by the
workers), ``load`` reads the store back, and ``zonal_stats(plan, raster)``
reads each chunk's labels (the plan's ``source()``) instead of rasterizing,
for any raster with the plan's shape, transform and CRS. An unsaved plan gives
the direct call's table bit for bit; a stored one too, unless a chunk was
burnt in pieces (overlaps many layers deep), whose partials the direct call
merges while the store holds them as one: equal then to rounding.

The store's layout: ``labels/plan_store.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..errors import GridError, PlanError, source_name
from ..io.grid import ChunksLike, Grid
from ..io.location import locate, storage_options
from ..io.raster import open_raster
from ..request import Request
from ..run.process_state import options_given, planning
from ..run.reach import Reach
from ..run.scheduler import compute
from ..zones.reproject import crs_text
from .build import LABEL_OPTIONS, build_labels
from .plan_store import (
    FORMAT,
    VERSION,
    create,
    placeholder,
    read_store,
    stored,
    write_chunk,
    write_pieces,
)
from .sources import ChunkTask, LabelSource, persisted


class ZonePlan:
    """Zones rasterized once on a raster's grid, reusable for any raster on it.

    Parameters
    ----------
    zones
        Polygons: a path or a GeoDataFrame, as for ``zonal_stats``.
    like
        A raster (path, URL or DataArray) whose grid (shape, transform, CRS)
        the plan is made for; its pixels are not read.
    band
        1-based band of ``like`` (only its grid matters).
    chunks
        Chunk size in pixels, as for ``zonal_stats``; every raster summarised
        with the plan is read in these chunks.
    zone_id, layer, all_touched, coverage, min_coverage_frac, group_by, small,
    assume_same_crs, zones_crs
        Which pixels each zone claims, and how the zones are named and read,
        as for ``zonal_stats``; fixed for the plan (``options``): a call using
        the plan may leave them out or repeat them, not change them.
    gdal_options
        GDAL and AWS options for opening ``like``, as for ``zonal_stats``
        (not kept: each call using the plan gives its own).

    Notes
    -----
    Building a plan reads the zones and indexes them; the rasterization itself
    is lazy. ``save`` runs it once, chunk by chunk on the current scheduler,
    and later calls read the store; ``persist`` keeps the labels in the
    cluster's memory instead. An unsaved, unpersisted plan rasterizes within
    each ``zonal_stats`` call, like the direct call.

    Examples
    --------
    >>> plan = zd.ZonePlan("borders.gpkg", like="2024-01.tif")  # doctest: +SKIP
    >>> plan.save("borders.plan.zarr")  # doctest: +SKIP
    >>> tables = [zd.zonal_stats(plan, f) for f in rasters]  # doctest: +SKIP
    """

    grid: Grid
    path: str | None
    options: dict[str, Any]

    def __init__(
        self,
        zones: Any,
        like: Any,
        *,
        band: int = 1,
        chunks: ChunksLike = None,
        zone_id: str | None = None,
        layer: str | int | None = None,
        all_touched: bool = False,
        coverage: str | None = None,
        min_coverage_frac: float | None = None,
        group_by: str | None = None,
        small: str = "nan",
        assume_same_crs: bool = False,
        zones_crs: Any = None,
        gdal_options: Mapping[str, Any] | None = None,
    ) -> None:
        request = Request.build(
            "polygons",
            ["count"],  # what it checks of the options; statistics come later
            band=band,
            chunks=chunks,
            zone_id=zone_id,
            layer=layer,
            all_touched=all_touched,
            coverage=coverage,
            min_coverage_frac=min_coverage_frac,
            group_by=group_by,
            small=small,
            assume_same_crs=assume_same_crs,
            zones_crs=crs_text(zones_crs),
            gdal_options=gdal_options,
        )
        with options_given(request.gdal_options), planning():
            array = open_raster(like, band=band, chunks=request.chunks)
            built = build_labels(
                zones,
                array,
                request,
                source_name(zones),
                source_name(like),
                every_field=True,
            )
        self._init(
            Grid.of(array),
            built.source,
            built.tasks,
            None,
            {k: getattr(request, k) for k in LABEL_OPTIONS},
        )

    def _init(
        self,
        grid: Grid,
        source: LabelSource,
        tasks: Sequence[ChunkTask],
        path: str | None,
        options: dict[str, Any],
    ) -> None:
        self.grid, self.path, self.options = grid, path, options
        # the grid places only: stored plans keep no geometries
        self._tasks = [placeholder(t) for t in tasks]
        self._source = source

    @property
    def all_touched(self) -> bool:
        """The pixel rule the plan was made with."""
        return bool(self.options["all_touched"])

    @property
    def index(self) -> pd.Index:
        """The names of the zones, in input order."""
        assert self._source.index is not None  # a plan's zones are polygons
        return self._source.index

    def __repr__(self) -> str:
        where = f"stored in {self.path}" if self.path else "in memory"
        return (
            f"<ZonePlan {len(self.index)} zones on a {self.grid.shape[0]}x"
            f"{self.grid.shape[1]} grid, {len(self._tasks)} chunks with zones, "
            f"{where}>"
        )

    # -- using the plan -----------------------------------------------------

    def source(self) -> LabelSource:
        """The plan's labels, for the graph: stored, persisted or burnt."""
        return self._source

    def open(
        self,
        raster: Any,
        band: int | None = 1,
        *,
        nodata: float | None = None,
        raw: bool = False,
    ) -> xr.DataArray:
        """Open ``raster`` in the plan's chunks (``nodata`` and ``raw`` as
        ``open_raster`` takes them).

        Raises
        ------
        GridError
            When the raster is not on the plan's grid.
        """
        array = open_raster(
            raster, band=band, chunks=self.grid.chunk_size, nodata=nodata, raw=raw
        )
        differences = self.grid.differences(Grid.of(array))
        if differences:
            raise GridError(
                f"{source_name(raster)}: not on the zone plan's grid: "
                + "; ".join(differences)
            )
        return array

    def persist(self) -> ZonePlan:
        """Rasterize now on the current scheduler and keep the labels there.

        On a ``distributed.Client`` the labels stay in the workers' memory (a
        label chunk is 4 bytes per pixel); locally they stay in this process.
        Returns the plan itself.
        """
        self._source = persisted(
            self._source, f"zonal-plan-labels-{self._source.token}"
        )
        return self

    # -- storing the plan ---------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> ZonePlan:
        """Write the plan to a Zarr store; later uses of this plan read it.

        The chunks are rasterized and written by the current scheduler's
        workers, each its own chunk of ``labels``, so on a cluster ``path``
        must be storage every worker sees. Returns the plan itself.
        """
        import zarr

        where = locate(path)  # the workers write it: absolute, or a URL
        path = where.url
        if where.fs.exists(where.fs_path):
            if not overwrite:
                raise PlanError(f"{path}: exists (pass overwrite=True to replace it)")
            where.fs.rm(where.fs_path, recursive=True)
        if any(len(set(axis[:-1])) > 1 for axis in self.grid.chunks):
            raise PlanError(
                f"{path}: a plan with irregular chunks cannot be saved; "
                f"build it with chunks="
            )
        group = zarr.open_group(
            path, mode="w", storage_options=storage_options(path) or None
        )
        create(
            group,
            "labels",
            shape=(1, *self.grid.shape),
            dtype="int32",
            chunks=(1, *self.grid.chunk_size),
            fill_value=-1,
        )
        name = f"zonal-plan-save-{tokenize(self._source.token, path)}"
        dsk = {
            (name, *t.block): (
                write_chunk,
                self._source.tasks[t.block],
                path,
                t.offset,
                self._listed(t.block),
            )
            for t in self._tasks
        }
        graph = HighLevelGraph.from_collections(
            name, dsk, dependencies=list(self._source.dependencies)
        )
        chunks = [Delayed((name, *t.block), graph, layer=name) for t in self._tasks]
        pieces = compute(dask.delayed(list)(chunks), reach=Reach(writes=(where,)))
        write_pieces(group, self._tasks, pieces)
        if "outside" in self._source.fields:
            outside = self._source.fields["outside"]
            create(group, "outside", data=np.asarray(outside, np.float64))
        assert self._source.groups is not None  # a plan's zones are grouped
        create(group, "groups", data=np.asarray(self._source.groups, np.int64))
        group.attrs.update(self._attributes())
        self.path = path
        self._source = stored(path, self._tasks, self._source)
        return self

    def _listed(self, block: tuple[int, int]) -> np.ndarray:
        assert self._source.zones is not None  # a plan's zones are known
        return np.asarray(self._source.zones[block], np.int64)

    def _attributes(self) -> dict[str, Any]:
        grid = self.grid
        return {
            "format": FORMAT,
            "version": VERSION,
            "token": self._source.token,
            "shape": list(grid.shape),
            "transform": list(tuple(grid.transform)[:6]),
            "crs": None if grid.crs is None else grid.crs.to_wkt(),
            "chunks": [list(axis) for axis in grid.chunks],
            "orientation": list(self._tasks[0].orientation) if self._tasks else [1, -1],
            "options": self.options,
            "weighted": self._source.weighted,
            "fallback": self._source.fallback,
            "index": {
                "name": self.index.name,
                "dtype": str(self.index.dtype),
                "values": self.index.tolist(),
            },
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> ZonePlan:
        """Open a plan written by ``save`` (lazily: chunks are read when used)."""
        path = locate(path).url  # the workers read it: absolute, or a URL
        grid, source, tasks, options = read_store(path)
        plan = cls.__new__(cls)
        plan._init(grid, source, tasks, path, options)
        return plan
