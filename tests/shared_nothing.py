"""The shared-nothing cluster the tests run on: a loopback S3 server (moto),
``dask scheduler`` and two ``dask worker`` processes, each in a mount namespace
of its own (``unshare --mount``) with a tmpfs over the client's working
directory and over the temporary directories, and a working directory of its
own: nothing the client writes locally is visible to them, as on any
jobqueue, Kubernetes or Coiled deployment. The fixtures are session-scoped
(registered in ``conftest.py``) so that every test file shares one cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pandas as pd
import pytest

import zonal_dask as zd
from zonal_dask.io import remote

from .synth import make_grid, voronoi_zones, zones_frame
from .test_distributed import CREDENTIALS, free_port, moto_server, stop, wait_for

distributed = pytest.importorskip("distributed")

BUCKET = "shared-nothing"
GRID = make_grid((64, 80), "float32", seed=12, nan_fraction=0.01)
WEIGHTS = make_grid((64, 80), "float32", seed=13, nodata=None, loc=50.0, scale=5.0)
FRAME = zones_frame(voronoi_zones(GRID, 15, seed=12))
FRAME["region"] = [f"r{i % 4}" for i in range(len(FRAME))]
CHUNKS = 16
WORKER = ["--host", "127.0.0.1", "--nthreads", "1", "--no-nanny"]
WORKER += ["--memory-limit", "1GB", "--death-timeout", "60"]
ISOLATE = (
    'mount -t tmpfs tmpfs "$1" && mount -t tmpfs tmpfs "$2" && '
    'mkdir "$2/own" && cd "$2/own" && shift 2 && exec "$@"'
)


def isolation_available() -> str | None:
    """Why a process cannot get a mount namespace of its own here, or None."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs in a mount namespace"
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return f"unshare --mount fails here ({probe.stderr.strip()})"
    return None


@pytest.fixture(scope="session")
def client_dir(tmp_path_factory) -> Path:
    """The client's working directory: inputs and outputs named relatively."""
    reason = isolation_available()
    if reason:
        pytest.skip(f"shared-nothing cluster: {reason}")
    directory = tmp_path_factory.mktemp("client")
    FRAME.to_file(directory / "zones.gpkg", engine="pyogrio")
    GRID.write(directory / "raster.tif")
    WEIGHTS.write(directory / "weights.tif")
    return directory


# the variables the session's S3 server sets: the other tests run without them
# (tests/conftest.py), whichever tests ran before them in the worker
SET_BY_S3: set[str] = set()


@pytest.fixture(scope="session")
def s3(client_dir, tmp_path_factory) -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 with the rasters; yields the environment."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    server, endpoint = moto_server(tmp_path_factory.mktemp("s3-log") / "moto.log")
    environment = {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    try:
        with pytest.MonkeyPatch.context() as patch:
            # ZonePlan reads its grid outside a run, where GDAL needs its own
            gdal = remote.gdal_options({**os.environ, **environment})
            for name, value in {**environment, **gdal}.items():
                patch.setenv(name, value)
                SET_BY_S3.add(name)
            client = boto3.client("s3", endpoint_url=environment["AWS_ENDPOINT_URL"])
            wait_for(client.list_buckets, what="the S3 server")
            client.create_bucket(Bucket=BUCKET)
            for name in ("raster.tif", "weights.tif"):
                client.upload_file(str(client_dir / name), BUCKET, name)
            fsspec.filesystem("s3").invalidate_cache()
            yield environment
    finally:
        stop([server])


def isolated(command: list[str], hidden: Path, temporary: Path) -> list[str]:
    """``command`` in a mount namespace where ``hidden`` and ``temporary`` are
    empty tmpfs, run from a working directory of its own."""
    return [
        *("unshare", "--mount", "--propagation", "private"),
        *("sh", "-c", ISOLATE, "isolate", str(hidden), str(temporary)),
        *command,
    ]


def client_temporary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's temporary directory, to hide from the workers: the
    system's, unless this Python or the package lives inside it (a checkout
    under /tmp): then the tests' own, where every file the client writes is."""
    system = Path(tempfile.gettempdir()).resolve()
    needed = [Path(sys.prefix).resolve(), Path(zd.__file__).resolve().parent]
    if any(p == system or system in p.parents for p in needed):
        return tmp_path_factory.getbasetemp().resolve()
    return system


@pytest.fixture(scope="session")
def cluster(s3, client_dir, tmp_path_factory) -> Iterator[distributed.Client]:
    logs = tmp_path_factory.mktemp("shared-nothing-logs")
    temporary = client_temporary(tmp_path_factory)
    address = f"tcp://127.0.0.1:{free_port()}"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DASK_"))
    }
    environment |= s3
    environment.pop("TMPDIR", None)
    dask = [sys.executable, "-m", "dask"]
    commands = [
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":")[-1]],
        *([*dask, "worker", address, "--name", f"w{i}", *WORKER] for i in range(2)),
    ]
    processes = []
    client = None
    try:
        for i, command in enumerate(commands):
            command += ["--no-dashboard"]
            processes.append(
                subprocess.Popen(
                    isolated(command, client_dir, temporary),
                    env=environment,
                    stdout=open(logs / f"{i}.log", "wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            if i == 0:
                client = distributed.Client(
                    address, timeout="60s", set_as_default=False
                )
        assert client is not None
        client.wait_for_workers(2, timeout=120)
        yield client
    finally:
        if client is not None:
            client.close()
        stop(processes[1:])
        stop(processes[:1])


@pytest.fixture
def in_client_dir(client_dir, monkeypatch) -> Path:
    monkeypatch.chdir(client_dir)
    return client_dir


def local_stats(client_dir: Path, **options) -> pd.DataFrame:
    """The reference: the same call on this machine's threads."""
    return zd.zonal_stats(
        client_dir / "zones.gpkg", client_dir / "raster.tif", chunks=CHUNKS, **options
    )


def url(name: str) -> str:
    return f"s3://{BUCKET}/{name}"
