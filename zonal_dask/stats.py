"""The table of statistics: each statistic is one entry, defined here only.

An entry names the partial fields it reads (``partials.py`` computes them in
one pass per chunk and combines them in the tree), its finalize step, its
aliases, whether it is defined under coverage weighting, and its dtype. What a
run computes, which statistics a route or weighting offers, a checkpoint's
identity, the command line's ``--stats`` and the README's table all derive
from ``STATISTICS``. Adding a statistic is adding an entry.

Fields and the finalize step they imply:

* moment fields (``count``, ``nodata``, ``sum``, ``mean``, ``variance``,
  ``min``, ``max``) and zone fields (``outside``): ``finalize(fields)`` gets
  them as dense arrays over all zones (count 0 and NaN elsewhere for a zone
  without valid pixels) and returns the column, vectorised;
* ``classes``: ``finalize(classes)`` gets a ``ClassTable`` (weight per zone
  and value) and returns a column, or several named by class;
* ``values``: ``finalize(values, weights)`` gets one zone's valid values
  (1-D float64, never empty) and their weights (None when all are 1) and
  returns a number.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .errors import StatisticError

ZONE_FIELDS = ("outside",)
VALUE_FIELDS = ("classes", "values")


@dataclass(frozen=True)
class Statistic:
    """One statistic: what it reads, how it is finalized, and its properties.

    ``dtype`` is its column's dtype, ``weighted_dtype`` the same under coverage
    weighting (counts become sums of weights); ``weighted`` says whether it is
    defined there at all; ``param`` is a quantile's q, ``token`` a digest of a
    user function.
    """

    name: str
    reads: tuple[str, ...]
    finalize: Callable[..., Any]
    dtype: str = "float64"
    weighted: bool = True
    weighted_dtype: str = "float64"
    aliases: tuple[str, ...] = ()
    doc: str = ""
    param: float | None = None
    token: str = ""

    @property
    def description(self) -> str:
        """``doc``, or the first line of the finalize step's docstring."""
        return self.doc or (self.finalize.__doc__ or "").strip().splitlines()[0]

    @property
    def family(self) -> str:
        """``values``, ``classes``, or ``moments`` (moment and zone fields)."""
        for family in VALUE_FIELDS[::-1]:
            if family in self.reads:
                return family
        return "moments"

    @property
    def identity(self) -> tuple:
        """What the statistic is, whatever its column is called."""
        return (self.name, self.family, self.param, self.token)


class Column(NamedTuple):
    """An output column: its name and the statistic it holds."""

    name: str
    statistic: Statistic


Fields = Mapping[str, np.ndarray]


class ClassTable(NamedTuple):
    """Weight (pixel count, unweighted) per zone and value, sorted by zone then
    value; ``zone`` is the row position 0..n_zones-1."""

    zone: np.ndarray
    value: np.ndarray
    weight: np.ndarray
    n_zones: int


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / b


def _extreme_class(c: ClassTable, pick: np.ufunc) -> np.ndarray:
    """Per zone, the smallest value whose weight is ``pick`` (max or min)."""
    out = np.full(c.n_zones, np.nan)
    if c.zone.size == 0:
        return out
    new = np.diff(c.zone, prepend=-1) != 0
    group = np.cumsum(new) - 1
    best = pick.reduceat(c.weight, np.flatnonzero(new))[group]
    hits = np.flatnonzero(c.weight == best)
    _, first = np.unique(group[hits], return_index=True)
    out[c.zone[hits[first]]] = c.value[hits[first]]
    return out


def _majority(c: ClassTable) -> np.ndarray:
    """most frequent value (the smallest on ties)"""
    return _extreme_class(c, np.maximum)


def _minority(c: ClassTable) -> np.ndarray:
    """least frequent value (the smallest on ties)"""
    return _extreme_class(c, np.minimum)


def _variety(c: ClassTable) -> np.ndarray:
    """number of distinct values"""
    return np.bincount(c.zone[c.weight > 0], minlength=c.n_zones)


def _histogram(c: ClassTable) -> dict[Any, np.ndarray]:
    """one column per value, named by it: the zone's pixels of that value"""
    classes = np.unique(c.value)
    table = np.zeros((c.n_zones, classes.size))
    table[c.zone, np.searchsorted(classes, c.value)] = c.weight
    names = [int(v) if float(v).is_integer() else float(v) for v in classes]
    return dict(zip(names, table.T, strict=True))


def _median(values: np.ndarray, weights: np.ndarray | None) -> float:
    """exact median (numpy.median)"""
    return float(np.median(values))


def _mad(values: np.ndarray, weights: np.ndarray | None) -> float:
    """median absolute deviation from the median"""
    return float(np.median(np.abs(values - np.median(values))))


def _quantile(q: float) -> Callable[[np.ndarray, np.ndarray | None], float]:
    def quantile(values: np.ndarray, weights: np.ndarray | None) -> float:
        return float(np.quantile(values, q))

    return quantile


def _count(f: Fields) -> np.ndarray:
    """valid pixels (with coverage: the sum of their weights)"""
    return f["count"]


def _nodata_count(f: Fields) -> np.ndarray:
    """pixels of the zone that are nodata or NaN"""
    return f["nodata"]


def _nodata_fraction(f: Fields) -> np.ndarray:
    """nodata_count / (count + nodata_count)"""
    return _ratio(f["nodata"], f["nodata"] + f["count"])


def _outside_fraction(f: Fields) -> np.ndarray:
    """share of the polygon's area beyond the raster's extent"""
    return f["outside"]


def _sum(f: Fields) -> np.ndarray:
    """sum of valid values"""
    return f["sum"]


def _mean(f: Fields) -> np.ndarray:
    """arithmetic mean"""
    return f["mean"]


def _min(f: Fields) -> np.ndarray:
    """smallest valid value"""
    return f["min"]


def _max(f: Fields) -> np.ndarray:
    """largest valid value"""
    return f["max"]


def _range(f: Fields) -> np.ndarray:
    """max - min"""
    return f["max"] - f["min"]


def _variance(f: Fields) -> np.ndarray:
    """population variance (ddof=0)"""
    return f["variance"]


def _std(f: Fields) -> np.ndarray:
    """population standard deviation (ddof=0)"""
    return np.sqrt(f["variance"])


def _coefficient_of_variation(f: Fields) -> np.ndarray:
    """std / mean"""
    return _ratio(np.sqrt(f["variance"]), f["mean"])


_ENTRIES = (
    # each finalize step's docstring says what the statistic is
    Statistic("count", ("count",), _count, dtype="int64"),
    Statistic(
        "nodata_count", ("nodata",), _nodata_count, dtype="int64", aliases=("nodata",)
    ),
    Statistic("nodata_fraction", ("count", "nodata"), _nodata_fraction),
    Statistic("outside_fraction", ("outside",), _outside_fraction),
    Statistic("sum", ("sum",), _sum),
    Statistic("mean", ("mean",), _mean),
    Statistic("min", ("min",), _min),
    Statistic("max", ("max",), _max),
    Statistic("range", ("min", "max"), _range),
    Statistic("var", ("variance",), _variance, aliases=("variance",)),
    Statistic("std", ("variance",), _std, aliases=("stdev",)),
    Statistic(
        "coefficient_of_variation", ("variance", "mean"), _coefficient_of_variation
    ),
    Statistic("median", ("values",), _median, weighted=False),
    Statistic("mad", ("values",), _mad, weighted=False),
    Statistic("majority", ("classes",), _majority, weighted=False),
    Statistic("minority", ("classes",), _minority, weighted=False),
    Statistic(
        "unique",
        ("classes",),
        _variety,
        dtype="int64",
        weighted_dtype="int64",
        aliases=("variety",),
    ),
    Statistic("histogram", ("classes",), _histogram, dtype="int64"),
)
STATISTICS: dict[str, Statistic] = {s.name: s for s in _ENTRIES}
ALIASES: dict[str, str] = {a: s.name for s in _ENTRIES for a in s.aliases}

DEFAULT_STATS: tuple[str, ...] = ("count", "min", "mean", "max", "std", "sum")

# ``p10``, ``p99.5``, rasterstats' ``percentile_10`` and exactextract's
# ``quantile(q=0.1)`` (its column: ``quantile_10``): exact, numpy's default
# (linear) method.
_PERCENTILE = re.compile(r"^(?:p|percentile_|quantile_)(\d+(?:\.\d+)?)$")
_QUANTILE = re.compile(r"^quantile\(\s*q\s*=\s*(\d*\.?\d+(?:e-?\d+)?)\s*\)$")
PATTERNS = "pNN, percentile_NN or quantile_NN (NN in 0..100), quantile(q=F) (F in 0..1)"

StatsLike = str | Iterable[str] | Mapping[str, "str | Callable[[np.ndarray], float]"]


def quantile(q: float) -> Statistic:
    """The exact ``q`` quantile (0 <= q <= 1) of a zone's values."""
    return Statistic(
        "quantile", ("values",), _quantile(q), weighted=False, param=float(q)
    )


def function(func: Callable[[np.ndarray], float]) -> Statistic:
    """A user function of a zone's valid values (1-D float64, never empty)."""

    def apply(values: np.ndarray, weights: np.ndarray | None) -> float:
        return func(values)

    apply.__wrapped__ = func  # type: ignore[attr-defined]  # its token is func's
    return Statistic(
        "function", ("values",), apply, weighted=False, doc="user function"
    )


def lookup(name: str) -> Statistic:
    """The statistic a name asks for: a name, an alias, or a quantile pattern.

    Raises
    ------
    StatisticError
        If the name is none of these, with the closest valid names.
    """
    name = name.strip()
    if name in STATISTICS or name in ALIASES:
        return STATISTICS[ALIASES.get(name, name)]
    percentile, fraction = _PERCENTILE.match(name), _QUANTILE.match(name)
    if percentile and 0 <= float(percentile.group(1)) <= 100:
        return quantile(float(percentile.group(1)) / 100)
    if fraction and 0 <= float(fraction.group(1)) <= 1:
        return quantile(float(fraction.group(1)))
    known = [*STATISTICS, *ALIASES]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise StatisticError(
        f"unknown statistic {name!r}; {hint}valid names: {', '.join(known)}, {PATTERNS}"
    )


def column_name(name: str) -> str:
    """The column a statistic name gives: the name, or ``quantile_NN``."""
    fraction = _QUANTILE.match(name.strip())
    if fraction is None:
        return name.strip()
    return f"quantile_{float(fraction.group(1)) * 100:g}"


def resolve(stats: StatsLike) -> list[Column]:
    """The output columns ``stats`` asks for, in order.

    Parameters
    ----------
    stats
        Statistic names, as an iterable or one comma- or space-separated
        string; ``pNN`` (or ``percentile_NN``, ``quantile(q=F)``) for any
        quantile. A mapping names output columns: each value is a statistic
        name or a function of each zone's valid values (a 1-D float64 array,
        never empty), returning a number.

    Raises
    ------
    StatisticError
        If a name is unknown, a column repeats, or no statistic is given.
    """
    if isinstance(stats, Mapping):
        columns = [
            Column(str(k), function(v) if callable(v) else lookup(str(v)))
            for k, v in stats.items()
        ]
    else:
        if isinstance(stats, str):
            stats = stats.replace(",", " ").split()
        columns = [Column(column_name(str(s)), lookup(str(s))) for s in stats]
    if not columns:
        raise StatisticError(
            "no statistic requested; valid names: " + ", ".join(STATISTICS)
        )
    names = [c.name for c in columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StatisticError(f"statistic {', '.join(map(repr, repeated))} repeated")
    return columns


def markdown_table() -> str:
    """The README's table of statistics, from ``STATISTICS``."""
    lines = [
        "| statistic | also called | with coverage weights | what it is |",
        "| --- | --- | --- | --- |",
    ]
    for s in _ENTRIES:
        aliases = ", ".join(f"`{a}`" for a in s.aliases)
        weighted = "yes" if s.weighted else "no"
        lines.append(f"| `{s.name}` | {aliases} | {weighted} | {s.description} |")
    lines.append(
        "| `pNN` | `percentile_NN`, `quantile_NN`, `quantile(q=F)` | no | exact "
        "quantile (numpy's linear method); `quantile(q=0.25)` gives column "
        "`quantile_25` |"
    )
    return "\n".join(lines)
