"""What a user of exactextract, rasterstats or rioxarray expects where
zonal_dask once answered otherwise (issue 22): each checked against the peer
itself or an independent numpy reference."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray
import shapely
from affine import Affine

import zonal_dask as zd
from zonal_dask.cli.main import main
from zonal_dask.statistics.operations import split_names

from .reference import assert_tables_close, centres_inside, reference_stats
from .synth import Grid, make_grid, voronoi_zones, zones_frame

exactextract = pytest.importorskip("exactextract")

# -- scale and offset ---------------------------------------------------------

STORED = make_grid((37, 45), "int16", seed=221, nodata=0, loc=300, scale=90)
SCALED_ZONES = voronoi_zones(STORED, 9, seed=221)


def _scaled_file(tmp_path, scales=(2.0,), offsets=(-1.0,), grid=STORED):
    path = grid.write(tmp_path / "scaled.tif")
    if len(scales) > 1:  # a band stack: the second band stores the same values
        with rasterio.open(path) as src:
            profile = src.profile
        profile.update(count=len(scales))
        with rasterio.open(path, "w", **profile) as dst:
            for b in range(len(scales)):
                dst.write(grid.values, b + 1)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = scales, offsets
    return path


def _decoded(path, band=1) -> Grid:
    """rioxarray's ``mask_and_scale`` reading: the reference's values."""
    array = rioxarray.open_rasterio(path, mask_and_scale=True).isel(band=band - 1)
    return Grid(np.asarray(array.values, np.float64), STORED.transform, None)


@pytest.mark.parametrize("chunks", [None, (8, 11)])
def test_scale_and_offset_applied_as_rioxarray_mask_and_scale(tmp_path, chunks):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    expected = reference_stats(frame.geometry, _decoded(path), frame.index)
    actual = zd.zonal_stats(frame, path, chunks=chunks)
    assert_tables_close(actual, expected)
    # nodata (a stored 0) is left out, not counted as the value -1
    assert (actual["min"] != -1).all()


def test_scale_and_offset_as_exactextract_applies_them(tmp_path):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    stats = ["count", "sum", "mean", "min", "max", "majority"]
    theirs = exactextract.exact_extract(path, frame, stats, output="pandas")
    ours = zd.zonal_stats(frame, path, stats, coverage="fraction")
    for stat in stats:
        np.testing.assert_allclose(
            ours[stat].to_numpy(float), theirs[stat].to_numpy(float), rtol=1e-9
        )


def test_raw_keeps_the_stored_values(tmp_path):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    expected = reference_stats(frame.geometry, STORED, frame.index)
    assert_tables_close(zd.zonal_stats(frame, path, raw=True), expected)
    out_raw, out = tmp_path / "raw.csv", tmp_path / "scaled.csv"
    zones = tmp_path / "zones.gpkg"
    frame.to_file(zones)
    assert main([str(zones), str(path), str(out_raw), "--raw", "-q"]) == 0
    assert main([str(zones), str(path), str(out), "-q"]) == 0
    raw_mean = pd.read_csv(out_raw)["mean"].to_numpy()
    np.testing.assert_allclose(raw_mean, expected["mean"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(
        pd.read_csv(out)["mean"].to_numpy(), 2 * raw_mean - 1, rtol=1e-9
    )


def test_a_nodata_override_is_a_stored_value(tmp_path):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    stored = int(STORED.values[STORED.values != 0][0])
    expected = reference_stats(
        frame.geometry,
        Grid(np.where(STORED.values == stored, np.nan, 2.0 * STORED.values - 1)),
        frame.index,
        nodata=np.nan,
    )
    actual = zd.zonal_stats(frame, path, nodata=stored)
    assert_tables_close(actual, expected)
    # the stored 0 counts now, as -1; the stored `stored` does not
    assert (actual["min"] == -1).any()


def test_each_band_with_its_own_scale(tmp_path):
    path = _scaled_file(tmp_path, scales=(2.0, 0.5), offsets=(-1.0, 10.0))
    frame = zones_frame(SCALED_ZONES)
    every = zd.zonal_stats(frame, path, ["mean", "max"], band=None, chunks=(8, 11))
    for band, (scale, offset) in enumerate([(2.0, -1.0), (0.5, 10.0)], start=1):
        expected = reference_stats(frame.geometry, _decoded(path, band), frame.index)
        one = zd.zonal_stats(frame, path, ["mean", "max"], band=band)
        np.testing.assert_allclose(one["mean"], expected["mean"], rtol=1e-9)
        np.testing.assert_allclose(
            every["mean"].sel(band=band).to_numpy(), expected["mean"], rtol=1e-9
        )
        np.testing.assert_allclose(
            every["max"].sel(band=band).to_numpy(), expected["max"], rtol=1e-9
        )
        stored_max = reference_stats(frame.geometry, STORED, frame.index)["max"]
        np.testing.assert_allclose(one["max"], stored_max * scale + offset)
        # rioxarray's undecoded stack carries per-band `scales` and `offsets`
        with pytest.warns(UserWarning, match="differ across bands"):
            stack = rioxarray.open_rasterio(path)
        taken = zd.zonal_stats(frame, stack, ["mean", "max"], band=band)
        np.testing.assert_allclose(taken["mean"], expected["mean"], rtol=1e-9)


def test_a_dataarray_declaring_scale_factor_is_decoded(tmp_path):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    undecoded = rioxarray.open_rasterio(path)  # scale_factor in its attributes
    assert undecoded.attrs["scale_factor"] == 2.0
    expected = reference_stats(frame.geometry, _decoded(path), frame.index)
    assert_tables_close(zd.zonal_stats(frame, undecoded), expected)
    # decoded by rioxarray already: nothing left to apply
    decoded = rioxarray.open_rasterio(path, mask_and_scale=True)
    assert_tables_close(zd.zonal_stats(frame, decoded), expected, rtol=1e-6)
    raw = zd.zonal_stats(frame, undecoded, raw=True)
    assert_tables_close(raw, reference_stats(frame.geometry, STORED, frame.index))


def test_a_scaled_weights_raster_as_exactextract(tmp_path):
    path = STORED.write(tmp_path / "values.tif")
    weights = make_grid((37, 45), "uint8", seed=222, nodata=None, loc=50, scale=20)
    wpath = _scaled_file(tmp_path, scales=(0.25,), offsets=(3.0,), grid=weights)
    frame = zones_frame(SCALED_ZONES)
    stats = ["weighted_mean", "weighted_sum"]
    theirs = exactextract.exact_extract(
        path, frame, stats, weights=wpath, output="pandas"
    )
    ours = zd.zonal_stats(frame, path, stats, weights=wpath, coverage="fraction")
    for stat in stats:
        np.testing.assert_allclose(ours[stat], theirs[stat], rtol=1e-9)


def test_a_plan_applies_the_scale_too(tmp_path):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    plan = zd.ZonePlan(frame, like=path)
    expected = reference_stats(frame.geometry, _decoded(path), frame.index)
    assert_tables_close(zd.zonal_stats(plan, path), expected)


def test_a_series_of_scaled_files_applies_the_scale(tmp_path):
    path = _scaled_file(tmp_path)
    frame = zones_frame(SCALED_ZONES)
    cube = zd.zonal_series(frame, [path], ["count", "mean"])
    expected = reference_stats(frame.geometry, _decoded(path), frame.index)
    got = pd.DataFrame(
        {c: cube[c].isel(time=0).to_numpy() for c in ("count", "mean")},
        index=expected.index,
    )
    assert_tables_close(got, expected[["count", "mean"]])


# -- weights beside zones off the value raster --------------------------------


def test_weights_with_no_zone_on_the_value_raster_give_nan_rows(tmp_path):
    """A zone outside the value raster but inside the weights raster gets the
    row it gets beside zones that meet the raster (it raised KeyError
    'weighted_mean' alone); the zone on the raster is exactextract's."""
    values = Grid(
        np.arange(16, dtype="float32").reshape(4, 4), Affine(1, 0, 0, 0, -1, 4)
    )
    weights = Grid(
        np.linspace(0.5, 2, 64, dtype="float32").reshape(8, 8),
        Affine(1, 0, 0, 0, -1, 8),
    )
    vpath = values.write(tmp_path / "v.tif", blocksize=None)
    wpath = weights.write(tmp_path / "w.tif", blocksize=None)
    stats = ["count", "mean", "weighted_mean", "weighted_sum", "weighted_stdev"]
    off = zones_frame([shapely.box(1, 5, 3, 7)])
    both = zones_frame([shapely.box(1, 5, 3, 7), shapely.box(0.5, 0.5, 2.5, 2.5)])
    for coverage in (None, "fraction"):
        alone = zd.zonal_stats(off, vpath, stats, weights=wpath, coverage=coverage)
        beside = zd.zonal_stats(both, vpath, stats, weights=wpath, coverage=coverage)
        pd.testing.assert_frame_equal(alone, beside.iloc[:1])
        assert alone["count"].iloc[0] == 0
        assert alone[stats[1:]].isna().all(axis=None)
    theirs = exactextract.exact_extract(
        vpath, both, stats, weights=wpath, output="pandas"
    )
    np.testing.assert_allclose(beside.iloc[1], theirs.iloc[1], rtol=1e-9)


def test_weights_that_miss_the_value_raster_weigh_as_missing(tmp_path):
    """A weights raster wholly beside the value raster (it raised
    ZeroDivisionError in dask's pad): every weight is missing, so the
    weighted statistics are NaN, or weigh default_weight everywhere, as a
    weights raster of that constant on the value raster's grid does in
    exactextract."""
    values = make_grid((12, 10), "float32", seed=223, nodata=-9999.0)
    beside = Grid(
        np.ones((12, 10), "float32"), values.transform * Affine.translation(30, 0)
    )
    constant = Grid(np.full((12, 10), 3.0, "float32"), values.transform)
    vpath = values.write(tmp_path / "v.tif", blocksize=None)
    bpath = beside.write(tmp_path / "beside.tif", blocksize=None)
    cpath = constant.write(tmp_path / "constant.tif", blocksize=None)
    frame = zones_frame(voronoi_zones(values, 4, seed=223))
    stats = ["count", "mean", "weighted_mean", "weighted_sum"]
    missing = zd.zonal_stats(frame, vpath, stats, weights=bpath, coverage="fraction")
    assert missing[["weighted_mean", "weighted_sum"]].isna().all(axis=None)
    assert (missing["count"] > 0).all()
    ours = zd.zonal_stats(
        frame, vpath, stats, weights=bpath, coverage="fraction", default_weight=3
    )
    theirs = exactextract.exact_extract(
        vpath, frame, stats, weights=cpath, output="pandas"
    )
    np.testing.assert_allclose(ours.to_numpy(float), theirs.to_numpy(float), rtol=1e-9)


# -- integer rasters keep their type where a statistic is a pixel value --------

PIXEL_STATS = ["min", "max", "majority", "minority"]


@pytest.mark.parametrize("dtype", ["int32", "uint8", "int16"])
def test_pixel_values_of_integer_rasters_stay_integers(tmp_path, dtype):
    grid = make_grid((29, 33), dtype, seed=224, nodata=0, loc=60, scale=25)
    path = grid.write(tmp_path / "classes.tif")
    cells = voronoi_zones(grid, 6, seed=224)
    frame = zones_frame([*cells, shapely.box(0, 0, 1, 1)])  # the last: no pixel
    stats = ["count", *PIXEL_STATS, "median", "p30", "mean"]
    ours = zd.zonal_stats(frame, path, stats, chunks=(8, 11))
    nullable = pd.api.types.pandas_dtype(dtype.replace("u", "U").replace("i", "I"))
    for stat in PIXEL_STATS:
        assert ours[stat].dtype == nullable, stat
        assert ours[stat].isna().iloc[-1]
    # unweighted median and quantiles interpolate: not pixel values
    assert ours["median"].dtype == ours["p30"].dtype == np.float64
    expected = reference_stats(frame.geometry, grid, frame.index)
    for stat in ("min", "max"):
        np.testing.assert_array_equal(
            ours[stat].to_numpy(float, na_value=np.nan), expected[stat]
        )
    # under coverage, as exactextract gives them (its features hold integers)
    weighted = zd.zonal_stats(frame, path, stats, coverage="fraction")
    features = exactextract.exact_extract(
        path, frame, [*PIXEL_STATS, "median", "quantile(q=0.3)"]
    )
    for stat in [*PIXEL_STATS, "median", "p30"]:
        assert weighted[stat].dtype == nullable, stat
        theirs = [
            f["properties"]["quantile_30" if stat == "p30" else stat] for f in features
        ]
        assert all(isinstance(v, int) for v in theirs[:-1])
        assert weighted[stat].tolist() == [*theirs[:-1], pd.NA]


def test_integer_statistics_in_text_tables(tmp_path):
    grid = make_grid((29, 33), "int32", seed=225, nodata=-1, loc=21, scale=0.3)
    path = grid.write(tmp_path / "classes.tif")
    zones = tmp_path / "zones.gpkg"
    zones_frame([*voronoi_zones(grid, 3, seed=225), shapely.box(0, 0, 1, 1)]).to_file(
        zones
    )
    for suffix in (".csv", ".txt", ".parquet"):
        out = tmp_path / f"out{suffix}"
        args = [str(zones), str(path), str(out), "--stats", "min,majority,mean", "-q"]
        assert main(args) == 0
        if suffix == ".parquet":
            table = pd.read_parquet(out)
            assert str(table["majority"].dtype) == "Int32"
            continue
        rows = out.read_text().splitlines()
        sep = "," if suffix == ".csv" else "\t"
        header = rows[0].split(sep)
        majority = [r.split(sep)[header.index("majority")] for r in rows[1:]]
        assert majority[:-1] == ["21"] * 3 and majority[-1] == ""


def test_wide_integers_and_planes_stay_float(tmp_path):
    """int64 partials are float64 (exact to 2**53), and xarray has no nullable
    integers: those keep float64 with NaN."""
    grid = make_grid((29, 33), "int64", seed=226, nodata=0)
    frame = zones_frame(voronoi_zones(grid, 3, seed=226))
    assert (
        zd.zonal_stats(frame, grid.write(tmp_path / "a.tif"), ["max"])["max"].dtype
        == np.float64
    )
    small = make_grid((29, 33), "uint8", seed=226, nodata=0)
    planes = zd.zonal_stats(frame, small.write(tmp_path / "b.tif"), ["max"], band=None)
    assert planes["max"].dtype == np.float64


# -- geometry collections ------------------------------------------------------


def test_geometry_collections_are_their_parts_by_dimension(tmp_path):
    """What gpd.overlay and make_valid give: a collection of polygons is the
    zone of their union, of lines a MultiLineString, of points a MultiPoint;
    each row equal to the row of that geometry given directly, and under
    coverage to exactextract's."""
    grid = make_grid((40, 50), "float32", seed=227)
    path = grid.write(tmp_path / "v.tif")
    t = grid.transform
    a = shapely.box(*(t @ (3.2, 30.5)), *(t @ (20.7, 4.1)))
    b = shapely.box(*(t @ (15.3, 35.2)), *(t @ (41.6, 12.9)))  # overlaps a
    line = shapely.LineString([t @ (2.5, 2.5), t @ (30.5, 38.5)])
    line2 = shapely.LineString([t @ (40.5, 2.5), t @ (44.5, 30.5)])
    points = [shapely.Point(t @ (5.5, 5.5)), shapely.Point(t @ (9.5, 30.5))]
    nested = shapely.GeometryCollection([a, shapely.GeometryCollection([b])])
    collections = [
        nested,
        shapely.GeometryCollection([line, line2]),
        shapely.GeometryCollection(points),
        shapely.GeometryCollection([shapely.Polygon(), a]),
        shapely.GeometryCollection(),
    ]
    direct = [
        shapely.union_all([a, b]),
        shapely.MultiLineString([line, line2]),
        shapely.MultiPoint(points),
        a,
        None,
    ]
    stats = ["count", "sum", "mean", "min", "max"]
    ours = zd.zonal_stats(zones_frame(collections), path, stats, chunks=(16, 16))
    expected = zd.zonal_stats(zones_frame(direct), path, stats, chunks=(16, 16))
    pd.testing.assert_frame_equal(ours, expected)
    assert (
        ours["count"].iloc[0]
        == reference_stats([direct[0]], grid, ours.index[:1])["count"].iloc[0]
    )
    polygonal = zones_frame([nested, collections[3]])
    theirs = exactextract.exact_extract(
        path, zones_frame([direct[0], a]), stats, output="pandas"
    )
    weighted = zd.zonal_stats(polygonal, path, stats, coverage="fraction")
    np.testing.assert_allclose(
        weighted.to_numpy(float), theirs.to_numpy(float), rtol=1e-9
    )


# -- every misspelt statistic reported at once ---------------------------------


def test_every_misspelt_statistic_is_reported_at_once(tmp_path):
    frame = zones_frame(SCALED_ZONES)
    path = STORED.write(tmp_path / "v.tif")
    expected = (
        r"unknown statistics 'meen' \(did you mean 'mean'\?\), 'mxa' \(did you "
        r"mean 'max'\?\), 'zzzzzz'; valid names: count"
    )
    for stats in (
        ["meen", "count", "mxa", "zzzzzz", "p90"],
        "meen,count mxa zzzzzz",
        {"a": "meen", "b": np.nanmax, "c": "mxa", "d": "zzzzzz"},
    ):
        with pytest.raises(zd.StatisticError, match=expected):
            zd.zonal_stats(frame, path, stats)
    out = tmp_path / "out.csv"
    bad = main([str(tmp_path / "z.gpkg"), str(path), str(out), "--stats", "meen,mxa"])
    assert bad != 0 and not out.exists()


# -- unique: the values, as exactextract; variety: how many ---------------------


@pytest.mark.parametrize("dtype", ["uint8", "int32", "float32"])
def test_unique_is_the_values_and_variety_their_number(tmp_path, dtype):
    grid = make_grid((29, 33), dtype, seed=228, nodata=0, loc=20, scale=3)
    path = grid.write(tmp_path / "classes.tif")
    frame = zones_frame([*voronoi_zones(grid, 5, seed=228), shapely.box(0, 0, 1, 1)])
    ours = zd.zonal_stats(frame, path, ["unique", "variety"], chunks=(8, 11))
    inside = [
        np.unique(grid.values[centres_inside(g, frame.crs, grid) & (grid.values != 0)])
        for g in frame.geometry
    ]
    for got, want in zip(ours["unique"], inside, strict=True):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)
    assert ours["variety"].tolist() == [len(v) for v in inside]
    assert ours["unique"].iloc[-1].size == 0
    # under coverage: exactextract's values (it lists them unordered)
    weighted = zd.zonal_stats(frame, path, ["unique", "variety"], coverage="fraction")
    theirs = exactextract.exact_extract(path, frame, ["unique", "variety"])
    for got, feature in zip(weighted["unique"], theirs, strict=True):
        np.testing.assert_array_equal(got, np.sort(feature["properties"]["unique"]))
    assert weighted["variety"].tolist() == [f["properties"]["variety"] for f in theirs]


def test_unique_in_text_tables_and_parquet(tmp_path):
    grid = make_grid((29, 33), "uint8", seed=229, nodata=0, loc=20, scale=2)
    path = grid.write(tmp_path / "classes.tif")
    frame = zones_frame([*voronoi_zones(grid, 3, seed=229), shapely.box(0, 0, 1, 1)])
    zones = tmp_path / "zones.gpkg"
    frame.to_file(zones)
    expected = zd.zonal_stats(frame, path, ["unique"])["unique"]
    for suffix in (".csv", ".txt", ".gpkg"):
        out = tmp_path / f"out{suffix}"
        assert main([str(zones), str(path), str(out), "--stats", "unique", "-q"]) == 0
        table = (
            gpd.read_file(out)
            if suffix == ".gpkg"
            else pd.read_csv(out, sep="," if suffix == ".csv" else "\t")
        )
        assert [json.loads(v) for v in table["unique"]] == [
            v.tolist() for v in expected
        ]
    out = tmp_path / "out.parquet"
    assert main([str(zones), str(path), str(out), "--stats", "unique", "-q"]) == 0
    assert pd.read_parquet(out)["unique"].map(list).tolist() == [
        v.tolist() for v in expected
    ]


# -- exactextract's operation syntax -------------------------------------------


def test_operation_arguments_and_names_as_exactextract(tmp_path):
    # (seed 230 meets a cell that zone 1 covers by 8.9e-12, which exactextract
    # counts under coverage_weight=none and zonal_dask's kernel does not)
    grid = make_grid((29, 33), "float32", seed=231, nodata=-9999.0)
    path = grid.write(tmp_path / "v.tif")
    frame = zones_frame(voronoi_zones(grid, 5, seed=231))
    for ops, options in [
        (
            ["n=count(min_coverage_frac=0.49)", "mean(min_coverage_frac=0.49)"],
            {"coverage": "fraction"},
        ),
        (
            "count(coverage_weight=none), total=sum(coverage_weight=none), "
            "quantile(q=0.25,coverage_weight=none)",
            {},
        ),
        (["sum(default_value=0)", "count(default_value=0)"], {"coverage": "fraction"}),
        (
            [
                "mean(coverage_weight=area_cartesian, min_coverage_frac=0.2)",
                "p=max(coverage_weight=area_cartesian, min_coverage_frac=0.2)",
            ],
            {},
        ),
    ]:
        listed = split_names(ops) if isinstance(ops, str) else ops  # theirs: a list
        theirs = exactextract.exact_extract(path, frame, listed, output="pandas")
        ours = zd.zonal_stats(frame, path, ops, **options)
        assert list(ours.columns) == list(theirs.columns)
        np.testing.assert_allclose(
            ours.to_numpy(float), theirs.to_numpy(float), rtol=1e-9
        )


def test_operations_with_different_arguments_are_refused(tmp_path):
    path = STORED.write(tmp_path / "v.tif")
    frame = zones_frame(SCALED_ZONES)
    with pytest.raises(zd.StatisticError, match="carry different arguments"):
        zd.zonal_stats(frame, path, ["mean(coverage_weight=none)", "sum"])
    with pytest.raises(zd.StatisticError, match="unknown argument 'foo=1'"):
        zd.zonal_stats(frame, path, ["mean(foo=1)"])
    with pytest.raises(zd.StatisticError, match="coverage='none' and coverage='area"):
        zd.zonal_stats(
            frame, path, ["mean(coverage_weight=none)"], coverage="area_cartesian"
        )


def test_a_series_refuses_unique_arrays_before_reading(tmp_path):
    path = STORED.write(tmp_path / "v.tif")
    with pytest.raises(zd.StatisticError, match="unique gives an array per zone"):
        zd.zonal_series(zones_frame(SCALED_ZONES), [path, path], ["unique", "mean"])


# -- grid_compat_tol ---------------------------------------------------------------


def test_grid_compat_tol_as_exactextract(tmp_path):
    """Weights whose origin is 0.004 of a cell off the values': refused at
    exactextract's default tolerance (0.001) by both, taken with 0.01 by both.
    zonal_dask then places the weights on the value raster's grid: the numbers
    are those of the same weights georeferenced exactly there, and
    exactextract's (its common grid keeps part of the offset) are within it."""
    values = make_grid((20, 24), "float32", seed=232, nodata=-9999.0)
    a, e = values.transform.a, values.transform.e
    weights = np.linspace(1, 3, 44 * 52, dtype="float32").reshape(44, 52)
    stats = ["count", "mean", "weighted_mean"]
    paths = {}
    for name, offset in (("aligned", -1.0), ("shifted", -1.004)):
        origin = values.transform * Affine.translation(offset, -1)
        grid = Grid(weights, Affine(a / 2, 0, origin.c, 0, e / 2, origin.f))
        paths[name] = str(grid.write(tmp_path / f"{name}.tif"))
    vpath = values.write(tmp_path / "v.tif")
    frame = zones_frame(voronoi_zones(values, 4, seed=232))
    with pytest.raises(RuntimeError):
        exactextract.exact_extract(vpath, frame, stats, weights=paths["shifted"])
    with pytest.raises(zd.GridError, match="not compatible"):
        zd.zonal_stats(
            frame, vpath, stats, weights=paths["shifted"], coverage="fraction"
        )
    ours = zd.zonal_stats(
        frame,
        vpath,
        stats,
        weights=paths["shifted"],
        coverage="fraction",
        grid_compat_tol=0.01,
    )
    aligned = zd.zonal_stats(
        frame, vpath, stats, weights=paths["aligned"], coverage="fraction"
    )
    pd.testing.assert_frame_equal(ours, aligned)
    theirs = exactextract.exact_extract(
        vpath,
        frame,
        stats,
        weights=paths["shifted"],
        grid_compat_tol=0.01,
        output="pandas",
    )
    np.testing.assert_allclose(ours.to_numpy(float), theirs.to_numpy(float), rtol=1e-3)
    with pytest.raises(zd.StatisticError, match="grid_compat_tol must be"):
        zd.zonal_stats(
            frame, vpath, stats, weights=paths["shifted"], grid_compat_tol=0.5
        )


# -- custom functions of (values, coverage) ------------------------------------------


def _coverage_weighted_mean(values, coverage):
    return float(np.sum(values * coverage) / np.sum(coverage))


def _summary_text(values, coverage):
    return f"{values.size} cells, {np.sum(coverage):.6f} covered"


def test_functions_of_values_and_coverage_as_exactextract(tmp_path):
    # no nodata: exactextract passes nodata cells masked, with their coverage
    grid = make_grid((29, 33), "float32", seed=233, nodata=None)
    path = grid.write(tmp_path / "v.tif")
    frame = zones_frame([*voronoi_zones(grid, 5, seed=233), shapely.box(0, 0, 1, 1)])
    functions = {"wmean": _coverage_weighted_mean, "text": _summary_text}
    theirs = exactextract.exact_extract(
        path, frame.iloc[:-1], [*functions.values(), "mean"], output="pandas"
    )
    for chunks in (None, (8, 11)):
        ours = zd.zonal_stats(
            frame,
            path,
            {**functions, "mean": "mean"},
            coverage="fraction",
            chunks=chunks,
        )
        np.testing.assert_allclose(
            ours["wmean"].iloc[:-1].astype(float),
            theirs["_coverage_weighted_mean"],
            rtol=1e-9,
        )
        np.testing.assert_allclose(
            ours["wmean"].iloc[:-1].astype(float), ours["mean"].iloc[:-1], rtol=1e-9
        )
        assert ours["text"].iloc[:-1].tolist() == theirs["_summary_text"].tolist()
        assert math.isnan(ours["wmean"].iloc[-1])  # no cell: NaN, as other stats
    # without coverage weighting every cell weighs 1
    plain = zd.zonal_stats(
        frame, path, {"wmean": _coverage_weighted_mean, "mean": "mean"}
    )
    np.testing.assert_allclose(
        plain["wmean"].iloc[:-1].astype(float), plain["mean"].iloc[:-1], rtol=1e-9
    )
    with pytest.raises(zd.StatisticError, match="'f' needs a weights raster"):
        zd.zonal_stats(frame, path, {"f": lambda v, c, w: 0}, coverage="fraction")


def _weights_weighted_mean(values, coverage, weights):
    return float(np.sum(values * coverage * weights) / np.sum(coverage * weights))


def _cells_and_heaviest(values, coverage, weights):
    return np.array([values.size, np.max(weights)])


def _weights_text(values, coverage, weights):
    return f"{np.sum(coverage * weights):.6f}"


@pytest.mark.parametrize("chunks", [None, (8, 11), (29, 4)])
def test_functions_of_values_coverage_and_weights_as_exactextract(tmp_path, chunks):
    grid = make_grid((29, 33), "float32", seed=235, nodata=None)
    weights = make_grid((29, 33), "float32", seed=236, nodata=None, loc=5, scale=1)
    path, wpath = grid.write(tmp_path / "v.tif"), weights.write(tmp_path / "w.tif")
    frame = zones_frame(voronoi_zones(grid, 6, seed=235, margin=0.0))
    functions = [_weights_weighted_mean, _cells_and_heaviest, _weights_text]
    theirs = exactextract.exact_extract(
        path, frame, [*functions, "weighted_mean"], weights=wpath, output="pandas"
    )
    ours = zd.zonal_stats(
        frame,
        path,
        [*functions, "weighted_mean"],
        coverage="fraction",
        weights=wpath,
        chunks=chunks,
    )
    assert list(ours.columns) == list(theirs.columns)
    np.testing.assert_allclose(
        ours["_weights_weighted_mean"].astype(float),
        theirs["_weights_weighted_mean"],
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        ours["_weights_weighted_mean"].astype(float), ours["weighted_mean"], rtol=1e-9
    )
    for mine, exact in zip(
        ours["_cells_and_heaviest"], theirs["_cells_and_heaviest"], strict=True
    ):
        np.testing.assert_array_equal(mine, exact)
    assert ours["_weights_text"].tolist() == theirs["_weights_text"].tolist()
    # without coverage weighting each cell weighs 1 and the weights still come
    plain = zd.zonal_stats(
        frame, path, {"f": _weights_weighted_mean}, weights=wpath, chunks=chunks
    )
    expected = zd.zonal_stats(frame, path, ["weighted_mean"], weights=wpath)
    np.testing.assert_allclose(
        plain["f"].astype(float), expected["weighted_mean"], rtol=1e-9
    )


def test_a_label_raster_declaring_a_scale_keeps_its_labels(tmp_path):
    values = make_grid((20, 24), "float32", seed=234, nodata=None)
    labels = Grid(np.repeat(np.arange(4, dtype="int16"), 120).reshape(20, 24))
    vpath = values.write(tmp_path / "v.tif")
    lpath = _scaled_file(tmp_path, scales=(2.0,), offsets=(-1.0,), grid=labels)
    table = zd.zonal_stats(lpath, vpath, ["count", "mean"])
    assert table.index.tolist() == [0, 1, 2, 3]
    for label in range(4):
        inside = labels.values == label
        assert table.loc[label, "count"] == inside.sum()
        np.testing.assert_allclose(
            table.loc[label, "mean"], values.values[inside].mean(dtype=np.float64)
        )
