"""The final step: merged partials to one table, a row per zone.

One function for every route and shape: the moments of each band block, the
merged classes and each value group's results become dense columns over all
zones and planes, each statistic's finalize step (``statistics/table.py``) turns
them into its column, and the result is a ``pandas.DataFrame`` for a 2-D raster or an
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

from ..statistics.fields import CENTRE_FIELDS
from ..statistics.table import ClassTable, Column
from .moments import Moments, dense_moments
from .partials import (
    ChunkResult,
    Classes,
    gather_values,
    merge_classes,
    merge_moments,
)

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
    transform: tuple[float, ...] | None = None
    width: int = 0
    dtype: str | None = None
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
    out = {c.name: np.empty(zones.size, dtype=c.statistic.dtype) for c in columns}
    weight = gathered.weight
    if layout.weighted and weight is None:  # weighted statistics, unit weights
        weight = np.ones(gathered.value.size)
    for i in range(zones.size):
        part = slice(bounds[i], bounds[i + 1])
        cells = gathered.value[part], None if weight is None else weight[part]
        values, weights = cells
        raster = None if gathered.raster is None else gathered.raster[part]
        if weight is not None:
            # weighted statistics read distinct values and their summed
            # weights: sorted once per zone, not once per statistic
            values, inverse = np.unique(values, return_inverse=True)
            weights = np.bincount(inverse, weights=weight[part])
        for c in columns:
            if c.statistic.cells:
                ordered = _in_value_order(*cells, raster)
                given = (
                    ordered if "weighted_values" in c.statistic.reads else ordered[:2]
                )
                out[c.name][i] = c.statistic.finalize(*given)
            else:
                out[c.name][i] = c.statistic.finalize(values, weights)
    for c in columns:
        if layout.weighted and c.statistic.cast and layout.dtype is not None:
            out[c.name] = as_raster_type(out[c.name], np.dtype(layout.dtype))
    return zones, out


def _in_value_order(
    values: np.ndarray, weights: np.ndarray | None, raster: np.ndarray | None
) -> tuple[Any, ...]:
    """A zone's cells by value, then weight, then the weights raster's value:
    the same order for any chunking."""
    keys = [k for k in (raster, weights) if k is not None]
    order = np.lexsort((*keys, values))
    return tuple(None if a is None else a[order] for a in (values, weights, raster))


def as_raster_type(column: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``column`` in the raster's type, as exactextract returns quantiles:
    truncated toward zero for integers, rounded for float32 (NaN kept)."""
    if np.issubdtype(dtype, np.integer):
        return np.trunc(column)
    return column.astype(dtype).astype(np.float64)


def table(
    roots: Sequence[Moments | None],
    plane_blocks: Sequence[int],
    classes: Classes | None,
    groups: Sequence[Values],
    layout: Layout,
    weighted_roots: Sequence[Moments | None] | None = None,
) -> pd.DataFrame | xr.Dataset:
    """The final step: a dense table, one row per zone (and plane)."""
    k = layout.n_planes

    def merged_roots(roots: Sequence[Moments | None]) -> list[Moments]:
        return [
            merge_moments([r])
            if r is not None
            else Moments.empty(None if k == 1 else s)
            for r, s in zip(roots, plane_blocks, strict=True)
        ]

    merged = merged_roots(roots)
    found, index = _rows(merged, layout)
    n_rows = len(index) * (2 if layout.fallback else 1)

    def row_of(virtual: np.ndarray) -> np.ndarray:
        """Flat (row, plane) position of virtual zones ``zone * k + plane``."""
        if found is None:
            return virtual
        zone, plane = np.divmod(virtual, k)
        return np.searchsorted(found, zone) * k + plane

    def dense_fields(merged: Sequence[Moments]) -> dict[str, np.ndarray]:
        blocks = []
        for moments, size in zip(merged, plane_blocks, strict=True):
            zone = (
                moments.zone if found is None else np.searchsorted(found, moments.zone)
            )
            dense = dense_moments(moments._replace(zone=zone), n_rows)
            blocks.append({n: f.reshape(n_rows, size) for n, f in dense.items()})
        return {n: np.concatenate([b[n] for b in blocks], axis=1) for n in blocks[0]}

    fields = dense_fields(merged)
    reads = {f for c in layout.columns for f in c.statistic.reads}
    if reads & set(CENTRE_FIELDS):  # only when asked: positions cost a pass
        fields.update(centres(fields, layout.transform, layout.width))
    if weighted_roots is not None:  # weighted statistics asked, chunks or none
        weighted = dense_fields(merged_roots(weighted_roots))
        fields.update(weighted_fields(weighted, fields["count"]))
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
            merged_classes.weighted,
            layout.weighted,
        )
    data: dict[Any, np.ndarray] = {}
    for column in layout.columns:
        statistic = column.statistic
        if statistic.family == "moments":
            result: Any = statistic.finalize(fields)
        elif statistic.family == "classes":
            result = statistic.finalize(class_table)
        else:
            result = np.full(n_rows * k, np.nan, dtype=statistic.dtype)
            for zones, found_values in groups:
                result[row_of(zones)] = found_values[column.name]
        dtype = statistic.weighted_dtype if layout.weighted else statistic.dtype
        named = result if isinstance(result, dict) else {column.name: result}
        for name, values in named.items():
            data[name] = np.asarray(values, dtype=dtype).reshape(n_rows, k)
    if layout.fallback:
        data = _take_fallback(data, fields, len(index), k)
    if layout.planes is None:
        columns = {n: v[:, 0] for n, v in data.items()}
        frame = pd.DataFrame(pixel_typed(columns, layout), index=index)
        return frame.sort_index() if layout.unsigned else frame
    dim, coords = layout.planes
    variables = {str(n): (("zone", dim), v) for n, v in data.items()}
    dataset = xr.Dataset(variables, coords={"zone": index.to_numpy(), dim: coords})
    dataset["zone"].attrs["long_name"] = index.name
    return dataset.sortby("zone") if layout.unsigned else dataset


def pixel_typed(columns: dict[Any, np.ndarray], layout: Layout) -> dict[Any, Any]:
    """``columns`` (of a DataFrame) with the statistics that are pixel values
    of an integer raster in its integer type, nullable (``Int32``, ``UInt8``:
    missing where NaN), as exactextract keeps them: ``min``, ``max``,
    ``majority``, ``minority``, and under coverage the median and quantiles;
    ``unique``'s arrays in the raster's type.

    64-bit integers stay float64: the partials hold them as float64, exact
    only to 2**53. So do a Dataset's (xarray has no nullable integers).
    """
    dtype = np.dtype(layout.dtype or "float64")
    if dtype.kind in "iu" and dtype.itemsize > 4:
        return columns
    typed = dict(columns)
    for column in layout.columns:
        statistic = column.statistic
        if column.name in typed and statistic.pixel and statistic.dtype == "object":
            typed[column.name] = _arrays_as(typed[column.name], dtype)
        elif (
            dtype.kind in "iu"
            and column.name in typed
            and (statistic.pixel or (statistic.cast and layout.weighted))
        ):
            values = typed[column.name]
            missing = np.isnan(values)
            exact = np.where(missing, 0, values).astype(dtype)
            typed[column.name] = pd.arrays.IntegerArray(exact, missing)
    return typed


def _arrays_as(cells: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.empty(cells.size, dtype=object)
    for i, cell in enumerate(cells):
        out[i] = np.asarray(cell).astype(dtype)
    return out


def centres(
    fields: Mapping[str, np.ndarray], transform: tuple[float, ...] | None, width: int
) -> dict[str, np.ndarray]:
    """The centres of the cells holding each zone's minimum and maximum
    (``transform`` and ``width`` are the grid's)."""
    if transform is None:
        return {}
    a, _, c, _, e, f = transform[:6]
    out = {}
    for extreme in ("min", "max"):
        at = fields[f"{extreme}_at"]
        row, col = np.divmod(np.where(at >= 0, at, np.nan), width)
        out[f"{extreme}_center_x"] = c + (col + 0.5) * a
        out[f"{extreme}_center_y"] = f + (row + 0.5) * e
    return out


def weighted_fields(
    weighted: Mapping[str, np.ndarray], count: np.ndarray
) -> dict[str, np.ndarray]:
    """The moments weighted by the weights raster, as the statistics read them.

    A zone with a valid pixel whose weight is undefined gets NaN (as
    exactextract); one whose valid pixels all weigh 0 a sum of 0.
    """
    poisoned = weighted["undefined"] > 0
    has = count > 0

    def clean(values: np.ndarray) -> np.ndarray:
        return np.where(poisoned | ~has, np.nan, values)

    zero = has & (weighted["count"] == 0)
    return {
        "weighted_count": clean(weighted["count"]),
        "weighted_sum": clean(np.where(zero, 0.0, weighted["sum"])),
        "weighted_mean": clean(weighted["mean"]),
        "weighted_variance": clean(weighted["variance"]),
    }


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
