"""The per-pixel view: one row per (zone, pixel), as exactextract's
``values``, ``coverage``, ``weights``, ``cell_id``, ``center_x``, ``center_y``.

The rows come from the same label sources as the statistics: one partition
per chunk, made by the chunk's label task and its value (and weights) block,
so a pixel claimed by two zones gives two rows, and a zone's rows are spread
over the partitions of the chunks it meets. Nothing is gathered: the table is
a dask DataFrame written or reduced partition by partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..io.common_grid import CommonGrid
from ..labels.sources import ChunkLabels, LabelSource
from .moments import valid_pixels
from .partials import valid_claims

COLUMNS = ("values", "coverage", "weights", "cell_id", "center_x", "center_y")


@dataclass(frozen=True)
class PixelSpec:
    """What a chunk's rows need besides its blocks: the zone column's name
    and the names of the chunk's zones (None: the zone numbers are the
    names), the chunk's first cell, the grid's transform, how the grid maps to
    the value raster's cells, nodata and ``default_value``."""

    column: str
    names: pd.Index | None
    origin: tuple[int, int]
    transform: tuple[float, ...]
    grid: CommonGrid
    nodata: float | None
    default_value: float | None
    dtype: str
    weighted: bool


def meta(spec: PixelSpec, zone_dtype: Any) -> pd.DataFrame:
    """The empty table with the columns and dtypes of every partition."""
    columns: dict[str, Any] = {
        spec.column: pd.Series(dtype=zone_dtype),
        "values": np.empty(0, spec.dtype),
        "coverage": np.empty(0, np.float32),
        "weights": np.empty(0, np.float64),
        "cell_id": np.empty(0, np.int64),
        "center_x": np.empty(0),
        "center_y": np.empty(0),
    }
    if not spec.weighted:
        del columns["weights"]
    return pd.DataFrame(columns)


def chunk_pixels(
    values: np.ndarray,
    labels: ChunkLabels,
    weights: np.ndarray | None,
    spec: PixelSpec,
) -> pd.DataFrame:
    """One chunk's rows, by zone then pixel (row by row)."""
    nodata = spec.nodata
    if spec.default_value is not None:
        fill = np.asarray(spec.default_value).astype(values.dtype)
        values, nodata = np.where(valid_pixels(values, nodata), values, fill), None
    zone, _, coverage, pixel = valid_claims(values, labels, nodata)
    order = np.lexsort((pixel, zone))
    zone, pixel = zone[order], pixel[order]
    if coverage is None:
        coverage = np.ones(zone.size)
    row, col = np.divmod(pixel, values.shape[1])
    row, col = row + spec.origin[0], col + spec.origin[1]
    a, _, c, _, e, f = spec.transform
    if spec.names is None:
        names: Any = zone
    else:
        names = spec.names[np.searchsorted(labels.zones, zone)]
    table: dict[str, Any] = {
        spec.column: names,
        "values": values.reshape(-1)[pixel],
        "coverage": coverage[order].astype(np.float32),
        "weights": None if weights is None else weights.reshape(-1)[pixel],
        "cell_id": spec.grid.cell_ids(row, col),
        "center_x": c + (col + 0.5) * a,
        "center_y": f + (row + 0.5) * e,
    }
    if weights is None:
        del table["weights"]
    return pd.DataFrame(table)


def pixel_frame(
    values: da.Array,
    source: LabelSource,
    spec: PixelSpec,
    weights: da.Array | None = None,
) -> Any:
    """The long table as a dask DataFrame, one partition per chunk with zones.

    ``spec.names`` is ignored: each partition gets its own zones' names.
    """
    import dask.dataframe as dd

    index = source.index
    zone_dtype = np.int64 if index is None else index.dtype
    empty = meta(spec, zone_dtype)
    token = tokenize(
        values.name, source.token, spec, None if weights is None else weights.name
    )
    name = f"zonal-pixels-{token}"
    row_edges = np.cumsum((0, *values.chunks[0]))
    col_edges = np.cumsum((0, *values.chunks[1]))
    dsk: dict = {}
    keys: list[tuple] = []
    for block, label_task in sorted(source.tasks.items()):
        names = None
        if index is not None and source.zones is not None:
            names = index[source.zones[block]]
        block_spec = PixelSpec(
            spec.column,
            names,
            (int(row_edges[block[0]]), int(col_edges[block[1]])),
            spec.transform,
            spec.grid,
            spec.nodata,
            spec.default_value,
            spec.dtype,
            spec.weighted,
        )
        block_weights = None if weights is None else (weights.name, *block)
        key = (name, len(keys))
        dsk[key] = (
            chunk_pixels,
            (values.name, *block),
            label_task,
            block_weights,
            block_spec,
        )
        keys.append(key)
    if not keys:
        return dd.from_pandas(empty, npartitions=1)
    inputs = [values, *([] if weights is None else [weights]), *source.dependencies]
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=inputs)
    parts = [Delayed(key, graph, layer=name) for key in keys]
    return dd.from_delayed(parts, meta=empty, verify_meta=False)
