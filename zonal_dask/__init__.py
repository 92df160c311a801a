"""Zonal statistics of rasters of any size, on Dask."""

from . import accessor  # noqa: F401  registers DataArray.zonal
from ._version import __version__
from .api import rasterize_zones, zonal_stats
from .errors import (
    CheckpointError,
    ComputeError,
    CRSError,
    GeometryTypeError,
    GridError,
    IdFieldError,
    LayerError,
    NodataError,
    OutputError,
    PlanError,
    RasterError,
    StatisticError,
    TransformError,
    ZonalError,
    ZonesError,
)
from .plan import ZonePlan
from .remote import configure_gdal
from .stats import DEFAULT_STATS, STATISTICS

# GDAL's endpoint variables from AWS_ENDPOINT_URL, here and in the worker
# processes started from here (remote.py)
configure_gdal()

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
    "OutputError",
    "PlanError",
    "RasterError",
    "StatisticError",
    "TransformError",
    "ZonalError",
    "ZonePlan",
    "ZonesError",
    "__version__",
    "rasterize_zones",
    "zonal_stats",
]
