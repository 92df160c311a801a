"""The run summary the command prints on stderr when it has written its output.

zonal-dask: 300 zones, 4,194,304 pixels read in 1.92 s (2.2 Mpixel/s),
peak memory 412 MB, 4 zones with no valid pixel
  planning 0.61 s, compute 1.18 s, write 0.13 s       (with -v)

A run resumed from a checkpoint says how many chunks it loaded, and counts
as read only the pixels of the others.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from dask.delayed import Delayed

from ..errors import StatisticError
from ..statistics.names import lookup


@dataclass
class Stopwatch:
    """Wall time since creation, split into named stages by ``lap``."""

    start: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        self._last = self.start

    def lap(self, stage: str) -> None:
        """Close ``stage``: the time since the previous lap is added to it."""
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self._last
        self._last = now

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


def pixels_read(
    lazy: Delayed,
    chunks: Sequence[Sequence[int]],
    skip: Collection[tuple[int, ...]] = (),
) -> int:
    """Pixels of the raster chunks the computation reads.

    Only chunks that hold zones have a task (``graph.chunk_keys``); each
    reads its whole chunk of the raster, whose chunk sizes along each
    dimension are ``chunks``. Blocks in ``skip`` (a checkpoint's, loaded
    instead) are not read.
    """
    from ..reduce.graph import chunk_keys

    blocks = {key[1:] for key in chunk_keys(lazy)} - set(skip)
    return sum(
        math.prod(int(sizes[i]) for sizes, i in zip(chunks, block, strict=True))
        for block in blocks
    )


# statistics that are NaN for a zone without valid pixels (and, but for
# infinite values, only then): a zone is empty when all of them are NaN
NAN_WHEN_EMPTY = {
    "sum", "mean", "min", "max", "range", "var", "std", "median", "mad",
    "majority", "minority", "quantile",
}  # fmt: skip


def zones_without_data(table: pd.DataFrame, stats: Sequence[str]) -> int | None:
    """Zones with no valid pixel: count 0, or NaN in every statistic that is
    NaN for such a zone; None when the statistics cannot tell (``unique``,
    ``histogram``, the fractions are numbers for an empty zone too).

    A long table (a row per zone and band) counts the zones with no valid
    pixel in any band.
    """
    if "count" in stats:
        empty = table["count"].to_numpy() == 0
    else:
        telling = [s for s in stats if _statistic(s) in NAN_WHEN_EMPTY]
        if not telling:
            return None
        empty = np.isnan(table[telling].to_numpy(dtype=float)).all(axis=1)
    zone = table.index.get_level_values(0)
    return int(pd.Series(empty, index=zone).groupby(level=0, sort=False).all().sum())


def _statistic(column: str) -> str | None:
    try:
        return lookup(column).name
    except StatisticError:
        return None


def peak_memory() -> int | None:
    """This process's peak resident memory in bytes (None where unknown).

    Workers of a distributed cluster are other processes, not counted here.
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def report(
    *,
    zones: int,
    pixels: int,
    empty: int | None,
    stopwatch: Stopwatch,
    memory: int | None,
    verbose: bool = False,
    resumed: tuple[int, int] | None = None,
) -> str:
    """The summary's text, one line (two with ``verbose``).

    ``resumed`` is (chunks loaded from a checkpoint, chunks in all).
    """
    seconds = stopwatch.total
    memory_text = "unknown" if memory is None else f"{memory / 1e6:,.0f} MB"
    if pixels and seconds > 0:
        read = f"{_plural(pixels, 'pixel')} read in {seconds:.2f} s "
        read += f"({pixels / seconds / 1e6:.3g} Mpixel/s)"
    else:
        read = f"no pixel read, {seconds:.2f} s"
    text = f"zonal-dask: {_plural(zones, 'zone')}, {read}"
    if resumed is not None:
        text += f", resumed: {resumed[0]:,} of {_plural(resumed[1], 'chunk')} loaded"
    text += f", peak memory {memory_text}"
    if empty is not None:
        text += f", {_plural(empty, 'zone')} with no valid pixel"
    if verbose:
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in stopwatch.stages.items())
        text += f"\n  {stages}"
    return text
