"""Numerics: exact integer sums, stable std, inf as numpy, chunking independence."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import shapely

import zonal_dask as zd

from .reference import assert_tables_close, polygon_values, reference_stats
from .synth import Grid, make_grid, special_zones, voronoi_zones, zones_frame


def _run(grid: Grid, geometries, **kwargs):
    frame = zones_frame(geometries)
    actual = zd.zonal_stats(frame, grid.to_dataarray(), **kwargs)
    return actual, reference_stats(geometries, grid, frame.index)


@pytest.mark.parametrize("chunks", [5, 13, 64])
def test_integer_sums_are_exact_up_to_2_53(chunks):
    rng = np.random.default_rng(71)
    shape = (32, 40)
    # about 2**52 / 1280 per pixel: the whole raster sums to just under 2**53
    base = 2**53 // (shape[0] * shape[1]) - 2**20
    values = (base + rng.integers(-(2**20), 2**20, shape)).astype("int64")
    values[0, 0] += 2**53 - 1 - int(values.sum(dtype=object))  # the sum is 2**53 - 1
    grid = Grid(values, nodata=None)
    xmin, ymin, xmax, ymax = grid.bounds()
    everything = shapely.box(xmin - 1, ymin - 1, xmax + 1, ymax + 1)
    cells = voronoi_zones(grid, 9, seed=71)
    table, _ = _run(grid, [everything, *cells], chunks=chunks, split_every=2)
    assert int(values.sum(dtype=object)) == 2**53 - 1
    assert table["sum"].iloc[0] == float(2**53 - 1)
    assert int(table["sum"].iloc[0]) == 2**53 - 1
    for i, cell in enumerate(cells, start=1):
        exact = sum(int(v) for v in polygon_values(cell, grid, None).astype("int64"))
        assert table["sum"].iloc[i] == exact


@pytest.mark.parametrize("offset", [1e8, 1e12])
def test_std_is_stable_for_large_offsets(offset):
    grid = make_grid(dtype="float64", seed=72, nodata=None, loc=offset, scale=1.0)
    geometries = voronoi_zones(grid, 7, seed=72)
    actual, expected = _run(grid, geometries, chunks=9)
    assert_tables_close(actual.drop(columns="std"), expected.drop(columns="std"))
    # statistics.pstdev sums exact fractions: the true std of the float64 values.
    # numpy's two-pass float64 is off by up to 1e-8 relative at 1e12; we are not.
    exact = [
        statistics.pstdev(polygon_values(g, grid, None).tolist()) for g in geometries
    ]
    np.testing.assert_allclose(actual["std"], exact, rtol=1e-12, atol=0)
    assert (actual["std"] > 0.5).all()


def test_results_do_not_depend_on_chunking_or_tree_shape():
    grid = make_grid((67, 71), "float64", seed=73, loc=1e6, scale=1e3)
    geometries = [*voronoi_zones(grid, 11, seed=73), *special_zones(grid)]
    frame = zones_frame(geometries)
    array = grid.to_dataarray()
    tables = [
        zd.zonal_stats(frame, array, chunks=chunks, split_every=split_every)
        for chunks in [(67, 71), 7, (5, 23), 16, (67, 3)]
        for split_every in (2, 8)
    ]
    for table in tables[1:]:
        assert_tables_close(table, tables[0], rtol=1e-12)
    assert_tables_close(tables[0], reference_stats(geometries, grid, frame.index))


def _with_infinities(seed: int) -> Grid:
    grid = make_grid((30, 40), "float64", seed=seed, nodata=-9999.0)
    values = grid.values.copy()
    values[3:9, 2:30:5] = np.inf
    values[20:24, 5:35:4] = -np.inf
    return Grid(values, nodata=grid.nodata)


def test_inf_values_are_handled_as_numpy_does():
    grid = _with_infinities(74)
    geometries = voronoi_zones(grid, 6, seed=74)
    with np.errstate(invalid="ignore"):
        actual, expected = _run(grid, geometries, chunks=8)
    assert np.isinf(expected["max"]).any() and np.isnan(expected["sum"]).any()
    assert_tables_close(actual, expected)


def test_inf_values_count_as_valid_pixels():
    grid = _with_infinities(75)
    geometries = voronoi_zones(grid, 6, seed=75)
    with np.errstate(invalid="ignore"):
        actual, expected = _run(grid, geometries, chunks=8)
    np.testing.assert_array_equal(actual["count"], expected["count"])
    # min and max are right whatever the moments do with inf
    np.testing.assert_array_equal(actual["min"], expected["min"])
    np.testing.assert_array_equal(actual["max"], expected["max"])
