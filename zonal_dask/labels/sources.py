"""Label sources: where each chunk's zones come from.

Every route gives the graph the same thing, a ``LabelSource``: one dask task
per chunk of the raster that makes that chunk's ``ChunkLabels`` (which pixels
belong to which zones, with what weight), or an iterable of them (``pieces``),
and what is known of the zones before any pixel is read. The implementations:

* ``polygon_source``: zones (polygons, lines, points) burnt per chunk under
  the centre or all-touched rule (``burn/rules.py``); each chunk's task carries
  only the zones that meet it. A chunk overlapped many layers deep is burnt
  in pieces (``BurntPieces``), each burnt as the chunk step reaches it.
* ``coverage_source`` (``labels/coverage_source.py``): the same chunks and
  zones, each pixel weighted by the fraction of it a zone covers (a line's
  length in it), or by exactextract's other coverage weights
  (``coverage/weights.py``); a chunk under zones many deep comes in pieces
  (``CoveragePieces``) as well.
* ``touched_fallback``: wraps a polygon source; zones that claim no pixel of a
  chunk also claim, as zone ``n + zone``, the pixels they touch, to stand in
  for zones that claim none anywhere (``small="touched"``).
* ``label_rasters.label_raster_source``: an integer label raster on the
  raster's grid.
* a stored ``ZonePlan`` (``labels/plan.py``) gives a source that reads its labels.

The polygon and coverage sources take ``zone_of`` (``group_by``): their
geometries are then parts of zones, and each chunk's claims are pooled by
zone (``labels/groups.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import dask
import numpy as np
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..burn.rules import NO_ZONE, UNLIMITED, burn_flat, sparse_budget
from ..coverage.weights import CoverageRule
from .chunk_tasks import ChunkTask, tasks_token
from .groups import pool_layers

if TYPE_CHECKING:  # coverage_source builds on this module
    from .coverage_source import CoveragePieces

Block = tuple[int, int]
FRACTION = CoverageRule()
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
    from ..run.scheduler import local_scheduler

    name = name or f"zonal-persisted-labels-{source.token}"
    dsk = {(name, *b): (kept, task) for b, task in source.tasks.items()}
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


def kept(labels: Labels) -> Labels:
    """A chunk's labels as a persisted source keeps them: coverage pieces
    computed now, as the whole chunk's claims were before they came in pieces
    (made lazily, they would be computed again at each read: each time step
    of a series), other labels as they are."""
    from .coverage_source import CoveragePieces

    return tuple(labels) if isinstance(labels, CoveragePieces) else labels


def polygon_source(
    tasks: Sequence[ChunkTask],
    index: pd.Index,
    all_touched: bool = False,
    *,
    groups: np.ndarray | None = None,
    fields: Mapping[str, np.ndarray] | None = None,
    zone_of: np.ndarray | None = None,
) -> LabelSource:
    """Zones (polygons, lines, points) burnt per chunk under the centre (or
    all-touched) rule; with ``zone_of``, parts of zones pooled per chunk."""
    return LabelSource(
        tasks={t.block: _burn_task(t, all_touched, zone_of) for t in tasks},
        zones={t.block: zones_of(t, zone_of) for t in tasks},
        index=index,
        token=tokenize(tasks_token(tasks), all_touched, zone_of),
        groups=groups,
        fields=dict(fields or {}),
        dependencies=shard_collections(tasks),
    )


def shard_collections(tasks: Sequence[ChunkTask]) -> tuple:
    """The zones' shards the tasks read, as dask collections (each zone
    travels once, in its shard: ``labels/zone_shards.py``)."""
    shards = {id(t.selection.shards): t.selection.shards for t in tasks if t.selection}
    return tuple(s.collection() for s in shards.values())


def zones_of(task: ChunkTask, zone_of: np.ndarray | None) -> np.ndarray:
    return task.zones if zone_of is None else np.unique(zone_of[task.zones])


def _burn_task(t: ChunkTask, all_touched: bool, zone_of: np.ndarray | None) -> tuple:
    task = (polygon_labels, t.dask_task(), all_touched)
    return task if zone_of is None else (pooled_labels, task, zone_of[t.zones])


def pooled_labels(burnt: Labels, zone_of_part: np.ndarray) -> ChunkLabels:
    """Burnt labels of parts (local ``i`` of zone ``zone_of_part[i]``) as the
    labels of their zones, a pixel claimed once per zone.

    A chunk burnt in pieces is pooled whole: a zone's parts may sit in
    different pieces, and a pixel two of them claim must count once.
    """
    labels = _one_piece(burnt)
    zones, local = np.unique(zone_of_part, return_inverse=True)
    if zones.size == zone_of_part.size:  # one part per zone: rename only
        layers = np.where(labels.labels >= 0, local[labels.labels], NO_ZONE)
        extra = local[labels.extra_zones].astype(np.int32)
        return ChunkLabels(layers.astype(np.int32), labels.extra_pixels, extra, zones)
    layer, pixels, owners = pool_layers(
        labels.labels, labels.extra_pixels, labels.extra_zones, local
    )
    return ChunkLabels(layer, pixels, owners, zones)


def _one_piece(labels: Labels) -> ChunkLabels:
    if isinstance(labels, ChunkLabels):
        return labels
    parts = list(pieces(labels))
    return ChunkLabels(
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.extra_pixels for p in parts]),
        np.concatenate([p.extra_zones for p in parts]),
        parts[0].zones,
    )


def polygon_labels(task: ChunkTask, all_touched: bool = False) -> Labels:
    """Burn one chunk's zones (``burn.burn_chunk``): its ``ChunkLabels``, or
    ``BurntPieces`` when its claims are too many for one piece."""
    task = task.with_zones()
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
    task = task.with_zones()
    assert task.arrays is not None and task.raster_shape is not None
    labels, pixels, owners, next_zone = burn_flat(
        task.arrays.flat,
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
        block: (_with_touched, task, by_block[block].dask_task(), n_zones)
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
    task = task.with_zones()
    assert task.raster_shape is not None and task.arrays is not None
    labels, pixels, owners, _ = burn_flat(
        task.arrays.take(empty).flat,
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
Labels = Union[
    ChunkLabels, BurntPieces, WithTouched, "CoveragePieces", tuple[ChunkLabels, ...]
]
