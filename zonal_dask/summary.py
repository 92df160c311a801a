"""The run summary the command prints on stderr when it has written its output.

zonal-dask: 300 zones, 4,194,304 pixels read in 1.92 s (2.2 Mpixel/s),
peak memory 412 MB, 4 zones with no valid pixel
  planning 0.61 s, compute 1.18 s, write 0.13 s       (with -v)
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from dask.delayed import Delayed

CHUNK_TASK = re.compile(r"zonal-(chunk|coverage)-[0-9a-f]+")


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


def pixels_read(lazy: Delayed, chunks: Sequence[Sequence[int]]) -> int:
    """Pixels of the raster chunks the computation reads.

    Only chunks that hold zones have a task, named as dask names blocks:
    ``(zonal-chunk-<token>, [plane,] row, col)``, or ``zonal-coverage-<token>``
    for coverage weights; each reads its whole chunk of the raster, whose
    chunk sizes along each dimension are ``chunks``.
    """
    blocks = {
        key[1:]
        for key in lazy.dask
        if isinstance(key, tuple) and CHUNK_TASK.fullmatch(str(key[0]))
    }
    return sum(
        math.prod(int(sizes[i]) for sizes, i in zip(chunks, block, strict=True))
        for block in blocks
    )


def zones_without_data(table: pd.DataFrame, stats: Sequence[str]) -> int:
    """Zones with no valid pixel: count 0, or NaN in every other statistic.

    A long table (a row per zone and band) counts the zones with no valid
    pixel in any band.
    """
    if "count" in stats:
        empty = table["count"].to_numpy() == 0
    else:
        empty = np.isnan(table[list(stats)].to_numpy(dtype=float)).all(axis=1)
    zone = table.index.get_level_values(0)
    return int(pd.Series(empty, index=zone).groupby(level=0, sort=False).all().sum())


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
    empty: int,
    stopwatch: Stopwatch,
    memory: int | None,
    verbose: bool = False,
) -> str:
    """The summary's text, one line (two with ``verbose``)."""
    seconds = stopwatch.total
    rate = pixels / seconds / 1e6 if seconds > 0 else float("nan")
    memory_text = "unknown" if memory is None else f"{memory / 1e6:,.0f} MB"
    text = (
        f"zonal-dask: {_plural(zones, 'zone')}, {_plural(pixels, 'pixel')} read in "
        f"{seconds:.2f} s ({rate:.3g} Mpixel/s), peak memory {memory_text}, "
        f"{_plural(empty, 'zone')} with no valid pixel"
    )
    if verbose:
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in stopwatch.stages.items())
        text += f"\n  {stages}"
    return text
