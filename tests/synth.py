"""Small deterministic generators of rasters and zones for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rioxarray  # noqa: F401  the .rio accessor to_dataarray uses
import shapely
import xarray as xr
from affine import Affine

CRS = "EPSG:32633"
# A pixel grid with an awkward origin and non-square pixels.
TRANSFORM = Affine(10.0, 0.0, 500_003.7, 0.0, -12.5, 5_000_001.3)


@dataclass(frozen=True)
class Grid:
    """A raster in memory: values, transform, nodata."""

    values: np.ndarray
    transform: Affine = TRANSFORM
    nodata: float | None = None
    crs: str = CRS

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def to_dataarray(self) -> xr.DataArray:
        rows, cols = self.shape
        xs = (self.transform @ (np.arange(cols) + 0.5, np.full(cols, 0.5)))[0]
        ys = (self.transform @ (np.full(rows, 0.5), np.arange(rows) + 0.5))[1]
        array = xr.DataArray(self.values, dims=("y", "x"), coords={"y": ys, "x": xs})
        array = array.rio.write_crs(self.crs).rio.write_transform(self.transform)
        if self.nodata is not None:
            array = array.rio.write_nodata(self.nodata)
        return array

    def write(self, path: Path, *, blocksize: int | None = 16) -> Path:
        rows, cols = self.shape
        profile = {
            "driver": "GTiff",
            "height": rows,
            "width": cols,
            "count": 1,
            "dtype": self.values.dtype.name,
            "crs": self.crs,
            "transform": self.transform,
            "nodata": self.nodata,
        }
        if blocksize:
            profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(self.values, 1)
        return path


def make_grid(
    shape: tuple[int, int] = (61, 83),
    dtype: str = "float32",
    *,
    seed: int = 0,
    nodata: float | None = -9999.0,
    nodata_fraction: float = 0.05,
    nan_fraction: float = 0.0,
    loc: float = 100.0,
    scale: float = 30.0,
) -> Grid:
    """Random values of ``dtype`` with some nodata (and NaN) pixels."""
    rng = np.random.default_rng(seed)
    values = rng.normal(loc, scale, shape)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), info.min, info.max)
    values = values.astype(dtype)
    if nodata is not None:
        values[rng.random(shape) < nodata_fraction] = nodata
    if nan_fraction:
        values[rng.random(shape) < nan_fraction] = np.nan
    return Grid(values, nodata=nodata)


def voronoi_zones(grid: Grid, n: int = 25, *, seed: int = 0, margin: float = 0.15):
    """Adjacent Voronoi cells over an extent wider than the raster (random vertices)."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = grid.bounds()
    dx, dy = (xmax - xmin) * margin, (ymax - ymin) * margin
    box = shapely.box(xmin - dx, ymin - dy, xmax + dx, ymax + dy)
    points = rng.uniform((xmin - dx, ymin - dy), (xmax + dx, ymax + dy), (n, 2))
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=box)
    cells = shapely.intersection(shapely.get_parts(cells), box)
    return list(cells[np.argsort(shapely.get_x(shapely.centroid(cells)))])


def special_zones(grid: Grid) -> list:
    """One of each awkward case, placed relative to the raster."""
    xmin, ymin, xmax, ymax = grid.bounds()
    px, py = grid.transform.a, -grid.transform.e
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    w, h = xmax - xmin, ymax - ymin
    outer = shapely.box(cx - 0.31 * w, cy - 0.27 * h, cx + 0.07 * w, cy + 0.29 * h)
    hole = shapely.box(cx - 0.21 * w, cy - 0.13 * h, cx - 0.03 * w, cy + 0.11 * h)
    centre = grid.transform @ (7.5, 5.5)
    return [
        outer.difference(hole),  # a polygon with a hole
        shapely.MultiPolygon(  # two parts far apart
            [
                shapely.box(
                    xmin + 0.03 * w, ymin + 0.05 * h, xmin + 0.2 * w, ymin + 0.3 * h
                ),
                shapely.Point(xmax - 0.2 * w, ymax - 0.2 * h).buffer(0.13 * h),
            ]
        ),
        shapely.box(xmax + 5 * px, ymin, xmax + 50 * px, ymax),  # wholly outside
        shapely.box(xmin - 10.3 * px, cy, xmin + 3.7 * px, cy + 7.1 * py),  # partly out
        # smaller than a pixel: holds one pixel centre, and none
        shapely.Point(centre).buffer(0.3 * min(px, py)),
        shapely.Point(centre[0] + 0.5 * px, centre[1]).buffer(0.2 * min(px, py)),
        shapely.Polygon(),  # empty
    ]


def zones_frame(geometries: list, crs: str = CRS) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {"name": [f"z{i}" for i in range(len(geometries))]},
        geometry=geometries,
        crs=crs,
    )
    frame.index.name = "fid"
    return frame
