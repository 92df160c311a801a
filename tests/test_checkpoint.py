"""Resumable runs: saved chunks reused, only missing ones computed, runs not mixed."""

from __future__ import annotations

import json
import os
import time

import pytest

import zonal_dask as zd
from zonal_dask.reduce import partials
from zonal_dask.run.checkpoint import MANIFEST

from .reference import assert_tables_close
from .synth import make_grid, special_zones, voronoi_zones, zones_frame

GRID = make_grid((48, 56), seed=81)
FRAME = zones_frame([*voronoi_zones(GRID, 9, seed=81), *special_zones(GRID)])


@pytest.fixture
def raster(tmp_path):
    return GRID.write(tmp_path / "grid.tif")


@pytest.fixture
def counted(monkeypatch):
    """How many chunks the kernel really runs on (threads: same process)."""
    calls = []
    original = partials.chunk_moments

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(partials, "chunk_moments", counting)
    return calls


def test_a_checkpointed_run_gives_the_same_table_and_saves_every_chunk(
    tmp_path, raster, counted
):
    plain = zd.zonal_stats(FRAME, raster, chunks=16)
    n_chunks = len(counted)
    table = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=tmp_path / "ck")
    assert table.equals(plain)
    saved = sorted((tmp_path / "ck").glob("chunk-*.npz"))
    assert len(saved) == n_chunks == len(counted) // 2 > 1
    manifest = json.loads((tmp_path / "ck" / MANIFEST).read_text())
    assert manifest["raster"]["path"] == os.path.abspath(raster)
    statistics = manifest["request"]["statistics"]
    assert len(statistics) == len(zd.DEFAULT_STATS)
    assert all(name in " ".join(statistics) for name in zd.DEFAULT_STATS)
    assert manifest["grid"]["chunks"] == [[16, 16, 16], [16, 16, 16, 8]]


def test_a_rerun_computes_only_the_missing_chunks(tmp_path, raster, counted):
    ck = tmp_path / "ck"
    first = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck)
    saved = sorted(ck.glob("chunk-*.npz"))
    for path in saved[::3]:
        path.unlink()
    counted.clear()
    again = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck)
    assert len(counted) == len(saved[::3])
    assert again.equals(first)
    # another tree shape merges the same partials: equal to rounding
    other = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck, split_every=2)
    assert_tables_close(other, first, rtol=1e-12)
    counted.clear()
    assert zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck).equals(first)
    assert counted == []


def test_a_run_that_crashed_resumes_to_the_identical_table(
    tmp_path, raster, crash_after
):
    ck = tmp_path / "ck"
    plain = zd.zonal_stats(FRAME, raster, chunks=8, split_every=3)
    crash_after(10)
    with pytest.raises(MemoryError):
        zd.zonal_stats(FRAME, raster, chunks=8, checkpoint=ck, split_every=3)
    # the threaded scheduler raises while another thread may still be saving a
    # chunk: that write completes (renamed into place) or leaves nothing
    deadline = time.monotonic() + 10
    while list(ck.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(ck.glob(".*.tmp"))
    kept = len(list(ck.glob("chunk-*.npz")))
    assert 1 <= kept <= 10
    crash_after(None)
    resumed = zd.zonal_stats(FRAME, raster, chunks=8, checkpoint=ck, split_every=3)
    assert resumed.equals(plain)


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        ({"stats": ["count", "mean"]}, "request"),
        ({"nodata": 0.0}, "request"),
        ({"chunks": 8}, "grid, labels, request"),
        ({"zones": FRAME.iloc[:5]}, "index, labels"),
    ],
)
def test_another_run_is_refused(tmp_path, raster, change, differs):
    ck = tmp_path / "ck"
    zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck)
    kwargs = {"chunks": 16, "checkpoint": ck, **change}
    zones = kwargs.pop("zones", FRAME)
    with pytest.raises(
        zd.CheckpointError, match=f"another run \\(differs in {differs}"
    ):
        zd.zonal_stats(zones, raster, **kwargs)


def test_a_modified_raster_is_refused(tmp_path, raster):
    ck = tmp_path / "ck"
    zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck)
    stat = os.stat(raster)
    os.utime(raster, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(zd.CheckpointError, match="differs in raster"):
        zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck)


def test_a_directory_with_other_files_is_refused(tmp_path, raster):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "notes.txt").write_text("mine")
    with pytest.raises(zd.CheckpointError, match="not empty and not a checkpoint"):
        zd.zonal_stats(FRAME, raster, checkpoint=tmp_path / "ck")


def test_workers_of_a_cluster_write_the_checkpoint(tmp_path, raster, local_cluster):
    ck = tmp_path / "ck"
    lazy = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck, compute=False)
    table = local_cluster.compute(lazy).result()
    assert table.equals(zd.zonal_stats(FRAME, raster, chunks=16))
    assert len(list(ck.glob("chunk-*.npz"))) > 1
    lazy = zd.zonal_stats(FRAME, raster, chunks=16, checkpoint=ck, compute=False)
    assert local_cluster.compute(lazy).result().equals(table)


def test_saved_results_round_trip_any_nesting_without_pickle(tmp_path):
    import collections

    import numpy as np

    from zonal_dask.labels.sources import ChunkLabels
    from zonal_dask.run.checkpoint import load_partials, save_partials

    moments = partials.Moments(np.arange(3, dtype=np.int64), np.ones((3, 17)))
    labels = ChunkLabels(np.zeros((2, 2), np.int32), *[np.empty(0, np.int64)] * 3)
    nested = (moments, None, {np.int64(4): labels, 7: [np.float64(2.5)]})
    path = str(tmp_path / "chunk.npz")
    assert save_partials(path, nested) is nested
    back = load_partials(path)
    assert type(back[0]) is partials.Moments and back[1] is None
    assert type(back[2][4]) is ChunkLabels and back[2][7] == [2.5]
    for a, b in zip(back[0], moments, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(back[2][4].labels, labels.labels)
    foreign = collections.namedtuple("Foreign", "x")(np.ones(1))
    save_partials(path, foreign)
    with pytest.raises(zd.CheckpointError, match="unreadable checkpoint chunk"):
        load_partials(path)
