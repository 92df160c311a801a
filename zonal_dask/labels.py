"""Label sources: where each chunk's zones come from.

Every route gives the graph the same thing, a ``LabelSource``: one dask task
per chunk of the raster that makes that chunk's ``ChunkLabels`` (which pixels
belong to which zones, with what weight), or an iterable of them (``pieces``),
and what is known of the zones before any pixel is read. The implementations:

* ``polygon_source``: zones (polygons, lines, points) burnt per chunk under
  the centre or all-touched rule (``burn.py``); each chunk's task carries
  only the zones that meet it. A chunk overlapped many layers deep is burnt
  in pieces (``BurntPieces``), each burnt as the chunk step reaches it.
* ``coverage_source``: the same chunks and zones, each pixel weighted by the
  fraction of it a zone covers (``coverage.py``).
* ``touched_fallback``: wraps a polygon source; zones that claim no pixel of a
  chunk also claim, as zone ``n + zone``, the pixels they touch, to stand in
  for zones that claim none anywhere (``small="touched"``).
* ``label_raster_source``: an integer label raster on the raster's grid.
* a stored ``ZonePlan`` (``plan.py``) gives a source that reads its labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import dask
import dask.array as da
import numpy as np
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from .burn import NO_ZONE, UNLIMITED, burn_chunk, sparse_budget
from .chunktasks import ChunkTask, tasks_token
from .coverage import coverage_claims

Block = tuple[int, int]
_NO_WEIGHTS = np.empty(0)


class ChunkLabels(NamedTuple):
    """The zones of one chunk.

    Attributes
    ----------
    labels
        int32 (planes, rows, cols): per plane, the local index of a zone that
        claims the pixel (weight 1), or ``NO_ZONE``.
    extra_pixels
        int64 flat (rows x cols) pixel indices of the sparse claims: every
        further zone on a pixel of a plane, or every weighted claim.
    extra_zones
        int32 local zone index of each sparse claim.
    zones
        int64 global zone index of each local index: the zones the label
        source lists for the chunk's block, in that order.
    extra_weights
        float64 weight of each sparse claim, or empty when each weighs 1.
    """

    labels: np.ndarray
    extra_pixels: np.ndarray
    extra_zones: np.ndarray
    zones: np.ndarray
    extra_weights: np.ndarray = _NO_WEIGHTS

    @property
    def unweighted(self) -> bool:
        return self.extra_weights.size == 0


@dataclass(frozen=True)
class LabelSource:
    """Each chunk's ``ChunkLabels`` task, and what is known of the zones.

    Attributes
    ----------
    tasks
        A chunk's (row, col) block index to the dask task making its labels;
        chunks absent from it hold no zone and are never read.
    zones
        A block to the global zones it may hold; None when unknown before the
        labels are read (a label raster).
    index
        The names of zones 0..N-1; None when the zones are the label values
        found (a label raster).
    token
        A deterministic digest of everything the labels depend on.
    groups
        The value group of each zone (nearby zones share one), or None to
        spread zones over groups by id.
    fields
        Per-zone values known without reading pixels (``outside``).
    dependencies
        Dask collections the tasks refer to.
    weighted
        The sparse claims carry weights (coverage fractions).
    fallback
        Zones ``N + z`` are the all-touched stand-ins of zones ``z``.
    unsigned
        The zones are uint64 label values carried as int64 (the same bits).
    """

    tasks: Mapping[Block, Any]
    zones: Mapping[Block, np.ndarray] | None
    index: pd.Index | None
    token: str
    groups: np.ndarray | None = None
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)
    dependencies: tuple = ()
    weighted: bool = False
    fallback: bool = False
    unsigned: bool = False

    def block_groups(self, block: Block, n_groups: int) -> np.ndarray | int:
        """The value group of each zone of ``block``, or the number of groups
        to spread zones over by id when they are unknown."""
        if self.groups is None or self.zones is None:
            return n_groups
        return self.groups[self.zones[block] % len(self.groups)]


def persisted(source: LabelSource, name: str | None = None) -> LabelSource:
    """``source`` with every chunk's labels made now, on the current scheduler,
    and kept there: in the workers' memory on a ``distributed.Client``, in this
    process locally. Graphs built from the result read the kept labels.
    """
    from .cluster import local_scheduler

    name = name or f"zonal-persisted-labels-{source.token}"
    dsk = {(name, *b): task for b, task in source.tasks.items()}
    graph = HighLevelGraph.from_collections(
        name, dsk, dependencies=list(source.dependencies)
    )
    delayed = [Delayed((name, *b), graph, layer=name) for b in source.tasks]
    done = dask.persist(*delayed, scheduler=local_scheduler())
    return replace(
        source,
        tasks={b: d.key for b, d in zip(source.tasks, done, strict=True)},
        dependencies=tuple(done),
    )


def polygon_source(
    tasks: Sequence[ChunkTask],
    index: pd.Index,
    all_touched: bool = False,
    *,
    groups: np.ndarray | None = None,
    fields: Mapping[str, np.ndarray] | None = None,
) -> LabelSource:
    """Zones (polygons, lines, points) burnt per chunk under the centre (or
    all-touched) rule."""
    return LabelSource(
        tasks={t.block: _burn_task(t, all_touched) for t in tasks},
        zones={t.block: t.zones for t in tasks},
        index=index,
        token=tokenize(tasks_token(tasks), all_touched),
        groups=groups,
        fields=dict(fields or {}),
    )


def _burn_task(t: ChunkTask, all_touched: bool) -> tuple:
    return (polygon_labels, t, all_touched)


def polygon_labels(task: ChunkTask, all_touched: bool = False) -> Labels:
    """Burn one chunk's zones (``burn.burn_chunk``): its ``ChunkLabels``, or
    ``BurntPieces`` when its claims are too many for one piece."""
    budget = UNLIMITED if task.layers is not None else sparse_budget(task.shape)
    first, next_zone = _burn_piece(task, all_touched, 0, budget)
    if next_zone == len(task.zones):
        return first
    return BurntPieces(first, task, all_touched, next_zone)


def _burn_piece(
    task: ChunkTask, all_touched: bool, start: int, budget: int
) -> tuple[ChunkLabels, int]:
    if task.raster_shape is None:
        raise ValueError("a chunk task to burn needs the raster's shape")
    labels, pixels, owners, next_zone = burn_chunk(
        task.geometries,
        task.offset,
        task.shape,
        task.raster_shape,
        task.orientation,
        all_touched,
        task.layers,
        start,
        budget,
    )
    return ChunkLabels(labels, pixels, owners, task.zones), next_zone


@dataclass(frozen=True)
class BurntPieces:
    """A chunk whose sparse claims pass ``burn.sparse_budget`` (overlaps
    many layers deep): the first piece, then the others, each burnt only when
    iteration reaches it, so at most two pieces are in memory at once.
    Every piece has the chunk's zones; a zone's claims are all in one piece."""

    first: ChunkLabels
    task: ChunkTask
    all_touched: bool
    resume: int

    def __iter__(self) -> Iterator[ChunkLabels]:
        yield self.first
        start, budget = self.resume, sparse_budget(self.task.shape)
        while start < len(self.task.zones):
            piece, start = _burn_piece(self.task, self.all_touched, start, budget)
            yield piece


def pieces(labels: Labels) -> Iterable[ChunkLabels]:
    """The pieces of a chunk's labels, in order (a ``ChunkLabels`` is one)."""
    return (labels,) if isinstance(labels, ChunkLabels) else labels


def touched_fallback(
    source: LabelSource, tasks: Sequence[ChunkTask], n_zones: int
) -> LabelSource:
    """``source``, plus each chunk's all-touched pixels of the zones that claim
    none of its pixels, as zones ``n_zones + zone``.

    Finalizing takes those rows for the zones that claim no pixel anywhere.
    """
    by_block = {t.block: t for t in tasks}
    wrapped = {
        block: (_with_touched, task, by_block[block], n_zones)
        for block, task in source.tasks.items()
    }
    zones = {
        b: np.concatenate([z, z + n_zones]) for b, z in (source.zones or {}).items()
    }
    return LabelSource(
        wrapped,
        zones,
        source.index,
        tokenize(source.token, "touched", n_zones),
        source.groups,
        source.fields,
        source.dependencies,
        fallback=True,
    )


def _claims_per_zone(chunk: ChunkLabels) -> np.ndarray:
    claims = np.bincount(chunk.labels[chunk.labels >= 0], minlength=len(chunk.zones))
    return claims + np.bincount(chunk.extra_zones, minlength=len(chunk.zones))


def _touched_piece(
    task: ChunkTask, claims: np.ndarray, n_zones: int
) -> ChunkLabels | None:
    """The all-touched claims of the zones without any claim, as zones
    ``n_zones + zone``; None when every zone has a claim."""
    empty = np.flatnonzero(claims == 0)
    if empty.size == 0:
        return None
    assert task.raster_shape is not None
    labels, pixels, owners, _ = burn_chunk(
        task.geometries[empty],
        task.offset,
        task.shape,
        task.raster_shape,
        task.orientation,
        True,
    )
    # every stand-in keeps a local index, claiming or not, so the piece's zones
    # are those the source lists for its block (value groups are found by
    # position in that list)
    local = len(task.zones)
    stand_in = (empty + local).astype(np.int32)
    return ChunkLabels(
        np.where(labels >= 0, stand_in[np.maximum(labels, 0)], NO_ZONE),
        pixels,
        stand_in[owners],
        np.concatenate([task.zones, task.zones + n_zones]),
    )


def _with_touched(main: Labels, task: ChunkTask, n_zones: int) -> Labels:
    if not isinstance(main, ChunkLabels):
        return WithTouched(main, task, n_zones)
    touched = _touched_piece(task, _claims_per_zone(main), n_zones)
    if touched is None:
        return main
    return ChunkLabels(
        np.concatenate([main.labels, touched.labels]),
        np.concatenate([main.extra_pixels, touched.extra_pixels]),
        np.concatenate([main.extra_zones, touched.extra_zones]),
        touched.zones,
    )


@dataclass(frozen=True)
class WithTouched:
    """Pieces of a chunk, then the all-touched claims of the zones that claim
    none of its pixels (``touched_fallback``), counted as the pieces pass."""

    main: Labels
    task: ChunkTask
    n_zones: int

    def __iter__(self) -> Iterator[ChunkLabels]:
        claims = np.zeros(len(self.task.zones), np.int64)
        for piece in pieces(self.main):
            claims += _claims_per_zone(piece)
            yield piece
        touched = _touched_piece(self.task, claims, self.n_zones)
        if touched is not None:
            yield touched


# What a label source's chunk task gives: one piece, or pieces made lazily.
Labels = ChunkLabels | BurntPieces | WithTouched


def coverage_source(
    tasks: Sequence[ChunkTask],
    index: pd.Index,
    *,
    groups: np.ndarray | None = None,
    fields: Mapping[str, np.ndarray] | None = None,
) -> LabelSource:
    """Polygons as the cells they cover, each weighted by its covered fraction."""
    return LabelSource(
        tasks={t.block: (coverage_labels, t) for t in tasks},
        zones={t.block: t.zones for t in tasks},
        index=index,
        token=tokenize(tasks_token(tasks), "coverage"),
        groups=groups,
        fields=dict(fields or {}),
        weighted=True,
    )


def coverage_labels(task: ChunkTask) -> ChunkLabels:
    """A chunk's coverage claims as ``ChunkLabels``: no layer, all sparse."""
    pixels, owners, fractions = coverage_claims(
        task.geometries, task.offset, task.shape, task.orientation
    )
    empty = np.empty((0, *task.shape), np.int32)
    return ChunkLabels(empty, pixels, owners, task.zones, fractions)


def label_raster_source(labels: da.Array, nodata: float | None) -> LabelSource:
    """An integer label raster: each value a zone, ``nodata`` no zone.

    The zones (and the table's rows) are the label values found, sorted.
    uint64 labels travel as int64 (the same bits) and are named back.
    """
    tasks = {
        b: (labels_from_block, (labels.name, *b), nodata)
        for b in np.ndindex(*labels.numblocks)
    }
    return LabelSource(
        tasks,
        None,
        None,
        tokenize(labels.name, nodata),
        dependencies=(labels,),
        unsigned=labels.dtype == np.uint64,
    )


def labels_from_block(block: np.ndarray, nodata: float | None) -> ChunkLabels:
    """``ChunkLabels`` of a block of a label raster: nodata, and NaN (a pixel
    GDAL's mask hides), are no zone; nodata is compared exactly, in the
    block's dtype."""
    valid = np.ones(block.shape, bool)
    if block.dtype.kind == "f":
        valid &= ~np.isnan(block)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        exact = np.asarray(nodata).astype(block.dtype)
        if exact == nodata:
            valid &= block != exact
    zones, local = np.unique(block[valid], return_inverse=True)
    labels = np.full((1, *block.shape), NO_ZONE, np.int32)
    labels[0][valid] = local
    return ChunkLabels(
        labels, np.empty(0, np.int64), np.empty(0, np.int32), zones.astype(np.int64)
    )


def global_labels(labels: Labels) -> np.ndarray:
    """A single-label view of a chunk: global zone index, or -1 for none.

    A pixel that several zones claim gets the highest of their indices (the one
    a single label raster would keep); the statistics never use this lossy view.
    """
    out = None
    for chunk in pieces(labels):
        planes = np.where(chunk.labels >= 0, chunk.zones[chunk.labels], NO_ZONE)
        top = planes.max(axis=0)
        out = top if out is None else np.maximum(out, top)
        if chunk.extra_pixels.size:
            flat = out.reshape(-1)
            np.maximum.at(flat, chunk.extra_pixels, chunk.zones[chunk.extra_zones])
    assert out is not None
    return out.astype(np.int32)


def label_array(
    source: LabelSource, chunks: tuple[Sequence[int], Sequence[int]]
) -> da.Array:
    """The zones as a lazy int32 label array with exactly the raster's chunks.

    Each pixel holds its zone's index (see ``global_labels`` for pixels that
    several zones claim), or -1; chunks no zone meets are filled with -1
    without rasterizing anything.
    """
    name = f"zonal-labels-{tokenize(source.token, chunks)}"
    dsk: dict = {}
    for i, rows in enumerate(chunks[0]):
        for j, cols in enumerate(chunks[1]):
            task = source.tasks.get((i, j))
            if task is None:
                dsk[(name, i, j)] = (np.full, (rows, cols), NO_ZONE, np.int32)
            else:
                dsk[(name, i, j)] = (global_labels, task)
    return da.Array(dsk, name, chunks, dtype=np.int32)
