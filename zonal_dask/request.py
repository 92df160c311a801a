"""One request: the validated options of a run, and which of them go together.

Every route (polygons, a label raster, a ``ZonePlan``) builds the same frozen
``Request`` the same way: the statistics resolved from their table, each option
checked on its own, then ``RULES`` (``request_rules.py``), the one table of
which options go with which routes and with each other. A run's identity
(what a checkpoint must match) derives from the request and from each
statistic's identity, never from a column's name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import xarray as xr

from .errors import (
    OptionError,
    PlanError,
    StatisticError,
)
from .io.grid import ChunksLike, normalize_chunks
from .io.remote import check_gdal_options
from .parameters import default
from .request_rules import RULES
from .run.progress import ProgressLike, check_progress
from .statistics.names import StatsLike, resolve
from .statistics.operations import parse_operations
from .statistics.table import COVERAGE_KINDS, Column
from .zones.reproject import parse_crs

Route = Literal["polygons", "label raster", "plan"]
# what the raster was given as: a path or URL, a DataArray, a NumPy array
RasterKind = Literal["path", "DataArray", "ndarray"]
SMALL = ("nan", "touched")


@dataclass(frozen=True)
class Request:
    """What to compute, validated; built with ``Request.build``."""

    route: Route
    columns: tuple[Column, ...]
    # defaults from the one parameter table (``parameters.py``)
    band: int | None = default("band")
    nodata: float | None = default("nodata")
    raw: bool = default("raw")
    zone_id: str | None = default("zone_id")
    layer: str | int | None = default("layer")
    assume_same_crs: bool = default("assume_same_crs")
    zones_crs: str | None = default("zones_crs")
    all_touched: bool = default("all_touched")
    coverage: str | None = default("coverage")
    weights: Any = field(default=default("weights"), compare=False)
    default_value: float | None = default("default_value")
    default_weight: float | None = default("default_weight")
    min_coverage_frac: float | None = default("min_coverage_frac")
    grid_compat_tol: float | None = default("grid_compat_tol")
    group_by: str | None = default("group_by")
    small: str = default("small")
    chunks: tuple[int, int] | None = default("chunks")
    split_every: int = default("split_every")
    geometry: bool = default("geometry")
    prefix: str | None = default("prefix")
    checkpoint: str | None = default("checkpoint")
    include_cols: tuple[str, ...] = ()
    gdal_options: tuple[tuple[str, str], ...] | None = field(
        default=default("gdal_options"), compare=False
    )
    plan: Mapping[str, Any] | None = field(default=None, compare=False)
    raster_kind: RasterKind = field(default="path", compare=False)
    affine: Any = field(default=default("affine"), compare=False)
    progress: ProgressLike = field(default=default("progress"), compare=False)

    @classmethod
    def build(
        cls,
        route: Route,
        stats: StatsLike,
        *,
        categorical: bool = False,
        weights: Any = None,
        chunks: ChunksLike = None,
        checkpoint: str | os.PathLike | None = None,
        include_cols: str | Sequence[str] | None = None,
        gdal_options: Any = None,
        **options: Any,
    ) -> Request:
        """Resolve the statistics, check each option and the ``RULES``.

        ``categorical=True`` asks for the ``histogram`` statistic's columns;
        ``weights="coverage"`` for ``coverage="fraction"``; any other
        ``weights`` is a weights raster (path, URL or DataArray);
        ``include_cols`` is one column name or several; ``gdal_options`` are
        checked by ``io.remote.check_gdal_options``. Other keyword
        arguments are ``Request`` fields.

        Raises
        ------
        ZonalError
            A subclass naming the option at fault: an unknown statistic or
            value, or options that do not go together.
        """
        stats, carried = parse_operations(stats)
        columns = resolve(stats)
        if categorical and "histogram" not in {c.statistic.name for c in columns}:
            columns.append(Column("histogram", resolve(["histogram"])[0].statistic))
        for option, value in carried.items():  # exactextract's op(arguments)
            given = options.get(option)
            if given is not None and given != value:
                raise StatisticError(
                    f"the operations' {option}={value!r} and {option}={given!r} "
                    f"of the call disagree"
                )
            options[option] = value
        coverage = options.pop("coverage", None)
        if isinstance(weights, str) and weights == "coverage":
            if coverage not in (None, "fraction"):
                raise StatisticError(
                    f"weights='coverage' means coverage='fraction', not {coverage!r}"
                )
            coverage, weights = "fraction", None
        if not (
            weights is None or isinstance(weights, (str, os.PathLike, xr.DataArray))
        ):
            raise StatisticError(
                f"weights must be 'coverage' or a raster (path, URL or DataArray), "
                f"not {type(weights).__name__}"
            )
        if route == "plan" and options.get("plan") is not None:
            options["coverage"] = coverage
            _take_plan_options(options, options["plan"])
            coverage = options.pop("coverage")
        request = cls(
            route,
            tuple(columns),
            coverage=coverage,
            weights=weights,
            chunks=_chunks(chunks),
            checkpoint=None if checkpoint is None else os.fspath(checkpoint),
            include_cols=_names_of(include_cols),
            gdal_options=check_gdal_options(gdal_options),
            **options,
        )
        request._check_values()
        for rule in RULES:
            if rule.asked(request) and not rule.offered(request):
                raise rule.error(rule.message(request))
        return request

    def _check_values(self) -> None:
        if self.small not in SMALL:
            raise StatisticError(
                f"small must be 'nan' or 'touched', not {self.small!r}"
            )
        if self.coverage is not None and self.coverage not in COVERAGE_KINDS:
            raise StatisticError(
                f"unknown coverage {self.coverage!r}; use one of "
                + ", ".join(COVERAGE_KINDS)
            )
        for name in ("default_value", "default_weight", "min_coverage_frac"):
            value = getattr(self, name)
            if value is not None and not _is_number(value):
                raise StatisticError(f"{name} must be a number, not {value!r}")
        if self.min_coverage_frac is not None and not 0 <= self.min_coverage_frac <= 1:
            raise StatisticError(
                "min_coverage_frac must be between 0 and 1, not "
                f"{self.min_coverage_frac!r}"
            )
        if self.default_weight is not None and not (
            math.isfinite(self.default_weight) and self.default_weight >= 0
        ):
            raise StatisticError(
                "default_weight must be finite and at least 0, not "
                f"{self.default_weight!r}"
            )
        tol = self.grid_compat_tol
        if tol is not None and not (_is_number(tol) and 0 <= tol < 0.5):
            raise StatisticError(
                "grid_compat_tol must be a number from 0 to below 0.5 (a share of "
                f"a cell), not {self.grid_compat_tol!r}"
            )
        if self.zones_crs is not None:
            parse_crs(self.zones_crs, "zones_crs")
        if self.split_every < 2:
            raise OptionError(f"split_every must be at least 2, got {self.split_every}")
        check_progress(self.progress)

    @property
    def needs_weights(self) -> bool:
        return any(c.statistic.needs_weights for c in self.columns)

    @property
    def needs_outside(self) -> bool:
        return any("outside" in c.statistic.reads for c in self.columns)

    @property
    def needs_values(self) -> bool:
        return any(c.statistic.family == "values" for c in self.columns)

    def identity(self) -> dict[str, Any]:
        """What must match for two runs to share partial results (JSON-ready).

        The statistics count by what they are; their column names, the
        prefix and ``geometry`` (presentation) and the checkpoint's own
        place do not.
        """
        return {
            "route": self.route,
            "statistics": sorted({repr(c.statistic.identity) for c in self.columns}),
            "band": self.band,
            "nodata": repr(self.nodata),
            "raw": self.raw,
            "zone_id": self.zone_id,
            "layer": self.layer,
            "all_touched": self.all_touched,
            "coverage": self.coverage,
            "default_value": repr(self.default_value),
            "default_weight": repr(self.default_weight),
            "min_coverage_frac": repr(self.min_coverage_frac),
            "grid_compat_tol": repr(self.grid_compat_tol),
            "group_by": self.group_by,
            "small": self.small,
            "chunks": self.chunks,
        }


def _take_plan_options(options: dict[str, Any], plan: Mapping[str, Any]) -> None:
    """Give ``options`` the options a ``ZonePlan`` was made with (``plan``);
    an option left at its default takes the plan's, another must equal it."""
    defaults = {f.name: f.default for f in fields(Request)}
    for name, fixed in plan.items():
        given = options.get(name, defaults[name])
        if given != defaults[name] and given != fixed:
            raise PlanError(
                f"{name}={given!r} needs a ZonePlan made with it; the plan was "
                f"made with {name}={fixed!r} (a ZonePlan fixed them when it was made)"
            )
        options[name] = fixed


def _chunks(chunks: ChunksLike) -> tuple[int, int] | None:
    try:
        return normalize_chunks(chunks)
    except (ValueError, TypeError, KeyError):
        raise OptionError(
            f"chunks must be a number of pixels of at least 1, (rows, columns) or "
            f"{{'y': rows, 'x': columns}}, not {chunks!r}"
        ) from None


def _names_of(columns: str | Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return ()
    names = (columns,) if isinstance(columns, str) else tuple(columns)
    if not all(isinstance(n, str) and n for n in names):
        raise OptionError(f"include_cols must be column names, not {columns!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise OptionError(f"include_cols repeats {', '.join(map(repr, repeated))}")
    return names


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    )
