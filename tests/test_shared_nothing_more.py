"""More of the shared-nothing cluster (``tests/shared_nothing.py``): the GDAL and
AWS options a run is given, what a refused or interrupted run leaves behind, a
worker without the package, and the cluster notebook.

The options' test reads from a second S3 server that only the options name:
neither the client's nor the workers' environment points at it, so a result
equal to that server's raster means the options reached GDAL on the client
(which plans) and on every worker (which reads the pixels); and once the run
ends, neither keeps anything of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import fsspec
import numpy as np
import pandas as pd
import pytest

import zonal_dask as zd

from .shared_nothing import BUCKET, CHUNKS, GRID, url
from .synth import make_grid, voronoi_zones, zones_frame
from .test_distributed import free_port, moto_server, stop, wait_for

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(300)

# the same grid as the first server's raster, other values
OTHER = make_grid(GRID.shape, "float32", seed=21, nan_fraction=0.02)
# what a run may set, on the client and on the workers
WATCHED = ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING", "GDAL_HTTP_MAX_RETRY")


# the workers cannot import this test module: its functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def gdal_state() -> dict[str, tuple[str | None, str | None]]:
    """Each watched setting in this process: its variable, GDAL's option."""
    from rasterio.env import get_gdal_config

    return {k: (os.environ.get(k), get_gdal_config(k)) for k in WATCHED}


@pytest.fixture(scope="module")
def other_s3(s3, client_dir, tmp_path_factory) -> Iterator[dict[str, str]]:
    """A second S3 server holding OTHER as ``raster.tif`` in the same bucket;
    yields the GDAL options that reach it."""
    boto3 = pytest.importorskip("boto3")
    server, endpoint = moto_server(tmp_path_factory.mktemp("other-s3") / "moto.log")
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        wait_for(client.list_buckets, what="the second S3 server")
        client.create_bucket(Bucket=BUCKET)
        OTHER.write(client_dir / "other.tif")
        client.upload_file(str(client_dir / "other.tif"), BUCKET, "raster.tif")
        yield {
            "AWS_S3_ENDPOINT": endpoint.removeprefix("http://"),
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "GDAL_HTTP_MAX_RETRY": "2",
        }
    finally:
        stop([server])


def stats_of(client_dir: Path, raster: str) -> pd.DataFrame:
    return zd.zonal_stats(client_dir / "zones.gpkg", client_dir / raster, chunks=CHUNKS)


def test_options_reach_the_client_and_every_worker_for_the_run_only(
    cluster, other_s3, in_client_dir
):
    expected = stats_of(in_client_dir, "other.tif")
    assert not expected.equals(stats_of(in_client_dir, "raster.tif"))
    workers_before, client_before = cluster.run(gdal_state), gdal_state()
    with cluster.as_current():
        actual = zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, gdal_options=other_s3
        )
        without = zd.zonal_stats("zones.gpkg", url("raster.tif"), chunks=CHUNKS)
    pd.testing.assert_frame_equal(actual, expected)
    # nothing of them is left: the next run reads the first server again
    pd.testing.assert_frame_equal(without, stats_of(in_client_dir, "raster.tif"))
    assert cluster.run(gdal_state) == workers_before
    assert gdal_state() == client_before


def test_options_reach_the_local_threads_for_the_run_only(other_s3, in_client_dir):
    before = gdal_state()
    actual = zd.zonal_stats(
        "zones.gpkg", url("raster.tif"), chunks=CHUNKS, gdal_options=other_s3
    )
    pd.testing.assert_frame_equal(actual, stats_of(in_client_dir, "other.tif"))
    assert gdal_state() == before


def test_the_command_takes_repeated_options_on_a_cluster(
    cluster, other_s3, in_client_dir
):
    arguments = ["zones.gpkg", url("raster.tif"), "other.csv", "--chunks", str(CHUNKS)]
    for key, value in other_s3.items():
        arguments += ["--gdal-option", f"{key}={value}"]
    arguments += ["--scheduler", cluster.scheduler.address, "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "zonal_dask.cli", *arguments],
        cwd=in_client_dir,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    actual = pd.read_csv(in_client_dir / "other.csv", index_col="fid")
    expected = stats_of(in_client_dir, "other.tif")
    pd.testing.assert_frame_equal(
        actual, expected, check_exact=False, rtol=1e-15, check_dtype=False
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"aws region": "x"}, "gdal_options: 'aws region=x' is not KEY=VALUE"),
        (["GDAL_HTTP_MAX_RETRY"], "gdal_options: 'GDAL_HTTP_MAX_RETRY' is not KEY="),
        ({"AWS_REGION": None}, "gdal_options: AWS_REGION=None: the value must be"),
        ({"AWS_REGION": "a\nb"}, "gdal_options: AWS_REGION='a\\nb': the value"),
        ({"GDAL_CACHEMAX": 64}, "gdal_options: GDAL_CACHEMAX: GDAL's block cache"),
        ("AWS_REGION=x", "gdal_options must be a mapping"),
    ],
)
def test_a_malformed_option_is_one_line(tmp_path, given, said):
    raster = GRID.write(tmp_path / "r.tif")
    with pytest.raises(zd.OptionError) as refused:
        zd.zonal_stats(tmp_path / "none.gpkg", raster, gdal_options=given)
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith(said)


def test_the_command_refuses_a_malformed_option_before_reading(tmp_path):
    output = tmp_path / "out.csv"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "zonal_dask.cli", "none.gpkg", "none.tif", output),
            *("--gdal-option", "AWS_REGION=eu-west-1", "--gdal-option", "oops"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert "gdal_options: 'oops' is not KEY=VALUE" in done.stderr
    assert not output.exists()


def test_a_local_checkpoint_refused_on_a_cluster_leaves_nothing(cluster, in_client_dir):
    with (
        cluster.as_current(),
        pytest.raises(zd.ZonalError, match=r"does not see .*/refused/ck as the"),
    ):
        zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, checkpoint="refused/ck"
        )
    assert not (in_client_dir / "refused").exists()


def test_an_interrupted_pixels_run_leaves_no_staging(cluster, in_client_dir):
    """Ctrl-C while the workers write the parts: the command waits for the
    parts in flight, then removes the staging prefix; nothing is published."""
    big = make_grid((192, 192), "float32", seed=22)
    big.write(in_client_dir / "intr.tif")
    fs = fsspec.filesystem("s3")
    fs.put(str(in_client_dir / "intr.tif"), f"{BUCKET}/intr.tif")
    zones_frame(voronoi_zones(big, 20, seed=22)).to_file(
        in_client_dir / "intr.gpkg", engine="pyogrio"
    )
    arguments = ["intr.gpkg", url("intr.tif"), "intr.csv", "--chunks", "8"]
    arguments += ["--pixels", url("intr.parquet"), "--scheduler"]
    run = subprocess.Popen(
        [sys.executable, "-m", "zonal_dask.cli", *arguments, cluster.scheduler.address],
        cwd=in_client_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staged = f"{BUCKET}/.intr.parquet.pixels-*"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()[1]
        fs.invalidate_cache()
        if fs.glob(f"{staged}/intr.parquet/*.parquet"):
            break
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, errors = run.communicate(timeout=120)
    assert run.returncode == 130, errors
    assert "interrupted while writing the pixels" in errors
    time.sleep(2)  # a part a worker was still writing would have landed by now
    fs.invalidate_cache()
    assert not fs.glob(staged)
    assert not fs.exists(f"{BUCKET}/intr.parquet")
    assert not (in_client_dir / "intr.csv").exists()


BLOCKED_WORKER = """
import sys

class NoZonalDask:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "zonal_dask":
            raise ModuleNotFoundError("No module named 'zonal_dask'", name=name)

sys.meta_path.insert(0, NoZonalDask())
from distributed.cli.dask_worker import main
sys.argv[0] = "dask-worker"
main()
"""


def test_a_worker_without_the_package_is_one_line(s3, client_dir, tmp_path):
    """A worker whose Python cannot import zonal_dask, beside one that can:
    the run names it, before any task or any checkpoint."""
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":")[-1]
    dask = [sys.executable, "-m", "dask"]
    commands = [
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", port],
        [*dask, "worker", address, "--name", "good"],
        [sys.executable, "-c", BLOCKED_WORKER, address, "--name", "bare"],
    ]
    processes = []
    try:
        for i, command in enumerate(commands):
            if i:
                command += ["--host", "127.0.0.1", "--nthreads", "1", "--no-nanny"]
            log = open(tmp_path / f"{i}.log", "wb")
            processes.append(
                subprocess.Popen(
                    [*command, "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT
                )
            )
        with (
            distributed.Client(address, timeout="60s", set_as_default=False) as client,
            client.as_current(),
        ):
            client.wait_for_workers(2, timeout=120)
            bare = next(
                a
                for a, w in client.scheduler_info()["workers"].items()
                if w["name"] == "bare"
            )
            with pytest.raises(zd.ZonalError) as refused:
                zd.zonal_stats(
                    client_dir / "zones.gpkg",
                    url("raster.tif"),
                    chunks=CHUNKS,
                    checkpoint=url("never-ck"),
                )
            ran = client.run(lambda dask_worker: dask_worker.state.executed_count)
    finally:
        stop(processes[1:])
        stop(processes[:1])
    assert str(refused.value) == (
        f"worker {bare}: cannot run zonal_dask (No module named 'zonal_dask'); "
        "install zonal-dask (the same version) on the scheduler and every worker"
    )
    assert set(ran.values()) == {0}  # no task of the run was sent
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/never-ck")


@pytest.mark.timeout(400)
def test_the_cluster_notebook_runs_on_the_shared_nothing_cluster(
    cluster, tmp_path, monkeypatch
):
    """notebooks/02-cluster.ipynb with ``DASK_SCHEDULER_ADDRESS``: its own S3
    server, which the workers reach through the run's endpoint settings; the
    zone plan written by the workers to object storage; nothing written where
    the workers cannot see it."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from .test_notebooks import NOTEBOOKS, printed

    for name in list(os.environ):
        if name.startswith(("AWS_", "DASK_", "ZONAL_DASK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler.address)
    (path,) = [p for p in NOTEBOOKS if p.stem == "02-cluster"]
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    said = printed(notebook)
    assert "2 workers" in said
    assert "identical to the local file's result" in said
    assert "saved to s3://zonal-dask-demo/run/zones.plan.zarr" in said
    assert not (tmp_path / "zonal-dask-demo" / "zones.plan.zarr").exists()


def test_the_workers_write_at_the_endpoint_each_run_gives(
    cluster, other_s3, in_client_dir, monkeypatch
):
    """A worker that wrote to one S3 endpoint writes the next run's checkpoint
    at the endpoint that run gives it (fsspec keeps a file system per
    endpoint, not the first one made)."""
    with cluster.as_current():
        zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, checkpoint=url("one-ck")
        )
    endpoint = f"http://{other_s3['AWS_S3_ENDPOINT']}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key in ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING"):
        monkeypatch.setenv(key, other_s3[key])
    with cluster.as_current():
        actual = zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, checkpoint=url("two-ck")
        )
    pd.testing.assert_frame_equal(actual, stats_of(in_client_dir, "other.tif"))
    other = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
    assert len(other.glob(f"{BUCKET}/two-ck/chunk-*.npz")) == 4 * 5


def test_a_series_takes_the_options(other_s3, in_client_dir):
    cube = zd.zonal_series(
        "zones.gpkg",
        [url("raster.tif")],
        ["count", "mean"],
        chunks=CHUNKS,
        gdal_options=other_s3,
    )
    expected = zd.zonal_stats(
        "zones.gpkg", "other.tif", ["count", "mean"], chunks=CHUNKS
    )
    got = cube.isel(time=0).to_dataframe()[["count", "mean"]]
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())


def test_a_zone_plan_opens_its_grid_with_the_options(cluster, other_s3, in_client_dir):
    """``like`` only the second server holds: opened through the options; the
    plan then serves a raster of the first server on the cluster."""
    endpoint = f"http://{other_s3['AWS_S3_ENDPOINT']}"
    other = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
    other.put(str(in_client_dir / "other.tif"), f"{BUCKET}/only-there.tif")
    with pytest.raises(zd.ZonalError):  # not on the first server
        zd.ZonePlan("zones.gpkg", like=url("only-there.tif"), chunks=CHUNKS)
    with cluster.as_current():
        plan = zd.ZonePlan(
            "zones.gpkg",
            like=url("only-there.tif"),
            chunks=CHUNKS,
            gdal_options=other_s3,
        )
        actual = zd.zonal_stats(plan, url("raster.tif"))
    pd.testing.assert_frame_equal(actual, stats_of(in_client_dir, "raster.tif"))
