"""Partials, their merge, the dask tree reduction and the final table.

The contract, in the manner of ``dask.array.reduction``:

* chunk step, ``chunk_partials(values, labels, nodata)``: one raster block and
  its ``ChunkLabels`` in, one ``Partials`` out, holding only the zones present
  in that block that have at least one valid pixel (sparse);
* combine step, ``merge(list_of_partials)``: any number of ``Partials`` in, one
  out; associative, so the tree's shape never changes the result beyond
  rounding;
* final step, ``finalize(partials, n_zones, stats, index)``: the merged
  ``Partials`` in, a dense ``pandas.DataFrame`` over all zones out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import dask.array as da
import numpy as np
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from . import kernels
from .rasterize import ChunkLabels, ChunkTask, rasterize_chunk, tasks_token
from .stats import Statistic

FIELDS = ("zone", "count", "sum", "shift", "mean", "m2", "min", "max")


class Partials(NamedTuple):
    """Per-zone moments of part of a raster, for the zones present only.

    ``zone`` is sorted and unique (int64 global zone index); the other fields
    are aligned with it: ``count`` (int64) and float64 ``sum``, ``shift`` (one
    of the zone's values), ``mean`` (of the values minus ``shift``), ``m2`` (sum
    of squared deviations from the mean), ``min``, ``max``. Carrying the
    shift keeps the deviations in Chan's merge exact for values near 1e8.
    """

    zone: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    shift: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def empty(cls) -> Partials:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), *[np.empty(0)] * 6)


def chunk_partials(
    values: np.ndarray, labels: ChunkLabels, nodata: float | None
) -> Partials:
    """The chunk step: one pass of the compiled kernel over one block."""
    values = np.ascontiguousarray(values)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D block, got shape {values.shape}")
    has_nodata, nodata_value = _nodata_in_dtype(nodata, values.dtype)
    count, total, shift, mean, m2, lo, hi = kernels.moments(
        values,
        labels.labels,
        labels.extra_pixels,
        labels.extra_zones,
        len(labels.zones),
        nodata_value,
        has_nodata,
    )
    keep = count > 0
    zone = labels.zones[keep]
    order = np.argsort(zone, kind="stable")
    return Partials(
        *(a[keep][order] for a in (labels.zones, count, total, shift, mean, m2, lo, hi))
    )


def _nodata_in_dtype(nodata: float | None, dtype: np.dtype) -> tuple[bool, float]:
    """The nodata value as the kernel compares it: cast to the raster's dtype.

    A value the dtype cannot hold (NaN for integers, 300 for uint8) matches no
    pixel. NaN needs no flag: the kernel always drops NaN.
    """
    if nodata is None or np.isnan(nodata):
        return False, 0.0
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not (info.min <= nodata <= info.max) or nodata != int(nodata):
            return False, 0.0
    return True, float(np.asarray(nodata).astype(dtype))


def merge(parts: Sequence[Partials]) -> Partials:
    """The combine step: merge any number of partials (Chan et al. for M2)."""
    parts = [p for p in parts if len(p.zone)]
    if not parts:
        return Partials.empty()
    if len(parts) == 1:
        return parts[0]
    cat = Partials(*(np.concatenate(f) for f in zip(*parts, strict=True)))
    order = np.argsort(cat.zone, kind="stable")
    cat = Partials(*(a[order] for a in cat))
    starts = np.flatnonzero(np.diff(cat.zone, prepend=-1))
    group = np.cumsum(np.diff(cat.zone, prepend=-1) != 0) - 1
    count = np.add.reduceat(cat.count, starts)
    shift = cat.shift[starts]
    # each part's mean relative to its group's common shift
    relative = (cat.shift - shift[group]) + cat.mean
    mean = np.add.reduceat(cat.count * relative, starts) / count
    deviation = relative - mean[group]
    m2 = np.add.reduceat(cat.m2 + cat.count * deviation * deviation, starts)
    return Partials(
        zone=cat.zone[starts],
        count=count,
        sum=np.add.reduceat(cat.sum, starts),
        shift=shift,
        mean=mean,
        m2=m2,
        min=np.minimum.reduceat(cat.min, starts),
        max=np.maximum.reduceat(cat.max, starts),
    )


def finalize(
    partials: Partials | Sequence[Partials],
    n_zones: int,
    stats: Sequence[Statistic],
    index: pd.Index,
) -> pd.DataFrame:
    """The final step: a dense table, one row per zone in input order."""
    if not isinstance(partials, Partials):
        partials = merge(partials)
    moments: dict[str, np.ndarray] = {"count": np.zeros(n_zones, np.int64)}
    moments["count"][partials.zone] = partials.count
    for field in ("sum", "m2", "min", "max"):
        moments[field] = np.full(n_zones, np.nan)
        moments[field][partials.zone] = getattr(partials, field)
    moments["mean"] = np.full(n_zones, np.nan)
    moments["mean"][partials.zone] = partials.shift + partials.mean
    return pd.DataFrame(
        {s.name: np.asarray(s.formula(moments), dtype=s.dtype) for s in stats},
        index=index,
    )


def zonal_graph(
    values: da.Array,
    tasks: Sequence[ChunkTask],
    nodata: float | None,
    stats: Sequence[Statistic],
    index: pd.Index,
    split_every: int = 8,
    wrap_chunk: Callable[[tuple[int, int], tuple], tuple] | None = None,
) -> Delayed:
    """The whole computation as one lazy object.

    One task per raster chunk that some zone meets (read, rasterize, kernel),
    a tree of ``merge`` tasks with ``split_every`` inputs each, and one
    ``finalize`` task that returns the ``pandas.DataFrame``. ``wrap_chunk``,
    if given, maps each chunk's block index and task to the task to run
    instead (``checkpoint.Checkpoint.wrap`` saves or loads the partials).
    """
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    token = tokenize(
        values.name,
        tasks_token(tasks),
        nodata,
        [s.name for s in stats],
        list(index),
        index.name,
        split_every,
        wrap_chunk,
    )
    chunk_name = f"zonal-chunk-{token}"
    dsk: dict = {}
    level = []
    for t in tasks:
        key = (chunk_name, *t.block)
        labels = (
            rasterize_chunk,
            t.geometries,
            t.zones,
            t.offset,
            t.shape,
            t.orientation,
        )
        dsk[key] = (chunk_partials, (values.name, *t.block), labels, nodata)
        if wrap_chunk is not None:
            dsk[key] = wrap_chunk(t.block, dsk[key])
        level.append(key)
    depth = 0
    while len(level) > split_every:
        name = f"zonal-merge-{depth}-{token}"
        groups = [level[i : i + split_every] for i in range(0, len(level), split_every)]
        level = []
        for g, group in enumerate(groups):
            dsk[(name, g)] = (merge, group)
            level.append((name, g))
        depth += 1
    final = f"zonal-stats-{token}"
    dsk[final] = (finalize, level, len(index), list(stats), index)
    graph = HighLevelGraph.from_collections(final, dsk, dependencies=[values])
    return Delayed(final, graph)
