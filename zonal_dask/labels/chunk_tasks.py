"""Chunk tasks: each chunk of the grid with the zones that may claim its pixels.

``plan_chunks`` gives every chunk of a raster's grid a ``ChunkTask`` holding
only the zones (in pixel space, ``zones.PixelZones``) within ``burn.reach``
of it; ``tasks_token`` names a list of them for dask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from ..burn.rules import reach


@dataclass(frozen=True)
class ChunkTask:
    """One chunk's place in the grid and the zones (in pixel space) that meet it.

    ``raster_shape`` is the whole grid's (GDAL's pixel rules depend on it at
    the raster's edges); None for tasks that read stored labels.
    """

    block: tuple[int, int]
    offset: tuple[int, int]
    shape: tuple[int, int]
    zones: np.ndarray
    geometries: np.ndarray
    orientation: tuple[int, int]
    layers: np.ndarray | None = None
    raster_shape: tuple[int, int] | None = None

    def __reduce__(self) -> tuple:
        # the geometries travel as one WKB blob and their sizes: pickling them
        # one by one adds about 35 bytes each (a quarter of a small polygon)
        # and unpickles them in a Python loop
        wkb = shapely.to_wkb(self.geometries)
        sizes = np.array([-1 if w is None else len(w) for w in wkb], np.int64)
        blob = b"".join(w for w in wkb if w is not None)
        zones, width = self.zones, "i8"
        if zones.size and zones.max() < 2**31 and sizes.max() < 2**31:
            width = "i4"  # ids and sizes as raw bytes: no array header per task
        index = (zones.astype(width).tobytes(), sizes.astype(width).tobytes(), width)
        fields = (self.block, self.offset, self.shape)
        rest = (self.orientation, self.layers, self.raster_shape)
        return (_unpack, (fields, blob, index, rest))

    @classmethod
    def whole(
        cls,
        geometries: np.ndarray,
        shape: tuple[int, int],
        orient: tuple[int, int] = (1, -1),
        layers: np.ndarray | None = None,
    ) -> ChunkTask:
        """One chunk that is the whole grid, holding zones 0..n-1."""
        zones = np.arange(len(geometries), dtype=np.int64)
        return cls((0, 0), (0, 0), shape, zones, geometries, orient, layers, shape)


def _unpack(fields: tuple, blob: bytes, index: tuple, rest: tuple) -> ChunkTask:
    zone_bytes, size_bytes, width = index
    zones = np.frombuffer(zone_bytes, width).astype(np.int64)
    sizes = np.frombuffer(size_bytes, width).astype(np.int64)
    ends = np.cumsum(np.maximum(sizes, 0))
    wkb = np.array(
        [
            None if size < 0 else blob[end - size : end]
            for size, end in zip(sizes.tolist(), ends.tolist(), strict=True)
        ],
        dtype=object,
    )
    block, offset, shape = fields
    orientation, layers, raster_shape = rest
    geometries = shapely.from_wkb(wkb)
    return ChunkTask(
        block, offset, shape, zones, geometries, orientation, layers, raster_shape
    )


def plan_chunks(
    pixel_geometries: np.ndarray,
    chunks: tuple[Sequence[int], Sequence[int]],
    orient: tuple[int, int],
    layers: np.ndarray | None = None,
) -> list[ChunkTask]:
    """Give each chunk of the grid the zones that may claim its pixels: those
    within ``burn.reach`` pixels of it (a spatial index).

    Chunks that no zone comes near get no task, so their pixels are never read.
    """
    row_edges = np.cumsum((0, *chunks[0]))
    col_edges = np.cumsum((0, *chunks[1]))
    n_rows, n_cols = len(chunks[0]), len(chunks[1])
    ii, jj = np.divmod(np.arange(n_rows * n_cols), n_cols)
    flip_x, flip_y = orient
    xs = flip_x * col_edges[jj], flip_x * col_edges[jj + 1]
    ys = flip_y * row_edges[ii], flip_y * row_edges[ii + 1]
    low, high = (np.minimum(*xs), np.minimum(*ys)), (np.maximum(*xs), np.maximum(*ys))
    tree = shapely.STRtree(pixel_geometries)
    reaches = reach(pixel_geometries)
    found = []
    for margin in np.unique(reaches):  # the zones that reach that far
        boxes = shapely.box(*(a - margin for a in low), *(b + margin for b in high))
        chunk_index, zone_index = tree.query(boxes, predicate="intersects")
        keep = reaches[zone_index] == margin
        found.append((chunk_index[keep], zone_index[keep]))
    chunk_index = np.concatenate([c for c, _ in found] or [np.empty(0, np.int64)])
    zone_index = np.concatenate([z for _, z in found] or [np.empty(0, np.int64)])
    if chunk_index.size == 0:  # no zones, or none meets the raster
        return []
    order = np.lexsort((zone_index, chunk_index))
    chunk_index, zone_index = chunk_index[order], zone_index[order]
    starts = np.flatnonzero(np.diff(chunk_index, prepend=-1))
    tasks = []
    for chunk, zones in zip(
        chunk_index[starts], np.split(zone_index, starts[1:]), strict=True
    ):
        i, j = int(ii[chunk]), int(jj[chunk])
        tasks.append(
            ChunkTask(
                block=(i, j),
                offset=(int(row_edges[i]), int(col_edges[j])),
                shape=(int(chunks[0][i]), int(chunks[1][j])),
                zones=zones.astype(np.int64),
                geometries=pixel_geometries[zones],
                orientation=orient,
                layers=None if layers is None else layers[zones],
                raster_shape=(int(row_edges[-1]), int(col_edges[-1])),
            )
        )
    return tasks


def tasks_token(tasks: Sequence[ChunkTask]) -> str:
    """A deterministic digest of the chunk tasks (grid places and geometries)."""
    digest = hashlib.sha1()
    for t in tasks:
        digest.update(
            np.asarray(
                t.block + t.offset + t.shape + t.orientation + (t.raster_shape or ())
            ).tobytes()
        )
        digest.update(t.zones.tobytes())
        if t.layers is not None:
            digest.update(t.layers.astype(np.int64).tobytes())
        # WKB delimits itself: the joined bytes name the geometries
        digest.update(b"".join(shapely.to_wkb(t.geometries)))
    return digest.hexdigest()
