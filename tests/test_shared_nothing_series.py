"""A time series on the shared-nothing cluster (``tests/shared_nothing.py``):
the steps read by the workers from S3, the cube written by the client to a
URL (staged under a hidden prefix on the bucket, published once every batch
is in) and appended to, each equal to the same call on this machine's
threads; a run stopped midway leaves nothing at the target."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import xarray as xr

import zonal_dask as zd
from zonal_dask.series.cube import to_long

from .shared_nothing import BUCKET, CHUNKS, url
from .synth import make_grid

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.timeout(300)

DATES = pd.date_range("2024-03-01", periods=24, freq="D")
STATS = ["count", "mean", "max", "std"]
PATTERN = "%Y-%m-%d"


@pytest.fixture(scope="module")
def steps(s3, client_dir) -> tuple[list[Path], list[str]]:
    """24 daily steps on the zones' grid: local files and their copies on S3."""
    directory = client_dir / "steps"
    directory.mkdir(exist_ok=True)
    fs = fsspec.filesystem("s3")
    files, urls = [], []
    for t, date in enumerate(DATES):
        name = f"lst_{date:%Y-%m-%d}.tif"
        grid = make_grid((64, 80), "float32", seed=40 + t, nan_fraction=0.02)
        files.append(grid.write(directory / name))
        fs.put_file(str(directory / name), f"{BUCKET}/steps/{name}")
        urls.append(url(f"steps/{name}"))
    fs.invalidate_cache()
    return files, urls


def local_series(client_dir: Path, files: list[Path]) -> xr.Dataset:
    """The reference: the same call on this machine's threads."""
    return zd.zonal_series(
        client_dir / "zones.gpkg", files, STATS, time_pattern=PATTERN, chunks=CHUNKS
    )


def staged(fs, prefix: str) -> list[str]:
    """The hidden staging prefixes left under ``prefix``."""
    fs.invalidate_cache()
    if not fs.exists(f"{BUCKET}/{prefix}"):
        return []
    return [p for p in fs.ls(f"{BUCKET}/{prefix}", detail=False) if ".tmp" in p]


def test_a_cube_written_to_s3_and_appended_equals_the_local_one(
    cluster, in_client_dir, steps
):
    files, urls = steps
    expected = local_series(in_client_dir, files[:6])
    target = url("cube/lst.zarr")
    with cluster.as_current():
        first = zd.zonal_series(
            "zones.gpkg",
            urls[:3],
            STATS,
            time_pattern=PATTERN,
            chunks=CHUNKS,
            output=target,
            batch=2,
        )
        added = zd.zonal_series(
            "zones.gpkg",
            urls[:6],
            STATS,
            time_pattern=PATTERN,
            chunks=CHUNKS,
            output=target,
            append=True,
            batch=2,
        )
    assert len(first) == 3 and list(added) == list(DATES[3:6].to_numpy())
    actual = zd.open_cube(target).load()
    xr.testing.assert_identical(actual.drop_attrs(), expected.drop_attrs())
    assert staged(fsspec.filesystem("s3"), "cube") == []


def test_the_long_table_on_s3_and_a_local_netcdf(cluster, in_client_dir, steps):
    """Parquet on S3, appended; NetCDF at a relative local path, which only
    the client sees: the client writes every series output."""
    files, urls = steps
    expected = local_series(in_client_dir, files[:4])
    target = url("table/lst.parquet")
    options = {"time_pattern": PATTERN, "chunks": CHUNKS, "batch": 2}
    with cluster.as_current():
        zd.zonal_series("zones.gpkg", urls[:2], STATS, output=target, **options)
        zd.zonal_series(
            "zones.gpkg", urls[:4], STATS, output=target, append=True, **options
        )
        zd.zonal_series("zones.gpkg", urls[:4], STATS, output="lst.nc", **options)
    table = pd.read_parquet(target)
    pd.testing.assert_frame_equal(table, to_long(expected), check_dtype=False)
    cube = zd.open_cube(in_client_dir / "lst.nc").load()
    xr.testing.assert_identical(cube.drop_attrs(), expected.drop_attrs())
    assert staged(fsspec.filesystem("s3"), "table") == []
    assert not list(in_client_dir.glob(".lst.nc.*"))


def run_cli(arguments: list[str], cwd: Path, scheduler: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zonal_dask.cli", *arguments, "--scheduler", scheduler],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_bucket_that_is_not_there_is_one_line(cluster, in_client_dir, steps):
    _, urls = steps
    arguments = ["zones.gpkg", *urls[:2], "s3://no-such-bucket/lst.zarr"]
    run = run_cli(arguments, in_client_dir, cluster.scheduler.address)
    _, errors = run.communicate(timeout=120)
    assert run.returncode == 1
    lines = errors.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in errors
    assert lines[0].startswith("zonal-dask: error: s3://no-such-bucket/lst.zarr: ")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_a_run_stopped_midway_leaves_nothing_at_the_target(
    cluster, in_client_dir, steps, stop
):
    """Stopped once the first batch is staged: nothing at the target; Ctrl-C
    also removes the hidden staging prefix (a killed process cannot)."""
    _, urls = steps
    name = f"stopped-{stop.name}"
    arguments = ["zones.gpkg", *urls, url(f"{name}/lst.zarr")]
    arguments += ["--time-pattern", PATTERN, "--batch", "1", "--chunks", str(CHUNKS)]
    run = run_cli(arguments, in_client_dir, cluster.scheduler.address)
    fs = fsspec.filesystem("s3")
    first = f"{BUCKET}/{name}/.lst.zarr.series-*.tmp/lst.zarr/zarr.json"
    deadline, seen = time.monotonic() + 120, False
    while not seen and time.monotonic() < deadline:
        assert run.poll() is None, run.communicate()[1]
        fs.invalidate_cache()
        seen = bool(fs.glob(first))
        time.sleep(0.05)
    assert seen, "nothing staged in two minutes"
    run.send_signal(stop)
    _, errors = run.communicate(timeout=60)
    fs.invalidate_cache()
    assert not fs.exists(f"{BUCKET}/{name}/lst.zarr")
    if stop == signal.SIGINT:
        assert run.returncode == 130, errors
        assert "no output written" in errors
        assert staged(fs, name) == [], fs.find(f"{BUCKET}/{name}")


def test_classes_found_in_a_later_batch_at_a_local_path(cluster, in_client_dir):
    """A class first met in the third step adds zeros for the steps already
    staged: written by the client, never by the workers of the cluster,
    which cannot see the local staging directory."""
    grids = [
        make_grid((64, 80), "uint8", seed=t, nodata=None, loc=3, scale=1)
        for t in range(3)
    ]
    grids[2].values[:5, :5] = 40
    fs = fsspec.filesystem("s3")
    files, urls = [], []
    for t, grid in enumerate(grids):
        files.append(grid.write(in_client_dir / f"classes{t}.tif"))
        fs.put_file(str(files[-1]), f"{BUCKET}/classes{t}.tif")
        urls.append(url(f"classes{t}.tif"))
    options = {"categorical": True, "batch": 1, "chunks": CHUNKS}
    expected = zd.zonal_series(
        in_client_dir / "zones.gpkg", files, ["count"], **options
    )
    with cluster.as_current():
        zd.zonal_series("zones.gpkg", urls, ["count"], output="classes.zarr", **options)
    actual = zd.open_cube(in_client_dir / "classes.zarr").load()
    assert "40" in actual.data_vars
    xr.testing.assert_identical(actual.drop_attrs(), expected.drop_attrs())
