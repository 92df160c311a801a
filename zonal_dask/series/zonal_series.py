"""``zonal_series``: the same zones over many time steps, through the one engine.

request -> series (``series/steps.py``) -> one label source per grid, its labels
made once and kept (the implicit zone plan) -> the steps in batches, each
batch one ``graph.zonal_graph`` over a ``(steps, y, x)`` array whose planes
share each chunk's labels -> a batch of the cube (``series/cube.py``) -> staged in
the output, committed at the end (``series/cube_store.py``).

A batch holds as many steps as keep the graph under about ``MAX_CHUNKS``
chunk tasks and the batch's table under ``BATCH_BYTES``, so memory follows
the chunks and the batch, never the number of steps.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import xarray as xr

from ..errors import GridError, StatisticError, source_name
from ..io.features import name_columns
from ..io.raster import MAX_CHUNKS, resolve_nodata
from ..labels.inputs import grid_fields, route_of
from ..labels.plan import ZonePlan
from ..labels.sources import LabelSource, persisted
from ..reduce.graph import zonal_graph
from ..reduce.moments import Moments
from ..request import Request
from ..run import scheduler
from ..run.process_state import run_scope
from ..run.progress import ProgressLike, Report, reporter
from ..statistics.table import DEFAULT_STATS, StatsLike
from ..zones.read import read_zones
from .cube import (
    FORMAT,
    IDENTITY,
    PLANE,
    VERSION,
    Zones,
    batch_cube,
    concat,
    with_zones,
    zones_identity,
)
from .cube_store import Output
from .open import open_series
from .steps import Series

# A batch's dense table (zones x steps x columns, float64, and the moment
# fields beside it) stays about under this.
BATCH_BYTES = 256 * 2**20


# The options of ``zonal_stats`` a series takes, with the same meaning.
OPTIONS = (
    "band",
    "nodata",
    "zone_id",
    "all_touched",
    "categorical",
    "weights",
    "small",
    "chunks",
    "split_every",
    "prefix",
    "layer",
    "assume_same_crs",
    "zones_crs",
)


def zonal_series(
    zones: Any,
    series: Any,
    stats: StatsLike = DEFAULT_STATS,
    *,
    time_pattern: str | None = None,
    asset: str | None = None,
    variables: Sequence[str] | None = None,
    plan_per_grid: bool = False,
    output: str | os.PathLike[str] | None = None,
    append: bool = False,
    overwrite: bool = False,
    geometry: bool = False,
    batch: int | None = None,
    progress: ProgressLike = False,
    **options: Any,
) -> xr.Dataset | list:
    """Statistics of each zone at each time step: a vector data cube.

    The zones are rasterized once per grid and their labels kept for every
    step (an implicit zone plan); the steps are read by the workers, a batch
    at a time. Every statistic and pixel rule of ``zonal_stats`` works per
    step.

    Parameters
    ----------
    zones
        As for ``zonal_stats``: polygons (path or GeoDataFrame), a label
        raster, or a ``ZonePlan`` (its stored labels are used; steps must be on
        its grid).
    series
        The time steps: a list of raster paths or URLs or a glob; STAC items
        (a ``pystac`` ItemCollection, Catalog or Collection, or its JSON path)
        with ``asset``; an ``xarray`` DataArray or Dataset with a time
        dimension, or a ``.zarr`` / ``.nc`` path.
    stats
        As for ``zonal_stats``.
    time_pattern
        ``strftime`` codes finding each file's time in its name
        (``"%Y-%m-%d"``); without it, a file's time is its position.
    asset
        The STAC asset to read from each item.
    variables
        The Dataset's variables to summarise (default: every variable with a
        time and two spatial dimensions); with several, columns are named
        ``{variable}_{statistic}``.
    plan_per_grid
        Accept steps on different grids, one plan per grid; without it, a
        step off the first step's grid is a ``GridError`` naming the step.
    output
        Write the cube to ``.zarr`` or ``.nc``, or the long table to
        ``.parquet`` (GeoParquet with ``geometry=True``), all steps at once
        when every batch is done.
    append
        Compute only the steps ``output`` lacks and add them; an output made
        with other zones, statistics or options is refused.
    overwrite
        Replace an existing ``output``.
    geometry
        With a ``.parquet`` output: GeoParquet, each row with its zone.
    batch
        Steps per batch (default: from the graph and table sizes).
    progress
        ``True`` draws a bar counting steps on standard error; a function is
        called with ``(fraction, message)``, as for ``zonal_stats``.
    **options
        ``band``, ``nodata``, ``zone_id``, ``all_touched``, ``categorical``,
        ``weights``, ``small``, ``chunks``, ``split_every``, ``prefix``,
        ``layer``, ``assume_same_crs``, ``zones_crs``: as for ``zonal_stats``.
        ``band=None`` keeps every band (a ``band`` dimension); a nodata value
        differing between files is refused unless ``nodata`` is given.

    Returns
    -------
    xarray.Dataset or list
        Without ``output``: the cube, dimensions (zone, time[, band]), the
        zones' geometries as the ``zone`` coordinate (``ds.xvec`` works), the
        zone names and each step's ``source`` as coordinates. With
        ``output``: the times of the steps written (empty when none was new).
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"zonal_series() got an unexpected keyword {unknown[0]!r}")
    request = Request.build(
        route_of(zones),
        stats,
        plan_all_touched=zones.all_touched if isinstance(zones, ZonePlan) else None,
        **options,
    )
    if request.weights is not None:
        raise StatisticError("zonal_series: a weights raster is not offered")
    arrays = [c.name for c in request.columns if c.statistic.dtype == "object"]
    if arrays:
        raise StatisticError(
            f"zonal_series: {', '.join(arrays)} gives an array per zone and step, "
            f"which a cube cannot hold; 'variety' counts the distinct values"
        )
    band, layer = request.band, request.layer
    writer = None
    if output is not None:
        writer = Output.open(
            output, append=append, overwrite=overwrite, geometry=geometry
        )
    elif append or geometry:
        raise StatisticError("append and geometry need an output")
    with run_scope():
        frame = read_zones(zones, layer) if request.route == "polygons" else None
        steps = open_series(
            series,
            band=band,
            chunks=request.chunks,
            time_pattern=time_pattern,
            asset=asset,
            variables=variables,
        )
        steps.check_values(request.nodata)
        groups = _grid_groups(steps, zones, plan_per_grid, request)
        identity = _identity(request, zones, frame, steps)
        todo = list(range(len(steps.steps)))
        if writer is not None:
            todo = writer.todo(steps.steps, identity)
        grid_of = {p: g for g, members in enumerate(groups) for p in members}
        plans: dict[int, _GridPlan] = {}
        batches = []
        bar = _Steps(reporter(progress), len(todo))
        with bar:
            at = 0
            while at < len(todo):  # in time order: batches never mix grids
                g = grid_of[todo[at]]
                if g not in plans:
                    plans[g] = _GridPlan.make(
                        zones, frame, steps, todo[at], request, bar
                    )
                plan = plans[g]
                chosen = [todo[at]]
                while (
                    at + len(chosen) < len(todo)
                    and len(chosen) < (batch or plan.batch)
                    and grid_of[todo[at + len(chosen)]] == g
                ):
                    chosen.append(todo[at + len(chosen)])
                at += len(chosen)
                cube = plan.run(steps, chosen, request, bar.batch(len(chosen)))
                bar.done += len(chosen)
                cube.attrs[IDENTITY] = json.dumps(identity)
                cube.attrs["zone_id"] = plan.zones.id_name
                if writer is None:
                    batches.append(cube)
                else:
                    writer.add(cube)
        if writer is not None:
            try:
                writer.commit(identity)
            finally:
                writer.discard()
            return [steps.steps[p].time for p in todo]
    return concat(batches)


def _grid_groups(
    steps: Series, zones: Any, plan_per_grid: bool, request: Request
) -> list[list[int]]:
    """Positions of the steps by grid: one group unless ``plan_per_grid``."""
    if isinstance(zones, ZonePlan):
        steps.check_one_grid(zones.grid, "the zone plan's grid")
        return [list(range(len(steps.steps)))]
    if plan_per_grid:
        if request.route != "polygons":
            raise GridError(
                "plan_per_grid needs polygon zones (a label raster has one grid)"
            )
        return steps.grids()
    steps.check_one_grid()
    return [list(range(len(steps.steps)))]


def _identity(
    request: Request,
    zones: Any,
    frame: gpd.GeoDataFrame | None,
    steps: Series,
) -> dict[str, Any]:
    """What an output must have been made with to take more steps (JSON-ready)."""
    identity = {
        "format": FORMAT,
        "version": VERSION,
        "zones": zones_identity(zones, frame, request.zone_id),
        "request": request.identity(),
        "columns": [c.name for c in request.columns],
        "prefix": request.prefix,
        "variables": steps.variables,
        "kind": steps.kind,
    }
    return json.loads(json.dumps(identity))


@dataclass
class _GridPlan:
    """One grid's zone plan: its raster, kept labels, zones and nodata."""

    like: xr.DataArray
    source: LabelSource
    zones: Zones
    nodata: dict[str | None, float | None]
    batch: int

    @classmethod
    def make(
        cls,
        zones: Any,
        frame: gpd.GeoDataFrame | None,
        steps: Series,
        position: int,
        request: Request,
        bar: _Steps,
    ) -> _GridPlan:
        """Plan the zones on the grid of the step at ``position``; make and keep
        their labels (a stored ``ZonePlan`` is read instead)."""
        from ..labels.inputs import label_source

        name = source_name(zones)
        given = frame if frame is not None else zones
        inputs = label_source(given, steps.like(position), request, name)
        like, source = inputs.array, inputs.source
        if not (isinstance(zones, ZonePlan) and zones.path is not None):
            started = time.perf_counter()
            source = persisted(source)
            bar.note(f"zones planned in {time.perf_counter() - started:.1f} s")
        variables: list[str | None] = (
            list(steps.variables) if steps.variables else [None]
        )
        nodata = {
            v: resolve_nodata(
                request.nodata,
                like if v is None or steps.cube is None else steps.cube[v],
                source_name(steps.like(position, v)),
            )
            for v in variables
        }
        n_zones = 0 if source.index is None else len(source.index)
        batch = _batch_size(source, n_zones, len(request.columns) * len(variables))
        return cls(like, source, _zones(frame, source), nodata, batch)

    def run(
        self,
        steps: Series,
        chosen: list[int],
        request: Request,
        report: Report | None = None,
    ) -> xr.Dataset:
        """The cube of the steps at ``chosen``: one graph per variable."""
        variables = list(self.nodata)
        lazies, bands = [], None
        for variable in variables:
            values = steps.values(chosen, self.like, variable)
            if values.ndim == 4:  # (step, band) pairs as planes
                bands = _band_coords(steps, variable, values.shape[1])
                values = values.reshape((-1, *values.shape[2:]), merge_chunks=False)
            lazies.append(
                zonal_graph(
                    values,
                    self.source,
                    request.columns,
                    self.nodata[variable],
                    split_every=request.split_every,
                    plane_dim=PLANE,
                    plane_coords=np.arange(values.shape[0]),
                    default_value=request.default_value,
                    grid=grid_fields(self.like),
                )
            )
        tables = scheduler.compute(dask.delayed(list)(lazies), report=report)
        parts = []
        for variable, table in zip(variables, tables, strict=True):
            cube = batch_cube(
                table,
                steps.times[chosen],
                [steps.steps[p].name for p in chosen],
                bands,
            )
            named = "" if len(variables) == 1 else f"{variable}_"
            parts.append(name_columns(cube, (request.prefix or "") + named))
        merged = xr.merge(parts, compat="override", join="exact")
        return with_zones(merged, self.zones)


def _band_coords(steps: Series, variable: str | None, count: int) -> np.ndarray:
    if steps.cube is not None:
        array = steps.cube[variable or steps.variables[0]]  # type: ignore[index]
        if "band" in array.coords:
            return array["band"].to_numpy()
    return np.arange(1, count + 1)


def _zones(frame: gpd.GeoDataFrame | None, source: LabelSource) -> Zones:
    """The cube's zones: names and polygons, or (a label raster) the values found."""
    if frame is None or source.index is None:
        return Zones(source.index)
    return Zones(source.index, frame.geometry.to_numpy(), frame.crs)


def _batch_size(source: LabelSource, n_zones: int, n_columns: int) -> int:
    """Steps per batch: the graph under ``MAX_CHUNKS`` chunk tasks, the batch's
    table (and the moment fields beside it) under ``BATCH_BYTES``."""
    chunks = max(1, len(source.tasks))
    per_step = max(1, n_zones) * (n_columns + len(Moments._fields)) * 8
    return max(1, min(MAX_CHUNKS // chunks, BATCH_BYTES // per_step))


class _Steps:
    """Progress in time steps: a report of the fraction of steps done."""

    def __init__(self, report: Report | None, total: int) -> None:
        self.report, self.total, self.done = report, total, 0

    def note(self, message: str) -> None:
        if self.report is not None:
            self.report(self.done / max(self.total, 1), message)

    def batch(self, steps: int) -> Report | None:
        """The report of a batch of ``steps``: its tasks' fraction in steps."""
        if self.report is None:
            return None
        report, done, total = self.report, self.done, max(self.total, 1)

        def scaled(fraction: float, message: str) -> None:
            now = done + fraction * steps
            report(now / total, f"steps {now:.0f}/{total}, {message}")

        return scaled

    def __enter__(self) -> _Steps:
        self.note(f"steps 0/{self.total}")
        return self

    def __exit__(self, *exc: object) -> None:
        close = getattr(self.report, "close", None)
        if close is not None:
            close()
