"""Coverage kinds, weights rasters and exactextract's vocabulary against
exactextract 0.3 (``weighted_reference.exactextract_reference``) and the
float64 brute force, for several chunkings and ``split_every=2``.

Tolerances: zonal_dask's coverage fractions are the exact areas rounded to
float32 (checked against GEOS below); exactextract's own fractions are off by
up to about 1e-8 of a cell on a few cells in a thousand (its arithmetic), so
sums and moments agree to 1e-7 relative, and the per-class fractions of tiny
shares to 1e-9 absolute.
"""

from __future__ import annotations

import functools
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

import zonal_dask as zd

from . import weighted_reference as wr
from .test_coverage_fractions import NOISE, SHAPE, polygons
from .test_weighted_reference import (
    ALL,
    CASES,
    FRACTION,
    HALF,
    NONE,
    UNIT,
    UNWEIGHTED,
    V2,
    W2,
    W_FINE,
    WHOLE,
    A,
    V,
    W,
    assert_frames_close,
    concelhos,
    zones,
)

pytest.importorskip("exactextract")

RTOL, ATOL = 1e-7, 1e-9
OPTIONS = ("default_value", "default_weight", "min_coverage_frac")


def dataarray(raster: wr.Raster, crs: str = "EPSG:32633") -> xr.DataArray:
    rows, cols = raster.array.shape
    t = raster.transform
    array = xr.DataArray(
        raster.array,
        dims=("y", "x"),
        coords={
            "y": t.f + (np.arange(rows) + 0.5) * t.e,
            "x": t.c + (np.arange(cols) + 0.5) * t.a,
        },
    )
    array = array.rio.write_crs(crs).rio.write_transform(t)
    return array if raster.nodata is None else array.rio.write_nodata(raster.nodata)


def as_input(raster, crs="EPSG:32633"):
    return dataarray(raster, crs) if isinstance(raster, wr.Raster) else raster


def ours(frame, values, ops, *, weights=None, coverage_weight="fraction", **kw):
    """zonal_dask with exactextract's operation names and options."""
    options = {k: kw.pop(k) for k in OPTIONS if k in kw}
    crs = str(frame.crs)
    return zd.zonal_stats(
        frame,
        as_input(values, crs),
        ops,
        coverage=coverage_weight,
        weights=None if weights is None else as_input(weights, crs),
        **options,
        **kw,
    )


def assert_close(table: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert_frames_close(table, expected, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------------
# 3 x 3 hand examples (answers worked out in test_weighted_reference.py)


@pytest.mark.parametrize("chunks", [1, 2, None])
@pytest.mark.parametrize(
    ("coverage_weight", "expected"), [("fraction", FRACTION), ("none", NONE)]
)
def test_hand_example_every_operation(chunks, coverage_weight, expected):
    values, weights = wr.Raster(V, UNIT), wr.Raster(W, UNIT)
    table = ours(
        A,
        values,
        ALL,
        weights=weights,
        coverage_weight=coverage_weight,
        chunks=chunks,
        split_every=2,
    )
    for name, value in expected.items():
        assert table[name].iloc[0] == pytest.approx(value, rel=1e-12), name
    reference = wr.exactextract_reference(
        A, values, ALL, weights=weights, coverage_weight=coverage_weight
    )
    assert_close(table, reference)


def test_hand_example_integer_quantiles_in_the_rasters_type():
    values = wr.Raster(V.astype(np.int32), UNIT)
    table = ours(A, values, UNWEIGHTED, chunks=2, split_every=2)
    assert_close(table, wr.exactextract_reference(A, values, UNWEIGHTED))
    assert table.loc[0, ["median", "quantile_10", "quantile_25"]].tolist() == [5, 2, 3]
    # without coverage weighting, numpy's quantiles of the pixels
    plain = zd.zonal_stats(WHOLE, dataarray(values), ["median", "p10"])
    assert plain.loc[0].tolist() == [5.0, np.quantile(np.arange(1, 10), 0.1)]


@pytest.mark.parametrize(
    "options",
    [{}, {"default_weight": 0.5}, {"default_value": 0, "default_weight": 0.5}],
)
@pytest.mark.parametrize("chunks", [2, None])
def test_hand_example_nodata_and_defaults(options, chunks):
    values, weights = wr.Raster(V2, UNIT, nodata=-9), wr.Raster(W2, UNIT)
    table = ours(
        WHOLE, values, ALL, weights=weights, chunks=chunks, split_every=2, **options
    )
    assert_close(
        table, wr.exactextract_reference(WHOLE, values, ALL, weights=weights, **options)
    )
    weighted = [c for c in table.columns if c.startswith("weighted")]
    assert table[weighted].isna().all(axis=None) == (not options)


@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.6])
def test_hand_example_min_coverage_frac(threshold):
    values = wr.Raster(V, UNIT)
    table = ours(A, values, UNWEIGHTED, min_coverage_frac=threshold, chunks=2)
    reference = wr.exactextract_reference(
        A, values, UNWEIGHTED, min_coverage_frac=threshold
    )
    assert_close(table, reference)


@pytest.mark.parametrize("chunks", [1, 5, None])
def test_hand_example_finer_weights_grid(chunks):
    two = zones(shapely.box(0, 0, 1, 1), shapely.box(0.5, 0, 1, 1))
    values, weights = wr.Raster(V, UNIT), wr.Raster(W_FINE, HALF)
    table = ours(two, values, ALL, weights=weights, chunks=chunks, split_every=2)
    assert_close(table, wr.exactextract_reference(two, values, ALL, weights=weights))
    assert table["count"].tolist() == [4.0, 2.0]  # fine cells, as exactextract
    area = ours(
        two, values, ["count", "sum"], weights=weights, coverage_weight="area_cartesian"
    )
    assert area["count"].tolist() == [1.0, 0.5]


def test_hand_example_spherical_area():
    one = wr.Raster(np.ones((1, 1)), Affine(1, 0, 0, 0, -1, 1))
    geo = gpd.GeoDataFrame(
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(0, 0, 0.5, 1)], crs="EPSG:4326"
    )
    for kind in ("area_spherical_m2", "area_spherical_km2", "area_cartesian"):
        table = ours(geo, one, ["count", "sum"], coverage_weight=kind)
        reference = wr.exactextract_reference(
            geo, one, ["count", "sum"], coverage_weight=kind
        )
        assert_close(table, reference)
    table = ours(geo, one, ["count"], coverage_weight="area_spherical_m2")
    assert table["count"].iloc[0] == 12391399424.0  # float32, as exactextract


# ---------------------------------------------------------------------------
# São Miguel: real rasters on nested lon/lat grids


SAO_MIGUEL = {
    "dem": 37,
    "dem-none": 64,
    "dem-pop": 37,
    "dem-pop-none": 50,
    "pop-dem-default": 100,
    "clc-pop-none": 700,
    "density-km2": 13,
    "density-cartesian": 7,
    "dem-thresholds": 37,
}


@functools.cache
def reference(case: str) -> pd.DataFrame:
    values, weights, ops, options = CASES[case]
    return wr.exactextract_reference(
        concelhos(), values, ops, weights=weights, **options
    )


@pytest.mark.parametrize("case", list(SAO_MIGUEL))
def test_sao_miguel_matches_exactextract(case):
    values, weights, ops, options = CASES[case]
    if case.startswith("clc"):  # CORINE: the weighted operations of its classes
        wanted = {"count", "sum", "mean", "majority", "minority", "variety", "frac"}
        wanted |= {"weighted_frac", "weighted_sum", "weighted_mean"}
        ops = [op for op in ops if op in wanted]
    expected = reference(case)[[c for c in reference(case) if _kept(c, ops)]]
    for chunks, split_every in ((None, 8), (SAO_MIGUEL[case], 2)):
        table = ours(
            concelhos(),
            values,
            ops,
            weights=weights,
            chunks=chunks,
            split_every=split_every,
            **options,
        )
        assert_close(table, expected)


def _kept(column: str, ops: list[str]) -> bool:
    return any(column == op or column.startswith(f"{op}_") for op in ops) or (
        column.startswith("quantile_") and any("quantile" in op for op in ops)
    )


def test_sao_miguel_population_weighted_elevation_by_hand():
    # the population-weighted mean elevation of each concelho from the brute
    # force's definitions, with population on its own (coarser) grid
    values, weights, _, options = CASES["dem-pop-default"]
    ops = ["weighted_mean", "weighted_sum", "mean"]
    cells = wr.exactextract_cells(concelhos(), values, weights=weights)
    expected = wr.brute_force(
        cells, values, ops, weights=weights, zones=list(concelhos().index), **options
    )
    assert_close(ours(concelhos(), values, ops, weights=weights, **options), expected)


# ---------------------------------------------------------------------------
# exactextract's vocabulary and ours


def test_weighted_and_unweighted_majority_break_ties_differently():
    ties = wr.Raster(np.array([[1.0, 2.0], [2.0, 1.0]]), Affine(1, 0, 0, 0, -1, 2))
    box = zones(shapely.box(0, 0, 2, 2))
    plain = zd.zonal_stats(box, dataarray(ties), ["majority", "minority"])
    assert plain.loc[0].tolist() == [1.0, 1.0]  # rasterstats: the smallest
    weighted = ours(box, ties, ["majority", "minority"])
    assert weighted.loc[0].tolist() == [2.0, 1.0]  # exactextract: the largest
    assert_close(
        weighted, wr.exactextract_reference(box, ties, ["majority", "minority"])
    )


def test_centres_of_extremes_without_coverage_are_the_first_pixel_row_by_row():
    values = np.array([[5.0, 1.0, 9.0], [1.0, 9.0, 3.0], [7.0, 8.0, 1.0]])
    raster = dataarray(wr.Raster(values, UNIT))
    names = ["min_center_x", "min_center_y", "max_center_x", "max_center_y"]
    for chunks in (1, 2, None):
        table = zd.zonal_stats(WHOLE, raster, names, chunks=chunks, split_every=2)
        assert table.loc[0].tolist() == [1.5, 2.5, 2.5, 2.5]


def test_frac_without_coverage_is_the_share_of_pixels():
    values = wr.Raster(np.array([[1.0, 1.0, 2.0]] * 3), UNIT)
    table = zd.zonal_stats(
        zones(shapely.box(0, 0, 3, 3), shapely.box(10, 10, 11, 11)),
        dataarray(values),
        ["frac", "count"],
    )
    assert table.loc[0, ["frac_1", "frac_2"]].tolist() == [6 / 9, 3 / 9]
    assert table.loc[1, ["frac_1", "frac_2"]].isna().all()


def test_weights_without_coverage_weigh_the_centre_rule_pixels():
    values, weights = wr.Raster(V, UNIT), wr.Raster(W, UNIT)
    table = zd.zonal_stats(
        WHOLE,
        dataarray(values),
        ["count", "weighted_sum", "weighted_mean"],
        weights=dataarray(weights),
    )
    assert table.loc[0].tolist() == [9, 6 + 30, 36 / 9]


# ---------------------------------------------------------------------------
# refusals


def test_incompatible_weights_are_a_grid_error_naming_both(tmp_path):
    values = dataarray(wr.Raster(V, UNIT))
    for transform in (Affine(1, 0, 0.3, 0, -1, 3), Affine(1.5, 0, 0, 0, -1.5, 3)):
        weights = dataarray(wr.Raster(np.ones((3, 3)), transform))
        with pytest.raises(zd.GridError, match=r"not compatible.*DataArray.*DataArray"):
            zd.zonal_stats(A, values, ["weighted_mean"], weights=weights)
    other_crs = dataarray(wr.Raster(W, UNIT), crs="EPSG:32634")
    with pytest.raises(zd.GridError, match="differ in CRS"):
        zd.zonal_stats(A, values, ["weighted_mean"], weights=other_crs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stats": ["weighted_mean"]}, "'weighted_mean' needs a weights raster"),
        ({"default_weight": 1}, "default_weight needs a weights raster"),
        ({"min_coverage_frac": 0.5}, "min_coverage_frac needs coverage"),
        ({"coverage": "area"}, "unknown coverage 'area'"),
        ({"coverage": "fraction", "min_coverage_frac": 2}, "between 0 and 1"),
        ({"coverage": "fraction", "stats": ["mad"]}, "'mad' needs unweighted"),
        ({"weights": "coverage", "coverage": "none"}, "means coverage='fraction'"),
        ({"group_by": "g", "zone_id": "g"}, "group_by='g' with zone_id='g' needs"),
    ],
)
def test_options_that_do_not_go_together(kwargs, message):
    values = dataarray(wr.Raster(V, UNIT))
    with pytest.raises(zd.ZonalError, match=message):
        zd.zonal_stats(A.assign(g=[1]), values, **kwargs)


def test_bad_weights_and_defaults_are_refused():
    values = dataarray(wr.Raster(V, UNIT))
    negative = dataarray(wr.Raster(-W, UNIT))
    with pytest.raises(zd.RasterError, match=r"weight -1\.0 is negative"):
        zd.zonal_stats(A, values, ["weighted_mean"], weights=negative)
    with pytest.raises(zd.NodataError, match=r"default_value 1\.5 is not a value"):
        zd.zonal_stats(
            A, dataarray(wr.Raster(V.astype(np.int32), UNIT)), default_value=1.5
        )
    wide = dataarray(wr.Raster(np.ones((5, 5)), Affine(1, 0, -1, 0, -1, 4)))
    with pytest.raises(zd.GridError, match="beyond"):
        zd.zonal_stats(A, values, ["weighted_mean"], weights=wide, default_value=0)
    with pytest.raises(zd.CRSError, match="longitude/latitude"):
        zd.zonal_stats(A, values, coverage="area_spherical_m2")


def test_weights_beyond_the_values_and_short_of_them():
    # a weights raster larger than the values (cropped) and one that stops
    # short (undefined weights beyond it), against exactextract
    values = wr.Raster(V, UNIT)
    wide = wr.Raster(np.arange(25.0).reshape(5, 5), Affine(1, 0, -1, 0, -1, 4))
    short = wr.Raster(np.ones((2, 2)), Affine(1, 0, 0, 0, -1, 3))
    ops = ["count", "weighted_sum", "weighted_mean"]
    for weights, options in ((wide, {}), (short, {}), (short, {"default_weight": 2})):
        table = ours(A, values, ops, weights=weights, chunks=2, **options)
        reference = wr.exactextract_reference(
            A, values, ops, weights=weights, **options
        )
        assert_close(table, reference)


def test_a_zone_whose_weights_are_all_zero():
    zero = wr.Raster(np.zeros((3, 3)), UNIT)
    table = ours(A, wr.Raster(V, UNIT), ["weighted_sum", "weighted_mean"], weights=zero)
    assert table["weighted_sum"].iloc[0] == 0.0
    assert math.isnan(table["weighted_mean"].iloc[0])


# ---------------------------------------------------------------------------
# group_by: the numbers of the dissolved zones, without dissolving


def sides() -> gpd.GeoDataFrame:
    z = concelhos().reset_index()
    middle = (z.geometry.bounds["minx"] + z.geometry.bounds["maxx"]) / 2
    return z.assign(side=np.where(middle < -25.5, "west", "east"))


@pytest.mark.parametrize(
    "options",
    [
        {"coverage_weight": "fraction"},
        {"coverage_weight": "none"},
        {"coverage_weight": "fraction", "min_coverage_frac": 0.5},
    ],
)
def test_group_by_gives_the_dissolved_zones_numbers_under_coverage(options):
    ops = ["count", "sum", "mean", "stdev", "median", "majority", "frac"]
    values = CASES["dem"][0]
    frame = sides()
    expected = wr.exactextract_reference(frame, values, ops, group_by="side", **options)
    for chunks in (None, 29):
        table = ours(
            frame, values, ops, group_by="side", chunks=chunks, split_every=2, **options
        )
        assert_frames_close(table, expected, rtol=1e-6, atol=1e-9)
    # pooling per feature (no group_by, summed) would count split cells twice
    if options["coverage_weight"] == "none":
        each = ours(sides(), values, ["count"], **options)["count"]
        assert (each.groupby(sides()["side"].values).sum() > expected["count"]).all()


@pytest.mark.parametrize("all_touched", [False, True])
def test_group_by_gives_the_dissolved_zones_pixels(all_touched):
    values = CASES["dem"][0]
    stats = ["count", "sum", "mean", "std", "min", "max", "median", "majority"]
    dissolved = sides().dissolve("side")
    expected = zd.zonal_stats(dissolved, values, stats, all_touched=all_touched)
    for chunks in (None, 31):
        table = zd.zonal_stats(
            sides(),
            values,
            stats,
            group_by="side",
            all_touched=all_touched,
            chunks=chunks,
            split_every=2,
        )
        assert list(table.index) == ["east", "west"] and table.index.name == "side"
        np.testing.assert_allclose(table, expected, rtol=1e-12)


def test_group_by_counts_overlapping_features_of_a_zone_once():
    # two overlapping squares of zone "a" and one of "b" over the 3 x 3 grid
    frame = zones(
        shapely.box(0, 0, 2, 2), shapely.box(0.5, 0.5, 3, 3), shapely.box(1, 1, 3, 2)
    ).assign(g=["a", "a", "b"])
    values = wr.Raster(V, UNIT)
    ops = ["count", "sum", "mean", "majority"]
    for coverage in ("fraction", "none"):
        table = ours(frame, values, ops, coverage_weight=coverage, group_by="g")
        reference = wr.exactextract_reference(
            frame, values, ops, coverage_weight=coverage, group_by="g"
        )
        assert_close(table, reference)
    dissolved = frame.dissolve("g")
    centre = zd.zonal_stats(frame, dataarray(values), ops, group_by="g", chunks=2)
    expected = zd.zonal_stats(dissolved, dataarray(values), ops)
    np.testing.assert_allclose(centre, expected, rtol=1e-12)


def test_group_by_refuses_features_without_a_group():
    frame = zones(shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)).assign(
        g=["a", None]
    )
    with pytest.raises(zd.IdFieldError, match="field 'g' is empty for feature 1"):
        zd.zonal_stats(frame, dataarray(wr.Raster(V, UNIT)), group_by="g")


# ---------------------------------------------------------------------------
# the per-pixel table and the command line


@pytest.mark.parametrize(
    ("values", "weights", "coverage_weight"),
    [
        (CASES["dem"][0], CASES["dem-pop"][1], "fraction"),
        (CASES["pop-dem"][0], CASES["pop-dem"][1], "area_spherical_km2"),
    ],
)
def test_zonal_pixels_are_exactextracts_cells(values, weights, coverage_weight):
    z = concelhos().iloc[[0, 4]]
    expected = wr.exactextract_pixels(
        z, values, weights=weights, coverage_weight=coverage_weight, default_weight=-1
    )
    frame = zd.zonal_pixels(
        z, values, weights=weights, coverage=coverage_weight, chunks=50
    )
    assert frame.npartitions > 1
    table = frame.compute()
    order = ["name", "cell_id", "center_y", "center_x"]
    table = table.sort_values(order, ascending=[True, True, False, True])
    expected = expected.rename(columns={"zone": "name"}).sort_values(
        order, ascending=[True, True, False, True]
    )
    assert list(table.columns) == list(expected.columns)
    assert table["name"].tolist() == expected["name"].tolist()
    np.testing.assert_array_equal(table["values"], expected["values"])
    np.testing.assert_array_equal(table["cell_id"], expected["cell_id"])
    np.testing.assert_array_equal(
        table["weights"].fillna(-1), expected["weights"].astype(float)
    )
    np.testing.assert_allclose(table["coverage"], expected["coverage"], atol=1e-7)
    for axis in ("center_x", "center_y"):
        np.testing.assert_allclose(table[axis], expected[axis], rtol=0, atol=1e-9)
    # the statistics read the same pixels (on the same common grid)
    stats = zd.zonal_stats(
        z, values, ["count", "sum"], coverage=coverage_weight, weights=weights
    )
    c = table["coverage"].astype(float)
    by_zone = table.assign(c=c, x=table["values"] * c).groupby("name")[["c", "x"]].sum()
    np.testing.assert_allclose(by_zone["c"], stats["count"], rtol=1e-9)
    np.testing.assert_allclose(by_zone["x"], stats["sum"], rtol=1e-9)


def nested_boxes(depth: int) -> gpd.GeoDataFrame:
    """``depth`` boxes one inside the other, off the pixel edges."""
    boxes = [shapely.box(3.3 + i, 4.6 + i, 55.2 - i, 50.7 - i) for i in range(depth)]
    return gpd.GeoDataFrame(geometry=boxes, crs="EPSG:32633")


@pytest.mark.parametrize("depth", [3, 8])
@pytest.mark.parametrize("coverage", [None, "fraction"])
def test_zonal_pixels_of_nested_zones_are_exactextracts_cells(depth, coverage):
    # 32² chunks under 3 or more layers: burnt in pieces (``BurntPieces``)
    raster = wr.Raster(
        np.random.default_rng(depth).normal(size=(60, 70)), Affine(1, 0, 0, 0, -1, 60)
    )
    frame = nested_boxes(depth)
    table = zd.zonal_pixels(frame, dataarray(raster), chunks=32, coverage=coverage)
    table = table.compute().rename(columns={"fid": "zone"})
    cells = wr.exactextract_pixels(frame, raster, coverage_weight="fraction")
    if coverage is None:  # the centre rule: exactextract's cells centred inside
        polygons = frame.geometry.values[cells["zone"].to_numpy(int)]
        inside = shapely.contains_xy(polygons, cells["center_x"], cells["center_y"])
        cells = cells[inside].assign(coverage=np.float32(1))
    table, cells = (
        t.astype({"zone": int}).sort_values(["zone", "cell_id"], ignore_index=True)
        for t in (table, cells)
    )
    assert table["zone"].value_counts().sort_index().tolist() == (
        cells["zone"].value_counts().sort_index().tolist()
    )
    np.testing.assert_array_equal(table["cell_id"], cells["cell_id"])
    np.testing.assert_array_equal(table["values"], cells["values"])
    np.testing.assert_allclose(table["coverage"], cells["coverage"], atol=1e-7)
    for axis in ("center_x", "center_y"):
        np.testing.assert_allclose(table[axis], cells[axis], rtol=0, atol=1e-9)


def test_zonal_pixels_list_the_touched_pixels_small_zones_take():
    values = np.arange(60 * 70, dtype=float).reshape(60, 70)
    raster = dataarray(wr.Raster(values, Affine(1, 0, 0, 0, -1, 60)))
    frame = gpd.GeoDataFrame(
        geometry=[
            shapely.box(3.3, 4.6, 30.2, 20.7),
            shapely.box(10.1, 10.1, 10.3, 10.4),  # inside one pixel
            shapely.box(31.9, 26.5, 32.1, 29.5),  # between centres, over 4 chunks
            # one centre in one chunk, touching the next: no stand-in there
            shapely.box(31.2, 31.2, 32.4, 31.8),
        ],
        crs="EPSG:32633",
    )
    options = {"small": "touched", "chunks": 32}
    stats = zd.zonal_stats(frame, raster, ["count", "sum"], **options)
    assert stats["small"].tolist() == [False, True, True, False]
    table = zd.zonal_pixels(frame, raster, **options).compute()
    by_zone = table.groupby("fid")["values"].agg(["count", "sum"])
    np.testing.assert_array_equal(by_zone["count"], stats["count"])
    np.testing.assert_array_equal(by_zone["sum"], stats["sum"])
    touched = zd.zonal_pixels(frame, raster, all_touched=True, chunks=32).compute()
    for zone in (1, 2):
        cells = table.loc[table["fid"] == zone, "cell_id"]
        assert sorted(cells) == sorted(touched.loc[touched["fid"] == zone, "cell_id"])


def test_the_command_lists_the_pixels_its_small_zones_take(tmp_path):
    from zonal_dask.cli.main import main

    values = np.arange(60 * 70, dtype=np.float32).reshape(60, 70)
    raster = dataarray(wr.Raster(values, Affine(1, 0, 0, 0, -1, 60)))
    raster.rio.to_raster(tmp_path / "grid.tif")
    zones = gpd.GeoDataFrame(
        geometry=[
            shapely.box(3.3, 4.6, 30.2, 20.7),
            shapely.box(10.1, 10.1, 10.3, 10.4),
        ],
        crs="EPSG:32633",
    )
    zones.to_file(tmp_path / "zones.gpkg", engine="pyogrio")
    output, pixels = tmp_path / "stats.csv", tmp_path / "pixels.parquet"
    args = [str(tmp_path / n) for n in ("zones.gpkg", "grid.tif")]
    flags = ["--small", "touched", "--pixels", str(pixels), "--stats", "count,sum"]
    assert main([*args, str(output), *flags, "-q"]) == 0
    table = pd.read_csv(output, index_col="fid")
    listed = pd.read_parquet(pixels).groupby("fid")["values"].agg(["count", "sum"])
    assert table["small"].tolist() == [False, True]
    np.testing.assert_array_equal(listed["count"], table["count"])
    np.testing.assert_array_equal(listed["sum"], table["sum"])


def test_zonal_pixels_without_coverage_are_the_centre_rule_pixels():
    frame = zones(shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)).assign(g=[5, 6])
    table = zd.zonal_pixels(frame, dataarray(wr.Raster(V, UNIT)), zone_id="g")
    table = table.compute()
    assert table.groupby("g")["values"].apply(sorted).tolist() == [
        [4.0, 5.0, 7.0, 8.0],
        [2.0, 3.0, 5.0, 6.0],
    ]
    assert (table["coverage"] == 1).all() and "weights" not in table


def test_the_command_line_takes_every_option(tmp_path):
    from zonal_dask.cli.main import main

    zones_path = tmp_path / "sides.gpkg"
    sides().to_file(zones_path, engine="pyogrio")
    dem, pop = (str(CASES["dem-pop"][i]) for i in (0, 1))
    runs = {
        "none": (["--coverage", "none"], {"coverage": "none"}),
        "fraction": (["--coverage"], {"coverage": "fraction"}),
        "weights": (
            ["--weights", pop, "--default-weight", "0", "--coverage"],
            {"weights": pop, "default_weight": 0, "coverage": "fraction"},
        ),
        "threshold": (
            ["--coverage", "--min-coverage-frac", "0.5", "--default-value", "0"],
            {"coverage": "fraction", "min_coverage_frac": 0.5, "default_value": 0},
        ),
        "groups": (["--group-by", "side"], {"group_by": "side"}),
    }
    stats = ["count", "mean", "median", "majority"]
    for name, (flags, kwargs) in runs.items():
        wanted = stats + (["weighted_mean"] if "weights" in kwargs else [])
        out = tmp_path / f"{name}.csv"
        argv = [str(zones_path), dem, str(out), "--stats", ",".join(wanted), *flags]
        assert main(["-q", *argv]) == 0, name
        expected = zd.zonal_stats(zones_path, dem, wanted, **kwargs)
        table = pd.read_csv(out, index_col=expected.index.name)
        pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    pixels = tmp_path / "pixels.parquet"
    out = tmp_path / "stats.csv"
    argv = [str(zones_path), dem, str(out), "--coverage", "--pixels", str(pixels)]
    assert main(["-q", *argv]) == 0
    assert pixels.is_dir() and len(list(pixels.glob("*.parquet"))) >= 1
    table = pd.read_parquet(pixels)
    counts = table.assign(c=table["coverage"].astype(float)).groupby("fid")["c"].sum()
    np.testing.assert_allclose(counts, pd.read_csv(out, index_col="fid")["count"])
    assert main(["-q", *argv]) == 1  # exists: refused
    assert main(["-q", *argv, "--overwrite"]) == 0
    # a time series (several rasters) takes it too, each step as one raster
    series = [str(zones_path), dem, dem, str(tmp_path / "s.parquet"), "--coverage"]
    assert main(["-q", *series]) == 0
    steps = pd.read_parquet(tmp_path / "s.parquet")
    alone = pd.read_csv(out, index_col="fid")["count"].to_numpy()
    for t in (0, 1):
        got = steps[steps["time"] == t]["count"].to_numpy()
        np.testing.assert_allclose(got, alone, rtol=1e-12)


def test_weights_on_every_route_and_band():
    from .synth import make_grid, voronoi_zones, zones_frame

    grid = make_grid((30, 44), seed=5, nan_fraction=0.05)
    weights_grid = make_grid((15, 22), seed=6, nodata=None, loc=10, scale=2)
    coarse = grid.transform * Affine.scale(2)
    weights = dataarray(wr.Raster(np.abs(weights_grid.values), coarse))
    frame = zones_frame(voronoi_zones(grid, 7, seed=5))  # a partition: one label
    raster = grid.to_dataarray()
    stats = ["count", "weighted_mean", "weighted_std", "weighted_frac"]
    polygons = zd.zonal_stats(frame, raster, stats, weights=weights, chunks=8)
    labels = zd.rasterize_zones(frame, raster)
    by_label = zd.zonal_stats(labels, raster, stats, weights=weights, chunks=8)
    plan = zd.zonal_stats(
        zd.ZonePlan(frame, like=raster), raster, stats, weights=weights
    )
    found = polygons[polygons["count"] > 0]
    np.testing.assert_allclose(by_label.to_numpy(), found.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(plan.to_numpy(), polygons.to_numpy(), rtol=1e-12)
    # a stack of two bands: each band as the one-band call gives it
    stack = xr.concat([raster, raster], dim="band").assign_coords(band=[1, 2])
    both = zd.zonal_stats(frame, stack, stats[:3], weights=weights, band=None, chunks=8)
    np.testing.assert_allclose(
        both.sel(band=1)["weighted_mean"], polygons["weighted_mean"], rtol=1e-12
    )
    np.testing.assert_allclose(
        both.sel(band=2)["weighted_std"], polygons["weighted_std"], rtol=1e-12
    )
    finer = dataarray(wr.Raster(np.ones((60, 88)), grid.transform * Affine.scale(0.5)))
    with pytest.raises(zd.GridError, match="need a weights raster on the value"):
        zd.zonal_stats(labels, raster, stats, weights=finer)


def test_group_by_outside_fraction_is_the_dissolved_zones():
    frame = sides()
    dem = CASES["dem"][0]
    pooled = zd.zonal_stats(frame, dem, ["outside_fraction"], group_by="side")
    dissolved = zd.zonal_stats(frame.dissolve("side"), dem, ["outside_fraction"])
    np.testing.assert_allclose(pooled, dissolved, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# hypothesis: random polygons, values, coverage kinds and chunkings


def geos_cells(frame: gpd.GeoDataFrame, raster: wr.Raster) -> pd.DataFrame:
    """``weighted_reference.exactextract_cells``' table from GEOS: each cell a
    zone covers (more than the kernel's noise floor), its fraction and centre."""
    rows, cols = np.indices(raster.array.shape)
    t = raster.transform
    x0, y0 = t * (cols, rows)
    x1, y1 = t * (cols + 1, rows + 1)
    cells = shapely.box(x0, y1, x1, y0).ravel()
    parts = []
    for zone, geometry in zip(frame.index, frame.geometry, strict=True):
        fraction = shapely.area(shapely.intersection(geometry, cells)) / abs(t.a * t.e)
        keep = fraction > NOISE
        centre = shapely.centroid(cells[keep])
        parts.append(
            pd.DataFrame(
                {
                    "zone": zone,
                    "coverage": fraction[keep].astype(np.float32),
                    "center_x": shapely.get_x(centre),
                    "center_y": shapely.get_y(centre),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@settings(max_examples=20, deadline=None, database=None)
@given(
    st.lists(polygons(), min_size=1, max_size=3),
    st.sampled_from(["fraction", "none", "area_cartesian"]),
    st.integers(1, 13),
    st.integers(1, 17),
    st.integers(0, 2**32 - 1),
)
def test_random_polygons_and_chunkings_match_the_brute_force(
    geometries, kind, rows, cols, seed
):
    """Against the brute force from GEOS's areas (exactextract 0.3 crashes on
    some of these polygons, so it is not run here)."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(50, 10, SHAPE), 1)  # repeated values: ties
    values[rng.random(SHAPE) < 0.1] = -1
    transform = Affine(2.0, 0, 100.0, 0, -2.0, 200.0)
    raster = wr.Raster(values, transform, nodata=-1)
    frame = zones(
        *(
            shapely.affinity.affine_transform(g, transform.to_shapely())
            for g in geometries
        )
    )
    ops = ["count", "sum", "mean", "stdev", "min", "max", "median", "majority"]
    ops += ["variety", "quantile(q=0.9)", "max_center_x", "min_center_y"]
    expected = wr.brute_force(
        geos_cells(frame, raster),
        raster,
        ops,
        coverage_weight=kind,
        zones=list(frame.index),
    )
    table = ours(
        frame, raster, ops, coverage_weight=kind, chunks=(rows, cols), split_every=2
    )
    covered = expected["count"] > 0
    assert_frames_close(table[covered], expected[covered], rtol=1e-9, atol=1e-12)
    assert (table.loc[~covered, "count"] == 0).all()


def test_the_scheduler_does_not_change_the_numbers(local_cluster):
    values, weights, ops, options = CASES["dem-pop-default"]
    kwargs = dict(weights=weights, coverage="fraction", chunks=37, split_every=2)
    ops = ["count", "mean", "stdev", "median", "quantile(q=0.9)", "majority"]
    ops += ["weighted_mean", "weighted_frac", "min_center_x"]
    threads = zd.zonal_stats(concelhos(), values, ops, **kwargs, **options)
    lazy = zd.zonal_stats(concelhos(), values, ops, compute=False, **kwargs, **options)
    cluster = local_cluster.compute(lazy).result()
    pd.testing.assert_frame_equal(cluster, threads, check_exact=False, rtol=1e-12)
