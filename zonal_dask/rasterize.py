"""Zones to labels, chunk by chunk.

Geometries are moved once into the raster's pixel space with GDAL's own
arithmetic (``GDALInvGeoTransform``), keeping the axes' orientation, and each
chunk is burnt with a transform that is only a unit scale and an integer
offset. GDAL then sees, for every chunk, the pixel coordinates it computes
when it rasterizes a polygon over the whole raster with the raster's
transform: a pixel's zone does not depend on the chunking, and equals the
classic per-polygon recipe's answer even for pixel centres exactly on an edge.

A spatial index gives each chunk the zones that meet it, and only those
travel with its task. Each chunk is burnt once with ``MergeAlg.add``, every
zone adding ``(local index + 1) << 16 | 1``: a pixel's low bits count the zones
that claim it, its high bits name the zone when there is exactly one. Pixels
claimed by several zones (true overlaps, or a shared edge that GDAL's
pixel-centre test gives to both neighbours) are resolved by burning only the
zones concerned again, each alone, over the window of those pixels. So every
zone gets exactly the pixels it gets when rasterized on its own.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import dask.array as da
import numpy as np
import shapely
from affine import Affine
from dask.base import tokenize as dask_tokenize
from rasterio import features
from rasterio.enums import MergeAlg
from rasterio.errors import NotGeoreferencedWarning

from .errors import RasterError

# The first chunk's transform is a unit scale at the origin, which rasterio
# flags as "not georeferenced"; in pixel space that is exactly what we mean.
warnings.filterwarnings(
    "ignore", category=NotGeoreferencedWarning, module="rasterio.features"
)

NO_ZONE = -1
_COUNT_BITS = 16
_COUNT_MASK = (1 << _COUNT_BITS) - 1
# Burn values are doubles inside GDAL: exact while the sum of all (index+1) << 16
# stays below 2**53, which holds for up to 2**15 zones in one chunk.
MAX_ENCODED_ZONES = 1 << 15


class ChunkLabels(NamedTuple):
    """The zones of one chunk.

    Attributes
    ----------
    labels
        int32 (rows, cols): local index of the one zone that claims the pixel,
        or ``NO_ZONE`` when none or several do.
    extra_pixels
        int64 flat pixel indices of the claims on pixels several zones cover.
    extra_zones
        int32 local zone index of each of those claims.
    zones
        int64 global zone index of each local index.
    """

    labels: np.ndarray
    extra_pixels: np.ndarray
    extra_zones: np.ndarray
    zones: np.ndarray


@dataclass(frozen=True)
class ChunkTask:
    """What one chunk's task needs: its place in the grid and its zones."""

    block: tuple[int, int]
    offset: tuple[int, int]
    shape: tuple[int, int]
    zones: np.ndarray
    geometries: np.ndarray
    orientation: tuple[int, int]


def orientation(transform: Affine) -> tuple[int, int]:
    """Signs of the pixel axes in the CRS: (1, -1) for a north-up raster."""
    return (1 if transform.a > 0 else -1), (1 if transform.e > 0 else -1)


def to_pixel_space(geometries: np.ndarray, transform: Affine) -> np.ndarray:
    """Map geometries from the raster's CRS to oriented pixel coordinates.

    A point at column ``c``, row ``r`` maps to ``(sx * c, sy * r)`` where
    ``(sx, sy) = orientation(transform)``. The arithmetic is GDAL's own
    (``-x0/dx + x * (1/dx)``); keeping the axes' signs keeps GDAL's tie-breaking
    for pixel centres that lie exactly on an edge.
    """
    if transform.b != 0 or transform.d != 0:
        raise RasterError(
            f"rotated or sheared geotransform {tuple(transform)[:6]} is not supported"
        )
    if transform.a == 0 or transform.e == 0:
        raise RasterError(f"degenerate geotransform {tuple(transform)[:6]}")
    ox, sx = -transform.c / transform.a, 1.0 / transform.a
    oy, sy = -transform.f / transform.e, 1.0 / transform.e
    flip_x, flip_y = orientation(transform)

    def forward(xy: np.ndarray) -> np.ndarray:
        columns, rows = ox + xy[:, 0] * sx, oy + xy[:, 1] * sy
        return np.column_stack((flip_x * columns, flip_y * rows))

    return shapely.transform(geometries, forward)


def window_transform(orient: tuple[int, int], row_off: int, col_off: int) -> Affine:
    """The transform GDAL burns a window at (row_off, col_off) with."""
    flip_x, flip_y = orient
    return Affine(flip_x, 0.0, flip_x * col_off, 0.0, flip_y, flip_y * row_off)


def plan_chunks(
    pixel_geometries: np.ndarray,
    chunks: tuple[Sequence[int], Sequence[int]],
    orient: tuple[int, int],
) -> list[ChunkTask]:
    """Give each chunk of the grid the zones that meet it.

    Chunks that no zone meets get no task, so their pixels are never read.
    """
    row_edges = np.cumsum((0, *chunks[0]))
    col_edges = np.cumsum((0, *chunks[1]))
    n_rows, n_cols = len(chunks[0]), len(chunks[1])
    ii, jj = np.divmod(np.arange(n_rows * n_cols), n_cols)
    flip_x, flip_y = orient
    xs = flip_x * col_edges[jj], flip_x * col_edges[jj + 1]
    ys = flip_y * row_edges[ii], flip_y * row_edges[ii + 1]
    boxes = shapely.box(
        np.minimum(*xs), np.minimum(*ys), np.maximum(*xs), np.maximum(*ys)
    )
    tree = shapely.STRtree(pixel_geometries)
    chunk_index, zone_index = tree.query(boxes, predicate="intersects")
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
            )
        )
    return tasks


def rasterize_chunk(
    geometries: np.ndarray,
    zones: np.ndarray,
    offset: tuple[int, int],
    shape: tuple[int, int],
    orient: tuple[int, int] = (1, -1),
) -> ChunkLabels:
    """Burn one chunk's zones (pixel-centre rule) into a ``ChunkLabels``.

    ``geometries`` are in the oriented pixel space of ``to_pixel_space``;
    ``offset`` is the chunk's (row, column) in the raster.
    """
    transform = window_transform(orient, *offset)
    labels, claimed = _burn(geometries, shape, transform)
    extra_pixels, extra_zones = _resolve_overlaps(
        geometries, claimed, shape, offset, orient
    )
    return ChunkLabels(labels, extra_pixels, extra_zones, zones)


def _burn(
    geometries: np.ndarray, shape: tuple[int, int], transform: Affine
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the singly claimed pixels, and the flat indices of the others."""
    k = len(geometries)
    if k == 0:
        return np.full(shape, NO_ZONE, np.int32), np.empty(0, np.int64)
    if k <= MAX_ENCODED_ZONES:
        burn = features.rasterize(
            zip(
                geometries,
                [((z + 1) << _COUNT_BITS) | 1 for z in range(k)],
                strict=True,
            ),
            out_shape=shape,
            transform=transform,
            fill=0,
            merge_alg=MergeAlg.add,
            dtype="int64",
        )
        count = burn & _COUNT_MASK
        labels = np.where(count == 1, (burn >> _COUNT_BITS) - 1, NO_ZONE)
        return labels.astype(np.int32), np.flatnonzero(count > 1)
    # Too many zones for the one-burn encoding: a label burn and a count burn.
    labels = features.rasterize(
        zip(geometries, range(k), strict=True),
        out_shape=shape,
        transform=transform,
        fill=NO_ZONE,
        dtype="int32",
    )
    count = features.rasterize(
        ((g, 1) for g in geometries),
        out_shape=shape,
        transform=transform,
        fill=0,
        merge_alg=MergeAlg.add,
        dtype="int32",
    )
    labels[count > 1] = NO_ZONE
    return labels, np.flatnonzero(count > 1)


def _resolve_overlaps(
    geometries: np.ndarray,
    pixels: np.ndarray,
    shape: tuple[int, int],
    offset: tuple[int, int],
    orient: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Every (pixel, zone) claim on pixels that several zones cover.

    Only the zones whose bounds hold one of those pixels are burnt again, each
    alone and only over the window of its candidate pixels.
    """
    if pixels.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    rows, cols = np.divmod(pixels, shape[1])
    rows_abs, cols_abs = rows + offset[0], cols + offset[1]
    centres = shapely.points(orient[0] * (cols_abs + 0.5), orient[1] * (rows_abs + 0.5))
    point_index, zone_index = shapely.STRtree(geometries).query(centres)
    found_pixels, found_zones = [], []
    for zone in np.unique(zone_index):
        candidates = point_index[zone_index == zone]
        r, c = rows_abs[candidates], cols_abs[candidates]
        r0, c0 = int(r.min()), int(c.min())
        mask = features.rasterize(
            [(geometries[zone], 1)],
            out_shape=(int(r.max()) + 1 - r0, int(c.max()) + 1 - c0),
            transform=window_transform(orient, r0, c0),
            fill=0,
            dtype="uint8",
        )
        hit = candidates[mask[r - r0, c - c0] == 1]
        found_pixels.append(pixels[hit])
        found_zones.append(np.full(hit.size, zone, np.int32))
    return np.concatenate(found_pixels), np.concatenate(found_zones)


def global_labels(chunk: ChunkLabels) -> np.ndarray:
    """A single-label view of a chunk: global zone index, or -1 for none.

    A pixel that several zones claim gets the highest of their indices (the one
    a single label raster would keep); the statistics never use this lossy view.
    """
    out = np.where(chunk.labels >= 0, chunk.zones[chunk.labels], NO_ZONE)
    if chunk.extra_pixels.size:
        flat = out.reshape(-1)
        np.maximum.at(flat, chunk.extra_pixels, chunk.zones[chunk.extra_zones])
    return out.astype(np.int32)


def label_array(
    tasks: Sequence[ChunkTask], chunks: tuple[Sequence[int], Sequence[int]]
) -> da.Array:
    """The zones as a lazy int32 label array with exactly the raster's chunks.

    Each pixel holds its zone's index (see ``global_labels`` for pixels that
    several zones claim), or -1; chunks no zone meets are filled with -1
    without rasterizing anything.
    """
    name = f"zonal-labels-{tasks_token(tasks)}-{dask_tokenize(chunks)}"
    by_block = {t.block: t for t in tasks}
    dsk: dict = {}
    for i, rows in enumerate(chunks[0]):
        for j, cols in enumerate(chunks[1]):
            t = by_block.get((i, j))
            if t is None:
                dsk[(name, i, j)] = (np.full, (rows, cols), NO_ZONE, np.int32)
            else:
                burn = (
                    rasterize_chunk,
                    t.geometries,
                    t.zones,
                    t.offset,
                    t.shape,
                    t.orientation,
                )
                dsk[(name, i, j)] = (global_labels, burn)
    return da.Array(dsk, name, chunks, dtype=np.int32)


def tasks_token(tasks: Sequence[ChunkTask]) -> str:
    """A deterministic digest of the chunk tasks (grid places and geometries)."""
    digest = hashlib.sha1()
    for t in tasks:
        digest.update(
            np.asarray(t.block + t.offset + t.shape + t.orientation).tobytes()
        )
        digest.update(t.zones.tobytes())
        for wkb in shapely.to_wkb(t.geometries):
            digest.update(wkb)
    return digest.hexdigest()
