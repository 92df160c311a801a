"""Every statistic and option against the brute-force reference (issue 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zonal_dask as zd
from zonal_dask.labels import sources
from zonal_dask.statistics.names import resolve

from .reference import REFERENCE, assert_tables_close, reference_table
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

ALL = list(REFERENCE)


def overlapping_zones(grid, seed):
    """Adjacent cells, awkward cases, and overlaps: nested, buffered, duplicated."""
    cells = voronoi_zones(grid, 14, seed=seed)
    xmin, ymin, xmax, ymax = grid.bounds()
    centre = shapely.Point((xmin + xmax) / 2 + 3.3, (ymin + ymax) / 2 - 1.7)
    blob = centre.buffer((ymax - ymin) / 3)
    return [*cells, *special_zones(grid), blob, blob.buffer(-40), blob, cells[3]]


@pytest.mark.parametrize("all_touched", [False, True])
@pytest.mark.parametrize(
    ("dtype", "nodata"), [("float32", -9999.0), ("int16", -1), ("uint8", 0)]
)
def test_every_statistic_matches_the_reference(dtype, nodata, all_touched):
    grid = make_grid((37, 53), dtype, seed=41, nodata=nodata, scale=4)
    if dtype == "float32":
        grid.values[grid.values % 7 < 1] = np.nan
    geometries = overlapping_zones(grid, 41)
    frame = zones_frame(geometries)
    actual = zd.zonal_stats(
        frame, grid.to_dataarray(), stats=ALL, all_touched=all_touched, chunks=(9, 14)
    )
    expected = reference_table(
        geometries, grid, frame.index, ALL, all_touched=all_touched
    )
    assert_tables_close(actual, expected)
    assert (expected["nodata_count"] > 0).sum() > 5  # not vacuous
    assert expected["variety"].max() > 3


def test_all_touched_takes_more_pixels():
    grid = make_grid(seed=42)
    frame = zones_frame(voronoi_zones(grid, 10, seed=42))
    centre = zd.zonal_stats(frame, grid.to_dataarray(), stats=["count"])
    touched = zd.zonal_stats(
        frame, grid.to_dataarray(), stats=["count"], all_touched=True
    )
    assert (touched["count"] >= centre["count"]).all()
    assert touched["count"].sum() > centre["count"].sum()


def test_percentiles_are_numpys_exact_answer_across_chunks_and_groups(monkeypatch):
    grid = make_grid((64, 64), "float64", seed=43, nodata=None)
    geometries = voronoi_zones(grid, 9, seed=43, margin=0.0)
    frame = zones_frame(geometries)
    stats = ["median", "p0", "p25", "p33.3", "p100", "percentile_90"]
    # tiny zone groups: every zone's values come from several chunks
    monkeypatch.setattr("zonal_dask.labels.build.TARGET_CHUNK_PIXELS", 50)
    actual = zd.zonal_stats(frame, grid.to_dataarray(), stats=stats, chunks=(7, 9))
    for zone in range(len(geometries)):
        mask = zd.rasterize_zones(frame.iloc[[zone]], grid.to_dataarray()).values >= 0
        v = grid.values[mask]
        expected = [np.percentile(v, q) for q in (50, 0, 25, 33.3, 100, 90)]
        assert actual.iloc[zone].tolist() == expected  # bit-exact


def test_custom_functions_get_each_zones_valid_values():
    grid = make_grid(seed=44)
    geometries = voronoi_zones(grid, 8, seed=44)
    frame = zones_frame(geometries)
    seen = []

    def cv(values):
        seen.append(values.dtype)
        return values.std() / values.mean()

    actual = zd.zonal_stats(
        frame, grid.to_dataarray(), stats={"cv": cv, "average": "mean"}, chunks=16
    )
    expected = reference_table(geometries, grid, frame.index, ["std", "mean"])
    np.testing.assert_allclose(
        actual["cv"], expected["std"] / expected["mean"], rtol=1e-12
    )
    np.testing.assert_allclose(actual["average"], expected["mean"], rtol=1e-12)
    assert set(seen) == {np.dtype("float64")}


def test_categorical_is_a_zone_by_class_table():
    rng = np.random.default_rng(45)
    grid = make_grid((40, 50), "uint8", seed=45, nodata=255, nodata_fraction=0.05)
    grid.values[grid.values != 255] = rng.choice(
        [1, 2, 5, 9], (grid.values != 255).sum()
    )
    geometries = overlapping_zones(grid, 45)
    frame = zones_frame(geometries)
    table = zd.zonal_stats(
        frame, grid.to_dataarray(), stats=["count", "majority"], categorical=True
    )
    assert list(table.columns) == ["count", "majority", 1, 2, 5, 9]
    classes = table[[1, 2, 5, 9]]
    assert (classes.sum(axis=1) == table["count"]).all()
    for zone in range(len(geometries)):
        mask = zd.rasterize_zones(frame.iloc[[zone]], grid.to_dataarray()).values >= 0
        v = grid.values[mask & (grid.values != 255)]
        assert classes.iloc[zone].tolist() == [
            int((v == c).sum()) for c in (1, 2, 5, 9)
        ]


def test_categorical_matches_rasterstats(data_dir):
    from rasterstats import zonal_stats as rs_zonal_stats

    raster = data_dir / "rasterio" / "RGB.byte.tif"
    zones = data_dir / "rasterio" / "box.shp"
    ours = zd.zonal_stats(zones, raster, stats=["count"], categorical=True)
    theirs = rs_zonal_stats(str(zones), str(raster), categorical=True)[0]
    assert {k: v for k, v in ours.iloc[0].drop("count").items() if v} == theirs


def test_infinite_values_behave_as_in_numpy():
    grid = make_grid((20, 20), "float64", seed=46, nodata=None)
    grid.values[2, 3] = np.inf
    grid.values[15, 15] = -np.inf
    grid.values[16, 16] = np.inf
    geometries = voronoi_zones(grid, 5, seed=46, margin=0.0)
    frame = zones_frame(geometries)
    stats = ["count", "sum", "mean", "min", "max", "std", "median"]
    actual = zd.zonal_stats(frame, grid.to_dataarray(), stats=stats, chunks=7)
    with np.errstate(invalid="ignore"):
        expected = reference_table(geometries, grid, frame.index, stats)
    assert_tables_close(actual, expected)
    assert np.isinf(actual["sum"]).any() or np.isnan(actual["sum"]).any()


def test_outside_fraction_is_the_area_beyond_the_raster():
    grid = make_grid(seed=47)
    xmin, ymin, xmax, ymax = grid.bounds()
    half_out = shapely.box(xmin - 100, ymin + 50, xmin + 100, ymin + 150)
    inside = shapely.box(xmin + 10, ymin + 10, xmin + 90, ymin + 90)
    outside = shapely.box(xmax + 10, ymin, xmax + 90, ymax)
    frame = zones_frame([half_out, inside, outside, shapely.Polygon()])
    table = zd.zonal_stats(frame, grid.to_dataarray(), stats=["outside_fraction"])
    np.testing.assert_allclose(table["outside_fraction"][:3], [0.5, 0.0, 1.0])
    assert np.isnan(table["outside_fraction"].iloc[3])


def test_range_var_and_nodata_fraction_on_a_hand_made_grid():
    grid = make_grid((3, 3), "float64", nodata=-1)
    grid.values[:] = [[1, 2, -1], [4, np.nan, 6], [7, 8, 9]]
    x0, y0 = grid.transform.c, grid.transform.f
    px, py = grid.transform.a, grid.transform.e
    everything = shapely.box(x0, y0 + 3 * py, x0 + 3 * px, y0)
    table = zd.zonal_stats(
        zones_frame([everything]),
        grid.to_dataarray(),
        stats=["count", "nodata_count", "nodata_fraction", "range", "var", "variety"],
    )
    v = np.array([1, 2, 4, 6, 7, 8, 9], float)
    row = table.iloc[0]
    assert (row["count"], row["nodata_count"], row["variety"]) == (7, 2, 7)
    assert row["nodata_fraction"] == 2 / 9 and row["range"] == 8
    assert row["var"] == pytest.approx(v.var(), rel=1e-15)


def test_unknown_statistics_list_the_valid_ones():
    with pytest.raises(zd.StatisticError, match="pNN"):
        resolve(["p101"])
    with pytest.raises(zd.StatisticError, match="unknown statistic 'modal'"):
        resolve({"x": "modal"})
    assert [s.name for s in resolve("p10 percentile_5")] == [
        "p10",
        "percentile_5",
    ]


def test_values_statistics_do_not_change_the_moments():
    grid = make_grid(seed=48)
    frame = zones_frame(voronoi_zones(grid, 6, seed=48))
    base = zd.zonal_stats(frame, grid.to_dataarray())
    more = zd.zonal_stats(
        frame, grid.to_dataarray(), stats=[*zd.DEFAULT_STATS, "median", "majority"]
    )
    pd.testing.assert_frame_equal(more[base.columns], base)


@pytest.mark.parametrize("pieces", [False, True], ids=["one piece", "in pieces"])
def test_small_touched_gives_pixel_less_polygons_their_touched_pixels(
    monkeypatch, pieces
):
    if pieces:  # every chunk burnt a zone or two at a time
        monkeypatch.setattr(sources, "sparse_budget", lambda shape: 8)
    grid = make_grid((37, 53), "float32", seed=49, nodata=-9999.0)
    geometries = overlapping_zones(grid, 49)
    frame = zones_frame(geometries)
    stats = ["count", "mean", "median", "majority"]
    kwargs = {"stats": stats, "chunks": (9, 14)}
    plain = zd.zonal_stats(frame, grid.to_dataarray(), **kwargs)
    table = zd.zonal_stats(frame, grid.to_dataarray(), small="touched", **kwargs)
    centre = reference_table(geometries, grid, frame.index, [*stats, "nodata_count"])
    touched = reference_table(
        geometries, grid, frame.index, [*stats, "nodata_count"], all_touched=True
    )
    no_pixel = (centre["count"] + centre["nodata_count"] == 0) & (
        touched["count"] + touched["nodata_count"] > 0
    )
    assert no_pixel.sum() >= 1  # the sub-pixel polygon of special_zones
    assert table["small"].tolist() == no_pixel.tolist()
    expected = centre[stats].copy()
    expected.loc[no_pixel] = touched.loc[no_pixel, stats]
    assert_tables_close(table[stats], expected)
    assert_tables_close(plain, centre[stats])


def test_small_policy_is_checked():
    grid = make_grid(seed=50)
    frame = zones_frame(voronoi_zones(grid, 3, seed=50))
    with pytest.raises(zd.StatisticError, match="small must be"):
        zd.zonal_stats(frame, grid.to_dataarray(), small="drop")


HYPOTHESIS_GRID = make_grid((29, 41), "float32", seed=51, nan_fraction=0.05, scale=3)


def random_zones(seed: int) -> list:
    """Discs and boxes of random size and place: overlapping, outside, tiny."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = HYPOTHESIS_GRID.bounds()
    w, h = xmax - xmin, ymax - ymin
    zones = []
    for _ in range(rng.integers(1, 8)):
        x = rng.uniform(xmin - 0.2 * w, xmax + 0.2 * w)
        y = rng.uniform(ymin - 0.2 * h, ymax + 0.2 * h)
        size = rng.choice([3.0, 30.0, 150.0])  # smaller than a pixel, a few, many
        if rng.random() < 0.5:
            zones.append(shapely.Point(x, y).buffer(size * rng.uniform(0.5, 1)))
        else:
            zones.append(shapely.box(x, y, x + size * rng.uniform(0.5, 3), y + size))
    return zones


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(1, 29),
    cols=st.integers(1, 41),
    seed=st.integers(0, 2**32 - 1),
    all_touched=st.booleans(),
)
def test_random_zones_and_chunkings_give_the_reference(rows, cols, seed, all_touched):
    geometries = random_zones(seed)
    frame = zones_frame(geometries)
    actual = zd.zonal_stats(
        frame,
        HYPOTHESIS_GRID.to_dataarray(),
        ALL,
        all_touched=all_touched,
        chunks=(rows, cols),
    )
    expected = reference_table(
        geometries, HYPOTHESIS_GRID, frame.index, ALL, all_touched=all_touched
    )
    assert_tables_close(actual, expected)


def test_histogram_is_the_class_table():
    grid = make_grid((20, 30), "uint8", seed=52, nodata=None, loc=3, scale=1)
    frame = zones_frame(voronoi_zones(grid, 4, seed=52))
    by_name = zd.zonal_stats(frame, grid.to_dataarray(), "count histogram")
    by_flag = zd.zonal_stats(frame, grid.to_dataarray(), ["count"], categorical=True)
    pd.testing.assert_frame_equal(by_name, by_flag)
    only = zd.zonal_stats(frame, grid.to_dataarray(), ["histogram"])
    assert list(only.columns) == list(by_flag.columns[1:])
    assert (only.sum(axis=1) == by_flag["count"]).all()


@pytest.mark.parametrize(
    "scheduler",
    [
        "synchronous",
        "threads",
        pytest.param("processes", marks=pytest.mark.slow),
        pytest.param("cluster", marks=pytest.mark.slow),
    ],
)
def test_every_statistic_on_every_scheduler(scheduler, request, tmp_path):
    grid = make_grid((37, 53), "float32", seed=53, nodata=-9999.0)
    geometries = overlapping_zones(grid, 53)
    frame = zones_frame(geometries)
    raster = grid.write(tmp_path / "grid.tif")
    lazy = zd.zonal_stats(frame, raster, ALL, chunks=(16, 16), compute=False)
    if scheduler == "cluster":
        actual = request.getfixturevalue("local_cluster").compute(lazy).result()
    else:
        actual = lazy.compute(scheduler=scheduler)
    assert_tables_close(actual, reference_table(geometries, grid, frame.index, ALL))


def test_exactextract_names_are_the_same_statistics():
    grid = make_grid((30, 40), "float32", seed=54, nodata=-9999.0)
    frame = zones_frame(voronoi_zones(grid, 6, seed=54))
    pairs = {
        "quantile(q=0.25)": "p25",
        "stdev": "std",
        "variance": "var",
        "nodata": "nodata_count",
    }
    table = zd.zonal_stats(frame, grid.to_dataarray(), [*pairs, *pairs.values()])
    named = ["quantile_25", *list(pairs)[1:]]
    assert list(table.columns) == [*named, *pairs.values()]
    for alias, name in zip(named, pairs.values(), strict=True):
        pd.testing.assert_series_equal(table[alias], table[name], check_names=False)
    with pytest.raises(zd.StatisticError, match="repeated"):
        zd.zonal_stats(frame, grid.to_dataarray(), ["quantile(q=0.25)", "quantile_25"])


def test_a_mistyped_name_gets_a_suggestion():
    with pytest.raises(zd.StatisticError, match="did you mean 'median'"):
        resolve(["meidan"])
