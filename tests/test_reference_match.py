"""zonal_dask against the brute-force per-polygon reference, case by case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

import zonal_dask as zd

from .reference import assert_tables_close, reference_stats
from .synth import make_grid, special_zones, voronoi_zones, zones_frame


def run(grid, geometries, **kwargs):
    frame = zones_frame(geometries)
    kwargs.setdefault("chunks", 16)
    actual = zd.zonal_stats(frame, grid.to_dataarray(), **kwargs)
    expected = reference_stats(geometries, grid, frame.index, kwargs.get("nodata", ...))
    return actual, expected


def test_hand_computed_3x3():
    # exactextract's test_basic_stats in spirit: answers you can check by hand.
    grid = make_grid((3, 3), "float64", nodata=None)
    grid.values[:] = np.arange(1, 10).reshape(3, 3)
    x0, y0 = grid.transform.c, grid.transform.f
    px, py = grid.transform.a, grid.transform.e
    # the left two columns, all three rows: values 1 2 4 5 7 8
    left = shapely.box(x0, y0 + 3 * py, x0 + 2 * px, y0)
    table = zd.zonal_stats(zones_frame([left]), grid.to_dataarray())
    row = table.iloc[0]
    assert row["count"] == 6
    assert (row["min"], row["max"], row["sum"]) == (1, 8, 27)
    assert row["mean"] == 4.5
    assert row["std"] == pytest.approx(np.std([1, 2, 4, 5, 7, 8]), rel=1e-15)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32", "float64"])
def test_adjacent_and_awkward_polygons(dtype):
    grid = make_grid(dtype=dtype, seed=1, nodata=0 if dtype == "uint8" else -9999)
    geometries = voronoi_zones(grid, 30, seed=1) + special_zones(grid)
    actual, expected = run(grid, geometries)
    assert_tables_close(actual, expected)
    assert (expected["count"] > 0).sum() >= 30  # the cases are not vacuous
    assert expected["count"].iloc[-3:].tolist() == [1, 0, 0]  # tiny, tiny, empty


def test_nan_pixels_and_all_nodata_zone():
    grid = make_grid(dtype="float32", seed=2, nan_fraction=0.1)
    grid.values[:10, :10] = grid.nodata
    corner = shapely.box(*(grid.transform @ (1, 9)), *(grid.transform @ (9, 1)))
    geometries = [*voronoi_zones(grid, 12, seed=2), corner]
    actual, expected = run(grid, geometries)
    assert_tables_close(actual, expected)
    assert actual["count"].iloc[-1] == 0
    assert actual.iloc[-1].drop("count").isna().all()


@pytest.mark.parametrize("dtype", ["uint8", "int16"])
def test_integer_sums_overflowing_the_dtype(dtype):
    grid = make_grid((70, 90), dtype, seed=3, nodata=None, loc=250, scale=3)
    whole = shapely.box(*grid.bounds())
    actual, expected = run(grid, [whole])
    assert_tables_close(actual, expected)
    assert actual["sum"].iloc[0] > np.iinfo(dtype).max
    assert actual["sum"].iloc[0] == grid.values.astype(np.int64).sum()


# float32 holds 1e8 only to a multiple of 8: its spread must be wider to exist.
@pytest.mark.parametrize(("dtype", "scale"), [("float32", 20.0), ("float64", 1.0)])
def test_std_is_stable_near_1e8(dtype, scale):
    grid = make_grid((64, 64), dtype, seed=4, nodata=None, loc=1e8, scale=scale)
    geometries = voronoi_zones(grid, 8, seed=4, margin=0.0)
    actual, expected = run(grid, geometries, chunks=7)
    assert_tables_close(actual, expected)
    assert (actual["std"] > scale / 2).all()


def test_nodata_override_and_nodata_free_raster():
    grid = make_grid(dtype="int16", seed=5, nodata=None)
    geometries = voronoi_zones(grid, 10, seed=5)
    value = int(grid.values[20, 20])
    actual, expected = run(grid, geometries, nodata=value)
    assert_tables_close(actual, expected)
    plain, _ = run(grid, geometries)
    assert plain["count"].sum() > actual["count"].sum()


def test_nodata_outside_the_dtype_is_refused_or_warned_about():
    grid = make_grid(dtype="uint8", seed=6, nodata=None)
    geometries = voronoi_zones(grid, 5, seed=6)
    with pytest.raises(zd.NodataError, match="nodata -1 is not a value of dtype uint8"):
        run(grid, geometries, nodata=-1)
    # the raster's own nodata outside its dtype matches nothing, with a warning
    own = zones_frame(geometries), grid.to_dataarray()
    own[1].attrs["_FillValue"] = -1  # rasterio refuses to write such a file
    with pytest.warns(UserWarning, match="matches no pixel and is ignored"):
        actual = zd.zonal_stats(*own, chunks=16)
    expected = reference_stats(geometries, grid, own[0].index, None)
    assert_tables_close(actual, expected)
    assert actual["count"].sum() == expected["count"].sum() > 0


def test_overlapping_polygons_each_get_all_their_pixels():
    grid = make_grid(seed=7)
    cells = voronoi_zones(grid, 8, seed=7)
    xmin, ymin, xmax, ymax = grid.bounds()
    blob = shapely.Point((xmin + xmax) / 2, (ymin + ymax) / 2).buffer((ymax - ymin) / 3)
    geometries = [*cells, blob, blob, blob.buffer(-30)]  # nested and duplicated
    actual, expected = run(grid, geometries)
    assert_tables_close(actual, expected)
    assert actual["count"].iloc[-3] == actual["count"].iloc[-2] > 0


def test_columns_follow_the_requested_order():
    grid = make_grid(seed=8)
    frame = zones_frame(voronoi_zones(grid, 5, seed=8))
    table = zd.zonal_stats(frame, grid.to_dataarray(), stats=["sum", "count", "max"])
    assert list(table.columns) == ["sum", "count", "max"]
    assert table["count"].dtype == np.int64


def test_zone_id_names_the_rows():
    grid = make_grid(seed=9)
    frame = zones_frame(voronoi_zones(grid, 5, seed=9))
    table = zd.zonal_stats(frame, grid.to_dataarray(), zone_id="name")
    assert table.index.name == "name"
    assert table.index.tolist() == frame["name"].tolist()
    by_fid = zd.zonal_stats(frame, grid.to_dataarray())
    pd.testing.assert_frame_equal(
        table.reset_index(drop=True), by_fid.reset_index(drop=True)
    )


def test_geodataframe_index_order_is_kept():
    grid = make_grid(seed=10)
    frame = zones_frame(voronoi_zones(grid, 9, seed=10))
    frame.index = pd.Index([90, 3, 41, 7, 8, 1, 12, 60, 5], name="fid")
    shuffled = frame.iloc[::-1]
    table = zd.zonal_stats(shuffled, grid.to_dataarray())
    assert table.index.tolist() == shuffled.index.tolist()
    straight = zd.zonal_stats(frame, grid.to_dataarray())
    pd.testing.assert_frame_equal(table, straight.loc[shuffled.index])
