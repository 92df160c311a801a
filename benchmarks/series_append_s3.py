"""What appending steps to a series cube on object storage costs, in objects.

    python benchmarks/series_append_s3.py [--steps 1024] [--zones 400] [--new 1]

Starts a loopback S3 server (moto), writes a cube of ``steps`` daily steps of
a 128 x 128 grid (count, mean, max over ``zones`` square zones) to ``s3://bench/cube.zarr``,
then appends ``new`` steps, and prints the store's objects, the objects the
append copied to its staging prefix and published, and the append's time.
Staging a copy of the whole store (what a rename-less store needs without
knowing which chunks an append touches) would copy every object.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd

STATS = ["count", "mean", "max"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1024)
    parser.add_argument("--zones", type=int, default=400)
    parser.add_argument("--new", type=int, default=1)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    try:
        run(args)
    finally:
        server.terminate()
        server.wait()


def run(args: argparse.Namespace) -> None:
    import fsspec
    import geopandas as gpd
    import rioxarray  # noqa: F401  (the .rio accessor)
    import shapely
    import xarray as xr

    import zonal_dask as zd

    fs = fsspec.filesystem("s3")
    for _ in range(100):
        try:
            fs.mkdir("bench")
            break
        except Exception:
            time.sleep(0.1)
    size, side = 128, int(np.sqrt(args.zones))
    total = args.steps + args.new
    rng = np.random.default_rng(0)
    values = rng.normal(100, 30, (total, size, size)).astype("float32")
    cube = xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={
            "time": pd.date_range("2020-01-01", periods=total, freq="D"),
            "y": np.arange(size)[::-1] + 0.5,
            "x": np.arange(size) + 0.5,
        },
        name="lst",
    ).rio.write_crs("EPSG:3857")
    step = size / side
    boxes = [
        shapely.box(i * step, j * step, (i + 1) * step, (j + 1) * step)
        for i in range(side)
        for j in range(side)
    ]
    zones = gpd.GeoDataFrame(geometry=boxes, crs="EPSG:3857")
    target = "s3://bench/cube.zarr"
    zd.zonal_series(zones, cube.isel(time=slice(0, args.steps)), STATS, output=target)
    fs.invalidate_cache()
    stored = len(fs.find("bench/cube.zarr"))
    copied: list[str] = []
    copy = fs.copy

    def counted(path1, path2, *a, **k):
        copied.extend(path2 if isinstance(path2, list) else [path2])
        return copy(path1, path2, *a, **k)

    fs.copy = counted
    started = time.perf_counter()
    zd.zonal_series(zones, cube, STATS, output=target, append=True)
    elapsed = time.perf_counter() - started
    staged = sum(".tmp/" in p for p in copied)
    fs.invalidate_cache()
    print(
        f"{args.steps} steps + {args.new}, {side * side} zones: store of {stored} "
        f"objects; the append staged {staged} and published {len(copied) - staged} "
        "objects; the append call (reading the series, planning the zones, "
        f"computing the new steps) took {elapsed:.2f} s; a whole copy would "
        f"stage {stored}"
    )


if __name__ == "__main__":
    main()
