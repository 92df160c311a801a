"""A zone plan: the zones rasterized once, reused for every raster on one grid.

Time series and stacks of rasters on one grid are the common case. A
``ZonePlan`` holds, for each chunk of the grid, what ``labels.polygon_labels``
produces (``ChunkLabels``: local labels, the extra claims on pixels several
zones cover, the chunk's zone ids), as lazy tasks. ``save`` writes them to a
Zarr store (one chunk per raster chunk, written by the workers), ``load`` reads
the store back, and ``zonal_stats(plan, raster)`` reads each chunk's labels
(the plan's ``source()``) instead of rasterizing, for any raster with the
plan's shape, transform and CRS. Overlap claims are stored exactly, so the
statistics equal the direct call's, bit for bit.

Store layout (Zarr group): ``labels`` int32 (layers, rows, cols), per overlap
layer the chunk-local zone index of singly claimed pixels or -1, chunked as the
raster (a chunk with fewer layers leaves the rest -1); for the chunks some zone
meets, in order, ``blocks`` (n, 2), and the per-chunk pieces concatenated with
their start offsets: ``zones``/``zone_start`` (global zone index of each local
index), ``extra_pixels``/``extra_zones``/``extra_start`` (flat pixel index in
the chunk, local zone index); per zone, ``outside`` (the share of its area
beyond the grid) and ``groups`` (its value group); attributes hold the grid,
the pixel rule and the zone index.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from rasterio.crs import CRS

from ..burn.rules import overlap_layers
from ..errors import GridError, PlanError, source_name
from ..io.raster import TARGET_CHUNK_PIXELS, ChunksLike, Grid, grid_chunks, open_raster
from ..zones.read import zones_on_grid
from .chunk_tasks import plan_chunks
from .sources import (
    ChunkLabels,
    ChunkTask,
    LabelSource,
    persisted,
    polygon_source,
)

FORMAT = "zonal_dask.ZonePlan"
VERSION = 1


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
    zone_id
        Column naming the rows, as for ``zonal_stats``.
    chunks
        Chunk size in pixels, as for ``zonal_stats``; every raster summarised
        with the plan is read in these chunks.
    all_touched
        The pixel rule, as for ``zonal_stats``; fixed for the plan.
    assume_same_crs, zones_crs
        How to take the zones' coordinates, as for ``zonal_stats``.

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
    all_touched: bool

    def __init__(
        self,
        zones: Any,
        like: Any,
        *,
        band: int = 1,
        zone_id: str | None = None,
        chunks: ChunksLike = None,
        all_touched: bool = False,
        assume_same_crs: bool = False,
        zones_crs: Any = None,
    ) -> None:
        array = open_raster(like, band=band, chunks=chunks)
        pixel = zones_on_grid(
            zones,
            array,
            zone_id=zone_id,
            assume_same_crs=assume_same_crs,
            zones_crs=zones_crs,
            source=source_name(zones),
            raster=source_name(like),
        )
        # one layer count for every chunk: the store holds one labels array
        layers = overlap_layers(pixel.geometries, all_touched)
        tasks = plan_chunks(pixel.arrays, grid_chunks(array), pixel.orient, layers)
        self._init(
            Grid.of(array),
            polygon_source(
                tasks,
                pixel.index,
                all_touched,
                groups=pixel.groups(tasks, TARGET_CHUNK_PIXELS),
                fields={"outside": pixel.outside_fraction()},
            ),
            tasks,
            None,
            all_touched=all_touched,
            layers=max((len(np.unique(layers[t.zones])) for t in tasks), default=1),
        )

    def _init(
        self,
        grid: Grid,
        source: LabelSource,
        tasks: Sequence[ChunkTask],
        path: str | None,
        *,
        all_touched: bool,
        layers: int,
    ) -> None:
        self.grid, self.path = grid, path
        self.all_touched, self.layers = all_touched, layers
        # the grid places only: stored plans keep no geometries
        self._tasks = [_placeholder(t) for t in tasks]
        self._source = source

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

    def open(self, raster: Any, band: int | None = 1) -> xr.DataArray:
        """Open ``raster`` in the plan's chunks.

        Raises
        ------
        GridError
            When the raster is not on the plan's grid.
        """
        array = open_raster(raster, band=band, chunks=self.grid.chunk_size)
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

        path = os.fspath(path)
        if os.path.exists(path):
            if not overwrite:
                raise PlanError(f"{path}: exists (pass overwrite=True to replace it)")
            shutil.rmtree(path)
        if any(len(set(axis[:-1])) > 1 for axis in self.grid.chunks):
            raise PlanError(
                f"{path}: a plan with irregular chunks cannot be saved; "
                f"build it with chunks="
            )
        group = zarr.open_group(path, mode="w")
        _create(
            group,
            "labels",
            shape=(self.layers, *self.grid.shape),
            dtype="int32",
            chunks=(self.layers, *self.grid.chunk_size),
            fill_value=-1,
        )
        name = f"zonal-plan-save-{tokenize(self._source.token, path)}"
        dsk = {
            (name, *t.block): (
                _write_chunk,
                self._source.tasks[t.block],
                path,
                t.offset,
            )
            for t in self._tasks
        }
        graph = HighLevelGraph.from_collections(
            name, dsk, dependencies=list(self._source.dependencies)
        )
        pieces = dask.compute(
            *[Delayed((name, *t.block), graph, layer=name) for t in self._tasks]
        )
        _write_pieces(group, self._tasks, pieces)
        outside = self._source.fields["outside"]
        _create(group, "outside", data=np.asarray(outside, np.float64))
        assert self._source.groups is not None  # a plan's zones are grouped
        _create(group, "groups", data=np.asarray(self._source.groups, np.int64))
        group.attrs.update(self._attributes())
        self.path = path
        self._source = _stored(path, self._tasks, self._source)
        return self

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
            "all_touched": self.all_touched,
            "layers": self.layers,
            "index": {
                "name": self.index.name,
                "dtype": str(self.index.dtype),
                "values": self.index.tolist(),
            },
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> ZonePlan:
        """Open a plan written by ``save`` (lazily: chunks are read when used)."""
        import zarr

        path = os.fspath(path)
        if not os.path.exists(path) and "://" not in path:
            raise PlanError(f"{path}: no such zone plan")
        try:
            group = zarr.open_group(path, mode="r")
            attrs = dict(group.attrs)
        except Exception as err:  # zarr raises several types for non-stores
            raise PlanError(f"{path}: not a zone plan ({err})") from None
        if attrs.get("format") != FORMAT:
            raise PlanError(f"{path}: not a zone plan (no {FORMAT} attributes)")
        if attrs.get("version") != VERSION:
            raise PlanError(
                f"{path}: zone plan version {attrs.get('version')}, "
                f"this zonal_dask reads version {VERSION}"
            )
        rows, cols = attrs["chunks"]
        chunks = (tuple(int(c) for c in rows), tuple(int(c) for c in cols))
        grid = Grid(
            shape=(int(attrs["shape"][0]), int(attrs["shape"][1])),
            transform=Affine(*attrs["transform"]),
            crs=None if attrs["crs"] is None else CRS.from_wkt(attrs["crs"]),
            chunks=chunks,
        )
        spec = attrs["index"]
        index = pd.Index(spec["values"], dtype=spec["dtype"], name=spec["name"])
        orient = tuple(attrs["orientation"])
        row_edges, col_edges = np.cumsum((0, *chunks[0])), np.cumsum((0, *chunks[1]))
        tasks = [
            ChunkTask(
                block=(i, j),
                offset=(int(row_edges[i]), int(col_edges[j])),
                shape=(chunks[0][i], chunks[1][j]),
                zones=np.empty(0, np.int64),
                arrays=None,
                orientation=orient,
                layers=np.empty(0, np.int64),
            )
            for i, j in (tuple(int(v) for v in b) for b in group["blocks"][:])
        ]
        zones, starts = group["zones"][:], group["zone_start"][:]
        source = LabelSource(
            tasks={},
            zones={
                t.block: np.asarray(zones[starts[k] : starts[k + 1]], np.int64)
                for k, t in enumerate(tasks)
            },
            index=index,
            token=attrs["token"],  # the burnt labels' token, as saved
            groups=np.asarray(group["groups"][:], np.int64),
            fields={"outside": np.asarray(group["outside"][:], np.float64)},
        )
        plan = cls.__new__(cls)
        plan._init(
            grid,
            _stored(path, tasks, source),
            tasks,
            path,
            all_touched=bool(attrs["all_touched"]),
            layers=int(attrs["layers"]),
        )
        return plan


def _placeholder(t: ChunkTask) -> ChunkTask:
    return ChunkTask(
        t.block,
        t.offset,
        t.shape,
        np.empty(0, np.int64),
        None,
        t.orientation,
        np.empty(0, np.int64),
    )


def _stored(path: str, tasks: Sequence[ChunkTask], source: LabelSource) -> LabelSource:
    """``source`` with its labels read from the Zarr store, a read task per chunk."""
    return replace(
        source,
        token=tokenize(source.token, "stored"),
        tasks={
            t.block: (read_chunk, path, k, t.offset, t.shape)
            for k, t in enumerate(tasks)
        },
        dependencies=(),
    )


def _create(group: Any, name: str, **kwargs: Any) -> Any:
    # zarr 3 names it create_array, zarr 2 create_dataset
    create = getattr(group, "create_array", None) or group.create_dataset
    return create(name, **kwargs)


def _write_chunk(
    labels: ChunkLabels, path: str, offset: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write one chunk's label block; return its small variable-size pieces."""
    import zarr

    layers, rows, cols = labels.labels.shape
    store = zarr.open_group(path, mode="r+")["labels"]
    r0, c0 = offset
    store[:layers, r0 : r0 + rows, c0 : c0 + cols] = labels.labels
    return labels.zones, labels.extra_pixels, labels.extra_zones


def _write_pieces(
    group: Any,
    tasks: Sequence[ChunkTask],
    pieces: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    blocks = np.array([t.block for t in tasks], np.int64).reshape(-1, 2)
    columns: dict[str, list[np.ndarray]] = {
        "zones": [np.asarray(p[0], np.int64) for p in pieces],
        "extra_pixels": [np.asarray(p[1], np.int64) for p in pieces],
        "extra_zones": [np.asarray(p[2], np.int32) for p in pieces],
    }
    arrays: dict[str, np.ndarray] = {"blocks": blocks}
    for field, parts in columns.items():
        arrays[field] = np.concatenate(parts) if parts else np.empty(0, np.int64)
    for start, field in (("zone_start", "zones"), ("extra_start", "extra_pixels")):
        arrays[start] = np.cumsum(
            [0, *(len(p) for p in columns[field])], dtype=np.int64
        )
    for name, data in arrays.items():
        _create(group, name, data=data, chunks=(max(1, len(data)), *data.shape[1:]))


def read_chunk(
    path: str, k: int, offset: tuple[int, int], shape: tuple[int, int]
) -> ChunkLabels:
    """The ``ChunkLabels`` of the ``k``-th stored chunk (at ``offset``)."""
    import zarr

    group = zarr.open_group(path, mode="r")
    r0, c0 = offset
    labels = group["labels"][:, r0 : r0 + shape[0], c0 : c0 + shape[1]]
    z0, z1 = (int(v) for v in group["zone_start"][k : k + 2])
    e0, e1 = (int(v) for v in group["extra_start"][k : k + 2])
    return ChunkLabels(
        np.ascontiguousarray(labels, dtype=np.int32),
        np.asarray(group["extra_pixels"][e0:e1], np.int64),
        np.asarray(group["extra_zones"][e0:e1], np.int32),
        np.asarray(group["zones"][z0:z1], np.int64),
    )
