"""``zonal_series``: the same zones over many time steps, through the one engine.

request -> series (``series/steps.py``) -> one plan per grid
(``series/grid_plan.py``): the labels, coverage fractions and weights made
once and kept -> the steps in batches, each batch one ``graph.zonal_graph``
over a ``(steps, y, x)`` array whose planes share each chunk's labels -> a
batch of the cube (``series/cube.py``) -> staged in the output, committed at
the end (``series/cube_store.py``).

A batch holds as many steps as keep the graph under about ``MAX_CHUNKS``
chunk tasks and the batch's table under ``grid_plan.BATCH_BYTES``, so memory
follows the chunks and the batch, never the number of steps.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import xarray as xr

from ..errors import GridError, OptionError, SeriesError, StatisticError
from ..io.kept_open import kept_open
from ..labels.inputs import route_of
from ..labels.plan import ZonePlan
from ..parameters import DEFAULTS, SERIES_OPTIONS
from ..request import Request
from ..run.process_state import gc_paused, options_given, run_scope
from ..run.progress import ProgressLike, Report, reporter
from ..statistics.names import StatsLike
from ..statistics.table import DEFAULT_STATS
from ..zones.read import read_zones
from ..zones.reproject import parse_crs
from .cube import (
    FORMAT,
    IDENTITY,
    VERSION,
    concat,
    zones_identity,
)
from .cube_store import Output
from .grid_plan import GridPlan
from .open import open_series
from .steps import Series, continue_positions

# The options of ``zonal_stats`` a series takes, with the same meaning: from
# the one parameter table (``parameters.py``).
OPTIONS = SERIES_OPTIONS


def zonal_series(
    zones: Any,
    series: Any,
    stats: StatsLike = DEFAULT_STATS,
    *,
    time_pattern: str | None = None,
    times: Sequence[Any] | None = None,
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
        (``"%Y-%m-%d"``; ``month%m`` reads ``month1`` and ``month12``);
        without it or ``times``, a file's time is its position in the list,
        or in a glob's natural order (``month2`` before ``month10``).
    times
        The files' times, one per file in the order given (a glob's natural
        order): dates (anything ``pandas.Timestamp`` reads) or integers.
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
        ``band``, ``nodata``, ``raw``, ``zone_id``, ``all_touched``, ``categorical``,
        ``coverage``, ``weights``, ``default_value``, ``default_weight``,
        ``min_coverage_frac``, ``small``, ``chunks``, ``split_every``,
        ``prefix``, ``layer``, ``assume_same_crs``, ``zones_crs``,
        ``gdal_options``: as for ``zonal_stats``. With ``coverage`` or
        ``weights``, the coverage fractions (or areas) and the weights
        raster's cells are computed once per grid and kept for every step.
        ``band=None`` keeps every band (a ``band`` dimension); a nodata value
        differing between files is refused unless ``nodata`` is given. The
        scale and offset a file declares (each its own) and a cube's
        attributes not yet decoded are applied as for ``zonal_stats``
        unless ``raw``.

    Returns
    -------
    xarray.Dataset or list
        Without ``output``: the cube, dimensions (zone, time[, band]), the
        zones' geometries as the ``zone`` coordinate (``ds.xvec`` works), the
        zone names and each step's ``source`` as coordinates. With
        ``output``: the times of the steps written (empty when none was new).
    """
    for name in sorted(set(options) - set(OPTIONS)):
        if name not in DEFAULTS:
            raise TypeError(f"zonal_series() got an unexpected keyword {name!r}")
        raise OptionError(
            f"zonal_series: {name} is not offered for a time series; it takes "
            + ", ".join(OPTIONS)
        )
    request = Request.build(
        route_of(zones),
        stats,
        plan=zones.options if isinstance(zones, ZonePlan) else None,
        **options,
    )
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
    with options_given(request.gdal_options), run_scope():
        with gc_paused():  # planning: only the computing below runs collected
            frame = read_zones(zones, layer) if request.route == "polygons" else None
            if frame is not None and request.zones_crs is not None:  # the cube's CRS
                crs = parse_crs(request.zones_crs, "zones_crs")
                frame = frame.set_crs(crs, allow_override=True)
            steps = open_series(
                series,
                band=band,
                chunks=request.chunks,
                time_pattern=time_pattern,
                asset=asset,
                variables=variables,
                times=times,
                raw=request.raw,
                nodata=request.nodata,
            )
            steps.check_values(request.nodata)
            if writer is not None and writer.existing is not None:
                steps = _after_output(steps, writer, time_pattern, times)
            groups = _grid_groups(steps, zones, plan_per_grid, request)
            identity = _identity(request, zones, frame, steps)
        todo = list(range(len(steps.steps)))
        if writer is not None:
            todo = writer.todo(steps.steps, identity)
        grid_of = {p: g for g, members in enumerate(groups) for p in members}
        plans: dict[int, GridPlan] = {}
        batches = []
        bar = _Steps(reporter(progress), len(todo))
        with _discarded_on_failure(writer), bar, kept_open() as files:
            at = 0
            while at < len(todo):  # in time order: batches never mix grids
                g = grid_of[todo[at]]
                if g not in plans:
                    plans[g] = GridPlan.make(
                        zones, frame, steps, todo[at], request, bar.note
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
                cube = plan.run(steps, chosen, request, bar.batch(len(chosen)), files)
                bar.done += len(chosen)
                cube.attrs[IDENTITY] = json.dumps(identity)
                cube.attrs["zone_id"] = plan.zones.id_name
                if writer is None:
                    batches.append(cube)
                else:
                    writer.add(cube)
        if writer is not None:
            with _discarded_on_failure(writer):
                writer.commit(identity)
            writer.discard()
            return [steps.steps[p].time for p in todo]
    return concat(batches)


@contextlib.contextmanager
def _discarded_on_failure(writer: Output | None) -> Iterator[None]:
    """Remove what ``writer`` staged when the run fails: nothing half-written."""
    try:
        yield
    except BaseException:
        if writer is not None:
            writer.discard()
        raise


def _after_output(
    steps: Series, writer: Output, time_pattern: str | None, times: Any
) -> Series:
    """Files timed by position, numbered after the steps the output holds;
    dated steps for an output numbered by position (or the reverse) refused."""
    assert writer.existing is not None
    old = writer.existing
    if steps.kind != "files" or time_pattern is not None or times is not None:
        dated = np.issubdtype(np.asarray(old.times).dtype, np.datetime64)
        if (
            len(old.times)
            and not dated
            and all(isinstance(s.time, np.datetime64) for s in steps.steps)
        ):
            raise SeriesError(
                f"{writer.path}: its steps are numbered by position, the new ones "
                f"have dates; write another output"
            )
        return steps
    known = dict(zip([str(n) for n in old.sources], list(old.times), strict=True))
    return continue_positions(steps, known, str(writer.path))


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
