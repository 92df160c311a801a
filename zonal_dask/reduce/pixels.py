"""The per-pixel view: one row per (zone, pixel), as exactextract's
``values``, ``coverage``, ``weights``, ``cell_id``, ``center_x``, ``center_y``.

The rows come from the same label sources as the statistics: one partition
per chunk, made by the chunk's label task and its value (and weights) block,
so a pixel claimed by two zones gives two rows, and a zone's rows are spread
over the partitions of the chunks it meets. Nothing is gathered: the table is
a dask DataFrame written or reduced partition by partition.

A chunk overlapped many layers deep comes in pieces (``BurntPieces``), read
one after the other. Under ``small="touched"`` the chunk's labels also hold
the all-touched stand-ins of zones that claim none of its pixels; a zone's
stand-in rows are kept only where the zone claims no pixel anywhere, as
finalizing decides for the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..io.common_grid import CommonGrid
from ..labels.sources import Labels, LabelSource, pieces
from .moments import valid_pixels
from .partials import valid_claims

COLUMNS = ("values", "coverage", "weights", "cell_id", "center_x", "center_y")


@dataclass(frozen=True)
class PixelSpec:
    """What a chunk's rows need besides its blocks: the zone column's name,
    the chunk's zones (sorted) and their names (None: the zone numbers are
    the names), the chunk's first cell, the grid's transform, how the grid
    maps to the value raster's cells, nodata and ``default_value``; under
    ``small="touched"``, the number of zones and the chunk's zones that take
    their stand-ins."""

    column: str
    names: pd.Index | None
    origin: tuple[int, int]
    transform: tuple[float, ...]
    grid: CommonGrid
    nodata: float | None
    default_value: float | None
    dtype: str
    weighted: bool
    zones: np.ndarray | None = None
    stand_ins: tuple[int, np.ndarray] | None = None


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
    labels: Labels,
    weights: np.ndarray | None,
    spec: PixelSpec,
) -> pd.DataFrame:
    """One chunk's rows, by zone then pixel (row by row)."""
    nodata = spec.nodata
    if spec.default_value is not None:
        fill = np.asarray(spec.default_value).astype(values.dtype)
        values, nodata = np.where(valid_pixels(values, nodata), values, fill), None
    zones, coverages, pixels = [], [], []
    for piece in pieces(labels):
        zone, _, coverage, pixel = valid_claims(values, piece, nodata)
        zones.append(zone)
        coverages.append(np.ones(zone.size) if coverage is None else coverage)
        pixels.append(pixel)
    zone, coverage, pixel = (np.concatenate(a) for a in (zones, coverages, pixels))
    if spec.stand_ins is not None:
        zone, kept = _stand_ins_taken(zone, *spec.stand_ins)
        coverage, pixel = coverage[kept], pixel[kept]
    order = np.lexsort((pixel, zone))
    zone, pixel = zone[order], pixel[order]
    row, col = np.divmod(pixel, values.shape[1])
    row, col = row + spec.origin[0], col + spec.origin[1]
    a, _, c, _, e, f = spec.transform
    if spec.names is None or spec.zones is None:
        names: Any = zone
    else:
        names = spec.names[np.searchsorted(spec.zones, zone)]
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


def _stand_ins_taken(
    zone: np.ndarray, n_zones: int, small: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The claims' zones, stand-ins (``n_zones + z``) renamed ``z``, and which
    claims are kept: every zone's own, and the stand-ins of ``small`` zones."""
    stand_in = zone >= n_zones
    own = np.where(stand_in, zone - n_zones, zone)
    kept = ~stand_in | np.isin(own, small)
    return own[kept], kept


def pixel_frame(
    values: da.Array,
    source: LabelSource,
    spec: PixelSpec,
    weights: da.Array | None = None,
    small: np.ndarray | None = None,
) -> Any:
    """The long table as a dask DataFrame, one partition per chunk with zones.

    ``spec.names`` and ``spec.zones`` are ignored: each partition gets its
    own zones. ``small`` (with a source that has stand-ins, bool per zone)
    marks the zones whose rows are their stand-ins' (``small="touched"``).
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
    if source.fallback and (index is None or small is None):
        raise ValueError("stand-ins need the zones' index and which zones are small")
    for block, label_task in sorted(source.tasks.items()):
        names = zones = stand_ins = None
        if index is not None and source.zones is not None:
            zones = np.unique(source.zones[block])
            if source.fallback:
                zones = zones[zones < len(index)]
                assert small is not None
                stand_ins = (len(index), zones[small[zones]])
            names = index[zones]
        block_spec = replace(
            spec,
            names=names,
            origin=(int(row_edges[block[0]]), int(col_edges[block[1]])),
            zones=zones,
            stand_ins=stand_ins,
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
