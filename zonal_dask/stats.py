"""The registry of statistics.

Each statistic is data, not a branch: it names the per-zone moments it reads and
the formula that turns them into its final value. Every chunk yields the same
moments (see ``reduce.Partials``); zones with no valid pixel reach the formulas
with ``count == 0`` and NaN in every other moment, so each formula gives NaN
for them without a special case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import StatisticError

Moments = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Statistic:
    """One statistic: its name, output dtype and final formula."""

    name: str
    dtype: str
    formula: Callable[[Moments], np.ndarray]
    doc: str


def _std(m: Moments) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(m["m2"] / m["count"])


STATISTICS: dict[str, Statistic] = {
    s.name: s
    for s in (
        Statistic("count", "int64", lambda m: m["count"], "number of valid pixels"),
        Statistic("min", "float64", lambda m: m["min"], "smallest valid value"),
        Statistic("mean", "float64", lambda m: m["mean"], "arithmetic mean"),
        Statistic("max", "float64", lambda m: m["max"], "largest valid value"),
        Statistic("std", "float64", _std, "population standard deviation (ddof=0)"),
        Statistic("sum", "float64", lambda m: m["sum"], "sum of valid values"),
    )
}

DEFAULT_STATS: tuple[str, ...] = ("count", "min", "mean", "max", "std", "sum")


def resolve(stats: str | Iterable[str]) -> list[Statistic]:
    """Return the registry entries for ``stats``, in the order asked.

    Parameters
    ----------
    stats
        Statistic names, as an iterable or one comma- or space-separated string.

    Raises
    ------
    StatisticError
        If a name is unknown, a name repeats, or no name is given.
    """
    if isinstance(stats, str):
        stats = stats.replace(",", " ").split()
    names = [str(s).strip() for s in stats]
    if not names:
        raise StatisticError("no statistic requested; valid names: " + _valid())
    unknown = [n for n in names if n not in STATISTICS]
    if unknown:
        raise StatisticError(
            f"unknown statistic {', '.join(map(repr, unknown))}; valid names: "
            + _valid()
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StatisticError(f"statistic {', '.join(map(repr, repeated))} repeated")
    return [STATISTICS[n] for n in names]


def _valid() -> str:
    return ", ".join(STATISTICS)
