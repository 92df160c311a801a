"""Every route through the one engine: the same request, the same answers.

Polygons, their label raster, a saved and reloaded ZonePlan and a checkpointed
run resumed after a crash give the same table on real data; a request is
validated the same way whatever the route.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import zonal_dask as zd

# moments, quantiles, classes and a user function: every family of partials
STATS = {
    "count": "count",
    "nodata_count": "nodata_count",
    "min": "min",
    "mean": "mean",
    "max": "max",
    "std": "std",
    "sum": "sum",
    "median": "median",
    "p90": "p90",
    "mad": "mad",
    "cv": "coefficient_of_variation",
    "majority": "majority",
    "variety": "variety",
    "spread": lambda v: float(np.ptp(v)),
}
EXACT = ["count", "nodata_count", "min", "max", "median", "p90", "majority"]
CHUNKS = (20, 30)


@pytest.fixture(scope="module")
def inputs(data_dir):
    return (
        data_dir / "rasterstats" / "polygons.shp",
        data_dir / "rasterstats" / "slope_nodata.tif",
    )


@pytest.fixture(scope="module")
def direct(inputs):
    table = zd.zonal_stats(*inputs, STATS, chunks=CHUNKS)
    assert (table["nodata_count"] > 0).any()  # the case is not vacuous
    return table


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, rtol: float) -> None:
    """Order statistics and counts exactly; sums and moments to ``rtol``."""
    assert list(actual.columns) == list(expected.columns)
    for column in expected.columns:
        a, e = actual[column].to_numpy(), expected[column].to_numpy()
        if column in EXACT:
            np.testing.assert_array_equal(a, e, err_msg=column)
        else:
            np.testing.assert_allclose(a, e, rtol=rtol, equal_nan=True, err_msg=column)


def test_the_label_raster_route_gives_the_same_table(inputs, direct, tmp_path):
    zones, raster = inputs
    labels = zd.rasterize_zones(zones, raster, chunks=CHUNKS).compute()
    path = tmp_path / "labels.tif"
    labels.rio.to_raster(path)
    for given in (labels, path):
        table = zd.zonal_stats(given, raster, STATS, chunks=CHUNKS)
        assert table.index.tolist() == list(range(len(direct)))
        assert_same(table.set_axis(direct.index), direct, rtol=1e-12)


def test_a_saved_and_reloaded_plan_gives_the_same_table(inputs, direct, tmp_path):
    zones, raster = inputs
    plan = zd.ZonePlan(zones, like=raster, chunks=CHUNKS)
    assert_same(zd.zonal_stats(plan, raster, STATS), direct, rtol=1e-12)
    plan.save(tmp_path / "plan.zarr")
    loaded = zd.ZonePlan.load(tmp_path / "plan.zarr")
    assert_same(zd.zonal_stats(loaded, raster, STATS), direct, rtol=1e-12)


def test_a_resumed_checkpoint_gives_the_identical_table(
    inputs, direct, tmp_path, crash_after
):
    crash_after(3)
    ck = tmp_path / "ck"
    with pytest.raises(MemoryError):
        zd.zonal_stats(*inputs, STATS, chunks=CHUNKS, checkpoint=ck)
    crash_after(None)
    resumed = zd.zonal_stats(*inputs, STATS, chunks=CHUNKS, checkpoint=ck)
    assert resumed.equals(direct)


@pytest.mark.parametrize(
    ("chunks", "split_every"), [((20, 30), 2), ((7, 11), 3), (None, 8), (13, 2)]
)
def test_chunking_and_tree_shape_change_rounding_only(
    inputs, direct, chunks, split_every
):
    table = zd.zonal_stats(*inputs, STATS, chunks=chunks, split_every=split_every)
    assert_same(table, direct, rtol=1e-12)


def test_a_checkpoint_of_other_statistics_is_refused(inputs, tmp_path):
    """Regression: one column name for another statistic resumed to all NaN."""
    ck = tmp_path / "ck"
    zd.zonal_stats(*inputs, {"x": "max"}, checkpoint=ck)
    with pytest.raises(zd.CheckpointError, match="differs in request"):
        zd.zonal_stats(*inputs, {"x": "median"}, checkpoint=ck)
    # the same statistics under another column name share the partials
    renamed = zd.zonal_stats(*inputs, {"y": "max"}, checkpoint=ck)
    assert renamed["y"].equals(zd.zonal_stats(*inputs, ["max"])["max"])


def test_nodata_is_checked_the_same_way_on_every_route(data_dir, tmp_path):
    """Regression: an impossible nodata was accepted silently through a plan."""
    from .synth import make_grid, voronoi_zones, zones_frame

    grid = make_grid((30, 40), "int16", seed=3, nodata=-1.0)
    raster = grid.write(tmp_path / "int16.tif")
    frame = zones_frame(voronoi_zones(grid, 4, seed=3))
    labels = zd.rasterize_zones(frame, raster)
    plan = zd.ZonePlan(frame, like=raster)
    for zones in (frame, labels, plan):
        with pytest.raises(zd.NodataError, match=r"nodata 1\.5 is not a value of"):
            zd.zonal_stats(zones, raster, nodata=1.5)


@pytest.mark.parametrize(
    ("route", "kwargs", "message"),
    [
        ("labels", {"small": "touched"}, "small='touched' needs polygon zones"),
        ("labels", {"weights": "coverage"}, "coverage='fraction' needs polygon"),
        ("labels", {"all_touched": True}, "all_touched=True needs polygon zones"),
        ("labels", {"stats": ["outside_fraction"]}, "needs polygon zones"),
        ("plan", {"weights": "coverage"}, "coverage='fraction' needs a ZonePlan"),
        ("plan", {"zone_id": "id"}, "a ZonePlan fixed them"),
        ("polygons", {"small": "touched", "weights": "coverage"}, "no coverage"),
        ("polygons", {"stats": ["mad"], "weights": "coverage"}, "unweighted"),
    ],
)
def test_options_that_do_not_go_together_are_refused_on_every_route(
    inputs, route, kwargs, message
):
    zones, raster = inputs
    if route == "labels":
        zones = zd.rasterize_zones(zones, raster)
    elif route == "plan":
        zones = zd.ZonePlan(zones, like=raster)
    with pytest.raises(zd.ZonalError, match=message):
        zd.zonal_stats(zones, raster, **kwargs)
