"""exactextractr's numeric tests ported (issue 22).

exactextractr is the R package over exactextract's library; its test files
(``tests/testthat/test_exact_extract.R``, ``test_coverage_fraction.R``) build
small rasters and polygons by hand and state the numbers they expect. Each
test here names the R test it ports (``R: "..."``), builds the same raster
(R's ``matrix(v, nrow=n, byrow=TRUE)`` is NumPy's row-major order; without
``byrow`` R fills column by column, hence the ``.T``) and polygons
(``sf::st_buffer``'s circles have 30 segments a quadrant), and asserts the
R test's literal values with coverage weighting (exactextractr always weighs
by coverage). R's NA is NaN here.

Cases that do not map, and why:

* R's data structures and arguments: ``stack_apply``, ``summarize_df``,
  ``force_df``, ``full_colnames``, ``append_cols`` with R data frames,
  summary functions receiving a RasterStack's layers as a data frame, sp
  inputs, terra inputs (the same tests again), ``max_cells_in_memory``
  beyond chunking, progress bars, the argument-count errors of R closures
  (``test_num_expected_args.R``, ``test_exact_extract_errors.R``), eager
  loading (``test_exact_extract_eager_load.R``), renamed layers.
* What zonal_dask does not offer: ``exact_resample`` (resampling, both
  files), ``rasterize_polygons`` and ``coverage_fraction`` returning rasters
  cropped or not (``zonal_pixels`` gives the same fractions as rows, ported
  below), ``coverage_area`` with R's ``raster::area`` geodesic reference.
* Numbers drawn from R's random generator with ``set.seed`` ("We can
  summarize a RasterStack ... using weights from a RasterLayer": 63.0014):
  NumPy cannot draw R's numbers; the equalities of such tests are ported
  with NumPy's draws.
* Differences kept on purpose (``docs/comparisons.md``): an empty zone's
  ``sum`` is NaN (exactextractr: 0), a function is not called for a zone
  without a valid cell (NaN), functions get valid cells only (so R's
  ``weighted.mean`` without ``na.rm`` giving NA is the ``na.rm=TRUE`` number
  here), quantile columns are ``quantile_25`` (exactextractr: ``q25``).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import shapely
import xarray as xr
from affine import Affine

import zonal_dask as zd

UTM = "EPSG:26918"  # exactextractr's default_proj
LONLAT = "EPSG:4326"


def _raster(values, xmin, ymin, xmax, ymax, crs=UTM, name=None) -> xr.DataArray:
    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    transform = Affine((xmax - xmin) / cols, 0, xmin, 0, -(ymax - ymin) / rows, ymax)
    array = xr.DataArray(values, dims=("y", "x"), name=name)
    array = array.assign_coords(
        x=xmin + (np.arange(cols) + 0.5) * transform.a,
        y=ymax + (np.arange(rows) + 0.5) * transform.e,
    )
    return array.rio.write_crs(crs).rio.write_transform(transform)


def _square_raster(values, crs=UTM, name=None) -> xr.DataArray:
    """make_square_raster: n x n values (row by row) over 0..n."""
    values = np.asarray(values, dtype=np.float64)
    n = math.isqrt(values.size)
    return _raster(values.reshape(n, n), 0, 0, n, n, crs, name)


def _zones(*geometries, crs=UTM) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=list(geometries), crs=crs)


def _rect(xmin, ymin, xmax, ymax):
    return shapely.box(xmin, ymin, xmax, ymax)


def _circle(x, y, r):
    return shapely.Point(x, y).buffer(r, quad_segs=30)


def _one(zones, raster, stats, **options):
    return zd.zonal_stats(zones, raster, stats, coverage="fraction", **options)


NINE = _raster(np.arange(1, 10).reshape(3, 3), 0, 0, 3, 3, LONLAT)
SQUARE = _rect(0.5, 0.5, 2.5, 2.5)


def _weighted_mean(values, coverage):
    return float(np.sum(values * coverage) / np.sum(coverage))


def test_basic_stat_functions_work():
    # R: "Basic stat functions work"
    zones = _zones(SQUARE, crs=LONLAT)
    expected = {
        "count": 4,
        "mean": 5,
        "median": 5,
        "quantile(q=0.25)": 3.5,
        "quantile(q=0.75)": 6.5,
        "min": 1,
        "max": 9,
        "mode": 5,
        "majority": 5,
        "minority": 1,
        "variety": 9,
        "variance": 5,
        "stdev": math.sqrt(5),
        "coefficient_of_variation": math.sqrt(5) / 5,
    }
    table = _one(zones, NINE, list(expected))
    for (name, value), column in zip(expected.items(), table.columns, strict=True):
        assert table[column].iloc[0] == pytest.approx(value, rel=1e-12), name
    custom = _one(zones, NINE, {"weighted.mean": _weighted_mean})
    assert custom["weighted.mean"].iloc[0] == pytest.approx(5)
    # several stats at once, for two features
    both = _one(_zones(SQUARE, SQUARE, crs=LONLAT), NINE, ["min", "max", "mode"])
    assert both.to_numpy().tolist() == [[1, 9, 5], [1, 9, 5]]


def test_weighted_stat_functions_work():
    # R: "Weighted stat functions work"
    zones = _zones(SQUARE, crs=LONLAT)
    equal = _raster(np.ones((3, 3)), 0, 0, 3, 3, LONLAT)
    bottom = _raster([[0, 0, 0], [0, 0, 0], [1, 1, 1]], 0, 0, 3, 3, LONLAT)
    pairs = [("weighted_mean", "mean"), ("weighted_sum", "sum")]
    pairs += [("weighted_stdev", "stdev"), ("weighted_variance", "variance")]
    for weighted, plain in pairs:
        a = _one(zones, NINE, [weighted], weights=equal)[weighted].iloc[0]
        b = _one(zones, NINE, [plain])[plain].iloc[0]
        assert a == pytest.approx(b, rel=1e-12)
    stats = ["weighted_mean", "weighted_sum", "weighted_stdev", "weighted_variance"]
    row = _one(zones, NINE, stats, weights=bottom).iloc[0]
    assert row["weighted_mean"] == pytest.approx(0.25 * 7 + 0.5 * 8 + 0.25 * 9)
    assert row["weighted_sum"] == pytest.approx(0.25 * 7 + 0.5 * 8 + 0.25 * 9)
    assert row["weighted_stdev"] == pytest.approx(0.7071068, abs=1e-7)
    assert row["weighted_variance"] == pytest.approx(0.5)


THREE_ROWS = _raster(np.repeat([1, 2, 3], 3).reshape(3, 3), 0, 0, 3, 3, LONLAT)
THREE_WEIGHTS = _raster(np.repeat([3, 2, 1], 3).reshape(3, 3), 0, 0, 3, 3, LONLAT)
TWO_SQUARES = _zones(_rect(0.5, 0.5, 1.0, 1.0), SQUARE, crs=LONLAT)


def test_grouped_stat_functions_work():
    # R: "Grouped stat functions work"
    table = _one(TWO_SQUARES, THREE_ROWS, ["count", "frac"])
    np.testing.assert_allclose(table["count"], [0.25, 4.0])
    np.testing.assert_allclose(table["frac_1"].fillna(0), [0, 0.25])
    np.testing.assert_allclose(table["frac_2"].fillna(0), [0, 0.5])
    np.testing.assert_allclose(table["frac_3"], [1.0, 0.25])
    weighted = _one(
        TWO_SQUARES, THREE_ROWS, ["weighted_frac", "sum"], weights=THREE_WEIGHTS
    )
    np.testing.assert_allclose(weighted["weighted_frac_1"].fillna(0), [0, 0.375])
    np.testing.assert_allclose(weighted["weighted_frac_2"].fillna(0), [0, 0.5])
    np.testing.assert_allclose(weighted["weighted_frac_3"], [1, 0.125])
    np.testing.assert_allclose(weighted["sum"], [0.75, 8])


def test_grouped_stat_functions_work_multilayer():
    # R: "Grouped stat functions work (multilayer)": each layer of a stack
    # as that layer alone (here a list of named rasters)
    a, b = THREE_ROWS.rename("a"), (THREE_ROWS + 1).rename("b")
    b = b.rio.write_crs(LONLAT)
    stats = ["count", "frac", "quantile(q=0.25)", "quantile(q=0.75)"]
    both = _one(TWO_SQUARES, [a, b], stats)
    for name, layer in (("a", a), ("b", b)):
        alone = _one(TWO_SQUARES, layer, stats).add_prefix(f"{name}_")
        for column in alone.columns:
            np.testing.assert_allclose(both[column], alone[column])


HUNDRED = np.arange(1, 101, dtype=np.float64).reshape(10, 10)


def test_raster_na_values_are_correctly_handled():
    # R: "Raster NA values are correctly handled"
    data = HUNDRED.copy()
    data[6:10, 0:4] = np.nan  # R's data[7:10, 1:4]: the lower-left corner
    raster = _raster(data, 0, 0, 10, 10, LONLAT)
    inside = _one(
        _zones(_circle(2, 2, 0.9), crs=LONLAT),
        raster,
        {"count": "count", "mean": "mean", "f": _weighted_mean},
    ).iloc[0]
    assert inside["count"] == 0
    assert math.isnan(inside["mean"]) and math.isnan(inside["f"])
    square = _one(
        _zones(_rect(3.5, 3.5, 4.5, 4.5), crs=LONLAT),
        raster,
        {"sum": "sum", "f": _weighted_mean},
    ).iloc[0]
    assert square["sum"] == pytest.approx(43.5)
    assert square["f"] == pytest.approx(58)  # R's weighted.mean(na.rm=TRUE)


def test_multipolygons_also_work():
    # R: "MultiPolygons also work"
    raster = _raster(HUNDRED, 0, 0, 10, 10, LONLAT)
    parts = shapely.MultiPolygon([_rect(0.5, 0.5, 2.5, 2.5), _rect(4.5, 4.5, 6.5, 6.5)])
    assert _one(_zones(parts, crs=LONLAT), raster, ["variety"])["variety"][0] == 18


def test_generic_geometries_work_if_the_features_are_polygonal():
    # R: "Generic sfc_GEOMETRY works if the features are polygonal"
    raster = _square_raster(np.arange(1, 101))
    polys = _zones(
        shapely.from_wkt("POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))"),
        shapely.from_wkt(
            "MULTIPOLYGON (((2 2, 4 2, 4 4, 2 4, 2 2)), ((4 4, 8 4, 8 8, 4 8, 4 4)))"
        ),
    )
    np.testing.assert_allclose(_one(polys, raster, ["count"])["count"], [4, 20])


def test_geometry_collections_are_supported_if_they_are_polygonal():
    # R: "GeometryCollections are supported if they are polygonal"
    raster = _square_raster(np.arange(1, 101))
    gc = shapely.from_wkt(
        "GEOMETRYCOLLECTION( POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0)), "
        "POLYGON ((2 2, 4 2, 4 4, 2 4, 2 2)))"
    )
    mp = shapely.from_wkt(
        "MULTIPOLYGON (((0 0, 2 0, 2 2, 0 2, 0 0)), ((2 2, 4 2, 4 4, 2 4, 2 2)))"
    )
    stats = ["count", "sum", "min", "max", "unique"]
    ours = _one(_zones(gc, mp), raster, stats)
    assert ours.iloc[0].drop("unique").tolist() == ours.iloc[1].drop("unique").tolist()
    assert list(ours["unique"][0]) == list(ours["unique"][1])


def test_portions_of_the_polygon_beyond_the_raster():
    # R: "We ignore portions of the polygon that extend outside the raster"
    cells = np.arange(360 * 720, dtype=np.float64).reshape(720, 360).T
    raster = _raster(cells, -180, -90, 180, 90, LONLAT)
    rect = _zones(_rect(179.5, 0, 180.5, 1), crs=LONLAT)
    pixels = zd.zonal_pixels(rect, raster, coverage="fraction").compute()
    east = pixels[pixels["center_x"] > 0]
    assert east["center_x"].tolist() == [179.75, 179.75]
    assert sorted(east["center_y"].tolist(), reverse=True) == [0.75, 0.25]
    # a documented difference: on a global longitude/latitude raster the part
    # beyond 180 is the same ground at -180..-179.5, and is counted there
    west = pixels[pixels["center_x"] < 0]
    assert west["center_x"].tolist() == [-179.75, -179.75]
    np.testing.assert_allclose(pixels["coverage"], 1.0)


def test_default_values_for_a_polygon_that_does_not_meet_the_raster():
    # R: "We get acceptable default values when processing a polygon that does
    # not intersect the raster" (its sum 0 is NaN here, a documented choice)
    rng = np.random.default_rng(433)
    raster = _raster(rng.uniform(size=(5, 20)), -180, -65, 180, 85, LONLAT)
    poly = _zones(_rect(-180, -90, 180, -65.5), crs=LONLAT)
    stats = ["count", "variety", "majority", "minority", "mean", "min", "max"]
    with pytest.warns(zd.errors.NoOverlapWarning):
        row = _one(poly, raster, stats).iloc[0]
    assert row["count"] == 0 and row["variety"] == 0
    for name in ("majority", "minority", "mean", "min", "max"):
        assert math.isnan(row[name]), name


def test_we_can_weight_with_cell_areas_projected():
    # R: "We can weight with cell areas (projected coordinates)"
    values = np.arange(1, 101, dtype=np.float64).reshape(10, 10).T  # ncol=10
    raster = _raster(values, 0, 0, 5, 5)
    circle = _zones(_circle(5, 5, 5))
    by_fraction = _one(circle, raster, ["mean", "sum"]).iloc[0]
    by_area = zd.zonal_stats(
        circle, raster, ["mean", "sum"], coverage="area_cartesian"
    ).iloc[0]
    assert by_area["mean"] == pytest.approx(by_fraction["mean"], rel=1e-12)
    assert by_area["sum"] == pytest.approx(0.5 * 0.5 * by_fraction["sum"], rel=1e-12)
    # disaggregating by 8 does not change the area-weighted sum
    finer = _raster(np.repeat(np.repeat(values, 8, 0), 8, 1), 0, 0, 5, 5)
    fine = zd.zonal_stats(circle, finer, ["sum"], coverage="area_cartesian")
    assert fine["sum"].iloc[0] == pytest.approx(by_area["sum"], rel=1e-9)


@pytest.mark.parametrize("chunks", [1, 3])
def test_results_when_max_cells_in_memory_is_limited(chunks):
    # R: "Correct results obtained when max_cells_in_memory is limited"
    raster = _square_raster(np.arange(1, 101))
    poly = _zones(_circle(5, 5, 3))
    whole = _one(poly, raster, ["mean"])["mean"].iloc[0]
    assert _one(poly, raster, ["mean"], chunks=chunks)["mean"].iloc[0] == whole


def _covered(poly, xmin, ymax, rows, cols, res=1.0):
    """Each cell's covered fraction, from shapely's intersection areas: the
    independent reference R builds from two value tables."""
    out = np.zeros((rows, cols))
    for r in range(rows):
        for c in range(cols):
            cell = _rect(
                xmin + c * res,
                ymax - (r + 1) * res,
                xmin + (c + 1) * res,
                ymax - r * res,
            )
            out[r, c] = poly.intersection(cell).area / res**2
    return out


def test_weighted_stats_of_a_polygon_partly_beyond_the_value_raster():
    # R: "Weighted stats work when polygon is contained in weight raster but
    # only partially contained in value raster"
    values = np.arange(1, 16, dtype=np.float64).reshape(3, 5)
    weights = np.sqrt(np.arange(1, 26, dtype=np.float64)).reshape(5, 5)
    poly = _circle(2.1, 2.1, 1)
    table = _one(
        _zones(poly),
        _raster(values, 0, 2, 5, 5),
        ["weighted_mean"],
        weights=_raster(weights, 0, 0, 5, 5),
    )
    fraction = _covered(poly, 0, 5, 3, 5)
    expected = np.sum(values * fraction * weights[:3]) / np.sum(fraction * weights[:3])
    assert table["weighted_mean"].iloc[0] == pytest.approx(expected, rel=1e-6)


def test_unweighted_stats_beside_weights_covering_part_of_the_polygon():
    # R: "When part of a polygon is within the value raster but not the
    # weighting raster, values for unweighted stats requested at the same time
    # as weighted stats are correct"
    values = _raster(np.arange(1, 26).reshape(5, 5), 0, 0, 5, 5)
    weights = _raster(np.sqrt(np.arange(1, 16)).reshape(3, 5), 0, 2, 5, 5)
    poly = _zones(_circle(2.1, 2.1, 1))
    alone = _one(poly, values, ["sum"])["sum"].iloc[0]
    beside = _one(poly, values, ["sum", "weighted_mean"], weights=weights)
    assert beside["sum"].iloc[0] == pytest.approx(alone, rel=1e-12)


def test_a_polygon_beyond_the_value_raster_within_the_weights_gets_nan():
    # R: "When polygon is entirely outside the value raster and entirely
    # within the weighting raster, we get NA instead of an exception"
    values = _raster(np.arange(1, 26).reshape(5, 5), 5, 5, 10, 10)
    weights = _raster(np.tile(np.arange(1, 11), (10, 1)), 0, 0, 10, 10)
    poly = _zones(_circle(2.1, 2.1, 1))
    with pytest.warns(zd.errors.NoOverlapWarning):
        table = _one(poly, values, ["weighted_mean"], weights=weights)
    assert math.isnan(table["weighted_mean"].iloc[0])


def test_the_z_dimension_is_ignored():
    # R: "Z dimension is ignored, if present"
    poly = _zones(shapely.from_wkt("POLYGON Z ((1 1 0, 4 1 0, 4 4 0, 1 1 0))"))
    values = _raster(np.arange(1, 26).reshape(5, 5), 0, 0, 5, 5)

    def total(x, f):
        return float(np.sum(x * f))

    table = _one(poly, values, {"sum": "sum", "f": total})
    assert table["sum"].iloc[0] == pytest.approx(70.5)
    assert table["f"].iloc[0] == pytest.approx(70.5)


def test_weights_on_a_finer_grid_regression():
    # R: "No error thrown when weighting with different resolution grid
    # (regression)": the same polygon, weights six times finer
    wkb = (
        "01060000000200000001030000000100000008000000065bb0055b7866401c2222222232"
        "33c0454444242e776640338ee338842d33c0abaaaacac0776640338ee338962733c06766"
        "66469f776640a4aaaaaa362033c03a8ee3784f7866404f555555a41c33c0a64ffa840b79"
        "66406c1cc771522133c0454444645a796640f4a44ffa9c2b33c0065bb0055b7866401c22"
        "2222223233c0010300000001000000080000004b9ff4499f7c6640a3aaaaaaaaaa32c0bd"
        "bbbb3b747a6640f8ffff7f549632c0ea933e09aa7b664004b6608b399132c0b1055bb063"
        "7e6640dc388e63278f32c0d9822d58827e6640dc388ee3109432c09a999979837c664059"
        "0bb660159c32c0676666867c7d664070777777039c32c04b9ff4499f7c6640a3aaaaaaaa"
        "aa32c0"
    )
    poly = _zones(shapely.from_wkb(bytes.fromhex(wkb)), crs=LONLAT)
    v = _raster(np.ones((360, 720)), -180, -90, 180, 90, LONLAT)
    w = _raster(np.ones((360 * 6, 720 * 6)), -180, -90, 180, 90, LONLAT)
    table = _one(poly, v, ["weighted_sum", "count"], weights=w)
    # unit values and weights: the weighted sum is the covered area in cells
    assert table["weighted_sum"].iloc[0] > 0
    assert table["weighted_sum"].iloc[0] == pytest.approx(
        table["count"].iloc[0], rel=1e-9
    )


def test_named_operations_take_lists_of_values_and_weights():
    # R: "Named summary operations support both stacks of values and weights"
    # (as exactextract's Python lists: columns {raster}_{op}, {raster}_{w}_{op})
    rng = np.random.default_rng(832)
    vals = [_square_raster(rng.uniform(size=100), name=f"v{i}") for i in (1, 2, 3)]
    weights = [
        _square_raster(rng.binomial(2, 0.5, 100), name=f"w{i}") for i in (1, 2, 3)
    ]
    circle = _zones(_circle(2, 7, 3))
    stats = ["sum", "weighted_mean"]
    pairwise = _one(circle, vals, stats, weights=weights)
    assert list(pairwise.columns) == [
        "v1_sum", "v2_sum", "v3_sum",
        "v1_w1_weighted_mean", "v2_w2_weighted_mean", "v3_w3_weighted_mean",
    ]  # fmt: skip
    for i in range(3):
        alone = _one(circle, vals[i], stats, weights=weights[i]).iloc[0]
        v, w = f"v{i + 1}", f"w{i + 1}"
        assert pairwise[f"{v}_sum"].iloc[0] == pytest.approx(alone["sum"])
        assert pairwise[f"{v}_{w}_weighted_mean"].iloc[0] == pytest.approx(
            alone["weighted_mean"]
        )
    recycled = _one(circle, vals, stats, weights=[weights[0]])
    one_value = _one(circle, [vals[2]], stats, weights=weights)
    assert list(one_value.columns) == [
        "v3_sum",
        "v3_w1_weighted_mean",
        "v3_w2_weighted_mean",
        "v3_w3_weighted_mean",
    ]
    for i in range(3):
        w1 = _one(circle, vals[i], ["weighted_mean"], weights=weights[0])
        assert recycled[f"v{i + 1}_w1_weighted_mean"].iloc[0] == pytest.approx(
            w1["weighted_mean"].iloc[0]
        )
        v3 = _one(circle, vals[2], ["weighted_mean"], weights=weights[i])
        assert one_value[f"v3_w{i + 1}_weighted_mean"].iloc[0] == pytest.approx(
            v3["weighted_mean"].iloc[0]
        )


def test_nodata_values_and_weights_replaced_by_constants():
    # R: "We can replace NA values in the value and weighting rasters with
    # constants"
    rng = np.random.default_rng(5401)
    x, y = rng.uniform(size=100), rng.uniform(size=100)
    x[rng.choice(100, 50, replace=False)] = np.nan
    y[rng.choice(100, 50, replace=False)] = np.nan
    poly = _zones(_circle(4.5, 4.8, 4))
    expected = _one(
        poly,
        _square_raster(np.where(np.isnan(x), 0.5, x)),
        ["weighted_mean"],
        weights=_square_raster(np.where(np.isnan(y), 0.3, y)),
    )["weighted_mean"].iloc[0]
    filled = {"default_value": 0.5, "default_weight": 0.3}
    rx, ry = _square_raster(x), _square_raster(y)
    on_the_fly = _one(poly, rx, ["weighted_mean"], weights=ry, **filled)
    assert on_the_fly["weighted_mean"].iloc[0] == pytest.approx(expected, rel=1e-12)

    def mean_of(value, cov_frac, weight):
        return float(np.sum(value * cov_frac * weight) / np.sum(cov_frac * weight))

    by_function = _one(poly, rx, {"f": mean_of}, weights=ry, **filled)
    assert by_function["f"].iloc[0] == pytest.approx(expected, rel=1e-6)


def test_coverage_fraction_function_works():
    # R: "Coverage fraction function works" (test_coverage_fraction.R)
    raster = _raster(np.zeros((3, 3)), 0, 0, 3, 3)
    pixels = zd.zonal_pixels(_zones(SQUARE), raster, coverage="fraction").compute()
    grid = np.zeros(9)
    grid[pixels["cell_id"].to_numpy()] = pixels["coverage"].to_numpy()
    np.testing.assert_allclose(
        grid.reshape(3, 3), [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]
    )


def test_coverage_fractions_are_exact():
    # R: "Coverage fractions are exact" (test_coverage_fraction.R): the
    # fractions times the cell area give the polygon's area
    # raster's res<- keeps xmin and rounds 287.5 columns to 288: xmax 419830
    cols, rows = round((419780 - 391030) / 100), round((5547400 - 5520000) / 100)
    values = np.arange(1, rows * cols + 1, dtype=np.float64).reshape(rows, cols)
    raster = _raster(values, 391030, 5520000, 391030 + cols * 100, 5547400)
    poly = shapely.from_wkt(
        "POLYGON((397199.680921053 5541748.05921053,402813.496710526 "
        "5543125.03289474,407103.299342105 5537246.41447368,398470.733552632 "
        "5533962.86184211,397199.680921053 5541748.05921053))"
    )
    count = _one(_zones(poly), raster, ["count"])["count"].iloc[0]
    assert count * 100 * 100 == pytest.approx(poly.area, rel=1.5e-8)
