"""Rasters with a time axis: files, a STAC collection or an xarray cube as steps.

``open_series`` turns what the user gives into a ``Series``: time steps in
time order, each named (a file name, a STAC item's id, a variable), each on a
``raster.Grid``. The pixels stay where they are: ``Series.values`` gives a
lazy ``(steps, y, x)`` (or ``(steps, band, y, x)``) array for a few steps at a
time, whose tasks hold a path and a window (files, STAC assets) or the cube's
own lazy chunks, so the workers read the pixels themselves.

The inputs:

* a list of raster paths or URLs, or a glob (``lst_*.tif``, sorted); the time
  comes from ``time_pattern`` (``strftime`` codes matched in each file name,
  ``%Y-%m-%d``), or is the position in the order given;
* STAC items (``pystac``: an ItemCollection, a Catalog or Collection, a list
  of Items, or the path of one as JSON) and an asset key; the time is each
  item's datetime (or start_datetime);
* an ``xarray.DataArray`` or ``Dataset`` (Zarr, NetCDF, odc-stac, stackstac)
  with a time dimension, or the path of a ``.zarr`` or ``.nc`` cube; a
  Dataset gives several variables at once.
"""

from __future__ import annotations

import datetime
import glob
import itertools
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from dask.base import tokenize
from rasterio.windows import Window

from .errors import GridError, RasterError, SeriesError
from .raster import (
    ChunksLike,
    Grid,
    check_transform,
    choose_chunks,
    grid_chunks,
    is_remote,
    normalize_chunks,
    open_raster,
)

CUBE_SUFFIXES = (".zarr", ".nc", ".nc4", ".netcdf")
STAC_SUFFIXES = (".json", ".geojson")
# strftime codes a time pattern may hold, and what each matches
TIME_CODES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "j": r"\d{3}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "b": r"[A-Za-z]{3}",
    "%": "%",
}


@dataclass(frozen=True)
class Step:
    """One time step: its time, its name in messages and outputs, and where its
    pixels are (a path or URL; None for a step of an xarray cube)."""

    time: Any
    name: str
    path: str | None = None


@dataclass(frozen=True)
class Header:
    """What a file says of itself before any pixel is read."""

    grid: Grid
    dtype: np.dtype
    nodata: float | None
    count: int


@dataclass
class Series:
    """Time steps in time order and how to read them.

    Attributes
    ----------
    steps
        The steps, sorted by time.
    variables
        The cube's variables (None for files and STAC: one raster a step).
    band
        The band of each file (1-based), or None for all bands.
    headers
        Per step, its file's header (files and STAC only).
    cube
        The xarray cube (xarray only).
    """

    steps: list[Step]
    band: int | None = 1
    variables: list[str] | None = None
    headers: list[Header] = field(default_factory=list)
    cube: xr.Dataset | None = None
    kind: str = "files"

    @property
    def times(self) -> np.ndarray:
        return np.array([s.time for s in self.steps])

    def like(self, position: int, variable: str | None = None) -> Any:
        """A raster of the step at ``position``, for ``label_source`` and plans:
        its path, or that step of the cube's variable."""
        if self.cube is None:
            return self.steps[position].path
        array = self._variable(variable)
        return array.isel({_time_dim(array): position})

    def _variable(self, variable: str | None) -> xr.DataArray:
        assert self.cube is not None and self.variables
        array = self.cube[variable or self.variables[0]]
        if self.band is not None and "band" in array.dims:
            array = array.isel(band=self.band - 1)
        return array

    def step_grids(self) -> list[Grid]:
        """Each step's grid (a cube's steps share one)."""
        if self.cube is None:
            return [h.grid for h in self.headers]
        return [Grid.of(open_raster(self.like(0), band=None))] * len(self.steps)

    def grids(self) -> list[list[int]]:
        """The steps' positions grouped by grid, each group in time order."""
        groups: list[tuple[Grid, list[int]]] = []
        for i, grid in enumerate(self.step_grids()):
            for known, members in groups:
                if not known.differences(grid):
                    members.append(i)
                    break
            else:
                groups.append((grid, [i]))
        return [members for _, members in groups]

    def check_one_grid(self, against: Grid | None = None, what: str = "") -> None:
        """Refuse a step off ``against`` (default: the first step's grid) with a
        ``GridError`` naming the first such step."""
        grids = self.step_grids()
        reference = against or grids[0]
        what = what or f"the first step's grid ({self.steps[0].name})"
        for i, grid in enumerate(grids):
            differences = reference.differences(grid)
            if differences:
                step = self.steps[i]
                raise GridError(
                    f"{step.name} (step {i + 1} of {len(self.steps)}, time "
                    f"{_show(step.time)}): not on {what}: {'; '.join(differences)} "
                    f"(one plan per grid: plan_per_grid=True, --plan-per-grid)"
                )

    def values(
        self,
        positions: Sequence[int],
        like: xr.DataArray,
        variable: str | None = None,
    ) -> da.Array:
        """The steps at ``positions`` as one lazy ``(steps, y, x)`` array
        (``(steps, band, y, x)`` for every band), chunked as ``like`` (the
        label source's raster) in space and one step per chunk in time."""
        if self.cube is not None:
            array = self._variable(variable)
            rows, cols = grid_chunks(like)
            y, x = array.rio.y_dim, array.rio.x_dim
            time = _time_dim(array)
            others = [d for d in array.dims if d not in (time, y, x)]
            array = array.isel({time: list(positions)}).transpose(time, *others, y, x)
            spec = {time: 1, y: rows, x: cols, **{d: -1 for d in others}}
            return array.chunk(spec).data
        return self._file_values(positions, like)

    def _file_values(self, positions: Sequence[int], like: xr.DataArray) -> da.Array:
        rows, cols = grid_chunks(like)
        first = self.headers[positions[0]]
        count = first.count if self.band is None else None
        paths = [self.steps[p].path for p in positions]
        name = f"zonal-series-read-{tokenize(paths, self.band, rows, cols)}"
        row_edges, col_edges = np.cumsum((0, *rows)), np.cumsum((0, *cols))
        dsk: dict = {}
        for t, path in enumerate(paths):
            for i in range(len(rows)):
                for j in range(len(cols)):
                    window = (
                        int(row_edges[i]),
                        int(row_edges[i + 1]),
                        int(col_edges[j]),
                        int(col_edges[j + 1]),
                    )
                    key = (name, t, 0, i, j) if count else (name, t, i, j)
                    dsk[key] = (read_window, path, self.band, window, count)
        chunks: tuple = ((1,) * len(paths), rows, cols)
        if count:
            chunks = ((1,) * len(paths), (count,), rows, cols)
        return da.Array(dsk, name, chunks, dtype=first.dtype)

    def check_values(self, nodata: float | None) -> None:
        """Refuse steps whose dtype, nodata (unless given) or band count differ
        from the first step's: one graph reads them all alike."""
        if not self.headers:
            return
        first = self.headers[0]
        for step, header in zip(self.steps, self.headers, strict=True):
            if header.dtype != first.dtype:
                found = (
                    f"dtype {header.dtype} where {self.steps[0].name} has {first.dtype}"
                )
            elif nodata is None and not _same_nodata(header.nodata, first.nodata):
                found = (
                    f"nodata {header.nodata} where {self.steps[0].name} has "
                    f"{first.nodata} (give one nodata for all steps: nodata=, --nodata)"
                )
            elif self.band is None and header.count != first.count:
                found = (
                    f"{header.count} bands where {self.steps[0].name} has {first.count}"
                )
            elif self.band is not None and not 1 <= self.band <= header.count:
                found = f"band {self.band} out of range 1..{header.count}"
            else:
                continue
            raise SeriesError(f"{step.name}: {found}")


def read_window(
    path: str, band: int | None, window: tuple[int, int, int, int], count: int | None
) -> np.ndarray:
    """One step's pixels in ``window`` (row0, row1, col0, col1), read by the
    worker that runs the task: ``(1, rows, cols)``, or ``(1, bands, rows,
    cols)`` for every band."""
    r0, r1, c0, c1 = window
    with rasterio.open(path) as src:
        block = src.read(
            band if count is None else None, window=Window(c0, r0, c1 - c0, r1 - r0)
        )
    return block[np.newaxis]


def open_series(
    source: Any,
    *,
    band: int | None = 1,
    chunks: ChunksLike = None,
    time_pattern: str | None = None,
    asset: str | None = None,
    variables: Sequence[str] | None = None,
) -> Series:
    """Open a series of rasters lazily as time steps (module docstring).

    Raises
    ------
    SeriesError
        No step, a time pattern a file name does not hold, two steps at one
        time, a STAC item without the asset.
    RasterError
        A file that cannot be opened (naming it).
    """
    if isinstance(source, xr.DataArray | xr.Dataset) or _is_cube_path(source):
        return _from_cube(source, band, chunks, variables)
    if _is_stac(source):
        steps = _stac_steps(source, asset)
    else:
        steps = _file_steps(source, time_pattern)
    if asset is not None and not _is_stac(source):
        raise SeriesError("asset= (--asset) names a STAC asset; the input is not STAC")
    steps = _in_time_order(steps)
    with ThreadPoolExecutor(max_workers=8) as pool:
        headers = list(pool.map(lambda s: read_header(s.path, chunks), steps))
    return Series(
        steps, band=band, headers=headers, kind="stac" if _is_stac(source) else "files"
    )


def read_header(path: str, chunks: ChunksLike = None) -> Header:
    """The grid, dtype, nodata and band count of one file, naming it on failure."""
    if not is_remote(path) and not os.path.exists(path):
        raise RasterError(f"{path}: no such file")
    try:
        with rasterio.open(path) as src:
            transform, shape, block = src.transform, src.shape, src.block_shapes[0]
            header = (np.dtype(src.dtypes[0]), src.nodata, src.count, src.crs)
    except rasterio.errors.RasterioIOError as err:
        raise RasterError(f"{path}: not a raster GDAL can read ({err})") from None
    check_transform(transform, path)
    rows, cols = normalize_chunks(chunks) or choose_chunks(shape, block)
    dtype, nodata, count, crs = header
    grid = Grid(
        shape=(int(shape[0]), int(shape[1])),
        transform=transform,
        crs=crs,
        chunks=(_split(shape[0], rows), _split(shape[1], cols)),
    )
    return Header(grid, dtype, nodata, count)


def _split(size: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, size - start) for start in range(0, size, chunk))


# -- files ------------------------------------------------------------------


def _file_steps(source: Any, time_pattern: str | None) -> list[Step]:
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        paths = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not paths:
            raise SeriesError(f"{text}: no file matches")
    else:
        paths = [os.fspath(p) for p in source]
        if not paths:
            raise SeriesError("no raster given: the series is empty")
    if time_pattern is None:
        return [Step(i, os.path.basename(p), p) for i, p in enumerate(paths)]
    return [Step(parse_time(p, time_pattern), os.path.basename(p), p) for p in paths]


def parse_time(path: str, pattern: str) -> np.datetime64:
    """The time a file name holds, found by ``pattern``'s ``strftime`` codes.

    ``%Y-%m-%d`` finds ``2024-01-31`` anywhere in ``lst_2024-01-31.tif``;
    ``lst_%Y%j`` finds the year and day of year after ``lst_``.
    """
    regex = _pattern_regex(pattern)
    name = os.path.basename(path)
    found = re.search(regex, name)
    if found is None:
        raise SeriesError(
            f"{path}: the file name does not hold time pattern {pattern!r}"
        )
    try:
        moment = datetime.datetime.strptime(found.group(0), pattern)
    except ValueError as err:
        raise SeriesError(f"{path}: {found.group(0)!r} is not a time ({err})") from None
    return np.datetime64(moment, "ns")


def _pattern_regex(pattern: str) -> str:
    parts, at = [], 0
    for code in re.finditer(r"%(.)", pattern):
        if code.group(1) not in TIME_CODES:
            raise SeriesError(
                f"time pattern {pattern!r}: %{code.group(1)} is not one of "
                + " ".join(f"%{c}" for c in TIME_CODES)
            )
        parts += [re.escape(pattern[at : code.start()]), TIME_CODES[code.group(1)]]
        at = code.end()
    if at == 0:
        raise SeriesError(
            f"time pattern {pattern!r} holds no strftime code (%Y, %m, ...)"
        )
    return "".join([*parts, re.escape(pattern[at:])])


def _in_time_order(steps: list[Step]) -> list[Step]:
    ordered = sorted(steps, key=lambda s: s.time)
    for a, b in itertools.pairwise(ordered):
        if a.time == b.time:
            raise SeriesError(
                f"{a.name} and {b.name}: two steps at time {_show(a.time)}; "
                f"mosaic them first (one raster a step)"
            )
    return ordered


def _show(time: Any) -> str:
    if isinstance(time, np.datetime64):
        return str(np.datetime_as_string(time, unit="auto")).removesuffix("T00:00:00")
    return str(time)


def _same_nodata(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (np.isnan(a) and np.isnan(b))


# -- STAC --------------------------------------------------------------------


def _is_stac(source: Any) -> bool:
    if type(source).__module__.split(".")[0] == "pystac":
        return True
    if isinstance(source, list | tuple) and source:
        return type(source[0]).__module__.split(".")[0] == "pystac"
    return isinstance(source, str | os.PathLike) and os.fspath(source).lower().endswith(
        STAC_SUFFIXES
    )


def _stac_items(source: Any) -> list:
    import pystac

    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        read: Any
        try:
            read = pystac.read_file(path)
        except pystac.STACTypeError:
            read = pystac.ItemCollection.from_file(path)
        except Exception as err:  # pystac raises many types for bad JSON
            raise SeriesError(
                f"{path}: not a STAC catalog, collection or item collection ({err})"
            ) from None
        source = read
    if isinstance(source, pystac.Item):
        return [source]
    if isinstance(source, pystac.Catalog):  # Collections are Catalogs
        return list(source.get_items(recursive=True))
    return list(source)


def _stac_steps(source: Any, asset: str | None) -> list[Step]:
    items = _stac_items(source)
    if not items:
        raise SeriesError(f"{_name(source)}: no STAC item")
    keys = sorted({k for item in items for k in item.assets})
    if asset is None:
        raise SeriesError(
            f"{_name(source)}: name the asset to read with asset= (--asset); "
            f"the items have: {', '.join(keys)}"
        )
    steps = []
    for item in items:
        if asset not in item.assets:
            raise SeriesError(
                f"STAC item {item.id}: no asset {asset!r} (it has: "
                f"{', '.join(sorted(item.assets))})"
            )
        moment = item.datetime or item.common_metadata.start_datetime
        if moment is None:
            raise SeriesError(f"STAC item {item.id}: no datetime")
        time = np.datetime64(moment.replace(tzinfo=None), "ns")
        steps.append(Step(time, item.id, item.assets[asset].get_absolute_href()))
    return steps


def _name(source: Any) -> str:
    return (
        os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else type(source).__name__
    )


# -- xarray cubes ------------------------------------------------------------


def _is_cube_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) and os.fspath(source).rstrip(
        "/"
    ).lower().endswith(CUBE_SUFFIXES)


def _open_cube_path(path: str) -> xr.Dataset:
    if not is_remote(path) and not os.path.exists(path):
        raise RasterError(f"{path}: no such file")
    try:
        if path.rstrip("/").lower().endswith(".zarr"):
            return xr.open_zarr(path, decode_coords="all")
        return xr.open_dataset(path, chunks={}, decode_coords="all")
    except Exception as err:  # each backend raises its own types
        raise RasterError(f"{path}: cannot open as a cube ({err})") from None


def _from_cube(
    source: Any, band: int | None, chunks: ChunksLike, variables: Sequence[str] | None
) -> Series:
    name = os.fspath(source) if _is_cube_path(source) else type(source).__name__
    cube = _open_cube_path(name) if _is_cube_path(source) else source
    if isinstance(cube, xr.DataArray):
        cube = cube.to_dataset(name=cube.name or "value")
    found = [str(v) for v, a in cube.data_vars.items() if _is_raster(a)]
    chosen = list(variables) if variables else found
    for variable in chosen:
        if variable not in found:
            raise SeriesError(
                f"{name}: no variable {variable!r} with (time, y, x) dimensions; "
                f"it has: {', '.join(found) or 'none'}"
            )
    if not chosen:
        raise SeriesError(f"{name}: no variable with a time and two spatial dimensions")
    first = cube[chosen[0]]
    time = _time_dim(first)
    if any(_time_dim(cube[v]) != time for v in chosen):
        raise SeriesError(
            f"{name}: the variables do not share the time dimension {time}"
        )
    times = (
        cube[time].to_numpy() if time in cube.coords else np.arange(cube.sizes[time])
    )
    steps = [Step(t, f"{name}[{time}={_show(t)}]") for t in times]
    if len({*times.tolist()}) != len(times):
        raise SeriesError(f"{name}: repeated values of {time}")
    for variable in chosen:  # the spatial checks of a single raster
        open_raster(cube[variable].isel({time: 0}), band=band, chunks=chunks)
    order = np.argsort(times, kind="stable")
    if (order != np.arange(len(order))).any():
        cube = cube.isel({time: order})
        steps = [steps[i] for i in order]
    return Series(steps, band=band, variables=chosen, cube=cube, kind="xarray")


def _is_raster(array: xr.DataArray) -> bool:
    try:
        y, x = array.rio.y_dim, array.rio.x_dim
    except Exception:  # rioxarray raises when it finds no spatial dims
        return False
    others = [d for d in array.dims if d not in (y, x, "band")]
    return len(others) == 1


def _time_dim(array: xr.DataArray) -> str:
    y, x = array.rio.y_dim, array.rio.x_dim
    (time,) = (d for d in array.dims if d not in (y, x, "band"))
    return str(time)
