"""The final step: merged partials to one table, a row per zone.

The same steps for every route and shape: each band (or time step) block's
merged moments become dense columns over all zones and the block's planes,
and each moments statistic's finalize step (``statistics/table.py``) turns
them into its column, one task per block (``block_table``); the final task
(``table``) puts the blocks' columns side by side, adds the merged classes'
and each value group's columns, and returns a ``pandas.DataFrame`` for a 2-D
raster or an ``xarray.Dataset`` with dimensions (zone, band or time) for a
3-D one. Every step is elementwise over (zone, plane): a table made of
blocks holds the bits of one made of a single block.

Rows are the zones of the label source in input order, or, for a label
raster, the label values found, sorted. With a small-zone fallback
(``labels.touched_fallback``) the zones ``N + z`` are computed as rows of
their own, and a zone that claims no pixel takes its fallback row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from ..statistics.fields import CENTRE_FIELDS, WEIGHTED_FIELDS
from ..statistics.table import ClassTable, Column, Statistic
from .moments import Moments, dense_moments
from .partials import (
    ChunkResult,
    Classes,
    count_zone_classes,
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
    classes_by_group: bool = False
    transform: tuple[float, ...] | None = None
    width: int = 0
    dtype: str | None = None
    unsigned: bool = False

    @property
    def n_planes(self) -> int:
        return 1 if self.planes is None else len(self.planes[1])


def values_step(results: Sequence[ChunkResult], group: int, layout: Layout) -> Values:
    """The ``values`` statistics of one group of zones, and the ``classes``
    ones when ``layout.classes_by_group``.

    Returns the group's virtual zones (``zone * n_planes + plane``) that have
    valid values, sorted, and for each such column its value for each.
    """
    gathered = gather_values(results, group)
    zones, starts = np.unique(gathered.zone, return_index=True)
    bounds = np.append(starts, gathered.zone.size)
    columns = [c for c in layout.columns if c.statistic.family == "values"]
    out: dict[str, np.ndarray] = {}
    if layout.classes_by_group:
        counted = count_zone_classes(gathered, bounds)
        classes = ClassTable(
            np.searchsorted(zones, counted.zone),
            counted.value,
            counted.weight,
            zones.size,
            coverage=layout.weighted,
        )
        for c in layout.columns:
            if c.statistic.family == "classes":
                out[c.name] = c.statistic.finalize(classes)
    out.update({c.name: np.empty(zones.size, c.statistic.dtype) for c in columns})
    weight = gathered.weight
    if layout.weighted and weight is None:  # weighted statistics, unit weights
        weight = np.ones(gathered.value.size)
    for i in range(zones.size if columns else 0):
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


class BlockTable(NamedTuple):
    """One plane block's share of the table: for each moments-family column
    of ``layout.columns``, its arrays by name, each ``(n_rows, planes in the
    block)`` in the column's dtype; and, with a small-zone fallback, each
    row's pixels (valid and nodata) in the block's first plane."""

    columns: dict[str, dict[Any, np.ndarray]]
    pixels: np.ndarray | None


def found_rows(roots: Sequence[Moments | None], layout: Layout) -> np.ndarray | None:
    """The label values found in any plane block's merged moments, sorted:
    the rows of a label raster's table; None when the zones are known."""
    if layout.index is not None:
        return None
    empty = np.empty(0, np.int64)
    parts = [empty if r is None else merge_moments([r]).zone for r in roots]
    return np.unique(np.concatenate(parts)) if parts else empty


def block_table(
    root: Moments | None,
    weighted_root: Moments | None,
    size: int,
    found: np.ndarray | None,
    layout: Layout,
) -> BlockTable:
    """The moments-family columns of one plane block of ``size`` planes, from
    its merged moments (and those weighted by the weights raster, when
    asked); ``found`` is ``found_rows``'s answer.

    Every step is elementwise over (row, plane), so a table assembled from
    blocks holds the bits one block of all planes would give.
    """
    n_rows = _n_rows(found, layout)

    def dense(moments: Moments | None) -> dict[str, np.ndarray]:
        if moments is None:
            moments = Moments.empty(None if layout.n_planes == 1 else size)
        else:
            moments = merge_moments([moments])
        if found is not None:
            moments = moments._replace(zone=np.searchsorted(found, moments.zone))
        spread = dense_moments(moments, n_rows)
        return {n: f.reshape(n_rows, size) for n, f in spread.items()}

    fields = dense(root)
    reads = {f for c in layout.columns for f in c.statistic.reads}
    if reads & set(CENTRE_FIELDS):  # only when asked: positions cost a pass
        fields.update(centres(fields, layout.transform, layout.width))
    if reads & set(WEIGHTED_FIELDS):  # weighted statistics asked, chunks or none
        fields.update(weighted_fields(dense(weighted_root), fields["count"]))
    for name, per_zone in layout.fields.items():
        repeat = np.resize(np.asarray(per_zone, np.float64), n_rows)
        fields[name] = np.repeat(repeat[:, np.newaxis], size, axis=1)
    columns = {
        c.name: _typed(c, c.statistic.finalize(fields), layout, (n_rows, size))
        for c in layout.columns
        if c.statistic.family == "moments"
    }
    pixels = None
    if layout.fallback:
        pixels = (fields["count"] + fields["nodata"])[:, 0]
    return BlockTable(columns, pixels)


def table(
    blocks: Sequence[BlockTable],
    found: np.ndarray | None,
    classes: Classes | None,
    groups: Sequence[Values],
    layout: Layout,
) -> pd.DataFrame | xr.Dataset:
    """The final step: the plane blocks' columns side by side, the classes'
    and values' columns, a dense table with one row per zone (and plane)."""
    k = layout.n_planes
    index = layout.index if found is None else _found_index(found, layout)
    assert index is not None  # known before the labels are read, else found
    n_rows = _n_rows(found, layout)

    def row_of(virtual: np.ndarray) -> np.ndarray:
        """Flat (row, plane) position of virtual zones ``zone * k + plane``."""
        if found is None:
            return virtual
        zone, plane = np.divmod(virtual, k)
        return np.searchsorted(found, zone) * k + plane

    class_table = None
    by_table = not layout.classes_by_group
    if by_table and any(c.statistic.family == "classes" for c in layout.columns):
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
            for name in blocks[0].columns[column.name]:
                parts = [b.columns[column.name][name] for b in blocks]
                data[name] = parts[0] if len(parts) == 1 else np.hstack(parts)
            continue
        if statistic.family == "classes" and by_table:
            result: Any = statistic.finalize(class_table)
        else:
            result = _without_values(statistic, n_rows * k, layout.weighted)
            for zones, found_values in groups:
                result[row_of(zones)] = found_values[column.name]
        data.update(_typed(column, result, layout, (n_rows, k)))
    if layout.fallback:
        pixels = blocks[0].pixels
        assert pixels is not None
        data = _take_fallback(data, pixels, len(index), k)
    if layout.planes is None:
        columns = {n: v[:, 0] for n, v in data.items()}
        frame = pd.DataFrame(pixel_typed(columns, layout), index=index)
        return frame.sort_index() if layout.unsigned else frame
    dim, coords = layout.planes
    variables = {str(n): (("zone", dim), v) for n, v in data.items()}
    dataset = xr.Dataset(variables, coords={"zone": index.to_numpy(), dim: coords})
    dataset["zone"].attrs["long_name"] = index.name
    return dataset.sortby("zone") if layout.unsigned else dataset


def _without_values(statistic: Statistic, n: int, weighted: bool) -> np.ndarray:
    """A column of ``n`` zones without valid values: NaN for a ``values``
    statistic; for a ``classes`` one, what it gives a zone without classes
    (NaN, 0 for ``variety``, an empty array for ``unique``)."""
    if statistic.family != "classes":
        return np.full(n, np.nan, dtype=statistic.dtype)
    empty = ClassTable(
        np.empty(0, np.int64), np.empty(0), np.empty(0), 1, coverage=weighted
    )
    (fill,) = statistic.finalize(empty)
    out = np.empty(n, dtype=statistic.dtype)
    out.fill(fill)  # an object array's cells all hold that one object
    return out


def _n_rows(found: np.ndarray | None, layout: Layout) -> int:
    zones = layout.index if found is None else found
    assert zones is not None  # known before the labels are read, else found
    return len(zones) * (2 if layout.fallback else 1)


def _found_index(found: np.ndarray, layout: Layout) -> pd.Index:
    names = found.astype(np.int64).view(np.uint64) if layout.unsigned else found
    return pd.Index(names, name="zone")


def _typed(
    column: Column, result: Any, layout: Layout, shape: tuple[int, int]
) -> dict[Any, np.ndarray]:
    """A column's finalized values (an array, or a dict of them) in its dtype."""
    statistic = column.statistic
    dtype = statistic.weighted_dtype if layout.weighted else statistic.dtype
    named = result if isinstance(result, dict) else {column.name: result}
    return {n: np.asarray(v, dtype=dtype).reshape(shape) for n, v in named.items()}


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


def _take_fallback(
    data: dict[Any, np.ndarray],
    pixels: np.ndarray,
    n_zones: int,
    k: int,
) -> dict[Any, np.ndarray]:
    """Rows of zones that claim no pixel, from their all-touched stand-ins
    (``pixels``: each row's pixels in the first plane); plus the boolean
    ``small`` column that marks them."""
    small = (pixels[:n_zones] == 0) & (pixels[n_zones:] > 0)
    out = {}
    for name, values in data.items():
        main, stand_in = values[:n_zones], values[n_zones:]
        out[name] = np.where(small[:, np.newaxis], stand_in, main)
    out["small"] = np.repeat(small[:, np.newaxis], k, axis=1)
    return out
