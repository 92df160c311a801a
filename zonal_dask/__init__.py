"""Zonal statistics of rasters of any size, on Dask.

The engine (geopandas, rioxarray, numba, dask) is imported on first use of
``zonal_stats``, ``zonal_pixels``, ``rasterize_zones`` or ``ZonePlan``, so that ``import
zonal_dask`` and ``zonal-dask --help`` stay quick. Importing changes no
process state (environment, collector, warnings filters, exit hooks).
"""

import importlib
from typing import TYPE_CHECKING, Any

from . import accessor  # noqa: F401  registers DataArray.zonal
from ._version import __version__
from .errors import (
    CheckpointError,
    ComputeError,
    CRSError,
    GeometryTypeError,
    GridError,
    IdFieldError,
    LayerError,
    NodataError,
    OptionError,
    OutputError,
    PlanError,
    RasterError,
    SeriesError,
    StatisticError,
    TransformError,
    ZonalError,
    ZonesError,
)
from .statistics.table import DEFAULT_STATS, STATISTICS

if TYPE_CHECKING:
    from .api import rasterize_zones, zonal_pixels, zonal_stats
    from .labels.plan import ZonePlan
    from .series.cube import open_cube
    from .series.zonal_series import zonal_series

_LAZY = {
    "zonal_stats": "api",
    "zonal_pixels": "api",
    "rasterize_zones": "api",
    "ZonePlan": "labels.plan",
    "zonal_series": "series.zonal_series",
    "open_cube": "series.cube",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_STATS",
    "STATISTICS",
    "CRSError",
    "CheckpointError",
    "ComputeError",
    "GeometryTypeError",
    "GridError",
    "IdFieldError",
    "LayerError",
    "NodataError",
    "OptionError",
    "OutputError",
    "PlanError",
    "RasterError",
    "SeriesError",
    "StatisticError",
    "TransformError",
    "ZonalError",
    "ZonePlan",
    "ZonesError",
    "__version__",
    "open_cube",
    "rasterize_zones",
    "zonal_pixels",
    "zonal_series",
    "zonal_stats",
]
