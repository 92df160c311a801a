"""Zonal statistics of rasters of any size, on Dask."""

from ._version import __version__
from .api import rasterize_zones, zonal_stats
from .errors import (
    CheckpointError,
    ComputeError,
    CRSError,
    GeometryTypeError,
    IdFieldError,
    LayerError,
    NodataError,
    OutputError,
    RasterError,
    StatisticError,
    TransformError,
    ZonalError,
    ZonesError,
)
from .stats import DEFAULT_STATS, STATISTICS

__all__ = [
    "DEFAULT_STATS",
    "STATISTICS",
    "CRSError",
    "CheckpointError",
    "ComputeError",
    "GeometryTypeError",
    "IdFieldError",
    "LayerError",
    "NodataError",
    "OutputError",
    "RasterError",
    "StatisticError",
    "TransformError",
    "ZonalError",
    "ZonesError",
    "__version__",
    "rasterize_zones",
    "zonal_stats",
]
