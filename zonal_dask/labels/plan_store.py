"""A ``ZonePlan``'s Zarr store: each chunk's labels written by the workers,
read back lazily, one read task per chunk.

Store layout (Zarr group): ``labels`` int32 (1, rows, cols), each pixel's
first claim as a chunk-local zone index or -1, chunked as the raster; for the
chunks some zone meets, in order, ``blocks`` (n, 2), and the per-chunk pieces
concatenated with their start offsets: ``zones``/``zone_start`` (global zone
index of each local index, as the source lists them), ``extra_pixels``/
``extra_zones``/``extra_weights``/``extra_start`` (every further claim: flat
pixel index in the chunk, local zone index, weight when weighted); per zone,
``outside`` (the share of its area beyond the grid, when known) and ``groups``
(its value group); attributes hold the grid, the options the plan was made
with and the zone index.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine
from dask.base import tokenize
from rasterio.crs import CRS

from ..errors import PlanError
from ..io.grid import Grid
from ..io.location import storage_options
from .sources import ChunkLabels, ChunkTask, Labels, LabelSource, pieces

FORMAT = "zonal_dask.ZonePlan"
VERSION = 2


def read_store(
    path: str,
) -> tuple[Grid, LabelSource, list[ChunkTask], dict[str, Any]]:
    """The grid, the label source (reading the store), the chunks' places and
    the options of the plan stored at ``path``."""
    import zarr

    if not os.path.exists(path) and "://" not in path:
        raise PlanError(f"{path}: no such zone plan")
    try:
        options = storage_options(path) or None
        group = zarr.open_group(path, mode="r", storage_options=options)
        attrs = dict(group.attrs)
    except Exception as err:  # zarr raises several types for non-stores
        raise PlanError(f"{path}: not a zone plan ({err})") from None
    if attrs.get("format") != FORMAT:
        raise PlanError(f"{path}: not a zone plan (no {FORMAT} attributes)")
    if attrs.get("version") != VERSION:
        raise PlanError(
            f"{path}: zone plan version {attrs.get('version')}, "
            f"this zonal_dask reads version {VERSION}"
        )
    rows, cols = attrs["chunks"]
    chunks = (tuple(int(c) for c in rows), tuple(int(c) for c in cols))
    grid = Grid(
        shape=(int(attrs["shape"][0]), int(attrs["shape"][1])),
        transform=Affine(*attrs["transform"]),
        crs=None if attrs["crs"] is None else CRS.from_wkt(attrs["crs"]),
        chunks=chunks,
    )
    spec = attrs["index"]
    index = pd.Index(spec["values"], dtype=spec["dtype"], name=spec["name"])
    orient = tuple(attrs["orientation"])
    row_edges, col_edges = np.cumsum((0, *chunks[0])), np.cumsum((0, *chunks[1]))
    tasks = [
        ChunkTask(
            block=(i, j),
            offset=(int(row_edges[i]), int(col_edges[j])),
            shape=(chunks[0][i], chunks[1][j]),
            zones=np.empty(0, np.int64),
            arrays=None,
            orientation=orient,
            layers=np.empty(0, np.int64),
        )
        for i, j in (tuple(int(v) for v in b) for b in group["blocks"][:])
    ]
    zones, starts = group["zones"][:], group["zone_start"][:]
    source = LabelSource(
        tasks={},
        zones={
            t.block: np.asarray(zones[starts[k] : starts[k + 1]], np.int64)
            for k, t in enumerate(tasks)
        },
        index=index,
        token=attrs["token"],  # the burnt labels' token, as saved
        groups=np.asarray(group["groups"][:], np.int64),
        fields=(
            {"outside": np.asarray(group["outside"][:], np.float64)}
            if "outside" in group
            else {}
        ),
        weighted=bool(attrs["weighted"]),
        fallback=bool(attrs["fallback"]),
    )
    return grid, stored(path, tasks, source), tasks, dict(attrs["options"])


def placeholder(t: ChunkTask) -> ChunkTask:
    return ChunkTask(
        t.block,
        t.offset,
        t.shape,
        np.empty(0, np.int64),
        None,
        t.orientation,
        np.empty(0, np.int64),
    )


def stored(path: str, tasks: Sequence[ChunkTask], source: LabelSource) -> LabelSource:
    """``source`` with its labels read from the Zarr store, a read task per chunk."""
    return replace(
        source,
        token=tokenize(source.token, "stored"),
        tasks={
            t.block: (read_chunk, path, k, t.offset, t.shape, source.weighted)
            for k, t in enumerate(tasks)
        },
        dependencies=(),
    )


def create(group: Any, name: str, **kwargs: Any) -> Any:
    # zarr 3 names it create_array, zarr 2 create_dataset
    create = getattr(group, "create_array", None) or group.create_dataset
    return create(name, **kwargs)


def one_plane(labels: Labels) -> ChunkLabels:
    """A chunk's labels as one plane and sparse claims, in the order the chunk
    step reads them: each piece's planes, then its sparse claims."""
    parts = list(pieces(labels))
    first = parts[0].labels
    plane = (
        np.array(first[0], np.int32)
        if first.shape[0]
        else np.full(first.shape[1:], -1, np.int32)
    )
    weighted = not parts[0].unweighted
    pixels, zones, weights = [], [], []
    for n, piece in enumerate(parts):
        for layer in piece.labels[1 if n == 0 else 0 :]:
            claimed = np.flatnonzero(layer.reshape(-1) >= 0)
            pixels.append(claimed)
            zones.append(layer.reshape(-1)[claimed])
        pixels.append(piece.extra_pixels)
        zones.append(piece.extra_zones)
        if weighted:
            weights.append(piece.extra_weights)
    return ChunkLabels(
        plane[np.newaxis],
        np.concatenate(pixels).astype(np.int64),
        np.concatenate(zones).astype(np.int32),
        parts[-1].zones,
        np.concatenate(weights) if weighted else np.empty(0),
    )


def write_chunk(
    labels: Labels, path: str, offset: tuple[int, int], listed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write one chunk's label plane; return its small variable-size pieces."""
    import zarr

    chunk = one_plane(labels)
    # a chunk's local indices point into the zones its source lists
    assert np.array_equal(chunk.zones, listed[: len(chunk.zones)])
    _, rows, cols = chunk.labels.shape
    store = zarr.open_group(
        path, mode="r+", storage_options=storage_options(path) or None
    )["labels"]
    r0, c0 = offset
    store[:, r0 : r0 + rows, c0 : c0 + cols] = chunk.labels
    return listed, chunk.extra_pixels, chunk.extra_zones, chunk.extra_weights


def write_pieces(
    group: Any,
    tasks: Sequence[ChunkTask],
    pieces: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    blocks = np.array([t.block for t in tasks], np.int64).reshape(-1, 2)
    columns: dict[str, list[np.ndarray]] = {
        "zones": [np.asarray(p[0], np.int64) for p in pieces],
        "extra_pixels": [np.asarray(p[1], np.int64) for p in pieces],
        "extra_zones": [np.asarray(p[2], np.int32) for p in pieces],
        "extra_weights": [np.asarray(p[3], np.float64) for p in pieces],
    }
    arrays: dict[str, np.ndarray] = {"blocks": blocks}
    for field, parts in columns.items():
        arrays[field] = np.concatenate(parts) if parts else np.empty(0, np.int64)
    for start, field in (("zone_start", "zones"), ("extra_start", "extra_pixels")):
        arrays[start] = np.cumsum(
            [0, *(len(p) for p in columns[field])], dtype=np.int64
        )
    for name, data in arrays.items():
        create(group, name, data=data, chunks=(max(1, len(data)), *data.shape[1:]))


def read_chunk(
    path: str,
    k: int,
    offset: tuple[int, int],
    shape: tuple[int, int],
    weighted: bool = False,
) -> ChunkLabels:
    """The ``ChunkLabels`` of the ``k``-th stored chunk (at ``offset``)."""
    import zarr

    options = storage_options(path) or None
    group = zarr.open_group(path, mode="r", storage_options=options)
    r0, c0 = offset
    labels = group["labels"][:, r0 : r0 + shape[0], c0 : c0 + shape[1]]
    z0, z1 = (int(v) for v in group["zone_start"][k : k + 2])
    e0, e1 = (int(v) for v in group["extra_start"][k : k + 2])
    return ChunkLabels(
        np.ascontiguousarray(labels, dtype=np.int32),
        np.asarray(group["extra_pixels"][e0:e1], np.int64),
        np.asarray(group["extra_zones"][e0:e1], np.int32),
        np.asarray(group["zones"][z0:z1], np.int64),
        np.asarray(group["extra_weights"][e0:e1], np.float64)
        if weighted
        else np.empty(0),
    )
