"""The brute-force reference: one polygon at a time over the whole raster.

Independent of zonal_dask: each polygon is rasterized on its own with the
raster's own transform (rasterio.features), its pixels are selected from the
full array and the statistics are plain numpy float64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from rasterio import features

from .synth import Grid

STATS = ("count", "min", "mean", "max", "std", "sum")


def valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray:
    valid = np.ones(values.shape, bool)
    if np.issubdtype(values.dtype, np.floating):
        valid &= ~np.isnan(values)
    if nodata is not None and not np.isnan(nodata):
        valid &= values != np.asarray(nodata).astype(values.dtype)
    return valid


def polygon_values(geometry, grid: Grid, nodata: float | None) -> np.ndarray:
    if geometry is None or geometry.is_empty:
        return np.empty(0)
    inside = features.rasterize(
        [(geometry, 1)],
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    ).astype(bool)
    return grid.values[inside & valid_mask(grid.values, nodata)].astype(np.float64)


def reference_stats(
    geometries, grid: Grid, index: pd.Index, nodata: float | None = ...
) -> pd.DataFrame:
    nodata = grid.nodata if nodata is ... else nodata
    return _moments(
        [polygon_values(geometry, grid, nodata) for geometry in geometries], index
    )


def centres_inside(geometry, crs, grid: Grid) -> np.ndarray:
    """Pixels whose centre, taken to ``crs``, lies inside ``geometry`` (given in
    ``crs``): what a polygon holds over a raster in another CRS, with no
    reprojected geometry in between. In a geographic ``crs`` a longitude also
    counts 360 degrees away (zones in -180..180 or 0..360 alike)."""
    if geometry is None or geometry.is_empty:
        return np.zeros(grid.shape, bool)
    rows, cols = np.indices(grid.shape)
    x, y = grid.transform @ (cols + 0.5, rows + 0.5)
    x, y = Transformer.from_crs(grid.crs, crs, always_xy=True).transform(x, y)
    if CRS(crs).is_geographic:
        moved = [
            shapely.transform(geometry, lambda c, k=k: c + np.array([k, 0.0]))
            for k in (-360, 0, 360)
        ]
        geometry = shapely.union_all(moved)
    return shapely.contains_xy(geometry, x, y)


def distance_to_edge(geometry, crs, grid: Grid, pixels: np.ndarray) -> np.ndarray:
    """Distance, in pixels, from the centres of ``pixels`` ((row, col) pairs)
    to ``geometry``'s boundary (given in ``crs``) taken to the raster's CRS,
    its edges densified to where the curve is straight to 1e-9 pixel."""
    to_grid = Transformer.from_crs(crs, grid.crs, always_xy=True)
    step = 1e-4 if CRS(crs).is_geographic else 10.0
    rings = shapely.segmentize(shapely.get_rings(shapely.get_parts(geometry)), step)
    lines = []
    for ring in rings:
        x, y = to_grid.transform(*np.asarray(ring.coords).T)
        if CRS(grid.crs).is_geographic:
            x = np.concatenate(
                ([x[0]], x[0] + np.cumsum((np.diff(x) + 180) % 360 - 180))
            )
        lines.append(shapely.LineString(np.column_stack((x, y))))
    boundary = shapely.MultiLineString(lines)
    cx, cy = grid.transform @ (pixels[:, 1] + 0.5, pixels[:, 0] + 0.5)
    shifts = (-360, 0, 360) if CRS(grid.crs).is_geographic else (0,)
    distance = np.min(
        [shapely.distance(boundary, shapely.points(cx + k, cy)) for k in shifts], axis=0
    )
    return distance / min(abs(grid.transform.a), abs(grid.transform.e))


def masks_stats(masks, grid: Grid, index: pd.Index) -> pd.DataFrame:
    """``reference_stats`` of the pixels in each boolean mask."""
    valid = valid_mask(grid.values, grid.nodata)
    return _moments([grid.values[m & valid].astype(np.float64) for m in masks], index)


def reprojected_stats(geometries, crs, grid: Grid, index: pd.Index) -> pd.DataFrame:
    """``reference_stats`` of zones in another CRS (``centres_inside``)."""
    valid = valid_mask(grid.values, grid.nodata)
    return _moments(
        [
            grid.values[centres_inside(g, crs, grid) & valid].astype(np.float64)
            for g in geometries
        ],
        index,
    )


def _moments(values: list[np.ndarray], index: pd.Index) -> pd.DataFrame:
    rows = []
    for v in values:
        if v.size == 0:
            rows.append((0, *[np.nan] * 5))
        else:
            rows.append((v.size, v.min(), v.mean(), v.max(), v.std(), v.sum()))
    table = pd.DataFrame(rows, columns=list(STATS), index=index)
    return table.astype({"count": "int64"})


def assert_tables_close(actual: pd.DataFrame, expected: pd.DataFrame, rtol=1e-9):
    """Same index, columns and counts; every statistic to ``rtol`` relative."""
    pd.testing.assert_index_equal(actual.index, expected.index, exact="equiv")
    assert list(actual.columns) == list(expected.columns)
    for column in expected.columns:
        a, e = actual[column].to_numpy(), expected[column].to_numpy()
        if column == "count":
            np.testing.assert_array_equal(a, e, err_msg=column)
        else:  # an integer raster's min, max, majority are nullable integers
            a = actual[column].to_numpy(np.float64, na_value=np.nan)
            np.testing.assert_allclose(
                a, e, rtol=rtol, atol=0, equal_nan=True, err_msg=column
            )


def _mode(v: np.ndarray, pick) -> float:
    values, counts = np.unique(v, return_counts=True)
    return float(values[np.flatnonzero(counts == pick(counts))[0]])


# Each statistic from a zone's valid values ``v`` (float64), its invalid pixel
# count ``bad`` and the polygon itself; numpy only.
REFERENCE = {
    "count": lambda v, bad, g, grid: v.size,
    "nodata_count": lambda v, bad, g, grid: bad,
    "nodata_fraction": lambda v, bad, g, grid: (
        bad / (bad + v.size) if bad + v.size else np.nan
    ),
    "sum": lambda v, bad, g, grid: v.sum(),
    "mean": lambda v, bad, g, grid: v.mean(),
    "min": lambda v, bad, g, grid: v.min(),
    "max": lambda v, bad, g, grid: v.max(),
    "range": lambda v, bad, g, grid: v.max() - v.min(),
    "var": lambda v, bad, g, grid: v.var(),
    "variance": lambda v, bad, g, grid: v.var(),
    "std": lambda v, bad, g, grid: v.std(),
    "stdev": lambda v, bad, g, grid: v.std(),
    "coefficient_of_variation": lambda v, bad, g, grid: v.std() / v.mean(),
    "median": lambda v, bad, g, grid: np.median(v),
    "mad": lambda v, bad, g, grid: np.median(np.abs(v - np.median(v))),
    "p10": lambda v, bad, g, grid: np.percentile(v, 10),
    "p25": lambda v, bad, g, grid: np.percentile(v, 25),
    "p90": lambda v, bad, g, grid: np.percentile(v, 90),
    "quantile_25": lambda v, bad, g, grid: np.percentile(v, 25),
    "p99.5": lambda v, bad, g, grid: np.percentile(v, 99.5),
    "majority": lambda v, bad, g, grid: _mode(v, np.max),
    "minority": lambda v, bad, g, grid: _mode(v, np.min),
    "variety": lambda v, bad, g, grid: np.unique(v).size,
}
ALWAYS_DEFINED = {"count", "nodata_count", "unique", "variety"}


def reference_table(
    geometries, grid: Grid, index: pd.Index, stats, *, all_touched=False
) -> pd.DataFrame:
    """Every statistic in ``stats`` (names of REFERENCE), one polygon at a time."""
    rows = []
    for geometry in geometries:
        if geometry is None or geometry.is_empty:
            inside = np.zeros(grid.shape, bool)
        else:
            inside = features.rasterize(
                [(geometry, 1)],
                out_shape=grid.shape,
                transform=grid.transform,
                fill=0,
                all_touched=all_touched,
                dtype="uint8",
            ).astype(bool)
        valid = valid_mask(grid.values, grid.nodata)
        v = grid.values[inside & valid].astype(np.float64)
        bad = int((inside & ~valid).sum())
        rows.append(
            [
                REFERENCE[s](v, bad, geometry, grid)
                if v.size or s in ALWAYS_DEFINED or s == "nodata_fraction"
                else np.nan
                for s in stats
            ]
        )
    table = pd.DataFrame(rows, columns=list(stats), index=index, dtype=float)
    ints = {s: "int64" for s in stats if s in ALWAYS_DEFINED}
    return table.astype(ints)
