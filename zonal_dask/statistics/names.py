"""The names users give statistics, resolved to the table's entries.

A name, an alias of ``STATISTICS`` (``statistics/table.py``), a quantile
pattern (``p90``, ``percentile_90``, ``quantile(q=0.9)``) or a user function
becomes an output ``Column``; every unknown name is reported at once with the
closest valid one. The README's table of statistics is written from here.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import StatisticError
from .table import ALIASES, STATISTICS, Column, Statistic, quantile

# ``p10``, ``p99.5``, rasterstats' ``percentile_10`` and exactextract's
# ``quantile(q=0.1)`` (its column: ``quantile_10``): exact, numpy's default
# (linear) method.
_PERCENTILE = re.compile(r"^(?:p|percentile_|quantile_)(\d+(?:\.\d+)?)$")
_QUANTILE = re.compile(r"^quantile\(\s*q\s*=\s*(\d*\.?\d+(?:e-?\d+)?)\s*\)$")
PATTERNS = "pNN, percentile_NN or quantile_NN (NN in 0..100), quantile(q=F) (F in 0..1)"

StatsLike = str | Iterable[str] | Mapping[str, "str | Callable[[np.ndarray], float]"]


def function(func: Callable[..., Any]) -> Statistic:
    """A user function of a zone's valid values (1-D float64, never empty);
    one of ``(values, coverage)`` (exactextract's custom operations) gets each
    of its cells' value and weight (1 without coverage weighting), in
    ascending value order whatever the chunking, and may return any object;
    one of ``(values, coverage, weights)`` gets besides each cell's value of
    the weights raster (NaN where it has none), as exactextract's."""
    arity = _positional_arguments(func)
    if arity in (2, 3):

        def cells(
            values: np.ndarray, weights: np.ndarray | None, *raster: np.ndarray
        ) -> Any:
            coverage = np.ones(values.size) if weights is None else weights
            return func(values, coverage, *raster)

        cells.__wrapped__ = func  # type: ignore[attr-defined]
        return Statistic(
            "function",
            ("values", "weighted_values") if arity == 3 else ("values",),
            cells,
            dtype="object",
            weighted_dtype="object",
            cells=True,
            doc="user function of values, coverage"
            + (" and weights" if arity == 3 else ""),
        )

    def apply(values: np.ndarray, weights: np.ndarray | None) -> float:
        return func(values)

    apply.__wrapped__ = func  # type: ignore[attr-defined]  # its token is func's
    return Statistic(
        "function", ("values",), apply, weighted=False, doc="user function"
    )


def _positional_arguments(func: Callable[..., Any]) -> int:
    """How many positional arguments ``func`` takes without defaults (1 for
    what cannot be inspected, such as numpy's ufuncs)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is p.empty for p in parameters)


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
    raise _unknown([name])


def _unknown(names: Sequence[str]) -> StatisticError:
    """One error naming every unknown name, each with its closest valid one."""
    known = [*STATISTICS, *ALIASES]
    told = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1)
        told.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    what = "statistic" if len(names) == 1 else "statistics"
    return StatisticError(
        f"unknown {what} {', '.join(told)}; valid names: {', '.join(known)}, {PATTERNS}"
    )


def _lookup_all(names: Sequence[str]) -> list[Statistic]:
    """``lookup`` of each name; every unknown one reported at once."""
    found, unknown = [], []
    for name in names:
        try:
            found.append(lookup(name))
        except StatisticError:
            unknown.append(name.strip())
    if unknown:
        raise _unknown(unknown)
    return found


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
        named = [str(v) for v in stats.values() if not callable(v)]
        statistics = iter(_lookup_all(named))
        columns = [
            Column(str(k), function(v) if callable(v) else next(statistics))
            for k, v in stats.items()
        ]
    else:
        if isinstance(stats, str):
            stats = stats.replace(",", " ").split()
        names = [str(s) for s in stats]
        columns = [
            Column(column_name(n), s)
            for n, s in zip(names, _lookup_all(names), strict=True)
        ]
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
    for s in STATISTICS.values():
        aliases = ", ".join(f"`{a}`" for a in s.aliases)
        weighted = "yes" if s.weighted else "no"
        lines.append(f"| `{s.name}` | {aliases} | {weighted} | {s.description} |")
    lines.append(
        "| `pNN` | `percentile_NN`, `quantile_NN`, `quantile(q=F)` | yes | exact "
        "quantile (numpy's linear method; under coverage exactextract's weighted "
        "quantile); `quantile(q=0.25)` gives column `quantile_25` |"
    )
    return "\n".join(lines)
