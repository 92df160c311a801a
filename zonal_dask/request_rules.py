"""Which options go with which routes and with each other: ``RULES``.

Each ``Rule`` names an option, says when a ``Request`` asks for it and which
requests offer it, and what it needs instead; ``Request.build``
(``request.py``) refuses the first rule asked for and not offered, in one
line naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import (
    CRSError,
    OptionError,
    PlanError,
    StatisticError,
    ZonalError,
    ZonesError,
)

if TYPE_CHECKING:
    from .request import Request
    from .statistics.table import Column


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
