"""Real processes: a ``dask scheduler``, ``dask worker``s and an S3 server on 127.0.0.1.

The cluster is started with the command line distributed installs, as a user
would on a real cluster; rasters are read by the workers from files and from
a local S3-compatible server (moto), and every result must equal the local
threaded scheduler's bit for bit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest
import rasterio

import zonal_dask as zd
from zonal_dask.io import remote

from .synth import make_grid, special_zones, voronoi_zones, zones_frame

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(240)

GRID = make_grid((96, 120), "float32", seed=3, nan_fraction=0.01)
GEOMETRIES = voronoi_zones(GRID, 40, seed=3) + special_zones(GRID)
FRAME = zones_frame(GEOMETRIES)
CHUNKS = 32
BUCKET = "zonal-dask-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_server(log: Path) -> tuple[subprocess.Popen, str]:
    """moto's S3 server in a process of its own on a free port, its output
    in ``log``: the process and its endpoint URL."""
    pytest.importorskip("moto.server")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("distributed")
    zones = directory / "zones.gpkg"
    FRAME.to_file(zones, engine="pyogrio")
    raster = GRID.write(directory / "raster.tif")
    cog = directory / "cog.tif"
    with rasterio.open(raster) as src:
        profile = src.profile | {"driver": "COG", "blocksize": 32}
        for key in ("tiled", "blockxsize", "blockysize", "interleave"):
            profile.pop(key, None)
        with rasterio.open(cog, "w", **profile) as dst:
            dst.write(src.read())
    return {"zones": zones, "raster": raster, "cog": cog, "dir": directory}


@pytest.fixture(scope="module")
def local(data) -> pd.DataFrame:
    """The reference: the same call on the local threaded scheduler."""
    return zd.zonal_stats(data["zones"], data["raster"], chunks=CHUNKS)


@pytest.fixture(scope="module")
def s3(data, tmp_path_factory) -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 holding the COG; yields the environment.

    The server runs in its own process: in this one, GDAL would wait for it
    while holding the GIL the server's threads need.
    """
    boto3 = pytest.importorskip("boto3")
    server, endpoint = moto_server(tmp_path_factory.mktemp("s3") / "moto.log")
    environment = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environment.items():
                patch.setenv(name, value)
            # this process imported zonal_dask before the endpoint was set
            for name, value in remote.gdal_options(os.environ).items():
                patch.setenv(name, value)
            client = boto3.client("s3", endpoint_url=endpoint)
            wait_for(lambda: client.list_buckets(), what="the S3 server")
            client.create_bucket(Bucket=BUCKET)
            client.upload_file(
                str(data["cog"]), BUCKET, "cog.tif", ExtraArgs={"ACL": "public-read"}
            )
            yield environment
    finally:
        stop([server])


def wait_for(probe, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclass
class Cluster:
    address: str
    client: distributed.Client
    processes: list[subprocess.Popen]
    environment: dict[str, str]
    logs: Path

    def start_worker(self, name: str) -> subprocess.Popen:
        """A ``dask worker`` without nanny, so that killing it kills the worker."""
        log = open(self.logs / f"{name}.log", "wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dask",
                "worker",
                self.address,
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--memory-limit",
                "1GB",
                "--death-timeout",
                "60",
                "--preload",
                "zonal_dask.io.remote",
            ],
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def worker_address(self, name: str) -> str:
        workers = self.client.scheduler_info()["workers"]
        return next(a for a, w in workers.items() if w["name"] == name)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory) -> Iterator[Cluster]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

    The workers get the S3 credentials and only ``AWS_ENDPOINT_URL``: their
    ``--preload zonal_dask.io.remote`` derives GDAL's endpoint variables.
    """
    logs = tmp_path_factory.mktemp("cluster-logs")
    address = f"tcp://127.0.0.1:{free_port()}"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DASK_"))
    }
    environment |= s3
    scheduler_log = open(logs / "scheduler.log", "wb")
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            address.rsplit(":", 1)[1],
            "--no-dashboard",
        ],
        env=environment,
        stdout=scheduler_log,
        stderr=subprocess.STDOUT,
    )
    running = Cluster(address, None, [scheduler], environment, logs)
    try:
        running.client = distributed.Client(
            address, timeout="60s", set_as_default=False
        )
        for name in ("worker-0", "worker-1"):
            running.start_worker(name)
        running.client.wait_for_workers(2, timeout=90)
        yield running
    finally:
        if running.client is not None:
            running.client.close()
        stop(running.processes[1:])
        stop(running.processes[:1])


def test_the_api_on_the_cluster_equals_local(cluster, data, local):
    lazy = zd.zonal_stats(data["zones"], data["raster"], chunks=CHUNKS, compute=False)
    future = cluster.client.compute(lazy)
    pd.testing.assert_frame_equal(future.result(timeout=120), local)
    with cluster.client.as_current():  # the active client is used as is
        actual = zd.zonal_stats(data["zones"], data["raster"], chunks=CHUNKS)
    pd.testing.assert_frame_equal(actual, local)


def run_cli(arguments: list[str], environment: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zonal_dask.cli", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_cli_on_the_cluster_equals_local(cluster, data, local, tmp_path, how):
    output = tmp_path / "stats.csv"
    arguments = [str(data["zones"]), str(data["raster"]), str(output)]
    arguments += ["--chunks", str(CHUNKS)]
    environment = dict(cluster.environment)
    if how == "option":
        arguments += ["--scheduler", cluster.address]
    else:
        environment["DASK_SCHEDULER_ADDRESS"] = cluster.address
    run_cli(arguments, environment)
    actual = pd.read_csv(output, index_col="fid")
    pd.testing.assert_frame_equal(actual, local, check_exact=False, rtol=1e-15)


@pytest.mark.parametrize("scheme", ["s3://", "/vsis3/", "http://"])
def test_a_cog_on_object_storage_read_by_the_workers(cluster, data, local, s3, scheme):
    if scheme == "http://":
        raster = f"{s3['AWS_ENDPOINT_URL']}/{BUCKET}/cog.tif"
    else:
        raster = f"{scheme}{BUCKET}/cog.tif"
    lazy = zd.zonal_stats(data["zones"], raster, chunks=CHUNKS, compute=False)
    actual = cluster.client.compute(lazy).result(timeout=120)
    pd.testing.assert_frame_equal(actual, local)


def test_the_cli_reads_a_cog_from_object_storage(cluster, data, local, tmp_path):
    output = tmp_path / "stats.parquet"
    arguments = [str(data["zones"]), f"s3://{BUCKET}/cog.tif", str(output)]
    arguments += ["--chunks", str(CHUNKS), "--scheduler", cluster.address]
    run_cli(arguments, cluster.environment)
    pd.testing.assert_frame_equal(pd.read_parquet(output), local)


def test_a_zone_plan_saved_and_used_by_the_workers(cluster, data, local, tmp_path):
    with cluster.client.as_current():
        plan = zd.ZonePlan(data["zones"], like=data["raster"], chunks=CHUNKS)
        plan.save(tmp_path / "plan.zarr")
        loaded = zd.ZonePlan.load(tmp_path / "plan.zarr")
        pd.testing.assert_frame_equal(zd.zonal_stats(loaded, data["raster"]), local)


def test_a_worker_killed_mid_computation_changes_nothing(cluster, data, tmp_path):
    # 256 chunks of 8 x 8 pixels: a job of seconds, killed after its start.
    big = make_grid((128, 128), "float32", seed=9)
    raster = big.write(tmp_path / "big.tif")
    zones = zones_frame(voronoi_zones(big, 30, seed=9))
    expected = zd.zonal_stats(zones, raster, chunks=8)
    victim = cluster.start_worker("victim")
    cluster.client.wait_for_workers(3, timeout=90)
    address = cluster.worker_address("victim")
    future = cluster.client.compute(
        zd.zonal_stats(zones, raster, chunks=8, compute=False)
    )
    deadline = time.monotonic() + 60
    while not cluster.client.has_what().get(address) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cluster.client.has_what().get(address), "the victim never held a result"
    assert not future.done(), "the job ended before the worker could be killed"
    victim.kill()
    victim.wait(10)
    actual = future.result(timeout=180)
    assert address not in cluster.client.scheduler_info()["workers"]
    pd.testing.assert_frame_equal(actual, expected)


def graph_bytes(shape: tuple[int, int], n_zones: int, tmp_path: Path) -> int:
    """Pickled size of the whole graph for a file raster cut into 4 x 4 chunks."""
    grid = make_grid(shape, "float32", seed=1)
    raster = grid.write(tmp_path / f"{shape[0]}-{n_zones}.tif", blocksize=None)
    zones = zones_frame(voronoi_zones(grid, n_zones, seed=1))
    lazy = zd.zonal_stats(zones, raster, chunks=shape[0] // 4, compute=False)
    return len(cloudpickle.dumps(dict(lazy.__dask_graph__())))


def test_the_graph_does_not_grow_with_pixels(tmp_path):
    small = graph_bytes((64, 64), 30, tmp_path)
    large = graph_bytes((1024, 1024), 30, tmp_path)  # 256 x the pixels, 4 MB
    assert large < 1.1 * small
    # zones add their geometries (each sent to the chunks it meets), never
    # anything per pixel: 90 more zones cost less than one row of pixels each
    more_zones = graph_bytes((1024, 1024), 120, tmp_path)
    assert (more_zones - large) / 90 < 1024 * 4
