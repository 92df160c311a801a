"""A checked request planned and computed: label source, graph, compute, finish.

``api.zonal_stats`` validates its arguments into a ``Request`` and hands it
here with the adapted zones and raster; the command line asks ``worker_reach``
what a cluster's workers must see before it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    import xarray as xr
    from dask.delayed import Delayed

    from .labels.inputs import Raster, Zones
    from .request import Request
    from .run.reach import Reach


def run_request(
    request: Request, zones: Zones, raster: Raster, name: Any, compute: bool
) -> pd.DataFrame | gpd.GeoDataFrame | xr.Dataset | Delayed:
    """Plan and compute a checked ``request``: ``zonal_stats``' steps after
    validation, the same for every route.

    Returns a table, a Dataset (several planes), or a Delayed with
    ``compute=False``.
    """
    import pandas as pd

    from .io.features import finish, finish_lazily, read_features
    from .labels.inputs import grid_fields, label_source
    from .reduce.graph import zonal_graph
    from .run import scheduler
    from .run.checkpoint import Checkpoint, run_identity
    from .run.process_state import planning
    from .run.progress import reporter

    layer, prefix = request.layer, request.prefix
    with planning():
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
            scheduler.check_writes(request.checkpoint)  # before creating it
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
    from .io.raster import is_label_raster
    from .labels.plan import ZonePlan
    from .run.reach import Reach

    label_raster = zones if is_label_raster(zones) else None
    plan = zones.path if isinstance(zones, ZonePlan) else None
    return Reach.of([raster, weights, label_raster, plan], [checkpoint])


def _planes(array: xr.DataArray) -> dict[str, Any]:
    """The extra dimension's name and coordinates, for a 3-D raster."""
    if array.ndim == 2:
        return {}
    dim = array.dims[0]
    coords = array[dim].to_numpy() if dim in array.coords else None
    return {"plane_dim": dim, "plane_coords": coords}
