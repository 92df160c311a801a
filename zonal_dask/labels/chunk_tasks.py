"""Chunk tasks: each chunk of the grid with the zones that may claim its pixels.

``plan_chunks`` gives every chunk of a raster's grid a ``ChunkTask`` naming
only the zones (``zones.ZoneArrays``, in pixel space) within ``burn.reach`` of
it, found from the zones' bounds in a few array operations (an exact test
only for zones whose bounds meet several chunks). The zones themselves travel
once, in shards (``labels/zone_shards.py``): a planned task holds index
ranges into them, and its dask task (``ChunkTask.dask_task``) gathers its
zones where it runs. ``tasks_token`` names a list of tasks for dask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import shapely

from ..burn.rules import LINE_REACH, REACH
from ..zones.arrays import ZoneArrays
from .zone_shards import Selection, ZoneShards


@dataclass(frozen=True, eq=False)
class ChunkTask:
    """One chunk's place in the grid and the zones (in pixel space) that meet it.

    ``zones`` are the zones' global indices (ascending), ``arrays`` the zones
    themselves, in that order; a planned task has no ``arrays`` but a
    ``selection`` in the zones' shards, and its dask task gathers them.
    ``layers`` is each zone's overlap layer (stored plans).
    ``raster_shape`` is the whole grid's (GDAL's pixel rules depend on it at
    the raster's edges); None for tasks that read stored labels.
    """

    block: tuple[int, int]
    offset: tuple[int, int]
    shape: tuple[int, int]
    zones: np.ndarray
    arrays: ZoneArrays | None
    orientation: tuple[int, int]
    layers: np.ndarray | None = None
    raster_shape: tuple[int, int] | None = None
    selection: Selection | None = None

    @cached_property
    def geometries(self) -> np.ndarray:
        """The zones as shapely geometries, made from ``arrays``."""
        return self.with_zones().arrays.geometries()  # type: ignore[union-attr]

    @property
    def place(self) -> tuple:
        return (
            self.block,
            self.offset,
            self.shape,
            self.orientation,
            self.raster_shape,
        )

    def with_zones(self) -> ChunkTask:
        """This task holding its zones' arrays (gathered here from the shards
        for a planned task: what its dask task does where it runs)."""
        if self.arrays is not None or self.selection is None:
            return self
        shards = [self.selection.shards.shards[s] for s in self.selection.used]
        return gather_task(self.place, self.selection.ranges, shards)

    def dask_task(self) -> Any:
        """What a graph holds for this task: the task itself when it holds its
        zones, else a task gathering them from the shards' keys."""
        if self.selection is None:
            return self
        keys = [self.selection.shards.key(s) for s in self.selection.used]
        return (gather_task, self.place, self.selection.ranges, keys)

    def __reduce__(self) -> tuple:
        if self.arrays is None:
            raise TypeError("a planned chunk task travels as its dask_task()")
        return (_task, (self.place, self.zones, self.arrays, self.layers))

    @classmethod
    def whole(
        cls,
        geometries: np.ndarray,
        shape: tuple[int, int],
        orient: tuple[int, int] = (1, -1),
        layers: np.ndarray | None = None,
    ) -> ChunkTask:
        """One chunk that is the whole grid, holding zones 0..n-1 (in pixel space)."""
        zones = np.arange(len(geometries), dtype=np.int64)
        arrays = ZoneArrays.of(geometries)
        return cls((0, 0), (0, 0), shape, zones, arrays, orient, layers, shape)


def _task(
    place: tuple,
    zones: np.ndarray,
    arrays: ZoneArrays,
    layers: np.ndarray | None,
) -> ChunkTask:
    block, offset, shape, orientation, raster_shape = place
    return ChunkTask(
        block, offset, shape, zones, arrays, orientation, layers, raster_shape
    )


def gather_task(place: tuple, ranges: bytes, shards: list) -> ChunkTask:
    """A planned chunk task with its zones, gathered from its shards (in the
    order of their global indices, as planned)."""
    zones, arrays, layers = ZoneShards.gather(ranges, shards)
    return _task(place, zones, arrays, layers)


def plan_chunks(
    zones: ZoneArrays | np.ndarray,
    chunks: tuple[Sequence[int], Sequence[int]],
    orient: tuple[int, int],
    layers: np.ndarray | None = None,
) -> list[ChunkTask]:
    """Give each chunk of the grid the zones that may claim its pixels: those
    within ``burn.reach`` pixels of it.

    ``zones`` are in pixel space (``ZoneArrays``, or shapely geometries).
    Chunks that no zone comes near get no task, so their pixels are never read.
    """
    if not isinstance(zones, ZoneArrays):
        zones = ZoneArrays.of(zones)
    row_edges = np.cumsum((0, *chunks[0]))
    col_edges = np.cumsum((0, *chunks[1]))
    chunk_index, zone_index = _meeting(zones, row_edges, col_edges, orient)
    if chunk_index.size == 0:  # no zones, or none meets the raster
        return []
    order = np.lexsort((zone_index, chunk_index))
    chunk_index, zone_index = chunk_index[order], zone_index[order]
    shards = ZoneShards.of(zones, chunk_index, zone_index, layers)
    selections = shards.selections(chunk_index, zone_index)
    starts = np.flatnonzero(np.diff(chunk_index, prepend=-1))
    n_cols = len(chunks[1])
    raster_shape = (int(row_edges[-1]), int(col_edges[-1]))
    tasks = []
    for chunk, members, selection in zip(
        chunk_index[starts].tolist(),
        np.split(zone_index, starts[1:]),
        selections,
        strict=True,
    ):
        i, j = divmod(chunk, n_cols)
        tasks.append(
            ChunkTask(
                block=(i, j),
                offset=(int(row_edges[i]), int(col_edges[j])),
                shape=(int(chunks[0][i]), int(chunks[1][j])),
                zones=members.astype(np.int64),
                arrays=None,
                orientation=orient,
                layers=None if layers is None else layers[members],
                raster_shape=raster_shape,
                selection=selection,
            )
        )
    return tasks


def _meeting(
    zones: ZoneArrays,
    row_edges: np.ndarray,
    col_edges: np.ndarray,
    orient: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, zone) pairs of every zone and chunk within the zone's reach:
    where the zone's geometry intersects the chunk's box grown by it (boxes in
    the oriented pixel space, as a spatial index would be queried).

    A zone whose bounds keep clear of every grown box but its own chunk's
    (nearly all zones) meets that chunk alone; the others' candidates are
    the chunks whose grown boxes their bounds meet, tested exactly.
    """
    n_cols = len(col_edges) - 1
    bounds = zones.bounds()
    margin = np.where(zones.lines(), LINE_REACH, REACH)
    present = np.flatnonzero(~np.isnan(bounds[:, 0]))
    bounds, margin = bounds[present], margin[present]
    # each zone's bounds in (unoriented) columns and rows (low, high)
    cols = _spans(orient[0] * bounds[:, 0], orient[0] * bounds[:, 2])
    rows = _spans(orient[1] * bounds[:, 1], orient[1] * bounds[:, 3])
    i, inner_rows = _one_span(row_edges, rows, margin)
    j, inner_cols = _one_span(col_edges, cols, margin)
    alone = inner_rows & inner_cols
    chunk = [(i * n_cols + j)[alone]]
    zone = [present[alone]]
    rest = np.flatnonzero(~alone)
    if rest.size:
        c, z = _tested(
            zones,
            present[rest],
            bounds[rest],
            margin[rest],
            cols[rest],
            rows[rest],
            row_edges,
            col_edges,
            orient,
        )
        chunk.append(c)
        zone.append(z)
    return np.concatenate(chunk).astype(np.int64), np.concatenate(zone).astype(np.int64)


def _spans(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 2) the lower and the higher of ``a`` and ``b`` (no NaN): what
    sorting each row gives, without a sort per row (five times slower)."""
    return np.column_stack((np.minimum(a, b), np.maximum(a, b)))


def _one_span(
    edges: np.ndarray, spans: np.ndarray, margin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The chunk each span starts in, and whether the span keeps farther than
    ``margin`` (plus a millionth of a pixel, beyond any rounding) from that
    chunk's edges: it then meets that chunk's grown box and no other."""
    k = np.clip(np.searchsorted(edges, spans[:, 0], "right") - 1, 0, len(edges) - 2)
    clear = margin + 1e-6
    inner = (edges[k] + clear < spans[:, 0]) & (spans[:, 1] < edges[k + 1] - clear)
    return k, inner


def _tested(
    zones: ZoneArrays,
    ids: np.ndarray,
    bounds: np.ndarray,
    margin: np.ndarray,
    cols: np.ndarray,
    rows: np.ndarray,
    row_edges: np.ndarray,
    col_edges: np.ndarray,
    orient: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, zone) pairs of zones ``ids`` near several chunks, each tested
    as a spatial index tests it: bounds first, then the geometry."""
    n_rows, n_cols = len(row_edges) - 1, len(col_edges) - 1
    # the chunks whose grown boxes the bounds may meet, widened by a millionth
    # of a pixel for rounding: the boxes' own arithmetic decides below
    low_cols, high_cols = cols[:, 0] - margin - 1e-6, cols[:, 1] + margin + 1e-6
    low_rows, high_rows = rows[:, 0] - margin - 1e-6, rows[:, 1] + margin + 1e-6
    j0 = np.maximum(np.searchsorted(col_edges, low_cols) - 1, 0)
    j1 = np.minimum(np.searchsorted(col_edges, high_cols, "right"), n_cols)
    i0 = np.maximum(np.searchsorted(row_edges, low_rows) - 1, 0)
    i1 = np.minimum(np.searchsorted(row_edges, high_rows, "right"), n_rows)
    width = np.maximum(j1 - j0, 0)
    count = width * np.maximum(i1 - i0, 0)
    pair = np.repeat(np.arange(ids.size), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    pi = i0[pair] + k // np.maximum(width[pair], 1)
    pj = j0[pair] + k % np.maximum(width[pair], 1)
    box = _grown_boxes(row_edges, col_edges, orient, pi, pj, margin[pair])
    zb = bounds[pair]
    meets = (box[:, 0] <= zb[:, 2]) & (zb[:, 0] <= box[:, 2])
    meets &= (box[:, 1] <= zb[:, 3]) & (zb[:, 1] <= box[:, 3])
    inside = (box[:, 0] <= zb[:, 0]) & (box[:, 1] <= zb[:, 1])
    inside &= (zb[:, 2] <= box[:, 2]) & (zb[:, 3] <= box[:, 3])
    keep = meets & inside
    test = np.flatnonzero(meets & ~inside)
    if test.size:
        unique, local = np.unique(pair[test], return_inverse=True)
        shapes = zones.take(ids[unique]).geometries()[local]
        keep[test] = shapely.intersects(shapes, shapely.box(*box[test].T))
    return (pi * n_cols + pj)[keep], ids[pair[keep]]


def _grown_boxes(
    row_edges: np.ndarray,
    col_edges: np.ndarray,
    orient: tuple[int, int],
    i: np.ndarray,
    j: np.ndarray,
    margin: np.ndarray,
) -> np.ndarray:
    """(n, 4) boxes of chunks (i, j) in the oriented pixel space, grown by
    ``margin``: the boxes a spatial index of the zones would be queried with."""
    xs = orient[0] * col_edges[j], orient[0] * col_edges[j + 1]
    ys = orient[1] * row_edges[i], orient[1] * row_edges[i + 1]
    boxes = np.empty((len(i), 4))
    boxes[:, 0] = np.minimum(*xs) - margin
    boxes[:, 1] = np.minimum(*ys) - margin
    boxes[:, 2] = np.maximum(*xs) + margin
    boxes[:, 3] = np.maximum(*ys) + margin
    return boxes


def tasks_token(tasks: Sequence[ChunkTask]) -> str:
    """A deterministic digest of the chunk tasks: grid places, zones, layers
    and the zones' arrays (hashed once per shard, not once per task)."""
    digest = hashlib.sha1()
    seen: set[int] = set()
    for t in tasks:
        digest.update(np.asarray(t.place[0] + t.place[1] + t.place[2]).tobytes())
        digest.update(np.asarray(t.orientation + (t.raster_shape or ())).tobytes())
        digest.update(t.zones.tobytes())
        if t.layers is not None:
            digest.update(t.layers.astype(np.int64).tobytes())
        if t.selection is not None:
            if id(t.selection.shards) not in seen:
                seen.add(id(t.selection.shards))
                digest.update(t.selection.shards.token.encode())
        elif t.arrays is not None:
            digest.update(t.arrays.digest().encode())
    return digest.hexdigest()
