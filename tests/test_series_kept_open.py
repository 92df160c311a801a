"""A run's files kept open (``io/kept_open.py``): read tasks borrow them, one
thread at a time, and the run closes them all when it ends.

The results of a series read through the pool are checked against each step
alone in ``tests/test_series.py``; here: reuse, isolation between threads and
between runs, a file changed between runs, no handle left after a run.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

import zonal_dask as zd
from zonal_dask.io import kept_open
from zonal_dask.io.kept_open import OpenFiles, pool_of, reading
from zonal_dask.series import steps as series_steps

from .synth import make_grid, voronoi_zones, zones_frame

SHAPE = (40, 50)
CHUNKS = (16, 20)  # 3 x 3 windows a step
GRIDS = [make_grid(SHAPE, "float32", seed=90 + t, loc=10 * t) for t in range(3)]
FRAME = zones_frame(voronoi_zones(GRIDS[0], 6, seed=3))
STATS = ["count", "min", "mean", "max", "sum"]


@pytest.fixture
def paths(tmp_path):
    return [g.write(tmp_path / f"step_{t}.tif") for t, g in enumerate(GRIDS)]


def first_pixel(dataset) -> float:
    return float(dataset.read(1, window=Window(0, 0, 1, 1))[0, 0])


def test_a_path_read_twice_in_a_thread_is_opened_once(paths):
    pool = OpenFiles()
    first = pool.read(str(paths[0]), first_pixel)
    again = pool.read(str(paths[0]), first_pixel)
    pool.read(str(paths[1]), first_pixel)
    assert first == again == float(GRIDS[0].values[0, 0])
    assert pool.opened == 2 and pool.idle == 2
    pool.close()
    assert pool.idle == 0


def _reading_in_another_thread(
    pool: OpenFiles, path: str, used: list
) -> tuple[threading.Thread, threading.Event]:
    """A thread reading ``path`` through ``pool``, holding its dataset (appended
    to ``used``) until the event returned is set."""
    inside, release = threading.Event(), threading.Event()

    def slow(dataset):
        used.append(dataset)
        inside.set()
        assert release.wait(10)
        return first_pixel(dataset)

    other = threading.Thread(target=pool.read, args=(path, slow))
    other.start()
    assert inside.wait(10)
    return other, release


def test_two_threads_never_read_through_one_dataset(paths):
    pool, used = OpenFiles(), []
    other, release = _reading_in_another_thread(pool, str(paths[0]), used)
    # the dataset is borrowed by the other thread: this one opens its own
    mine = pool.read(str(paths[0]), lambda d: used.append(d) or first_pixel(d))
    release.set()
    other.join()
    assert mine == float(GRIDS[0].values[0, 0])
    assert used[0] is not used[1] and pool.opened == 2 and pool.idle == 2
    pool.close()


def test_a_dataset_read_when_the_run_ends_is_closed_by_its_reader(paths):
    pool, used = OpenFiles(), []
    other, release = _reading_in_another_thread(pool, str(paths[0]), used)
    pool.close()
    assert not used[0].closed  # still being read: not closed under the reader
    release.set()
    other.join()
    assert used[0].closed and pool.idle == 0


def test_a_failed_read_closes_its_dataset(paths):
    pool, used = OpenFiles(), []

    def failing(dataset):
        used.append(dataset)
        raise ValueError("no")

    with pytest.raises(ValueError):
        pool.read(str(paths[0]), failing)
    assert used[0].closed and pool.idle == 0


def test_idle_datasets_beyond_the_bound_are_closed_oldest_first(paths):
    pool, used = OpenFiles(most=2), {}

    def keep(path):
        return lambda dataset: used.setdefault(path, dataset)

    for path in map(str, paths):
        pool.read(path, keep(path))
    assert used[str(paths[0])].closed
    assert not used[str(paths[1])].closed and not used[str(paths[2])].closed
    pool.read(str(paths[1]), first_pixel)  # reused, not reopened
    assert pool.opened == 3
    pool.close()
    assert all(d.closed for d in used.values())


def test_the_pool_lives_for_the_block_only(paths):
    used = []
    with kept_open.kept_open() as token:
        assert pool_of(token) is not None
        reading(str(paths[0]), token, lambda d: used.append(d) or first_pixel(d))
        assert not used[0].closed
    assert used[0].closed and pool_of(token) is None
    # a task run after its run (or on a process without the run) opens itself
    assert reading(str(paths[0]), token, first_pixel) == float(GRIDS[0].values[0, 0])


def test_a_file_changed_between_runs_is_read_anew(paths):
    window = (0, SHAPE[0], 0, SHAPE[1])
    path = str(paths[0])
    with kept_open.kept_open() as token:
        before = series_steps.read_window(path, 1, window, None, token)
    replaced = GRIDS[1].write(paths[0].parent / "other.tif")
    os.replace(replaced, path)
    with kept_open.kept_open() as token:
        after = series_steps.read_window(path, 1, window, None, token)
    np.testing.assert_array_equal(before[0], GRIDS[0].values)
    np.testing.assert_array_equal(after[0], GRIDS[1].values)


class CountingPools:
    """Every pool the runs make, to see what they opened."""

    def __init__(self, monkeypatch):
        self.pools: list[OpenFiles] = []
        made = self.pools

        class Counted(OpenFiles):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(self)

        monkeypatch.setattr(kept_open, "OpenFiles", Counted)


def series(paths, **options):
    return zd.zonal_series(FRAME, [str(p) for p in paths], STATS, **options)


def test_a_series_opens_each_file_once_a_thread(paths, monkeypatch):
    counting = CountingPools(monkeypatch)
    with_pool = series(paths, chunks=CHUNKS)
    (pool,) = counting.pools
    # 9 windows a step; 2 threads at most open a step's file twice
    assert len(paths) <= pool.opened <= 2 * len(paths)
    assert pool.idle == 0
    monkeypatch.setattr(series_steps, "reading", _without_pool)
    alone = series(paths, chunks=CHUNKS)
    assert with_pool.identical(alone)


def _without_pool(path, token, read):
    with rasterio.open(path) as dataset:
        return read(dataset)


def open_files_under(directory) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")
def test_no_file_stays_open_after_a_run(paths, tmp_path):
    series(paths, chunks=CHUNKS, batch=1)
    # the label source's raster (rioxarray) is held by a reference cycle made
    # while the collector is paused, as before the pool: collect it first
    gc.collect()
    assert open_files_under(tmp_path) == []


def test_two_runs_in_two_threads_keep_their_own_files(paths, monkeypatch):
    counting = CountingPools(monkeypatch)
    expected = series(paths, chunks=CHUNKS)
    results: dict[int, object] = {}

    def run(i):
        results[i] = series(paths, chunks=CHUNKS, batch=1 + i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i].identical(expected) for i in range(2))
    assert len(counting.pools) == 3 and not kept_open._runs
    assert all(p.idle == 0 for p in counting.pools)


def test_a_cluster_worker_holds_the_runs_pool_while_given_the_run(paths):
    from zonal_dask.run.workers import RunSettings

    token, used = "zonal-dask-files-test", []
    settings = RunSettings({}, files=token)
    settings.setup()  # as a worker given the run
    reading(str(paths[0]), token, lambda d: used.append(d) or first_pixel(d))
    assert pool_of(token) is not None and not used[0].closed
    settings.teardown()
    assert pool_of(token) is None and used[0].closed


def test_a_worker_in_the_clients_process_shares_the_clients_pool(paths):
    from zonal_dask.run.workers import RunSettings

    with kept_open.kept_open() as token:
        pool = pool_of(token)
        settings = RunSettings({}, files=token)
        settings.setup()
        settings.teardown()
        assert pool_of(token) is pool  # not replaced, not closed


def test_a_run_that_fails_midway_leaves_no_file_open(paths, tmp_path, monkeypatch):
    from zonal_dask.series.grid_plan import GridPlan

    counting = CountingPools(monkeypatch)
    plain_run = GridPlan.run
    batches = []

    def run_then_lose_a_file(self, *args, **kwargs):
        batches.append(args[1])
        if len(batches) == 2:  # the first batch read, the last file gone
            os.remove(paths[-1])
        return plain_run(self, *args, **kwargs)

    monkeypatch.setattr(GridPlan, "run", run_then_lose_a_file)
    with pytest.raises(Exception, match=paths[-1].name):
        series(paths, chunks=CHUNKS, batch=2)
    (pool,) = counting.pools
    assert pool.opened >= 2 and pool.idle == 0 and not kept_open._runs
    gc.collect()
    if sys.platform.startswith("linux"):
        assert open_files_under(tmp_path) == []
