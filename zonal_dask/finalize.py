"""The final step: merged partials to one table, a row per zone.

One function for every route and shape: the moments of each band block, the
merged classes and each value group's results become dense columns over all
zones and planes, each statistic's finalize step (``stats.py``) turns them into
its column, and the result is a ``pandas.DataFrame`` for a 2-D raster or an
``xarray.Dataset`` with dimensions (zone, band or time) for a 3-D one.

Rows are the zones of the label source in input order, or, for a label
raster, the label values found, sorted. With a small-zone fallback
(``labels.touched_fallback``) the zones ``N + z`` are computed as rows of
their own, and a zone that claims no pixel takes its fallback row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .partials import (
    ChunkResult,
    Classes,
    Moments,
    dense_moments,
    gather_values,
    merge_classes,
    merge_moments,
)
from .stats import ClassTable, Column

Values = tuple[np.ndarray, dict[str, np.ndarray]]


@dataclass(frozen=True)
class Layout:
    """What the final step needs to know besides the partials."""

    columns: Sequence[Column]
    index: pd.Index | None
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)
    weighted: bool = False
    fallback: bool = False
    planes: tuple[str, np.ndarray] | None = None
    unsigned: bool = False

    @property
    def n_planes(self) -> int:
        return 1 if self.planes is None else len(self.planes[1])


def values_step(results: Sequence[ChunkResult], group: int, layout: Layout) -> Values:
    """The ``values`` statistics of one group of zones.

    Returns the group's virtual zones (``zone * n_planes + plane``) that have
    valid values, sorted, and for each such column its value for each.
    """
    gathered = gather_values(results, group)
    zones, starts = np.unique(gathered.zone, return_index=True)
    bounds = np.append(starts, gathered.zone.size)
    columns = [c for c in layout.columns if c.statistic.family == "values"]
    out = {c.name: np.empty(zones.size) for c in columns}
    for i in range(zones.size):
        part = slice(bounds[i], bounds[i + 1])
        weights = None if gathered.weight is None else gathered.weight[part]
        for c in columns:
            out[c.name][i] = c.statistic.finalize(gathered.value[part], weights)
    return zones, out


def table(
    roots: Sequence[Moments | None],
    plane_blocks: Sequence[int],
    classes: Classes | None,
    groups: Sequence[Values],
    layout: Layout,
) -> pd.DataFrame | xr.Dataset:
    """The final step: a dense table, one row per zone (and plane)."""
    k = layout.n_planes
    merged = [
        merge_moments([r]) if r is not None else Moments.empty(None if k == 1 else s)
        for r, s in zip(roots, plane_blocks, strict=True)
    ]
    found, index = _rows(merged, layout)
    n_rows = len(index) * (2 if layout.fallback else 1)

    def row_of(virtual: np.ndarray) -> np.ndarray:
        """Flat (row, plane) position of virtual zones ``zone * k + plane``."""
        if found is None:
            return virtual
        zone, plane = np.divmod(virtual, k)
        return np.searchsorted(found, zone) * k + plane

    blocks = []
    for moments, size in zip(merged, plane_blocks, strict=True):
        zone = moments.zone if found is None else np.searchsorted(found, moments.zone)
        dense = dense_moments(moments._replace(zone=zone), n_rows)
        blocks.append({n: f.reshape(n_rows, size) for n, f in dense.items()})
    fields = {n: np.concatenate([b[n] for b in blocks], axis=1) for n in blocks[0]}
    for name, per_zone in layout.fields.items():
        repeat = np.resize(np.asarray(per_zone, np.float64), n_rows)
        fields[name] = np.repeat(repeat[:, np.newaxis], k, axis=1)
    class_table = None
    if any(c.statistic.family == "classes" for c in layout.columns):
        merged_classes = merge_classes([classes])
        class_table = ClassTable(
            row_of(merged_classes.zone),
            merged_classes.value,
            merged_classes.weight,
            n_rows * k,
        )
    data: dict[Any, np.ndarray] = {}
    for column in layout.columns:
        statistic = column.statistic
        if statistic.family == "moments":
            result: Any = statistic.finalize(fields)
        elif statistic.family == "classes":
            result = statistic.finalize(class_table)
        else:
            result = np.full(n_rows * k, np.nan)
            for zones, found_values in groups:
                result[row_of(zones)] = found_values[column.name]
        dtype = statistic.weighted_dtype if layout.weighted else statistic.dtype
        named = result if isinstance(result, dict) else {column.name: result}
        for name, values in named.items():
            data[name] = np.asarray(values, dtype=dtype).reshape(n_rows, k)
    if layout.fallback:
        data = _take_fallback(data, fields, len(index), k)
    if layout.planes is None:
        frame = pd.DataFrame({n: v[:, 0] for n, v in data.items()}, index=index)
        return frame.sort_index() if layout.unsigned else frame
    dim, coords = layout.planes
    variables = {str(n): (("zone", dim), v) for n, v in data.items()}
    dataset = xr.Dataset(variables, coords={"zone": index.to_numpy(), dim: coords})
    dataset["zone"].attrs["long_name"] = index.name
    return dataset.sortby("zone") if layout.unsigned else dataset


def _rows(merged: Sequence[Moments], layout: Layout) -> tuple[Any, pd.Index]:
    """The label values found (None when the zones are known) and the index."""
    if layout.index is not None:
        return None, layout.index
    parts = [m.zone for m in merged]
    found = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    names = found.astype(np.int64).view(np.uint64) if layout.unsigned else found
    return found, pd.Index(names, name="zone")


def _take_fallback(
    data: dict[Any, np.ndarray],
    fields: Mapping[str, np.ndarray],
    n_zones: int,
    k: int,
) -> dict[Any, np.ndarray]:
    """Rows of zones that claim no pixel, from their all-touched stand-ins;
    plus the boolean ``small`` column that marks them."""
    pixels = (fields["count"] + fields["nodata"])[:, 0]
    small = (pixels[:n_zones] == 0) & (pixels[n_zones:] > 0)
    out = {}
    for name, values in data.items():
        main, stand_in = values[:n_zones], values[n_zones:]
        out[name] = np.where(small[:, np.newaxis], stand_in, main)
    out["small"] = np.repeat(small[:, np.newaxis], k, axis=1)
    return out
