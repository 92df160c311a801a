"""ZonePlan: labels rasterized once, stored in Zarr, reused on the same grid."""

from __future__ import annotations

import dask
import numpy as np
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


def _claims(labels) -> set[tuple[int, int]]:
    """Every (pixel, global zone) claim of a chunk's labels, in any form."""
    out = set()
    for piece in sources.pieces(labels):
        for layer in piece.labels:
            flat = layer.reshape(-1)
            for pixel in np.flatnonzero(flat >= 0):
                out.add((int(pixel), int(piece.zones[flat[pixel]])))
        for pixel, zone in zip(piece.extra_pixels, piece.extra_zones, strict=True):
            out.add((int(pixel), int(piece.zones[zone])))
    return out


def test_the_store_holds_every_claim(rasters, tmp_path):
    plan = zd.ZonePlan(FRAME, like=rasters[0], chunks=CHUNKS)
    burnt = _computed(plan.source())
    # overlaps and shared-edge double claims: pixels claimed more than once
    assert sum(c.extra_pixels.size for c in burnt.values()) > 100
    plan.save(tmp_path / "plan.zarr")
    stored = _computed(plan.source())
    assert stored.keys() == burnt.keys()
    for block, labels in burnt.items():
        assert stored[block].labels.shape[0] == 1
        assert _claims(stored[block]) == _claims(labels)


def _computed(source) -> dict:
    """Each chunk's labels, computed as the graph computes them (the tasks
    read the zones from their shards, which the source's dependencies hold)."""
    dsk = {("labels", *block): task for block, task in source.tasks.items()}
    for dependency in source.dependencies:
        dsk.update(dependency.__dask_graph__())
    blocks = list(source.tasks)
    return dict(
        zip(blocks, dask.get(dsk, [("labels", *b) for b in blocks]), strict=True)
    )


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
    with pytest.raises(zd.PlanError, match="coverage='fraction' needs a ZonePlan"):
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


# every option a direct call takes, a plan takes, and gives the same table
GROUPED = FRAME.assign(group=[f"g{i % 7}" for i in range(len(FRAME))])
WEIGHTED = ["count", "sum", "mean", "min", "max", "frac", "majority", "median"]
PLAN_OPTIONS = [
    ({"zone_id": "name"}, None),
    ({"all_touched": True}, None),
    ({"coverage": "fraction"}, WEIGHTED),
    ({"coverage": "area_cartesian", "min_coverage_frac": 0.25}, WEIGHTED),
    ({"group_by": "group"}, None),
    ({"group_by": "group", "coverage": "fraction"}, WEIGHTED),
    ({"small": "touched"}, None),
    ({"layer": "second"}, None),
    ({"zones_crs": "EPSG:32633", "assume_same_crs": False}, None),
]


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    """A file of two layers: the zones in the second (``layer=``)."""
    path = tmp_path_factory.mktemp("layers") / "zones.gpkg"
    GROUPED.iloc[:3].to_file(path, layer="first", engine="pyogrio")
    GROUPED.to_file(path, layer="second", engine="pyogrio")
    return path


@pytest.mark.parametrize(
    ("options", "stats"), PLAN_OPTIONS, ids=[",".join(o) for o, _ in PLAN_OPTIONS]
)
def test_a_plan_made_with_an_option_equals_the_direct_call(
    rasters, layered, tmp_path, options, stats
):
    zones = layered if "layer" in options else GROUPED
    stats = stats or ["count", "sum", "mean", "min", "max", "std", "median"]
    expected = zd.zonal_stats(zones, rasters[1], stats, chunks=CHUNKS, **options)
    plan = zd.ZonePlan(zones, like=rasters[0], chunks=CHUNKS, **options)
    pd.testing.assert_frame_equal(
        zd.zonal_stats(plan, rasters[1], stats), expected, check_exact=True
    )
    # repeating the plan's options is allowed, changing them is not
    pd.testing.assert_frame_equal(
        zd.zonal_stats(plan, rasters[1], stats, **options), expected
    )
    plan.save(tmp_path / "plan.zarr")
    loaded = zd.ZonePlan.load(tmp_path / "plan.zarr")
    assert loaded.options == plan.options
    for used in (plan, loaded):
        pd.testing.assert_frame_equal(
            zd.zonal_stats(used, rasters[1], stats), expected, rtol=1e-12, atol=0
        )


def test_a_plan_refuses_a_call_that_changes_its_options(rasters):
    plan = zd.ZonePlan(GROUPED, like=rasters[0], chunks=CHUNKS, group_by="group")
    with pytest.raises(zd.PlanError, match="group_by='name' needs a ZonePlan"):
        zd.zonal_stats(plan, rasters[1], group_by="name")
    with pytest.raises(zd.PlanError, match="small='touched' needs a ZonePlan"):
        zd.zonal_stats(plan, rasters[1], small="touched")
