"""Scheduler choice, the CLI's LocalCluster, GDAL's endpoint variables."""

from __future__ import annotations

import socket
import subprocess
import sys

import pandas as pd
import pytest

import zonal_dask as zd
from zonal_dask.io import remote
from zonal_dask.run import process_state, scheduler

from .synth import make_grid, voronoi_zones, zones_frame


def test_threads_by_default(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with scheduler.scheduler(workers=1) as client:
        import dask

        assert client is None and dask.config.get("scheduler") == "threads"


def test_an_active_client_wins_over_the_environment(local_cluster, monkeypatch):
    # the variable names an address nobody listens on: it must not be tried
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    with local_cluster.as_current(), scheduler.scheduler() as client:
        assert client is local_cluster


def test_a_raster_persisted_on_the_cluster_is_read_from_it(local_cluster):
    """A persisted DataArray's blocks live on the workers, outside its graph:
    the chunk tasks refer to them instead of nesting a read."""
    grid = make_grid((60, 80), seed=5)
    zones = zones_frame(voronoi_zones(grid, 9, seed=5))
    expected = zd.zonal_stats(zones, grid.to_dataarray(), ["count", "mean", "max"])
    with local_cluster.as_current():
        held = grid.to_dataarray().chunk(25).persist()
        actual = zd.zonal_stats(zones, held, ["count", "mean", "max"])
    pd.testing.assert_frame_equal(actual, expected)


@pytest.mark.timeout(60)  # the client alone would wait out its timeout
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("tcp://127.0.0.1:{closed}", "connection refused"),
        ("tcp://no-such-host.invalid:8786", "unknown host"),
        ("nonsense", "missing port number"),
    ],
)
def test_an_unreachable_scheduler_is_one_clear_error_at_once(
    monkeypatch, address, reason
):
    monkeypatch.setattr(scheduler, "CONNECT_TIMEOUT", "600s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    address = address.format(closed=closed)
    with (
        pytest.raises(zd.ZonalError, match=rf"at {address} \({reason}"),
        scheduler.scheduler(address),
    ):
        pass


@pytest.mark.slow
def test_the_cli_starts_and_stops_a_local_cluster(tmp_path):
    grid = make_grid((40, 50), seed=4)
    zones = zones_frame(voronoi_zones(grid, 12, seed=4))
    zones.to_file(tmp_path / "zones.gpkg", engine="pyogrio")
    raster = grid.write(tmp_path / "grid.tif")
    output = tmp_path / "stats.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "zonal_dask.cli",
            str(tmp_path / "zones.gpkg"),
            str(raster),
            str(output),
            "--cluster",
            "--workers",
            "1",
            "--threads-per-worker",
            "1",
            "--memory-limit",
            "1GB",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "zonal-dask: dashboard at http" in result.stderr
    expected = zd.zonal_stats(tmp_path / "zones.gpkg", raster)
    actual = pd.read_csv(output, index_col="fid")
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-15)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"},
            {
                "AWS_S3_ENDPOINT": "127.0.0.1:9000",
                "AWS_VIRTUAL_HOSTING": "FALSE",
                "AWS_HTTPS": "NO",
            },
        ),
        (
            {"AWS_ENDPOINT_URL_S3": "https://s3.example.org", "AWS_ENDPOINT_URL": "x"},
            {"AWS_S3_ENDPOINT": "s3.example.org", "AWS_VIRTUAL_HOSTING": "FALSE"},
        ),
        (
            {"AWS_ENDPOINT_URL": "http://h:1", "AWS_VIRTUAL_HOSTING": "TRUE"},
            {"AWS_S3_ENDPOINT": "h:1", "AWS_HTTPS": "NO"},
        ),
        ({"AWS_ENDPOINT_URL": "http://h:1", "AWS_S3_ENDPOINT": "other:2"}, {}),
        ({"AWS_ACCESS_KEY_ID": "key"}, {}),
    ],
)
def test_gdal_endpoint_variables(environ, expected):
    assert remote.gdal_options(environ) == expected
    environ = dict(environ)
    assert remote.configure_gdal(environ) == expected
    assert expected.items() <= environ.items()


def test_gdal_block_cache_is_bounded_while_computing():
    # a pass reads each block once: GDAL's default cache (5% of RAM) only
    # grows the peak memory with the raster's size
    from rasterio.env import get_gdal_config

    grid = make_grid((40, 50), seed=5)
    seen = []

    def cache_size(values):
        seen.append(get_gdal_config("GDAL_CACHEMAX"))
        return 0.0

    zones = zones_frame(voronoi_zones(grid, 3, seed=5))
    zd.zonal_stats(zones, grid.to_dataarray(), {"cache": cache_size})
    assert seen and set(seen) == {process_state.GDAL_CACHE_MB * 2**20}
    assert (
        get_gdal_config("GDAL_CACHEMAX") != process_state.GDAL_CACHE_MB * 2**20
    )  # restored


@pytest.mark.slow
def test_local_cluster_workers_bound_gdal_block_cache():
    import os

    with scheduler.scheduler(cluster=True, workers=1, threads_per_worker=1) as client:
        values = client.run(lambda: os.environ.get("GDAL_CACHEMAX"))
    assert list(values.values()) == [str(process_state.GDAL_CACHE_MB)]
