"""A time series read from S3 by the shared-nothing cluster's workers
(``tests/shared_nothing.py``): each worker keeps the run's files open while
given the run (``io/kept_open.py``), so a step's file is opened once a
worker, not once a window, and closes them all when the run ends."""

from __future__ import annotations

import sys
from typing import Any

import cloudpickle
import fsspec
import pytest

import zonal_dask as zd

from .shared_nothing import BUCKET, CHUNKS, url
from .synth import make_grid

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(300)

SHAPE = (64, 80)  # 4 x 5 windows of 16² a step
STEPS = 3
STATS = ["count", "mean", "max"]


def count_pools(dask_worker: Any = None) -> None:
    """On a worker: record every pool of open files made from now on."""
    from zonal_dask.io import kept_open

    made: list = []
    plain = kept_open.OpenFiles

    class Counted(plain):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    kept_open.OpenFiles = Counted  # type: ignore[misc]
    kept_open.recorded = (plain, made)  # type: ignore[attr-defined]


def counted_pools(dask_worker: Any = None) -> tuple[list, int]:
    """On a worker: stop recording; each pool's (opened, idle), and the pools
    still registered."""
    from zonal_dask.io import kept_open

    plain, made = kept_open.recorded  # type: ignore[attr-defined]
    kept_open.OpenFiles = plain  # type: ignore[misc]
    del kept_open.recorded  # type: ignore[attr-defined]
    return [(p.opened, p.idle) for p in made], len(kept_open._runs)


def test_workers_open_each_file_once_for_the_run_and_close_it(
    s3, cluster, in_client_dir
):
    fs = fsspec.filesystem("s3")
    urls = []
    for t in range(STEPS):
        path = in_client_dir / f"kept_{t}.tif"
        make_grid(SHAPE, "float32", seed=60 + t).write(path)
        fs.put_file(str(path), f"{BUCKET}/kept/{path.name}")
        urls.append(url(f"kept/{path.name}"))
    fs.invalidate_cache()
    expected = zd.zonal_series("zones.gpkg", urls, STATS, chunks=CHUNKS)
    # the workers see no test module: these functions go to them by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with cluster.as_current():
            cluster.run(count_pools)
            try:
                cube = zd.zonal_series(
                    "zones.gpkg", urls, STATS, chunks=CHUNKS, batch=2
                )
            finally:
                seen = cluster.run(counted_pools)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert cube.identical(expected)
    pools = [p for made, _ in seen.values() for p in made]
    windows = STEPS * 4 * 5
    opened = sum(o for o, _ in pools)
    # one pool a worker a batch (2 batches), each opening a file once a
    # worker thread (one), never once a window
    assert pools and STEPS <= opened <= STEPS * len(seen) < windows
    assert all(idle == 0 for _, idle in pools)
    assert all(left == 0 for _, left in seen.values())
