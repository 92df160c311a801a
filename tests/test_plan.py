"""ZonePlan: labels rasterized once, stored in Zarr, reused on the same grid."""

from __future__ import annotations

import dask
import pandas as pd
import pytest
from affine import Affine
from dask.delayed import Delayed

import zonal_dask as zd
from zonal_dask.burn import rules
from zonal_dask.labels import sources

from .reference import assert_tables_close, reference_stats
from .synth import Grid, make_grid, special_zones, voronoi_zones, zones_frame

GRID = make_grid((45, 67), "float32", seed=5, nan_fraction=0.02)
# Voronoi cells share edges (pixels GDAL gives to both neighbours) and the
# special zones overlap them: the plan must keep every extra claim.
GEOMETRIES = voronoi_zones(GRID, 30, seed=5) + special_zones(GRID)
FRAME = zones_frame(GEOMETRIES)
CHUNKS = (16, 20)


def forbid_rasterization(monkeypatch) -> None:
    """Make every burn fail: all rasterization goes through these two."""

    def refuse(*args, **kwargs):
        raise AssertionError("rasterized although a zone plan was given")

    monkeypatch.setattr(rules, "burn_claims", refuse)
    monkeypatch.setattr(sources, "polygon_labels", refuse)


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    """The plan's raster and two more dates on its grid (other values, nodata)."""
    directory = tmp_path_factory.mktemp("plan")
    paths = [GRID.write(directory / "like.tif")]
    for seed in (1, 2):
        date = make_grid(GRID.shape, "int16", seed=seed, nodata=-1.0, loc=50)
        paths.append(date.write(directory / f"date{seed}.tif"))
    return paths


@pytest.fixture(scope="module")
def direct(rasters):
    return [zd.zonal_stats(FRAME, r, chunks=CHUNKS) for r in rasters]


def test_the_direct_result_is_the_reference(direct):
    assert_tables_close(direct[0], reference_stats(GEOMETRIES, GRID, FRAME.index))


def test_the_plan_holds_overlap_claims(rasters):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS)
    source = plan.source()
    # each chunk's labels, computed as the graph computes them (the tasks
    # read the zones from their shards, which the source's dependencies hold)
    dsk = {("labels", *block): task for block, task in source.tasks.items()}
    for dependency in source.dependencies:
        dsk.update(dependency.__dask_graph__())
    chunks = dask.get(dsk, [("labels", *block) for block in source.tasks])
    # overlaps live in extra layers, shared-edge double claims in extra pixels
    assert max(c.labels.shape[0] for c in chunks) > 1
    assert plan.layers == max(c.labels.shape[0] for c in chunks)


def test_a_saved_plan_equals_the_direct_call_without_rasterizing(
    rasters, direct, tmp_path, monkeypatch
):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS)
    assert plan.save(tmp_path / "plan.zarr") is plan
    forbid_rasterization(monkeypatch)
    loaded = zd.ZonePlan.load(tmp_path / "plan.zarr")
    assert loaded.grid == plan.grid
    for raster, expected in zip(rasters, direct, strict=True):
        pd.testing.assert_frame_equal(zd.zonal_stats(plan, raster), expected)
        pd.testing.assert_frame_equal(zd.zonal_stats(loaded, raster), expected)


def test_a_persisted_plan_equals_the_direct_call_without_rasterizing(
    rasters, direct, monkeypatch
):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS).persist()
    forbid_rasterization(monkeypatch)
    for raster, expected in zip(rasters[1:], direct[1:], strict=True):
        pd.testing.assert_frame_equal(zd.zonal_stats(plan, raster), expected)


def test_an_unsaved_plan_equals_the_direct_call(rasters, direct):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS)
    pd.testing.assert_frame_equal(zd.zonal_stats(plan, rasters[2]), direct[2])


def test_options_and_ids_survive_the_store(rasters, tmp_path, monkeypatch):
    expected = zd.zonal_stats(
        FRAME, rasters[1], ["max", "count"], zone_id="name", nodata=50, chunks=CHUNKS
    )
    zd.ZonePlan(FRAME, like=rasters[0], zone_id="name", chunks=CHUNKS).save(
        tmp_path / "plan.zarr"
    )
    forbid_rasterization(monkeypatch)
    plan = zd.ZonePlan.load(tmp_path / "plan.zarr")
    lazy = zd.zonal_stats(plan, rasters[1], ["max", "count"], nodata=50, compute=False)
    assert isinstance(lazy, Delayed)
    pd.testing.assert_frame_equal(lazy.compute(), expected)
    in_memory = make_grid(GRID.shape, "int16", seed=1, nodata=-1.0, loc=50)
    actual = zd.zonal_stats(plan, in_memory.to_dataarray(), ["max", "count"], nodata=50)
    pd.testing.assert_frame_equal(actual, expected)


@pytest.mark.parametrize(
    ("grid", "named"),
    [
        (make_grid((45, 68), seed=1), "shape (45, 68) instead of (45, 67)"),
        (
            Grid(GRID.values, transform=Affine.translation(5, 0) * GRID.transform),
            "transform",
        ),
        (Grid(GRID.values, crs="EPSG:32634"), "CRS EPSG:32634 instead of EPSG:32633"),
    ],
    ids=["shape", "transform", "crs"],
)
def test_a_raster_on_another_grid_is_refused(rasters, tmp_path, grid, named):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS)
    raster = grid.write(tmp_path / "other.tif")
    with pytest.raises(zd.GridError, match="not on the zone plan's grid") as error:
        zd.zonal_stats(plan, raster)
    assert named in str(error.value) and str(raster) in str(error.value)


def test_misuse_is_refused(rasters, tmp_path):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS)
    for fixed in ({"zone_id": "name"}, {"layer": 0}, {"assume_same_crs": True}):
        with pytest.raises(zd.PlanError, match="a ZonePlan fixed them"):
            zd.zonal_stats(plan, rasters[1], **fixed)
    with pytest.raises(zd.PlanError, match="chunks needs"):
        zd.zonal_stats(plan, rasters[1], chunks=8)
    with pytest.raises(zd.StatisticError, match="coverage='fraction' needs polygon"):
        zd.zonal_stats(plan, rasters[1], weights="coverage")
    with pytest.raises(zd.PlanError, match="all_touched=False"):
        zd.zonal_stats(plan, rasters[1], all_touched=True)
    plan.save(tmp_path / "plan.zarr")
    with pytest.raises(zd.PlanError, match="exists"):
        plan.save(tmp_path / "plan.zarr")
    with pytest.raises(zd.PlanError, match="no such zone plan"):
        zd.ZonePlan.load(tmp_path / "missing.zarr")
    with pytest.raises(zd.PlanError, match="not a zone plan"):
        zd.ZonePlan.load(rasters[0].parent)
