"""The registry of statistics.

Each statistic is data, not a branch: it names the kind of per-zone summary it
reads and the formula that turns that summary into its final value.

* ``moments``: from the dense per-zone moments every run computes (count,
  nodata, sum, mean, M2, min, max, outside fraction); formulas are vectorised
  over all zones, and zones with no valid pixel reach them with ``count == 0``
  and NaN elsewhere, so they give NaN without a special case.
* ``counts``: from the per-zone table of (value, pixel count), merged like the
  moments; meant for categorical rasters (memory grows with zones x classes).
* ``values``: from each zone's valid values, gathered into one task per group
  of nearby zones; exact order statistics and user functions live here.

Adding a statistic is adding an entry, not a branch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import StatisticError

Kind = Literal["moments", "counts", "values"]


@dataclass(frozen=True)
class Statistic:
    """One statistic: its name, what it reads, its final formula and dtype."""

    name: str
    kind: Kind
    formula: Callable
    dtype: str = "float64"
    doc: str = ""


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / b


def _var(m: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.where(m["finite"] == m["count"], _ratio(m["m2"], m["count"]), np.nan)


def _first_of_each_zone(c: Mapping[str, np.ndarray], pick: np.ufunc) -> np.ndarray:
    """Per zone, the smallest value whose pixel count is ``pick`` (max or min)."""
    out = np.full(c["n_zones"], np.nan)
    if c["zone"].size == 0:
        return out
    starts = np.flatnonzero(np.diff(c["zone"], prepend=-1))
    group = np.cumsum(np.diff(c["zone"], prepend=-1) != 0) - 1
    best = pick.reduceat(c["count"], starts)[group]
    hits = np.flatnonzero(c["count"] == best)
    _, first = np.unique(group[hits], return_index=True)
    out[c["zone"][hits[first]]] = c["value"][hits[first]]
    return out


def _unique(c: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.bincount(c["zone"], minlength=c["n_zones"])


def _percentile(q: float) -> Callable[[np.ndarray], float]:
    def percentile(values: np.ndarray) -> float:
        return float(np.percentile(values, q))

    return percentile


def _median(values: np.ndarray) -> float:
    return float(np.median(values))


_BUILTIN = (
    Statistic("count", "moments", lambda m: m["count"], "int64", "valid pixels"),
    Statistic(
        "nodata_count",
        "moments",
        lambda m: m["nodata"],
        "int64",
        "pixels of the zone that are nodata or NaN",
    ),
    Statistic(
        "nodata_fraction",
        "moments",
        lambda m: _ratio(m["nodata"], m["nodata"] + m["count"]),
        doc="nodata_count / (count + nodata_count)",
    ),
    Statistic(
        "outside_fraction",
        "moments",
        lambda m: m["outside"],
        doc="share of the polygon's area beyond the raster's extent",
    ),
    Statistic("sum", "moments", lambda m: m["sum"], doc="sum of valid values"),
    Statistic("mean", "moments", lambda m: m["mean"], doc="arithmetic mean"),
    Statistic("min", "moments", lambda m: m["min"], doc="smallest valid value"),
    Statistic("max", "moments", lambda m: m["max"], doc="largest valid value"),
    Statistic("range", "moments", lambda m: m["max"] - m["min"], doc="max - min"),
    Statistic("var", "moments", _var, doc="population variance (ddof=0)"),
    Statistic(
        "std", "moments", lambda m: np.sqrt(_var(m)), doc="population std (ddof=0)"
    ),
    Statistic("median", "values", _median, doc="exact median (numpy.median)"),
    Statistic(
        "majority",
        "counts",
        lambda c: _first_of_each_zone(c, np.maximum),
        doc="most frequent value (the smallest on ties)",
    ),
    Statistic(
        "minority",
        "counts",
        lambda c: _first_of_each_zone(c, np.minimum),
        doc="least frequent value (the smallest on ties)",
    ),
    Statistic("unique", "counts", _unique, "int64", "number of distinct values"),
)
STATISTICS: dict[str, Statistic] = {s.name: s for s in _BUILTIN}

DEFAULT_STATS: tuple[str, ...] = ("count", "min", "mean", "max", "std", "sum")

# ``p10``, ``p99.5`` and rasterstats' ``percentile_10``: exact, numpy's default method.
_PERCENTILE = re.compile(r"^(?:p|percentile_)(\d+(?:\.\d+)?)$")

StatsLike = str | Iterable[str] | Mapping[str, "str | Callable[[np.ndarray], float]"]


def resolve(stats: StatsLike) -> list[Statistic]:
    """Return the registry entries for ``stats``, in the order asked.

    Parameters
    ----------
    stats
        Statistic names, as an iterable or one comma- or space-separated
        string; ``pNN`` (or ``percentile_NN``) for any percentile in 0..100.
        A mapping names output columns: each value is a statistic name or a
        function applied to each zone's valid values (a 1-D float64 array,
        never empty), returning a number.

    Raises
    ------
    StatisticError
        If a name is unknown, a name repeats, or no name is given.
    """
    if isinstance(stats, Mapping):
        return _check([_entry(str(k), v) for k, v in stats.items()])
    if isinstance(stats, str):
        stats = stats.replace(",", " ").split()
    return _check([_named(str(s).strip(), str(s).strip()) for s in stats])


def _entry(name: str, value: object) -> Statistic:
    if callable(value):
        return Statistic(name, "values", value, doc="user function")
    return _named(name, str(value))


def _named(column: str, name: str) -> Statistic:
    if name in STATISTICS:
        s = STATISTICS[name]
        return s if column == name else Statistic(column, s.kind, s.formula, s.dtype)
    match = _PERCENTILE.match(name)
    if match and 0 <= float(match.group(1)) <= 100:
        return Statistic(column, "values", _percentile(float(match.group(1))))
    raise StatisticError(
        f"unknown statistic {name!r}; valid names: {', '.join(STATISTICS)}, "
        "pNN (percentile NN, e.g. p10, p99.5)"
    )


def _check(entries: list[Statistic]) -> list[Statistic]:
    if not entries:
        raise StatisticError(
            "no statistic requested; valid names: " + ", ".join(STATISTICS)
        )
    names = [s.name for s in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StatisticError(f"statistic {', '.join(map(repr, repeated))} repeated")
    return entries
