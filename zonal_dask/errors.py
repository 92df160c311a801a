"""The exceptions zonal_dask raises for bad input.

Every error names the file, field or value at fault in a single line, so the CLI
can print ``str(error)`` and exit non-zero.
"""

from __future__ import annotations


class ZonalError(Exception):
    """Base class of every error zonal_dask raises on purpose."""


class RasterError(ZonalError):
    """The raster cannot be opened or used (missing, unreadable, bad band, bad grid)."""


class ZonesError(ZonalError):
    """The zones cannot be read or used (missing file, bad geometry, bad id field)."""


class StatisticError(ZonalError, ValueError):
    """A requested statistic is unknown."""


class OutputError(ZonalError):
    """The output cannot be written (exists, unknown format, directory missing)."""


class GridError(RasterError):
    """The raster is not on the zone plan's grid (shape, transform or CRS differ)."""


class PlanError(ZonalError):
    """A zone plan cannot be saved, read or used as asked."""
