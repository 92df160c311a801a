"""A weights raster beside the value raster: one common grid for both.

exactextract computes every statistic of a call on the common grid of its
value and weights rasters: the finer cell size of the two in each direction,
each raster read there by nearest lookup (a coarse cell's value repeated over
the fine cells inside it, never divided). Two grids are compatible when their
cell sizes are integer multiples of each other and their origins differ by
whole cells of the finer grid, both within a thousandth of a cell; anything
else is refused.

Here the common grid keeps the value raster's extent: a cell beyond it has no
value and counts for nothing (``default_value`` there is refused). Both
rasters are lazily resampled onto it with the same chunks, so each chunk task
gets its value block and its weights block: float64, NaN where a weight is
undefined (nodata, NaN, beyond the weights raster), unless ``default_weight``
fills those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from ..errors import GridError, RasterError
from .grid import Grid, choose_chunks, grid_chunks
from .nodata import resolve_nodata

# exactextract's Python tolerance (grid_compat_tol), in cells of the finer grid
TOLERANCE = 1e-3


@dataclass(frozen=True)
class CommonGrid:
    """How the common grid relates to the value raster's.

    ``factor`` is (rows, cols) of common cells per value cell; ``width`` the
    value raster's width: a common cell ``(r, c)`` lies in value cell
    ``(r // factor[0], c // factor[1])``, numbered ``row * width + col`` as
    exactextract numbers ``cell_id``.
    """

    factor: tuple[int, int] = (1, 1)
    width: int = 0

    def cell_ids(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """exactextract's ``cell_id`` of common cells ``(rows, cols)``."""
        return (rows // self.factor[0]) * self.width + cols // self.factor[1]


def _describe(grid: Grid, name: str) -> str:
    t = grid.transform
    crs = "no CRS" if grid.crs is None else (grid.crs.to_string() or "custom CRS")
    return (
        f"{name} ({grid.shape[0]} x {grid.shape[1]} cells of {abs(t.a):g} x "
        f"{abs(t.e):g} from ({t.c:g}, {t.f:g}), {crs})"
    )


def _ratio(coarse: float, fine: float, tolerance: float = TOLERANCE) -> int | None:
    ratio = coarse / fine
    whole = round(ratio)
    return whole if whole >= 1 and abs(ratio - whole) <= tolerance else None


def _cells(offset: float, cell: float, tolerance: float = TOLERANCE) -> int | None:
    steps = offset / cell
    whole = round(steps)
    return whole if abs(steps - whole) <= tolerance else None


def compatible(
    values: Grid,
    weights: Grid,
    values_name: str,
    weights_name: str,
    tolerance: float = TOLERANCE,
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Check two grids as exactextract does; give what the common grid needs.

    Returns the common cells per value cell and per weights cell, (rows,
    cols) each, and the weights raster's first cell in the common grid
    (row, col; negative when it starts before the value raster).

    Raises
    ------
    GridError
        If the CRSs differ, the axes point different ways, the cell sizes
        are not integer multiples of each other or the origins are not whole
        finer cells apart: naming both grids.
    """
    v, w = values.transform, weights.transform
    both = f"{_describe(values, values_name)} and {_describe(weights, weights_name)}"
    if values.crs is not None and weights.crs is not None:
        if not CRS.from_user_input(values.crs) == CRS.from_user_input(weights.crs):
            raise GridError(f"the grids differ in CRS: {both}")
    if np.sign(v.a) != np.sign(w.a) or np.sign(v.e) != np.sign(w.e):
        raise GridError(f"the grids' axes point different ways: {both}")
    fine = (min(abs(v.e), abs(w.e)), min(abs(v.a), abs(w.a)))
    tol = tolerance
    factor_v = (_ratio(abs(v.e), fine[0], tol), _ratio(abs(v.a), fine[1], tol))
    factor_w = (_ratio(abs(w.e), fine[0], tol), _ratio(abs(w.a), fine[1], tol))
    start = (
        _cells(w.f - v.f, v.e / (factor_v[0] or 1), tol),
        _cells(w.c - v.c, v.a / (factor_v[1] or 1), tol),
    )
    if None in (*factor_v, *factor_w, *start):
        raise GridError(
            "the grids are not compatible (cell sizes must be integer multiples of "
            f"each other and origins whole cells apart): {both}"
        )
    return factor_v, factor_w, start  # type: ignore[return-value]


def on_common_grid(
    values: xr.DataArray,
    weights: xr.DataArray,
    *,
    values_name: str,
    weights_name: str,
    default_weight: float | None = None,
    default_value: float | None = None,
    chunks: tuple[int, int] | None = None,
    same_grid: bool = False,
    tolerance: float = TOLERANCE,
) -> tuple[xr.DataArray, da.Array, CommonGrid]:
    """The value raster and the weights on their common grid, chunked alike.

    ``same_grid`` refuses a common grid finer than the value raster's (label
    rasters and zone plans hold the value raster's cells). ``tolerance`` is
    exactextract's ``grid_compat_tol``: how far, in finer cells, cell sizes
    may be from whole multiples and origins from whole cells apart.

    Returns
    -------
    values, weights, grid
        The values as a DataArray (resampled when the weights are finer), the
        weights as a 2-D float64 dask array with the values' chunks (NaN
        where undefined, unless ``default_weight``), and how the common grid
        relates to the value raster's.
    """
    value_grid = Grid.of(values)
    factor, weight_factor, start = compatible(
        value_grid, Grid.of(weights), values_name, weights_name, tolerance
    )
    rows, cols = value_grid.shape[0] * factor[0], value_grid.shape[1] * factor[1]
    if factor != (1, 1):
        if same_grid:
            raise GridError(
                f"{weights_name}: finer than {values_name}; zones given as a label "
                "raster or a ZonePlan need a weights raster on the value raster's "
                "grid or a coarser one"
            )
        values = _repeat(values, factor, chunks)
    extent = (
        weights.shape[-2] * weight_factor[0],
        weights.shape[-1] * weight_factor[1],
    )
    beyond = start[0] < 0 or start[1] < 0
    beyond = beyond or start[0] + extent[0] > rows or start[1] + extent[1] > cols
    if default_value is not None and beyond:
        raise GridError(
            f"{weights_name}: reaches beyond {values_name}, where default_value "
            "would count cells that have no value; crop the weights raster to "
            "the value raster's extent"
        )
    nodata = resolve_nodata(None, weights, weights_name)
    data = weights.data.map_blocks(
        _defined_weights, nodata, weights_name, dtype=np.float64
    )
    data = _repeat_array(data, weight_factor)
    data = _place(data, start, (rows, cols))
    if default_weight is not None:
        data = da.where(da.isnan(data), float(default_weight), data)
    return (
        values,
        data.rechunk(grid_chunks(values)),
        CommonGrid(factor, value_grid.shape[1]),
    )


def _defined_weights(block: np.ndarray, nodata: float | None, name: str) -> np.ndarray:
    """A weights block as float64, NaN where nodata; refuses negative or
    infinite weights."""
    out = block.astype(np.float64)
    if nodata is not None and not math.isnan(nodata):
        out[block == np.asarray(nodata).astype(block.dtype)] = np.nan
    bad = ~np.isnan(out) & ~((out >= 0) & np.isfinite(out))
    if bad.any():
        raise RasterError(
            f"{name}: weight {float(out[bad][0])!r} is negative or infinite; "
            "weights must be finite and at least 0 (nodata and NaN are undefined)"
        )
    return out


def _repeat_array(data: da.Array, factor: tuple[int, int]) -> da.Array:
    if factor[0] > 1:
        data = da.repeat(data, factor[0], axis=-2)
    if factor[1] > 1:
        data = da.repeat(data, factor[1], axis=-1)
    return data


def _repeat(
    values: xr.DataArray, factor: tuple[int, int], chunks: tuple[int, int] | None
) -> xr.DataArray:
    """The values on a grid ``factor`` times finer, each value repeated."""
    t = values.rio.transform()
    transform = t * Affine.scale(1 / factor[1], 1 / factor[0])
    data = _repeat_array(values.data, factor)
    rows, cols = data.shape[-2:]
    size = chunks or choose_chunks((rows, cols), (factor[0], factor[1]))
    data = data.rechunk({data.ndim - 2: size[0], data.ndim - 1: size[1]})
    y, x = values.rio.y_dim, values.rio.x_dim
    dims = values.dims
    coords = {d: values[d] for d in dims if d not in (y, x) and d in values.coords}
    coords[y] = transform.f + (np.arange(rows) + 0.5) * transform.e
    coords[x] = transform.c + (np.arange(cols) + 0.5) * transform.a
    out = xr.DataArray(data, dims=dims, coords=coords, attrs=dict(values.attrs))
    out = out.rio.write_transform(transform)
    if values.rio.crs is not None:
        out = out.rio.write_crs(values.rio.crs)
    out.encoding.update(values.encoding)
    return out


def _place(data: da.Array, start: tuple[int, int], shape: tuple[int, int]) -> da.Array:
    """``data`` (whose first cell is at ``start`` of a grid of ``shape``)
    cropped and padded with NaN to exactly that grid."""
    r0, c0 = start
    data = data[max(0, -r0) :, max(0, -c0) :]
    r0, c0 = max(r0, 0), max(c0, 0)
    data = data[: max(0, shape[0] - r0), : max(0, shape[1] - c0)]
    if 0 in data.shape:  # the weights do not reach the grid at all
        return da.full(shape, np.nan, dtype=data.dtype)
    pad = (
        (min(r0, shape[0]), max(0, shape[0] - r0 - data.shape[0])),
        (min(c0, shape[1]), max(0, shape[1] - c0 - data.shape[1])),
    )
    if any(p for pair in pad for p in pair):
        data = da.pad(data, pad, mode="constant", constant_values=np.nan)
    return data
