"""The two weighted-statistics references agree with each other and with hand
computations: exactextract 0.3 (tests/weighted_reference.py's
``exactextract_reference``) against the float64 brute force written from
docs/exactextract-semantics.md, on 3 x 3 rasters whose answers are worked out
below and on the São Miguel rasters (nested lon/lat grids), for every
operation, with coverage_weight fraction and none, with and without a weights
raster. Also pins exactextract's surprising behaviours, so that a new
exactextract release that changes them is noticed.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from . import weighted_reference as wr

pytest.importorskip("exactextract")

SM = Path(__file__).parent / "data" / "sao_miguel"
DEM = SM / "eu_dem_v11.tif"
POP = SM / "gpw_v411_2020_count_2020.tif"
DENSITY = SM / "gpw_v411_2020_density_2020.tif"
CLC = SM / "clc2018_v2020_20u1.tif"

UNWEIGHTED = [
    op for op in wr.OPERATIONS if op != "quantile" and not op.startswith("weighted")
] + ["quantile(q=0.1)", "quantile(q=0.25)", "quantile(q=0.995)"]
ALL = [
    *UNWEIGHTED,
    "weighted_frac",
    "weighted_mean",
    "weighted_sum",
    "weighted_stdev",
    "weighted_variance",
]


def assert_frames_close(
    ours: pd.DataFrame, theirs: pd.DataFrame, rtol=1e-9, atol=1e-12
):
    assert list(ours.columns) == list(theirs.columns)
    assert list(ours.index) == list(theirs.index)
    for col in ours.columns:
        np.testing.assert_allclose(
            ours[col].to_numpy(float),
            theirs[col].to_numpy(float),
            rtol=rtol,
            atol=atol,
            equal_nan=True,
            err_msg=col,
        )


def both(zones, values, ops, *, weights=None, **kw) -> pd.DataFrame:
    """exactextract's table, after checking the brute force gives the same."""
    ee = wr.exactextract_reference(zones, values, ops, weights=weights, **kw)
    cells = wr.exactextract_cells(zones, values, weights=weights)
    bf = wr.brute_force(
        cells, values, ops, weights=weights, zones=list(zones.index), **kw
    )
    assert_frames_close(bf, ee)
    return ee


# ---------------------------------------------------------------------------
# 3 x 3 examples worked out by hand
#
#   values V          weights W        cells are 1 x 1, the grid spans (0,0)-(3,3);
#   1 2 3             1 1 1            row 0 is the top row (y from 2 to 3)
#   4 5 6             2 2 2
#   7 8 9             0 0 0

V = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float64)
W = np.array([[1, 1, 1], [2, 2, 2], [0, 0, 0]], dtype=np.float64)
UNIT = Affine(1, 0, 0, 0, -1, 3)
CRS = "EPSG:32633"  # exactextract 0.3.0 cannot read a GeoDataFrame without a CRS


def zones(*geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=list(geoms), crs=CRS)


# box(0.5, 0.5, 2.5, 2.5) covers a quarter of each corner cell, half of each edge
# cell and all of the centre cell.
A = zones(shapely.box(0.5, 0.5, 2.5, 2.5))
FRACTION = {
    # c: .25 .5 .25 / .5 1 .5 / .25 .5 .25, sum 4
    "count": 4.0,
    "sum": 20.0,  # .25(1+3+7+9) + .5(2+4+6+8) + 5
    "mean": 5.0,
    "variance": 5.0,  # (.25(16+4+4+16) + .5(9+1+1+9)) / 4
    "stdev": math.sqrt(5),
    "coefficient_of_variation": math.sqrt(5) / 5,
    "min": 1.0,
    "max": 9.0,
    "min_center_x": 0.5,
    "min_center_y": 2.5,
    "max_center_x": 2.5,
    "max_center_y": 0.5,
    # distinct values 1..9 with weights .25 .5 .25 .5 1 .5 .25 .5 .25: n = 9, S = 4,
    # s_i = i w_i + 8 C_{i-1} = 0, 2.5, 6.5, 9.5, 16, 22.5, 25.5, 29.5, 32
    "median": 5.0,  # target .5 * 8 * 4 = 16 = s_4
    "quantile_10": 2.175,  # target 3.2: 2 + (3.2 - 2.5) / (6.5 - 2.5)
    "quantile_25": 3.5,  # target 8: 3 + (8 - 6.5) / (9.5 - 6.5)
    "quantile_99.5": 8.936,  # target 31.84, s_7 = 29.5, s_8 = 32: 8 + 2.34 / 2.5
    "majority": 5.0,
    "minority": 1.0,  # .25 for 1, 3, 7 and 9: the smallest value wins the tie
    "variety": 9.0,
    "frac_1": 0.0625,
    "frac_2": 0.125,
    "frac_5": 0.25,
    "frac_9": 0.0625,
    # c w: .25 .5 .25 / 1 2 1 / 0 0 0, sum 5
    "weighted_sum": 22.0,  # .25 + 1 + .75 + 4 + 10 + 6
    "weighted_mean": 4.4,
    # (.25 * 3.4² + .5 * 2.4² + .25 * 1.4² + .4² + 2 * .6² + 1.6²) / 5
    "weighted_variance": 1.94,
    "weighted_stdev": math.sqrt(1.94),
    "weighted_frac_1": 0.05,
    "weighted_frac_5": 0.4,
    "weighted_frac_6": 0.2,
    "weighted_frac_9": 0.0,
}

NONE = {
    # every touched cell counts 1: the nine values, equal weights
    "count": 9.0,
    "sum": 45.0,
    "mean": 5.0,
    "variance": 60 / 9,  # (16+9+4+1+0+1+4+9+16) / 9
    "stdev": math.sqrt(60 / 9),
    "coefficient_of_variation": math.sqrt(60 / 9) / 5,
    "min_center_x": 0.5,
    "min_center_y": 2.5,
    # equal weights: numpy's linear quantile of 1..9
    "median": 5.0,
    "quantile_10": 1.8,
    "quantile_25": 3.0,
    "majority": 9.0,  # all tied at 1: the largest value wins
    "minority": 1.0,  # all tied at 1: the smallest value wins
    "variety": 9.0,
    "frac_4": 1 / 9,
    "weighted_sum": 36.0,  # (1+2+3) + 2(4+5+6)
    "weighted_mean": 4.0,
    "weighted_variance": 24 / 9,  # ((9+4+1) + 2(0+1+4)) / 9
    "weighted_frac_1": 1 / 9,
    "weighted_frac_5": 2 / 9,
    "weighted_frac_8": 0.0,
}


def assert_expected(table: pd.DataFrame, expected: dict, row=0):
    for name, value in expected.items():
        assert table[name].iloc[row] == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize(
    ("coverage_weight", "expected"), [("fraction", FRACTION), ("none", NONE)]
)
def test_hand_example_every_operation(coverage_weight, expected):
    table = both(
        A,
        wr.Raster(V, UNIT),
        ALL,
        weights=wr.Raster(W, UNIT),
        coverage_weight=coverage_weight,
    )
    assert_expected(table, expected)


def test_hand_example_integer_values_truncate_quantiles():
    # the same cells as int32: exactextract returns quantiles in the raster's type
    table = both(A, wr.Raster(V.astype(np.int32), UNIT), UNWEIGHTED)
    assert_expected(
        table,
        {"median": 5, "quantile_10": 2, "quantile_25": 3, "mean": 5, "min": 1},
    )


V2 = V.copy()
V2[1, 1] = -9  # nodata
W2 = W.copy()
W2[0, 0] = np.nan  # undefined weight
WHOLE = zones(shapely.box(0, 0, 3, 3))  # every cell wholly covered


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # the nodata centre is left out; the NaN weight makes every weighted result NaN
        (
            {},
            {"count": 8.0, "sum": 40.0, "mean": 5.0, "weighted_sum": math.nan},
        ),
        # default_weight stands for the NaN weight: c w = .5 1 1 / 2 - 2 / 0 0 0
        (
            {"default_weight": 0.5},
            {
                "count": 8.0,
                "weighted_sum": 25.5,  # .5 + 2 + 3 + 8 + 12
                "weighted_mean": 25.5 / 6.5,
            },
        ),
        # default_value stands for the nodata value: the centre counts as 0
        (
            {"default_value": 0, "default_weight": 0.5},
            {
                "count": 9.0,
                "sum": 40.0,
                "mean": 40 / 9,
                "min": 0.0,
                "min_center_x": 1.5,
                "min_center_y": 1.5,
                "weighted_sum": 25.5,
                "weighted_mean": 25.5 / 8.5,
                "variety": 9.0,
            },
        ),
    ],
)
def test_hand_example_nodata_and_defaults(options, expected):
    table = both(
        WHOLE,
        wr.Raster(V2, UNIT, nodata=-9),
        ALL,
        weights=wr.Raster(W2, UNIT),
        **options,
    )
    for name, value in expected.items():
        if math.isnan(value):
            assert np.isnan(table[name].iloc[0]), name
        else:
            assert table[name].iloc[0] == pytest.approx(value, rel=1e-12), name
    if not options:
        weighted = [c for c in table.columns if c.startswith("weighted")]
        assert table[weighted].isna().all(axis=None)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        # c >= .5: the four edge cells (.5) and the centre (1)
        (
            0.5,
            {
                "count": 3.0,
                "sum": 15.0,  # .5(2+4+6+8) + 5
                "min": 2.0,
                "min_center_x": 1.5,
                "min_center_y": 2.5,
                "max": 8.0,
                "variety": 5.0,
            },
        ),
        (0.6, {"count": 1.0, "sum": 5.0, "min": 5.0, "max": 5.0, "variety": 1.0}),
    ],
)
def test_hand_example_min_coverage_frac(threshold, expected):
    table = both(A, wr.Raster(V, UNIT), UNWEIGHTED, min_coverage_frac=threshold)
    assert_expected(table, expected)


# weights on a grid twice as fine (cells 0.5 x 0.5), numbered 0..35 row by row
W_FINE = np.arange(36, dtype=np.float64).reshape(6, 6)
HALF = Affine(0.5, 0, 0, 0, -0.5, 3)


def test_hand_example_finer_weights_grid():
    # box(0, 0, 1, 1) is value cell (2, 0) = 7, that is fine cells (4..5, 0..1):
    # weights 24, 25, 30, 31. Everything is computed on the common (fine) grid,
    # so count is in fine cells.
    table = both(
        zones(shapely.box(0, 0, 1, 1), shapely.box(0.5, 0, 1, 1)),
        wr.Raster(V, UNIT),
        ALL,
        weights=wr.Raster(W_FINE, HALF),
    )
    assert_expected(
        table,
        {
            "count": 4.0,
            "sum": 28.0,
            "mean": 7.0,
            "weighted_sum": 7 * 110.0,
            "weighted_mean": 7.0,
            "min_center_x": 0.25,  # the first fine cell, row-major
            "min_center_y": 0.75,
        },
    )
    # the right half: fine cells (4, 1) and (5, 1), weights 25 and 31
    assert_expected(table, {"count": 2.0, "sum": 14.0, "weighted_sum": 7 * 56.0}, row=1)
    pixels = wr.exactextract_pixels(
        zones(shapely.box(0, 0, 1, 1)),
        wr.Raster(V, UNIT),
        weights=wr.Raster(W_FINE, HALF),
    )
    assert list(pixels["cell_id"]) == [6, 6, 6, 6]  # the value grid's cell, 2 * 3 + 0
    assert list(pixels["weights"]) == [24, 25, 30, 31]
    # area weighting counts area, whatever the common grid: 4 cells of 0.25
    area = both(
        zones(shapely.box(0, 0, 1, 1)),
        wr.Raster(V, UNIT),
        ["count", "sum"],
        weights=wr.Raster(W_FINE, HALF),
        coverage_weight="area_cartesian",
    )
    assert_expected(area, {"count": 1.0, "sum": 7.0})


def test_hand_example_spherical_area():
    # one 1° x 1° lon/lat cell from the equator: R² (π/180) |sin 0° - sin 1°| · 1,
    # R = 6,378,137 m, = 12,391,399,902.07 m², which exactextract keeps as float32
    # (12,391,399,424); the left half of the cell is half that.
    one = wr.Raster(np.ones((1, 1)), Affine(1, 0, 0, 0, -1, 1))
    geo = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(0, 0, 0.5, 1)], crs="EPSG:4326"
    )
    m2 = both(geo, one, ["count", "sum"], coverage_weight="area_spherical_m2")
    km2 = both(geo, one, ["count"], coverage_weight="area_spherical_km2")
    assert m2["count"].iloc[0] == 12391399424.0
    assert m2["count"].iloc[0] == pytest.approx(12391399902.07, rel=1e-7)
    assert m2["count"].iloc[1] == pytest.approx(12391399902.07 / 2, rel=1e-7)
    assert km2["count"].iloc[0] == pytest.approx(12391.3999, rel=1e-7)
    cart = both(geo, one, ["count"], coverage_weight="area_cartesian")
    assert list(cart["count"]) == [1.0, 0.5]  # square degrees


# ---------------------------------------------------------------------------
# exactextract 0.3's surprises, pinned (see docs/exactextract-semantics.md)


def test_exactextract_quantile_is_over_distinct_values():
    # values 0, 0, 0, 10 wholly covered: the median is 5, not 0 (exactextractr
    # issue #113): the weighted quantile runs over distinct values with their
    # summed coverage, so n = 2 here.
    r = wr.Raster(np.array([[0.0, 0.0], [0.0, 10.0]]), Affine(1, 0, 0, 0, -1, 2))
    table = both(zones(shapely.box(0, 0, 2, 2)), r, ["median", "quantile(q=0.25)"])
    assert list(table.iloc[0]) == [5.0, 2.5]


def test_exactextract_names_quantiles_by_truncating():
    from exactextract import exact_extract

    r = wr.Raster(V, UNIT).source()
    df = exact_extract(r, A, ["quantile(q=0.29)"], output="pandas")
    assert list(df.columns) == ["quantile_28"]  # int(0.29 * 100) == 28


def test_exactextract_integer_grid_without_nodata_reads_min_outside_its_extent():
    # a uint8 value raster with no nodata, on a smaller extent than the weights:
    # the common grid's cells outside it are read as 0 (int16: -32768) and count.
    from exactextract import exact_extract

    small = wr.Raster(V.astype(np.uint8), UNIT)  # (0, 0)-(3, 3)
    big = wr.Raster(np.ones((5, 5)), Affine(1, 0, -1, 0, -1, 4))  # (-1,-1)-(4,4)
    z = zones(shapely.box(-1, -1, 1, 1))  # one cell inside (value 7), three outside
    df = exact_extract(small.source(), z, ["count", "sum", "min"], weights=big.source())
    props = df[0]["properties"]
    assert (props["count"], props["sum"], props["min"]) == (4.0, 7.0, 0)
    # the brute force follows the definition: outside the grid is undefined
    cells = wr.exactextract_cells(z, small, weights=big)
    bf = wr.brute_force(cells, small, ["count", "sum", "min"], weights=big)
    assert list(bf.iloc[0]) == [1.0, 7.0, 7.0]


def test_exactextract_min_center_of_a_zone_at_the_types_maximum():
    # every value 255 in a uint8 raster: min is never "updated", so its centre is
    # left at (0, 0); max_center is right.
    from exactextract import exact_extract

    r = wr.Raster(np.full((3, 3), 255, dtype=np.uint8), UNIT)
    ops = ["min", "min_center_x", "min_center_y", "max_center_x", "max_center_y"]
    props = exact_extract(r.source(), A, ops)[0]["properties"]
    assert [props[o] for o in ops] == [255, 0.0, 0.0, 0.5, 2.5]
    cells = wr.exactextract_cells(A, r)
    assert list(wr.brute_force(cells, r, ops).iloc[0]) == [255, 0.5, 2.5, 0.5, 2.5]


def test_exactextract_refuses_incompatible_weights():
    from exactextract import exact_extract

    v = wr.Raster(V, UNIT).source()
    for w in (
        wr.Raster(np.ones((3, 3)), Affine(1, 0, 0.3, 0, -1, 3)),  # shifted 0.3 cell
        wr.Raster(np.ones((2, 2)), Affine(1.5, 0, 0, 0, -1.5, 3)),  # 1.5 x the cell
    ):
        with pytest.raises(RuntimeError, match="Incompatible extents"):
            exact_extract(v, A, ["weighted_mean"], weights=w.source())


# ---------------------------------------------------------------------------
# São Miguel: real rasters on nested grids (GPW 30", EU-DEM 7.5", CORINE 0.75")


@functools.cache
def concelhos() -> gpd.GeoDataFrame:
    return gpd.read_file(SM / "concelhos.gpkg").set_index("name")


@functools.cache
def cells_of(values, weights) -> pd.DataFrame:
    return wr.exactextract_cells(concelhos(), values, weights=weights)


CASES = {
    "dem": (DEM, None, UNWEIGHTED, {}),
    "dem-none": (DEM, None, UNWEIGHTED, {"coverage_weight": "none"}),
    # population as weights (coarser grid)
    "dem-pop": (DEM, POP, ALL, {}),
    "dem-pop-default": (DEM, POP, ALL, {"default_weight": 0}),
    "dem-pop-none": (DEM, POP, ALL, {"coverage_weight": "none", "default_weight": 0}),
    # elevation as weights (finer grid): the population grid is disaggregated;
    # coastal cells have population but no elevation, so weighted results are NaN
    "pop-dem": (POP, DEM, ALL, {}),
    "pop-dem-default": (POP, DEM, ALL, {"default_weight": 0.5}),
    # population-weighted land cover, on CORINE's grid
    "clc-pop": (CLC, POP, ALL, {"default_weight": 0}),
    "clc-pop-none": (CLC, POP, ALL, {"coverage_weight": "none", "default_weight": 0}),
    "density-km2": (
        DENSITY,
        None,
        UNWEIGHTED,
        {"coverage_weight": "area_spherical_km2"},
    ),
    "density-m2": (DENSITY, None, UNWEIGHTED, {"coverage_weight": "area_spherical_m2"}),
    "density-cartesian": (
        DENSITY,
        None,
        UNWEIGHTED,
        {"coverage_weight": "area_cartesian"},
    ),
    "dem-thresholds": (
        DEM,
        None,
        UNWEIGHTED,
        {"min_coverage_frac": 0.5, "default_value": 0},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sao_miguel_exactextract_equals_brute_force(case):
    values, weights, ops, options = CASES[case]
    ee = wr.exactextract_reference(concelhos(), values, ops, weights=weights, **options)
    bf = wr.brute_force(
        cells_of(values, weights), values, ops, weights=weights, **options
    )
    assert_frames_close(bf, ee)
    assert len(ee) == 6 and (ee["count"] > 0).all()
    weighted = [c for c in ee.columns if c.startswith("weighted")]
    if case == "pop-dem":
        assert ee[weighted].isna().all(axis=None)  # NaN weights make NaN
    else:  # the comparison is not vacuous
        assert ee.drop(columns=weighted).notna().all(axis=None)
        assert ee[[c for c in weighted if "frac" not in c]].notna().all(axis=None)


def test_sao_miguel_population_sums():
    # exactextractr's vignette: summing GPW's counts over the concelhos loses the
    # coastal cells' people outside the polygons (about 9 %), while the density
    # times each covered cell's spherical area (km²) recovers the island's total
    pop = wr.Raster.read(POP)
    total = float(pop.array[pop.array != pop.nodata].sum())
    counts = wr.exactextract_reference(concelhos(), POP, ["sum"])["sum"].sum()
    assert 0.85 * total < counts < 0.95 * total
    by_area = wr.exactextract_reference(
        concelhos(), DENSITY, ["sum"], coverage_weight="area_spherical_km2"
    )["sum"].sum()
    assert by_area == pytest.approx(total, rel=1e-3)


@pytest.mark.parametrize(
    ("values", "weights", "coverage_weight"),
    [(DEM, POP, "fraction"), (POP, DEM, "area_spherical_km2"), (CLC, POP, "none")],
)
def test_sao_miguel_pixels_match_lookups(values, weights, coverage_weight):
    # exactextract's per-cell values, weights, cell ids and coverage are what the
    # brute force derives from the arrays: the resampling rule of nested grids
    z = concelhos().iloc[[0, 4]]
    px = wr.exactextract_pixels(
        z, values, weights=weights, coverage_weight=coverage_weight, default_weight=-1
    )
    v, w = wr.Raster.read(values), wr.Raster.read(weights)
    x, xdef = v.lookup(px["center_x"], px["center_y"])
    assert xdef.all()
    np.testing.assert_array_equal(px["values"].to_numpy(), x)
    wv, wdef = w.lookup(px["center_x"], px["center_y"])
    np.testing.assert_array_equal(px["weights"].to_numpy(), np.where(wdef, wv, -1))
    row, col = v.cell_of(px["center_x"], px["center_y"])
    np.testing.assert_array_equal(
        px["cell_id"].to_numpy(), row * v.array.shape[1] + col
    )
    cells = wr.exactextract_cells(z, values, weights=weights)
    # the same cells, in the same order, less those with undefined values
    keep = v.lookup(cells["center_x"], cells["center_y"])[1]
    c = wr.cell_weights(
        cells["coverage"].to_numpy()[keep],
        cells["center_y"].to_numpy()[keep],
        coverage_weight,
        wr.common_resolution(v, w),
    )
    np.testing.assert_array_equal(px["coverage"].to_numpy(np.float32), c)


def test_sao_miguel_group_by_dissolves_first():
    z = concelhos().reset_index()
    middle = (z.geometry.bounds["minx"] + z.geometry.bounds["maxx"]) / 2
    z["side"] = np.where(middle < -25.5, "west", "east")
    ops = ["count", "sum", "mean", "median", "majority"]
    ee = wr.exactextract_reference(z, DEM, ops, group_by="side")
    cells = wr.exactextract_cells(z, DEM, group_by="side")
    assert_frames_close(wr.brute_force(cells, DEM, ops, zones=list(ee.index)), ee)
    assert list(ee.index) == ["east", "west"]
    # adjacent concelhos: pooling the features' counts gives the dissolved count
    each = wr.exactextract_reference(z, DEM, ["count"]).groupby(z["side"].values).sum()
    np.testing.assert_allclose(each["count"], ee["count"], rtol=1e-6)
