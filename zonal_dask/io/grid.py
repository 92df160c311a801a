"""One raster grid: its shape, transform, CRS and chunks, and the rule for
"the same grid" (label rasters, zone plans, a weights raster); the chunk shape
chosen along the file's tiles; geotransforms checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from ..errors import TransformError

# Chunks of about this many pixels, unless the raster is so large that the
# graph would exceed about MAX_CHUNKS tasks (scheduler overhead).
# 1024² rather than 2048²: as fast on 4000² x 50,000 zones and 30% less peak
# memory (benchmarks/peers); more chunks also keep 2 threads busy.
TARGET_CHUNK_PIXELS = 1024 * 1024
MAX_CHUNKS = 20_000
# Transforms that differ by this fraction of a pixel are the same grid:
# transforms rebuilt from coordinates differ by rounding.
TRANSFORM_TOLERANCE = 1e-6

ChunksLike = int | tuple[int, int] | Mapping[str, int] | None


@dataclass(frozen=True)
class Grid:
    """A raster grid: shape, transform, CRS and chunking."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS | None
    chunks: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def of(cls, array: xr.DataArray) -> Grid:
        crs = array.rio.crs
        rows, cols = grid_chunks(array)
        return cls(
            shape=(int(array.shape[-2]), int(array.shape[-1])),
            transform=array.rio.transform(),
            crs=None if crs is None else CRS.from_user_input(crs),
            chunks=(tuple(int(c) for c in rows), tuple(int(c) for c in cols)),
        )

    @property
    def chunk_size(self) -> tuple[int, int]:
        return self.chunks[0][0], self.chunks[1][0]

    def differences(self, other: Grid) -> list[str]:
        """What differs between two grids, in words (empty when the same).

        Chunks do not count: the same pixels, chunked otherwise, are the same
        grid. A missing CRS on either side does not count either.
        """
        found = []
        if self.shape != other.shape:
            found.append(f"shape {other.shape} instead of {self.shape}")
        pixel = min(abs(self.transform.a), abs(self.transform.e))
        if not np.allclose(
            tuple(self.transform)[:6],
            tuple(other.transform)[:6],
            rtol=0,
            atol=TRANSFORM_TOLERANCE * pixel,
        ):
            found.append(
                f"transform {tuple(other.transform)[:6]} instead of "
                f"{tuple(self.transform)[:6]}"
            )
        if self.crs and other.crs and self.crs != other.crs:
            found.append(f"CRS {_crs_name(other.crs)} instead of {_crs_name(self.crs)}")
        return found


def _crs_name(crs: CRS) -> str:
    return crs.to_string() or crs.to_wkt()[:60]


def plane_chunk(rows: int, cols: int) -> int:
    """Bands or time steps per chunk, so a chunk holds about the target pixels."""
    return max(1, TARGET_CHUNK_PIXELS // (rows * cols))


def normalize_chunks(chunks: ChunksLike) -> tuple[int, int] | None:
    """``chunks`` as (rows, cols), or None to choose them from the tiling."""
    if chunks is None:
        return None
    if isinstance(chunks, Mapping):
        rows, cols = chunks["y"], chunks["x"]
    elif isinstance(chunks, (int, np.integer)):
        rows = cols = chunks
    else:
        rows, cols = chunks
    if int(rows) < 1 or int(cols) < 1:
        raise ValueError(f"chunks must be positive, got {chunks!r}")
    return int(rows), int(cols)


def grid_chunks(array: xr.DataArray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``(rows, cols)`` chunk sizes of a DataArray ``open_raster`` made."""
    if array.chunks is None or len(array.chunks) < 2:
        raise ValueError(f"expected a chunked array, got chunks {array.chunks}")
    return array.chunks[-2], array.chunks[-1]


def choose_chunks(
    shape: tuple[int, ...], block: tuple[int, int], target: int | None = None
) -> tuple[int, int]:
    """Chunk shape: whole internal blocks, about ``target`` pixels each.

    The target grows with the raster so that the graph stays under
    ``MAX_CHUNKS`` chunk tasks. Striped files (blocks as wide as the raster)
    get full-width chunks of whole strips.
    """
    height, width = shape
    target = target or max(TARGET_CHUNK_PIXELS, math.ceil(height * width / MAX_CHUNKS))
    block_rows, block_cols = max(1, block[0]), max(1, block[1])
    if block_cols >= width:
        cols = width
    else:
        side = math.isqrt(target)
        cols = max(1, round(side / block_cols)) * block_cols
    rows = max(1, round(target / cols / block_rows)) * block_rows
    return min(rows, height), min(cols, width)


def check_transform(transform: Affine, source: str) -> None:
    """Refuse rotated, sheared or degenerate geotransforms, naming the transform."""
    coefficients = tuple(transform)[:6]
    if transform.b != 0 or transform.d != 0:
        raise TransformError(
            f"{source}: rotated or sheared geotransform {coefficients} is not "
            f"supported; warp the raster to a north-up grid (gdalwarp) first"
        )
    if (
        transform.a == 0
        or transform.e == 0
        or not all(map(math.isfinite, coefficients))
    ):
        raise TransformError(f"{source}: degenerate geotransform {coefficients}")
