"""One grid's plan for a series: the zones' labels (and coverage fractions),
the weights raster's cells, made once and kept for every step.

``GridPlan.make`` plans the zones on the grid of one step through the same
``labels.inputs.label_source`` as ``zonal_stats``, then keeps on the scheduler
what no step changes: each chunk's labels (with coverage weighting, the
pixels' coverage fractions or areas) and, with a weights raster, its blocks on
the common grid. ``GridPlan.run`` computes a batch of steps: one
``graph.zonal_graph`` per variable over a ``(steps, y, x)`` array whose planes
share each chunk's labels and weights. Steps on a grid coarser than a weights
raster are read on their own grid and each value repeated onto the finer one,
as ``io/common_grid.py`` does for one raster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr

from ..errors import source_name
from ..io.common_grid import _repeat_array
from ..io.features import name_columns
from ..io.grid import MAX_CHUNKS, grid_chunks
from ..io.nodata import resolve_nodata
from ..io.raster import open_raster
from ..labels.inputs import grid_fields
from ..labels.plan import ZonePlan
from ..labels.sources import LabelSource, persisted
from ..reduce.graph import zonal_graph
from ..reduce.moments import N_FIELDS
from ..request import Request
from ..run import scheduler
from ..run.process_state import gc_paused
from ..run.progress import Report
from .cube import PLANE, Zones, batch_cube, with_zones
from .steps import Series

# A batch's dense table (zones x steps x columns, float64, and the moment
# fields beside it) stays about under this.
BATCH_BYTES = 256 * 2**20


@dataclass
class GridPlan:
    """One grid's zone plan: the raster on the grid the statistics are computed
    on, the kept labels and weights, the zones and the nodata values.

    Attributes
    ----------
    like
        The first step's raster on the computing grid (the common grid with a
        finer weights raster).
    source
        The zones' labels, kept on the scheduler.
    zones
        The cube's zones.
    nodata
        Per variable (None for files), the nodata value left out.
    batch
        Steps per batch.
    weights
        The weights raster on ``like``'s grid and chunks, kept; or None.
    factor
        Cells of the computing grid per step cell, (rows, cols).
    step_like
        A step's raster on its own grid, read then repeated when ``factor`` is
        not (1, 1); else None.
    """

    like: xr.DataArray
    source: LabelSource
    zones: Zones
    nodata: dict[str | None, float | None]
    batch: int
    weights: da.Array | None = None
    factor: tuple[int, int] = (1, 1)
    step_like: xr.DataArray | None = None

    @classmethod
    def make(
        cls,
        zones: Any,
        frame: gpd.GeoDataFrame | None,
        steps: Series,
        position: int,
        request: Request,
        note: Any,
    ) -> GridPlan:
        """Plan the zones on the grid of the step at ``position``; make and keep
        their labels (a stored ``ZonePlan`` is read instead) and the weights;
        ``note`` is called with a message saying how long it took."""
        from ..labels.inputs import label_source

        name = source_name(zones)
        given = frame if frame is not None else zones
        with gc_paused():
            inputs = label_source(given, steps.like(position), request, name)
        like, source, weights = inputs.array, inputs.source, inputs.weights
        started = time.perf_counter()
        if not (isinstance(zones, ZonePlan) and zones.path is not None):
            source = persisted(source)
        if weights is not None:
            from ..run.scheduler import local_scheduler

            (weights,) = dask.persist(weights, scheduler=local_scheduler())
        note(f"zones planned in {time.perf_counter() - started:.1f} s")
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
        batch = batch_size(source, n_zones, len(request.columns) * len(variables))
        factor = inputs.grid.factor
        step_like = None
        if factor != (1, 1):
            step_like = open_raster(
                steps.like(position),
                band=request.band,
                chunks=request.chunks,
                raw=request.raw,
            )
        return cls(
            like,
            source,
            cube_zones(frame, source, like.rio.crs),
            nodata,
            batch,
            weights,
            factor,
            step_like,
        )

    def run(
        self,
        steps: Series,
        chosen: list[int],
        request: Request,
        report: Report | None = None,
        files: str | None = None,
    ) -> xr.Dataset:
        """The cube of the steps at ``chosen``: one graph per variable, whose
        read tasks borrow the run's open files (``files``, ``io.kept_open``)."""
        variables = list(self.nodata)
        lazies, bands = [], None
        for variable in variables:
            values = self._values(steps, chosen, variable, files)
            if values.ndim == 4:  # (step, band) pairs as planes
                bands = band_coords(steps, variable, values.shape[1])
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
                    weights=self.weights,
                    default_value=request.default_value,
                    grid=grid_fields(self.like),
                )
            )
        tables = scheduler.compute(
            dask.delayed(list)(lazies), report=report, files=files
        )
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

    def _values(
        self, steps: Series, chosen: list[int], variable: str | None, files: str | None
    ) -> da.Array:
        """The steps' pixels on the computing grid, chunked as ``like``."""
        if self.step_like is None:
            return steps.values(chosen, self.like, variable, files)
        values = _repeat_array(
            steps.values(chosen, self.step_like, variable, files), self.factor
        )
        rows, cols = grid_chunks(self.like)
        return values.rechunk({values.ndim - 2: rows, values.ndim - 1: cols})


def band_coords(steps: Series, variable: str | None, count: int) -> np.ndarray:
    if steps.cube is not None:
        array = steps.cube[variable or steps.variables[0]]  # type: ignore[index]
        if "band" in array.coords:
            return array["band"].to_numpy()
    return np.arange(1, count + 1)


def cube_zones(frame: gpd.GeoDataFrame | None, source: LabelSource, crs: Any) -> Zones:
    """The cube's zones: names and polygons (in the raster's CRS ``crs`` when
    they declare none: ``assume_same_crs``), or (a label raster) the values
    found."""
    if frame is None or source.index is None:
        return Zones(source.index)
    return Zones(source.index, frame.geometry.to_numpy(), frame.crs or crs)


def batch_size(source: LabelSource, n_zones: int, n_columns: int) -> int:
    """Steps per batch: the graph under ``MAX_CHUNKS`` chunk tasks, the batch's
    table (and the moment fields beside it) under ``BATCH_BYTES``."""
    chunks = max(1, len(source.tasks))
    per_step = max(1, n_zones) * (n_columns + N_FIELDS + 1) * 8
    return max(1, min(MAX_CHUNKS // chunks, BATCH_BYTES // per_step))
