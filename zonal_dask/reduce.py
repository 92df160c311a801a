"""Partials, their merge, the dask graph and the final table.

The contract, in the manner of ``dask.array.reduction``:

* chunk step, ``chunk_step(values, labels, nodata, plan)``: one raster block
  and its ``ChunkLabels`` in; out a ``ChunkResult`` holding sparse ``Partials``
  (moments of the zones present in the block), and when asked sparse
  ``Counts`` (pixels per zone and value) and each zone's valid values, split
  by zone group;
* combine step, ``merge`` / ``merge_counts``: any number of partials in, one
  out; associative, so the tree's shape never changes the result beyond
  rounding;
* group step, ``group_step``: the values of one group of zones from every
  chunk they touch in, the ``values`` statistics of those zones out;
* final step, ``finalize``: the merged partials and the group results in, a
  ``pandas.DataFrame`` with one row per zone out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from . import kernels
from .coverage import CoverageParts, coverage_chunk, merge_coverage
from .errors import StatisticError
from .rasterize import NO_ZONE, ChunkLabels, ChunkTask, tasks_token
from .stats import Statistic, resolve


class Partials(NamedTuple):
    """Per-zone moments of part of a raster, for the zones present only.

    ``zone`` is sorted and unique (int64 global zone index); the other fields
    are aligned with it: int64 ``finite``, ``posinf``, ``neginf`` and
    ``nodata`` (nodata or NaN) pixel counts, float64 ``sum`` (finite values),
    ``shift`` (one of the zone's finite values), ``mean`` (of the finite values
    minus ``shift``), ``m2`` (their squared deviations from the mean), ``min``
    and ``max`` (of all valid values). The shift keeps the deviations in
    Chan's merge exact for values near 1e8.
    """

    zone: np.ndarray
    finite: np.ndarray
    posinf: np.ndarray
    neginf: np.ndarray
    nodata: np.ndarray
    sum: np.ndarray
    shift: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray

    @classmethod
    def empty(cls, k: int | None = None) -> Partials:
        shape = (0,) if k is None else (0, k)
        ints = [np.empty(shape, np.int64)] * 4
        return cls(np.empty(0, np.int64), *ints, *[np.empty(shape)] * 6)


class Counts(NamedTuple):
    """Pixels per (zone, value), sorted by zone then value; valid pixels only."""

    zone: np.ndarray
    value: np.ndarray
    count: np.ndarray  # type: ignore[assignment]  # shadows tuple.count

    @classmethod
    def empty(cls) -> Counts:
        return cls(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64))


class ZoneValues(NamedTuple):
    """Valid values of some zones, sorted by zone (``zone[i]`` owns ``value[i]``)."""

    zone: np.ndarray
    value: np.ndarray


class ChunkResult(NamedTuple):
    partials: Partials
    counts: Counts | None
    values: dict[int, ZoneValues] | None
    touched: ChunkResult | None = None  # the small-zone fallback (all touched)


@dataclass(frozen=True)
class Needs:
    """What the chunk step computes beyond the moments."""

    counts: bool = False
    values: bool = False


def valid_pixels(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Boolean mask of valid pixels: not NaN, not nodata (as the kernel decides)."""
    valid = np.ones(values.shape, bool)
    if np.issubdtype(values.dtype, np.floating):
        valid &= ~np.isnan(values)
    has_nodata, nodata_value = _nodata_in_dtype(nodata, values.dtype)
    if has_nodata:
        valid &= values != nodata_value
    return valid


def chunk_step(
    values: np.ndarray,
    labels: ChunkLabels,
    nodata: float | None,
    needs: Needs = Needs(),
    groups: np.ndarray | int | None = None,
    planes: tuple[int, int] = (0, 1),
) -> ChunkResult:
    """The chunk step: the kernel's one pass, plus counts or values when asked.

    A 3-D block holds planes ``planes[0]``, ... of ``planes[1]`` bands or time
    steps; its counts and values are keyed by ``zone * planes[1] + plane``.

    ``groups`` gives, for each of the chunk's zones, the zone group its values
    go to, or a number of groups to spread zones over by id (needed when
    ``needs.values``).
    """
    values = np.ascontiguousarray(values)
    touched = None
    if labels.touched is not None:
        touched = chunk_step(values, labels.touched, nodata, needs, groups)
    partials = chunk_partials(values, labels, nodata)
    if not (needs.counts or needs.values):
        return ChunkResult(partials, None, None, touched)
    if values.ndim == 3:  # (zone, plane) pairs as virtual zones zone * n + plane
        offset, n_planes = planes
        claims = [_valid_claims(plane, labels, nodata) for plane in values]
        zone = np.concatenate(
            [z * n_planes + offset + p for p, (z, _) in enumerate(claims)]
        )
        value = np.concatenate([v for _, v in claims])
        real = zone // n_planes
    else:
        zone, value = _valid_claims(values, labels, nodata)
        real = zone
    counts = _count(zone, value) if needs.counts else None
    by_group = None
    if needs.values:
        assert groups is not None
        order = np.argsort(zone, kind="stable")
        zone, value, real = zone[order], value[order], real[order]
        if isinstance(groups, np.ndarray):
            group = groups[np.searchsorted(labels.zones, real)]
        else:  # zones of a label raster: spread over ``groups`` groups
            group = real % groups
        by_group = {
            int(g): ZoneValues(zone[group == g], value[group == g])
            for g in np.unique(group)
        }
    return ChunkResult(partials, counts, by_group, touched)


def chunk_partials(
    values: np.ndarray, labels: ChunkLabels, nodata: float | None
) -> Partials:
    """One pass of the compiled kernel over a 2-D block, or each plane of a 3-D one.

    A 3-D block ``(k, rows, cols)`` (bands or time steps) gives fields of shape
    ``(zones, k)``; every plane shares the labels.
    """
    has_nodata, nodata_value = _nodata_in_dtype(nodata, values.dtype)
    planes = values if values.ndim == 3 else values[np.newaxis]
    results = [
        kernels.moments(
            np.ascontiguousarray(plane),
            labels.labels,
            labels.extra_pixels,
            labels.extra_zones,
            len(labels.zones),
            nodata_value,
            has_nodata,
        )
        for plane in planes
    ]
    acc = np.stack([r[0] for r in results], axis=1)  # (zones, k, 9)
    lo = np.stack([r[1] for r in results], axis=1)
    hi = np.stack([r[2] for r in results], axis=1)
    keep = acc[:, :, :4].sum(axis=(1, 2)) > 0
    order = np.argsort(labels.zones[keep], kind="stable")
    acc, lo, hi = acc[keep][order], lo[keep][order], hi[keep][order]
    if values.ndim == 2:
        acc, lo, hi = acc[:, 0], lo[:, 0], hi[:, 0]
    ints = np.moveaxis(acc[..., :4].astype(np.int64), -1, 0)
    return Partials(
        labels.zones[keep][order],
        ints[0],
        ints[1],
        ints[2],
        ints[3],
        acc[..., 4] + acc[..., 5],
        acc[..., 6],
        acc[..., 7],
        acc[..., 8],
        lo,
        hi,
    )


def warm_up(dtype: np.dtype) -> None:
    """Load the compiled kernels for a raster of ``dtype`` from numba's cache.

    The first call of a cached kernel in a process still costs about 0.3 s
    (numba sets up its compiler); running it on a thread while the zones are
    read overlaps that with I/O instead of delaying the first chunk. The
    arguments have the types ``chunk_partials`` and ``rasterize`` pass (any
    nodata gives the same types: a flag and a float).
    """
    has_nodata, nodata = _nodata_in_dtype(None, dtype)
    no_claims = np.empty(0, np.int64), np.empty(0, np.int32)
    labels = np.full((1, 1, 1), NO_ZONE, np.int32)
    kernels.moments(np.zeros((1, 1), dtype), labels, *no_claims, 0, nodata, has_nodata)
    kernels.decode_claims(np.zeros((1, 1), np.int64), 16, 1)


def _valid_claims(
    values: np.ndarray, labels: ChunkLabels, nodata: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """(global zone, float64 value) of every valid claimed pixel."""
    valid = valid_pixels(values, nodata)
    single = (labels.labels >= 0) & valid  # (layers, rows, cols)
    flat = values.reshape(-1)
    extra = valid.reshape(-1)[labels.extra_pixels]
    layered = np.broadcast_to(values, labels.labels.shape)
    zone = np.concatenate(
        [
            labels.zones[labels.labels[single]],
            labels.zones[labels.extra_zones[extra]],
        ]
    )
    value = np.concatenate([layered[single], flat[labels.extra_pixels[extra]]])
    return zone, value.astype(np.float64)


def _count(zone: np.ndarray, value: np.ndarray) -> Counts:
    if zone.size == 0:
        return Counts.empty()
    order = np.lexsort((value, zone))
    zone, value = zone[order], value[order]
    new = np.ones(zone.size, bool)
    new[1:] = (zone[1:] != zone[:-1]) | (value[1:] != value[:-1])
    starts = np.flatnonzero(new)
    return Counts(zone[starts], value[starts], np.diff(np.append(starts, zone.size)))


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


def merge(inputs: Sequence[Partials | ChunkResult]) -> Partials:
    """The combine step for moments (Chan et al. for M2)."""
    parts = [p.partials if isinstance(p, ChunkResult) else p for p in inputs]
    parts = [p for p in parts if len(p.zone)]
    if not parts:
        return Partials.empty()
    if len(parts) == 1:
        return parts[0]
    if parts[0].finite.ndim == 2:  # bands or time steps: merge each column
        columns = [
            merge([Partials(p.zone, *(f[:, c] for f in p[1:])) for p in parts])
            for c in range(parts[0].finite.shape[1])
        ]
        fields = zip(*(c[1:] for c in columns), strict=True)
        return Partials(columns[0].zone, *(np.stack(f, axis=1) for f in fields))
    cat = Partials(*(np.concatenate(f) for f in zip(*parts, strict=True)))
    order = np.argsort(cat.zone, kind="stable")
    cat = Partials(*(a[order] for a in cat))
    new = np.diff(cat.zone, prepend=-1) != 0
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    finite = np.add.reduceat(cat.finite, starts)
    # shift of each group: the first finite part's, so deviations stay small
    has = cat.finite > 0
    first = np.full(starts.size, -1)
    hit = np.flatnonzero(has)
    _, at = np.unique(group[hit], return_index=True)
    first[group[hit[at]]] = hit[at]
    shift = np.where(first >= 0, cat.shift[np.maximum(first, 0)], 0.0)
    relative = np.where(has, (cat.shift - shift[group]) + cat.mean, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(cat.finite * relative, starts) / finite
    deviation = np.where(has, relative - np.nan_to_num(mean)[group], 0.0)
    m2 = np.add.reduceat(cat.m2 + cat.finite * deviation * deviation, starts)
    return Partials(
        zone=cat.zone[starts],
        finite=finite,
        posinf=np.add.reduceat(cat.posinf, starts),
        neginf=np.add.reduceat(cat.neginf, starts),
        nodata=np.add.reduceat(cat.nodata, starts),
        sum=np.add.reduceat(cat.sum, starts),
        shift=shift,
        mean=np.nan_to_num(mean),
        m2=m2,
        min=np.minimum.reduceat(cat.min, starts),
        max=np.maximum.reduceat(cat.max, starts),
    )


def _touched(parts: Sequence) -> list:
    """The small-zone fallback's results of chunk results (merged parts as they are)."""
    return [
        p.touched if isinstance(p, ChunkResult) else p
        for p in parts
        if not (isinstance(p, ChunkResult) and p.touched is None)
    ]


def merge_touched(parts: Sequence[Partials | ChunkResult]) -> Partials:
    """``merge`` over the small-zone fallback's moments."""
    return merge(_touched(parts))


def merge_counts_touched(parts: Sequence[Counts | ChunkResult]) -> Counts:
    """``merge_counts`` over the small-zone fallback's counts."""
    return merge_counts(_touched(parts))


def merge_counts(inputs: Sequence[Counts | ChunkResult]) -> Counts:
    """The combine step for (zone, value) counts."""
    found = [p.counts if isinstance(p, ChunkResult) else p for p in inputs]
    parts = [p for p in found if p is not None and len(p.zone)]
    if not parts:
        return Counts.empty()
    if len(parts) == 1:
        return parts[0]
    zone, value, count = (np.concatenate(f) for f in zip(*parts, strict=True))
    order = np.lexsort((value, zone))
    zone, value, count = zone[order], value[order], count[order]
    new = np.ones(zone.size, bool)
    new[1:] = (zone[1:] != zone[:-1]) | (value[1:] != value[:-1])
    starts = np.flatnonzero(new)
    return Counts(zone[starts], value[starts], np.add.reduceat(count, starts))


def group_step(
    results: Sequence[ChunkResult], group: int, stats: list, touched: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ``values`` statistics of one group of zones.

    Returns the group's zones that have valid values (sorted global ids) and,
    for each statistic, its value for each of them. With ``touched``, from the
    small-zone fallback's values instead.
    """
    if touched:
        results = [r.touched for r in results if r.touched is not None]
    pieces = [
        r.values[group] for r in results if r.values is not None and group in r.values
    ]
    zone = np.concatenate([p.zone for p in pieces]) if pieces else np.empty(0, int)
    value = np.concatenate([p.value for p in pieces]) if pieces else np.empty(0)
    order = np.argsort(zone, kind="stable")
    zone, value = zone[order], value[order]
    zones, starts = np.unique(zone, return_index=True)
    bounds = np.append(starts, zone.size)
    out = {s.name: np.empty(zones.size) for s in stats}
    for i in range(zones.size):
        zone_values = value[bounds[i] : bounds[i + 1]]
        for s in stats:
            out[s.name][i] = s.formula(zone_values)
    return zones, out


def moments(partials: Partials, n_zones: int, k: int | None = None) -> dict:
    """Dense per-zone moments with numpy's answers where infinities are present.

    Arrays have shape ``(n_zones,)``, or ``(n_zones, k)`` for ``k`` bands.
    """
    z = partials.zone
    shape = (n_zones,) if k is None else (n_zones, k)
    m = {}
    for name in ("finite", "posinf", "neginf", "nodata"):
        m[name] = np.zeros(shape, np.int64)
        m[name][z] = getattr(partials, name)
    m["count"] = m["finite"] + m["posinf"] + m["neginf"]
    for name in ("sum", "m2", "min", "max"):
        m[name] = np.full(shape, np.nan)
        m[name][z] = getattr(partials, name)
    m["mean"] = np.full(shape, np.nan)
    with np.errstate(invalid="ignore"):
        m["mean"][z] = np.where(partials.finite > 0, partials.shift + partials.mean, 0)
    with np.errstate(invalid="ignore"):
        infinite = np.where(m["posinf"] > 0, np.inf, 0.0) + np.where(
            m["neginf"] > 0, -np.inf, 0.0
        )
        m["sum"] = np.where(m["count"] > 0, np.nan_to_num(m["sum"]) + infinite, np.nan)
        m["mean"] = np.where(m["count"] > 0, m["mean"] + infinite, np.nan)
    for name in ("min", "max"):
        m[name] = np.where(m["count"] > 0, m[name], np.nan)
    return m


def finalize(
    partials: Sequence[Partials | ChunkResult],
    counts: Sequence[Counts | ChunkResult] | None,
    groups: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]],
    stats: Sequence[Statistic],
    index: pd.Index | None,
    outside: np.ndarray | None,
    categorical: bool = False,
    touched: tuple[Any, Any, Any] | None = None,
) -> pd.DataFrame:
    """The final step: a dense table, one row per zone.

    ``index`` names the zones 0..N-1 in input order; None when the zones came
    from a label raster: the rows are then the label values found, sorted.
    ``touched`` holds the small-zone fallback's (partials, counts, groups):
    zones that claim no pixel take their all-touched row, flagged in ``small``.
    """
    if touched is not None:
        main = finalize(partials, counts, groups, stats, index, outside, categorical)
        fallback = finalize(*touched, stats, index, outside, categorical)
        pixels = ["count", "nodata_count"]
        main_pixels = finalize(partials, None, [], resolve(pixels), index, outside)
        fall_pixels = finalize(touched[0], None, [], resolve(pixels), index, outside)
        small = (main_pixels.sum(axis=1) == 0) & (fall_pixels.sum(axis=1) > 0)
        table = main.reindex(columns=main.columns.union(fallback.columns, sort=False))
        table.loc[small, fallback.columns] = fallback.loc[small]
        if categorical:
            classes = [c for c in table.columns if c not in {s.name for s in stats}]
            table[classes] = table[classes].fillna(0).astype(np.int64)
        return table.assign(small=small)
    merged = merge(partials)
    if index is None:
        found = merged.zone
        index = pd.Index(found, name="zone")

        def position(zone: np.ndarray) -> np.ndarray:
            return np.searchsorted(found, zone)

        merged = merged._replace(zone=position(merged.zone))
    else:

        def position(zone: np.ndarray) -> np.ndarray:
            return zone

    n_zones = len(index)
    m = moments(merged, n_zones)
    m["outside"] = np.full(n_zones, np.nan) if outside is None else outside
    c = None
    if counts is not None:
        table_counts = merge_counts(counts)
        table_counts = table_counts._replace(zone=position(table_counts.zone))
        c = {"n_zones": n_zones, **table_counts._asdict()}
    columns = {}
    for s in stats:
        if s.kind == "moments":
            columns[s.name] = s.formula(m)
        elif s.kind == "counts":
            columns[s.name] = s.formula(c)
        else:
            column = np.full(n_zones, np.nan)
            for zones, result in groups:
                column[position(zones)] = result[s.name]
            columns[s.name] = column
    table = pd.DataFrame(
        {s.name: np.asarray(columns[s.name], dtype=s.dtype) for s in stats},
        index=index,
    )
    if categorical and c is not None:
        table = table.join(_class_table(c, index))
    return table


def finalize_planes(
    roots: Sequence[Partials | None],
    planes: Sequence[int],
    stats: Sequence[Statistic],
    index: pd.Index | None,
    outside: np.ndarray | None,
    dim: str,
    coords: np.ndarray,
    counts: Sequence[Counts] | None = None,
    groups: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]] = (),
) -> xr.Dataset:
    """The final step for several bands or time steps: a (zone, dim) Dataset.

    Counts and values come keyed by ``zone * n_planes + plane``.
    """
    n_planes = sum(planes)
    found = None
    if index is None:  # zones from a label raster: the label values found
        parts = [r.zone for r in roots if r is not None]
        found = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        index = pd.Index(found, name="zone")
        roots = [
            None if r is None else r._replace(zone=np.searchsorted(found, r.zone))
            for r in roots
        ]

    def position(virtual: np.ndarray) -> np.ndarray:
        if found is None:
            return virtual
        zone, plane = np.divmod(virtual, n_planes)
        return np.searchsorted(found, zone) * n_planes + plane

    n_zones = len(index)
    if outside is None:
        outside = np.full(n_zones, np.nan)
    blocks = []
    for root, k in zip(roots, planes, strict=True):
        partials = root if root is not None else Partials.empty(k)
        blocks.append(moments(partials, n_zones, k))
    m = {name: np.concatenate([b[name] for b in blocks], axis=1) for name in blocks[0]}
    m["outside"] = np.broadcast_to(outside[:, np.newaxis], m["count"].shape)
    c = None
    if counts is not None:
        merged = merge_counts(counts)
        c = {
            "n_zones": n_zones * n_planes,
            **merged._replace(zone=position(merged.zone))._asdict(),
        }
    data = {}
    for s in stats:
        if s.kind == "moments":
            column = s.formula(m)
        elif s.kind == "counts":
            column = np.reshape(s.formula(c), (n_zones, n_planes))
        else:
            column = np.full(n_zones * n_planes, np.nan)
            for virtual, result in groups:
                column[position(virtual)] = result[s.name]
            column = column.reshape(n_zones, n_planes)
        data[s.name] = (("zone", dim), np.asarray(column, dtype=s.dtype))
    dataset = xr.Dataset(data, coords={"zone": index.to_numpy(), dim: coords})
    dataset["zone"].attrs["long_name"] = index.name
    return dataset


def _class_table(c: dict, index: pd.Index) -> pd.DataFrame:
    """A zone x class table of pixel counts (0 where a class is absent)."""
    classes = np.unique(c["value"])
    table = np.zeros((len(index), classes.size), np.int64)
    table[c["zone"], np.searchsorted(classes, c["value"])] = c["count"]
    names = [_class_name(v) for v in classes]
    return pd.DataFrame(table, index=index, columns=names)


def _class_name(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class LabelSource:
    """Where each chunk's ``ChunkLabels`` come from.

    ``tasks`` maps a chunk's (row, col) block index to the task that makes its
    labels; chunks absent from it hold no zone and get no task. ``zones`` maps
    a block to the global zones it may hold (None when unknown before the
    labels are read, as for a label raster).
    """

    tasks: dict[tuple[int, int], tuple]
    zones: dict[tuple[int, int], np.ndarray] | None
    token: str
    dependencies: tuple = ()

    @classmethod
    def from_polygons(
        cls, tasks: Sequence[ChunkTask], all_touched: bool, small: str = "nan"
    ) -> LabelSource:
        burns = {t.block: t.burn(all_touched, small) for t in tasks}
        zones = {t.block: t.zones for t in tasks}
        return cls(burns, zones, tokenize(tasks_token(tasks), all_touched, small))

    @classmethod
    def from_label_array(cls, labels: da.Array, nodata: float | None) -> LabelSource:
        blocks = np.ndindex(*labels.numblocks)
        tasks = {b: (labels_from_block, (labels.name, *b), nodata) for b in blocks}
        return cls(tasks, None, tokenize(labels.name, nodata), (labels,))


def labels_from_block(block: np.ndarray, nodata: float | None) -> ChunkLabels:
    """``ChunkLabels`` of a block of an integer label raster (nodata: no zone)."""
    valid = np.ones(block.shape, bool) if nodata is None else block != nodata
    zones, local = np.unique(block[valid], return_inverse=True)
    labels = np.full((1, *block.shape), -1, np.int32)
    labels[0][valid] = local
    return ChunkLabels(
        labels, np.empty(0, np.int64), np.empty(0, np.int32), zones.astype(np.int64)
    )


def zonal_graph(
    values: da.Array,
    source: LabelSource,
    nodata: float | None,
    stats: Sequence[Statistic],
    index: pd.Index | None,
    split_every: int = 8,
    *,
    outside: np.ndarray | None = None,
    categorical: bool = False,
    zone_groups: np.ndarray | int | None = None,
    plane_dim: str = "band",
    plane_coords: np.ndarray | None = None,
    small: str = "nan",
    wrap_chunk: Callable[[tuple[int, int], tuple], tuple] | None = None,
) -> Delayed:
    """The whole computation as one lazy object.

    One task per raster chunk that holds zones (read, labels, kernel), a tree
    of merge tasks with ``split_every`` inputs each, one task per zone group
    when a ``values`` statistic is asked, and one final task that returns the
    ``pandas.DataFrame`` (or the ``xarray.Dataset`` for a 3-D raster).

    ``zone_groups`` routes each zone's values to a group task: an array giving
    the group of every zone, or a number of groups to spread zones over by id.
    ``wrap_chunk``, if given, maps each chunk's block index and task to the task
    to run instead (``checkpoint.Checkpoint.wrap`` loads or saves its result);
    one band only.
    """
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    stats = list(stats)
    needs = Needs(
        counts=categorical or any(s.kind == "counts" for s in stats),
        values=any(s.kind == "values" for s in stats),
    )
    if zone_groups is None:
        zone_groups = 1
    token = tokenize(
        values.name,
        source.token,
        nodata,
        [(s.name, s.kind, tokenize(s.formula)) for s in stats],
        None if index is None else (list(index), index.name),
        split_every,
        categorical,
        zone_groups,
        plane_dim,
        plane_coords,
        small,
        wrap_chunk,
    )
    planes = values.chunks[0] if values.ndim == 3 else None
    if planes is not None and wrap_chunk is not None:
        raise StatisticError("checkpoints take one band, not several")
    if planes is not None and (categorical or small != "nan"):
        raise StatisticError(
            "categorical=True and small='touched' take one band, not several"
        )
    if planes is not None and plane_coords is None:
        plane_coords = np.arange(1, values.shape[0] + 1)
    dsk: dict = {}
    chunk_keys: dict[tuple[int, int], list] = {}
    block_keys: list[list] = [[] for _ in planes or [None]]
    key: tuple
    for block, label_task in source.tasks.items():
        if isinstance(zone_groups, np.ndarray):
            assert source.zones is not None  # polygons: zones known per chunk
            groups = zone_groups[source.zones[block]]
        else:
            groups = zone_groups
        groups = groups if needs.values else None
        if planes is None:
            key = (f"zonal-chunk-{token}", *block)
            dsk[key] = (
                chunk_step,
                (values.name, *block),
                label_task,
                nodata,
                needs,
                groups,
            )
            if wrap_chunk is not None:
                dsk[key] = wrap_chunk(block, dsk[key])
            chunk_keys[block] = [key]
            block_keys[0].append(key)
            continue
        # several planes share one labelling of the chunk
        labels_key = (f"zonal-labels-{token}", *block)
        dsk[labels_key] = label_task
        chunk_keys[block] = []
        for b in range(len(planes)):
            key = (f"zonal-chunk-{token}", b, *block)
            dsk[key] = (
                chunk_step,
                (values.name, b, *block),
                labels_key,
                nodata,
                needs,
                groups,
                (sum(planes[:b]), sum(planes)),
            )
            chunk_keys[block].append(key)
            block_keys[b].append(key)
    roots = [
        _tree(dsk, keys, merge, f"zonal-merge-{b}-{token}", split_every)
        for b, keys in enumerate(block_keys)
    ]
    all_keys = [k for keys in chunk_keys.values() for k in keys]
    counts_key = None
    if needs.counts:
        counts_key = _tree(
            dsk, all_keys, merge_counts, f"zonal-counts-{token}", split_every
        )
    counts = ([counts_key] if counts_key else []) if needs.counts else None
    group_keys = []
    if needs.values:
        value_stats = [s for s in stats if s.kind == "values"]
        touching: dict[int, list] = {}
        for block, keys in chunk_keys.items():
            ids: Iterable[int]
            if isinstance(zone_groups, np.ndarray):
                assert source.zones is not None  # polygons: zones known
                ids = np.unique(zone_groups[source.zones[block]])
            else:
                ids = range(zone_groups)
            for g in ids:
                touching.setdefault(int(g), []).extend(keys)
        for g, keys in sorted(touching.items()):
            key = (f"zonal-group-{token}", g)
            dsk[key] = (group_step, keys, g, value_stats)
            group_keys.append(key)
    final = f"zonal-stats-{token}"
    if planes is not None:
        dsk[final] = (
            finalize_planes,
            roots,
            list(planes),
            stats,
            index,
            outside,
            plane_dim,
            plane_coords,
            counts,
            group_keys,
        )
    else:
        touched = None
        if small == "touched":
            touched = _touched_stage(dsk, chunk_keys, needs, stats, token, split_every)
        dsk[final] = (
            finalize,
            [roots[0]] if roots[0] else [],
            counts,
            group_keys,
            stats,
            index,
            outside,
            categorical,
            touched,
        )
    graph = HighLevelGraph.from_collections(
        final, dsk, dependencies=[values, *source.dependencies]
    )
    return Delayed(final, graph)


def _touched_stage(
    dsk: dict,
    chunk_keys: dict[tuple[int, int], list],
    needs: Needs,
    stats: list[Statistic],
    token: str,
    split_every: int,
) -> list:
    """Trees and group tasks over the small-zone fallback; finalize's ``touched``.

    The fallback's values go to one group: small zones hold few pixels.
    """
    keys = [k for block_keys in chunk_keys.values() for k in block_keys]
    moments_root = _tree(dsk, keys, merge_touched, f"zonal-small-{token}", split_every)
    counts = None
    if needs.counts:
        root = _tree(
            dsk, keys, merge_counts_touched, f"zonal-smallc-{token}", split_every
        )
        counts = [root] if root else []
    groups = []
    if needs.values:
        value_stats = [s for s in stats if s.kind == "values"]
        dsk[(f"zonal-smallg-{token}", 0)] = (group_step, keys, 0, value_stats, True)
        groups = [(f"zonal-smallg-{token}", 0)]
    return [[moments_root] if moments_root else [], counts, groups]


def _tree(dsk: dict, keys: list, combine: Callable, name: str, split_every: int) -> Any:
    """Add a tree of ``combine`` tasks over ``keys``; return the root key."""
    if not keys:
        return None
    level, depth = list(keys), 0
    while len(level) > 1:
        groups = [level[i : i + split_every] for i in range(0, len(level), split_every)]
        level = []
        for g, group in enumerate(groups):
            dsk[(f"{name}-{depth}", g)] = (combine, group)
            level.append((f"{name}-{depth}", g))
        depth += 1
    if level[0] in keys:  # a single chunk: still combine it to its partial type
        dsk[(f"{name}-0", 0)] = (combine, level)
        level = [(f"{name}-0", 0)]
    return level[0]


COVERAGE_STATS = ("count", "sum", "mean")


def coverage_graph(
    values: da.Array,
    tasks: Sequence[ChunkTask],
    nodata: float | None,
    stats: Sequence[Statistic],
    index: pd.Index,
    split_every: int = 8,
) -> Delayed:
    """Coverage-weighted count, sum and mean (exactextract's): one lazy table."""
    unknown = [s.name for s in stats if s.name not in COVERAGE_STATS]
    if unknown or values.ndim != 2:
        raise StatisticError(
            "weights='coverage' gives only count, sum and mean of one band; "
            f"not {', '.join(map(repr, unknown)) or 'several bands'}"
        )
    token = tokenize(
        values.name,
        tasks_token(tasks),
        nodata,
        [s.name for s in stats],
        list(index),
        index.name,
        split_every,
        "coverage",
    )
    dsk: dict = {}
    keys = []
    for t in tasks:
        key = (f"zonal-coverage-{token}", *t.block)
        dsk[key] = (
            coverage_chunk,
            (values.name, *t.block),
            t.geometries,
            t.zones,
            t.offset,
            t.orientation,
            nodata,
        )
        keys.append(key)
    root = _tree(
        dsk, keys, merge_coverage, f"zonal-coverage-merge-{token}", split_every
    )
    final = f"zonal-stats-{token}"
    dsk[final] = (finalize_coverage, [root] if root else [], list(stats), index)
    graph = HighLevelGraph.from_collections(final, dsk, dependencies=[values])
    return Delayed(final, graph)


def finalize_coverage(
    roots: Sequence[CoverageParts], stats: Sequence[Statistic], index: pd.Index
) -> pd.DataFrame:
    """Weighted count (sum of coverage), sum and mean, one row per zone."""
    merged = merge_coverage(roots)
    weight = np.zeros(len(index))
    weight[merged.zone] = merged.weight
    weighted = np.full(len(index), np.nan)
    weighted[merged.zone] = merged.weighted
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = {
            "count": weight,
            "sum": np.where(weight > 0, weighted, np.nan),
            "mean": np.where(weight > 0, weighted / weight, np.nan),
        }
    return pd.DataFrame({s.name: columns[s.name] for s in stats}, index=index)
