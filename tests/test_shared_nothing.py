"""A cluster that shares nothing with the client but a loopback S3 server.

``dask scheduler`` and two ``dask worker`` processes are each started in a
mount namespace of their own (``unshare --mount``), with a tmpfs over the
client's working directory and over the temporary directories, and a working
directory of their own: nothing the client writes locally is visible to them,
as on any jobqueue, Kubernetes or Coiled deployment. The workers get the S3
credentials and endpoint but no ``--preload``: GDAL's endpoint settings reach
them through the run's worker plugin. Every result must equal the local one;
every location the workers cannot see is refused in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pandas as pd
import pytest

import zonal_dask as zd
from zonal_dask.run.checkpoint import saved_blocks

from .shared_nothing import (
    BUCKET,
    CHUNKS,
    local_stats,
    url,
)
from .synth import make_grid, voronoi_zones, zones_frame
from .test_distributed import free_port, stop

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(300)


def test_the_workers_really_see_nothing_of_the_client(cluster, client_dir):
    seen = cluster.run(os.path.exists, str(client_dir / "raster.tif"))
    assert set(seen.values()) == {False}
    assert os.path.exists(client_dir / "raster.tif")


def test_statistics_weights_and_groups_from_object_storage(cluster, in_client_dir):
    options = {"stats": ["count", "mean", "max", "weighted_mean"]}
    weights = in_client_dir / "weights.tif"
    expected = local_stats(in_client_dir, weights=weights, **options)
    grouped = local_stats(in_client_dir, group_by="region")
    with cluster.as_current():
        actual = zd.zonal_stats(
            "zones.gpkg",
            url("raster.tif"),
            chunks=CHUNKS,
            weights=url("weights.tif"),
            **options,
        )
        groups = zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, group_by="region"
        )
    pd.testing.assert_frame_equal(actual, expected)
    pd.testing.assert_frame_equal(groups, grouped)


def test_a_local_raster_the_workers_cannot_see_is_one_line(cluster, in_client_dir):
    with (
        cluster.as_current(),
        pytest.raises(zd.ZonalError) as refused,
    ):
        zd.zonal_stats("zones.gpkg", "raster.tif", chunks=CHUNKS)
    line = str(refused.value)
    assert "\n" not in line
    assert line.startswith("worker tcp://127.0.0.1:")
    assert f"cannot see {in_client_dir / 'raster.tif'} (no such file" in line
    assert line.endswith(
        "use a shared path or an object-store URL (s3://, gs://, az://)"
    )


def test_a_local_checkpoint_is_refused_one_on_s3_resumes(cluster, in_client_dir):
    with (
        cluster.as_current(),
        pytest.raises(zd.ZonalError, match=r"does not see .*/ck as the client"),
    ):
        zd.zonal_stats("zones.gpkg", url("raster.tif"), chunks=CHUNKS, checkpoint="ck")
    expected = local_stats(in_client_dir)
    checkpoint = url("ck")
    with cluster.as_current():
        actual = zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, checkpoint=checkpoint
        )
    pd.testing.assert_frame_equal(actual, expected)
    saved = saved_blocks(checkpoint)
    assert len(saved) == 4 * 5
    fs = fsspec.filesystem("s3")
    fs.rm(f"{BUCKET}/ck/chunk-0-0.npz")
    fs.invalidate_cache()
    with cluster.as_current():  # resumed: one chunk computed again
        again = zd.zonal_stats(
            "zones.gpkg", url("raster.tif"), chunks=CHUNKS, checkpoint=checkpoint
        )
    pd.testing.assert_frame_equal(again, expected)
    assert saved_blocks(checkpoint) == saved


def run_cli(arguments: list[str], cwd: Path, scheduler: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zonal_dask.cli", *arguments, "--scheduler", scheduler],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_checkpointed_command_killed_then_resumed(cluster, in_client_dir):
    """Killed midway: the output is absent and the checkpoint holds a part;
    run again, it equals the local table."""
    big = make_grid((128, 128), "float32", seed=14)
    big.write(in_client_dir / "big.tif")
    fs = fsspec.filesystem("s3")
    fs.put(str(in_client_dir / "big.tif"), f"{BUCKET}/big.tif")
    zones = zones_frame(voronoi_zones(big, 20, seed=14))
    zones.to_file(in_client_dir / "big.gpkg", engine="pyogrio")
    names = ("big.gpkg", "big.tif")
    # 64 chunks: each saved to the S3 server, which serves one request at a time
    expected = zd.zonal_stats(*(in_client_dir / n for n in names), chunks=16)
    checkpoint = url("big-ck")
    arguments = ["big.gpkg", url("big.tif"), "big.csv", "--chunks", "16"]
    arguments += ["--checkpoint", checkpoint]
    address = cluster.scheduler.address
    first = run_cli(arguments, in_client_dir, address)
    deadline = time.monotonic() + 120
    while len(saved_blocks(checkpoint)) < 8 and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()[1]
        fs.invalidate_cache()
        time.sleep(0.05)
    first.kill()
    first.wait(10)
    saved = len(saved_blocks(checkpoint))
    assert 8 <= saved < 8 * 8, "the run ended before it could be killed"
    assert not (in_client_dir / "big.csv").exists()
    second = run_cli(arguments, in_client_dir, address)
    _, errors = second.communicate(timeout=240)
    assert second.returncode == 0, errors
    actual = pd.read_csv(in_client_dir / "big.csv", index_col="fid")
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-15)
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/big-ck/checkpoint.json")  # removed once written


def test_pixels_written_to_object_storage(cluster, in_client_dir):
    inputs = (in_client_dir / "zones.gpkg", in_client_dir / "raster.tif")
    expected = (
        zd.zonal_pixels(*inputs, chunks=CHUNKS)
        .compute()
        .sort_values(["fid", "cell_id"], ignore_index=True)
    )
    from zonal_dask.io.writers import write_pixels

    with cluster.as_current():
        pixels = zd.zonal_pixels("zones.gpkg", url("raster.tif"), chunks=CHUNKS)
        write_pixels(pixels, url("pixels.parquet"), client=cluster)
        with pytest.raises(zd.ZonalError, match="does not see"):
            write_pixels(pixels, "pixels.parquet", client=cluster)
    assert not (in_client_dir / "pixels.parquet").exists()
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    assert not [p for p in fs.ls(BUCKET, detail=False) if p.endswith(".tmp")]
    actual = pd.read_parquet(url("pixels.parquet")).sort_values(
        ["fid", "cell_id"], ignore_index=True
    )
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


def test_a_zone_plan_saved_to_object_storage_and_reused(cluster, in_client_dir):
    expected = local_stats(in_client_dir)
    with cluster.as_current():
        plan = zd.ZonePlan("zones.gpkg", like=url("raster.tif"), chunks=CHUNKS)
        with pytest.raises(zd.ZonalError, match=r"does not see .*/plan\.zarr as"):
            plan.save("plan.zarr")
        plan.save(url("plan.zarr"))
        loaded = zd.ZonePlan.load(url("plan.zarr"))
        actual = zd.zonal_stats(loaded, url("raster.tif"))
    pd.testing.assert_frame_equal(actual, expected)


BLOCKED_SCHEDULER = """
import sys

class NoZonalDask:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "zonal_dask":
            raise ModuleNotFoundError("No module named 'zonal_dask'", name=name)

sys.meta_path.insert(0, NoZonalDask())
from distributed.cli.dask_scheduler import main
sys.argv[0] = "dask-scheduler"
main()
"""


def test_a_scheduler_without_the_package_is_one_line(s3, client_dir, tmp_path):
    """A stock scheduler cannot unpickle the graph: said before it is sent."""
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":")[-1]
    command = [sys.executable, "-c", BLOCKED_SCHEDULER, "--host", "127.0.0.1"]
    command += ["--port", port, "--no-dashboard"]
    log = open(tmp_path / "scheduler.log", "wb")
    scheduler = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with (
            distributed.Client(address, timeout="60s", set_as_default=False) as client,
            client.as_current(),
            pytest.raises(zd.ZonalError) as refused,
        ):
            zd.zonal_stats(client_dir / "zones.gpkg", url("raster.tif"), chunks=CHUNKS)
    finally:
        stop([scheduler])
    assert str(refused.value) == (
        f"the dask scheduler at {address} cannot unpickle the graph (No module "
        "named 'zonal_dask'); install zonal-dask (the same version) on the "
        "scheduler and every worker"
    )


def test_pixels_killed_midway_publish_nothing(cluster, in_client_dir):
    big = make_grid((192, 192), "float32", seed=15)
    big.write(in_client_dir / "pix.tif")
    fs = fsspec.filesystem("s3")
    fs.put(str(in_client_dir / "pix.tif"), f"{BUCKET}/pix.tif")
    zones_frame(voronoi_zones(big, 20, seed=15)).to_file(
        in_client_dir / "pix.gpkg", engine="pyogrio"
    )
    target = f"{BUCKET}/killed.parquet"
    arguments = ["pix.gpkg", url("pix.tif"), "pix.csv", "--chunks", "8"]
    arguments += ["--pixels", f"s3://{target}"]
    run = run_cli(arguments, in_client_dir, cluster.scheduler.address)
    parts = f"{BUCKET}/.killed.parquet.pixels-*/killed.parquet/*.parquet"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()[1]
        fs.invalidate_cache()
        if fs.glob(parts):
            break
        time.sleep(0.05)
    run.kill()
    run.wait(10)
    fs.invalidate_cache()
    assert fs.glob(parts), "no part was written before the kill"
    assert not fs.exists(target)
