"""Zonal statistics of rasters of any size, on Dask."""

from . import accessor  # noqa: F401  registers DataArray.zonal
from ._version import __version__
from .api import rasterize_zones, zonal_stats
from .errors import OutputError, RasterError, StatisticError, ZonalError, ZonesError
from .stats import DEFAULT_STATS, STATISTICS

__all__ = [
    "DEFAULT_STATS",
    "STATISTICS",
    "OutputError",
    "RasterError",
    "StatisticError",
    "ZonalError",
    "ZonesError",
    "__version__",
    "rasterize_zones",
    "zonal_stats",
]
