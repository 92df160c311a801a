"""Label rasters, in and out.

``label_raster_source`` takes an integer label raster on the raster's grid as
the zones (each value a zone); ``label_array`` gives any label source as a
lazy int32 label raster with the raster's chunks (``rasterize_zones``).
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ..burn.rules import NO_ZONE
from .sources import ChunkLabels, Labels, LabelSource, pieces


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
    graph = HighLevelGraph.from_collections(
        name, dsk, dependencies=list(source.dependencies)
    )
    return da.Array(graph, name, chunks, dtype=np.int32)
