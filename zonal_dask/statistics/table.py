"""The table of statistics: each statistic is one entry, defined here only.

An entry names the partial fields it reads (``reduce/partials.py`` computes them in
one pass per chunk and combines them in the tree), its finalize step, its
aliases, whether it is defined under coverage weighting, and its dtype. What a
run computes, which statistics a route or weighting offers, a checkpoint's
identity, the command line's ``--stats`` and the README's table all derive
from ``STATISTICS``. Adding a statistic is adding an entry.

Fields and the finalize step they imply:

* moment fields (``count``, ``nodata``, ``sum``, ``mean``, ``variance``,
  ``moment3``, ``moment4``, ``min``, ``max``, the centres ``min_center_x``
  ... of the cells holding them), the same weighted by a weights raster
  (``WEIGHTED_FIELDS``) and zone fields (``outside``), all declared in
  ``statistics/fields.py`` (an entry reading any other name fails at
  import): ``finalize(fields)`` gets them as dense arrays over
  all zones (count 0 and NaN elsewhere for a zone without valid pixels) and
  returns the column, vectorised;
* ``classes``: ``finalize(classes)`` gets a ``ClassTable`` (weight per zone
  and value, and with ``weighted_classes`` the weights raster's sums) and
  returns a column, or several named by class;
* ``values``: ``finalize(values, weights)`` gets one zone's valid values
  (1-D float64, never empty) and None, or under coverage weighting its
  distinct values (sorted) and their summed weights, and returns a number;
  with ``cells`` each cell's value and weight instead, and with
  ``weighted_values`` also each cell's value of the weights raster.

Under coverage weighting (``weighted``) a statistic has exactextract's
meaning: counts are sums of coverage weights, quantiles are exactextract's
weighted quantiles of a zone's distinct values (in the raster's type:
``cast``), ``majority`` takes the largest value on ties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..reduce.classes import (
    ClassTable,
    distinct_values,
    extreme_class,
    per_class,
    ratio,
    weighted_quantile,
)
from . import fields as declared

# exactextract's coverage_weight: what a pixel a polygon touches weighs
COVERAGE_KINDS = (
    "fraction",
    "none",
    "area_cartesian",
    "area_spherical_m2",
    "area_spherical_km2",
)
ZONE_FIELDS = declared.ZONE_FIELDS
VALUE_FIELDS = ("classes", "values")
WEIGHTED_FIELDS = tuple(declared.WEIGHTED_FIELDS)


@dataclass(frozen=True)
class Statistic:
    """One statistic: what it reads, how it is finalized, and its properties.

    ``dtype`` is its column's dtype, ``weighted_dtype`` the same under coverage
    weighting (counts become sums of weights); ``weighted`` says whether it is
    defined there at all; ``cast`` that it is given in the raster's type
    there, as exactextract gives it; ``pixel`` that it is one of the zone's
    pixel values (an integer raster's keeps its integer type, as
    exactextract's); ``cells`` that it reads each cell's value and weight, not
    the distinct values' summed weights; ``per_class`` that it gives a column
    per class, not one; ``param`` is a quantile's q,
    ``token`` a digest of a user function.
    """

    name: str
    reads: tuple[str, ...]
    finalize: Callable[..., Any]
    dtype: str = "float64"
    weighted: bool = True
    weighted_dtype: str = "float64"
    cast: bool = False
    pixel: bool = False
    cells: bool = False
    per_class: bool = False
    aliases: tuple[str, ...] = ()
    doc: str = ""
    param: float | None = None
    token: str = ""

    def __post_init__(self) -> None:
        declared.check_reads(self.name, self.reads)

    @property
    def description(self) -> str:
        """``doc``, or the first paragraph of the finalize step's docstring."""
        paragraph = (self.finalize.__doc__ or "").strip().split("\n\n")[0]
        return self.doc or " ".join(line.strip() for line in paragraph.splitlines())

    @property
    def family(self) -> str:
        """``values``, ``classes``, or ``moments`` (moment and zone fields)."""
        for family in VALUE_FIELDS[::-1]:
            if family in self.reads:
                return family
        return "moments"

    @property
    def needs_weights(self) -> bool:
        """Whether it reads a weights raster."""
        return any(
            f in (*WEIGHTED_FIELDS, "weighted_classes", "weighted_values")
            for f in self.reads
        )

    @property
    def identity(self) -> tuple:
        """What the statistic is, whatever its column is called."""
        return (self.name, self.family, self.param, self.token)


class Column(NamedTuple):
    """An output column: its name and the statistic it holds."""

    name: str
    statistic: Statistic


Fields = Mapping[str, np.ndarray]


def _majority(c: ClassTable) -> np.ndarray:
    """most frequent value (the smallest on ties; under coverage the largest, as
    exactextract)"""
    return extreme_class(c, np.maximum, largest=c.coverage)


def _minority(c: ClassTable) -> np.ndarray:
    """least frequent value (the smallest on ties)"""
    return extreme_class(c, np.minimum, largest=False)


def _variety(c: ClassTable) -> np.ndarray:
    """number of distinct values"""
    return np.bincount(c.zone[c.weight > 0], minlength=c.n_zones)


def _unique(c: ClassTable) -> np.ndarray:
    """the distinct values, ascending (an array per zone)"""
    return distinct_values(c)


def _histogram(c: ClassTable) -> dict[Any, np.ndarray]:
    """one column per value, named by it: the zone's pixels of that value"""
    return per_class(c, c.weight, "", share=False)


def _frac(c: ClassTable) -> dict[Any, np.ndarray]:
    """one column per value, `frac_<value>`: its share of the zone's pixels
    (of its coverage under coverage)"""
    return per_class(c, c.weight, "frac_", share=True)


def _weighted_frac(c: ClassTable) -> dict[Any, np.ndarray]:
    """one column per value, `weighted_frac_<value>`: its share of the zone's
    sum of weights"""
    assert c.weighted is not None
    return per_class(c, c.weighted, "weighted_frac_", share=True)


def _median(values: np.ndarray, weights: np.ndarray | None) -> float:
    """exact median (numpy.median; under coverage exactextract's weighted median)"""
    if weights is not None:
        return weighted_quantile(values, weights, 0.5)
    return float(np.median(values))


def _mad(values: np.ndarray, weights: np.ndarray | None) -> float:
    """median absolute deviation from the median"""
    return float(np.median(np.abs(values - np.median(values))))


def _quantile(q: float) -> Callable[[np.ndarray, np.ndarray | None], float]:
    def quantile(values: np.ndarray, weights: np.ndarray | None) -> float:
        if weights is not None:
            return weighted_quantile(values, weights, q)
        return float(np.quantile(values, q))

    return quantile


def _field(name: str, doc: str) -> Callable[[Fields], np.ndarray]:
    """The finalize step of a statistic that is one field as it is."""

    def finalize(f: Fields) -> np.ndarray:
        return f[name]

    finalize.__doc__ = doc
    return finalize


def _nodata_fraction(f: Fields) -> np.ndarray:
    """nodata_count / (count + nodata_count)"""
    return ratio(f["nodata"], f["nodata"] + f["count"])


def _range(f: Fields) -> np.ndarray:
    """max - min"""
    return f["max"] - f["min"]


def _std(f: Fields) -> np.ndarray:
    """population standard deviation (ddof=0)"""
    return np.sqrt(f["variance"])


def _coefficient_of_variation(f: Fields) -> np.ndarray:
    """std / mean"""
    return ratio(np.sqrt(f["variance"]), f["mean"])


def _skewness(f: Fields) -> np.ndarray:
    """population skewness m3 / m2**1.5 (scipy.stats.skew's default)

    Under coverage, the weighted moments: sum(w (x - mean)**3) / sum(w) over
    the same of the squares to the power 1.5. NaN when the values are all
    equal."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(f["variance"] > 0, f["moment3"] / f["variance"] ** 1.5, np.nan)


def _kurtosis(f: Fields) -> np.ndarray:
    """population excess kurtosis m4 / m2**2 - 3 (scipy.stats.kurtosis's default)

    Under coverage, of the weighted moments. NaN when the values are all
    equal."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            f["variance"] > 0, f["moment4"] / f["variance"] ** 2 - 3, np.nan
        )


def _weighted_std(f: Fields) -> np.ndarray:
    """population standard deviation weighted by the weights raster (x coverage)"""
    return np.sqrt(f["weighted_variance"])


def _centre(field: str) -> Statistic:
    extreme, axis = field.split("_")[0], field[-1]
    doc = f"{axis} of the centre of the first cell (row by row) holding the {extreme}"
    return Statistic(field, (field,), _field(field, doc))


_ENTRIES = (
    # each finalize step's docstring says what the statistic is
    Statistic(
        "count",
        ("count",),
        _field("count", "valid pixels (with coverage: the sum of their weights)"),
        dtype="int64",
    ),
    Statistic(
        "nodata_count",
        ("nodata",),
        _field("nodata", "pixels of the zone that are nodata or NaN"),
        dtype="int64",
        aliases=("nodata",),
    ),
    Statistic("nodata_fraction", ("count", "nodata"), _nodata_fraction),
    Statistic(
        "outside_fraction",
        ("outside",),
        _field("outside", "share of the polygon's area beyond the raster's extent"),
    ),
    Statistic("sum", ("sum",), _field("sum", "sum of valid values")),
    Statistic("mean", ("mean",), _field("mean", "arithmetic mean")),
    Statistic("min", ("min",), _field("min", "smallest valid value"), pixel=True),
    Statistic("max", ("max",), _field("max", "largest valid value"), pixel=True),
    Statistic("range", ("min", "max"), _range),
    Statistic(
        "var",
        ("variance",),
        _field("variance", "population variance (ddof=0)"),
        aliases=("variance",),
    ),
    Statistic("std", ("variance",), _std, aliases=("stdev",)),
    Statistic(
        "coefficient_of_variation", ("variance", "mean"), _coefficient_of_variation
    ),
    Statistic("skewness", ("variance", "moment3"), _skewness),
    Statistic("kurtosis", ("variance", "moment4"), _kurtosis),
    Statistic("median", ("values",), _median, cast=True),
    Statistic("mad", ("values",), _mad, weighted=False),
    Statistic("majority", ("classes",), _majority, pixel=True, aliases=("mode",)),
    Statistic("minority", ("classes",), _minority, pixel=True),
    Statistic("variety", ("classes",), _variety, dtype="int64", weighted_dtype="int64"),
    Statistic(
        "unique",
        ("classes",),
        _unique,
        dtype="object",
        weighted_dtype="object",
        pixel=True,
    ),
    Statistic("histogram", ("classes",), _histogram, dtype="int64", per_class=True),
    Statistic("frac", ("classes",), _frac, per_class=True),
    Statistic(
        "weighted_frac",
        ("classes", "weighted_classes"),
        _weighted_frac,
        per_class=True,
    ),
    Statistic(
        "weighted_sum",
        ("weighted_sum",),
        _field("weighted_sum", "sum of value x weight (x coverage)"),
    ),
    Statistic(
        "weighted_mean",
        ("weighted_mean",),
        _field("weighted_mean", "mean weighted by the weights raster (x coverage)"),
    ),
    Statistic(
        "weighted_var",
        ("weighted_variance",),
        _field(
            "weighted_variance",
            "population variance weighted by the weights raster (x coverage)",
        ),
        aliases=("weighted_variance",),
    ),
    Statistic(
        "weighted_std",
        ("weighted_variance",),
        _weighted_std,
        aliases=("weighted_stdev",),
    ),
    *(
        _centre(name)
        for name in ("min_center_x", "min_center_y", "max_center_x", "max_center_y")
    ),
)
STATISTICS: dict[str, Statistic] = {s.name: s for s in _ENTRIES}
ALIASES: dict[str, str] = {a: s.name for s in _ENTRIES for a in s.aliases}

DEFAULT_STATS: tuple[str, ...] = ("count", "min", "mean", "max", "std", "sum")


def classes_by_group(columns: Sequence[Column], dtype: Any) -> bool:
    """Whether the ``classes`` statistics of ``columns`` are computed from each
    zone group's values (as the ``values`` statistics) rather than from one
    table of (zone, value) weights merged over the whole raster.

    On a float raster nearly every pixel is a class of its own, and that
    table grows with the raster (4000² float32, ``majority``: 2.1 GB, 10 s;
    by zone group: a group's values at a time, benchmarks/README.md). A
    statistic with a column per class needs every zone's classes together,
    and keeps the whole table.
    """
    classes = [c.statistic for c in columns if c.statistic.family == "classes"]
    return (
        bool(classes)
        and np.dtype(dtype).kind == "f"
        and not any(s.per_class for s in classes)
    )


def quantile(q: float) -> Statistic:
    """The exact ``q`` quantile (0 <= q <= 1) of a zone's values."""
    return Statistic("quantile", ("values",), _quantile(q), cast=True, param=float(q))
