"""The answer does not depend on chunking, tree shape or scheduler."""

from __future__ import annotations

import dask
import pandas as pd
import pytest
from dask.delayed import Delayed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zonal_dask as zd

from .reference import assert_tables_close, reference_stats
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

GRID = make_grid((45, 67), "float32", seed=11, nan_fraction=0.03)
GEOMETRIES = voronoi_zones(GRID, 20, seed=11) + special_zones(GRID)
FRAME = zones_frame(GEOMETRIES)
EXPECTED = reference_stats(GEOMETRIES, GRID, FRAME.index)


@pytest.mark.parametrize(
    "chunks", [(1, 67), (45, 1), (7, 11), 13, 256, (45, 67)], ids=str
)
def test_chunkings_agree(chunks):
    actual = zd.zonal_stats(FRAME, GRID.to_dataarray(), chunks=chunks)
    assert_tables_close(actual, EXPECTED)


def test_a_deep_tree_agrees():
    actual = zd.zonal_stats(FRAME, GRID.to_dataarray(), chunks=(3, 5), split_every=2)
    assert_tables_close(actual, EXPECTED, rtol=1e-12)


@pytest.mark.parametrize(
    "scheduler",
    ["synchronous", "threads", pytest.param("processes", marks=pytest.mark.slow)],
)
def test_local_schedulers_agree(scheduler):
    with dask.config.set(scheduler=scheduler):
        actual = zd.zonal_stats(FRAME, GRID.to_dataarray(), chunks=16)
    assert_tables_close(actual, EXPECTED)


def test_distributed_local_cluster_agrees(local_cluster, tmp_path):
    raster = GRID.write(tmp_path / "grid.tif")
    lazy = zd.zonal_stats(FRAME, raster, chunks=16, compute=False)
    actual = local_cluster.compute(lazy).result()
    assert_tables_close(actual, EXPECTED)


def test_an_active_client_is_used(local_cluster, tmp_path):
    from distributed import get_task_stream

    raster = GRID.write(tmp_path / "grid.tif")
    with local_cluster.as_current(), get_task_stream(local_cluster) as stream:
        actual = zd.zonal_stats(FRAME, raster, chunks=16)
    assert_tables_close(actual, EXPECTED)
    ran = {str(task["key"]) for task in stream.data}
    assert any("zonal-chunk" in key for key in ran)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    rows=st.integers(1, 45),
    cols=st.integers(1, 67),
    split_every=st.integers(2, 9),
)
def test_any_chunking_gives_the_reference(rows, cols, split_every):
    actual = zd.zonal_stats(
        FRAME,
        GRID.to_dataarray(),
        chunks=(rows, cols),
        split_every=split_every,
    )
    assert_tables_close(actual, EXPECTED)


def test_compute_false_builds_without_computing(raise_if_dask_computes, tmp_path):
    raster = GRID.write(tmp_path / "grid.tif")
    lazy = zd.zonal_stats(FRAME, raster, chunks=16, compute=False)
    assert isinstance(lazy, Delayed)
    with dask.config.set(scheduler="sync"):
        table = lazy.compute()
    assert isinstance(table, pd.DataFrame)
    assert_tables_close(table, EXPECTED)


def test_graph_names_are_deterministic(tmp_path):
    raster = GRID.write(tmp_path / "grid.tif")
    a = zd.zonal_stats(FRAME, raster, chunks=16, compute=False)
    b = zd.zonal_stats(FRAME, raster, chunks=16, compute=False)
    c = zd.zonal_stats(FRAME, raster, chunks=16, stats=["mean"], compute=False)
    assert a.key == b.key != c.key
