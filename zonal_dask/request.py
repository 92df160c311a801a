"""One request: the validated options of a run, and which of them go together.

Every route (polygons, a label raster, a ``ZonePlan``) builds the same frozen
``Request`` the same way: the statistics resolved from their table, each option
checked on its own, then ``RULES``, the one table of which options go with
which routes and with each other. A run's identity (what a checkpoint must
match) derives from the request and from each statistic's identity, never
from a column's name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np
import xarray as xr

from .errors import (
    CRSError,
    OptionError,
    PlanError,
    StatisticError,
    ZonalError,
    ZonesError,
)
from .io.raster import ChunksLike, normalize_chunks
from .parameters import default
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
        **options: Any,
    ) -> Request:
        """Resolve the statistics, check each option and the ``RULES``.

        ``categorical=True`` asks for the ``histogram`` statistic's columns;
        ``weights="coverage"`` for ``coverage="fraction"``; any other
        ``weights`` is a weights raster (path, URL or DataArray);
        ``include_cols`` is one column name or several. Other keyword
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


@dataclass(frozen=True)
class Rule:
    """An option, when it is asked for, and the requests that offer it."""

    option: Callable[[Request], str]
    asked: Callable[[Request], bool]
    offered: Callable[[Request], bool]
    needs: str | Callable[[Request], str]
    error: type[ZonalError] = StatisticError

    def message(self, request: Request) -> str:
        needs = self.needs if isinstance(self.needs, str) else self.needs(request)
        return f"{self.option(request)} needs {needs}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool
    )


def _unweighted(request: Request) -> list[str]:
    if request.coverage is None:
        return []
    return [c.name for c in request.columns if not c.statistic.weighted]


def _beside_groups(request: Request) -> tuple[str, str]:
    """The first option given that cannot go with ``group_by`` (whose rows
    are groups of features), and what it would need instead; ("", "") if
    none."""
    r = request
    if r.zone_id is not None:
        return f"zone_id={r.zone_id!r}", "rows named by zone_id: the rows are groups"
    if r.geometry:
        return "geometry=True", "one polygon a row: a group has several"
    if r.small != "nan":
        return f"small={r.small!r}", "rows of single polygons: a group has several"
    if r.include_cols:
        return (
            f"include_cols={', '.join(r.include_cols)}",
            "one feature a row: a group's features may hold different values",
        )
    return "", ""


def _names(columns: tuple[Column, ...], field_name: str) -> str:
    return ", ".join(repr(c.name) for c in columns if field_name in c.statistic.reads)


RULES: tuple[Rule, ...] = (
    Rule(
        lambda r: f"statistic {', '.join(map(repr, _unweighted(r)))}",
        lambda r: bool(_unweighted(r)),
        lambda r: False,
        "unweighted pixels; with coverage weighting the statistics offered are "
        "those marked so in zonal_dask.STATISTICS",
    ),
    Rule(
        lambda r: f"coverage={r.coverage!r}",
        lambda r: r.coverage is not None,
        lambda r: r.route != "label raster",
        "polygon zones (a label raster holds whole pixels)",
    ),
    Rule(
        lambda r: (
            "statistic "
            + ", ".join(repr(c.name) for c in r.columns if c.statistic.needs_weights)
        ),
        lambda r: r.needs_weights,
        lambda r: r.weights is not None,
        "a weights raster (weights=RASTER, --weights RASTER)",
    ),
    Rule(
        lambda r: "default_weight",
        lambda r: r.default_weight is not None,
        lambda r: r.weights is not None,
        "a weights raster (weights=RASTER, --weights RASTER)",
    ),
    Rule(
        lambda r: "min_coverage_frac",
        lambda r: r.min_coverage_frac is not None,
        lambda r: r.coverage is not None,
        "coverage weighting (coverage=KIND, --coverage KIND)",
    ),
    Rule(
        lambda r: f"group_by={r.group_by!r}",
        lambda r: r.group_by is not None,
        lambda r: r.route != "label raster",
        "polygon zones (a label raster has no columns)",
        ZonesError,
    ),
    Rule(
        lambda r: f"group_by={r.group_by!r} with {_beside_groups(r)[0]}",
        lambda r: r.group_by is not None and bool(_beside_groups(r)[0]),
        lambda r: False,
        lambda r: _beside_groups(r)[1],
        ZonesError,
    ),
    Rule(
        lambda r: "small='touched'",
        lambda r: r.small == "touched",
        lambda r: (
            r.route != "label raster" and r.coverage is None and not r.all_touched
        ),
        "polygon zones, the pixel-centre rule and no coverage weighting",
    ),
    Rule(
        lambda r: "all_touched=True",
        lambda r: r.all_touched,
        lambda r: r.route != "label raster" and r.coverage is None,
        "polygon zones and no coverage weighting",
    ),
    Rule(
        lambda r: "statistic " + _names(r.columns, "outside"),
        lambda r: r.route == "label raster" and r.needs_outside,
        lambda r: False,
        "polygon zones: a label raster has no area beyond the raster",
    ),
    Rule(
        lambda r: "geometry=True",
        lambda r: r.geometry,
        lambda r: r.route == "polygons" and r.band is not None,
        "polygon zones and one band",
        ZonesError,
    ),
    Rule(
        lambda r: "zones_crs",
        lambda r: r.zones_crs is not None and r.assume_same_crs,
        lambda r: False,
        "zones whose coordinates are their own, not the raster's (assume_same_crs "
        "takes them as the raster's, whatever their CRS)",
        CRSError,
    ),
    Rule(
        lambda r: "zone_id, layer, assume_same_crs and zones_crs",
        lambda r: (
            r.route == "label raster"
            and (
                r.zone_id is not None
                or r.layer is not None
                or r.assume_same_crs
                or r.zones_crs is not None
            )
        ),
        lambda r: False,
        "polygon zones (a label raster has no columns, layers or CRS of its own)",
        PlanError,
    ),
    Rule(
        lambda r: "chunks",
        lambda r: r.route == "plan" and r.chunks is not None,
        lambda r: False,
        "polygon zones or a label raster (a ZonePlan fixed them when it was made)",
        PlanError,
    ),
    Rule(
        lambda r: "include_cols",
        lambda r: bool(r.include_cols),
        lambda r: r.route == "polygons",
        "polygon zones (a label raster or a ZonePlan has no columns)",
        OptionError,
    ),
    Rule(
        lambda r: f"include_cols {r.zone_id!r}",
        lambda r: r.zone_id is not None and r.zone_id in r.include_cols,
        lambda r: False,
        "a column other than zone_id, which already names the rows",
        OptionError,
    ),
    Rule(
        lambda r: "affine",
        lambda r: r.affine is not None,
        lambda r: r.raster_kind == "ndarray",
        lambda r: f"a NumPy array as the raster (a {r.raster_kind} has its own)",
        OptionError,
    ),
    Rule(
        lambda r: "a NumPy array as the raster",
        lambda r: r.raster_kind == "ndarray",
        lambda r: r.affine is not None,
        "affine=, its transform (as rasterstats)",
        OptionError,
    ),
)
