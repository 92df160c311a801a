"""Time steps and how the workers read them.

A ``Series`` (made by ``series_open.open_series``) holds time steps in time
order, each named (a file name, a STAC item's id, a cube's time) and on a
``grid.Grid``. The pixels stay where they are: ``Series.values`` gives a
lazy ``(steps, y, x)`` (or ``(steps, band, y, x)``) array for a few steps at a
time, whose tasks hold a path and a window (files, STAC assets; ``read_window``)
or the cube's own lazy chunks, so the workers read the pixels themselves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from dask.base import tokenize
from rasterio.windows import Window

from ..errors import GridError, RasterError, SeriesError
from ..io.grid import (
    ChunksLike,
    Grid,
    check_transform,
    choose_chunks,
    grid_chunks,
    normalize_chunks,
)
from ..io.kept_open import reading
from ..io.location import is_remote
from ..io.masks import declared_scaling
from ..io.raster import open_raster


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
    scaling: tuple[tuple[float, ...], tuple[float, ...]] | None = None


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
    raw
        Read files declaring a scale or an offset as stored, not decoded.
    nodata
        The nodata value given for every file (a stored value), or None.
    """

    steps: list[Step]
    band: int | None = 1
    variables: list[str] | None = None
    headers: list[Header] = field(default_factory=list)
    cube: xr.Dataset | None = None
    kind: str = "files"
    raw: bool = False
    nodata: float | None = None

    @property
    def decoded(self) -> bool:
        """Whether the files' declared scale and offset are applied."""
        return not self.raw and any(h.scaling is not None for h in self.headers)

    @property
    def times(self) -> np.ndarray:
        return np.array([s.time for s in self.steps])

    def like(self, position: int, variable: str | None = None) -> Any:
        """A raster of the step at ``position``, for ``label_source`` and plans:
        its path, or that step of the cube's variable."""
        if self.cube is None:
            return self.steps[position].path
        array = self._variable(variable)
        return array.isel({time_dim(array): position})

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
                    f"{show_time(step.time)}): not on {what}: {'; '.join(differences)} "
                    f"(one plan per grid: plan_per_grid=True, --plan-per-grid)"
                )

    def values(
        self,
        positions: Sequence[int],
        like: xr.DataArray,
        variable: str | None = None,
        files: str | None = None,
    ) -> da.Array:
        """The steps at ``positions`` as one lazy ``(steps, y, x)`` array
        (``(steps, band, y, x)`` for every band), chunked as ``like`` (the
        label source's raster) in space and one step per chunk in time.
        ``files``: the token of the run's open files (``io.kept_open``),
        through which the read tasks borrow the files they read."""
        if self.cube is not None:
            array = self._variable(variable)
            rows, cols = grid_chunks(like)
            y, x = array.rio.y_dim, array.rio.x_dim
            time = time_dim(array)
            others = [d for d in array.dims if d not in (time, y, x)]
            array = array.isel({time: list(positions)}).transpose(time, *others, y, x)
            spec = {time: 1, y: rows, x: cols, **{d: -1 for d in others}}
            return array.chunk(spec).data
        return self._file_values(positions, like, files)

    def _file_values(
        self, positions: Sequence[int], like: xr.DataArray, files: str | None
    ) -> da.Array:
        rows, cols = grid_chunks(like)
        first = self.headers[positions[0]]
        count = first.count if self.band is None else None
        paths = [self.steps[p].path for p in positions]
        decoding = [self._decoding(p) for p in positions] if self.decoded else []
        token = tokenize(paths, self.band, rows, cols, decoding)
        name = f"zonal-series-read-{token}"
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
                    dsk[key] = (read_window, path, self.band, window, count, files)
                    if self.decoded:
                        dsk[key] = (decode, dsk[key], *decoding[t])
        chunks: tuple = ((1,) * len(paths), rows, cols)
        if count:
            chunks = ((1,) * len(paths), (count,), rows, cols)
        return da.Array(
            dsk, name, chunks, dtype=np.float64 if self.decoded else first.dtype
        )

    def _decoding(self, position: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """A file's (scales, offsets) for the bands read, and its stored nodata."""
        header = self.headers[position]
        scales, offsets = header.scaling or ((1.0,) * header.count,) * 2
        bands = slice(None) if self.band is None else slice(self.band - 1, self.band)
        nodata = header.nodata if self.nodata is None else self.nodata
        return np.asarray(scales)[bands], np.asarray(offsets)[bands], nodata

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
            elif self.decoded and header.scaling is None:
                scaled = next(
                    self.steps[i].name
                    for i, h in enumerate(self.headers)
                    if h.scaling is not None
                )
                found = (
                    f"declares no scale or offset where {scaled} does: give files "
                    f"that all declare them, or raw=True (--raw) for stored values"
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
    path: str,
    band: int | None,
    window: tuple[int, int, int, int],
    count: int | None,
    files: str | None = None,
) -> np.ndarray:
    """One step's pixels in ``window`` (row0, row1, col0, col1), read by the
    worker that runs the task: ``(1, rows, cols)``, or ``(1, bands, rows,
    cols)`` for every band; through the run's open files when ``files`` is
    their token in this process (``io.kept_open``)."""
    r0, r1, c0, c1 = window
    box = Window(c0, r0, c1 - c0, r1 - r0)
    bands = band if count is None else None
    block = reading(path, files, lambda src: src.read(bands, window=box))
    return block[np.newaxis]


def decode(
    block: np.ndarray, scales: np.ndarray, offsets: np.ndarray, nodata: Any
) -> np.ndarray:
    """A block of stored values as the values they stand for: ``stored *
    scale + offset`` in float64 (each band its own pair), nodata and NaN as
    NaN, as GDAL, exactextract and rioxarray's ``mask_and_scale`` read them."""
    shape = (-1, 1, 1) if block.ndim == 4 else (1, 1)
    out = block.astype(np.float64) * scales.reshape(shape) + offsets.reshape(shape)
    if nodata is not None:
        out[block == nodata] = np.nan
    return out


def read_header(path: str, chunks: ChunksLike = None) -> Header:
    """The grid, dtype, nodata and band count of one file, naming it on failure."""
    if not is_remote(path) and not os.path.exists(path):
        raise RasterError(f"{path}: no such file")
    try:
        with rasterio.open(path) as src:
            transform, shape, block = src.transform, src.shape, src.block_shapes[0]
            header = (np.dtype(src.dtypes[0]), src.nodata, src.count, src.crs)
            scaled = declared_scaling(src, range(1, src.count + 1))
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
    return Header(grid, dtype, nodata, count, scaled)


def _split(size: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, size - start) for start in range(0, size, chunk))


def show_time(time: Any) -> str:
    if isinstance(time, np.datetime64):
        return str(np.datetime_as_string(time, unit="auto")).removesuffix("T00:00:00")
    return str(time)


def _same_nodata(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (np.isnan(a) and np.isnan(b))


def time_dim(array: xr.DataArray) -> str:
    y, x = array.rio.y_dim, array.rio.x_dim
    (time,) = (d for d in array.dims if d not in (y, x, "band"))
    return str(time)


def continue_positions(series: Series, known: dict[str, Any], output: str) -> Series:
    """Files whose times are their positions, numbered after an output's
    steps: a file the output holds keeps its step, a new one follows the last.

    ``known`` maps the output's step names to their times. A new file given
    before one the output holds is refused: appending adds later steps.
    """
    if any(not isinstance(t, int | np.integer) for t in known.values()):
        raise SeriesError(
            f"{output}: its steps have dates; give the new files' times "
            f"(time_pattern=, --time-pattern, or times=, --times)"
        )
    following = max((int(t) for t in known.values()), default=-1) + 1
    steps, new = [], None
    for step in series.steps:
        if step.name in known:
            if new is not None:
                raise SeriesError(
                    f"{output}: the new file {new} comes before {step.name}, which "
                    f"the output holds; appending adds later steps only"
                )
            steps.append(Step(int(known[step.name]), step.name, step.path))
        else:
            new = new or step.name
            steps.append(Step(following, step.name, step.path))
            following += 1
    order = sorted(range(len(steps)), key=lambda i: steps[i].time)
    headers = [series.headers[i] for i in order] if series.headers else []
    return Series(
        [steps[i] for i in order],
        band=series.band,
        headers=headers,
        kind=series.kind,
        raw=series.raw,
        nodata=series.nodata,
    )
