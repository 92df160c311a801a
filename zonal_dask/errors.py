"""The exceptions zonal_dask raises for bad input.

Every error names the file, field or value at fault in a single line, so the CLI
can print ``str(error)`` and exit non-zero.
"""

from __future__ import annotations

import os
from typing import Any


def source_name(source: Any) -> str:
    """How a message names an input: its path, or its type (``GeoDataFrame``)."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return type(source).__name__


def plain(value: Any) -> Any:
    """A value as messages show it: ``1``, not ``np.int64(1)``."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "ndim", None) == 0 else value


class ZonalError(Exception):
    """Base class of every error zonal_dask raises on purpose."""


class RasterError(ZonalError):
    """The raster cannot be opened or used (missing, unreadable, bad band, bad grid)."""


class ZonesError(ZonalError):
    """The zones cannot be read or used (missing file, bad geometry, bad id field)."""


class StatisticError(ZonalError, ValueError):
    """A requested statistic is unknown."""


class OptionError(ZonalError, ValueError):
    """An option's value is out of range, or options that do not go together."""


class OutputError(ZonalError):
    """The output cannot be written (exists, unknown format, directory missing)."""


class GridError(RasterError):
    """The raster is not on the zone plan's grid (shape, transform or CRS differ)."""


class PlanError(ZonalError):
    """A zone plan cannot be saved, read or used as asked."""


class CRSError(ZonalError):
    """The zones or the raster have no CRS (and ``assume_same_crs`` was not given)."""


class LayerError(ZonesError):
    """The vector file has no layer, several (choose one), or not the one asked."""


class GeometryTypeError(ZonesError):
    """A zone is not a polygon, a line or a point (a collection, a ring)."""


class SeriesError(RasterError):
    """A series of rasters cannot be used as time steps (no step, a time that
    cannot be read, two steps at one time, steps that differ in dtype or nodata)."""


class TransformError(RasterError):
    """The raster's geotransform is rotated, sheared or degenerate."""


class NodataError(RasterError, ValueError):
    """The nodata value cannot occur in the raster's dtype."""


class CheckpointError(ZonalError):
    """The checkpoint directory belongs to another run, or cannot be used."""


class ComputeError(ZonalError):
    """The computation failed (a lost scheduler, workers that keep dying)."""


class IdFieldError(ZonesError):
    """The id field is missing or repeats a value."""


class NoOverlapWarning(ZonalError, UserWarning):
    """No zone meets the raster: every row is empty (count 0, NaN), most often
    because a CRS is wrong. A warning; an error under ``--strict`` (or a
    ``warnings`` filter set to ``"error"``)."""
