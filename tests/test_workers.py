"""Any cluster's workers for one run: settings given and taken back, reach checked."""

from __future__ import annotations

import os

import pandas as pd

import zonal_dask as zd
from zonal_dask.io.location import locate
from zonal_dask.run import process_state
from zonal_dask.run.workers import RunSettings, worker_sees

from .synth import make_grid, voronoi_zones, zones_frame

GRID = make_grid((40, 50), seed=6)
FRAME = zones_frame(voronoi_zones(GRID, 5, seed=6))


def gdal_cache(values):
    from rasterio.env import get_gdal_config

    return float(get_gdal_config("GDAL_CACHEMAX") or -1)


def test_a_cluster_started_elsewhere_gets_the_run_settings_and_back(
    local_cluster, tmp_path
):
    """GDAL's cache bound reaches the workers of a cluster this package did
    not start, for the run only."""
    raster = GRID.write(tmp_path / "grid.tif")
    before = local_cluster.run(os.environ.get, "GDAL_CACHEMAX")
    assert set(before.values()) == {None}
    with local_cluster.as_current():
        table = zd.zonal_stats(FRAME, raster, {"cache": gdal_cache}, chunks=20)
    assert set(table["cache"]) == {process_state.GDAL_CACHE_MB * 2**20}
    assert local_cluster.run(os.environ.get, "GDAL_CACHEMAX") == before
    plugins = local_cluster.run(lambda dask_worker: list(dask_worker.plugins))
    assert not any("zonal-dask" in p for names in plugins.values() for p in names)


def test_run_settings_are_restored(monkeypatch):
    from rasterio.env import get_gdal_config

    monkeypatch.setenv("AWS_HTTPS", "YES")
    monkeypatch.delenv("AWS_VIRTUAL_HOSTING", raising=False)
    settings = RunSettings({"AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"})
    settings.setup()
    assert (
        os.environ["AWS_HTTPS"] == "NO"
        and get_gdal_config("AWS_HTTPS", normalize=False) == "NO"
    )
    settings.teardown()
    assert os.environ["AWS_HTTPS"] == "YES"
    assert "AWS_VIRTUAL_HOSTING" not in os.environ
    assert get_gdal_config("AWS_VIRTUAL_HOSTING") is None


def test_what_a_worker_cannot_see_is_one_line(tmp_path):
    (tmp_path / "mark").write_bytes(b"")
    assert worker_sees([str(tmp_path)], [(str(tmp_path), "mark")]) is None
    line = worker_sees([str(tmp_path / "r.tif")], [])
    assert line == (
        f"cannot see {tmp_path / 'r.tif'} (no such file on that machine); use a "
        "shared path or an object-store URL (s3://, gs://, az://)"
    )
    line = worker_sees([], [(str(tmp_path), "other-mark")])
    assert line is not None and line.startswith(f"does not see {tmp_path} as the")
    assert "\n" not in line and line.endswith("object-store URL (s3://, gs://, az://)")
    assert sorted(os.listdir(tmp_path)) == ["mark"]  # the probe leaves nothing


def test_a_checkpoint_on_a_cluster_is_checked_and_complete(local_cluster, tmp_path):
    raster = GRID.write(tmp_path / "grid.tif")
    expected = zd.zonal_stats(FRAME, raster, chunks=20)
    with local_cluster.as_current():
        table = zd.zonal_stats(FRAME, raster, chunks=20, checkpoint=tmp_path / "ck")
    pd.testing.assert_frame_equal(table, expected)
    names = sorted(os.listdir(tmp_path / "ck"))
    assert names == [
        "checkpoint.json",
        *(f"chunk-{i}-{j}.npz" for i in range(2) for j in range(3)),
    ]
    assert locate(tmp_path / "ck").url == str(tmp_path / "ck")


def test_the_run_settings_warm_the_kernels_up_off_the_event_loop(monkeypatch):
    import threading

    from zonal_dask.run import workers

    called = []
    done = threading.Event()

    def prepare(dtype, compiled):
        called.append((dtype, threading.current_thread() is threading.main_thread()))
        called.append(compiled)
        done.set()

    monkeypatch.setattr(workers, "prepare_kernels", prepare)
    settings = RunSettings({}, "float32", [("module", "kernel", "code")])
    settings.setup()
    assert done.wait(30)
    settings.teardown()
    assert called == [("float32", False), [("module", "kernel", "code")]]
